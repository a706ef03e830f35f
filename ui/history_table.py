"""History's table as one element of HTML, as Datasette draws one: a column's header is a
link that sorts every filtered batch by it (in SQL, not just the page shown), a row's time
is a link to that generation's details, and its LoRA and sweep are links to their pages.

Why not `st.dataframe`: its data grid is a canvas drawn by a large script of its own. On
its own it made History 1.38 x an empty page's time, against 1.5 for the whole page
(benchmarks/page_ready.py, benchmarks/README.md). A table of HTML is text a browser lays
out at once: cells select and copy as any text, a screen reader reads it as a table, and
every link is a real control (Tab, Enter, a new tab with a modifier) that the page's script
opens in place (`ui.components._PAGE_SCRIPT`).

Links are relative to the page (`?…`): each keeps the page's other parameters (the
filters are bound to the link) and changes only its own.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from html import escape
from urllib.parse import urlencode

from lora_core.generation.recipe import NO_LORA, NO_LORA_LABEL
from lora_core.history.listing import HistoryOrder, HistoryRow, SortColumn
from ui import routes
from ui.components import safe_url
from ui.text import html_text, one_line

# Rows whose preview loads at once: those on the table's first screen.
EAGER_ROWS = 10
PREVIEW_SIDE = 48
DETAILS_PARAM = "batch"
SORT_PARAM = "sort"

Query = Mapping[str, Sequence[str]]


def lora_label(row: HistoryRow) -> str:
    if row.lora_id == NO_LORA:
        return NO_LORA_LABEL
    return row.trigger_word or row.lora_id


def number(value: float | int | None) -> str:
    return "—" if value is None else f"{value:g}"


def link_to(query: Query, **changes: str | None) -> str:
    """This page's address with `changes` (None: the parameter removed), relative."""
    params = {key: list(values) for key, values in query.items()}
    for key, value in changes.items():
        params.pop(key, None)
        if value is not None:
            params[key] = [value]
    return "?" + urlencode(params, doseq=True)


def details_link(query: Query, batch_id: str) -> str:
    return link_to(query, **{DETAILS_PARAM: batch_id})


def _link(href: str, text: str, *, label: str | None = None) -> str:
    aria = f' aria-label="{escape(label)}"' if label else ""
    return f'<a class="ls-open" href="{escape(href)}" target="_self"{aria}>{text}</a>'


def _preview(row: HistoryRow, eager: bool) -> str:
    src = safe_url(row.thumbnail_url) if row.thumbnail_url else ""
    if not src:
        return ""
    alt = f"Newest image of the generation: {one_line(row.prompt)[:120]}"
    return (
        f'<img src="{src}" alt="{escape(alt)}" width="{PREVIEW_SIDE}" '
        f'height="{PREVIEW_SIDE}" loading="{"eager" if eager else "lazy"}">'
    )


def when(row: HistoryRow) -> str:
    """The row's time (UTC) as the table and its details show it."""
    return f"{row.created_at:%Y-%m-%d %H:%M}"


def _time(row: HistoryRow, query: Query) -> str:
    text = when(row)
    return _link(details_link(query, row.batch_id), text, label=f"Details of {text}")


def _lora(row: HistoryRow) -> str:
    if row.lora_id == NO_LORA:
        return html_text(NO_LORA_LABEL)
    return _link(routes.lora_url(row.lora_id), html_text(lora_label(row)))


def _prompt(row: HistoryRow) -> str:
    return f'<span title="{escape(one_line(row.prompt))}">{html_text(row.prompt)}</span>'


def _sweep(row: HistoryRow) -> str:
    return _link(routes.sweep_url(row.sweep_id), "Sweep") if row.sweep_id else ""


@dataclass(frozen=True)
class Column:
    label: str
    sort: SortColumn | None = None  # sortable by this
    css_class: str = ""


COLUMNS = [
    Column("Preview", css_class="ls-preview"),
    Column("Time (UTC)", SortColumn.TIME, "ls-nowrap"),
    Column("User", SortColumn.USER),
    Column("LoRA", SortColumn.LORA),
    Column("Prompt", css_class="ls-prompt"),
    Column("Images", SortColumn.IMAGES, "ls-number"),
    Column("Status", SortColumn.STATUS, "ls-nowrap"),
    Column("Duration", SortColumn.DURATION, "ls-number"),
    Column("Scale", SortColumn.SCALE, "ls-number"),
    Column("Stacked with"),
    Column("Steps", SortColumn.STEPS, "ls-number"),
    Column("Guidance", SortColumn.GUIDANCE, "ls-number"),
    Column("Size"),
    Column("Seed"),
    Column("Sweep"),
]


def _cells(row: HistoryRow, query: Query, *, eager: bool) -> list[str]:
    """The row's cells, in `COLUMNS`' order."""
    duration = row.duration_seconds
    return [
        _preview(row, eager),
        _time(row, query),
        html_text(row.user),
        _lora(row),
        _prompt(row),
        f"{row.images_shown:,}",
        html_text(row.status.value),
        "—" if duration is None else f"{duration:.1f} s",
        number(row.lora_scale),
        html_text(row.stacked_with),
        number(row.steps),
        number(row.guidance),
        html_text(row.image_size),
        html_text(row.seed or "—"),
        _sweep(row),
    ]


_DIRECTION_WORDS = {
    True: ("descending", "▼", "largest or newest first"),
    False: ("ascending", "▲", "smallest, oldest or A first"),
}


def _header(column: Column, order: HistoryOrder, query: Query) -> str:
    classes = f' class="{column.css_class}"' if column.css_class else ""
    if column.sort is None:
        return f'<th scope="col"{classes}>{column.label}</th>'
    sorted_here = column.sort == order.column
    aria = f' aria-sort="{_DIRECTION_WORDS[order.descending][0]}"' if sorted_here else ""
    arrow = f' <span aria-hidden="true">{_DIRECTION_WORDS[order.descending][1]}</span>'
    after = order.on_click(column.sort)
    href = link_to(query, **{SORT_PARAM: after.as_param(), DETAILS_PARAM: None})
    title = f"Sort by {column.label.lower()}, {_DIRECTION_WORDS[after.descending][2]}"
    link = (
        f'<a class="ls-open" href="{escape(href)}" target="_self" title="{escape(title)}">'
        f"{column.label}{arrow if sorted_here else ''}</a>"
    )
    return f'<th scope="col"{classes}{aria}>{link}</th>'


def _row(row: HistoryRow, query: Query, *, eager: bool) -> str:
    cells = "".join(
        f'<td class="{column.css_class}">{content}</td>'
        if column.css_class
        else f"<td>{content}</td>"
        for column, content in zip(COLUMNS, _cells(row, query, eager=eager), strict=True)
    )
    return f"<tr>{cells}</tr>"


def table_html(rows: Sequence[HistoryRow], *, order: HistoryOrder, query: Query) -> str:
    """The page's rows as one `<table>` in a region that scrolls (both ways, its header
    staying on top), reachable by keyboard. Stored text is escaped here."""
    direction = _DIRECTION_WORDS[order.descending][2]
    name = next(c.label for c in COLUMNS if c.sort == order.column).lower()
    head = "".join(_header(column, order, query) for column in COLUMNS)
    body = "".join(_row(row, query, eager=index < EAGER_ROWS) for index, row in enumerate(rows))
    return (
        f'<div class="ls-table-wrap" role="region" tabindex="0" '
        f'aria-label="Generations, by {name}, {direction}">'
        f'<table class="ls-table"><thead><tr>{head}</tr></thead><tbody>{body}</tbody></table>'
        "</div>"
    )
