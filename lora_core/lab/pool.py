"""This process's sweep cells, run a few at a time in the background (`CellPool`): a page
that starts a sweep returns at once and reads the grid back as cells finish."""

from __future__ import annotations

import threading
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor, wait

from sqlalchemy import Engine

from lora_core.data import leases
from lora_core.data.models import GenerationBatch


class CellPool:
    """This process's sweep cells, at most `workers` fal calls at once, in the background:
    a page that starts a sweep returns at once and reads the grid back as cells finish."""

    def __init__(self, *, workers: int) -> None:
        self._pool = ThreadPoolExecutor(max_workers=workers, thread_name_prefix="sweep-cell")

    def launch(
        self,
        jobs: list[Callable[[], None]],
        *,
        engine: Engine,
        holder: str,
        terms: leases.LeaseTerms,
    ) -> threading.Event:
        """Queue `jobs`, and hold the leases of every row `holder` holds (the cells, queued
        or running) until the last one ends; the event is set then."""
        futures = [self._pool.submit(job) for job in jobs]
        done = threading.Event()

        def hold_while_running() -> None:
            try:
                with leases.hold(
                    engine=engine, table=GenerationBatch, row_id=None, holder=holder, terms=terms
                ):
                    wait(futures)
            finally:
                done.set()

        threading.Thread(target=hold_while_running, name=f"sweep-{holder}", daemon=True).start()
        return done

    def close(self) -> None:
        """Stop taking cells; queued ones are left pending, for recovery to settle."""
        self._pool.shutdown(wait=False, cancel_futures=True)
