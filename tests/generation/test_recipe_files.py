"""Recipes inside the image files: written into stored and downloaded JPEGs, read back."""

from __future__ import annotations

import io
import zipfile

import pytest
from PIL import Image, PngImagePlugin
from sqlalchemy import select

from lora_core.data.db import session_scope
from lora_core.data.models import GeneratedImage, LoraTraining
from lora_core.errors import InvalidFile
from lora_core.gallery import downloads, views
from lora_core.generation import recipe_files
from lora_core.generation.recipe import Recipe
from tests.support.factories import png_claiming, png_with_parameters

FIELDS = recipe_files.recipe_fields(
    prompt="a fox ü 雪", full_prompt="a fox ü 雪 in the style of sks", lora_id="l1",
    lora_name="Snow fox", trigger_word="sks", weights_url="https://w.example/a.safetensors",
    recipe=Recipe(lora_scale=0.5, steps=20, guidance=4.0, image_size="portrait_4_3", seed=9),
    seed="9", created_at="2026-12-01T10:00:00.000Z",
)  # fmt: skip


def jpeg(size=(64, 48), color="red") -> bytes:
    buffer = io.BytesIO()
    Image.new("RGB", size, color).save(buffer, "JPEG", quality=90)
    return buffer.getvalue()


def pixels(data: bytes) -> bytes:
    with Image.open(io.BytesIO(data)) as image:
        return image.tobytes()


def test_a_recipe_round_trips_through_a_jpeg_without_touching_its_pixels():
    original = jpeg()

    labelled = recipe_files.embed(original, FIELDS)

    found = recipe_files.read(labelled)
    assert found is not None and found.fields == FIELDS  # the prompt as typed, unicode too
    assert pixels(labelled) == pixels(original)
    with Image.open(io.BytesIO(labelled)) as image:
        exif = image.getexif()
        assert exif[0x0131] == "LoRA Studio"
        assert exif[0x010E].endswith("in the style of sks")  # what viewers show


def test_labelling_twice_keeps_one_recipe_the_newest():
    once = recipe_files.embed(jpeg(), FIELDS)
    newer = {**FIELDS, "seed": "10"}

    twice = recipe_files.embed(once, newer)

    assert twice.count(b"Exif\x00\x00") == 1
    assert recipe_files.read(twice).fields["seed"] == "10"


def test_files_without_a_recipe_say_so_and_other_tools_text_is_read():
    info = PngImagePlugin.PngInfo()
    info.add_text("parameters", "a cat\nSteps: 20, Sampler: Euler a, Seed: 1")
    png = io.BytesIO()
    Image.new("RGB", (8, 8)).save(png, "PNG", pnginfo=info)

    assert recipe_files.read(jpeg()) is None
    assert recipe_files.read(b"not an image") is None
    assert recipe_files.read(png.getvalue()).other_text.startswith("a cat\nSteps: 20")
    assert recipe_files.embed(png.getvalue(), FIELDS) == png.getvalue()  # PNGs left as they are


@pytest.mark.both_backends
def test_stored_images_carry_their_recipe(add_lora, generate_batch, media_store):
    lora = add_lora(trigger_word="wtrclr")
    made_with = Recipe(lora_scale=0.8, steps=12, guidance=6.0, image_size="square", seed=77)

    outcome = generate_batch(lora.id, "a lighthouse", recipe=made_with, store=media_store)

    for image in outcome.images:
        found = recipe_files.read(media_store.path_for(image.image_url).read_bytes())
        assert found is not None
        fields = found.fields
        assert (fields["prompt"], fields["full_prompt"]) == (
            "a lighthouse", "a lighthouse in the style of wtrclr"
        )  # fmt: skip
        assert fields["lora"]["id"] == lora.id and fields["lora"]["trigger_word"] == "wtrclr"
        assert (fields["lora_scale"], fields["steps"], fields["guidance"]) == (0.8, 12, 6.0)
        assert (fields["seed"], fields["image_size"], fields["width"]) == ("77", "square", 512)
        assert fields["model"] == "fal-ai/flux-lora" and fields["app"] == "LoRA Studio"


@pytest.mark.both_backends
def test_downloads_carry_the_recipe_of_each_image(engine, add_lora, generate_batch, media_store):
    lora = add_lora(trigger_word="wtrclr")
    # No store: the files are fal's, without a recipe, until downloaded.
    generate_batch(lora.id, "a storm", recipe=Recipe(steps=9, seed=5))
    with session_scope(engine) as session:
        images = list(session.scalars(select(GeneratedImage)))
        stored_lora = session.get(LoraTraining, lora.id)
        recipes = views.recipes_of(session=session, images=images)

    one = downloads.image_download(images[0], stored_lora, recipes[images[0].id], store=media_store)
    archive = zipfile.ZipFile(
        io.BytesIO(downloads.images_zip(images, stored_lora, store=media_store, recipes=recipes))
    )

    assert recipe_files.read(one).fields["steps"] == 9
    names = [name for name in archive.namelist() if name.startswith("images/")]
    assert len(names) == 4
    assert {recipe_files.read(archive.read(name)).fields["seed"] for name in names} == {"5"}


def test_a_picture_too_large_to_decode_is_said_to_be_so():
    """A 30000×30000 PNG of a few hundred bytes: Pillow refuses to open it (a bomb)."""
    with pytest.raises(InvalidFile, match="This picture is too large to read"):
        recipe_files.read(png_claiming(30_000, 30_000))


def test_another_tools_huge_text_is_cut_to_what_a_page_can_show():
    text = "a cat, " * 300_000  # 2.1 million characters

    found = recipe_files.read(png_with_parameters(text))

    assert found.other_text == text[: recipe_files.MAX_TEXT_SHOWN]
    assert found.cut == len(text) - recipe_files.MAX_TEXT_SHOWN


def test_a_file_over_the_readers_limit_is_refused_unread():
    big = png_with_parameters("x") + b"\x00" * recipe_files.MAX_FILE_BYTES

    with pytest.raises(InvalidFile, match="reads image files up to 20 MB"):
        recipe_files.read(big)
