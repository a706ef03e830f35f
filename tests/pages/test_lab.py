"""The LoRA Lab page: reading the recipe inside an image file, and remixing it."""

from __future__ import annotations

import io
import json
import re
import time
from datetime import timedelta

from PIL import Image, PngImagePlugin
from sqlalchemy import select

from lora_core.data.clock import to_iso, utc_now
from lora_core.data.db import session_scope
from lora_core.data.models import BatchLora, GeneratedImage, GenerationBatch, Sweep
from lora_core.generation import recipe_files
from lora_core.generation.recipe import NO_LORA, Recipe, StackedLora
from tests.conftest import open_with_query
from tests.support.factories import png_claiming, png_with_parameters
from tests.support.markup import (
    batch_headers,
    figures,
    html_blocks,
    readable,
    table_column,
    table_rows,
    text_of_html,
)
from ui.errors import UNEXPECTED

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
    return readable("\n".join([*(str(part) for part in parts), *html_blocks(at)]))


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
    assert any("This image carries no recipe" in info.value for info in at.info)


def test_another_tools_parameters_are_shown_as_they_are(open_app):
    info = PngImagePlugin.PngInfo()
    info.add_text("parameters", "a cat **bold**\nSteps: 20, Seed: 1")
    png = io.BytesIO()
    Image.new("RGB", (8, 8)).save(png, "PNG", pnginfo=info)

    at = drop(open_with_query(open_app, LAB), "a1111.png", png.getvalue(), "image/png")

    assert [t.value for t in at.main.text] == ["a cat **bold**\nSteps: 20, Seed: 1"]  # literal


def test_a_picture_too_large_to_decode_says_so_not_something_went_wrong(open_app):
    at = drop(open_with_query(open_app, LAB), "bomb.png", png_claiming(30_000, 30_000), "image/png")

    assert not at.exception
    [warning] = at.warning
    assert readable(warning.value).startswith("This picture is too large to read")
    assert UNEXPECTED not in [error.value for error in at.error]


def test_a_huge_text_chunk_is_shown_cut_and_says_how_much_was_left_out(open_app):
    text = "a cat, " * 300_000  # 2.1 million characters (issue #30: 42 million froze the tab)

    at = drop(open_with_query(open_app, LAB), "a1111.png", png_with_parameters(text), "image/png")

    [shown_text] = [t.value for t in at.main.text]
    assert shown_text == text[:10_000]
    assert "The first 10,000 characters are shown; 2,090,000 more are not." in shown(at)


def test_the_reader_takes_files_up_to_its_limit(open_app):
    lab = open_with_query(open_app, LAB)
    [uploader] = lab.get("file_uploader")
    assert uploader.proto.max_upload_size_mb == 20  # the browser refuses bigger files


def test_a_recipe_of_a_lora_this_app_does_not_have_cannot_be_remixed(open_app):
    at = drop(open_with_query(open_app, LAB), "fox.jpg", labelled("elsewhere"))

    assert any("cannot be remixed here" in info.value for info in at.info)
    assert "remix_file" not in [button.key for button in at.button]


# --- X/Y sweeps ---------------------------------------------------------------------------


def finished(at, *, seconds: float = 30):
    """Run the page again until no cell is generating (the cells run in the background)."""
    deadline = time.monotonic() + seconds
    while any("Generating" in block for block in html_blocks(at)):
        assert time.monotonic() < deadline, "the sweep never finished"
        time.sleep(0.2)
        at.run()
    return at


def walk(node):
    """The page's elements in the order they are drawn."""
    for child in getattr(node, "children", {}).values():
        yield child
        yield from walk(child)


def images_of(at) -> list[str]:
    """The sweep grid's image cards, in reading order."""
    return [card for card in figures(at) if 'alt="Sweep image' in card]


def test_a_sweep_starts_from_the_form_and_fills_its_grid(open_app, add_lora, engine):
    add_lora("snowy", trigger_word="wtrclr")
    at = open_with_query(open_app, LAB)
    at.text_area(key="sweep_prompt").input("a red fox").run()
    at.text_input(key="sweep_x_scale").input("0, 1, 2").run()
    at.selectbox(key="sweep_y_kind").select("seed").run()
    at.text_input(key="sweep_y_seed").input("7, 8").run()

    assert "6 images = 2 of your 8 generations left today" in shown(at)
    at.button(key="sweep_start").click().run()

    sweep_id = at.query_params["sweep"]
    finished(at)
    assert not at.exception
    title = at.subheader[0].value
    assert title == "wtrclr · “a red fox”"  # the seed varies down: not in the title
    assert "6 of 6 images" in shown(at)
    pictures = images_of(at)
    assert len(pictures) == 6
    assert 'alt="Sweep image, scale 0 · seed 7: a red fox"' in pictures[0]
    assert 'alt="Sweep image, scale 2 · seed 8: a red fox"' in pictures[5]
    assert {b.key for b in at.get("download_button")} >= {"sweep_sheet", "sweep_zip"}
    with session_scope(engine) as session:
        cells = session.scalars(select(GenerationBatch)).all()
    assert {(c.sweep_id, c.num_images, c.status) for c in cells} == {(sweep_id, 1, "succeeded")}


def test_an_axis_that_cannot_be_read_says_why_and_blocks_the_start(open_app, add_lora):
    add_lora("snowy", trigger_word="wtrclr")
    at = open_with_query(open_app, LAB)
    at.text_area(key="sweep_prompt").input("a red fox").run()
    at.text_input(key="sweep_x_scale").input("0, 3").run()

    assert any("between 0 and 2" in w.value for w in at.warning)
    assert at.button(key="sweep_start").disabled


def test_a_sweep_larger_than_the_quota_left_cannot_start(open_app, add_lora, add_batch):
    add_lora("snowy", trigger_word="wtrclr")
    for _ in range(7):
        add_batch(user="guest", age=timedelta(minutes=5))
    at = open_with_query(open_app, LAB)
    at.text_area(key="sweep_prompt").input("a red fox").run()  # 5 scales: 2 generations

    assert "5 images = 2 of your 1 generation left today" in shown(at)
    assert at.button(key="sweep_start").disabled
    assert any("Fewer cells fit" in w.value for w in at.warning)


def add_sweep(
    engine, *, user: str, prompt: str, statuses: list[str],
    error: str = "fal said: GPU out of memory",
) -> str:  # fmt: skip
    """A sweep of one row of scales, its cells in these states, written as the core does."""
    sweep_id = "ab" * 16
    with session_scope(engine) as session:
        session.add(Sweep(
            id=sweep_id, user=user, lora_training_id="snowy", prompt=prompt,
            x_kind="scale", x_values=json.dumps([str(i) for i in range(len(statuses))]),
            lora_scale=1.5, num_inference_steps=28, guidance_scale=3.5,
            image_size="square_hd", seed="42", created_at=to_iso(utc_now()),
        ))  # fmt: skip
        for index, status in enumerate(statuses):
            session.add(GenerationBatch(
                id=f"cell{index}", lora_training_id="snowy", user=user,
                prompt=prompt, status=status, created_at=to_iso(utc_now()),
                error=error if status == "failed" else None,
                sweep_id=sweep_id, sweep_x=index, sweep_y=0, num_images=1,
                images_returned=1 if status == "succeeded" else None,
                lora_scale=float(index), requested_seed="42",
            ))  # fmt: skip
        session.commit()
    return sweep_id


def test_a_failed_cell_says_why_and_only_its_author_may_retry(open_app, add_lora, engine):
    add_lora("snowy", trigger_word="wtrclr")
    mine = add_sweep(engine, user="guest", prompt="a fox", statuses=["failed"])

    at = open_with_query(open_app, LAB, sweep=mine)
    assert "fal said: GPU out of memory" in shown(at)
    assert [b.label for b in at.button if b.key == "retry_cell0"] == ["Retry scale 0"]

    with session_scope(engine) as session:
        session.get(Sweep, mine).user = "bob"
        session.commit()
    at = open_with_query(open_app, LAB, sweep=mine)
    assert "fal said: GPU out of memory" in shown(at)
    assert "retry_cell0" not in [b.key for b in at.button]


def test_retrying_a_failed_cell_fills_it(open_app, add_lora, engine):
    add_lora("snowy", trigger_word="wtrclr")
    mine = add_sweep(engine, user="guest", prompt="a fox", statuses=["succeeded", "failed"])

    at = open_with_query(open_app, LAB, sweep=mine)
    at.button(key="retry_cell1").click().run()
    finished(at)

    assert len(images_of(at)) == 1  # the first cell has no image row: only the retry's
    with session_scope(engine) as session:
        tries = session.scalars(select(GenerationBatch).where(GenerationBatch.sweep_x == 1)).all()
    assert sorted(t.status for t in tries) == ["failed", "succeeded"]


def test_a_sweeps_stored_text_is_shown_literally(open_app, add_lora, engine):
    add_lora("snowy", trigger_word="wtrclr")
    prompt = "**bold** <img src=x onerror=alert(1)> [link](http://x)"
    error = "<b>boom</b> :red[x] www.evil.example"
    sweep_id = add_sweep(engine, user="<b>eve</b>", prompt=prompt, statuses=["failed"], error=error)

    at = open_with_query(open_app, LAB, sweep=sweep_id)

    assert not at.exception
    assert readable(at.subheader[0].value) == f"wtrclr · “{prompt}” · seed 42"
    assert "by <b>eve</b>" in shown(at)
    [grid] = [block for block in html_blocks(at) if 'class="ls-sweep"' in block]
    assert "<b>boom" not in grid and error in text_of_html(grid)  # the failed cell's error


def test_a_sweeps_link_is_shared_from_a_popover(open_app, add_lora, engine):
    add_lora("snowy", trigger_word="wtrclr")
    sweep_id = add_sweep(engine, user="ann", prompt="a fox", statuses=["succeeded"])

    at = open_with_query(open_app, LAB, sweep=sweep_id)

    [share] = [p for p in at.get("popover") if p.proto.popover.label == "Share this sweep"]
    [link] = [code.value for code in share.get("code")]
    assert link.endswith(f"/lab?sweep={sweep_id}")


def test_an_unknown_sweep_link_says_so(open_app):
    at = open_with_query(open_app, LAB, sweep="0" * 32)

    assert "Sweep not found" in at.error[0].value


def add_cell_images(engine, batch_ids: list[str], lora_id: str = "snowy") -> None:
    with session_scope(engine) as session:
        for batch_id in batch_ids:
            session.add(GeneratedImage(
                id=f"img-{batch_id}", lora_training_id=lora_id, user="guest",
                prompt="a fox", image_url=f"https://cdn.example/{batch_id}.jpg", seed="42",
                created_at=to_iso(utc_now()), batch_id=batch_id,
            ))  # fmt: skip
            session.get(GenerationBatch, batch_id).images_returned = 1
        session.commit()


def test_a_sweeps_cells_make_one_group_on_the_loras_page(open_app, add_lora, engine):
    add_lora("snowy", trigger_word="wtrclr")
    sweep_id = add_sweep(engine, user="guest", prompt="a fox", statuses=["succeeded"] * 3)
    add_cell_images(engine, ["cell0", "cell1", "cell2"])

    at = open_app("app_pages/lora.py", id="snowy")

    assert not at.exception
    assert "cells of an X/Y sweep" in shown(at)
    [link] = [
        match
        for block in html_blocks(at)
        for match in re.findall(r'<a class="ls-open ls-sweep-link" href="([^"]+)"[^>]*>'
                                r"Open the whole sweep</a>", block)
    ]  # fmt: skip
    assert link == f"lab?sweep={sweep_id}"  # opened in place by the page's script
    [(prompt, line)] = batch_headers(at)  # one group, not three
    assert prompt == "a fox" and line.endswith(" · cells of an X/Y sweep")


def test_history_lists_a_sweeps_cells_with_a_link_to_it(open_app, add_lora, engine):
    add_lora("snowy", trigger_word="wtrclr")
    sweep_id = add_sweep(engine, user="guest", prompt="a fox", statuses=["succeeded"] * 2)
    with session_scope(engine) as session:
        session.get(GenerationBatch, "cell1").lora_training_id = NO_LORA
        session.commit()

    at = open_with_query(open_app, "app_pages/history.py")

    rows = table_rows(at)
    assert [(row["Sweep"].text, row["Sweep"].href) for row in rows] == [
        ("Sweep", f"lab?sweep={sweep_id}")
    ] * 2
    assert sorted((row["LoRA"].text, row["LoRA"].href or "—") for row in rows) == [
        ("no LoRA (base model)", "—"), ("wtrclr", "lora?id=snowy")
    ]  # fmt: skip
    # One image asked, one returned: succeeded, not "safety-filtered" (4 is a batch's).
    assert table_column(at, "Status") == ["succeeded", "succeeded"]
    # The base model is a "LoRA" of History's filter too.
    at.session_state["history_filters"] = True  # the filters unfolded
    at.run().multiselect(key="lora").select(NO_LORA).run()
    assert table_column(at, "LoRA") == ["no LoRA (base model)"]


def test_a_retry_beyond_the_quota_says_so_and_changes_nothing(
    open_app, add_lora, engine, add_batch
):
    add_lora("snowy", trigger_word="wtrclr")
    mine = add_sweep(engine, user="guest", prompt="a fox", statuses=["failed"])
    for _ in range(8):
        add_batch(user="guest", age=timedelta(minutes=5))

    at = open_with_query(open_app, LAB, sweep=mine)
    at.button(key="retry_cell0").click().run()

    assert any("You've used all 8 generations today" in w.value for w in at.warning)
    # Said under the grid, over the Retry button just clicked.
    shown = [
        "grid" if 'class="ls-sweep"' in str(getattr(node.proto, "body", "")) else node.type
        for node in walk(at.main)
        if node.type in ("html", "alert", "button", "warning")
    ]
    assert shown.index("grid") < shown.index("warning") < shown.index("button", shown.index("grid"))
    with session_scope(engine) as session:
        assert (
            len(
                session.scalars(
                    select(GenerationBatch).where(GenerationBatch.sweep_id == mine)
                ).all()
            )
            == 1
        )


def test_a_stacked_images_file_tells_its_loras_and_remixes_them_all(open_app, add_lora):
    add_lora("snowy", trigger_word="wtrclr")
    add_lora("noir", trigger_word="neonnoir")
    data = recipe_files.embed(
        jpeg(),
        recipe_files.recipe_fields(
            prompt="a fox", full_prompt="a fox in the style of wtrclr in the style of neonnoir",
            lora_id="snowy", lora_name=None, trigger_word="wtrclr", weights_url=None,
            recipe=Recipe(lora_scale=0.7, seed=5, stack=(StackedLora("noir", 0.4),)),
            seed="5", created_at="2026-12-01T10:00:00.000Z",
            added=[{"id": "noir", "name": None, "trigger_word": "neonnoir", "scale": 0.4}],
        ),
    )  # fmt: skip
    at = drop(open_with_query(open_app, LAB), "fox.jpg", data)

    assert "Stacked with neonnoir at 0.4" in shown(at)
    at.button(key="remix_file").click().run()

    assert at.query_params["id"] == "snowy"
    assert setting(at.selectbox, "stack_0").value == "noir"
    assert setting(at.number_input, "stack_scale_0").value == 0.4


def test_a_sweep_over_a_stacked_lora_starts_from_the_form(open_app, add_lora, engine):
    add_lora("snowy", trigger_word="wtrclr")
    add_lora("noir", trigger_word="neonnoir")
    at = open_with_query(open_app, LAB)
    at.text_area(key="sweep_prompt").input("a red fox").run()
    at.selectbox(key="sweep_x_kind").select("stack").run()
    at.multiselect(key="sweep_x_stacked").select("noir").run()
    at.text_input(key="sweep_x_stacked_scales").input("0.5, 1").run()

    assert "3 images = 1 of your 8 generations left today" in shown(at)
    at.button(key="sweep_start").click().run()
    finished(at)

    assert not at.exception
    assert "3 of 3 images" in shown(at)
    with session_scope(engine) as session:
        stacked = session.scalars(select(BatchLora)).all()
    assert sorted(row.lora_scale for row in stacked) == [0.5, 1.0]
