"""The LoRA page and its Generate dialog, as AppTest renders them."""

from __future__ import annotations

import html
import io
import json
import re
import time
import zipfile
from datetime import timedelta
from pathlib import Path

import pytest
from PIL import Image
from sqlalchemy import select

from lora_core.data.clock import to_iso, utc_now
from lora_core.data.db import session_scope
from lora_core.data.models import GeneratedImage, LoraStatus, LoraTraining
from lora_core.fal.trainer import FalTrainer
from lora_core.gallery import favorites
from lora_core.generation import recipe_files
from tests.conftest import TEST_FAL_KEY
from tests.support.factories import hide, star
from tests.support.markup import batch_headers, figures, html_blocks, readable, shows

LORA_PAGE = "app_pages/lora.py"
SUBMIT = "FormSubmitter:gen_form-Generate 4 Images"


def setting(widgets, name: str):
    """The Generate dialog's Advanced widget for `name` (its key changes per opening)."""
    [widget] = [w for w in widgets if (w.key or "").startswith(f"gen_{name}_")]
    return widget


def cards(at) -> list[str]:
    """Images of the page's gallery."""
    return figures(at)


def facts(at) -> str:
    """The header's one line: steps, date, how many images."""
    [line] = [readable(c.value) for c in at.caption if "training steps" in c.value]
    return line


def image_total(at) -> str:
    """The header's image count, as shown."""
    return facts(at).rsplit(" · ", 1)[1].removesuffix(" images")


def results(at) -> list[str]:
    """Images of the Generate dialog's 2x2 result grid."""
    return figures(at, "ls-card ls-result")


def stored_images(engine) -> list[GeneratedImage]:
    with session_scope(engine) as session:
        return list(session.scalars(select(GeneratedImage)).all())


def everything_rendered(at) -> str:
    """The protobuf text of every element of the page, the sidebar and the dialog."""
    parts: list[str] = []

    def walk(node) -> None:
        if getattr(node, "proto", None) is not None:
            parts.append(str(node.proto))
        for child in getattr(node, "children", {}).values():
            walk(child)

    walk(at._tree)
    return "\n".join(parts)


def open_dialog(open_app, lora_id: str):
    at = open_app(LORA_PAGE, id=lora_id)
    at.button(key="open_generate").click().run()
    return at


def generate(at, prompt: str):
    at.text_area(key="gen_prompt").input(prompt)
    at.button(key=SUBMIT).click().run()
    return at


@pytest.mark.parametrize("lora_id", ["does-not-exist", "../../etc/passwd", "x" * 300, ""])
def test_an_unknown_or_malformed_id_shows_lora_not_found_with_a_way_back(open_app, lora_id):
    at = open_app(LORA_PAGE, id=lora_id)

    assert not at.exception
    assert at.title[0].value == "LoRA not found"
    assert "LoRA not found" in at.error[0].value
    links = {link.proto.label: link.proto for link in at.get("page_link")}
    back = links["Back to the gallery"]
    assert back.page == "" and back.page_script_hash  # the default page: the gallery


def test_the_page_shows_the_loras_metadata(open_app, add_lora):
    add_lora(
        "meta", trigger_word="wtrclr", steps=1500, weights_url="https://w.example/a.safetensors"
    )

    at = open_app(LORA_PAGE, id="meta")

    assert not at.exception
    assert at.title[0].value == "wtrclr"
    assert "1,500 training steps · created " in facts(at)
    assert facts(at).endswith(" · 0 images")
    assert not at.metric  # one compact line, not big numerals above the images
    assert at.code[0].value == "https://w.example/a.safetensors"  # under Weights
    assert "fal downloads the original weights URL; no copy is kept." in [
        readable(caption.value) for caption in at.caption
    ]


def test_a_lora_without_images_invites_a_first_generation(open_app, add_lora):
    add_lora("empty")

    at = open_app(LORA_PAGE, id="empty")

    assert (
        at.info[0].value == "No images generated yet. Click Generate to create your first images."
    )


@pytest.mark.parametrize(
    ("status", "weights", "message"),
    [
        (LoraStatus.PENDING, None, "still training"),
        (LoraStatus.FAILED, None, "training failed"),
        (LoraStatus.COMPLETED, None, "no weights file"),
    ],
)
def test_a_lora_that_cannot_generate_says_why_and_offers_no_button(
    open_app, add_lora, status, weights, message
):
    add_lora("blocked", status=status, weights_url=weights)

    at = open_app(LORA_PAGE, id="blocked")

    shown = " ".join(e.value for e in [*at.info, *at.error])
    assert message in shown
    assert "open_generate" not in [b.key for b in at.button]


def test_the_gallery_is_newest_first_and_paginated(open_app, add_lora, engine, add_images):
    add_lora("big")
    add_images("big", 30)

    at = open_app(LORA_PAGE, id="big")

    shown = cards(at)
    assert len(shown) == 24
    assert "big/29.jpg" in shown[0] and "big/6.jpg" in shown[-1]
    headers = [prompt for prompt, _line in batch_headers(at)]
    assert headers[0] == "prompt 29" and len(headers) == 24  # one generation each
    assert any("30 images by everyone, newest first" in c.value for c in at.caption)
    # All 24 generations are one element: each element is a message the browser draws.
    blocks = [block for block in html_blocks(at) if 'class="ls-batch"' in block]
    assert [block.count('class="ls-batch"') for block in blocks] == [24]


def test_the_second_page_shows_the_oldest_images_under_the_same_header(
    open_app, add_lora, add_images
):
    add_lora("big")
    add_images("big", 30)
    at = open_app(LORA_PAGE, id="big")

    [pager] = at.pagination
    assert pager.num_pages == 2
    pager.set_value(2).run()

    assert not at.exception
    shown = cards(at)
    assert len(shown) == 6
    assert "big/5.jpg" in shown[0] and "big/0.jpg" in shown[-1]
    assert image_total(at) == "30"  # the header still counts them all
    assert at.pagination[0].value == 2


def test_the_image_count_is_never_stale_after_new_images(open_app, add_lora, add_images, engine):
    add_lora("grows")
    add_images("grows", 30)
    at = open_app(LORA_PAGE, id="grows")
    assert any("30 images by everyone" in c.value for c in at.caption)

    with session_scope(engine) as session:  # someone else generates meanwhile
        for number in range(4):
            session.add(
                GeneratedImage(
                    id=f"late-{number}", lora_training_id="grows", user="cy",
                    prompt="late", image_url=f"https://cdn.example/late-{number}.jpg",
                    created_at=to_iso(utc_now() + timedelta(milliseconds=number)),
                )
            )  # fmt: skip
        session.commit()
    at.run()

    assert any("34 images by everyone" in c.value for c in at.caption)
    assert "late-3.jpg" in cards(at)[0]


def test_the_dialog_explains_the_trigger_word_and_the_quota(open_app, add_lora):
    add_lora("dlg", trigger_word="wtrclr")

    at = open_dialog(open_app, "dlg")

    captions = [c.value for c in at.caption]
    assert 'Your prompt will include: "... in the style of wtrclr"' in captions
    assert "8 of 8 generations remaining today" in captions
    assert at.button(key=SUBMIT).label == "Generate 4 Images"
    assert at.text_area(key="gen_prompt").proto.required  # the browser blocks an empty one


@pytest.mark.parametrize(
    ("prompt", "message"),
    [
        ("   ", "Enter a prompt describing the image you want to create."),
        ("z" * 501, "The prompt is 501 characters long; the limit is 500."),
    ],
)
def test_a_bad_prompt_gets_a_message_keeps_the_text_and_stores_nothing(
    open_app, add_lora, engine, prompt, message
):
    add_lora("bad")

    at = generate(open_dialog(open_app, "bad"), prompt)

    assert not at.exception
    assert readable(at.warning[0].value) == message
    assert at.text_area(key="gen_prompt").value == prompt
    assert stored_images(engine) == []
    assert "8 of 8 generations remaining today" in [c.value for c in at.caption]


def test_generating_shows_four_images_and_stores_them(open_app, add_lora, engine):
    add_lora("gen", trigger_word="wtrclr")
    at = open_dialog(open_app, "gen")

    generate(at, "a lighthouse at dusk")

    assert not at.exception
    assert not at.error
    images = stored_images(engine)
    assert len(images) == 4
    assert {image.prompt for image in images} == {"a lighthouse at dusk"}
    assert {image.user for image in images} == {"guest"}
    dialog_cards = results(at)
    assert len(dialog_cards) == 4
    assert all(image.image_url in " ".join(dialog_cards) for image in images)
    assert "7 of 8 generations remaining today" in [c.value for c in at.caption]
    assert at.button(key=SUBMIT).label == "Generate 4 Images"  # the next batch, same place


def test_generating_again_makes_a_new_batch_from_the_edited_prompt(open_app, add_lora, engine):
    add_lora("again")
    at = generate(open_dialog(open_app, "again"), "a fox reading")
    assert at.text_area(key="gen_prompt").value == "a fox reading"  # kept for editing

    generate(at, "a fox writing")

    assert sorted({image.prompt for image in stored_images(engine)}) == [
        "a fox reading",
        "a fox writing",
    ]
    assert len(results(at)) == 4
    assert "6 of 8 generations remaining today" in [c.value for c in at.caption]


def test_my_prompts_says_there_are_none_yet_in_plain_text_then_offers_them(open_app, add_lora):
    """No disabled box before the first batch: its greyed label read as broken (axe)."""
    add_lora("steady")
    at = open_dialog(open_app, "steady")

    assert "gen_my_prompts" not in [box.key for box in at.selectbox]
    assert "**My prompts:** none of yours yet. Your prompts will be here to pick." in [
        m.value for m in at.markdown
    ]

    generate(at, "a lantern")

    after = at.selectbox(key="gen_my_prompts")
    assert not after.disabled and after.options == ["a lantern"]
    assert after.label == "My prompts"


def test_after_closing_the_page_gallery_shows_the_new_images(open_app, add_lora):
    add_lora("closing")
    at = generate(open_dialog(open_app, "closing"), "a red bicycle")

    at.session_state["generate_dialog"].close()  # what the dialog's X does (on_dismiss)
    at.run()

    assert len(cards(at)) == 4
    [(prompt, line)] = batch_headers(at)
    assert prompt == "a red bicycle" and line.startswith("by guest · ")


def test_the_last_batch_survives_a_rerun(open_app, add_lora):
    add_lora("kept")
    at = generate(open_dialog(open_app, "kept"), "a moon")

    at.run()

    assert at.session_state["generate_dialog"].last.outcome.prompt == "a moon"
    assert len(results(at)) == 4


def test_an_exhausted_quota_disables_generate_and_says_when_the_next_slot_frees_up(
    open_app, add_lora, engine, add_batch
):
    add_lora("full")
    for hours in range(1, 9):
        add_batch(user="guest", age=timedelta(hours=hours))

    at = open_app(LORA_PAGE, id="full")

    assert at.button(key="open_generate").disabled
    [warning] = [readable(c.value) for c in at.caption if "You've used all" in readable(c.value)]
    assert "You've used all 8 generations today" in warning
    assert re.search(
        r"next generation is available in 1[56] h \d+ min \(at \d\d:\d\d UTC\)", warning
    )


def test_losing_the_race_for_the_last_slot_is_said_once(open_app, add_lora, add_batch, monkeypatch):
    from lora_core.generation import quota

    add_lora("race")
    for hours in range(1, 8):
        add_batch(user="guest", age=timedelta(hours=hours))
    at = open_dialog(open_app, "race")  # one slot left
    reserve = quota.reserve

    def another_tab_wins_first(**arguments):
        add_batch(user="guest", age=timedelta(0))
        return reserve(**arguments)

    monkeypatch.setattr(quota, "reserve", another_tab_wins_first)
    generate(at, "too late")

    assert not at.exception
    quota_messages = [w for w in at.warning if "You've used all 8" in readable(w.value)]
    assert len(quota_messages) == 1


def test_exempt_users_see_unlimited(open_app, add_lora, monkeypatch):
    monkeypatch.setenv("EXEMPT_USERS", "someone,guest")
    add_lora("vip")

    at = open_dialog(open_app, "vip")

    assert "Unlimited generations" in [c.value for c in at.caption]


@pytest.fixture
def with_fal(monkeypatch, fake_fal):
    monkeypatch.setenv("FAL_KEY", TEST_FAL_KEY)
    return fake_fal


def test_a_fal_error_shows_a_retry_that_works_once_fal_recovers(
    open_app, add_lora, engine, with_fal
):
    add_lora("flaky")
    with_fal.script.result_error = (500, "GPU on fire")
    at = generate(open_dialog(open_app, "flaky"), "a storm")

    assert not at.exception
    assert "fal could not generate images right now (HTTP 500)" in readable(at.error[0].value)
    assert stored_images(engine) == []
    assert "8 of 8 generations remaining today" in [c.value for c in at.caption]

    with_fal.script.result_error = None
    at.button(key="gen_retry").click().run()

    assert not at.exception
    assert len(stored_images(engine)) == 4
    assert len(results(at)) == 4
    assert not at.error


def test_expired_weights_get_their_own_message(open_app, add_lora, with_fal):
    add_lora("expired")
    with_fal.script.result_error = (
        422,
        [{"loc": ["body", "loras", 0, "path"], "msg": "Failed", "type": "file_download_error"}],
    )

    at = generate(open_dialog(open_app, "expired"), "a storm")

    assert "weights URL may have expired" in at.error[0].value
    assert "gen_retry" not in [b.key for b in at.button]


def test_an_odd_answer_with_fewer_images_shows_what_came_back_and_why(open_app, add_lora, with_fal):
    add_lora("filtered")
    with_fal.script.images = 3

    at = generate(open_dialog(open_app, "filtered"), "a storm")

    assert at.warning[0].value == (
        "1 of 4 images were held back by fal's safety checker; 3 are shown. "
        "This still counts as one generation."
    )
    assert len(results(at)) == 3


def test_the_fal_key_never_appears_on_the_page(open_app, add_lora, with_fal):
    add_lora("secret")
    at = generate(open_dialog(open_app, "secret"), "a storm")

    rendered = everything_rendered(at)

    assert "a storm" in rendered
    assert TEST_FAL_KEY.split(":")[1] not in rendered


def test_a_new_prompt_can_be_generated_straight_from_the_results(open_app, add_lora, engine):
    add_lora("twice")
    at = generate(open_dialog(open_app, "twice"), "first idea")

    generate(at, "second idea")

    assert sorted({image.prompt for image in stored_images(engine)}) == [
        "first idea",
        "second idea",
    ]
    assert at.session_state["generate_dialog"].last.outcome.prompt == "second idea"


def test_reopening_the_dialog_starts_fresh_with_the_last_prompt(open_app, add_lora):
    add_lora("reopen")
    at = generate(open_dialog(open_app, "reopen"), "a paper boat")
    at.session_state["generate_dialog"].close()  # closed with its X
    at.run()

    at.button(key="open_generate").click().run()

    assert at.text_area(key="gen_prompt").value == "a paper boat"
    assert results(at) == []


def test_the_gallery_forgets_an_open_dialog(open_app, add_lora):
    add_lora("back")
    at = open_dialog(open_app, "back")

    at.switch_page("app_pages/gallery.py").run()  # e.g. the browser's Back button

    assert "generate_for" not in at.session_state


def test_an_unexpected_failure_is_a_plain_message_and_costs_nothing(
    open_app, add_lora, engine, monkeypatch
):
    from lora_core.generation.preview import PreviewGenerator

    def broken(self, request, on_progress=None):
        raise RuntimeError("a bug")

    monkeypatch.setattr(PreviewGenerator, "generate", broken)
    add_lora("buggy")

    at = generate(open_dialog(open_app, "buggy"), "a cat")

    assert not at.exception
    assert "Something went wrong. Nothing was stored" in readable(at.error[0].value)
    assert "a bug" not in everything_rendered(at)
    assert "8 of 8 generations remaining today" in [c.value for c in at.caption]
    assert stored_images(engine) == []


def test_a_shorter_window_is_named_in_the_quota_text(open_app, add_lora, monkeypatch):
    monkeypatch.setenv("GENERATION_WINDOW_HOURS", "12")
    monkeypatch.setenv("GENERATION_LIMIT", "3")
    add_lora("short")

    at = open_dialog(open_app, "short")

    assert "3 of 3 generations remaining in the last 12 hours" in [c.value for c in at.caption]


def test_a_flagged_image_is_never_shown_as_a_result(open_app, add_lora, engine, with_fal):
    add_lora("flagged")
    with_fal.script.nsfw = [False, True, False, False]

    at = generate(open_dialog(open_app, "flagged"), "a storm")

    flagged = next(image for image in stored_images(engine) if image.nsfw)
    assert len(results(at)) == 3
    assert "1 of 4 images were held back by fal's safety checker" in at.warning[0].value
    assert flagged.image_url not in everything_rendered(at)
    at.session_state["generate_dialog"].close()
    at.run()
    assert len(cards(at)) == 3
    assert flagged.image_url not in everything_rendered(at)


def test_fal_images_are_shown_from_our_copies(open_app, add_lora, engine, with_fal):
    add_lora("copied")

    at = generate(open_dialog(open_app, "copied"), "a storm")

    urls = {image.image_url for image in stored_images(engine)}
    assert all(url.startswith("app/static/media/fal/") for url in urls)
    assert all(url in " ".join(results(at)) for url in urls)


def test_viewing_a_lora_finishes_a_batch_a_dead_process_left_pending(
    open_app, add_lora, engine, with_fal, fal_generator
):
    from tests.generation.test_recovery import reserve_pending, submit_job

    add_lora("orphan")
    request_id = submit_job(fal_generator, with_fal)
    reserve_pending(engine, "orphan", request_id=request_id, age=timedelta(hours=1))

    at = open_app(LORA_PAGE, id="orphan")

    assert not at.exception
    assert len(cards(at)) == 4
    assert len(with_fal.submissions) == 1


def test_with_the_background_sweep_on_a_view_leaves_dead_batches_to_it(
    open_app, add_lora, monkeypatch
):
    from lora_core.generation import recovery
    from lora_core.studio import Studio

    views: list[str | None] = []

    def resume(self, *, lora_id=None, sweep_id=None):
        views.append(lora_id)
        return recovery.ResumeReport()

    monkeypatch.setattr(Studio, "resume_stale_batches", resume)
    monkeypatch.setenv("RECOVERY_SWEEP_SECONDS", "3600")
    add_lora("swept")

    at = open_app(LORA_PAGE, id="swept")

    assert not at.exception
    assert "swept" not in views  # the sweep (started with the app) does it, not each view


def test_a_prompt_with_markup_is_shown_as_text(open_app, add_lora):
    add_lora("markup")
    prompt = "<img src=x onerror=alert(1)> **bold** [link](javascript:alert(1))"
    at = generate(open_dialog(open_app, "markup"), prompt)
    at.session_state["generate_dialog"].close()
    at.run()

    [(shown, _line)] = batch_headers(at)
    assert shown == prompt  # every character as typed, as text
    [generation] = [block for block in html_blocks(at) if 'class="ls-batch"' in block]
    header = generation.split('<div class="ls-grid"')[0]  # the images' own tags after it
    assert "onerror" in header and "<img" not in header and "<a" not in header


def test_a_lora_whose_training_just_finished_on_fal_can_generate(
    open_app, add_lora, engine, fake_fal, monkeypatch
):
    monkeypatch.setenv("FAL_KEY", TEST_FAL_KEY)
    fake_fal.script.queue_positions = []
    fake_fal.script.processing_seconds = 1.0
    submitted = time.monotonic()
    request_id = FalTrainer(key=TEST_FAL_KEY).submit(
        images_url="https://x/images.zip", trigger_word="sks", steps=100, is_style=True
    )
    lora = add_lora("fresh", status=LoraStatus.PENDING, weights_url=None)
    with session_scope(engine) as session:
        session.get(LoraTraining, lora.id).request_id = request_id
        session.commit()

    running = open_app(LORA_PAGE, id="fresh")  # fal: still running
    time.sleep(max(0.0, submitted + 1.2 - time.monotonic()))
    done = open_app(LORA_PAGE, id="fresh")  # fal: completed

    assert "still training" in " ".join(e.value for e in running.info)
    assert "open_generate" not in [b.key for b in running.button]
    assert not done.exception
    assert done.button(key="open_generate").label == "Generate"
    with session_scope(engine) as session:
        assert session.get(LoraTraining, "fresh").lora_weights_url.endswith(".safetensors")


def test_a_shared_image_link_shows_it_large_with_its_details_and_downloads(
    open_app, app_env, add_lora, engine, with_fal, captured_downloads
):
    add_lora("shared", trigger_word="wtrclr")
    generate(open_dialog(open_app, "shared"), "a lighthouse at dawn")
    [first, *_] = sorted(stored_images(engine), key=lambda image: image.created_at)

    at = open_app(LORA_PAGE, id="shared", image=first.id)

    assert not at.exception
    [large] = [m.value for m in at.markdown if 'class="ls-card ls-large"' in m.value]
    assert f'src="{first.image_url}"' in large  # the full image, not its thumbnail
    assert [prompt for prompt, _line in batch_headers(at)] == ["a lighthouse at dawn"]
    assert any(f"Seed {first.seed} ·" in readable(m.value) for m in at.markdown)
    [link] = [code.value for code in at.code if "image=" in code.value]
    assert link.endswith(f"/lora?id=shared&image={first.id}")
    local_copy = Path(app_env["MEDIA_DIR"]) / first.image_url.removeprefix("app/static/media/")
    downloaded = captured_downloads[f"{first.id}.jpg"]()
    with Image.open(io.BytesIO(downloaded)) as got, Image.open(local_copy) as kept:
        assert got.tobytes() == kept.tobytes()  # the image itself
    found = recipe_files.read(downloaded)  # with its recipe inside
    assert found.fields["prompt"] == "a lighthouse at dawn"
    assert found.fields["seed"] == first.seed and found.fields["lora"]["trigger_word"] == "wtrclr"
    with zipfile.ZipFile(io.BytesIO(captured_downloads[f"wtrclr-{first.batch_id}.zip"]())) as zip_:
        assert len([name for name in zip_.namelist() if name.startswith("images/")]) == 4
        manifest = json.loads(zip_.read("manifest.json"))
    assert {row["full_prompt"] for row in manifest} == {
        "a lighthouse at dawn in the style of wtrclr"
    }

    at.button(key="close_image").click().run()
    assert "image" not in at.query_params
    assert not [m for m in at.markdown if 'class="ls-card ls-large"' in m.value]


@pytest.mark.parametrize("image_id", ["nope", "../../etc", "x" * 300])
def test_an_unknown_image_in_the_link_is_explained_and_the_page_still_works(
    open_app, add_lora, add_images, image_id
):
    add_lora("shared")
    add_images("shared", 3)

    at = open_app(LORA_PAGE, id="shared", image=image_id)

    assert not at.exception
    assert "That image was not found on this LoRA" in at.warning[0].value
    assert len(cards(at)) == 3


def test_every_image_opens_its_details_in_place_and_the_grid_can_be_flat(
    open_app, add_lora, add_images
):
    add_lora("many")
    add_images("many", 3)
    at = open_app(LORA_PAGE, id="many")

    links = [re.search(r'<a class="ls-open" href="([^"]*)"', card) for card in cards(at)]
    assert sorted(html.unescape(link[1]) for link in links if link) == [
        f"lora?id=many&image=many-img-000{n}" for n in range(3)
    ]  # every image a link to its details (the page's script opens it in place)
    assert not [b for b in at.button if "-img-" in (b.key or "")]  # no Details buttons
    assert len(batch_headers(at)) == 3  # grouped

    at.query_params["image"] = "many-img-0001"  # what following the link does
    at.run()

    assert at.query_params["image"] == "many-img-0001"  # the address to share
    [large] = [m.value for m in at.markdown if 'class="ls-card ls-large"' in m.value]
    assert "https://cdn.example/many/1.jpg" in large

    at.button(key="close_image").click().run()
    at.toggle(key="group_batches").set_value(False).run()

    assert "image" not in at.query_params
    assert batch_headers(at) == []
    assert "prompt 2" in cards(at)[0]  # the prompt under each image instead
    assert "lora?id=many&amp;image=many-img-0002" in cards(at)[0]  # a link, flat too


def test_a_user_stars_an_image_and_can_show_only_their_favorites(
    open_app, add_lora, add_images, engine
):
    add_lora("starry")
    add_images("starry", 3)
    at = open_app(LORA_PAGE, id="starry", image="starry-img-0001")

    assert at.button(key="star_image").label == "Star · 0"
    at.button(key="star_image").click().run()

    assert at.button(key="star_image").label == "Starred · 1"
    with session_scope(engine) as session:
        assert favorites.stars(session=session, image_id="starry-img-0001", user="guest") == (
            1, True,
        )  # fmt: skip
    at.toggle(key="only_favorites").set_value(True).run()
    [only] = cards(at)  # the gallery's cards (the large view is not one of them)
    assert "starry/1.jpg" in only
    assert any("1 images you starred" in caption.value for caption in at.caption)


def test_signed_out_users_see_how_many_starred_an_image_but_cannot_star(
    open_app, add_lora, add_images
):
    from tests.pages.test_login import AUTH, SIGNED_OUT

    add_lora("starry")
    add_images("starry", 1)

    at = open_app(LORA_PAGE, id="starry", image="starry-img-0000", user=SIGNED_OUT, secrets=AUTH)

    assert not at.exception
    assert "star_image" not in [button.key for button in at.button]
    assert "only_favorites" not in [toggle.key for toggle in at.toggle]
    assert any(":material/star: 0" in caption.value for caption in at.caption)


def add_own_images(engine, lora_id: str, user: str, count: int) -> None:
    with session_scope(engine) as session:
        for number in range(count):
            session.add(
                GeneratedImage(
                    id=f"{user}-{number}", lora_training_id=lora_id, user=user,
                    prompt=f"{user}'s prompt {number}",
                    image_url=f"https://cdn.example/{user}/{number}.jpg", batch_id=f"b-{user}",
                    created_at=to_iso(utc_now() - timedelta(minutes=10 - number)),
                )
            )  # fmt: skip
        session.commit()


def test_the_author_hides_an_image_from_the_galleries_and_can_show_it_again(
    open_app, add_lora, engine
):
    add_lora("mine")
    add_own_images(engine, "mine", "guest", 3)
    at = open_app(LORA_PAGE, id="mine", image="guest-1")
    assert image_total(at) == "3"

    at.button(key="hide_image").click().run()

    assert not at.exception
    with session_scope(engine) as session:
        assert session.get(GeneratedImage, "guest-1").hidden is True
    assert image_total(at) == "2"  # the count is not a stale cached one
    assert not [card for card in cards(at) if "/guest/1.jpg" in card]
    assert "Hidden from the galleries; History keeps it." in [c.value for c in at.caption]
    gallery = open_app()
    assert shows(gallery, "2 images ·")  # its card's count

    at.button(key="hide_image").click().run()  # "Show in the galleries again"
    assert image_total(at) == "3"
    assert len(cards(at)) == 3 + 2  # the gallery, and the rest of its batch under the image


@pytest.mark.both_backends
def test_the_image_count_follows_images_and_hides_from_other_processes(open_app, add_lora, engine):
    """The count is cached: a new image, or an image hidden by another replica (which no
    cache clear here can see), changes its key, so the next render counts again."""
    add_lora("shared")
    add_own_images(engine, "shared", "ann", 3)
    at = open_app(LORA_PAGE, id="shared")
    assert image_total(at) == "3"

    hide(engine, "ann-0")  # in another process
    at.run()
    assert image_total(at) == "2"

    with session_scope(engine) as session:  # and another adds two
        session.add_all(
            GeneratedImage(
                id=f"new-{number}", lora_training_id="shared", user="bob",
                prompt="new", image_url=f"https://cdn.example/new/{number}.jpg",
                created_at=to_iso(utc_now()),
            )
            for number in range(2)
        )  # fmt: skip
        session.commit()
    at.run()
    assert image_total(at) == "4"


def test_others_cannot_hide_an_image_and_see_a_hidden_one_as_hidden(
    open_app, add_lora, engine, monkeypatch
):
    import streamlit as st

    from tests.pages.test_login import ANN, AUTH

    add_lora("theirs")
    add_own_images(engine, "theirs", "bob@example.com", 2)
    hide(engine, "bob@example.com-0")

    visible = open_app(LORA_PAGE, id="theirs", image="bob@example.com-1", user=ANN, secrets=AUTH)
    hidden = open_app(LORA_PAGE, id="theirs", image="bob@example.com-0", user=ANN, secrets=AUTH)
    monkeypatch.setenv("ADMIN_USERS", "ann@example.com")
    st.cache_resource.clear()  # the settings are read once per process
    admin = open_app(LORA_PAGE, id="theirs", image="bob@example.com-0", user=ANN, secrets=AUTH)

    assert "hide_image" not in [button.key for button in visible.button]
    assert any(
        "hidden from the galleries by its author or an admin" in i.value for i in hidden.info
    )
    assert admin.button(key="hide_image").label == "Show in the galleries again"


def test_the_images_shown_download_as_one_zip_also_when_filtered(
    open_app, add_lora, add_images, engine, captured_downloads
):
    add_lora("many", trigger_word="wtrclr")
    add_images("many", 30)
    for image_id in ("many-img-0003", "many-img-0007"):
        star(engine, "guest", image_id)
    at = open_app(LORA_PAGE, id="many")

    with zipfile.ZipFile(io.BytesIO(captured_downloads["wtrclr-page-1.zip"]())) as page_zip:
        everyone = json.loads(page_zip.read("manifest.json"))
    at.toggle(key="only_favorites").set_value(True).run()
    favorites_zip = captured_downloads["wtrclr-favorites-page-1.zip"]()
    with zipfile.ZipFile(io.BytesIO(favorites_zip)) as starred_zip:
        starred = json.loads(starred_zip.read("manifest.json"))

    labels = [button.proto.label for button in at.get("download_button")]
    assert "Download the 2 images shown (zip)" in labels
    assert [row["prompt"] for row in everyone] == [f"prompt {n}" for n in range(29, 5, -1)]
    assert [row["prompt"] for row in starred] == ["prompt 7", "prompt 3"]


def test_grids_load_thumbnails_and_open_the_full_image(open_app, add_lora, engine, with_fal):
    add_lora("thumbs")

    at = generate(open_dialog(open_app, "thumbs"), "a storm")

    images = stored_images(engine)
    assert len(images) == 4
    for image in images:
        assert image.thumbnail_url == image.image_url.replace(".jpg", ".thumb.webp")
    result_grid = " ".join(results(at))
    page_grid = " ".join(cards(open_app(LORA_PAGE, id="thumbs")))
    for image in images:
        assert f'href="{image.image_url}"' in result_grid  # opened in a new tab: the full image
        assert f'href="{image.image_url}"' not in page_grid  # the card opens its details
    for grid in (result_grid, page_grid):
        for image in images:
            assert f'src="{image.thumbnail_url}"' in grid  # loaded by the page: the thumbnail
        assert grid.count('width="384" height="384"') == 4  # its place kept while loading
        assert grid.count('loading="eager"') == 4  # on the first screen: loaded at once
        # What it is, read aloud.
        assert (
            grid.count('alt="Image generated with the LoRA sks-style from the prompt: a storm"')
            == 4
        )
    details = open_app(LORA_PAGE, id="thumbs", image=images[0].id)
    [large] = [m.value for m in details.markdown if 'class="ls-card ls-large"' in m.value]
    assert f'src="{images[0].image_url}"' in large and f'href="{images[0].image_url}"' in large
    assert 'alt="Image generated with the LoRA sks-style from the prompt: a storm"' in large


def test_images_without_thumbnails_are_shown_whole_once_and_get_one_in_the_background(
    open_app, app_env, add_lora, engine
):
    from ui import context

    add_lora("old")
    media = Path(app_env["MEDIA_DIR"])
    with session_scope(engine) as session:
        for number in range(3):  # stored before thumbnails existed
            (media / "old").mkdir(parents=True, exist_ok=True)
            Image.new("RGB", (1024, 1024), "navy").save(media / "old" / f"{number}.jpg")
            session.add(
                GeneratedImage(
                    id=f"old-{number}", lora_training_id="old", user="ann",
                    prompt="p", image_url=f"app/static/media/old/{number}.jpg",
                    created_at=to_iso(utc_now() - timedelta(minutes=number)),
                )
            )  # fmt: skip
        session.commit()

    first = " ".join(cards(open_app(LORA_PAGE, id="old")))
    context.studio().thumbnails.wait_until_idle()
    second = " ".join(cards(open_app(LORA_PAGE, id="old")))

    for number in range(3):
        assert f'src="app/static/media/old/{number}.jpg"' in first
        thumbnail = f"app/static/media/thumbs/old-{number}.thumb.webp"
        assert f'src="{thumbnail}"' in second
        assert Image.open(media / thumbnail.removeprefix("app/static/media/")).size == (384, 384)
    assert {image.thumbnail_url for image in stored_images(engine)} == {
        f"app/static/media/thumbs/old-{number}.thumb.webp" for number in range(3)
    }


def test_the_advanced_settings_are_sent_to_fal_and_stored(open_app, add_lora, engine, with_fal):
    add_lora("tuned", trigger_word="wtrclr")
    at = open_dialog(open_app, "tuned")
    assert setting(at.slider, "scale").value == 1.5 and setting(at.slider, "steps").value == 28
    assert setting(at.text_input, "seed").value == ""  # random

    setting(at.slider, "scale").set_value(0.5)
    setting(at.text_input, "seed").input("42")
    setting(at.selectbox, "size").select("landscape_4_3")
    setting(at.slider, "steps").set_value(20)
    setting(at.slider, "guidance").set_value(5.0)
    generate(at, "a lighthouse at dusk")

    assert not at.exception and not at.error
    body = with_fal.submissions[0].body
    assert body["loras"][0]["scale"] == 0.5 and body["seed"] == 42
    assert (body["image_size"], body["num_inference_steps"], body["guidance_scale"]) == (
        "landscape_4_3", 20, 5.0
    )  # fmt: skip
    assert {(i.seed, i.image_width, i.image_height) for i in stored_images(engine)} == {
        ("42", 1024, 768)
    }


def test_a_seed_that_is_not_a_number_is_explained_and_nothing_is_spent(
    open_app, add_lora, engine, with_fal
):
    add_lora("typo")
    at = open_dialog(open_app, "typo")
    setting(at.text_input, "seed").input("forty-two")

    generate(at, "a lighthouse")

    assert "The seed must be a whole number" in readable(at.warning[0].value)
    assert with_fal.submissions == [] and stored_images(engine) == []
    assert "8 of 8 generations remaining today" in [c.value for c in at.caption]


def test_an_images_details_show_its_settings_and_reproduce_it(open_app, add_lora, engine, with_fal):
    add_lora("again", trigger_word="wtrclr")
    generate(open_dialog(open_app, "again"), "a lighthouse")
    first = stored_images(engine)[0]
    at = open_app(LORA_PAGE, id="again", image=first.id)

    assert any(c.value == "scale 1\\.5 · 28 steps · guidance 3\\.5 · 1024×1024" for c in at.caption)
    at.button(key="reproduce_image").click().run()

    assert not at.exception and not at.error
    original, again = (submission.body for submission in with_fal.submissions)
    assert "seed" not in original and again["seed"] == int(first.seed)
    assert {k: v for k, v in again.items() if k != "seed"} == original
    assert len(stored_images(engine)) == 8 and len(results(at)) == 4
    assert "image" not in at.query_params  # the Generate dialog replaced the details


def test_remix_opens_the_dialog_filled_with_the_images_recipe(open_app, add_lora, engine, with_fal):
    add_lora("remixed", trigger_word="wtrclr")
    at = open_dialog(open_app, "remixed")
    setting(at.slider, "steps").set_value(12)
    generate(at, "a fox in the snow")
    image = stored_images(engine)[0]
    at = open_app(LORA_PAGE, id="remixed", image=image.id)

    at.button(key="remix_image").click().run()

    assert at.text_area(key="gen_prompt").value == "a fox in the snow"
    assert setting(at.text_input, "seed").value == image.seed
    assert setting(at.slider, "steps").value == 12
    [advanced] = [e for e in at.expander if e.label == "Advanced"]
    assert advanced.proto.expanded  # the changed settings are in view
    assert len(with_fal.submissions) == 1  # nothing generated until the user clicks


def test_a_stacked_generation_sends_both_loras_and_remix_keeps_them(
    open_app, add_lora, engine, with_fal
):
    add_lora("subject", trigger_word="ohwx")
    add_lora("style", trigger_word="wtrclr", weights_url="https://w.example/style.safetensors")
    at = open_dialog(open_app, "subject")
    [stack] = [e for e in at.expander if e.label == "Stack LoRAs"]
    assert not stack.proto.expanded  # nothing added yet

    setting(at.selectbox, "stack_0").select("style")
    setting(at.number_input, "stack_scale_0").set_value(0.6)
    generate(at, "a fox")

    assert not at.exception and not at.error
    body = with_fal.submissions[0].body
    assert [lora["scale"] for lora in body["loras"]] == [1.5, 0.6]
    assert body["loras"][1]["path"] == "https://w.example/style.safetensors"
    assert body["prompt"] == "a fox in the style of ohwx in the style of wtrclr"
    image = stored_images(engine)[0]
    at = open_app(LORA_PAGE, id="subject", image=image.id)
    assert "With wtrclr at 0\\.6" in [c.value for c in at.caption]

    at.button(key="remix_image").click().run()

    assert setting(at.selectbox, "stack_0").value == "style"
    assert setting(at.number_input, "stack_scale_0").value == 0.6
    assert setting(at.selectbox, "stack_1").value is None
    [stack] = [e for e in at.expander if e.label == "Stack LoRAs"]
    assert stack.proto.expanded
    generate(at, "a fox")
    assert with_fal.submissions[1].body["loras"] == body["loras"]


def test_a_prompt_template_is_shown_in_the_dialog_and_used(open_app, add_lora, engine, with_fal):
    from lora_core.gallery import scorecards
    from lora_core.identity import Identity

    add_lora("templated", trigger_word="wtrclr")
    scorecards.save(
        engine=engine, who=Identity(user="root", is_admin=True), lora_id="templated",
        notes="", tags=(), verdict=None, prompt_template="{prompt}, {trigger} *style*",
    )  # fmt: skip
    at = open_dialog(open_app, "templated")

    assert 'Your prompt will include: "...\\, wtrclr \\*style\\*"' in [c.value for c in at.caption]
    generate(at, "a boat")
    assert with_fal.submissions[0].body["prompt"] == "a boat, wtrclr *style*"


def test_a_stacked_image_is_on_both_loras_pages_marked_with_the_other(
    open_app, add_lora, engine, with_fal
):
    add_lora("subject", trigger_word="ohwx")
    add_lora("style", trigger_word="wtrclr", weights_url="https://w.example/style.safetensors")
    at = open_dialog(open_app, "subject")
    setting(at.selectbox, "stack_0").select("style")
    setting(at.number_input, "stack_scale_0").set_value(0.6)
    generate(at, "a fox")

    for page, mark in (("subject", "with wtrclr at 0\\.6"), ("style", "with ohwx at 1\\.5")):
        at = open_app(LORA_PAGE, id=page)
        assert len(cards(at)) == 4, page
        [(_prompt, line)] = batch_headers(at)
        assert line.endswith(f" · {readable(mark)}"), page  # the group's line
        at.toggle(key="group_batches").set_value(False).run()
        assert sum(readable(mark) in card for card in cards(at)) == 4, page  # under each image
    image = stored_images(engine)[0]
    at = open_app(LORA_PAGE, id="style", image=image.id)
    assert "With wtrclr at 0\\.6" in [c.value for c in at.caption]  # its details open here
    assert "Its LoRA: ohwx" in [c.value for c in at.caption]

    at.button(key="remix_image").click().run()  # remixed as its own LoRA's, on its page

    assert not at.exception and at.query_params["id"] == "subject"
    assert setting(at.selectbox, "stack_0").value == "style"
    assert at.text_area(key="gen_prompt").value == "a fox"


def test_reproducing_an_image_whose_stacked_lora_is_hidden_says_so_and_waits(
    open_app, add_lora, engine, with_fal
):
    from sqlalchemy import update

    add_lora("subject", trigger_word="ohwx")
    add_lora("style", trigger_word="wtrclr", weights_url="https://w.example/style.safetensors")
    add_lora("other", trigger_word="other")
    at = open_dialog(open_app, "subject")
    setting(at.selectbox, "stack_0").select("style")
    generate(at, "a fox")
    with session_scope(engine) as session:  # an admin hid style since
        session.execute(update(LoraTraining).where(LoraTraining.id == "style").values(hidden=True))
        session.commit()
    image = stored_images(engine)[0]
    at = open_app(LORA_PAGE, id="subject", image=image.id)

    at.button(key="reproduce_image").click().run()

    assert not at.exception
    assert any("Not stacked here: wtrclr" in readable(w.value) for w in at.warning)
    assert len(with_fal.submissions) == 1  # not run without it behind the user's back
    assert setting(at.selectbox, "stack_0").value is None


def test_only_the_first_screens_images_load_at_once(open_app, add_lora, add_images):
    """A lazy image waits for layout to find it on screen; the first screen's need not."""
    add_lora("many")
    add_images("many", 12)
    at = open_app(LORA_PAGE, id="many")
    at.toggle(key="group_batches").set_value(False).run()

    loading = [card.split('loading="')[1].split('"')[0] for card in cards(at)]
    assert loading == ["eager"] * 8 + ["lazy"] * 4
