"""LoRA Lab: read the recipe an image file carries (ours, or another tool's), and remix it."""

from __future__ import annotations

import streamlit as st

from lora_core.data import lookups
from lora_core.data.db import session_scope
from lora_core.generation import recipe_files
from lora_core.generation.recipe import describe
from ui import context, routes
from ui.components import lora_title
from ui.generate_dialog import remix
from ui.text import md

st.set_page_config(page_title="LoRA Lab · LoRA Studio")
st.title("LoRA Lab")
st.caption(
    "Every image LoRA Studio stores or downloads carries its recipe inside the file. "
    "Drop one here to see how it was made, and remix it."
)

st.subheader("Read a recipe", anchor=False)
upload = st.file_uploader(
    "An image file", type=["jpg", "jpeg", "png", "webp"], key="recipe_file",
    help="A JPEG from LoRA Studio, or a PNG from AUTOMATIC1111 (its “parameters”).",
)  # fmt: skip
found = recipe_files.read(upload.getvalue()) if upload is not None else None
if upload is None:
    st.stop()
if found is None:
    st.info(
        "This image carries no recipe: it was not made by LoRA Studio (or its metadata was "
        "removed, as some sites and chat apps do).",
        icon=":material/help:",
    )
    st.stop()
if found.fields is None:
    st.caption("Written by another tool (e.g. AUTOMATIC1111's “parameters”), as it is:")
    st.text(found.other_text or "")
    st.stop()

fields = found.fields
lora_fields = fields.get("lora") or {}
made_with = recipe_files.as_recipe(fields)
st.markdown(f"**{md(str(fields.get('prompt', '')))}**")
st.caption(
    f"LoRA {md(str(lora_fields.get('name') or lora_fields.get('trigger_word') or '—'))} · "
    f"seed {md(str(fields.get('seed') or '—'))} · "
    + (md(describe(made_with)) if made_with else "settings unreadable")
    + f" · {md(str(fields.get('created_at', '')))}"
)
st.text(f"Sent to fal: {fields.get('full_prompt', '')}")
with session_scope(context.studio().engine) as session:
    lora = lookups.get_lora(session=session, lora_id=str(lora_fields.get("id") or ""))
if lora is None or made_with is None:
    st.info(
        "Its LoRA is not in this LoRA Studio, so it cannot be remixed here.",
        icon=":material/link_off:",
    )
elif st.button(
    f"Remix with {md(lora_title(lora))}", key="remix_file", type="primary",
    icon=":material/tune:",
):  # fmt: skip
    remix(lora.id, str(fields.get("prompt", "")), made_with)
    routes.open_lora(lora.id)
