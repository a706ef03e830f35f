"""The LoRA Lab page: reading the recipe inside an image file, and remixing it."""

from __future__ import annotations

import io

from PIL import Image, PngImagePlugin

from lora_core.generation import recipe_files
from lora_core.generation.recipe import Recipe
from tests.conftest import open_with_query
from tests.support.markup import readable

LAB = "app_pages/lab.py"


def setting(widgets, name: str):
    """The Generate dialog's Advanced widget for `name` (its key changes per opening)."""
    [widget] = [w for w in widgets if (w.key or "").startswith(f"gen_{name}_")]
    return widget


def jpeg() -> bytes:
    buffer = io.BytesIO()
    Image.new("RGB", (64, 64), "navy").save(buffer, "JPEG")
    return buffer.getvalue()


def labelled(lora_id: str, *, seed: str = "4242") -> bytes:
    return recipe_files.embed(
        jpeg(),
        recipe_files.recipe_fields(
            prompt="a fox in the snow", full_prompt="a fox in the snow in the style of wtrclr",
            lora_id=lora_id, lora_name=None, trigger_word="wtrclr", weights_url=None,
            recipe=Recipe(lora_scale=0.7, steps=16, guidance=5.0, image_size="square",
                          seed=int(seed)),
            seed=seed, created_at="2026-12-01T10:00:00.000Z",
        ),
    )  # fmt: skip


def drop(at, name: str, data: bytes, mime: str = "image/jpeg"):
    at.get("file_uploader")[0].set_value([(name, data, mime)])
    return at.run()


def shown(at) -> str:
    parts = [e.value for kind in ("markdown", "caption", "text", "info") for e in getattr(at, kind)]
    return readable("\n".join(str(part) for part in parts))


def test_a_dropped_image_tells_its_recipe_and_remixes_it(open_app, add_lora):
    add_lora("snowy", trigger_word="wtrclr")
    at = drop(open_with_query(open_app, LAB), "fox.jpg", labelled("snowy"))

    assert not at.exception
    page = shown(at)
    assert "**a fox in the snow**" in page
    assert "seed 4242 · scale 0.7 · 16 steps · guidance 5 · 512×512" in page
    assert "Sent to fal: a fox in the snow in the style of wtrclr" in page

    at.button(key="remix_file").click().run()

    assert at.query_params["id"] == "snowy"
    assert at.text_area(key="gen_prompt").value == "a fox in the snow"
    assert setting(at.text_input, "seed").value == "4242"
    assert (setting(at.slider, "scale").value, setting(at.slider, "steps").value) == (0.7, 16)


def test_an_image_without_a_recipe_says_so(open_app):
    at = drop(open_with_query(open_app, LAB), "plain.jpg", jpeg())

    assert not at.exception
    assert "This image carries no recipe" in at.info[0].value


def test_another_tools_parameters_are_shown_as_they_are(open_app):
    info = PngImagePlugin.PngInfo()
    info.add_text("parameters", "a cat **bold**\nSteps: 20, Seed: 1")
    png = io.BytesIO()
    Image.new("RGB", (8, 8)).save(png, "PNG", pnginfo=info)

    at = drop(open_with_query(open_app, LAB), "a1111.png", png.getvalue(), "image/png")

    assert [t.value for t in at.main.text] == ["a cat **bold**\nSteps: 20, Seed: 1"]  # literal


def test_a_recipe_of_a_lora_this_app_does_not_have_cannot_be_remixed(open_app):
    at = drop(open_with_query(open_app, LAB), "fox.jpg", labelled("elsewhere"))

    assert "cannot be remixed here" in at.info[0].value
    assert "remix_file" not in [button.key for button in at.button]
