"""Who the user is, and what they may do. The identity comes only from the login (or, with
no login configured, is the one shared guest of demo mode); never from the URL, a form or a
header, so nobody can spend someone else's quota or claim an admin's."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from lora_core.settings import Settings


@dataclass(frozen=True)
class Identity:
    user: str | None
    """Whom rows are stored and counted under (every row's `user`); None if signed out."""
    is_admin: bool = False
    demo: bool = False
    """No login is configured: every visitor is the same guest, sharing one quota."""

    @property
    def signed_in(self) -> bool:
        return self.user is not None


def resolve_identity(
    *, settings: Settings, login_configured: bool, claims: Mapping[str, Any] | None
) -> Identity:
    """The identity for a request, from the login's claims (`st.user`) alone.

    The stored identity is the user's email, or the provider's subject when it has none.
    """
    if not login_configured:
        return _with_role(settings, settings.local_user, demo=True)
    if not claims or not claims.get("is_logged_in"):
        return Identity(user=None)
    user = str(claims.get("email") or claims.get("sub") or "").strip()
    return _with_role(settings, user, demo=False) if user else Identity(user=None)


def _with_role(settings: Settings, user: str, *, demo: bool) -> Identity:
    return Identity(user=user, is_admin=user in admin_users(settings), demo=demo)


def admin_users(settings: Settings) -> frozenset[str]:
    """ADMIN_USERS, or (when it is not set) the exempt users, as the original plan's admins."""
    return settings.admin_users or settings.exempt_users


def exempt_users(settings: Settings) -> frozenset[str]:
    """Quota-free identities: the exempt users and the admins."""
    return settings.exempt_users | settings.admin_users
