"""LoRA Studio's entry point: page config, navigation and the sidebar. Pages: app_pages/."""

from __future__ import annotations

import streamlit as st

from lora_core.errors import LoraStudioError
from ui import context
from ui.components import inject_css
from ui.errors import remaining_text, show_error

st.set_page_config(page_title="LoRA Studio", page_icon=":material/palette:", layout="wide")
inject_css()

try:
    settings = context.get_settings()
    context.engine()
    context.resume_at_start(settings.database_url)
except LoraStudioError as error:
    show_error(error)
    st.stop()

gallery = st.Page(
    "app_pages/gallery.py", title="Gallery", icon=":material/photo_library:", default=True
)
lora = st.Page("app_pages/lora.py", title="LoRA", icon=":material/brush:", url_path="lora")
history = st.Page(
    "app_pages/history.py", title="History", icon=":material/history:", url_path="history"
)
page = st.navigation([gallery, lora, history], position="hidden")

with st.sidebar:
    st.markdown("## :material/palette: LoRA Studio")
    st.page_link(gallery, label="All LoRAs", icon=":material/photo_library:")
    st.page_link(history, label="History", icon=":material/history:")
    st.divider()
    st.caption("Signed in as")
    st.markdown(f"**{context.current_user()}** · single local user")
    try:
        st.caption(remaining_text(context.quota_status()))
    except LoraStudioError as error:
        show_error(error)
    if settings.preview_mode:
        st.info(
            "**Preview mode**: no FAL_KEY is set, so images are placeholders drawn locally "
            "instead of calls to fal.",
            icon=":material/science:",
        )

page.run()
