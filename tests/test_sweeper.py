"""The background sweep: it repeats, survives a failing call, and stops."""

from __future__ import annotations

import time

from lora_core.sweeper import Sweeper


def test_a_failing_sweep_is_tried_again_at_the_next_beat():
    calls: list[int] = []

    def work() -> None:
        calls.append(1)
        if len(calls) == 1:
            raise RuntimeError("the database is down")

    sweeper = Sweeper(work, every_seconds=0.02, name="test-sweep").start()
    deadline = time.monotonic() + 5
    while len(calls) < 3:
        assert time.monotonic() < deadline, "the sweep stopped after a failure"
        time.sleep(0.01)
    sweeper.stop()

    assert not sweeper.running
    stopped_at = len(calls)
    time.sleep(0.1)
    assert len(calls) == stopped_at
