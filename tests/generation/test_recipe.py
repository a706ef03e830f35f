"""Generation settings: checked, sent to fal exactly, stored with the batch, reproduced."""

from __future__ import annotations

import pytest

from lora_core.data.db import session_scope
from lora_core.data.models import GeneratedImage
from lora_core.errors import InvalidSettings
from lora_core.gallery import views
from lora_core.generation import recipe
from lora_core.generation.recipe import PLAN, Recipe
from tests.support.factories import stored_batches

pytestmark = pytest.mark.both_backends

EVALUATION = Recipe(lora_scale=0.75, steps=20, guidance=5.0, image_size="landscape_16_9", seed=42)


@pytest.fixture
def generate(generate_batch):
    return generate_batch


def test_the_plans_settings_are_the_default_and_fal_picks_the_seed(add_lora, generate, fake_fal):
    lora = add_lora(trigger_word="wtrclr")

    generate(lora.id, "a lighthouse")

    body = fake_fal.submissions[0].body
    assert (body["loras"][0]["scale"], body["num_inference_steps"]) == (1.5, 28)
    assert (body["guidance_scale"], body["image_size"]) == (3.5, "square_hd")
    assert "seed" not in body


def test_settings_are_sent_exactly_and_stored_with_the_batch(engine, add_lora, generate, fake_fal):
    lora = add_lora(trigger_word="wtrclr")

    outcome = generate(lora.id, "a lighthouse", recipe=EVALUATION)

    [submission] = fake_fal.submissions
    assert submission.body["loras"] == [{"path": lora.lora_weights_url, "scale": 0.75}]
    assert {key: submission.body[key] for key in recipe.fal_arguments(EVALUATION)} == {
        "image_size": "landscape_16_9", "num_inference_steps": 20, "guidance_scale": 5.0,
        "seed": 42,
    }  # fmt: skip
    [batch] = stored_batches(engine)
    assert (batch.lora_scale, batch.num_inference_steps, batch.guidance_scale) == (0.75, 20, 5.0)
    assert (batch.image_size, batch.requested_seed) == ("landscape_16_9", "42")
    assert {(image.image_width, image.image_height, image.seed) for image in outcome.images} == {
        (1024, 576, "42")
    }


def test_reproducing_an_image_sends_the_same_seed_and_settings(
    engine, add_lora, generate, fake_fal
):
    lora = add_lora(trigger_word="wtrclr")
    first = generate(lora.id, "a lighthouse", recipe=EVALUATION.with_seed(None))
    with session_scope(engine) as session:
        image = session.get(GeneratedImage, first.images[0].id)
        made_with = views.image_recipe(session=session, image=image)

    generate(lora.id, image.prompt, recipe=made_with)

    original, again = (submission.body for submission in fake_fal.submissions)
    assert "seed" not in original and again["seed"] == int(fake_fal.script.seed)
    assert {k: v for k, v in again.items() if k != "seed"} == original


def test_out_of_range_settings_are_refused_before_any_cost(engine, add_lora, generate, fake_fal):
    lora = add_lora()
    for bad in (
        Recipe(lora_scale=2.5), Recipe(steps=0), Recipe(steps=51), Recipe(guidance=21),
        Recipe(image_size="huge"), Recipe(seed=-1), Recipe(seed=2**64),
    ):  # fmt: skip
        with pytest.raises(InvalidSettings):
            generate(lora.id, "a lighthouse", recipe=bad)
    assert fake_fal.submissions == [] and stored_batches(engine) == []


def test_a_batch_stored_before_settings_were_recorded_reads_as_the_plans(engine, add_lora):
    with session_scope(engine) as session:
        image = GeneratedImage(
            id="old", lora_training_id="x", user="w", prompt="p",
            image_url="https://cdn.example/old.jpg", created_at="2025-01-01T00:00:00Z",
            seed="7",
        )  # fmt: skip
        assert views.image_recipe(session=session, image=image) == PLAN.with_seed(7)


@pytest.mark.parametrize(
    ("typed", "seed"), [("", None), ("  ", None), ("42", 42), ("1,234", 1234), (None, None)]
)
def test_a_typed_seed_is_a_number_or_blank_for_random(typed, seed):
    assert recipe.parse_seed(typed) == seed


@pytest.mark.parametrize("typed", ["-1", "4.2", "abc", "1e9"])
def test_a_seed_that_is_not_a_whole_number_is_refused(typed):
    with pytest.raises(InvalidSettings):
        recipe.parse_seed(typed)


def test_recipes_are_described_for_people():
    assert recipe.describe(EVALUATION) == "scale 0.75 · 20 steps · guidance 5 · 1024×576"


def test_the_ranges_include_their_ends():
    for edge in (
        Recipe(lora_scale=0), Recipe(lora_scale=2), Recipe(steps=1), Recipe(steps=50),
        Recipe(guidance=0), Recipe(guidance=20), Recipe(seed=0), Recipe(seed=recipe.MAX_SEED),
    ):  # fmt: skip
        assert recipe.checked(edge) == edge


def test_a_typed_seed_may_group_its_digits_and_a_bad_one_says_what_to_type():
    assert recipe.parse_seed("1_000_000") == 1_000_000
    with pytest.raises(InvalidSettings, match=r"^The seed must be a whole number, or blank"):
        recipe.parse_seed("x")


def test_a_stored_batch_without_a_seed_reads_as_random_and_unknown_sizes_by_name():
    made = recipe.from_batch(lora_scale=None, steps=None, guidance=None, image_size=None,
                             seed=None)  # fmt: skip
    assert made == PLAN
    assert recipe.describe(Recipe(image_size="custom_9000")).endswith(" · custom_9000")
