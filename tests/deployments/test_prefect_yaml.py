"""prefect.yaml as written: every deployment loads, and its values are what its flow accepts."""
from __future__ import annotations

import itertools
from datetime import UTC, datetime

import pytest
import yaml
from prefect import Flow
from prefect.client.schemas.schedules import CronSchedule
from prefect.exceptions import SignatureMismatchError
from prefect.server.schemas.schedules import CronSchedule as ServerCron

from deployments import config

SPECS = config.load()
IDS = [f"{s.entrypoint.split(':')[1]}/{s.name}" for s in SPECS]
# The schedules the issue asks for, by flow name (cron, time zone).
EXPECTED_SCHEDULES = {
    "departed-developer-reassignment": [("0 6 * * *", "UTC")],
    # Less often since issue 16: events run these within seconds; the sweeps reconcile.
    "test-directory-auto-ignore": [("0 */6 * * *", "UTC")],
    "commit-author-triage": [("30 * * * *", "UTC")],
    "new-incidents": [],  # events only: the two playbooks' own sweeps reconcile
    "weekly-report": [("0 7 * * 1", "UTC")],
    "bulk-remediation": [],
    "sla-escalation": [("0 * * * 1-5", "UTC")],
}
# Values a run needs that no deployment default can give (typed in the UI each time).
RUN_TIME_VALUES = {
    "new-incidents": {"incident_ids": [1, 2]},  # an event's ids (the trigger's template)
    "bulk-remediation": {"policy": {
        "selection": {"status": ["TRIGGERED"], "severity": ["low"]},
        "action": {"kind": "ignore", "ignore_reason": "test_credential"},
        "reason": "Bulk clean-up of low-severity test credentials",
    }},
}


def test_every_existing_flow_file_has_a_deployment_and_no_other() -> None:
    root = config.ROOT
    listed = {spec.entrypoint.split(":")[0] for spec in SPECS}
    assert all((root / path).is_file() for path in listed), "a listed entrypoint has no file"
    known = {"flows/departed_developers.py", "flows/weekly_report.py", "flows/bulk_remediation.py",
             "flows/auto_ignore.py", "flows/commit_author_triage.py",
             "flows/sla_escalation.py", "flows/new_incidents.py"}
    present = {str(p.relative_to(root)) for p in (root / "flows").glob("*.py")} & known
    assert present == listed


def test_names_are_unique_and_file_parses_as_prefect_expects() -> None:
    raw = yaml.safe_load(config.PREFECT_YAML.read_text())
    assert raw["prefect-version"].startswith("3.")
    names = [(spec.entrypoint, spec.name) for spec in SPECS]
    assert len(names) == len(set(names))


def test_pull_step_sets_the_working_directory_from_the_environment() -> None:
    steps = config.pull_steps()
    step = "prefect.deployments.steps.set_working_directory"
    assert steps == [{step: {"directory": "{{ $PWD }}"}}]


@pytest.mark.parametrize("spec", SPECS, ids=IDS)
def test_entrypoint_is_a_flow_with_the_expected_name(spec: config.DeploymentSpec) -> None:
    flow = spec.load_flow()
    assert isinstance(flow, Flow)
    assert flow.name in EXPECTED_SCHEDULES
    # The file path form that `prefect deploy` and the worker use loads the same flow.
    from prefect.flows import load_flow_from_entrypoint

    loaded = load_flow_from_entrypoint(str(config.ROOT / spec.entrypoint))
    assert loaded.name == flow.name


@pytest.mark.parametrize("spec", SPECS, ids=IDS)
def test_parameters_are_accepted_by_the_flow(spec: config.DeploymentSpec) -> None:
    flow = spec.load_flow()
    parameters = {**RUN_TIME_VALUES.get(flow.name, {}), **spec.parameters}
    validated = flow.validate_parameters(parameters)
    for name, value in spec.parameters.items():
        model = type(validated[name])
        # A pydantic parameter (policy) arrives as its model, built from the yaml's mapping.
        assert validated[name] == (model.model_validate(value) if hasattr(model, "model_validate")
                                   else value)
    # Every name is a real parameter: a typo would otherwise be dropped silently by the UI.
    schema_names = set(flow.parameters.properties)
    assert set(spec.parameters) <= schema_names


@pytest.mark.parametrize("spec", SPECS, ids=IDS)
def test_a_misspelt_parameter_is_refused(spec: config.DeploymentSpec) -> None:
    flow = spec.load_flow()
    with pytest.raises(SignatureMismatchError):
        flow.validate_parameters({**RUN_TIME_VALUES.get(flow.name, {}), **spec.parameters,
                                  "max_actionz": 3})


@pytest.mark.parametrize("spec", SPECS, ids=IDS)
def test_schedules_concurrency_pool_and_labels(spec: config.DeploymentSpec) -> None:
    flow = spec.load_flow()
    assert [(s.cron, s.timezone) for s in spec.schedules] == EXPECTED_SCHEDULES[flow.name]
    for schedule in spec.schedules:
        CronSchedule(cron=schedule.cron, timezone=schedule.timezone)  # what `prefect deploy` builds
        # The server's own schedule model gives the next dates: they fall where the issue says.
        server_cron = ServerCron(cron=schedule.cron, timezone=schedule.timezone)
        start = datetime(2026, 11, 2, 0, 30, tzinfo=UTC)  # a Monday
        dates = list(itertools.islice(server_cron._get_dates_generator(n=2, start=start), 2))
        assert len(dates) == 2 and dates[0] >= start
        gap = dates[1] - dates[0]
        if flow.name == "departed-developer-reassignment":
            assert (dates[0].hour, dates[0].minute, (dates[1] - dates[0]).days) == (6, 0, 1)
        if flow.name == "weekly-report":
            assert (dates[0].weekday(), dates[0].hour, (dates[1] - dates[0]).days) == (0, 7, 7)
        if flow.name == "test-directory-auto-ignore":
            assert (dates[0].minute, gap.total_seconds()) == (0, 6 * 3600)
        if flow.name == "commit-author-triage":
            assert (dates[0].minute, gap.total_seconds()) == (30, 3600)
    assert spec.concurrency_limit == 1
    assert spec.work_pool == config.WORK_POOL
    assert spec.description and spec.tags


def test_writes_are_on_only_where_the_policy_is_conservative() -> None:
    by_flow = {spec.load_flow().name: spec for spec in SPECS}
    for name, spec in by_flow.items():
        if "dry_run" not in spec.parameters:
            continue  # no write at all (the weekly report)
        writes = spec.parameters["dry_run"] is False
        assert writes == (name == "departed-developer-reassignment"), name
        if writes:
            assert 0 < spec.parameters["max_actions"] <= 50


def test_bulk_presets_are_the_flows_presets_unscheduled_dry_runs() -> None:
    from flows.bulk_remediation import PRESETS

    bulk = {spec.name: spec for spec in SPECS
            if spec.entrypoint.startswith("flows/bulk_remediation.py")}
    presets = {name: spec for name, spec in bulk.items() if "policy" in spec.parameters}
    assert {name: spec.parameters for name, spec in presets.items()} == PRESETS
    assert all(not spec.schedules and spec.parameters["dry_run"] is True for spec in bulk.values())


# Issue 16: which GitGuardian events run which playbook, scoped to the event's incidents.
# Since one flow run per new-incident event: new-incidents (auto-ignore, then triage) on
# triggered / new_occurrence; the two playbooks' own deployments sweep (and auto-ignore rechecks
# a validity change).
EXPECTED_TRIGGERS = {
    "new-incidents": [{"gitguardian.incident.triggered", "gitguardian.incident.new_occurrence"}],
    "test-directory-auto-ignore": [{"gitguardian.incident.validity_changed"}],
    "departed-developer-reassignment": [{"gitguardian.incident.assigned",
                                         "gitguardian.incident.reassigned"}],
}


@pytest.mark.parametrize("spec", SPECS, ids=IDS)
def test_event_triggers_run_the_playbook_for_the_events_incidents(
        spec: config.DeploymentSpec) -> None:
    from prefect.events.schemas.deployment_triggers import DeploymentEventTrigger

    from deployments.serve import deployment_trigger
    from deployments.webhooks import ACTIONS, EVENT_PREFIX

    flow = spec.load_flow()
    expected = EXPECTED_TRIGGERS.get(flow.name, [])
    assert [set(t["expect"]) for t in spec.triggers] == expected
    known = {EVENT_PREFIX + suffix for suffix in ACTIONS.values()}
    for raw in spec.triggers:
        trigger = deployment_trigger(raw)  # what `prefect deploy` and serve build
        assert isinstance(trigger, DeploymentEventTrigger)
        assert set(trigger.expect) <= known  # names the receiver emits
        assert trigger.match.model_dump() == {"prefect.resource.id": "gitguardian.incident.*"}
        assert (trigger.posture, trigger.threshold, trigger.enabled) == ("Reactive", 1, True)
        assert trigger.parameters == {"incident_ids": "{{ event.payload.incident_ids }}"}
        # A rendered value (a list of ids) is a valid parameter of the flow, with the
        # deployment's own defaults (dry_run, max_actions) kept.
        validated = flow.validate_parameters({**spec.parameters, "incident_ids": [3, 5]})
        assert validated["incident_ids"] == [3, 5]
        import uuid

        trigger.set_deployment_id(uuid.uuid4())
        automation = trigger.as_automation()
        assert automation.name == raw["name"]
        assert [a.type for a in automation.actions] == ["run-deployment"]


def test_the_trigger_template_renders_the_events_ids_as_a_list() -> None:
    """Prefect's own RunDeployment rendering: '{{ event.payload.incident_ids }}' keeps its
    type (a list of ints), not a string."""
    from prefect.server.events.actions import RunDeployment
    from prefect.utilities.schema_tools.hydration import HydrationContext, hydrate

    parameters = {"incident_ids": "{{ event.payload.incident_ids }}"}
    RunDeployment._upgrade_v1_templates(parameters)
    context = HydrationContext(render_jinja=True, raise_on_error=True,
                               jinja_context={"event": {"payload": {"incident_ids": [7, 9]}}})
    assert hydrate(parameters, context) == {"incident_ids": [7, 9]}


def test_new_incidents_flow_is_typed_and_documented_for_the_ui() -> None:
    """The event flow's form in the Prefect UI: the ids required, both policies as their own
    models, every parameter described (from the docstring)."""
    from flows.new_incidents import new_incidents

    schema = new_incidents.parameters
    assert schema.required == ["incident_ids"]
    assert set(schema.properties) == {"incident_ids", "auto_ignore_policy", "triage_policy",
                                      "dry_run", "max_actions", "approval_timeout_hours"}
    for name, prop in schema.properties.items():
        assert len(prop.get("description") or "") > 20, name
    assert schema.properties["incident_ids"]["items"] == {"type": "integer"}
    validated = new_incidents.validate_parameters({"incident_ids": [4]})
    assert validated["dry_run"] is True and validated["max_actions"] == 50
    assert type(validated["auto_ignore_policy"]).__name__ == "AutoIgnorePolicy"
    assert type(validated["triage_policy"]).__name__ == "CommitAuthorTriagePolicy"
    with pytest.raises(Exception):  # noqa: B017, PT011 - the ids are required
        new_incidents.validate_parameters({})
