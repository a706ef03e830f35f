"""Hostile input, generated: every prompt and id ends in a valid batch or a clear message,
never an exception and never a partial write."""

from __future__ import annotations

from datetime import timedelta

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from sqlalchemy import delete, select

from lora_core.data import lookups
from lora_core.data.db import session_scope
from lora_core.data.models import GeneratedImage, GenerationBatch
from lora_core.errors import InvalidPrompt, LoraNotFound
from lora_core.generation import service
from lora_core.generation.quota import QuotaPolicy
from lora_core.generation.service import GenerationKit

NASTY = st.sampled_from(
    [
        "",
        " ",
        "\t\n",
        "x" * 500,
        "x" * 501,
        " " + "y" * 500 + " ",
        "e\u0301\u0301\u0301 combining",
        "🦊🌊 emoji 👩‍👩‍👧",
        "\x00\x07 control \x1b[31m",
        "'; DROP TABLE generated_images; --",
        '<script>alert("x")</script><img src=x onerror=alert(1)>',
        "100% of _all_ \\ backslashes",
    ]
)
PROMPTS = st.one_of(NASTY, st.text(max_size=600))
IDS = st.one_of(
    st.sampled_from(["", "unknown", "../../etc/passwd", "a" * 5000, "'\"", "%00", "lora 1"]),
    st.text(max_size=100),
)
UNLIMITED = QuotaPolicy(limit=10_000, window=timedelta(hours=24))
FAST = settings(max_examples=60, deadline=None, suppress_health_check=list(HealthCheck))


def clear(engine) -> None:
    with session_scope(engine) as session:
        session.execute(delete(GeneratedImage))
        session.execute(delete(GenerationBatch))
        session.commit()


@FAST
@given(prompt=PROMPTS)
def test_any_prompt_is_a_batch_or_a_clear_message(engine, add_lora, preview_generator, prompt):
    with session_scope(engine) as session:
        missing = lookups.get_lora(session=session, lora_id="target") is None
    if missing:  # the engine outlives the examples; the LoRA is added once
        add_lora("target")
    clear(engine)
    try:
        outcome = service.generate(
            kit=GenerationKit(engine=engine, generator=preview_generator, policy=UNLIMITED),
            user="ann",
            lora_id="target",
            prompt=prompt,
        )
    except InvalidPrompt as error:
        assert str(error)
        with session_scope(engine) as session:
            assert session.scalars(select(GenerationBatch)).all() == []
            assert session.scalars(select(GeneratedImage)).all() == []
        return
    assert 1 <= len(prompt.strip()) <= 500
    with session_scope(engine) as session:
        stored = session.scalars(select(GeneratedImage.prompt)).all()
    assert stored == [prompt] * 4 == [outcome.prompt] * 4  # exactly as typed


@FAST
@given(lora_id=IDS)
def test_any_id_finds_a_lora_or_nothing(engine, add_lora, lora_id):
    with session_scope(engine) as session:
        assert lookups.get_lora(session=session, lora_id=lora_id) is None


@FAST
@given(lora_id=IDS)
def test_any_id_asked_to_generate_is_not_found_and_costs_nothing(
    engine, preview_generator, lora_id
):
    try:
        service.generate(
            kit=GenerationKit(engine=engine, generator=preview_generator, policy=UNLIMITED),
            user="ann",
            lora_id=lora_id,
            prompt="a cat",
        )
    except LoraNotFound as error:
        assert str(error) == "LoRA not found"
    with session_scope(engine) as session:
        assert session.scalars(select(GenerationBatch)).all() == []
