"""Quota check and reservation at 100 vs 100,000 rows, and the plans SQLite picks for them.

    .venv/bin/python benchmarks/quota.py [--repeat 200] [--backend sqlite|libsql]

Two layouts: the rows belong to the measured user ("that user": years of batches, 7 of them
in the current window, plus 4 images per succeeded batch), or to 50 other users ("others").
Times the quota check (`get_status`) and a reservation followed by its release, median of
`--repeat` calls, and prints `ratio = t(100,000) / t(100)` (goal <= 1.2). Then prints the
`EXPLAIN QUERY PLAN` of every SELECT the check issues: each must search an index, never
scan a table.
"""

from __future__ import annotations

import argparse
import contextlib
import statistics
import sys
import tempfile
import time
from collections.abc import Callable
from datetime import timedelta
from functools import partial
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from sqlalchemy import Engine  # noqa: E402

from benchmarks.seed import BACKENDS, empty_database, insert_rows  # noqa: E402
from lora_core.data.clock import to_iso, utc_now  # noqa: E402
from lora_core.data.db import DatabaseTarget, create_db_engine, session_scope  # noqa: E402
from lora_core.data.models import GeneratedImage, GenerationBatch  # noqa: E402
from lora_core.data.schema import ensure_schema  # noqa: E402
from lora_core.generation import quota  # noqa: E402
from tests.support.plans import explain_selects  # noqa: E402

USER = "measured@example.com"
POLICY = quota.QuotaPolicy(limit=8, window=timedelta(hours=24))


def seed(target: DatabaseTarget, *, rows: int, owner: str) -> Engine:
    """`rows` batches (and their images): the measured user's or 50 other users'."""
    engine = create_db_engine(target)
    ensure_schema(engine)
    now = utc_now()
    batches, images = [], []
    for number in range(rows):
        user = USER if owner == "that user" else f"other{number % 50}@example.com"
        # 7 of the measured user's batches are in the window; the rest are older, a day apart
        # at most 8 a day, as the quota allows.
        age = timedelta(hours=number + 1) if number < 7 else timedelta(days=2 + number / 8)
        status = "failed" if number % 20 == 0 else "succeeded"
        batch_id = f"b{number:07d}"
        batches.append(
            {
                "id": batch_id,
                "lora_training_id": f"lora-{number % 200:04d}",
                "wallet_address": user,
                "prompt": "a prompt",
                "status": status,
                "created_at": to_iso(now - age),
                "finished_at": to_iso(now - age + timedelta(seconds=9)),
            }
        )
        if status == "succeeded":
            images.extend(
                {
                    "id": f"{batch_id}-{index}",
                    "lora_training_id": f"lora-{number % 200:04d}",
                    "wallet_address": user,
                    "prompt": "a prompt",
                    "image_url": f"https://cdn.example/{batch_id}/{index}.jpg",
                    "created_at": to_iso(now - age),
                    "batch_id": batch_id,
                }
                for index in range(4)
            )
    with engine.begin() as connection:
        insert_rows(connection, GenerationBatch, batches)
        insert_rows(connection, GeneratedImage, images)
    return engine


def median_seconds(action: Callable[[], object], repeat: int) -> float:
    action()  # warm
    timings = []
    for _ in range(repeat):
        start = time.perf_counter()
        action()
        timings.append(time.perf_counter() - start)
    return statistics.median(timings)


def check(engine: Engine) -> None:
    with session_scope(engine) as session:
        quota.get_status(session=session, policy=POLICY, user=USER)


def reserve_and_release(engine: Engine) -> None:
    batch_id = quota.reserve(engine=engine, policy=POLICY, user=USER, lora_id="l", prompt="p")
    quota.release(engine=engine, batch_id=batch_id, error="benchmark")


def plans(engine: Engine) -> list[str]:
    return [plan for _sql, plan in explain_selects(engine, lambda _session: check(engine))]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--repeat", type=int, default=200)
    parser.add_argument("--backend", choices=BACKENDS, default="sqlite")
    args = parser.parse_args()
    print(f"backend: {args.backend}")
    print(f"{'rows of':<10} {'action':<18} {'100 ms':>8} {'100k ms':>8} {'ratio':>6}")
    shown_plans: list[str] = []
    with tempfile.TemporaryDirectory() as directory:
        for owner in ("that user", "others"):
            with contextlib.ExitStack() as stack:
                engines = {}
                for rows in (100, 100_000):
                    target = stack.enter_context(
                        empty_database(directory, f"{owner[:4]}-{rows}", backend=args.backend)
                    )
                    engines[rows] = seed(target, rows=rows, owner=owner)
                for action_name, action in (
                    ("check", check),
                    ("reserve + release", reserve_and_release),
                ):
                    small = median_seconds(partial(action, engines[100]), args.repeat)
                    large = median_seconds(partial(action, engines[100_000]), args.repeat)
                    print(
                        f"{owner:<10} {action_name:<18} {small * 1000:8.3f} "
                        f"{large * 1000:8.3f} {large / small:6.2f}"
                    )
                if not shown_plans:
                    shown_plans = plans(engines[100_000])
                for engine in engines.values():
                    engine.dispose()
    print("goal: ratio <= 1.2")
    print("query plans of the check at 100,000 rows:")
    for plan in shown_plans:
        verdict = "table scan!" if "SCAN" in plan and "USING" not in plan else "index"
        print(f"  [{verdict}] {plan}")


if __name__ == "__main__":
    main()
