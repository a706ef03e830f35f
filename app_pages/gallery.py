"""Gallery: every LoRA with its status, trigger word, created date and latest image."""

from __future__ import annotations

import streamlit as st

from lora_core.data.models import LoraStatus, Verdict
from lora_core.gallery import queries
from lora_core.gallery.scorecards import VERDICT_LABELS
from ui import context, routes
from ui.components import (
    count_text,
    empty_thumbnail,
    format_date,
    image_card,
    lora_card,
    lora_title,
)
from ui.errors import generation_blocked
from ui.generate_dialog import close_generate, open_generate
from ui.text import md

CARDS_PER_ROW = 4
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


signed_in = context.current_identity().signed_in
blocked = generation_blocked(context.run_quota_status()) if signed_in else None
if blocked and summaries:
    st.info(md(blocked), icon=":material/timer:")

# Even cards, four across on a desktop and two on a phone; each card opens its LoRA.
cards = st.grid(CARDS_PER_ROW, min_column_width=CARD_MIN_PX, border=True, key="lora_grid")
for number, summary in enumerate(summaries):
    lora = summary.lora
    with cards.container(key=f"lora_card_{lora.id}"):
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
        # One element (picture, title, status, facts, the card's link): the page is drawn
        # element by element.
        st.markdown(
            lora_card(title=lora_title(lora), status=lora.status, meta=facts, picture=picture,
                      link=routes.lora_url(lora.id)),
            unsafe_allow_html=True,
        )  # fmt: skip
        if lora.status != LoraStatus.COMPLETED:
            continue
        if not signed_in:
            if st.button("Sign in to generate", key=f"sign_in_{lora.id}", width="stretch"):
                st.login()
        elif st.button(
            "Generate",
            key=f"generate_{lora.id}",
            icon=":material/auto_awesome:",
            width="stretch",
            disabled=blocked is not None,
        ):
            open_generate(lora.id)
            routes.open_lora(lora.id)

if loras.page_count > 1:
    st.pagination(loras.page_count, key=PAGE_KEY, default=loras.page)
