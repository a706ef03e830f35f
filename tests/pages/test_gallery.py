"""The gallery page, as AppTest renders it."""

from __future__ import annotations

from datetime import timedelta

from lora_core.data.clock import to_iso, utc_now
from lora_core.data.models import LoraStatus
from tests.pages.test_login import ANN, AUTH
from tests.support.links import follow
from tests.support.markup import (
    CardAction,
    gallery_actions,
    gallery_titles,
    html_blocks,
    readable,
)

NOW = utc_now()


def texts(at) -> str:
    parts = [e.value for kind in ("markdown", "caption", "subheader", "info", "error", "title")
             for e in getattr(at, kind)]  # fmt: skip
    return readable("\n".join([*(str(part) for part in parts), *html_blocks(at)]))


def test_loras_with_images_come_first_each_with_its_details(open_app, add_lora, engine, add_images):
    add_lora("older", trigger_word="wtrclr", steps=1200, created_at=to_iso(NOW - timedelta(2)))
    add_lora("newer", trigger_word="neonnoir", created_at=to_iso(NOW - timedelta(1)))
    add_images("older", 3)

    at = open_app()

    assert not at.exception
    assert gallery_titles(at) == ["wtrclr", "neonnoir"]  # the older one has images
    page = readable(texts(at))
    assert "3 images · 1,200 steps" in page
    assert "https://cdn.example/older/2.jpg" in page  # its latest image is the thumbnail
    assert '<span class="ls-badge ls-badge-green">Completed</span>' in page


def test_a_card_past_the_image_count_cap_says_so(open_app, add_lora, add_images, monkeypatch):
    from lora_core.gallery import queries

    monkeypatch.setattr(queries, "IMAGE_COUNT_CAP", 2)
    queries._summaries_statement.cache_clear()
    add_lora("big", trigger_word="big")
    add_images("big", 3)

    try:
        at = open_app()
    finally:
        queries._summaries_statement.cache_clear()

    assert "2+ images · 1,000 steps" in readable(texts(at))


def test_only_completed_loras_offer_generate(open_app, add_lora):
    add_lora("ready", trigger_word="ready")
    add_lora("training", trigger_word="training", status=LoraStatus.PENDING, weights_url=None)

    at = open_app()

    actions = gallery_actions(at)
    assert list(actions) == ["ready", "training"]
    assert actions["ready"].name == "Generate with ready"  # its card's, to a screen reader
    assert actions["ready"].href.startswith("lora?id=ready&generate=")
    assert actions["training"] is None
    assert '<span class="ls-badge ls-badge-orange">Pending</span>' in texts(at)
    assert not at.button  # the grid is one element: its actions are links


def dialog_open(at) -> bool:
    return "gen_prompt" in [area.key for area in at.text_area]


def test_generate_opens_the_loras_page_with_the_dialog_once_per_click(open_app, add_lora):
    add_lora("ready", trigger_word="wtrclr")
    at = open_app()
    link = gallery_actions(at)["ready"].href

    follow(at, link)

    assert not at.exception
    assert at.title[0].value == "wtrclr"
    assert dialog_open(at)
    assert dict(at.query_params) == {"id": "ready"}  # the address says no more
    # Back to the gallery, then Forward / Back to the link's own address: no dialog.
    follow(at, "gallery")
    assert not dialog_open(at)
    follow(at, link)
    assert at.title[0].value == "wtrclr" and not dialog_open(at)
    # Reloaded, or copied to someone: a new session, the page without its dialog.
    assert not dialog_open(follow(open_app(), link))
    # A new click on the gallery is a new link: the dialog again.
    follow(at, "gallery")
    again = gallery_actions(at)["ready"].href
    assert again != link
    assert dialog_open(follow(at, again))


def test_with_the_quota_spent_generate_is_a_disabled_button(
    open_app, add_lora, add_batch, monkeypatch
):
    monkeypatch.setenv("GENERATION_LIMIT", "1")
    add_lora("ready", trigger_word="wtrclr")
    add_batch(user="ann@example.com")

    at = open_app(user=ANN, secrets=AUTH)

    assert gallery_actions(at)["ready"] == CardAction("Generate with wtrclr", None)
    assert "You've used all 1 generations today" in readable(at.info[0].value)
    # Its link typed anyway: the page, without the dialog.
    follow(at, "lora?id=ready&generate=typed")
    assert not at.exception and not dialog_open(at)
    assert at.button(key="open_generate").disabled


def test_each_lora_links_to_its_page(open_app, add_lora):
    add_lora("linked")

    at = open_app()

    (card,) = [block for block in html_blocks(at) if '<a class="ls-open ls-card-link"' in block]
    assert '<a class="ls-open ls-card-link" href="lora?id=linked" target="_self">' in card
    assert '<span class="ls-sr-only">Open ' in card  # its name, for screen readers
    assert not [link for link in at.get("page_link") if "id=" in link.proto.query_string]


def test_an_empty_database_explains_how_to_add_loras(open_app):
    at = open_app()

    assert not at.exception
    assert "No LoRAs yet" in at.info[0].value
    assert "trainer app" not in at.info[0].value  # this app trains: its Train page
    assert [link.proto.page for link in at.get("page_link")][-1] == "train"


def test_the_sidebar_names_the_user_quota_and_preview_mode(open_app):
    at = open_app()

    sidebar = "\n".join(
        str(e.value) for e in [*at.sidebar.markdown, *at.sidebar.caption, *at.sidebar.text]
    )
    assert "guest" in sidebar
    assert "8 of 8 generations remaining today" in sidebar
    assert "Preview mode" in at.sidebar.info[0].value


def test_a_database_that_is_down_shows_a_message_not_a_trace(open_app, monkeypatch, tmp_path):
    monkeypatch.setenv("DATABASE_URL", f"sqlite:///{tmp_path}")  # a folder: cannot open

    at = open_app()

    assert not at.exception
    assert "database is unavailable" in at.error[0].value


def test_an_invalid_setting_is_named_at_startup(open_app, monkeypatch):
    monkeypatch.setenv("GENERATION_LIMIT", "zero")

    at = open_app()

    assert not at.exception
    assert "GENERATION_LIMIT" in readable(at.error[0].value)


def test_settings_given_only_as_secrets_put_the_app_on_the_libsql_server(
    monkeypatch, tmp_path, sqld
):
    """As on Streamlit Community Cloud: no environment variables, only the secrets box."""
    import streamlit as st
    from streamlit.testing.v1 import AppTest

    from lora_core.data.db import create_db_engine, session_scope
    from lora_core.data.models import LoraTraining
    from lora_core.data.schema import ensure_schema
    from tests.conftest import APP_ROOT, SETTING_NAMES

    for name in SETTING_NAMES:
        monkeypatch.delenv(name, raising=False)
    sqld.wipe()
    remote = create_db_engine(sqld.target)
    ensure_schema(remote)
    with session_scope(remote) as session:
        session.add(
            LoraTraining(id="cloud-lora", request_id="r-cloud", user="w",
                         trigger_word="cloudstyle", status=LoraStatus.COMPLETED,
                         lora_weights_url="https://w/x.safetensors", created_at=to_iso(NOW))
        )  # fmt: skip
        session.commit()
    st.cache_resource.clear()
    at = AppTest.from_file(str(APP_ROOT / "router.py"), default_timeout=30)
    at.secrets.update(
        {
            "TURSO_DATABASE_URL": sqld.url,
            "TURSO_AUTH_TOKEN": sqld.token,
            "MEDIA_DIR": str(tmp_path / "media"),
            "ADMIN_USERS": "guest",  # where the data lives is shown to admins only
        }
    )
    at.run()
    st.cache_resource.clear()

    assert not at.exception
    assert gallery_titles(at) == ["cloudstyle"]
    assert f"Turso / libSQL server · 127.0.0.1:{sqld.port}" in texts(at.sidebar)
    assert sqld.token not in texts(at) + texts(at.sidebar)
    remote.dispose()


FIRST_RUN = """
import logging, sys
from streamlit.testing.v1 import AppTest
logging.disable(logging.WARNING)
at = AppTest.from_file(sys.argv[1], default_timeout=60)
at.run()
assert not at.exception, at.exception
print(" ".join(sorted(set(sys.argv[2:]) & {name.split(".")[0] for name in sys.modules})))
"""


def test_a_quick_demo_starts_without_the_libraries_its_gallery_does_not_use(tmp_path):
    """pandas, fal's client, boto3 and Alembic wait until they are used (a zip, fal, a
    bucket, a schema to upgrade): their imports were half of a cold start's first page
    (benchmarks/cold_start.py). A process of its own, as a replica's first page is."""
    import os
    import subprocess
    import sys

    from lora_core.data.db import create_db_engine
    from lora_core.data.schema import ensure_schema
    from tests.conftest import APP_ROOT, SETTING_NAMES

    database = f"sqlite:///{tmp_path / 'app.db'}"
    engine = create_db_engine(database)
    ensure_schema(engine)  # as a replica finds it after the first one started
    engine.dispose()
    env = {name: value for name, value in os.environ.items() if name not in SETTING_NAMES}
    env.update(DATABASE_URL=database, MEDIA_DIR=str(tmp_path / "media"))
    later = ["pandas", "fal_client", "boto3", "alembic"]

    done = subprocess.run(
        [sys.executable, "-c", FIRST_RUN, str(APP_ROOT / "router.py"), *later],
        cwd=APP_ROOT, env=env, capture_output=True, text=True, timeout=120,
    )  # fmt: skip

    assert done.returncode == 0, done.stderr[-2000:]
    assert done.stdout.split() == []  # none of them loaded


def test_visitors_are_not_told_which_database_the_app_uses(open_app):
    assert "SQLite file" not in texts(open_app().sidebar)


def test_admins_see_which_database_the_app_uses(open_app, monkeypatch):
    monkeypatch.setenv("ADMIN_USERS", "guest")
    assert "SQLite file · " in texts(open_app().sidebar)


def test_many_loras_are_shown_24_to_a_page(open_app, add_lora):
    for day in range(30):  # "style 29" is the newest
        created = to_iso(NOW - timedelta(days=30 - day))
        add_lora(f"lora-{day:02d}", trigger_word=f"style {day}", created_at=created)
    at = open_app()
    assert len(gallery_titles(at)) == 24 and gallery_titles(at)[0] == "style 29"

    [pager] = at.pagination
    assert pager.num_pages == 2
    pager.set_value(2).run()

    assert not at.exception
    assert gallery_titles(at) == [f"style {day}" for day in range(5, -1, -1)]
