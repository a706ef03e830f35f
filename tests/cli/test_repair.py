"""repair: images whose copy failed are copied later; nothing else is touched."""

from __future__ import annotations

from sqlalchemy import select

from lora_core.cli.repair import repair_images
from lora_core.data.db import session_scope
from lora_core.data.models import GeneratedImage
from lora_core.generation import service


def images(engine) -> list[GeneratedImage]:
    with session_scope(engine) as session:
        return list(session.scalars(select(GeneratedImage)))


def test_failed_copies_are_repaired_once_fal_answers(
    engine, add_lora, fal_generator, policy, fake_fal, media_store, add_images
):
    lora = add_lora()
    add_images("legacy", 2)  # the original app's rows: fal URLs, no batch
    fake_fal.script.files_missing = True
    service.generate(
        engine=engine,
        generator=fal_generator,
        policy=policy,
        user="ann",
        lora_id=lora.id,
        prompt="a cat",
        store=media_store,
    )

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
