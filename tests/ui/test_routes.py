"""The menu's pages: fresh for every run, since Streamlit runs a page object once."""

from __future__ import annotations

import streamlit as st


def test_each_run_builds_page_objects_of_its_own(open_app, monkeypatch):
    """Two sessions of one process running at once must not share a page: the second
    `page.run()` of one object fails ("This page cannot be called directly")."""
    menus: list[list[st.Page]] = []
    navigation = st.navigation

    def spy(pages, **options):
        menus.append(pages)
        return navigation(pages, **options)

    monkeypatch.setattr(st, "navigation", spy)

    open_app()
    open_app(id="demo-neon-noir")

    first, second = menus
    assert not {id(page) for page in first} & {id(page) for page in second}
    assert [page.url_path for page in first] == [
        "", "lora", "search", "collections", "history", "compare", "lab", "arena",
        "leaderboard", "train",
    ]  # fmt: skip
    assert [page.url_path for page in second] == [page.url_path for page in first]
