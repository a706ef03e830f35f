"""Small factories for tests: rows written through the app's own core functions, rows read
back, and training pictures."""

from __future__ import annotations

import io
from datetime import datetime

from PIL import Image
from sqlalchemy import Engine, select

from lora_core.data.db import session_scope
from lora_core.data.models import GeneratedImage, GenerationBatch, LoraTraining
from lora_core.gallery import favorites, moderation
from lora_core.identity import Identity
from lora_core.training.archive import UploadedFile

ADMIN = Identity(user="admin@example.com", is_admin=True)


def image(engine: Engine, image_id: str) -> GeneratedImage:
    with session_scope(engine) as session:
        found = session.get(GeneratedImage, image_id)
    assert found is not None, image_id
    return found


def hide(engine: Engine, image_id: str, *, hidden: bool = True) -> None:
    """Hide an image (or show it again), as an admin would."""
    moderation.set_image_hidden(
        engine=engine, who=ADMIN, image=image(engine, image_id), hidden=hidden
    )


def star(
    engine: Engine,
    user: str,
    image_id: str,
    *,
    starred: bool = True,
    now: datetime | None = None,
) -> None:
    favorites.set_starred(
        engine=engine, user=user, image=image(engine, image_id), starred=starred, now=now
    )


def stored_loras(engine: Engine) -> list[LoraTraining]:
    with session_scope(engine) as session:
        return list(session.scalars(select(LoraTraining)).all())


def stored_batches(engine: Engine) -> list[GenerationBatch]:
    with session_scope(engine) as session:
        return list(session.scalars(select(GenerationBatch)).all())


def stored_images(engine: Engine) -> list[GeneratedImage]:
    with session_scope(engine) as session:
        return list(session.scalars(select(GeneratedImage)).all())


def picture(name: str, size: tuple[int, int] = (512, 512)) -> UploadedFile:
    """A real image file in the format its name says."""
    formats = {"jpg": "JPEG", "jpeg": "JPEG", "png": "PNG", "webp": "WEBP"}
    buffer = io.BytesIO()
    Image.new("RGB", size, (200, 120, 40)).save(buffer, format=formats[name.rsplit(".", 1)[1]])
    return UploadedFile(name, buffer.getvalue())


def pictures(count: int) -> list[UploadedFile]:
    return [picture(f"photo-{number}.jpg") for number in range(count)]


def png_claiming(width: int, height: int) -> bytes:
    """A small, valid-looking PNG whose header claims `width`×`height` pixels: what a
    decompression bomb looks like to a reader (a few bytes of data, a huge picture)."""
    import struct
    import zlib

    def chunk(kind: bytes, data: bytes) -> bytes:
        crc = zlib.crc32(kind + data) & 0xFFFFFFFF
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", crc)

    header = struct.pack(">IIBBBBB", width, height, 8, 0, 0, 0, 0)  # 8-bit greyscale
    rows = zlib.compress(b"\x00" * 1024, 9)  # far less than the header promises
    return (
        b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", header) + chunk(b"IDAT", rows) + chunk(b"IEND", b"")
    )


def png_with_parameters(text: str) -> bytes:
    """A tiny PNG carrying `text` in AUTOMATIC1111's "parameters" text chunk."""
    from PIL import PngImagePlugin

    info = PngImagePlugin.PngInfo()
    info.add_text("parameters", text)
    buffer = io.BytesIO()
    Image.new("RGB", (8, 8)).save(buffer, "PNG", pnginfo=info)
    return buffer.getvalue()


def cut_short(upload: UploadedFile, keep: float = 0.5) -> UploadedFile:
    """The first part of a file, as an interrupted copy leaves it."""
    return UploadedFile(upload.name, upload.data[: int(len(upload.data) * keep)])


def unsaved_image(
    number: int, *, batch: str | None, prompt: str = "p", second: int = 0
) -> GeneratedImage:
    """An image row, not stored: number `number` of batch `batch` (None: the original
    app's, grouped by user, prompt and second) at second `second`."""
    return GeneratedImage(
        id=f"i{number}",
        lora_training_id="l",
        user="ann",
        prompt=prompt,
        image_url=f"u{number}",
        created_at=f"2026-02-11T10:00:{second:02d}.{number:03d}Z",
        batch_id=batch,
    )
