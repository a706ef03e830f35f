"""Gallery: every LoRA with its status, trigger word, created date and latest image."""

from __future__ import annotations

import secrets

import streamlit as st

from lora_core.data.models import LoraStatus, Verdict
from lora_core.gallery import queries
from lora_core.gallery.scorecards import VERDICT_LABELS
from ui import context, routes
from ui.components import (
    card_action,
    count_text,
    empty_thumbnail,
    format_date,
    image_card,
    lora_card,
    lora_grid_html,
    lora_title,
)
from ui.errors import generation_blocked
from ui.generate_dialog import close_generate
from ui.text import md

CARDS_PER_ROW = 4  # as the CSS draws them (`.ls-lora-grid`)
CARD_MIN_PX = 150  # two cards across on a 390 px phone
PAGE_SIZE = 24  # six rows: a page the browser draws quickly, however many LoRAs there are
PAGE_KEY = "gallery_page"

# A dialog opened earlier must not pop up again when the user comes back (browser Back).
close_generate()

st.set_page_config(page_title="Gallery · LoRA Studio")
st.title("LoRA Gallery")
st.caption(
    "Every LoRA the team has trained: those with images first, newest first. "
    "Open one to see everything generated from it."
)


def _search() -> None:
    """Words typed in the search box: Search opens with them (from the script, below: a
    callback may not switch pages), and the box is empty when one comes back."""
    st.session_state["gallery_search_go"] = st.session_state.pop("gallery_search", "")


def follow_search() -> None:
    if words := st.session_state.pop("gallery_search_go", "").strip():
        st.switch_page(routes.SEARCH, query_params={"q": words})


def scorecard_filter() -> tuple[Verdict | None, str]:
    """The team's verdict and a tag (`?verdict=…&tag=…`, shareable)."""
    choices = ["", *Verdict]
    # A link's filters win over what the widgets held (a shared link, a link in the app);
    # after that the widgets change the link.
    for name, allowed in (("verdict", choices), ("tag", None)):
        linked = st.query_params.get(name, "")
        if st.session_state.get(f"gallery_{name}_linked") != linked:
            st.session_state[f"gallery_{name}_linked"] = linked
            st.session_state[f"gallery_{name}"] = (
                linked if allowed is None or linked in allowed else ""
            )
    with st.container(horizontal=True, key="gallery_filters"):
        st.text_input(
            "Search images", key="gallery_search", width=260, on_change=_search,
            placeholder='Prompt words, "a phrase"', icon=":material/search:",
            help="Every LoRA's images by the words of their prompts: Enter opens Search.",
        )  # fmt: skip
        verdict = st.selectbox(
            "Verdict", choices,
            format_func=lambda value: VERDICT_LABELS[value] if value else "Any verdict",
            key="gallery_verdict", width=170,
        )  # fmt: skip
        tag = st.text_input(
            "Tag", key="gallery_tag", width=170, placeholder="Any tag", max_chars=30
        )  # fmt: skip
    for name, value in (("verdict", verdict), ("tag", tag.strip())):
        st.session_state[f"gallery_{name}_linked"] = value
        if value:
            st.query_params[name] = value
        else:
            st.query_params.pop(name, None)
    return (Verdict(verdict) if verdict else None), tag.strip()


follow_search()
verdict, tag = scorecard_filter()
loras = context.read(
    queries.list_lora_page,
    page=int(st.session_state.get(PAGE_KEY, 1)),
    page_size=PAGE_SIZE,
    verdict=verdict,
    tag=tag,
)

summaries = loras.items
if not summaries and (verdict or tag):
    st.info("No LoRA has that verdict and tag yet.", icon=":material/filter_alt_off:")
elif not summaries:
    st.info(
        "No LoRAs yet. Train one from your pictures, or register one you trained elsewhere "
        "(both on the Train page); `python -m lora_core.cli.demo` adds demo LoRAs.",
        icon=":material/info:",
    )
    st.page_link(routes.TRAIN, label="Train a LoRA", icon=":material/model_training:")


who = context.current_identity()
blocked = generation_blocked(context.run_quota_status()) if who.signed_in else None
if blocked and summaries:
    st.info(md(blocked), icon=":material/timer:")


def card_link(lora_id: str, title: str, *, token: str, signed_in: bool, blocked: bool) -> str:
    """A completed LoRA's card action: Generate (a link that opens the LoRA's page with its
    dialog, `token` telling this click from an earlier one), disabled while the quota is
    spent; signed out, Sign in to generate (the LoRA's page signs in)."""
    link = routes.lora_url(lora_id, generate=token)
    if not signed_in:
        return card_action(label="Sign in to generate", title=title, link=link, icon=False)
    return card_action(label="Generate", title=title, link=None if blocked else link)


# Even cards, four across on a desktop and two on a phone; each card opens its LoRA. All
# in one element: the page is drawn element by element.
token = secrets.token_hex(4)
cards = []
for number, summary in enumerate(summaries):
    lora = summary.lora
    picture = (
        image_card(
            summary.cover_url,
            alt=f"An image generated with the LoRA {lora_title(lora)}",
            thumbnail=summary.cover_thumbnail_url,
            opens_full_size=False,
            eager=number < 2 * CARDS_PER_ROW,  # the first screen's
        )
        if summary.cover_url
        else empty_thumbnail()
    )
    facts = (
        (f"Trigger word: {lora.trigger_word} · " if lora.name else "")
        + f"{count_text(summary.image_count)}{'+' if summary.more_images else ''} images · "
        f"{count_text(lora.steps)} steps · "
        f"created {format_date(lora.created_at, with_time=False)}"
    )
    title = lora_title(lora)
    action = (
        card_link(lora.id, title, token=token, signed_in=who.signed_in, blocked=bool(blocked))
        if lora.status == LoraStatus.COMPLETED
        else ""
    )
    cards.append(
        lora_card(title=title, status=lora.status, meta=facts, picture=picture,
                  link=routes.lora_url(lora.id), action=action, lora_id=lora.id)
    )  # fmt: skip
if cards:
    st.html(lora_grid_html(cards, min_px=CARD_MIN_PX))

if loras.page_count > 1:
    st.pagination(loras.page_count, key=PAGE_KEY, default=loras.page)
