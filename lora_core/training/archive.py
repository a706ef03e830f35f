"""What a training is made of, checked before anything is spent: the uploaded images (or
zips of them) packed into one archive, the trigger word and the steps.
"""

from __future__ import annotations

import hashlib
import io
import zipfile
import zlib
from dataclasses import dataclass
from pathlib import PurePosixPath

from PIL import Image, UnidentifiedImageError

from lora_core.errors import InvalidTrainingInput
from lora_core.training import names

MIN_IMAGES, MAX_IMAGES = 5, 50


MAX_IMAGE_BYTES = 20 * 1024 * 1024


MAX_ARCHIVE_BYTES = 200 * 1024 * 1024


MIN_IMAGE_SIDE = 256


# Every image is decoded before anything is spent; this bounds the memory one takes.
MAX_IMAGE_PIXELS = 50_000_000


IMAGE_SUFFIXES = (".jpg", ".jpeg", ".png", ".webp")


# fal's schema gives the trainer's steps as a number with no documented default; 1,000 is
# the usual choice for a FLUX LoRA (the original plan's), and our own bounds keep a typo
# from a 10-second or a day-long (and costly) training.
DEFAULT_STEPS = 1000


MIN_STEPS, MAX_STEPS = 100, 10_000


@dataclass(frozen=True)
class UploadedFile:
    """A file as the user uploaded it: a training image, or a zip of them."""

    name: str
    data: bytes


def submission_key(
    files: list[UploadedFile], trigger_word: str, steps: int, *, is_style: bool
) -> str:
    """Identifies one submission of the form (which files, word, steps and kind), so that
    the same submission arriving twice (a second click while the first upload runs) starts
    one training, not two."""
    digest = hashlib.sha256(f"{trigger_word.strip()}|{steps}|{is_style}".encode())
    for file in files:
        digest.update(f"|{file.name}|{len(file.data)}|".encode())
        digest.update(hashlib.sha256(file.data[:65536]).digest())
    return digest.hexdigest()


def check_trigger_word(word: str) -> str:
    """The trigger word, by the one rule of `lora_core.training.names`."""
    return names.trigger_word(word, error=InvalidTrainingInput)


def check_steps(steps: int) -> int:
    if not MIN_STEPS <= steps <= MAX_STEPS:
        raise InvalidTrainingInput(
            f"Training steps must be between {MIN_STEPS:,} and {MAX_STEPS:,} "
            f"({DEFAULT_STEPS:,} is a good start)."
        )
    return steps


def training_archive(files: list[UploadedFile]) -> bytes:
    """One zip of the training images, each checked (type, size, a readable picture), from
    images and zips of images as uploaded. Raises InvalidTrainingInput before anything is
    spent."""
    images: list[UploadedFile] = []
    for upload in files:
        if upload.name.lower().endswith(".zip"):
            images.extend(_images_in_zip(upload))
        else:
            images.append(upload)
        if len(images) > MAX_IMAGES:
            break  # enough to refuse; nothing more is unpacked
    if not MIN_IMAGES <= len(images) <= MAX_IMAGES:
        raise InvalidTrainingInput(
            f"Upload {MIN_IMAGES}–{MAX_IMAGES} training images; these files hold {len(images)}."
        )
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", zipfile.ZIP_STORED) as archive:
        for number, image in enumerate(images, start=1):
            suffix = _check_image(image)
            archive.writestr(f"{number:03d}{suffix}", image.data)
    if buffer.tell() > MAX_ARCHIVE_BYTES:
        raise InvalidTrainingInput(
            f"The images add up to more than {MAX_ARCHIVE_BYTES // 2**20} MB; upload fewer "
            "or smaller ones."
        )
    return buffer.getvalue()


def _images_in_zip(upload: UploadedFile) -> list[UploadedFile]:
    try:
        with zipfile.ZipFile(io.BytesIO(upload.data)) as archive:
            members = [
                member
                for member in archive.infolist()
                if not member.is_dir()
                and not PurePosixPath(member.filename).name.startswith(".")
                and "__MACOSX" not in member.filename
            ]
            # Checked on the declared sizes before anything is unpacked (a zip bomb is small).
            if len(members) > MAX_IMAGES:
                raise InvalidTrainingInput(
                    f"{upload.name} holds {len(members)} files; upload {MIN_IMAGES}–{MAX_IMAGES}."
                )
            if any(member.file_size > MAX_IMAGE_BYTES for member in members):
                raise InvalidTrainingInput(
                    f"{upload.name} holds a file over {MAX_IMAGE_BYTES // 2**20} MB."
                )
            if sum(member.file_size for member in members) > MAX_ARCHIVE_BYTES:
                raise InvalidTrainingInput(
                    f"{upload.name} unpacks to more than {MAX_ARCHIVE_BYTES // 2**20} MB."
                )
            return [
                UploadedFile(PurePosixPath(member.filename).name, archive.read(member))
                for member in members
            ]
    except (
        zipfile.BadZipFile,
        zipfile.LargeZipFile,
        NotImplementedError,
        RuntimeError,  # encrypted
        zlib.error,
        EOFError,
    ):
        raise InvalidTrainingInput(f"{upload.name} is not a zip file we can read.") from None


def _check_image(image: UploadedFile) -> str:
    suffix = PurePosixPath(image.name).suffix.lower()
    if suffix not in IMAGE_SUFFIXES:
        raise InvalidTrainingInput(
            f"{image.name} is not a training image: use JPEG, PNG or WebP files."
        )
    if len(image.data) > MAX_IMAGE_BYTES:
        raise InvalidTrainingInput(f"{image.name} is over {MAX_IMAGE_BYTES // 2**20} MB.")
    try:
        with Image.open(io.BytesIO(image.data)) as picture:
            width, height = picture.size
            if width * height > MAX_IMAGE_PIXELS:
                raise InvalidTrainingInput(
                    f"{image.name} is {width}×{height}: training images may have at most "
                    f"{MAX_IMAGE_PIXELS // 1_000_000} million pixels."
                )
            # Decoded in full: `verify()` reads no JPEG data, so half a file would pass and
            # be paid for. A JPEG is decoded at an eighth of its size (its whole data all
            # the same), which is quicker.
            picture.draft("RGB", (width // 8, height // 8))
            picture.load()
    except Image.DecompressionBombError:
        raise InvalidTrainingInput(f"{image.name} is far too large a picture.") from None
    except (UnidentifiedImageError, OSError, SyntaxError, ValueError, EOFError):
        raise InvalidTrainingInput(
            f"{image.name} is not a picture we can read (damaged or cut short)."
        ) from None
    if min(width, height) < MIN_IMAGE_SIDE:
        raise InvalidTrainingInput(
            f"{image.name} is {width}×{height}: training images need at least "
            f"{MIN_IMAGE_SIDE} pixels on each side."
        )
    return suffix
