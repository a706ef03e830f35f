"""The Compare page, as AppTest renders it (the offline preview generator draws)."""

from __future__ import annotations

from datetime import timedelta

from sqlalchemy import select

from lora_core.data.clock import to_iso
from lora_core.data.db import session_scope
from lora_core.data.models import BatchLora, GeneratedImage, GenerationBatch, LoraStatus
from tests.conftest import NOW, open_with_query
from tests.support.markup import figures, readable

COMPARE = "app_pages/compare.py"


def open_compare(open_app, **query):
    return open_with_query(open_app, COMPARE, **query)


def cards(at, url_part: str = "") -> list[str]:
    return [card for card in figures(at) if url_part in card]


def add_images_for(engine, lora_id: str, prompt: str, count: int) -> None:
    with session_scope(engine) as session:
        for number in range(count):
            session.add(
                GeneratedImage(
                    id=f"{lora_id}-{prompt}-{number}", lora_training_id=lora_id,
                    user="ann", prompt=prompt,
                    image_url=f"https://cdn.example/{lora_id}/{number}.jpg",
                    created_at=to_iso(NOW - timedelta(minutes=count - number)),
                )
            )  # fmt: skip
        session.commit()


def without_images(at) -> int:
    return len([info for info in at.info if info.value == "No images for this prompt yet."])


def batches(engine) -> list[tuple[str, str, str]]:
    with session_scope(engine) as session:
        rows = session.scalars(select(GenerationBatch)).all()
        return sorted((row.lora_training_id, row.prompt, row.status) for row in rows)


def test_it_offers_the_ready_loras_and_asks_for_two_and_a_prompt(open_app, add_lora):
    add_lora("a", trigger_word="alpha")
    add_lora("b", trigger_word="beta")
    add_lora("t", trigger_word="training", status=LoraStatus.PENDING, weights_url=None)

    at = open_compare(open_app, compare_loras=["alpha"])

    assert not at.exception
    assert "Choose at least 2 LoRAs and enter a prompt" in at.info[0].value
    assert sorted(at.multiselect(key="compare_loras").options) == ["alpha", "beta"]


def test_the_link_shows_each_loras_latest_images_for_the_prompt_side_by_side(
    open_app, add_lora, engine
):
    add_lora("a", trigger_word="alpha")
    add_lora("b", trigger_word="beta")
    add_images_for(engine, "a", "a red fox", 4)
    add_images_for(engine, "b", "a red fox", 2)
    add_images_for(engine, "b", "something else", 3)

    at = open_compare(open_app, compare_loras=["alpha", "beta"], compare_prompt="a red fox")

    assert not at.exception
    assert [s.value for s in at.subheader] == ["alpha", "beta"]
    assert (len(cards(at, "/a/")), len(cards(at, "/b/"))) == (4, 2)
    assert all('<a class="ls-open" href="lora?id=b&amp;image=' in c for c in cards(at, "/b/"))
    assert "generate_missing" not in [button.key for button in at.button]


def test_the_missing_ones_are_generated_on_request_and_counted(open_app, add_lora, engine):
    add_lora("a", trigger_word="alpha")
    add_lora("b", trigger_word="beta")
    add_lora("c", trigger_word="gamma")
    add_images_for(engine, "a", "a red fox", 4)
    at = open_compare(
        open_app, compare_loras=["alpha", "beta", "gamma"], compare_prompt="a red fox"
    )
    assert without_images(at) == 2
    assert at.button(key="generate_missing").label == "Generate for beta, gamma (2 batches)"

    at.button(key="generate_missing").click().run()

    assert not at.exception
    # (alpha's images, written as the original app writes them, got batches of their own
    # from the start-up sweep.)
    assert [row for row in batches(engine) if row[0] != "a"] == [
        ("b", "a red fox", "succeeded"),
        ("c", "a red fox", "succeeded"),
    ]
    assert len(cards(at)) == 12 and without_images(at) == 0  # 4 images in each of 3 columns
    assert "generate_missing" not in [button.key for button in at.button]
    assert "6 of 8 generations remaining today" in [c.value for c in at.sidebar.caption]


def test_an_exhausted_quota_disables_generate_and_says_why_next_to_it(
    open_app, add_lora, engine, add_batch
):
    add_lora("a", trigger_word="alpha")
    add_lora("b", trigger_word="beta")
    for hours in range(1, 9):
        add_batch(user="guest", age=timedelta(hours=hours))

    at = open_compare(open_app, compare_loras=["alpha", "beta"], compare_prompt="a red fox")

    assert not at.exception
    assert at.button(key="generate_missing").disabled
    assert "You've used all 8 generations today." in readable(at.warning[0].value)
    assert [row for row in batches(engine) if row[1] == "a red fox"] == []


def test_running_out_midway_says_so_outside_the_folded_progress_box(
    open_app, add_lora, engine, add_batch
):
    add_lora("a", trigger_word="alpha")
    add_lora("b", trigger_word="beta")
    for hours in range(1, 8):  # one generation left, two LoRAs without images
        add_batch(user="guest", age=timedelta(hours=hours))
    at = open_compare(open_app, compare_loras=["alpha", "beta"], compare_prompt="a red fox")

    at.button(key="generate_missing").click().run()

    assert not at.exception
    assert [status.label for status in at.status] == ["alpha: done", "beta: not generated"]
    assert not at.status[1].warning and not at.status[1].error  # nothing folded away
    assert "You've used all 8 generations today." in readable(at.warning[0].value)
    assert [row[1] for row in batches(engine) if row[1] == "a red fox"] == ["a red fox"]


def test_a_lora_stacked_on_each_compares_only_images_made_so_and_makes_the_missing(
    open_app, add_lora, engine
):
    add_lora("a", trigger_word="alpha")
    add_lora("b", trigger_word="beta")
    add_lora("s", trigger_word="style")
    add_images_for(engine, "a", "a red fox", 4)  # alpha alone: not what is compared now

    at = open_compare(
        open_app, compare_loras=["alpha", "beta", "style"], compare_prompt="a red fox",
        compare_with="style", compare_with_scale="0.5",
    )  # fmt: skip

    assert not at.exception
    assert [s.value for s in at.subheader] == [
        "alpha \\+ style · 0\\.5", "beta \\+ style · 0\\.5", "style \\+ style · 0\\.5"
    ]  # fmt: skip
    assert without_images(at) == 2  # alpha's own images are not stacked ones
    assert "This LoRA is the one stacked on the others." in [i.value for i in at.info]
    assert at.button(key="generate_missing").label == "Generate for alpha, beta (2 batches)"

    at.button(key="generate_missing").click().run()

    assert not at.exception and without_images(at) == 0
    with session_scope(engine) as session:
        added = session.execute(
            select(BatchLora.lora_training_id, BatchLora.lora_scale,
                   GenerationBatch.lora_training_id)
            .join(GenerationBatch, GenerationBatch.id == BatchLora.batch_id)
        ).all()  # fmt: skip
    assert sorted(added) == [("s", 0.5, "a"), ("s", 0.5, "b")]
    assert len(cards(at)) == 8

    alone = open_compare(open_app, compare_loras=["alpha", "beta"], compare_prompt="a red fox")
    assert len(cards(alone, "cdn.example/a/")) == 4  # alone: alpha's own images only
    assert without_images(alone) == 1  # beta was only ever made with style stacked
