"""Copy every image of ours still served from fal's URL into our store.

    python -m lora_core.repair

A copy fails when fal's CDN is briefly unreachable; generation then keeps fal's URL (nothing
is lost) and this command finishes the job later. Only our own rows (with a batch) are
touched: rows of the original app keep their URLs, which that app must be able to open.
"""

from __future__ import annotations

import sys
from dataclasses import dataclass

from sqlalchemy import Engine, select, update
from sqlmodel import col

from lora_core.db import create_db_engine, session_scope
from lora_core.errors import LoraStudioError
from lora_core.models import GeneratedImage
from lora_core.settings import load_settings, read_secrets_file
from lora_core.storage import MediaStore, build_store, copy_images

CHUNK = 8


@dataclass(frozen=True)
class RepairReport:
    copied: int
    failed: int


def repair_images(*, engine: Engine, store: MediaStore) -> RepairReport:
    with session_scope(engine) as session:
        pending = session.execute(
            select(GeneratedImage.id, GeneratedImage.batch_id, GeneratedImage.original_url)
            .where(col(GeneratedImage.batch_id).is_not(None))
            .where(col(GeneratedImage.original_url).is_not(None))
            .where(col(GeneratedImage.image_url) == col(GeneratedImage.original_url))
        ).all()
    copied = failed = 0
    for start in range(0, len(pending), CHUNK):
        chunk = pending[start : start + CHUNK]
        urls = copy_images(
            store, [(url, f"fal/{batch_id}/{image_id}.jpg") for image_id, batch_id, url in chunk]
        )
        with session_scope(engine) as session:
            for (image_id, _batch_id, _url), our_url in zip(chunk, urls, strict=True):
                if our_url is None:
                    failed += 1
                    continue
                session.execute(
                    update(GeneratedImage)
                    .where(col(GeneratedImage.id) == image_id)
                    .values(image_url=our_url)
                )
                copied += 1
            session.commit()
    return RepairReport(copied=copied, failed=failed)


def main() -> int:
    try:
        settings = load_settings(read_secrets_file())
        report = repair_images(
            engine=create_db_engine(settings.database.direct),
            store=build_store(settings),
        )
    except LoraStudioError as error:
        print(f"Nothing repaired: {error}", file=sys.stderr)
        return 1
    print(f"Copied {report.copied} images; {report.failed} still unreachable.")
    return 0 if report.failed == 0 else 2


if __name__ == "__main__":
    sys.exit(main())
