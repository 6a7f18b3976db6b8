"""The playbooks' command lines: --help lists the policy's fields, --dry-run prints the plan."""
from __future__ import annotations

import pytest

from flows import auto_ignore, commit_author_triage, departed_developers


@pytest.mark.parametrize(
    "module, options",
    [
        (
            departed_developers,
            ["--include-unassigned", "--manager-depth", "--fallback-email", "--note-template"],
        ),
        (
            auto_ignore,
            ["--validities", "--veto-tags", "--test-globs", "--trust-test-file-tag", "--recheck"],
        ),
        (
            commit_author_triage,
            ["--no-member-author", "--group-emails", "--share-with-non-member-author"],
        ),
    ],
)
def test_help_lists_every_parameter(module, options, capsys):
    with pytest.raises(SystemExit) as exit_:
        module.main(["--help"])
    assert exit_.value.code == 0
    text = capsys.readouterr().out
    for option in options + ["--dry-run", "--apply", "--max-actions"]:
        assert option in text


def test_bad_parameter_is_a_clear_error_before_anything_runs(capsys):
    assert auto_ignore.main(["--validities", "valid"]) == 2
    assert "valid" in capsys.readouterr().err
    with pytest.raises(SystemExit):
        departed_developers.main(["--manager-depth", "many"])


@pytest.mark.slapd
@pytest.mark.prefect
def test_dry_run_prints_the_plan_as_a_table(playbook_env, capsys):
    before = playbook_env.sandbox.state()
    assert departed_developers.main(["--dry-run", "--max-actions", "500"]) == 0
    out = capsys.readouterr().out
    lines = out.splitlines()
    header = next(i for i, line in enumerate(lines) if line.startswith("incident_id"))
    assert all(column in lines[header] for column in ("action", "arguments", "reason", "evidence"))
    planned = len(playbook_env.ground_truth(departed_developers.PLAYBOOK)["actions"])
    rows = [line for line in lines[header + 2 :] if line.strip()]
    assert len(rows) == planned
    assert all(" assign " in f" {row} " for row in rows)
    assert playbook_env.sandbox.state()["audit_logs"] == before["audit_logs"]
