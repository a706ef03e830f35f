"""What a reader sees of the Markdown the app renders, and checks that stored text in it is
inert: AppTest hands back an element's Markdown source, not what the browser draws."""

from __future__ import annotations

import html
import re
from dataclasses import dataclass
from html.parser import HTMLParser

_ESCAPE = re.compile(r"\\([!-/:-@\[-`{-~])")
_WORD_JOINER = "\u2060"


def readable(source: str) -> str:
    """The text a reader sees of `source` where it is literal text made by `ui.text.md`:
    backslash escapes resolved, invisible word joiners gone."""
    return _ESCAPE.sub(r"\1", source).replace(_WORD_JOINER, "")


# Stored text that would be live markup if shown raw: colour, bold, LaTeX, a link, a bare
# URL, an e-mail autolink, a Material icon, HTML, a heading and a list marker.
EVIL_NAME = ":red[x] **y** $$t^2$$ [click](https://evil.example/p) # hi"
EVIL_TRIGGER = "1. :blue[z] __w__ $a$ www.evil.example/t :material/star: <b>b</b>"
EVIL_USER = "mal:green[lory] **[me](https://evil.example/u)** m@evil.example"
EVIL_TEXT = "![pic](https://evil.example/i.png) `c` ~~s~~ :smile: https://evil.example/x"
RAW_MARKUP = (
    "](https://evil.example",
    ":red[",
    ":blue[",
    ":green[",
    "**y**",
    "__w__",
    "$$t^2$$",
    "$a$",
    "www.evil.example",
    "m@evil.example",
    "https://evil.example",
    ":material/star:",
    ":smile:",
    "<b>",
    "~~s~~",
    "`c`",
    "~~when~~",
    "$$t$$",
)
_TAG = re.compile(r"<[^>]*>")
_BATCH_HEADER = re.compile(
    r'<div class="ls-batch"><p class="ls-batch-prompt"><strong>(.*?)</strong></p>'
    r'<p class="ls-byline">(.*?)</p>'
)
_SUMMARY = re.compile(r'<dl class="ls-summary">(.*?)</dl>')
_FIGURE = re.compile(r"<dt>(.*?)</dt><dd>(.*?)</dd>")
_CARD_TITLE = re.compile(r'<div class="ls-card-title"[^>]*>([^<]*)</div>')
_LORA_CARD = re.compile(r'<div class="ls-lora-card" data-lora="([^"]*)">')
_CARD_ACTION = re.compile(r'<(a|button) ([^>]*class="[^"]*ls-action[^"]*"[^>]*)>(.*?)</\1>')
_HREF = re.compile(r'href="([^"]*)"')
# Fields that Streamlit renders as Markdown: bodies of text elements and every label/help.
_MARKDOWN_FIELDS = frozenset({"body", "label", "help", "title"})
# Elements whose `body` is shown as plain text (a metric's label and value are Markdown).
_PLAIN_ELEMENTS = frozenset({"Text", "Code"})


def _strings(message: object, found: list[tuple[str, str, str, bool]]) -> None:
    """Every string field of a protobuf message, recursively: (type, field, value, html)."""
    html = bool(getattr(message, "allow_html", False)) or message.DESCRIPTOR.name == "Html"  # type: ignore[attr-defined]
    for field, value in message.ListFields():  # type: ignore[attr-defined]
        values = value if isinstance(value, (list, tuple)) or hasattr(value, "extend") else [value]
        for item in values:
            if isinstance(item, str):
                found.append((message.DESCRIPTOR.name, field.name, item, html))  # type: ignore[attr-defined]
            elif hasattr(item, "ListFields"):
                _strings(item, found)


def rendered_strings(at) -> list[tuple[str, str, str, bool]]:
    """(element type, field, value, is raw HTML) of every string the page sends the browser:
    main area, sidebar, dialogs."""
    found: list[tuple[str, str, str, bool]] = []

    def walk(node) -> None:
        if getattr(node, "proto", None) is not None:
            _strings(node.proto, found)
        for child in getattr(node, "children", {}).values():
            walk(child)

    walk(getattr(at, "_tree", at))  # an app, or one of its blocks (`at.sidebar`)
    return found


def html_blocks(at) -> list[str]:
    """The raw HTML the page sends, in page order: each Markdown element's source that
    allows HTML (the app's grids and cards) and each `st.html`'s body."""
    return [
        value
        for kind, field, value, is_html in rendered_strings(at)
        if is_html and field == "body" and kind in {"Markdown", "Html"}
    ]


def markdown_sources(at) -> list[str]:
    """The Markdown the browser will render (not plain text, not raw HTML)."""
    return [
        value
        for kind, field, value, is_html in rendered_strings(at)
        if field in _MARKDOWN_FIELDS and kind not in _PLAIN_ELEMENTS and not is_html
    ]


def assert_inert(at) -> None:
    """No Markdown the page renders carries stored markup raw; raw HTML has it escaped."""
    for kind, field, value, is_html in rendered_strings(at):
        if is_html:
            assert "<b>" not in value and "<b>b</b>" not in value, (kind, field, value)
            continue
        if field not in _MARKDOWN_FIELDS or kind in _PLAIN_ELEMENTS:
            continue
        for marker in RAW_MARKUP:
            assert marker not in value, f"{kind}.{field} renders {marker!r} live: {value!r}"


def text_of_html(source: str) -> str:
    """What a reader sees of raw HTML: its text, tags left out, entities resolved."""
    return html.unescape(_TAG.sub(" ", source)).replace(_WORD_JOINER, "")


def shows(at, text: str) -> bool:
    """True when a reader sees `text` literally: in rendered Markdown, in raw HTML's text,
    or in plain text."""
    plain = [
        value
        for kind, field, value, is_html in rendered_strings(at)
        if kind in _PLAIN_ELEMENTS or field in {"options", "default_value", "value"}
    ]
    raw = [text_of_html(value) for _kind, _field, value, is_html in rendered_strings(at) if is_html]
    return (
        any(text in readable(source) for source in markdown_sources(at))
        or any(text in value for value in plain)
        or any(text in value for value in raw)
    )


def gallery_titles(at) -> list[str]:
    """The LoRA names on the gallery's cards, in order (each card's heading: raw HTML)."""
    return [
        html.unescape(title).replace(_WORD_JOINER, "")
        for source in html_blocks(at)
        for title in _CARD_TITLE.findall(source)
    ]


@dataclass(frozen=True)
class CardAction:
    """A gallery card's action as a reader meets it: its name (with the part for screen
    readers), where it leads (None: a disabled button)."""

    name: str
    href: str | None


def gallery_actions(at) -> dict[str, CardAction | None]:
    """Each gallery card's action by LoRA id, in order (None: the card has none)."""
    found: dict[str, CardAction | None] = {}
    for source in html_blocks(at):
        starts = [(m.start(), m.group(1)) for m in _LORA_CARD.finditer(source)]
        ends = [start for start, _id in starts[1:]] + [len(source)] * bool(starts)
        for (start, lora_id), end in zip(starts, ends, strict=True):
            action = _CARD_ACTION.search(source, start, end)
            if action is None:
                found[html.unescape(lora_id)] = None
                continue
            href = _HREF.search(action.group(2)) if action.group(1) == "a" else None
            name = " ".join(text_of_html(action.group(3)).split())
            found[html.unescape(lora_id)] = CardAction(
                name, html.unescape(href.group(1)) if href else None
            )
    return found


def batch_headers(at) -> list[tuple[str, str]]:
    """A LoRA page's generations, in order, as a reader sees their headers: (the prompt;
    the line under it: who, when, and what kind of batch). `ui.components.generation_html`."""
    return [
        (text_of_html(prompt), text_of_html(line))
        for source in html_blocks(at)
        for prompt, line in _BATCH_HEADER.findall(source)
    ]


def summary_figures(at) -> dict[str, str]:
    """A summary's figures as a reader sees them, label to value (`ui.components.summary_html`);
    empty when the page shows none."""
    return {
        text_of_html(label).strip(): text_of_html(value).strip()
        for source in html_blocks(at)
        for summary in _SUMMARY.findall(source)
        for label, value in _FIGURE.findall(summary)
    }


def figures(at: object, css_class: str = "ls-card") -> list[str]:
    """Each image card (`<figure class="…">…</figure>`, `ui.components.image_card`) in the
    page's raw HTML (`html_blocks`), one string per card: a grid drawn as one element
    (`linked_image_grid`) holds many."""
    pattern = re.compile(rf'<figure class="{re.escape(css_class)}">.*?</figure>', re.DOTALL)
    return [card for source in html_blocks(at) for card in pattern.findall(source)]


@dataclass(frozen=True)
class Cell:
    """A table cell as a reader meets it: its text, its link (if any), its image's alt text
    (if any), its `title`, and its header's `aria-sort` (headers only)."""

    text: str
    href: str | None = None
    alt: str | None = None
    title: str | None = None
    sort: str | None = None


class _TableParser(HTMLParser):
    def __init__(self, css_class: str) -> None:
        super().__init__(convert_charrefs=True)
        self.css_class = css_class
        self.depth = 0  # >0 inside the table
        self.head: list[Cell] = []
        self.rows: list[list[Cell]] = []
        self.cell: dict[str, object] | None = None

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        found = dict(attrs)
        if tag == "table" and (self.depth or found.get("class") == self.css_class):
            self.depth += 1
        if not self.depth:
            return
        if tag == "tr":
            self.rows.append([])
        elif tag in {"td", "th"}:
            self.cell = {"tag": tag, "text": "", "sort": found.get("aria-sort")}
        elif self.cell is not None and tag == "a":
            self.cell.setdefault("href", found.get("href"))
        elif self.cell is not None and tag == "img":
            self.cell["alt"] = found.get("alt")
        if self.cell is not None and found.get("title") and "title" not in self.cell:
            self.cell["title"] = found.get("title")

    def handle_endtag(self, tag: str) -> None:
        if tag == "table" and self.depth:
            self.depth -= 1
        elif tag in {"td", "th"} and self.cell is not None:
            cell = Cell(
                text=" ".join(str(self.cell["text"]).replace(_WORD_JOINER, "").split()),
                href=self.cell.get("href"),  # type: ignore[arg-type]
                alt=self.cell.get("alt"),  # type: ignore[arg-type]
                title=self.cell.get("title"),  # type: ignore[arg-type]
                sort=self.cell.get("sort"),  # type: ignore[arg-type]
            )
            (self.head if self.cell["tag"] == "th" else self.rows[-1]).append(cell)
            self.cell = None

    def handle_data(self, data: str) -> None:
        if self.cell is not None:
            self.cell["text"] = str(self.cell["text"]) + data


def table_headers(at: object, css_class: str = "ls-table") -> list[Cell]:
    """The headers of the first `<table class=…>` in the page's Markdown (History's)."""
    return _parse_table(at, css_class).head


def table_rows(at: object, css_class: str = "ls-table") -> list[dict[str, Cell]]:
    """The rows of the first `<table class=…>` in the page's Markdown, each as its header's
    text → its cell; [] when the page drew no such table."""
    parsed = _parse_table(at, css_class)
    labels = [header.text.rstrip(" ▲▼") for header in parsed.head]
    return [dict(zip(labels, row, strict=True)) for row in parsed.rows if row]


def table_column(at: object, label: str, css_class: str = "ls-table") -> list[str]:
    """One column's text, top to bottom."""
    return [row[label].text for row in table_rows(at, css_class)]


def _parse_table(at: object, css_class: str) -> _TableParser:
    for source in html_blocks(at):
        if f'<table class="{css_class}"' in source:
            parser = _TableParser(css_class)
            parser.feed(source)
            return parser
    return _TableParser(css_class)
