"""Many tabs clicking at the same moment: a helper for the quota race tests."""

from __future__ import annotations

import threading
from collections.abc import Callable


def race(
    count: int,
    action: Callable[[], object],
    *,
    refused: type[BaseException],
    won: str = "won",
) -> list[str]:
    """Run `action` in `count` threads released together; each outcome, sorted, is `won`,
    or "refused" where it raised `refused` (anything else fails the thread's outcome)."""
    start = threading.Barrier(count)
    outcomes: list[str] = []

    def click() -> None:
        start.wait()
        try:
            action()
            outcomes.append(won)
        except refused:
            outcomes.append("refused")

    threads = [threading.Thread(target=click) for _ in range(count)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=60)
    return sorted(outcomes)
