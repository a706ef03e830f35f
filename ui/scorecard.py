"""A LoRA's scorecard on its page: the verdict, tags and notes the team keeps, a form for
its owner and admins, and the history of changes (read when asked for)."""

from __future__ import annotations

import streamlit as st

from lora_core.data.models import LoraTraining, Verdict
from lora_core.errors import LoraStudioError
from lora_core.gallery import scorecards
from lora_core.gallery.scorecards import VERDICT_LABELS, Scorecard
from lora_core.generation.prompts import MAX_TEMPLATE_LENGTH
from lora_core.generation.recipe import GUIDANCE_RANGE, PLAN, SCALE_RANGE, STEPS_RANGE
from ui import context
from ui.components import format_date
from ui.errors import show_error
from ui.text import md

VERDICT_ICONS = {
    Verdict.RECOMMENDED: ":material/thumb_up:",
    Verdict.NOT_RECOMMENDED: ":material/thumb_down:",
    Verdict.UNDER_TEST: ":material/science:",
}
NO_VERDICT = "none"


def show_scorecard(lora: LoraTraining, card: Scorecard) -> None:
    """One line of verdict and tags, the notes as written; the editor and history for
    those who may change it."""
    parts = []
    if card.verdict is not None:
        parts.append(
            f"{VERDICT_ICONS[card.verdict]} **{VERDICT_LABELS[card.verdict]}** · set by "
            f"{md(card.verdict_by or '')} · {md(format_date(card.verdict_at or ''))}"
        )
    if recommended := card.recommended.text():
        parts.append(f"Recommended {recommended}")
    if card.prompt_template:
        parts.append(f"Prompt template: {md(card.prompt_template)}")
    if card.tags:
        parts.append("Tags: " + ", ".join(md(tag) for tag in card.tags))
    if parts:
        st.caption(" · ".join(parts))
    if card.notes:
        st.text(card.notes)  # plain text, literally as written


def scorecard_action(lora: LoraTraining, card: Scorecard) -> None:
    """For its owner and admins, in the page's row of actions: the scorecard's editor."""
    if scorecards.may_edit(context.current_identity(), lora):
        with st.popover("Scorecard", icon=":material/edit_note:"):
            _editor(lora, card)


def _editor(lora: LoraTraining, card: Scorecard) -> None:
    options = [NO_VERDICT, *Verdict]
    with st.form(f"scorecard_{lora.id}", border=False):
        verdict = st.selectbox(
            "Verdict",
            options,
            index=options.index(card.verdict or NO_VERDICT),
            format_func=lambda value: (
                "No verdict" if value == NO_VERDICT else VERDICT_LABELS[value]
            ),
            key="scorecard_verdict",
        )
        tags = st.text_input(
            "Tags", value=", ".join(card.tags), key="scorecard_tags",
            placeholder="style, portraits", help="Separated by commas; the gallery filters.",
        )  # fmt: skip
        scale_box, steps_box, guidance_box = st.columns(3)
        scale = scale_box.number_input(
            "Recommended scale", *SCALE_RANGE, step=0.05,
            value=card.recommended_scale, placeholder=f"The plan's ({PLAN.lora_scale:g})",
            key="scorecard_scale", help="The Generate dialog starts from it.",
        )  # fmt: skip
        steps = steps_box.number_input(
            "Steps", *STEPS_RANGE, step=1, value=card.recommended_steps,
            placeholder=f"The plan's ({PLAN.steps})", key="scorecard_steps",
        )  # fmt: skip
        guidance = guidance_box.number_input(
            "Guidance", *GUIDANCE_RANGE, step=0.5, value=card.recommended_guidance,
            placeholder=f"The plan's ({PLAN.guidance:g})", key="scorecard_guidance",
        )  # fmt: skip
        template = st.text_input(
            "Prompt template", value=card.prompt_template or "", key="scorecard_template",
            max_chars=MAX_TEMPLATE_LENGTH, placeholder="{prompt} in the style of {trigger}",
            help="How the trigger word is best used: {prompt} is the prompt typed, "
            "{trigger} this LoRA's trigger word. Blank: the plan's rule.",
        )  # fmt: skip
        notes = st.text_area(
            "Notes", value=card.notes, max_chars=scorecards.MAX_NOTES, key="scorecard_notes",
            placeholder="What works with this LoRA, and what does not.",
        )  # fmt: skip
        saved = st.form_submit_button("Save", type="primary", icon=":material/save:")
    if saved:
        try:
            scorecards.save(
                engine=context.studio().engine, who=context.current_identity(), lora_id=lora.id,
                notes=notes, tags=scorecards.parse_tags(tags),
                verdict=None if verdict == NO_VERDICT else Verdict(verdict),
                recommended_scale=scale, prompt_template=template,
                recommended_steps=None if steps is None else int(steps),
                recommended_guidance=guidance,
            )  # fmt: skip
        except LoraStudioError as error:
            show_error(error)
            return
        st.rerun()
    if st.toggle("History of changes", key="scorecard_history"):
        for change in context.read(scorecards.changes, lora_id=lora.id):
            st.caption(
                f"{md(format_date(change.created_at))} · {md(change.user)} · {change.field}: "
                f"{md(change.old or '—')} → {md(change.new or '—')}"
            )
