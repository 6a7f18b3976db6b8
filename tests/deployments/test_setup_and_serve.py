"""`python -m deployments.setup` against a real local Prefect server, and `serve`'s deployments."""
from __future__ import annotations

import secrets

import pytest

from clients import ratelimit
from deployments import config, serve
from deployments import setup as deploy_setup

pytestmark = pytest.mark.prefect


@pytest.fixture(autouse=True)
def _forget_saved_secrets():
    """The session's Prefect server is shared: Secret blocks saved here would become every later
    playbook test's API key (blocks win over the environment)."""
    yield
    from prefect.client.orchestration import get_client

    try:
        with get_client(sync_client=True) as client:
            for name in ("gitguardian-api-key", "ldap-bind-password"):
                try:
                    block = client.read_block_document_by_name(name, block_type_slug="secret")
                except Exception:  # noqa: BLE001 - not saved by this test
                    continue
                client.delete_block_document(block.id)
    except Exception:  # noqa: BLE001 - no server in this test: nothing was saved
        pass


def _fake_secret() -> str:
    return "fake-" + secrets.token_hex(12)  # made now, never a real key


def test_setup_creates_pool_limit_and_secrets_idempotently(
    prefect_server, monkeypatch, capsys
) -> None:
    from prefect.blocks.system import Secret
    from prefect.client.orchestration import get_client

    api_key, ldap_password = _fake_secret(), _fake_secret()
    monkeypatch.setenv("GITGUARDIAN_API_KEY", api_key)
    monkeypatch.setenv("LDAP_PASSWORD", ldap_password)
    monkeypatch.setenv("GITGUARDIAN_REQUESTS_PER_MINUTE", "120")
    from tests.fixtures.canary import WEBHOOK_TOKEN

    monkeypatch.setenv("GITGUARDIAN_WEBHOOK_TOKEN", WEBHOOK_TOKEN)

    assert deploy_setup.main([]) == 0
    first = capsys.readouterr().out
    assert "created (type process)" in first
    assert deploy_setup.main([]) == 0  # a second run changes nothing and does not fail
    second = capsys.readouterr().out
    assert "exists (type process)" in second
    for text in (first, second):
        assert api_key not in text and ldap_password not in text
        assert "saved from GITGUARDIAN_API_KEY" in text

    with get_client(sync_client=True) as client:
        pool = client.read_work_pool(config.WORK_POOL)
        limit = client.read_global_concurrency_limit_by_name(ratelimit.LIMIT_NAME)
    assert pool.type == "process"
    assert "command" in pool.base_job_template["variables"]["properties"]
    assert (limit.limit, limit.active) == (10, True)
    assert limit.slot_decay_per_second == pytest.approx((120 - 10) / 60)
    assert Secret.load("gitguardian-api-key", _sync=True).get() == api_key
    assert Secret.load("ldap-bind-password", _sync=True).get() == ldap_password
    # The webhook receiver reads its token from the block, the environment unset.
    from deployments import webhooks

    assert Secret.load("gitguardian-webhook-token", _sync=True).get() == WEBHOOK_TOKEN
    monkeypatch.delenv("GITGUARDIAN_WEBHOOK_TOKEN")
    assert webhooks.load_token() == WEBHOOK_TOKEN
    assert "saved from GITGUARDIAN_WEBHOOK_TOKEN" in first and WEBHOOK_TOKEN not in first

    # Rotation: a new key in the environment replaces the block's value.
    rotated = _fake_secret()
    monkeypatch.setenv("GITGUARDIAN_API_KEY", rotated)
    monkeypatch.delenv("LDAP_PASSWORD")
    messages = deploy_setup.setup()
    assert Secret.load("gitguardian-api-key", _sync=True).get() == rotated
    assert Secret.load("ldap-bind-password", _sync=True).get() == ldap_password
    assert any("left as it is (LDAP_PASSWORD not set)" in m for m in messages)

    # 0 switches the shared limit off instead of leaving a stale one active.
    monkeypatch.setenv("GITGUARDIAN_REQUESTS_PER_MINUTE", "0")
    deploy_setup.setup()
    with get_client(sync_client=True) as client:
        assert client.read_global_concurrency_limit_by_name(ratelimit.LIMIT_NAME).active is False
    monkeypatch.setenv("GITGUARDIAN_REQUESTS_PER_MINUTE", "120")
    deploy_setup.setup()
    with get_client(sync_client=True) as client:
        assert client.read_global_concurrency_limit_by_name(ratelimit.LIMIT_NAME).active is True


def test_shared_limiter_takes_slots_from_the_server(prefect_server, monkeypatch) -> None:
    from prefect.client.orchestration import get_client

    monkeypatch.setenv("GITGUARDIAN_REQUESTS_PER_MINUTE", "60")
    deploy_setup.setup({"GITGUARDIAN_REQUESTS_PER_MINUTE": "60"})

    class Local:
        calls = 0

        def acquire(self) -> float:
            Local.calls += 1
            return 0.0

    limiter = ratelimit.SharedRateLimiter(fallback=Local())
    for _ in range(3):
        limiter.acquire()
    with get_client(sync_client=True) as client:
        limit = client.read_global_concurrency_limit_by_name(ratelimit.LIMIT_NAME)
    assert limit.active_slots >= 1  # taken on the server (decay may already have freed some)
    assert (limiter.shared_failures, Local.calls) == (0, 0)

    missing = ratelimit.SharedRateLimiter("no-such-limit", fallback=Local())
    missing.acquire()
    assert (missing.shared_failures, Local.calls) == (1, 1)  # strict: a missing limit falls back


def test_sizing_never_allows_more_than_the_minute_budget() -> None:
    for rpm in (1, 10, 60, 200, 1000):
        slots, decay = ratelimit.sizing(rpm)
        assert 1 <= slots <= 10
        assert slots + decay * 60 <= max(rpm, 2)
    with pytest.raises(ValueError):
        ratelimit.sizing(0)


def test_shared_limiter_only_with_a_prefect_api(monkeypatch) -> None:
    from clients.ratelimit import RateLimiter

    monkeypatch.delenv("PREFECT_API_URL", raising=False)
    assert isinstance(ratelimit.shared_limiter(200), RateLimiter)
    assert ratelimit.shared_limiter(0) is None
    monkeypatch.setenv("PREFECT_API_URL", "http://127.0.0.1:1/api")
    assert isinstance(ratelimit.shared_limiter(200), ratelimit.SharedRateLimiter)


def test_save_secrets_never_puts_a_value_in_its_messages() -> None:
    saved: dict[str, str] = {}
    value = _fake_secret()
    messages = deploy_setup.save_secrets({"GITGUARDIAN_API_KEY": value}, save=saved.__setitem__)
    assert saved == {"gitguardian-api-key": value}
    assert value not in " ".join(messages)


def test_serve_builds_every_deployment_of_prefect_yaml() -> None:
    built = {f"{d.flow_name}/{d.name}": d for d in serve.build()}
    specs = config.load()
    assert len(built) == len(specs)
    for spec in specs:
        deployment = built[f"{spec.load_flow().name}/{spec.name}"]
        assert deployment.parameters == spec.parameters
        assert deployment.tags == list(spec.tags)
        assert deployment.description == spec.description
        assert [(s.schedule.cron, s.schedule.timezone) for s in deployment.schedules] == [
            (s.cron, s.timezone) for s in spec.schedules
        ]
        limit = deployment.concurrency_limit
        assert getattr(limit, "limit", limit) == 1


def test_serve_list_prints_and_does_not_serve(capsys) -> None:
    assert serve.main(["--list"]) == 0
    out = capsys.readouterr().out
    assert "departed-developer-reassignment/daily: 0 6 * * * UTC" in out
    assert "bulk-remediation/ad-hoc: no schedule" in out


def test_serve_checks_the_key_once_at_its_start(prefect_server, fresh_sandbox, monkeypatch,
                                                 capsys) -> None:
    """A refused key: serve does not start (exit 2, one line, the key never shown). A good key:
    its description is cached for the runs, so the first event's run does not read it."""
    from tasks import fetch, settings

    box = fresh_sandbox
    monkeypatch.setenv("GITGUARDIAN_API_URL", box.url)
    monkeypatch.setenv("GITGUARDIAN_REQUESTS_PER_MINUTE", "0")
    bad = _fake_secret()
    monkeypatch.setenv("GITGUARDIAN_API_KEY", bad)
    assert serve.main([]) == 2  # returns before serving anything
    err = capsys.readouterr().err
    assert "refused the API key" in err and "not serving" in err and bad not in err

    monkeypatch.setenv("GITGUARDIAN_API_KEY", box.token)
    reads = box.before("GET", "/v1/api_tokens/self", lambda _b: None, times=None)
    line = serve.check_key()
    assert line.startswith(f"GitGuardian API key accepted by {box.url}") and box.token not in line
    checked = reads.fired
    assert checked <= 1  # 0 only if an earlier test of the session cached this URL and key
    fetch.token_info_cached(settings.gitguardian_client())  # what a scoped run's check calls
    assert reads.fired == checked
