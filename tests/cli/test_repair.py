"""repair: images whose copy failed are copied later; nothing else is touched."""

from __future__ import annotations

import io

from PIL import Image
from sqlalchemy import select

from lora_core import thumbnails
from lora_core.cli import repair
from lora_core.cli.repair import repair_images
from lora_core.data.clock import to_iso
from lora_core.data.db import session_scope
from lora_core.data.models import GeneratedImage
from tests.conftest import NOW


def images(engine) -> list[GeneratedImage]:
    with session_scope(engine) as session:
        return list(session.scalars(select(GeneratedImage)))


def test_failed_copies_are_repaired_once_fal_answers(
    engine, add_lora, fake_fal, media_store, add_images, generate_batch
):
    lora = add_lora()
    add_images("legacy", 2)  # the original app's rows: fal URLs, no batch
    fake_fal.script.files_missing = True
    generate_batch(lora.id, store=media_store)

    assert repair_images(engine=engine, store=media_store).failed == 4
    fake_fal.script.files_missing = False
    report = repair_images(engine=engine, store=media_store)

    assert (report.copied, report.failed) == (4, 0)
    ours = [image for image in images(engine) if image.batch_id]
    assert all(image.image_url.startswith("app/static/media/fal/") for image in ours)
    assert all(media_store.path_for(image.image_url).exists() for image in ours)
    legacy = [image for image in images(engine) if not image.batch_id]
    assert all(image.image_url.startswith("https://cdn.example/") for image in legacy)
    assert repair_images(engine=engine, store=media_store) == type(report)(0, 0)


def a_jpeg(size: tuple[int, int] = (1024, 768)) -> bytes:
    out = io.BytesIO()
    Image.new("RGB", size, "teal").save(out, "JPEG")
    return out.getvalue()


def test_missing_thumbnails_are_made_in_chunks_and_a_second_run_makes_none(
    engine, add_lora, fake_fal, media_store, monkeypatch
):
    monkeypatch.setattr(repair, "THUMBNAIL_CHUNK", 2)
    lora = add_lora()
    ours = media_store.save("fal/old/0.jpg", a_jpeg())
    sources = {
        "a-legacy-0": f"https://{fake_fal.host}/files/legacy/0.jpg",  # the original app's
        "a-legacy-1": f"https://{fake_fal.host}/files/legacy/1.jpg",
        "b-ours": ours,  # stored before thumbnails existed
        "c-gone": "https://127.0.0.1:1/expired.jpg",  # nothing answers there any more
        "d-flagged": f"https://{fake_fal.host}/files/legacy/2.jpg",
    }
    with session_scope(engine) as session:
        for image_id, url in sources.items():
            session.add(
                GeneratedImage(
                    id=image_id, lora_training_id=lora.id, user="ann", prompt="p",
                    image_url=url, created_at=to_iso(NOW), nsfw=image_id == "d-flagged" or None,
                )
            )  # fmt: skip
        session.commit()
    progress: list[tuple[int, int]] = []

    report = repair.repair_thumbnails(
        engine=engine, store=media_store, progress=lambda *done: progress.append(done)
    )

    assert (report.copied, report.failed) == (3, 1)
    assert progress == [(2, 0), (3, 1)]  # two chunks of two, each recorded as it is done
    made = {image.id: image.thumbnail_url for image in images(engine)}
    assert made["c-gone"] is None and made["d-flagged"] is None  # never shown: no thumbnail
    for image_id in ("a-legacy-0", "a-legacy-1", "b-ours"):
        assert made[image_id] == f"app/static/media/thumbs/{image_id}.thumb.webp"
        thumbnail = Image.open(media_store.path_for(made[image_id]))
        assert thumbnail.format == "WEBP" and max(thumbnail.size) <= thumbnails.LONG_SIDE
    # A 1024 x 768 image: 384 px on its long side, its shape kept.
    assert Image.open(media_store.path_for(made["b-ours"])).size == (384, 288)
    assert legacy_urls_unchanged(engine, sources)

    again = repair.repair_thumbnails(engine=engine, store=media_store)
    assert (again.copied, again.failed) == (0, 1)  # only the unreadable one is tried again


def legacy_urls_unchanged(engine, sources: dict[str, str]) -> bool:
    return {image.id: image.image_url for image in images(engine)} == sources
