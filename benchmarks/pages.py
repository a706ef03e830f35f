"""Page renders at 1,000 vs 100,000 images, and SQL statements per render.

    .venv/bin/python benchmarks/pages.py [--repeat 5]

For the gallery, the busiest LoRA's page and the history page, with the images on one LoRA
and spread over 200 LoRAs: the median AppTest render time, `ratio = t(100k) / t(1k)`
(goal <= 1.3) and the number of SQL statements the render issued (goal <= 6, the same at
every size: no N+1 queries). Sidebar queries (quota) are included.
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from sqlalchemy import Engine, event  # noqa: E402

from benchmarks.seed import seeded_engine, temporary_url  # noqa: E402

PAGES = {
    "gallery": ("app_pages/gallery.py", {}),
    "lora page": ("app_pages/lora.py", {"id": "lora-0000"}),
    "history": ("app_pages/history.py", {}),
}
statements: list[str] = []


def count_statement(_conn, _cursor, statement, _parameters, _context, _many) -> None:  # noqa: ANN001
    statements.append(statement)


def measure(database_url: str, page: str, query: dict[str, str], repeat: int) -> tuple[float, int]:
    import streamlit as st
    from streamlit.testing.v1 import AppTest

    os.environ["DATABASE_URL"] = database_url
    st.cache_resource.clear()
    st.cache_data.clear()
    timings, counts = [], []
    for _ in range(repeat + 1):  # the first run warms imports and the engine cache
        at = AppTest.from_file(str(ROOT / "streamlit_app.py"), default_timeout=120)
        at.run()
        for name, value in query.items():
            at.query_params[name] = value
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
    args = parser.parse_args()
    event.listen(Engine, "before_cursor_execute", count_statement)
    print(f"{'page':<10} {'images on':<10} {'1k ms':>8} {'100k ms':>8} {'ratio':>6} {'SQL':>8}")
    with tempfile.TemporaryDirectory() as directory:
        for layout, one_lora in (("one LoRA", True), ("200 LoRAs", False)):
            urls = {}
            for images in (1_000, 100_000):
                urls[images] = temporary_url(directory, f"{layout[:3]}-{images}")
                seeded_engine(urls[images], images=images, one_lora=one_lora).dispose()
            for name, (page, query) in PAGES.items():
                small, small_sql = measure(urls[1_000], page, query, args.repeat)
                large, large_sql = measure(urls[100_000], page, query, args.repeat)
                print(
                    f"{name:<10} {layout:<10} {small * 1000:8.1f} {large * 1000:8.1f} "
                    f"{large / small:6.2f} {small_sql:>3}/{large_sql:<3}"
                )
    print("goals: ratio <= 1.3; SQL statements per render <= 6 and equal at both sizes")


if __name__ == "__main__":
    main()
