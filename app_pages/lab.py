"""LoRA Lab: X/Y sweeps (a LoRA's strength, seeds, prompts or LoRAs side by side, the seed
held fixed), evaluation suites, a sweep's grid at `?sweep=<id>`, and the recipe inside an
image file."""

from __future__ import annotations

import streamlit as st

from ui.lab import form, grid, reader, suites

st.set_page_config(page_title="LoRA Lab · LoRA Studio")
st.title("LoRA Lab")

if sweep_id := st.query_params.get("sweep"):
    grid.show_sweep(sweep_id)
    st.stop()


def sweep_section() -> None:
    st.subheader("X/Y sweep", anchor=False)
    st.caption(
        "Hold the seed and vary one or two things — the LoRA's scale, seeds, a word of the "
        "prompt, or LoRAs with a no-LoRA baseline — to compare fairly. Each cell is one image; "
        "four cells cost one generation."
    )
    form.sweep_form()
    form.recent_sweeps()


def suites_section() -> None:
    st.subheader("Evaluation suites", anchor=False)
    st.caption(
        "The same test for every LoRA: a shared list of prompts and seeds, run on LoRAs (and the "
        "base model) side by side. Runs are sweeps; make a blind arena from one to judge them."
    )
    suites.suites_tool()


# From a LoRA's "Run a suite" (`?suite_lora=`): the suites first.
sections = [sweep_section, suites_section]
for number, section in enumerate(
    sections[::-1] if st.query_params.get(suites.LORA_PARAM) else sections
):
    if number:
        st.divider()
    section()

st.divider()
st.subheader("Read a recipe", anchor=False)
st.caption(
    "Every image LoRA Studio stores or downloads carries its recipe inside the file. "
    "Drop one here to see how it was made, and remix it."
)
reader.recipe_reader()
