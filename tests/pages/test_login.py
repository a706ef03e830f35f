"""Login in the app (AppTest): who may generate, demo mode, admins, and no spoofing."""

from __future__ import annotations

from sqlalchemy import select

from lora_core.data.db import session_scope
from lora_core.data.models import GeneratedImage, LoraTraining
from tests.support.links import follow
from tests.support.markup import gallery_actions, gallery_titles

AUTH = {
    "auth": {
        "redirect_uri": "http://localhost:8501/oauth2callback",
        "cookie_secret": "a-long-enough-cookie-secret-for-tests-0123456789",
        "client_id": "lora-studio",
        "client_secret": "secret",
        "server_metadata_url": "http://127.0.0.1:1/.well-known/openid-configuration",
    }
}
ANN = {"is_logged_in": True, "email": "ann@example.com", "name": "Ann"}
SIGNED_OUT = {"is_logged_in": False}
LORA_PAGE = "app_pages/lora.py"
SUBMIT = "FormSubmitter:gen_form-Generate 4 Images"


def sidebar_text(at) -> str:
    parts = [*at.sidebar.markdown, *at.sidebar.caption, *at.sidebar.text]
    return "\n".join(str(e.value) for e in parts)


def test_signed_out_users_browse_but_see_sign_in_to_generate(open_app, add_lora):
    add_lora("public")

    gallery = open_app(user=SIGNED_OUT, secrets=AUTH)
    page = open_app(LORA_PAGE, user=SIGNED_OUT, secrets=AUTH, id="public")

    assert not gallery.exception and not page.exception
    action = gallery_actions(gallery)["public"]
    assert action.name == "Sign in to generate with sks-style"  # its trigger word
    assert action.href.startswith("lora?id=public&generate=")
    assert gallery.button(key="sign_in").label == "Sign in"
    assert page.button(key="sign_in_to_generate").label == "Sign in to generate"
    assert "open_generate" not in [b.key for b in page.button]


def test_sign_in_to_generate_on_a_card_signs_in(open_app, add_lora, monkeypatch):
    import streamlit

    signed_in: list[str] = []
    monkeypatch.setattr(streamlit, "login", lambda *a: signed_in.append("login"))
    add_lora("public")
    at = open_app(user=SIGNED_OUT, secrets=AUTH)

    link = gallery_actions(at)["public"].href
    follow(at, link)

    assert not at.exception
    assert signed_in == ["login"]
    assert dict(at.query_params) == {"id": "public"}
    # The link's address again (Back from the provider, in a new session): no second sign-in.
    follow(open_app(user=SIGNED_OUT, secrets=AUTH), link)
    assert signed_in == ["login"]


def test_a_signed_in_user_generates_under_their_own_identity(open_app, add_lora, engine):
    add_lora("mine")
    at = open_app(LORA_PAGE, user=ANN, secrets=AUTH, id="mine")

    assert "ann@example.com" in sidebar_text(at)
    assert "8 of 8 generations remaining today" in sidebar_text(at)
    at.button(key="open_generate").click().run()
    at.text_area(key="gen_prompt").input("a cat")
    at.button(key=SUBMIT).click().run()

    with session_scope(engine) as session:
        owners = set(session.scalars(select(GeneratedImage.user)))
    assert owners == {"ann@example.com"}
    assert "7 of 8 generations remaining today" in sidebar_text(at)


def test_identity_cannot_come_from_the_url(open_app, add_lora, engine):
    add_lora("spoof")
    at = open_app(
        LORA_PAGE, user=ANN, secrets=AUTH, id="spoof", user_id="boss", email="boss@example.com"
    )
    at.button(key="open_generate").click().run()
    at.text_area(key="gen_prompt").input("a cat")
    at.button(key=SUBMIT).click().run()

    with session_scope(engine) as session:
        assert set(session.scalars(select(GeneratedImage.user))) == {"ann@example.com"}


def test_demo_mode_says_everyone_is_the_shared_guest(open_app):
    at = open_app(user={"is_logged_in": True, "email": "someone@example.com"})

    assert "guest" in sidebar_text(at) and "every visitor shares this quota" in sidebar_text(at)
    assert "someone@example.com" not in sidebar_text(at)


def test_exempt_users_see_unlimited(open_app, monkeypatch):
    monkeypatch.setenv("EXEMPT_USERS", "ann@example.com")

    at = open_app(user=ANN, secrets=AUTH)

    assert "Unlimited generations" in sidebar_text(at)


def test_login_can_be_required_for_every_page(open_app, monkeypatch, add_lora):
    monkeypatch.setenv("REQUIRE_LOGIN", "true")
    add_lora("closed")

    at = open_app(user=SIGNED_OUT, secrets=AUTH)

    assert "Sign in (in the sidebar) to use LoRA Studio." in at.info[0].value
    assert not gallery_titles(at)  # no LoRA cards


def test_admins_see_usage_and_can_hide_a_lora(open_app, monkeypatch, add_lora, engine):
    monkeypatch.setenv("ADMIN_USERS", "boss@example.com")
    add_lora("shown", trigger_word="shown")
    add_lora("to-hide", trigger_word="tohide")
    boss = {"is_logged_in": True, "email": "boss@example.com"}

    at = open_app("app_pages/usage.py", user=boss, secrets=AUTH)
    assert not at.exception
    assert at.title[0].value == "Usage"
    at.button(key="hide_to-hide").click().run()

    with session_scope(engine) as session:
        assert session.get(LoraTraining, "to-hide").hidden
    gallery = open_app(user=ANN, secrets=AUTH)
    assert gallery_titles(gallery) == ["shown"]


def test_non_admins_have_no_usage_page(open_app, monkeypatch):
    monkeypatch.setenv("ADMIN_USERS", "boss@example.com")

    at = open_app(user=ANN, secrets=AUTH)

    assert "Usage" not in [link.proto.label for link in at.get("page_link")]


def test_admins_see_each_users_estimated_spend_this_window(
    open_app, monkeypatch, engine, add_batch
):
    from datetime import timedelta

    from lora_core.data.models import GenerationBatch

    monkeypatch.setenv("ADMIN_USERS", "boss@example.com")
    monkeypatch.setenv("FAL_PRICE_PER_MEGAPIXEL", "1")
    recent = add_batch(user="ann@example.com", age=timedelta(hours=2))
    old = add_batch(user="ann@example.com", age=timedelta(days=3))  # outside the window
    with session_scope(engine) as session:
        for batch_id in (recent, old):
            session.get(GenerationBatch, batch_id).images_returned = 4
        session.commit()

    at = open_app(
        "app_pages/usage.py", user={"is_logged_in": True, "email": "boss@example.com"}, secrets=AUTH
    )

    table = at.dataframe[0].value
    [ann] = table[table["user"] == "ann@example.com"].to_dict("records")
    assert ann["est. spend ($)"] == round(4 * 1.048576, 2)  # the recent batch only


def test_who_is_read_once_a_run_and_again_in_the_next(open_app, add_lora, monkeypatch):
    """A page asks who the user is several times a run: the login is read once (it was
    once per question, each parsing the secrets); signing in starts a new run, which
    sees the new identity."""
    from lora_core import identity

    add_lora("mine")
    at = open_app(LORA_PAGE, user=SIGNED_OUT, secrets=AUTH, id="mine")
    assert at.button(key="sign_in").label == "Sign in"
    reads: list[object] = []
    real_resolve = identity.resolve_identity
    monkeypatch.setattr(
        identity, "resolve_identity", lambda **kw: reads.append(kw) or real_resolve(**kw)
    )

    at.user = ANN
    at.run()

    assert "ann@example.com" in sidebar_text(at)
    assert at.button(key="open_generate").label == "Generate"
    assert len(reads) == 1
