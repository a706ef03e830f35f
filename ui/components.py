"""Small rendering helpers shared by the pages and the Generate dialog."""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping, Sequence
from html import escape
from urllib.parse import quote, urlsplit

import streamlit as st

from lora_core import thumbnails
from lora_core.data.clock import parse_iso
from lora_core.data.models import GeneratedImage, LoraStatus, LoraTraining
from lora_core.gallery import queries
from ui import context, routes
from ui.picking import box_key as picking_box
from ui.picking import picked, toggle
from ui.text import badge_label, html_text, md, one_line

THUMBNAIL_SIDE = thumbnails.LONG_SIDE
# Grids drop to fewer columns below this cell width: two columns on a 390 px phone.
GRID_MIN_COLUMN_PX = 140

_CSS = """
<style>
.ls-card { margin: 0 0 0.75rem 0; }
.ls-card img { width: 100%; height: auto; aspect-ratio: 1 / 1; object-fit: cover;
  border-radius: 0.5rem; display: block; background: #1f2430; }
.ls-card a:hover img { outline: 3px solid #6a48f5; }
.ls-card .ls-caption { font-size: 0.85rem; margin-top: 0.35rem; line-height: 1.3;
  overflow: hidden; display: -webkit-box; -webkit-line-clamp: 2; -webkit-box-orient: vertical; }
.ls-card .ls-meta { font-size: 0.75rem; opacity: 0.65; }
/* Cards whose whole surface is their one action (Bootstrap's "stretched link"): the
   button's or link's ::after covers the card; other controls sit above it. */
[class*="st-key-card_"], .ls-lora-card { position: relative; }
[class*="st-key-card_"] [class*="st-key-open_"],
[class*="st-key-card_"] [class*="st-key-open_"] * { position: static !important; }
[class*="st-key-card_"] [class*="st-key-open_"] button::after, .ls-lora-card a.ls-card-link::after {
  content: ""; position: absolute; inset: 0; z-index: 1; border-radius: 0.5rem; }
[class*="st-key-card_"]:hover img, .ls-lora-card:hover img { outline: 3px solid #6a48f5; }
[class*="st-key-card_"]:focus-within, .ls-lora-card:focus-within {
  outline: 3px solid #6a48f5; outline-offset: 2px; border-radius: 0.5rem; }
.ls-lora-card a.ls-card-link:focus-visible { outline: none; }
[class*="st-key-card_"] [data-testid="stCheckbox"] { position: relative; z-index: 2; }
/* The gallery's cards, all in one element (`lora_grid_html`): four across, fewer below
   --ls-min each (two on a phone), each boxed as st.grid's bordered cells are. */
.ls-lora-grid { display: grid; gap: 1rem; margin-bottom: 1rem; grid-template-columns:
  repeat(auto-fill, minmax(max(var(--ls-min), calc((100% - 3rem) / 4)), 1fr)); }
.ls-lora-card { display: flex; flex-direction: column; padding: calc(1rem - 1px);
  border: 1px solid rgba(49, 51, 63, 0.2); border-radius: 0.5rem; }
.ls-lora-card .ls-card-meta { flex: 1; }
.ls-lora-card .ls-badge { align-self: flex-start; }
/* A card's action, drawn as Streamlit's secondary button, above the card's link. */
.ls-lora-card .ls-action { position: relative; z-index: 2; display: flex; gap: 0.5rem;
  align-items: center; justify-content: center; min-height: 2.5rem; padding: 0.25rem 0.75rem;
  border: 1px solid rgba(49, 51, 63, 0.2); border-radius: 0.5rem; background: #ffffff;
  color: #31333f; font: inherit; text-decoration: none; line-height: 1.6; }
.ls-lora-card a.ls-action:hover { border-color: #6a48f5; color: #6a48f5; }
.ls-lora-card a.ls-action:focus-visible { outline: 3px solid #6a48f5; outline-offset: 2px; }
.ls-lora-card .ls-action:disabled { color: #8a8c96; cursor: not-allowed; }
/* Material Symbols' "auto_awesome" (Apache 2.0), the icon of Streamlit's Generate buttons:
   drawn by the style, since st.html keeps no SVG. */
.ls-icon-sparkles { width: 1.1rem; height: 1.1rem; flex: none; background: currentColor;
  --ls-sparkles: url("data:image/svg+xml,%3Csvg xmlns='http://www.w3.org/2000/svg' viewBox='0 0 24 \
24'%3E%3Cpath d='M19 9l1.25-2.75L23 5l-2.75-1.25L19 1l-1.25 2.75L15 5l2.75 1.25L19 9zm-7.5.5\
L9 4 6.5 9.5 1 12l5.5 2.5L9 20l2.5-5.5L18 12l-5.5-2.5zM19 15l-1.25 2.75L15 19l2.75 1.25L19 \
23l1.25-2.75L23 19l-2.75-1.25L19 15z'/%3E%3C/svg%3E")
  center / contain no-repeat;
  mask: var(--ls-sparkles); -webkit-mask: var(--ls-sparkles); }
/* Text for screen readers only (a card's link: the card is what sighted users click). */
.ls-sr-only { position: absolute !important; width: 1px; height: 1px; overflow: hidden;
  clip-path: inset(50%); white-space: nowrap; }
/* On a phone the menu hides behind Streamlit's "»" button: say what it is. */
[data-testid="stExpandSidebarButton"]::after { content: "Menu"; font-size: 0.95rem;
  margin-left: 0.25rem; color: #0f0c1a; }
.ls-card-title { font-size: 1.25rem; font-weight: 600; line-height: 1.3; margin: 0.25rem 0;
  overflow-wrap: anywhere; }
.ls-badge { display: inline-block; font-size: 0.8rem; font-weight: 500; padding: 0 0.4rem;
  border-radius: 0.25rem; margin: 0 0 0.35rem 0; }
.ls-badge-green { color: #125c27; background: #e3f4e8; }
.ls-badge-orange { color: #7a3d00; background: #fdf0dc; }
.ls-badge-red { color: #9b1c1c; background: #fde8e8; }
.ls-card-meta { font-size: 0.875rem; color: #5c5f6b; line-height: 1.4; margin-bottom: 1rem; }
.ls-large img { aspect-ratio: auto; object-fit: contain; max-height: 75vh; background: none; }
.ls-thumb-empty { width: 100%; aspect-ratio: 1 / 1; border-radius: 0.5rem; display: flex;
  align-items: center; justify-content: center; background: #ece9f7; color: #6b6585;
  font-size: 0.85rem; margin: 0 0 0.75rem 0; }
/* A grid drawn as one element (`linked_image_grid`): up to --ls-columns columns, fewer
   below GRID_MIN_COLUMN_PX each (two on a phone), as st.grid does. */
.ls-grid { display: grid; column-gap: 0.5rem; grid-template-columns: repeat(auto-fill,
  minmax(max(140px, calc((100% - (var(--ls-columns) - 1) * 0.5rem) / var(--ls-columns))), 1fr)); }
a.ls-open { display: block; border-radius: 0.5rem; }
a.ls-open:focus-visible { outline: 3px solid #6a48f5; outline-offset: 2px; }
/* History's table (`ui.history_table`): it scrolls inside its box, its header on top. */
.ls-table-wrap { max-height: 34rem; overflow: auto; border: 1px solid rgba(49, 51, 63, 0.2);
  border-radius: 0.5rem; margin-bottom: 0.5rem; }
.ls-table-wrap:focus-visible { outline: 3px solid #6a48f5; outline-offset: 2px; }
.ls-table { border-collapse: separate; border-spacing: 0; font-size: 0.875rem; width: 100%;
  margin: 0; border: none; }
.ls-table th, .ls-table td { padding: 0.3rem 0.6rem; text-align: left; vertical-align: middle;
  border: none; border-bottom: 1px solid rgba(49, 51, 63, 0.1); white-space: nowrap; }
.ls-table th { position: sticky; top: 0; z-index: 1; background: #f4f2fb; font-weight: 600; }
.ls-table td.ls-prompt { white-space: normal; min-width: 16rem; max-width: 28rem; }
.ls-table td.ls-prompt span { display: -webkit-box; -webkit-line-clamp: 2;
  -webkit-box-orient: vertical; overflow: hidden; overflow-wrap: anywhere; }
.ls-table .ls-number { text-align: right; font-variant-numeric: tabular-nums; }
.ls-table td.ls-preview { padding: 0.15rem 0.4rem; }
.ls-table img { width: 48px; height: 48px; object-fit: cover; border-radius: 0.25rem;
  display: block; background: #ece9f7; }
.ls-table a.ls-open { display: inline; border-radius: 0.25rem; }
.ls-table th a.ls-open { color: inherit; text-decoration: none; }
.ls-table th a.ls-open:hover { text-decoration: underline; }
.ls-table tbody tr:hover { background: #f8f7fd; }
/* A LoRA page's generations (`generation_html`, all in one element; each in a container of
   Streamlit's while images are picked): a line between two, and under each prompt who
   made it and when, as a caption. */
.ls-batch + .ls-batch,
:has(> [class*="st-key-batch_"]) ~ :has(> [class*="st-key-batch_"]) > [class*="st-key-batch_"] {
  border-top: 1px solid rgba(49, 51, 63, 0.2); padding-top: 1rem; }
.ls-batch p.ls-byline { font-size: 0.875rem; color: #5c5f6b; margin-top: -0.5rem; }
.ls-batch a.ls-sweep-link { display: inline; }
/* A row of figures (`summary_html`, History's summary), as st.metric draws each. */
.ls-summary { display: flex; flex-wrap: wrap; column-gap: 1.75rem; row-gap: 0.5rem;
  margin: 0 0 0.5rem 0; }
.stHtml .ls-summary { padding: 0; }  /* st.html indents lists, definition lists too */
.ls-summary dt { font-size: 0.875rem; font-weight: 400; }
.ls-summary dd { font-size: 2.25rem; line-height: 1.4; margin: 0; }
/* A sweep's grid (`ui.lab.grid.grid_html`): the whole grid on one screen, its cells side
   by side at any width; a row's label above its row. */
.ls-sweep { display: grid; column-gap: 0.75rem;
  grid-template-columns: repeat(var(--ls-columns), minmax(0, 190px)); }
.ls-sweep .ls-sweep-row { grid-column: 1 / -1; margin: 0.25rem 0 0.5rem 0; }
.ls-sweep .ls-card .ls-caption { font-size: 0.75rem; }
.ls-sweep .ls-thumb-empty { margin: 0; text-align: center; padding: 0.25rem; font-size: 0.8rem;
  overflow-wrap: anywhere; }
.ls-sweep .ls-cell-failed { background: #fde8e8; color: #9b1c1c; }
</style>
"""

_UNSAFE_IN_URL = re.compile(r"[\x00-\x20\x7f\s]")
FLAGGED_TEXT = "Hidden: flagged by fal's safety checker"
STATUS_COLORS = {LoraStatus.COMPLETED: "green", LoraStatus.PENDING: "orange"}


def status_badge(status: str) -> None:
    """A LoRA's status as a coloured badge (the original app may store any text there)."""
    st.badge(badge_label(status.capitalize()), color=STATUS_COLORS.get(status, "red"))


def status_badge_html(status: str) -> str:
    """The same badge as raw HTML, for a card drawn as one element (`lora_card`)."""
    color = STATUS_COLORS.get(status, "red")
    return f'<span class="ls-badge ls-badge-{color}">{html_text(status.capitalize())}</span>'


def lora_card(
    *, title: str, status: str, meta: str, picture: str, link: str, action: str = "", lora_id: str
) -> str:
    """A gallery card: its picture, title, status, one line of facts, its link (`link`,
    stretched over the card by the CSS, named "Open <title>" for screen readers) and its
    `action` (`card_action`'s HTML), boxed, as raw HTML: the gallery draws all its cards
    as one element (`lora_grid_html`), for each element is a message from the script's
    thread and a part the browser draws (benchmarks/page_ready.py, server_cost.py). The
    title is a level-3 heading to screen readers. Stored text is escaped here; `picture`
    is `image_card`'s or `empty_thumbnail`'s HTML."""
    return (
        f'<div class="ls-lora-card" data-lora="{escape(lora_id)}">{picture}'
        f'<div class="ls-card-title" role="heading" aria-level="3">{html_text(title)}</div>'
        f"{status_badge_html(status)}"
        f'<div class="ls-card-meta">{html_text(meta)}</div>'
        f'<a class="ls-open ls-card-link" href="{escape(link)}" target="_self">'
        f'<span class="ls-sr-only">Open {html_text(title)}</span></a>{action}</div>'
    )


_SPARKLES = '<span class="ls-icon-sparkles" aria-hidden="true"></span>'  # `.ls-icon-sparkles`


def card_action(*, label: str, title: str, link: str | None, icon: bool = True) -> str:
    """A card's action as raw HTML: a link drawn as a button (`link`, opened in place by
    `_PAGE_SCRIPT`), or a disabled button when there is none. Its name for a screen reader
    ends with the card's `title` (one "Generate" of many is not enough)."""
    inner = (
        f"{_SPARKLES if icon else ''}<span>{html_text(label)}"
        f'<span class="ls-sr-only"> with {html_text(title)}</span></span>'
    )
    if link is None:
        return f'<button type="button" class="ls-action" disabled>{inner}</button>'
    return f'<a class="ls-open ls-action" href="{escape(link)}" target="_self">{inner}</a>'


def lora_grid_html(cards: Sequence[str], *, min_px: int) -> str:
    """The gallery's `lora_card`s as one grid: four across, fewer below `min_px` each."""
    return f'<div class="ls-lora-grid" style="--ls-min: {int(min_px)}px">{"".join(cards)}</div>'


# Our own constant script, added once per browser tab (`inject_css`):
# - `ui.text.md` puts an invisible WORD JOINER after ":" and "@" in stored text so that
#   Streamlit's Markdown cannot turn it into a link or an icon. Text copied from the page
#   leaves them out, so that what is pasted (into History's filters, an email) is exactly
#   what is stored.
# - A grid's image is a link to its details (`linked_image_grid`): a plain click opens them
#   in place, as Streamlit's own back and forward buttons do (the address changes, the page
#   reruns with it, no reload); a click with a modifier (a new tab, a new window) and a
#   browser without this script follow the link as any link.
_PAGE_SCRIPT = """<script>
(() => {
  if (window.loraStudioPageScript) return;
  window.loraStudioPageScript = true;
  document.addEventListener("copy", (event) => {
    const text = String(window.getSelection() || "");
    if (!text.includes("\u2060") || !event.clipboardData) return;
    event.clipboardData.setData("text/plain", text.replaceAll("\u2060", ""));
    event.preventDefault();
  });
  document.addEventListener("click", (event) => {
    const link = event.target instanceof Element && event.target.closest("a.ls-open");
    if (!link || event.defaultPrevented || event.button !== 0) return;
    if (event.metaKey || event.ctrlKey || event.shiftKey || event.altKey) return;
    const target = new URL(link.href, window.location.href);
    if (target.origin !== window.location.origin) return;
    event.preventDefault();
    window.history.pushState(null, "", target);
    window.dispatchEvent(new PopStateEvent("popstate"));
  });
})();
</script>"""


def inject_css() -> None:
    """The app's style, and its script (`_PAGE_SCRIPT`), on every page."""
    st.html(_CSS)
    st.html(_PAGE_SCRIPT, unsafe_allow_javascript=True)


def format_date(iso_text: str | None, *, with_time: bool = True) -> str:
    if not iso_text:
        return "—"
    try:
        moment = parse_iso(iso_text)
    except ValueError:
        return iso_text
    return f"{moment:%b %d, %Y %H:%M} UTC" if with_time else f"{moment:%b %d, %Y}"


def safe_url(url: str) -> str:
    """Only web URLs and our own relative media URLs reach an `href`/`src`; whitespace or a
    control character inside one is percent-encoded (a blank line would end the raw HTML
    block of a whole grid, and hand the rest to Markdown)."""
    lowered = url.strip().lower()
    if lowered.startswith(("https://", "http://")) or ":" not in lowered.split("/")[0]:
        return escape(_UNSAFE_IN_URL.sub(lambda m: quote(m.group()), url.strip()), quote=True)
    return ""


def lora_title(lora: LoraTraining) -> str:
    """A registered LoRA's name, else its trigger word (the original app names none)."""
    return lora.name or lora.trigger_word


def lora_labels(loras: Sequence[LoraTraining]) -> dict[str, str]:
    """LoRAs' labels by id, told apart where two share a name: what Compare's picker
    shows, and its link carries."""
    return queries.unique_labels({lora.id: lora_title(lora) for lora in loras})


def app_base_url() -> str:
    """The app's own address (scheme, host, base path), from the browser's URL."""
    parts = urlsplit(st.context.url or "")
    base_path = parts.path.rsplit("/", 1)[0] if parts.path.count("/") > 1 else ""
    return f"{parts.scheme}://{parts.netloc}{base_path}" if parts.netloc else ""


def image_link(image: GeneratedImage) -> str:
    """The LoRA page showing this image large: relative, for links inside the app."""
    return routes.lora_url(image.lora_training_id, image.id)


def share_url(image: GeneratedImage) -> str:
    """The same, absolute: what a user copies and sends."""
    return f"{app_base_url()}/{image_link(image)}"


def image_card(
    url: str,
    caption: str | None = None,
    meta: str | None = None,
    *,
    alt: str | None = None,
    thumbnail: str | None = None,
    css_class: str = "",
    opens_full_size: bool = True,
    link: str | None = None,
    note: str | None = None,
    eager: bool = False,
) -> str:
    """An image with an optional caption; with `opens_full_size`, a link to the full image
    in a new tab (grids whose cards open details in place pass False); with `link`, a link
    to that address of the app instead (its details: `linked_image_grid`). With a
    `thumbnail`, that is what the page loads; the full image only when opened. `alt` says
    what the image is to a screen reader (by default its caption). `note`: one more line,
    under the caption. `eager`: on the first screen, so loaded at once (a lazy image waits
    for layout to find it visible: about 100 ms later)."""
    href = safe_url(url)
    src = safe_url(thumbnail) if thumbnail else href
    # Square cards (CSS): width and height let the browser reserve the space before loading.
    # One line: inside this HTML block a blank line would hand the rest to Markdown.
    caption = one_line(caption) if caption else None
    meta = one_line(meta) if meta else None
    picture = (
        f'<img src="{src}" alt="{escape(one_line(alt or caption or "Generated image"))}" '
        f'loading="{"eager" if eager else "lazy"}" width="{THUMBNAIL_SIDE}" '
        f'height="{THUMBNAIL_SIDE}">'
    )
    if link is not None:
        picture = f'<a class="ls-open" href="{escape(link)}" target="_self">{picture}</a>'
    elif opens_full_size:
        picture = f'<a href="{href}" target="_blank" rel="noopener noreferrer">{picture}</a>'
    parts = [f'<figure class="{f"ls-card {css_class}".strip()}">', picture]
    if caption:
        parts.append(
            f'<div class="ls-caption" title="{escape(caption)}">{html_text(caption)}</div>'
        )
    for line in (meta, note):
        if line:
            parts.append(f'<div class="ls-meta">{html_text(line)}</div>')
    parts.append("</figure>")
    return "".join(parts)


def image_alt(image: GeneratedImage, lora_name: str | None = None) -> str:
    """What a generated image is, for a screen reader: its prompt, and its LoRA if known."""
    made_with = f" with the LoRA {lora_name}" if lora_name else ""
    return f"Image generated{made_with} from the prompt: {image.prompt}"


def count_text(value: object) -> str:
    """A stored count as people read it ("1,000"); anything else, as stored (the original
    app's rows may hold text there), or "—" for none."""
    if value is None or value == "":
        return "—"
    if isinstance(value, int) and not isinstance(value, bool):
        return f"{value:,}"
    return str(value)


def empty_thumbnail(text: str = "No images yet") -> str:
    return f'<div class="ls-thumb-empty">{escape(text)}</div>'


def grid_card(
    image: GeneratedImage,
    *,
    with_captions: bool,
    lora_name: str | None,
    eager: bool,
    css_class: str = "",
    opens_full_size: bool = True,
    link: str | None = None,
    note: str | None = None,
) -> str:
    """One image of a grid as `image_card` HTML: its prompt and date as caption (or none),
    its alt text, its thumbnail; a flagged image as a placeholder, never shown (fal blacks
    these out, and they may be unsafe)."""
    if image.nsfw:
        return empty_thumbnail(FLAGGED_TEXT)
    return image_card(
        image.image_url,
        image.prompt if with_captions else None,
        format_date(image.created_at) if with_captions else None,
        alt=image_alt(image, lora_name),
        thumbnail=image.thumbnail_url,
        css_class=css_class,
        opens_full_size=opens_full_size,
        link=link,
        note=note,
        eager=eager,
    )


def request_thumbnails(images: Sequence[GeneratedImage]) -> None:
    """Thumbnails made in the background for the images shown without one (shown whole
    this time)."""
    context.studio().thumbnails.request(
        thumbnails.Missing(image_id=image.id, image_url=image.image_url)
        for image in images
        if image.thumbnail_url is None and not image.nsfw and image.id
    )


def linked_image_grid(
    images: Sequence[GeneratedImage],
    *,
    columns: int,
    with_captions: bool = True,
    lora_name: str | None = None,
    notes: Mapping[str, str] | None = None,
    eager: int = 8,
) -> None:
    """Images in a grid of up to `columns` columns (two on a phone), each a link to its
    details over its LoRA's page (`image_link`), drawn as **one element**: a page of 24
    images as cards of three elements each (a container, the picture, a Details button)
    sent 72 messages, each a hop between Streamlit's threads, and cost the LoRA page a
    third of its server time (benchmarks/README.md). A link is a real control (Tab, Enter,
    a new tab with a modifier); the page's script opens it in place (`_PAGE_SCRIPT`).
    Captions, `notes` and `eager` as in `image_grid`; grids whose images are picked
    (checkboxes) use `image_grid`."""
    st.html(
        linked_grid_html(
            images, columns=columns, with_captions=with_captions, lora_name=lora_name,
            notes=notes, eager=eager,
        )
    )  # fmt: skip


def linked_grid_html(
    images: Sequence[GeneratedImage],
    *,
    columns: int,
    with_captions: bool = True,
    lora_name: str | None = None,
    notes: Mapping[str, str] | None = None,
    eager: int = 8,
) -> str:
    """`linked_image_grid`'s HTML (its missing thumbnails queued as it does), for an element
    that holds more than the grid (a LoRA page's generation, `generation_html`)."""
    request_thumbnails(images)
    cells = [
        grid_card(
            image,
            with_captions=with_captions,
            lora_name=lora_name,
            eager=number < eager,
            link=image_link(image),
            note=(notes or {}).get(image.id),
        )
        for number, image in enumerate(images)
    ]
    return f'<div class="ls-grid" style="--ls-columns: {int(columns)}">{"".join(cells)}</div>'


def generation_html(
    *,
    prompt: str,
    user: str,
    created_at: str,
    sweep_link: str | None = None,
    note: str | None = None,
    body: str = "",
) -> str:
    """A LoRA page's generation as raw HTML: its prompt in bold; who made it, when, whether
    it is a sweep's cells (with a link to the whole sweep, `sweep_link`) and `note` (the
    LoRAs stacked with it); then `body` (its grid's HTML, `linked_grid_html`). Stored text
    is escaped here. One element for the lot: three per generation before
    (benchmarks/page_ready.py, the seventh round). No icon shortcodes: raw HTML's text is
    not Markdown (`ui.text.html_text`)."""
    byline = (
        f"by {html_text(user)} · {html_text(format_date(created_at))}"
        + (" · cells of an X/Y sweep" if sweep_link else "")
        + (f" · {html_text(note)}" if note else "")
    )
    link = (
        f'<p><a class="ls-open ls-sweep-link" href="{escape(sweep_link)}" target="_self">'
        "Open the whole sweep</a></p>"
        if sweep_link
        else ""
    )
    return (
        f'<div class="ls-batch"><p class="ls-batch-prompt"><strong>{html_text(prompt)}</strong>'
        f'</p><p class="ls-byline">{byline}</p>{link}{body}</div>'
    )


def image_grid(
    images: Sequence[GeneratedImage],
    *,
    columns: int,
    with_captions: bool = True,
    css_class: str = "",
    on_open: Callable[[GeneratedImage], None] | None = None,
    key: str = "grid",
    lora_name: str | None = None,
    notes: Mapping[str, str] | None = None,
    picking: str | None = None,
    eager: int = 8,
) -> None:
    """Images in a grid of up to `columns` columns (two on a phone), thumbnails where there
    are (the others are shown whole this time and their thumbnails made in the background).
    With `on_open`, the whole card is a button that calls it (the image's details, in
    place); without, the image opens full size in a new tab. `key` keeps two grids of the
    same images on one page apart. `notes`: a line under an image (by id), shown as text.
    `picking`: a selection's scope (`ui.picking`): each card gets its Select checkbox.
    The first `eager` images load at once (the first screen), the others as scrolled to."""
    request_thumbnails(images)
    grid = st.grid(columns, min_column_width=GRID_MIN_COLUMN_PX)
    for number, image in enumerate(images):
        with grid.container(key=f"card_{key}_{image.id}"):
            card = grid_card(
                image, with_captions=with_captions, lora_name=lora_name, eager=number < eager,
                css_class=css_class, opens_full_size=on_open is None,
            )  # fmt: skip
            st.markdown(card, unsafe_allow_html=True)
            if image.nsfw:  # a placeholder: nothing to select or open
                continue
            if note := (notes or {}).get(image.id):
                st.caption(f":material/layers: {md(note)}")
            if picking is not None:
                box = picking_box(picking, key, image.id)
                st.checkbox("Select", key=box, value=image.id in picked(picking),
                            on_change=toggle, args=(picking, box, image.id))  # fmt: skip
            if on_open is not None and st.button(
                "Details", key=f"open_{key}_{image.id}", type="tertiary", icon=":material/info:"
            ):
                on_open(image)


def summary_html(figures: tuple[tuple[str, str], ...]) -> str:
    """Figures (label, value) as one element of raw HTML, a description list that wraps:
    each `st.metric` is an element, a message and a part the browser draws
    (benchmarks/page_ready.py). Labels and values are escaped here."""
    items = "".join(
        f"<div><dt>{html_text(label)}</dt><dd>{html_text(value)}</dd></div>"
        for label, value in figures
    )
    return f'<dl class="ls-summary">{items}</dl>'
