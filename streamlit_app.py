"""LoRA Studio's entry point: page config, navigation and the sidebar. Pages: app_pages/."""

from __future__ import annotations

import streamlit as st

from lora_core.errors import LoraStudioError
from ui import context
from ui.components import inject_css
from ui.errors import remaining_text, show_error
from ui.text import md

st.set_page_config(page_title="LoRA Studio", page_icon=":material/palette:", layout="wide")
inject_css()

try:
    settings = context.get_settings()
    context.studio()  # the database reached and its schema current, before any page
    context.resume_at_start(settings.database.url)
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
compare = st.Page(
    "app_pages/compare.py", title="Compare", icon=":material/compare:", url_path="compare"
)
train = st.Page(
    "app_pages/train.py", title="Train", icon=":material/model_training:", url_path="train"
)
who = context.current_identity()
usage = (
    st.Page("app_pages/usage.py", title="Usage", icon=":material/monitoring:", url_path="usage")
    if who.is_admin
    else None
)
page = st.navigation(
    [gallery, lora, history, compare, train, *([usage] if usage else [])], position="hidden"
)

with st.sidebar:
    st.markdown("## :material/palette: LoRA Studio")
    st.page_link(gallery, label="All LoRAs", icon=":material/photo_library:")
    st.page_link(history, label="History", icon=":material/history:")
    st.page_link(compare, label="Compare LoRAs", icon=":material/compare:")
    st.page_link(train, label="Train a LoRA", icon=":material/model_training:")
    if usage is not None:
        st.page_link(usage, label="Usage", icon=":material/monitoring:")
    st.divider()
    if who.demo:
        st.caption("Signed in as")
        st.text(f"{who.user} · demo mode")
        st.caption("No login is configured: every visitor shares this quota.")
    elif who.signed_in:
        st.caption("Signed in as")
        st.text(who.user + (" · admin" if who.is_admin else ""))
        if st.button("Sign out", key="sign_out", icon=":material/logout:"):
            st.logout()
    elif st.button("Sign in", key="sign_in", type="primary", icon=":material/login:"):
        st.login()
    if who.signed_in:
        try:
            st.caption(remaining_text(context.quota_status()))
        except LoraStudioError as error:
            show_error(error)
    st.caption(f":material/database: {md(settings.database.label)}")
    if settings.preview_mode:
        st.info(
            "**Preview mode**: no FAL_KEY is set, so images are placeholders drawn locally "
            "instead of calls to fal.",
            icon=":material/science:",
        )

if settings.require_login and not who.signed_in:
    st.title("LoRA Studio")
    st.info("Sign in (in the sidebar) to use LoRA Studio.", icon=":material/lock:")
    st.stop()

try:
    page.run()
except LoraStudioError as error:  # e.g. the database went away while a page ran
    show_error(error)
