"""Shape contract: the sandbox answers each recorded request with the real API's shape.

For every interaction of every cassette in ../shared/contract/recorded and
../shared/contract/to-serve, the same request goes
to the sandbox (seed 7 workspace) and both JSON documents are walked together: the same keys
in every object, the same JSON type for every value, the same status code and the list
headers (`link`, `x-per-page`, `x-app-version`).

Deliberate differences (copy to the README):
- `null` on either side matches any type: nullable fields are null in one document and set
  in the other (`share_url`, `assignee_id`, audit `data`, `last_login`, ...).
- Ids in paths are mapped: the recorded incident becomes the sandbox's first incident with
  occurrences; the recorded note id becomes the note the previous request created; a
  recorded member becomes the sandbox token's member.
- A recorded `cursor` is not replayed (its positions belong to the real workspace): the
  sandbox's own `Link rel="next"` of the previous answer is followed instead.
- List elements are compared with the recorded element of the most similar shape, since
  real lists mix variants (feedback answers of type `boolean` and `text`, activity entries
  whose `data` differs by `content_key`). An activity entry whose `content_key` no
  recording shows (IGNORE, REOPEN, UNASSIGN, SET_CUSTOM_TAGS) is compared without its `data`.
- Values differ by design: e-mails, names and dates are generated; `x-app-version` reads
  `v2.521.0-sandbox`; share URLs are invented at run time and never seeded.
- Integers and floats are both "number" (JSON has one number type).
"""
from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any
from urllib.parse import parse_qsl, urlsplit

import pytest
import requests
import yaml

CONTRACT = Path(__file__).resolve().parents[3] / "shared" / "contract"
RECORDED = CONTRACT / "recorded"
CASSETTES = sorted(p for folder in ("recorded", "to-serve") if (CONTRACT / folder).is_dir()
                   for p in (CONTRACT / folder).glob("*.yaml"))
WRITES = {"POST", "PATCH", "PUT", "DELETE"}


def json_type(value: Any) -> str:
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "boolean"
    if isinstance(value, (int, float)):
        return "number"
    if isinstance(value, str):
        return "string"
    if isinstance(value, list):
        return "array"
    return "object"


def shape_differences(recorded: Any, served: Any, path: str = "$") -> list[str]:
    """Every place where the two documents differ in keys or JSON types."""
    if recorded is None or served is None:
        return []
    kinds = json_type(recorded), json_type(served)
    if kinds[0] != kinds[1]:
        return [f"{path}: recorded {kinds[0]}, sandbox {kinds[1]}"]
    if isinstance(recorded, dict):
        missing = sorted(set(recorded) - set(served))
        extra = sorted(set(served) - set(recorded))
        problems = [f"{path}: missing keys {missing}"] if missing else []
        problems += [f"{path}: extra keys {extra}"] if extra else []
        for key in sorted(set(recorded) & set(served)):
            problems += shape_differences(recorded[key], served[key], f"{path}.{key}")
        return problems
    if isinstance(recorded, list) and recorded and served:
        problems = []
        for index, item in enumerate(served):
            problems += shape_differences(_closest(recorded, item), item, f"{path}[{index}]")
        return problems
    return []


def _closest(candidates: list[Any], item: Any) -> Any:
    if not isinstance(item, dict):
        return candidates[0]
    dicts = [c for c in candidates if isinstance(c, dict)] or candidates
    best = max(len(set(c) & set(item)) if isinstance(c, dict) else -1 for c in dicts)
    nearest = [c for c in dicts if isinstance(c, dict) and len(set(c) & set(item)) == best]
    # among those of the most similar key set, the one whose nested shape differs least
    return min(nearest or dicts, key=lambda c: len(shape_differences(c, item)))


def _unrecorded_variants_blanked(recorded: Any, served: Any) -> Any:
    """Activity entries of a content_key no recording shows, with `data` set to null."""
    if not (isinstance(recorded, list) and isinstance(served, list)):
        return served
    keys = {(r.get("content") or {}).get("content_key") for r in recorded
            if isinstance(r, dict)} - {None}
    if not keys:
        return served
    for item in served:
        content = item.get("content") if isinstance(item, dict) else None
        if isinstance(content, dict) and content.get("content_key") not in keys:
            content["data"] = None
    return served


def test_shape_differences_catches_missing_keys_and_type_changes():
    recorded = {"a": 1, "b": {"c": "x"}, "d": [{"e": True}], "f": None}
    assert shape_differences(recorded, {"a": 2, "b": {"c": "y"}, "d": [{"e": False}],
                                        "f": {"any": 1}}) == []
    problems = shape_differences(recorded, {"a": "2", "b": {}, "d": [{"e": 1}], "f": None})
    assert problems == ["$.a: recorded number, sandbox string", "$.b: missing keys ['c']",
                        "$.d[0].e: recorded boolean, sandbox number"]


def _sandbox_incident_id(box) -> int:
    with_occurrences = {o["incident_id"] for o in box.workspace.occurrences}
    return min(i["id"] for i in box.workspace.incidents if i["id"] in with_occurrences)


@pytest.mark.skipif(not CASSETTES, reason="../shared/contract/recorded not found")
@pytest.mark.parametrize("cassette", CASSETTES, ids=lambda p: p.stem)
def test_sandbox_answers_have_the_recorded_shapes(cassette, request):
    interactions = yaml.safe_load(cassette.read_text(encoding="utf-8"))["interactions"]
    writes = any(i["request"]["method"] in WRITES for i in interactions)
    audit = any("/v1/audit_logs" in i["request"]["uri"] for i in interactions)
    # a cassette that writes gets its own server; reads share the session's
    box = request.getfixturevalue("fresh_sandbox" if writes or audit else "sandbox")
    incident_id = _sandbox_incident_id(box)
    member_id = box.store.authenticate(box.token).member_id
    headers = {"Authorization": f"Token {box.token}"}
    if audit and not box.workspace.audit_logs:
        # a generated workspace may start with no history: one write makes an entry to compare
        requests.post(f"{box.url}/v1/incidents/secrets/{incident_id}/notes", headers=headers,
                      json={"comment": "contract check"}, timeout=10).raise_for_status()
    previous: requests.Response | None = None
    created_id: int | None = None
    problems: list[str] = []
    for number, interaction in enumerate(interactions):
        recorded_request, recorded_response = interaction["request"], interaction["response"]
        parts = urlsplit(recorded_request["uri"])
        path = re.sub(r"^/v1/incidents/secrets/\d+", f"/v1/incidents/secrets/{incident_id}",
                      parts.path)
        if created_id is not None:
            path = re.sub(r"/notes/\d+$", f"/notes/{created_id}", path)
        path = re.sub(r"^/v1/members/\d+", f"/v1/members/{member_id}", path)
        params = dict(parse_qsl(parts.query))
        if "cursor" in params:
            assert previous is not None and "next" in previous.links, "sandbox has no next page"
            url, params = previous.links["next"]["url"], None
        else:
            url = box.url + path
        body = recorded_request.get("body") or None
        response = requests.request(recorded_request["method"], url, params=params,
                                    headers={**headers, "Content-Type": "application/json"},
                                    data=body.encode() if isinstance(body, str) else body,
                                    timeout=10)
        where = f"{cassette.stem}#{number} {recorded_request['method']} {path}"
        assert response.status_code == recorded_response["status"]["code"], where
        recorded_body = json.loads(recorded_response["body"]["string"])
        served_body = _unrecorded_variants_blanked(recorded_body, response.json())
        problems += [f"{where}: {p}" for p in shape_differences(recorded_body, served_body)]
        recorded_headers = {k.lower() for k in recorded_response["headers"]}
        for name in ("link", "x-per-page", "x-app-version"):
            if name in recorded_headers:
                assert name in {k.lower() for k in response.headers}, f"{where}: no {name}"
        if isinstance(recorded_body, list):
            assert recorded_body and served_body or not recorded_body, f"{where}: empty answer"
        if recorded_request["method"] == "POST" and isinstance(served_body, dict):
            created_id = served_body.get("id", created_id)
        previous = response
    assert not problems, "\n".join(problems)
