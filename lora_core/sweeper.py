"""A light background sweep: one call every few seconds in a daemon thread, so that work a
dead process left (a batch whose lease lapsed) is finished by whichever replica is up,
whether or not anyone opens the page it belongs to."""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable

log = logging.getLogger(__name__)


class Sweeper:
    """Calls `work` now, then every `every_seconds` until `stop()`; a failing call is logged
    and tried again at the next beat (the database may be back by then)."""

    def __init__(self, work: Callable[[], object], *, every_seconds: float, name: str) -> None:
        self._work = work
        self._every = every_seconds
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name=name, daemon=True)

    def start(self) -> Sweeper:
        self._thread.start()
        return self

    def stop(self) -> None:
        self._stop.set()
        self._thread.join(timeout=self._every + 5)

    @property
    def running(self) -> bool:
        return self._thread.is_alive()

    def _run(self) -> None:
        while not self._stop.is_set():
            try:
                self._work()
            except Exception:
                log.exception("The recovery sweep failed; trying again in %ss", self._every)
            self._stop.wait(self._every)
