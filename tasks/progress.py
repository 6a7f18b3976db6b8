"""Progress of long steps: "n of N" lines at INFO, at least every 5 s or every 10%.

    progress = Progress("writes", total=len(plan), unit="decisions", logger=logger)
    for done, decision in enumerate(plan, 1):
        ...
        progress.update(done)
    progress.finish()

With a known total, a line is logged each time another 10% is done (for 10 items or more),
and after 5 s without a line (`writes: 40 of 400 decisions (10%)`). A listing read page by
page has no total (the GitGuardian API gives none): a line every 5 s while it runs, then one
for the whole listing when it took more than one page
(`incidents (status=ASSIGNED): 1,012 incidents read in 11 pages, 2.3 s`).

Each line is logged at INFO on the run's logger (the Prefect UI shows it) with the record
attribute `progress` set, and handed to the listeners registered with `listen` (the command
line draws a bar on a terminal, plain lines otherwise). Thread-safe: the write path's threads
report into one Progress. Plain Python, no Prefect.
"""
from __future__ import annotations

import contextlib
import logging
import threading
import time
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass
from itertools import count
from typing import Any

EVERY_SECONDS = 5.0
EVERY_FRACTION = 0.1

_listeners: list[Callable[[Event], None]] = []
_ids = count(1)


@dataclass(frozen=True)
class Event:
    key: int  # one per Progress
    what: str
    done: int
    total: int | None
    unit: str
    text: str
    final: bool


@contextlib.contextmanager
def listen(callback: Callable[[Event], None]) -> Iterator[None]:
    """Call `callback` with every progress line of this process while the block runs."""
    _listeners.append(callback)
    try:
        yield
    finally:
        _listeners.remove(callback)


def default_logger() -> Any:
    """The run's logger inside a flow or task run, else `playbooks.progress`."""
    try:
        from tasks.runtime import get_run_logger

        return get_run_logger()
    except Exception:  # noqa: BLE001 - no run context: a plain logger
        return logging.getLogger("playbooks.progress")


class Progress:
    def __init__(self, what: str, total: int | None = None, *, unit: str = "",
                 logger: Any = None, every: float = EVERY_SECONDS,
                 fraction: float = EVERY_FRACTION, clock: Callable[[], float] = time.monotonic):
        self.what, self.total, self.unit = what, total, unit
        self.logger = logger if logger is not None else default_logger()
        self.every, self.fraction, self.clock = every, fraction, clock
        self.key = next(_ids)
        self.done = 0
        self.pages = 0
        self.started = self.last = clock()
        self._bucket = 0
        self._lines = 0
        self._finished = False
        self._lock = threading.Lock()

    def update(self, done: int, total: int | None = None) -> None:
        """`done` so far (of `total`, when it is known now)."""
        with self._lock:
            if total is not None:
                self.total = total
            self.done = done
            now = self.clock()
            if self.total:
                # Steps of 10% for 10 items or more (fewer: a line per item would be noise).
                parts = round(1 / self.fraction) if self.fraction else 0
                steps = parts and self.total >= parts
                bucket = done * parts // self.total if steps else 0
                slow = now - self.last >= self.every
                if bucket > self._bucket or slow or (done >= self.total and (steps or self._lines)):
                    self._bucket = bucket
                    self._emit(now, final=done >= self.total)
            elif now - self.last >= self.every:
                self._emit(now, final=False)

    def add(self, n: int = 1) -> None:
        with self._lock:
            done = self.done + n
        self.update(done)

    def page(self, items: int) -> None:
        """One more page of a listing, holding `items`."""
        with self._lock:
            self.pages += 1
            done = self.done + items
        self.update(done)

    def finish(self) -> None:
        """The last line: the total reached, or a listing's size when it took several pages or
        longer than the interval. Once."""
        with self._lock:
            if self._finished:
                return
            now = self.clock()
            if self.total:
                if self.done < self.total or not self._lines:
                    if self._lines or now - self.started >= self.every:
                        self._emit(now, final=True)
                self._finished = True
                return
            if self.pages > 1 or self._lines or now - self.started >= self.every:
                self._emit(now, final=True)
            self._finished = True

    def _text(self, now: float, final: bool) -> str:
        unit = f" {self.unit}" if self.unit else ""
        if self.total:
            share = int(100 * self.done / self.total)
            return f"{self.what}: {self.done:,} of {self.total:,}{unit} ({share}%)"
        pages = f" in {self.pages:,} page{'s' if self.pages != 1 else ''}" if self.pages else ""
        if final:
            return f"{self.what}: {self.done:,}{unit} read{pages}, {now - self.started:.1f} s"
        return f"{self.what}: {self.done:,}{unit} so far{pages}"

    def _emit(self, now: float, *, final: bool) -> None:
        self.last = now
        self._lines += 1
        if final:
            self._finished = True
        text = self._text(now, final)
        event = Event(self.key, self.what, self.done, self.total, self.unit, text, final)
        try:
            self.logger.info(text, extra={"progress": event})
        except Exception:  # noqa: BLE001 - a progress line never stops the work
            pass
        for listener in list(_listeners):
            try:
                listener(event)
            except Exception:  # noqa: BLE001
                pass


def paged(pages: Iterable[list[Any]], what: str, unit: str = "",
          logger: Any = None) -> Iterator[list[Any]]:
    """Pass a listing's pages through, reporting them (see the module's text)."""
    progress = Progress(what, unit=unit, logger=logger)
    for page in pages:
        progress.page(len(page))
        yield page
    progress.finish()
