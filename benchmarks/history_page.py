"""History page render time at 1,000 vs 100,000 images: prints each median and the ratio.

    .venv/bin/python benchmarks/history_page.py [--repeat 7]

Goal (issue "History page for analysts"): ratio <= 1.5. Each render is an AppTest run of
the page with no filter (the heaviest view: its summary over every batch), as a
returning visitor or a rerun sees it ("warm": the overview is cached per filter and data
version) and as the first view of a filter after the data changed ("cold": every query of
the page as it opens runs; the charts' data waits for the charts to be unfolded).
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

from benchmarks.seed import seeded_engine, temporary_url  # noqa: E402


def render_seconds(database_url: str, repeat: int, *, cold: bool) -> float:
    import streamlit as st
    from streamlit.testing.v1 import AppTest

    os.environ["DATABASE_URL"] = database_url
    st.cache_resource.clear()
    st.cache_data.clear()
    timings = []
    for _ in range(repeat + 1):  # the first run warms imports and the engine cache
        at = AppTest.from_file(str(ROOT / "router.py"), default_timeout=120)
        at.run()
        if cold:
            st.cache_data.clear()
        start = time.perf_counter()
        at.switch_page("app_pages/history.py").run()
        timings.append(time.perf_counter() - start)
        if at.exception:
            raise RuntimeError(at.exception[0].message)
    return statistics.median(timings[1:])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--repeat", type=int, default=7)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as directory:
        results: dict[tuple[str, int], float] = {}
        for images in (1_000, 100_000):
            url = temporary_url(directory, f"history-{images}")
            seeded_engine(url, images=images).dispose()
            for mode in ("warm", "cold"):
                seconds = render_seconds(url, args.repeat, cold=mode == "cold")
                results[mode, images] = seconds
                print(f"history page, {mode}, {images:>7,} images: {seconds * 1000:7.1f} ms")
    for mode in ("warm", "cold"):
        ratio = results[mode, 100_000] / results[mode, 1_000]
        print(f"{mode}: ratio = t(100k) / t(1k) = {ratio:.2f}  (goal <= 1.5)")


if __name__ == "__main__":
    main()
