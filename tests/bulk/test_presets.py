"""The presets and the flow's parameters as Prefect sees them: the UI form and the deployments."""
from __future__ import annotations

from pathlib import Path

import pytest
import yaml

from flows.bulk_remediation import PRESETS, bulk_remediation
from tasks.decide.bulk_remediation import BulkRequest, check_request

ENTRYPOINT = "flows/bulk_remediation.py:bulk_remediation"
PREFECT_YAML = Path(__file__).resolve().parents[2] / "prefect.yaml"


@pytest.mark.parametrize("name", sorted(PRESETS))
def test_each_preset_is_a_valid_dry_run_request(name):
    parameters = PRESETS[name]
    request = BulkRequest.model_validate(parameters["policy"])
    check_request(request)  # filtered, a reason, known filters
    assert parameters["dry_run"] is True
    # Prefect accepts the same dict for the flow's parameters (what a deployment run sends).
    validated = bulk_remediation.validate_parameters(parameters)
    assert validated["policy"] == request


def test_the_ui_form_is_typed_and_described():
    from prefect.utilities.callables import parameter_schema

    schema = parameter_schema(bulk_remediation.fn).model_dump()
    assert schema["required"] == ["policy"]
    assert schema["properties"]["dry_run"]["default"] is True
    definitions = schema["definitions"]
    for model in ("BulkRequest", "BulkSelection", "BulkAction"):
        fields = definitions[model]["properties"]
        undocumented = [name for name, field in fields.items() if not field.get("description")]
        assert not undocumented, f"{model}: {undocumented} have no description for the UI"
    assert definitions["BulkAction"]["properties"]["kind"]["enum"] == [
        "assign", "unassign", "resolve", "ignore", "reopen", "share", "note"
    ]


def _bulk_deployments() -> list[dict]:
    if not PREFECT_YAML.exists():
        return []
    document = yaml.safe_load(PREFECT_YAML.read_text(encoding="utf-8"))
    return [d for d in document.get("deployments") or [] if d.get("entrypoint") == ENTRYPOINT]


def test_prefect_yaml_presets_validate_and_are_unscheduled():
    deployments = _bulk_deployments()
    if not deployments:
        pytest.skip("prefect.yaml has no bulk-remediation deployment yet")
    for deployment in deployments:
        parameters = deployment.get("parameters") or {}
        if "policy" in parameters:  # without one (ad hoc), the UI's form asks for it
            check_request(BulkRequest.model_validate(parameters["policy"]))
        assert parameters.get("dry_run", True) is True, deployment["name"]
        assert not any(s.get("active", True) for s in deployment.get("schedules") or []), (
            deployment["name"]
        )
