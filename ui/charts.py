"""History's charts as Vega-Lite specs, drawn by `st.vega_lite_chart`.

Not `st.bar_chart`: it builds an Altair chart and validates it against Vega-Lite's JSON
schema on every run, about 15 ms a chart and four charts on every render of History
(benchmarks/load.py). A spec written here is plain data, its rows already in Arrow's
format (`Chart`), so a page can build its charts once per data version and draw them on
every run without converting a DataFrame again. `st.vega_lite_chart` also takes alt text,
which says what a chart shows to someone who cannot see it.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import pandas as pd
import pyarrow as pa
import streamlit as st

HEIGHT = 280


MIN_BARS = 7  # a single day is one bar among a week's, not one bar as wide as the chart


DATASET = "rows"  # the name the specs give their rows


@dataclass(frozen=True)
class Chart:
    """A Vega-Lite spec with its rows as Arrow IPC bytes (the form Streamlit sends), and
    what it shows in words."""

    spec: dict[str, Any]
    alt: str

    def draw(self, container: Any = st) -> None:
        container.vega_lite_chart(self.spec, height=HEIGHT, width="stretch", alt=self.alt)


def with_rows(spec: dict[str, Any], frame: pd.DataFrame) -> dict[str, Any]:
    """`spec` reading `frame`'s rows, serialised once here rather than by Streamlit on
    every run."""
    table = pa.Table.from_pandas(frame, preserve_index=False)
    sink = pa.BufferOutputStream()
    with pa.RecordBatchStreamWriter(sink, table.schema) as writer:
        writer.write_table(table)
    return {**spec, "data": {"name": DATASET}, "datasets": {DATASET: sink.getvalue().to_pybytes()}}


def stacked_bars(
    frame: pd.DataFrame,
    *,
    x: str,
    y: str,
    color: str,
    alt: str,
    domain: list[str] | None = None,
) -> Chart:
    """Bars per `x` (in the order of `domain`, which may hold values without bars, else
    the frame's), stacked by `color`; labels level, thinned where they would overlap."""
    scale = {"domain": domain} if domain is not None else {}
    spec = {
        "mark": {"type": "bar", "tooltip": True},
        "encoding": {
            "x": {
                "field": x,
                "type": "ordinal",
                "title": x,
                "sort": None,
                "scale": scale,
                "axis": {"labelAngle": 0, "labelOverlap": "greedy"},
            },
            "y": {"field": y, "type": "quantitative", "title": y, "stack": "zero"},
            "color": {
                "field": color,
                "type": "nominal",
                "title": color,
                "legend": {"orient": "bottom"},
            },
        },
    }
    return Chart(with_rows(spec, frame), alt)


def ranked_bars(frame: pd.DataFrame, *, category: str, value: str, alt: str) -> Chart:
    """Horizontal bars, the largest first."""
    spec = {
        "mark": {"type": "bar", "tooltip": True},
        "encoding": {
            "y": {"field": category, "type": "nominal", "title": category, "sort": "-x"},
            "x": {"field": value, "type": "quantitative", "title": value},
        },
    }
    return Chart(with_rows(spec, frame), alt)


def day_domain(days: list[str]) -> list[str]:
    """Every day from the first to the last of `days` ("YYYY-MM-DD"), quiet days included
    (a chart of days without gaps tells the truth about them), at least `MIN_BARS` days."""
    if not days:
        return []
    moments = pd.to_datetime(pd.Series(days))
    last = moments.max()
    first = min(moments.min(), last - pd.Timedelta(days=MIN_BARS - 1))
    return [day.strftime("%Y-%m-%d") for day in pd.date_range(first, last, freq="D")]


def top_of(frame: pd.DataFrame, *, category: str, value: str, count: int = 3) -> str:
    """ "a 12, b 7, c 3": the first rows, for alt text."""
    rows = frame.sort_values(value, ascending=False).head(count)
    return ", ".join(f"{row[category]} {row[value]}" for _, row in rows.iterrows())
