"""One SLA definition: the weekly report and the escalation ladder read the same table, and the
report's "open past SLA" is the ladder's "breached"."""
from datetime import UTC, datetime, timedelta

from hypothesis import given
from hypothesis import strategies as st

from tasks import sla
from tasks.report import frames, kpis

NOW = datetime(2026, 10, 21, 12, 0, tzinfo=UTC)


def test_the_report_uses_the_shared_table():
    assert kpis.DEFAULT_SLA_DAYS is sla.DEFAULT_SLA_DAYS


@given(severity=st.sampled_from(list(sla.DEFAULT_SLA_DAYS) + ["new-severity"]),
       age_seconds=st.integers(min_value=0, max_value=200 * 86400))
def test_report_breach_is_the_ladders_breach(severity, age_seconds):
    opened = NOW - timedelta(seconds=age_seconds)
    frame = frames.incidents_frame([{
        "id": 1, "severity": severity, "status": "TRIGGERED", "date": opened.isoformat(),
    }])
    window = frames.Window(*((NOW - timedelta(days=7)).isocalendar()[:2]))
    # The report looks at the week's end: the ladder asked at the same moment must agree.
    at = window.end.to_pydatetime()
    opened_at = at - timedelta(seconds=age_seconds)
    frame.loc[0, "date"] = opened_at
    breaches = kpis._sla_breaches(frame, window, sla.DEFAULT_SLA_DAYS)
    assert (len(breaches) == 1) == sla.is_breached(opened_at, at, sla.sla_days(severity))
