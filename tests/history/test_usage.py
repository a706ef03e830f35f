"""The admins' Usage page's figures, from the core: slots as the quota counts them, what is
left, and the spend at the configured price."""

from __future__ import annotations

from datetime import timedelta

import pytest
from sqlalchemy import update

from lora_core.data.db import session_scope
from lora_core.data.models import GenerationBatch
from lora_core.generation.quota import QuotaPolicy
from lora_core.history import usage
from tests.conftest import NOW

pytestmark = pytest.mark.both_backends


def test_each_users_slots_remaining_and_spend(engine, add_batch):
    for _ in range(3):
        add_batch(user="ann")
    add_batch(user="admin", age=timedelta(hours=2))
    add_batch(user="bob", age=timedelta(hours=30))  # outside the window
    with session_scope(engine) as session:
        # 4 square HD images each: 4.194304 megapixels
        session.execute(update(GenerationBatch).values(images_returned=4))
        session.commit()
    policy = QuotaPolicy(limit=8, window=timedelta(hours=24), exempt_users=frozenset({"admin"}))

    with session_scope(engine) as session:
        rows = usage.usage(session=session, policy=policy, price_per_megapixel=0.5, now=NOW)

    assert [(row.user, row.slots_used, row.remaining) for row in rows] == [
        ("ann", 3, 5),
        ("admin", 1, None),
    ]
    assert rows[0].spend == pytest.approx(3 * 4 * 1024 * 1024 / 1_000_000 * 0.5)


def test_spend_is_megapixels_at_the_price():
    assert usage.estimated_spend(2.0, price_per_megapixel=0.035) == pytest.approx(0.07)
