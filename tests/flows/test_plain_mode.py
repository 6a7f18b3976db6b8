"""tasks.runtime.plain(): the flows' building blocks without Prefect, entered explicitly
(benchmarks/playbooks.py measures Prefect's share with it). Under Prefect, the flow tests run
the same names as Prefect's own."""
from prefect import Task
from prefect.utilities.annotations import quote

from tasks import fetch, playbook, runtime, settings


def test_tasks_stay_prefect_tasks():
    assert isinstance(fetch.fetch_members, Task)
    assert isinstance(playbook.apply_chunk, Task)
    assert not runtime.is_plain()


def test_a_task_runs_as_its_function_inside_plain_only():
    seen = []
    with runtime.plain():
        assert runtime.is_plain()
        result = playbook.apply_chunk(lambda chunk: seen.extend(chunk) or ["done"], quote([1, 2]))
    assert result == ["done"] and seen == [1, 2]  # quote() unwrapped, as Prefect does
    assert not runtime.is_plain()


def test_logger_artifacts_and_secrets_inside_plain(monkeypatch):
    monkeypatch.setenv("BENCH_PLAIN_SECRET", "from-env")
    with runtime.plain():
        assert runtime.get_run_logger() is runtime.plain_logger
        assert runtime.create_table_artifact(key="k", table=[{"a": 1}]) is None
        assert runtime.create_markdown_artifact(key="k", markdown="x") is None
        assert settings.secret_value("no-such-block", "BENCH_PLAIN_SECRET") == "from-env"
