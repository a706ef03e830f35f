"""`ui.generate_dialog`: what opens the dialog."""

from __future__ import annotations


def test_a_generate_links_token_counts_once_among_the_latest(open_app):
    open_app()  # the routes' pages built, as in a page's run
    from ui.generate_dialog import FollowedLinks

    followed = FollowedLinks(most=2)
    assert followed.first_time("a") and not followed.first_time("a")
    assert followed.first_time("b") and followed.first_time("c")  # "a" is forgotten
    assert followed.first_time("a") and not followed.first_time("c")
