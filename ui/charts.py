"""History's charts as Vega-Lite specs, drawn by `st.vega_lite_chart`.

Not `st.bar_chart`: it builds an Altair chart and validates it against Vega-Lite's JSON
schema on every run, about 15 ms a chart and four charts on every render of History
(benchmarks/load.py). A spec written here is plain data, its rows already in Arrow's
format (`Chart`), so a page can build its charts once per data version and draw them on
every run without converting a DataFrame again. `st.vega_lite_chart` also takes alt text,
which says what a chart shows to someone who cannot see it.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import pandas as pd
import pyarrow as pa
import streamlit as st

from lora_core.history import analytics, usage

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


def money(megapixels: float, price: float) -> str:
    """What fal billed for `megapixels` at `price` per megapixel (an estimate)."""
    return f"${usage.estimated_spend(megapixels, price_per_megapixel=price):,.2f}"


def history_charts(overview: analytics.Overview, price: float) -> list[Chart]:
    """The six charts of the tabs, in their order, with their alt text."""
    per_day = overview.per_day.assign(day=overview.per_day["day"].dt.strftime("%Y-%m-%d"))
    days = per_day.groupby("day", sort=False)["batches"].sum()
    built = [
        stacked_bars(
            per_day,
            x="day",
            y="batches",
            color="lora",
            domain=day_domain(list(days.index)),
            alt=f"Batches per day, stacked by LoRA, over {len(days)} days; "
            f"at most {days.max() if len(days) else 0} in a day.",
        )
    ]
    for frame, category, value, what in (
        (overview.top_loras, "lora", "batches", "LoRAs by batches"),
        (overview.top_users, "user", "batches", "Users by batches"),
        (overview.words, "word", "count", "Prompt words by count"),
    ):
        top = top_of(frame, category=category, value=value)
        built.append(
            ranked_bars(
                frame,
                category=category,
                value=value,
                alt=f"{what}, the most first: {top or 'none yet'}.",
            )
        )
    for frame, what in ((overview.spend_by_user, "user"), (overview.spend_by_lora, "LoRA")):
        spent = frame["megapixels"].map(
            lambda megapixels: usage.estimated_spend(megapixels, price_per_megapixel=price)
        )
        dollars = frame.assign(dollars=spent.round(4))
        built.append(
            stacked_bars(
                dollars,
                x="day",
                y="dollars",
                color="who",
                domain=day_domain(sorted(set(dollars["day"]))),
                alt=f"Estimated spend per day by {what}, in US dollars, "
                f"{money(float(frame['megapixels'].sum()), price)} in all.",
            )
        )
    return built


def show_history_charts(build: Callable[[], list[Chart]], price: float) -> None:
    """History's six charts in tabs, with what each is estimated from, folded under
    "Charts" (the table first): built (`build`) and drawn once unfolded, which the page
    remembers."""
    # A Vega chart is the most a browser draws of History (its code, then the chart: the
    # page took 0.84 of the time without it, benchmarks/page_ready.py); unfolding reruns.
    box = st.expander(
        "Charts: batches per day, top LoRAs and users, prompt words, spend",
        icon=":material/bar_chart:", key="history_charts", on_change="rerun",
    )  # fmt: skip
    if box.open:
        with box:
            _chart_tabs(build(), price)


def _chart_tabs(built: list[Chart], price: float) -> None:
    # Only the open tab's chart is drawn (a browser draws each Vega chart it is sent, seen
    # or not); choosing another tab reruns the page and draws that one.
    tabs = st.tabs(
        ["Batches per day", "Top LoRAs", "Top users", "Prompt words", "Spend by user",
         "Spend by LoRA"], key="history_chart_tab", on_change="rerun",
    )  # fmt: skip
    for number, (tab, chart) in enumerate(zip(tabs, built, strict=True)):
        if not tab.open:
            continue
        chart.draw(tab)
        if number == 3:
            tab.caption(f"The most frequent words of the latest {analytics.WORD_SAMPLE:,} prompts.")
        if number >= 4:
            tab.caption(
                f"Estimated at ${price:g} per output megapixel (fal's price for flux-lora; "
                "the FAL_PRICE_PER_MEGAPIXEL setting)."
            )
