"""The Lab's recipe reader: the recipe an image file carries, with Remix when its LoRA
is here."""

from __future__ import annotations

import streamlit as st

from lora_core.data import lookups
from lora_core.data.models import LoraTraining
from lora_core.generation import recipe, recipe_files
from ui import context, routes
from ui.components import lora_title
from ui.generate_dialog import remix
from ui.text import md


def recipe_reader() -> None:
    """Read the recipe a dropped image file carries, with Remix when its LoRA is here."""
    upload = st.file_uploader(
        "An image file", type=["jpg", "jpeg", "png", "webp"], key="recipe_file",
        help="A JPEG from LoRA Studio, or a PNG from AUTOMATIC1111 (its “parameters”).",
        max_upload_size=recipe_files.MAX_FILE_BYTES // 2**20,
    )  # fmt: skip
    if upload is None:
        return
    found = recipe_files.read(upload.getvalue())  # InvalidFile: said by the page's boundary
    if found is None:
        st.info(
            "This image carries no recipe: it was not made by LoRA Studio (or its metadata "
            "was removed, as some sites and chat apps do).",
            icon=":material/help:",
        )
        return
    if found.fields is None:
        st.caption("Written by another tool (e.g. AUTOMATIC1111's “parameters”), as it is:")
        st.text(found.other_text or "")
        if found.cut:
            st.caption(
                f"The first {recipe_files.MAX_TEXT_SHOWN:,} characters are shown; "
                f"{found.cut:,} more are not."
            )
        return
    fields = found.fields
    lora_fields = fields.get("lora") or {}
    made_with = recipe_files.as_recipe(fields)
    st.markdown(f"**{md(str(fields.get('prompt', '')))}**")
    st.caption(
        f"LoRA {md(str(lora_fields.get('name') or lora_fields.get('trigger_word') or '—'))} · "
        f"seed {md(str(fields.get('seed') or '—'))} · "
        + (md(recipe.describe(made_with)) if made_with else "settings unreadable")
        + f" · {md(str(fields.get('created_at', '')))}"
    )
    added = fields.get("added_loras") or []
    if isinstance(added, list) and added:
        st.caption(
            "Stacked with "
            + " · ".join(
                f"{md(str(more.get('name') or more.get('trigger_word') or more.get('id')))} "
                f"at {md(str(more.get('scale')))}"
                for more in added
                if isinstance(more, dict)
            )
        )
    st.text(f"Sent to fal: {fields.get('full_prompt', '')}")
    lora = context.read(lookups.get_lora, lora_id=str(lora_fields.get("id") or ""))
    if lora is None or made_with is None:
        st.info(
            "Its LoRA is not in this LoRA Studio, so it cannot be remixed here.",
            icon=":material/link_off:",
        )
    elif st.button(
        f"Remix with {md(lora_title(lora))}", key="remix_file", type="primary",
        icon=":material/tune:",
    ):  # fmt: skip
        _remix(lora, str(fields.get("prompt", "")), made_with)


def _remix(lora: LoraTraining, prompt: str, made_with: recipe.Recipe) -> None:
    remix(lora.id, prompt, made_with)
    routes.open_lora(lora.id)
