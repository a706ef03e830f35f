"""Usage (admins only): batches per user in the quota window, and hiding LoRAs."""

from __future__ import annotations

import pandas as pd
import streamlit as st

from lora_core.gallery import moderation, queries
from lora_core.history import usage as quota_usage
from ui import context
from ui.components import lora_title
from ui.errors import boundary, period_text
from ui.text import md

st.set_page_config(page_title="Usage · LoRA Studio")
who = context.current_identity()
if not who.is_admin:  # the page is only in admins' navigation; check again all the same
    st.error("Only admins can see this page.", icon=":material/lock:")
    st.stop()

policy = context.studio().generation_policy
price = context.get_settings().fal_price_per_megapixel
st.title("Usage")
st.caption(
    f"Generations per user {period_text(policy.window)} (limit {policy.limit}), and what "
    f"fal billed for them, estimated at ${price:g} per output megapixel."
)


def toggle_hidden(lora_id: str, hidden: bool) -> None:
    with boundary("hiding a LoRA"):  # a callback runs before the page, outside its boundary
        moderation.set_lora_hidden(
            engine=context.studio().engine,
            who=context.current_identity(),
            lora_id=lora_id,
            hidden=hidden,
        )


usage = context.read(quota_usage.usage, policy=policy, price_per_megapixel=price)
loras = context.read(queries.list_loras, with_hidden=True)

st.dataframe(
    pd.DataFrame(
        [
            {
                "user": row.user,
                "batches": row.slots_used,
                "remaining": "Unlimited" if row.remaining is None else str(row.remaining),
                "est. spend ($)": round(row.spend, 2),
            }
            for row in usage
        ],
        columns=["user", "batches", "remaining", "est. spend ($)"],
    ),
    hide_index=True,
    key="usage_table",
)

st.subheader("Hidden LoRAs", anchor=False)
st.caption("A hidden LoRA leaves the gallery; its page, images and history stay.")
for summary in loras:
    lora = summary.lora
    left, right = st.columns([3, 1])
    left.markdown(
        f"**{md(lora_title(lora))}** · {md(lora.id)}" + (" · hidden" if lora.hidden else "")
    )
    right.button(
        "Show again" if lora.hidden else "Hide",
        key=f"hide_{lora.id}",
        on_click=toggle_hidden,
        args=(lora.id, not lora.hidden),
    )
