"""Identity and roles: from the login's claims only."""

from __future__ import annotations

from lora_core.identity import Identity, admin_users, exempt_users, resolve_identity
from lora_core.settings import Settings

SETTINGS = Settings(exempt_users="qa@example.com", admin_users="boss@example.com")


def test_without_login_everyone_is_the_shared_guest():
    who = resolve_identity(settings=SETTINGS, login_configured=False, claims=None)

    assert who == Identity(user="guest", is_admin=False, demo=True)


def test_claims_are_ignored_when_no_login_is_configured():
    who = resolve_identity(
        settings=SETTINGS,
        login_configured=False,
        claims={"is_logged_in": True, "email": "boss@example.com"},
    )

    assert who.user == "guest" and not who.is_admin


def test_signed_out_has_no_identity():
    assert resolve_identity(settings=SETTINGS, login_configured=True, claims={}).user is None
    claims = {"email": "ann@example.com"}  # no is_logged_in: not a login
    assert resolve_identity(settings=SETTINGS, login_configured=True, claims=claims).user is None


def test_the_email_is_the_identity_else_the_subject():
    by_email = {"is_logged_in": True, "email": "ann@example.com", "sub": "123"}
    by_subject = {"is_logged_in": True, "sub": "google-oauth2|123"}

    assert resolve_identity(settings=SETTINGS, login_configured=True, claims=by_email).user == (
        "ann@example.com"
    )
    assert resolve_identity(settings=SETTINGS, login_configured=True, claims=by_subject).user == (
        "google-oauth2|123"
    )


def test_admins_and_exempt_users():
    boss = {"is_logged_in": True, "email": "boss@example.com"}

    assert resolve_identity(settings=SETTINGS, login_configured=True, claims=boss).is_admin
    assert exempt_users(SETTINGS) == {"qa@example.com", "boss@example.com"}
    assert admin_users(SETTINGS) == {"boss@example.com"}
    assert admin_users(Settings(exempt_users="qa@example.com")) == {"qa@example.com"}
