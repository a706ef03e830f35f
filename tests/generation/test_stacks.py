"""Stacked LoRAs and prompt templates: what fal receives, what is stored beside the batch,
what the original app reads, and what a downloaded file's recipe says."""

from __future__ import annotations

import pytest
from sqlalchemy import select, text

from lora_core.data.db import session_scope
from lora_core.data.models import BatchLora, GeneratedImage, GenerationBatch, LoraTraining
from lora_core.errors import InvalidSettings, WeightsUnavailable
from lora_core.gallery import downloads, scorecards, views
from lora_core.generation import prompts, recipe_files
from lora_core.generation.recipe import PLAN, Recipe, StackedLora
from lora_core.identity import Identity
from tests.support.factories import stored_batches, stored_images
from tests.support.fakefal import model_error

pytestmark = pytest.mark.both_backends

ADMIN = Identity(user="admin@example.com", is_admin=True)


def stacked(*pairs: tuple[str, float], first_scale: float = 1.0) -> Recipe:
    return Recipe(
        lora_scale=first_scale,
        stack=tuple(StackedLora(lora_id, scale) for lora_id, scale in pairs),
    )


def test_fal_receives_every_lora_in_order_and_the_first_stays_the_batchs(
    engine, add_lora, generate_batch, fake_fal
):
    subject = add_lora("subject", trigger_word="ohwx")
    add_lora("style", trigger_word="wtrclr", weights_url="https://w.example/style.st")
    other = add_lora("other", trigger_word="neonnoir", weights_url="https://w.example/n.st")
    bystander = generate_batch(other.id, "a bystander")  # a batch of one LoRA, left as it is

    outcome = generate_batch(
        subject.id, " a lighthouse ", recipe=stacked(("style", 0.6), first_scale=1.1)
    )

    body = fake_fal.submissions[-1].body
    assert body["loras"] == [
        {"path": subject.lora_weights_url, "scale": 1.1},
        {"path": "https://w.example/style.st", "scale": 0.6},
    ]
    # The trigger words in the documented order: the first LoRA's, then each added one's.
    assert body["prompt"] == "a lighthouse in the style of ohwx in the style of wtrclr"
    with session_scope(engine) as session:
        batch = session.get(GenerationBatch, outcome.batch_id)
        rows = session.scalars(select(BatchLora)).all()
        # What the original app reads: the first LoRA in its own columns.
        legacy = session.execute(
            text("SELECT lora_training_id FROM generated_images WHERE batch_id = :b"),
            {"b": outcome.batch_id},
        ).scalars().all()  # fmt: skip
    assert (batch.lora_training_id, batch.lora_scale) == ("subject", 1.1)
    assert batch.full_prompt == body["prompt"] and batch.prompt == " a lighthouse "
    assert [(r.batch_id, r.position, r.lora_training_id, r.lora_scale) for r in rows] == [
        (outcome.batch_id, 1, "style", 0.6)
    ]
    assert legacy == ["subject"] * 4
    others = [b for b in stored_batches(engine) if b.id == bystander.batch_id]
    assert others[0].full_prompt == "a bystander in the style of neonnoir"


def test_three_loras_go_to_fal_in_the_order_they_were_added(
    engine, add_lora, generate_batch, fake_fal
):
    add_lora("a", trigger_word="ta")
    add_lora("b", trigger_word="tb", weights_url="https://w.example/b.st")
    add_lora("c", trigger_word="tc", weights_url="https://w.example/c.st")

    generate_batch("a", "{trigger} portrait", recipe=stacked(("c", 0.3), ("b", 2.0)))

    body = fake_fal.submissions[-1].body
    assert [lora["scale"] for lora in body["loras"]] == [1.0, 0.3, 2.0]
    assert body["loras"][1]["path"] == "https://w.example/c.st"
    # A suite's {trigger} takes the first LoRA's word; the others follow by the plan's rule.
    assert body["prompt"] == "ta portrait in the style of tc in the style of tb"


@pytest.mark.parametrize(
    ("stack", "most", "message"),
    [
        ((("b", 0.5), ("c", 0.5)), 1, "At most 1 LoRAs can be added"),
        ((("b", 0.5), ("b", 0.7)), 3, "A LoRA can be added only once."),
        ((("a", 0.5),), 3, "is already this generation's first LoRA"),
        ((("nope", 0.5),), 3, "An added LoRA was not found"),
        ((("b", 2.5),), 3, "An added LoRA's scale must be between 0 and 2."),
        ((("b", 0.5),), 0, "does not stack LoRAs"),
    ],
)
def test_a_stack_that_cannot_be_made_is_refused_before_any_cost(
    engine, add_lora, generate_batch, fake_fal, stack, most, message
):
    add_lora("a")
    add_lora("b")
    add_lora("c")

    with pytest.raises(InvalidSettings, match=message):
        generate_batch("a", "a cat", recipe=stacked(*stack), max_stacked=most)

    assert fake_fal.submissions == [] and stored_batches(engine) == []


def test_an_added_lora_that_is_not_ready_is_named(engine, add_lora, generate_batch, fake_fal):
    add_lora("a")
    add_lora("b", trigger_word="halfdone", status="pending")

    with pytest.raises(InvalidSettings, match=r"^halfdone: This LoRA is still training"):
        generate_batch("a", "a cat", recipe=stacked(("b", 0.5)))

    assert fake_fal.submissions == [] and stored_batches(engine) == []


def test_weights_fal_cannot_download_name_the_added_lora_and_free_the_slot(
    engine, add_lora, generate_batch, fake_fal
):
    add_lora("a", trigger_word="subject")
    add_lora("b", trigger_word="neonnoir", weights_url="https://w.example/b.st")
    fake_fal.script.result_error = (
        422,
        [model_error(["body", "loras", 1, "path"], "Failed to download", "file_download_error")],
    )

    with pytest.raises(WeightsUnavailable, match=r"^neonnoir: fal could not load"):
        generate_batch("a", "a cat", recipe=stacked(("b", 0.5)))

    assert [batch.status for batch in stored_batches(engine)] == ["failed"]
    assert stored_images(engine) == []


def test_a_prompt_template_words_the_prompt_and_old_recipes_keep_what_fal_got(
    engine, add_lora, generate_batch, fake_fal, media_store
):
    lora = add_lora("a", trigger_word="wtrclr")
    scorecards.save(
        engine=engine, who=ADMIN, lora_id="a", notes="", tags=(), verdict=None,
        prompt_template="  {prompt}, {trigger} style  ",
    )  # fmt: skip
    first = generate_batch("a", "a harbour")
    assert fake_fal.submissions[-1].body["prompt"] == "a harbour, wtrclr style"

    scorecards.save(
        engine=engine, who=ADMIN, lora_id="a", notes="", tags=(), verdict=None,
        prompt_template="watercolor by {trigger}: {prompt}",
    )  # fmt: skip
    generate_batch("a", "a harbour")
    assert fake_fal.submissions[-1].body["prompt"] == "watercolor by wtrclr: a harbour"

    with session_scope(engine) as session:
        image = session.get(GeneratedImage, first.images[0].id)
        made = views.recipes_of(session=session, images=[image])[image.id]
    data = downloads.with_recipe(recipe_files_jpeg(), image, lora, made)
    fields = recipe_files.read(data).fields
    assert fields["full_prompt"] == "a harbour, wtrclr style"  # what fal got, then
    assert fields["prompt"] == "a harbour"


@pytest.mark.parametrize(
    ("template", "message"),
    [("{trigger} style", "say where the prompt goes"), ("{prompt}" + "x" * 200, "limit is 200")],
)
def test_a_template_that_would_drop_the_prompt_is_refused(engine, add_lora, template, message):
    add_lora("a")
    with pytest.raises(InvalidSettings, match=message):
        scorecards.save(
            engine=engine, who=ADMIN, lora_id="a", notes="", tags=(), verdict=None,
            prompt_template=template,
        )  # fmt: skip


def test_a_template_applies_to_an_added_lora_after_the_first(
    engine, add_lora, generate_batch, fake_fal
):
    add_lora("a", trigger_word="ohwx")
    add_lora("b", trigger_word="wtrclr", weights_url="https://w.example/b.st")
    scorecards.save(
        engine=engine, who=ADMIN, lora_id="b", notes="", tags=(), verdict=None,
        prompt_template="{prompt}, {trigger} style",
    )  # fmt: skip

    generate_batch("a", "a dog", recipe=stacked(("b", 0.8)))

    assert fake_fal.submissions[-1].body["prompt"] == "a dog in the style of ohwx, wtrclr style"


def test_a_stacked_recipe_round_trips_through_a_downloaded_file(
    engine, add_lora, generate_batch, fake_fal, media_store
):
    first = add_lora("a", trigger_word="ohwx")
    add_lora("b", trigger_word="wtrclr", weights_url="https://w.example/b.st")
    outcome = generate_batch("a", "a dog", recipe=stacked(("b", 0.8), first_scale=1.2))

    with session_scope(engine) as session:
        image = session.get(GeneratedImage, outcome.images[0].id)
        made = views.recipes_of(session=session, images=[image])[image.id]
    data = downloads.with_recipe(recipe_files_jpeg(), image, first, made)
    fields = recipe_files.read(data).fields

    assert fields["lora"]["id"] == "a" and fields["lora_scale"] == 1.2
    assert [
        (more["id"], more["trigger_word"], more["scale"]) for more in fields["added_loras"]
    ] == [("b", "wtrclr", 0.8)]
    assert fields["full_prompt"] == "a dog in the style of ohwx in the style of wtrclr"
    again = recipe_files.as_recipe(fields)
    assert again == made.recipe
    assert again.stack == (StackedLora("b", 0.8),) and again.lora_scale == 1.2
    # The zip's manifest says it too.
    with session_scope(engine) as session:
        images = session.scalars(
            select(GeneratedImage).where(GeneratedImage.batch_id == outcome.batch_id)
        ).all()
        recipes = views.recipes_of(session=session, images=images)
    archive = downloads.images_zip(images, first, store=media_store, recipes=recipes)
    import io
    import json
    import zipfile

    with zipfile.ZipFile(io.BytesIO(archive)) as zipped:
        manifest = json.loads(zipped.read("manifest.json"))
    assert {row["added_loras"] for row in manifest} == {"b:0.8"}
    # Reproduced from the file: fal gets the same LoRAs again.
    generate_batch("a", fields["prompt"], recipe=again)
    assert fake_fal.submissions[-1].body["loras"] == fake_fal.submissions[-2].body["loras"]


def test_a_recipe_of_one_lora_reads_as_before():
    fields = recipe_files.recipe_fields(
        prompt="p", full_prompt="p in the style of t", lora_id="a", lora_name=None,
        trigger_word="t", weights_url=None, recipe=PLAN, seed="5", created_at="x",
    )  # fmt: skip
    fields.pop("added_loras")  # a file written before stacks existed
    assert recipe_files.as_recipe(fields) == PLAN.with_seed(5)


def test_full_prompt_applies_each_wording_in_turn():
    wordings = [prompts.Wording("ohwx"), prompts.Wording("wtrclr", "{trigger} art of {prompt}")]
    assert prompts.full_prompt(" a cat ", wordings) == "wtrclr art of a cat in the style of ohwx"
    assert prompts.full_prompt(" a cat ", []) == "a cat"


def recipe_files_jpeg() -> bytes:
    """A small JPEG to carry a recipe."""
    import io

    from PIL import Image

    buffer = io.BytesIO()
    Image.new("RGB", (8, 8), "white").save(buffer, format="JPEG")
    return buffer.getvalue()


def test_a_stacked_batch_shows_on_every_loras_page_marked_with_the_others(
    engine, add_lora, add_images, generate_batch
):
    from lora_core.gallery import groups, queries

    add_lora("subject", trigger_word="ohwx")
    add_lora("style", trigger_word="wtrclr", weights_url="https://w.example/s.st")
    add_lora("bystander", trigger_word="other", weights_url="https://w.example/o.st")
    add_images("style", 30)  # style's own older images
    add_images("bystander", 3)
    outcome = generate_batch("subject", "a fox", recipe=stacked(("style", 0.6), first_scale=1.1))
    stacked_ids = {image.id for image in outcome.images}

    with session_scope(engine) as session:
        key_before = queries.image_count_key(session=session, lora_id="style")
        total = queries.count_lora_images(session=session, lora_id="style")
        first_page = queries.list_lora_images(session=session, lora_id="style", page_size=24)
        second = queries.list_lora_images(session=session, lora_id="style", page=2, page_size=24)
        on_subject = queries.list_lora_images(session=session, lora_id="subject")
        on_bystander = queries.list_lora_images(session=session, lora_id="bystander")
        opened = queries.get_image(session=session, lora_id="style", image_id=outcome.images[0].id)
        refused = queries.get_image(
            session=session, lora_id="bystander", image_id=outcome.images[0].id
        )
        marks_style = groups.batch_notes(
            session=session, images=first_page.items, lora_id="style"
        ).marks
        marks_subject = groups.batch_notes(
            session=session, images=on_subject.items, lora_id="subject"
        ).marks

    assert total == 34 and first_page.total == 34
    assert {image.id for image in first_page.items[:4]} == stacked_ids  # the newest
    assert len(first_page.items) == 24 and len(second.items) == 10
    every = [image.id for image in first_page.items + second.items]
    assert len(set(every)) == 34
    assert {image.id for image in on_subject.items} == stacked_ids
    assert {image.id for image in on_bystander.items}.isdisjoint(stacked_ids)
    assert opened is not None and refused is None
    assert marks_style == {outcome.batch_id: "with ohwx at 1.1"}
    assert marks_subject == {outcome.batch_id: "with wtrclr at 0.6"}
    # Downloaded from style's page, its recipe still names its own LoRA first.
    with session_scope(engine) as session:
        made = views.recipes_of(session=session, images=[opened])[opened.id]
        style = session.get(LoraTraining, "style")
    fields = recipe_files.read(downloads.with_recipe(recipe_files_jpeg(), opened, style, made))
    assert fields.fields["lora"]["id"] == "subject"
    assert [more["id"] for more in fields.fields["added_loras"]] == ["style"]

    from tests.support.factories import hide

    hide(engine, outcome.images[0].id)
    with session_scope(engine) as session:
        assert queries.image_count_key(session=session, lora_id="style") != key_before
        assert queries.count_lora_images(session=session, lora_id="style") == 33


class Failing:
    """A generator whose first job fal fails to download a LoRA for (`place`, as fal names
    it), then succeeds; it keeps every request it got."""

    downloads_weights = True

    def __init__(self, place):
        self.place, self.requests = place, []

    def generate(self, request, on_progress=None):
        from lora_core.errors import WeightsUnavailable
        from lora_core.generation.generators import GenerationResult

        self.requests.append(request)
        if len(self.requests) == 1:
            raise WeightsUnavailable("fal could not load this LoRA's weights", place=self.place)
        return GenerationResult(images=[], seed="1", request_id="r")


def lora_row(lora_id: str, copy: str | None = None) -> LoraTraining:
    return LoraTraining(
        id=lora_id, request_id=lora_id, user="u", trigger_word=lora_id, status="completed",
        created_at="2026-01-01T00:00:00.000Z", lora_weights_url=f"https://fal.media/{lora_id}",
        weights_copy_url=copy,
    )  # fmt: skip


def test_fals_place_is_read_against_the_loras_it_was_sent():
    """A sweep's baseline cell with house stacked sends fal house alone: fal's loras[0] is
    house, whose durable copy is tried once."""
    from lora_core.generation import service
    from lora_core.generation.generators import AddedWeights, GenerationRequest

    house = lora_row("house", copy="https://bucket.example/house.safetensors")
    generator = Failing(place=0)
    request = GenerationRequest(
        batch_id="b", full_prompt="p", weights_url=None, lora_label="no LoRA",
        added=(AddedWeights("https://fal.media/house", 0.5, "house"),),
    )  # fmt: skip

    service._generate_with_weights_fallback(generator, request, [None, house], lambda _p: None, [])

    _first, second = generator.requests
    assert second.weights_url is None
    assert second.added[0].weights_url == "https://bucket.example/house.safetensors"


def test_a_download_failure_fal_does_not_place_names_every_lora_and_guesses_none():
    from lora_core.generation import service
    from lora_core.generation.generators import AddedWeights, GenerationRequest

    first, style = lora_row("first", copy="https://b.example/f"), lora_row("style")
    request = GenerationRequest(
        batch_id="b", full_prompt="p", weights_url="https://fal.media/first", lora_label="first",
        added=(AddedWeights("https://fal.media/style", 0.5, "style"),),
    )  # fmt: skip
    generator = Failing(place=None)

    with pytest.raises(WeightsUnavailable, match=r"one of these LoRAs \(first, style\)"):
        service._generate_with_weights_fallback(
            generator, request, [first, style], lambda _p: None, []
        )
    assert len(generator.requests) == 1  # no retry with a guessed copy


def test_stacks_are_read_in_chunks_that_any_server_accepts(engine, monkeypatch):
    from lora_core.generation import stacks

    monkeypatch.setattr(stacks, "CHUNK", 2)
    with session_scope(engine) as session:
        for number in range(5):
            session.add(BatchLora(batch_id=f"b{number}", position=1, lora_training_id="s",
                                  lora_scale=number / 10))  # fmt: skip
        session.add(BatchLora(batch_id="b4", position=2, lora_training_id="t", lora_scale=1))
        session.commit()
        found = stacks.stacks_of(session, [f"b{number}" for number in range(6)])

    assert len(found) == 5 and "b5" not in found
    assert found["b4"] == (StackedLora("s", 0.4), StackedLora("t", 1.0))


def test_a_baseline_cell_with_a_lora_stacked_stays_off_that_loras_page(engine, add_lora):
    from lora_core.gallery import queries
    from lora_core.generation.recipe import NO_LORA

    add_lora("house")
    with session_scope(engine) as session:
        session.add(BatchLora(batch_id="cell", position=1, lora_training_id="house",
                              lora_scale=0.5))  # fmt: skip
        session.add(
            GeneratedImage(id="base", lora_training_id=NO_LORA, user="ann", prompt="p",
                           image_url="https://cdn.example/b.jpg", batch_id="cell",
                           created_at="2026-12-01T00:00:00.000Z")
        )  # fmt: skip
        session.commit()
        page = queries.list_lora_images(session=session, lora_id="house")
        key = queries.image_count_key(session=session, lora_id="house")

    assert page.total == 0 and page.items == []
    assert key == (None, 0, 0, 0)
