"""LoRA Studio's script, run by Streamlit for every visitor (`streamlit_app.py` is the
server that runs it): it only routes. Page config, the menu (`ui/routes.py`), the sidebar
(who, quota, database, mode), and every page run inside one error boundary."""

from __future__ import annotations

import streamlit as st

from lora_core.identity import Identity
from lora_core.settings import Settings
from ui import context, memory, routes
from ui.components import inject_css
from ui.errors import boundary, remaining_text
from ui.text import md


def start() -> Settings | None:
    """Settings read, the database reached (its schema current) and what a dead process
    left finished, before any page; None when that failed (and `boundary` said why)."""
    with boundary("start-up"):
        settings = context.get_settings()
        context.studio()
        context.start_recovery(settings.database.url)
        return settings
    return None


def show_sidebar(who: Identity, settings: Settings) -> None:
    """Below the menu, which Streamlit ends with a divider: who, their quota, the database
    (for admins) and preview mode."""
    with st.sidebar:
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
            with boundary("the quota line"):
                st.caption(remaining_text(context.quota_status()))
        if who.is_admin:  # where the data lives is for the people who run the app
            st.caption(f":material/database: {md(settings.database.label)}")
        if settings.preview_mode:
            st.info(
                "**Preview mode**: no FAL_KEY is set, so images are placeholders drawn locally "
                "instead of calls to fal.",
                icon=":material/science:",
            )


def main() -> None:
    """One run of the app for one visitor: the frame, then the page asked for."""
    st.set_page_config(page_title="LoRA Studio", page_icon=":material/palette:", layout="wide")
    inject_css()
    settings = start()
    if settings is None:
        return
    context.forget_run_state()

    who = context.current_identity()
    page = st.navigation(routes.pages(admin=who.is_admin), position="sidebar")
    show_sidebar(who, settings)

    if settings.require_login and not who.signed_in:
        st.title("LoRA Studio")
        st.info("Sign in (in the sidebar) to use LoRA Studio.", icon=":material/lock:")
        st.stop()

    # The one error boundary of a page run (fragments, which rerun alone, have their own).
    with boundary(page.title):
        page.run()
    # The first runs of each page import what it uses: from then on, keep it out of the
    # garbage collector's full walks, which stop every session of this process.
    memory.freeze_loaded_modules()


main()
