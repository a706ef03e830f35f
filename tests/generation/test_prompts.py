"""Prompts: checked before any cost, and a user's own recent ones for "My prompts"."""

from __future__ import annotations

from datetime import timedelta

import pytest

from lora_core.data.clock import to_iso
from lora_core.data.db import session_scope
from lora_core.data.models import GenerationBatch
from lora_core.errors import InvalidPrompt
from lora_core.generation import prompts
from tests.conftest import NOW

pytestmark = pytest.mark.both_backends


def test_my_prompts_are_the_latest_twenty_distinct_ones_newest_first(engine):
    with session_scope(engine) as session:
        for number in range(25):
            session.add(
                GenerationBatch(
                    id=f"b{number}", lora_training_id="l", user="ann",
                    prompt=f"idea {number}", status="succeeded",
                    created_at=to_iso(NOW - timedelta(minutes=100 - number)),
                )
            )  # fmt: skip
        session.add(
            GenerationBatch(id="again", lora_training_id="l", user="ann",
                            prompt="idea 3", status="succeeded", created_at=to_iso(NOW))
        )  # fmt: skip
        session.commit()

    with session_scope(engine) as session:
        recent = prompts.recent_prompts(session=session, user="ann")

    assert len(recent) == 20
    assert recent[:3] == ["idea 3", "idea 24", "idea 23"]  # used again: first, once


def test_an_empty_prompt_says_what_to_type():
    with pytest.raises(InvalidPrompt) as refused:
        prompts.clean_prompt("   ")
    assert str(refused.value) == "Enter a prompt describing the image you want to create."
