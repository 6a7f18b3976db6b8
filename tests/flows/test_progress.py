"""Progress of long steps: the rules (every 10%, every 5 s, a listing's pages), and a real
command-line run over a sandbox whose listings take several pages, showing its lines."""
from __future__ import annotations

import logging
import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

from tasks import progress
from tasks.progress import Progress, paged

ROOT = Path(__file__).resolve().parents[2]


class Clock:
    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        return self.now


def _lines(make) -> list[str]:
    seen: list[str] = []
    with progress.listen(lambda event: seen.append(event.text)):
        make()
    return seen


def test_a_known_total_reports_every_tenth_and_its_end():
    clock = Clock()

    def run() -> None:
        steps = Progress("writes", unit="decisions", clock=clock,
                         logger=logging.getLogger("test"))
        for done in range(1, 401):
            clock.now += 0.001
            steps.update(done, 400)
        steps.finish()

    lines = _lines(run)
    assert lines == [f"writes: {n:,} of 400 decisions ({n // 4}%)" for n in range(40, 401, 40)]


def test_a_slow_step_reports_at_least_every_five_seconds():
    clock = Clock()

    def run() -> None:
        steps = Progress("writes", total=1000, unit="decisions", clock=clock,
                         logger=logging.getLogger("test"))
        for done in range(1, 60):  # 6% in 59 s: no tenth reached, a line every 5 s
            clock.now += 1.0
            steps.update(done)

    lines = _lines(run)
    assert len(lines) == 11 and lines[0] == "writes: 5 of 1,000 decisions (0%)"


def test_a_listing_says_its_pages_and_a_short_one_stays_quiet():
    assert _lines(lambda: list(paged([[1, 2]], "members", "members"))) == []
    lines = _lines(lambda: list(paged([[1] * 100, [1] * 100, [1] * 7], "incidents",
                                      "incidents")))
    assert len(lines) == 1
    assert re.fullmatch(r"incidents: 207 incidents read in 3 pages, \d+\.\d s", lines[0])


def test_few_items_give_no_line_per_item():
    clock = Clock()
    lines = _lines(lambda: [Progress("x", total=3, clock=clock).update(n) for n in (1, 2, 3)])
    assert lines == []


@pytest.mark.prefect
@pytest.mark.slow
def test_a_run_of_several_pages_shows_progress_lines_on_the_command_line(prefect_server, tmp_path):
    """A real auto-ignore run (--apply) on a 1,500-incident sandbox: its listings take several
    pages and its plan dozens of writes; stderr (not a terminal) shows plain lines."""
    from prefect.settings import PREFECT_API_URL

    import sandbox

    with sandbox.running(seed=11, incidents=1500) as box:
        env = {k: v for k, v in os.environ.items()
               if not k.startswith(("PREFECT_", "GITGUARDIAN_", "LDAP_", "LEDGER_"))}
        env.update(PREFECT_API_URL=str(PREFECT_API_URL.value()),
                   PREFECT_HOME=str(tmp_path / "prefect-home"), DO_NOT_TRACK="1",
                   GITGUARDIAN_API_URL=box.url, GITGUARDIAN_API_KEY=box.token,
                   GITGUARDIAN_REQUESTS_PER_MINUTE="0",
                   LEDGER_URL=f"sqlite:///{tmp_path / 'ledger.sqlite'}")
        done = subprocess.run([sys.executable, "-m", "flows.auto_ignore", "--apply",
                               "--max-actions", "5000"], cwd=ROOT, env=env,
                              capture_output=True, text=True, timeout=600)
    assert done.returncode == 0, done.stdout[-2000:] + done.stderr[-4000:]
    lines = done.stderr.splitlines()
    listings = [line for line in lines
                if re.search(r"occurrences \(status=\w+, validity=\w+\): [\d,]+ occurrences "
                             r"read in \d+ pages, \d+\.\d s$", line)]
    assert listings, done.stderr[-4000:]
    writes = [line for line in lines
              if re.search(r"writes: [\d,]+ of [\d,]+ decisions \(\d+%\)$", line)]
    assert len(writes) >= 5, done.stderr[-4000:]
    assert writes[-1].endswith("(100%)")
    # Plain lines (a time, then the text), each once: Prefect's console does not repeat them.
    assert all(re.match(r"\d\d:\d\d:\d\d writes: ", line) for line in writes)
    assert len(writes) == len(set(writes))
