"""LoRA trainers behind one interface: fal's `fal-ai/flux-lora-fast-training`, or an offline
preview; and the training archive they take.

Training runs for minutes, so nothing here waits for it: a job is uploaded and submitted,
then its state is asked for by request id whenever a page wants it, which survives page
reloads and app restarts.
"""

from __future__ import annotations

import contextlib
import hashlib
import io
import logging
import re
import tempfile
import time
import uuid
import zipfile
import zlib
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path, PurePosixPath
from typing import Literal, Protocol

import fal_client
import httpx
from PIL import Image, UnidentifiedImageError

from lora_core.errors import InvalidTrainingInput, TrainingFailed
from lora_core.fal import client as fal
from lora_core.settings import Settings
from lora_core.storage import MediaStore, build_store

logger = logging.getLogger(__name__)

TRAINING_APP = "fal-ai/flux-lora-fast-training"
MIN_IMAGES, MAX_IMAGES = 5, 50
MAX_IMAGE_BYTES = 20 * 1024 * 1024
MAX_ARCHIVE_BYTES = 200 * 1024 * 1024
MIN_IMAGE_SIDE = 256
IMAGE_SUFFIXES = (".jpg", ".jpeg", ".png", ".webp")
# fal's schema gives the trainer's steps as a number with no documented default; 1,000 is
# the usual choice for a FLUX LoRA (the original plan's), and our own bounds keep a typo
# from a 10-second or a day-long (and costly) training.
DEFAULT_STEPS = 1000
MIN_STEPS, MAX_STEPS = 100, 10_000
# A page view asks fal about a training for at most this long; a submit may take longer.
STATE_SECONDS = 5.0
SUBMIT_SECONDS = 60.0
LOST_SUBMIT = (
    "fal may have received this training, but its answer was lost: fal may still run it. "
    "It is not in your LoRAs and no training was counted; check fal's dashboard before "
    "starting it again."
)
_TRIGGER_WORD = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_-]{1,31}$")


@dataclass(frozen=True)
class UploadedFile:
    """A file as the user uploaded it: a training image, or a zip of them."""

    name: str
    data: bytes


@dataclass(frozen=True)
class TrainingState:
    stage: Literal["queued", "running", "completed"]
    queue_position: int | None = None
    logs: tuple[str, ...] = ()


@dataclass(frozen=True)
class TrainedFiles:
    """What a finished training produced, at the trainer's URLs (fal's expire)."""

    weights_url: str
    config_url: str | None = None


class Trainer(Protocol):
    def upload(self, archive: bytes) -> str:
        """Store the training archive where the trainer can read it; return its URL."""
        ...

    def submit(self, *, images_url: str, trigger_word: str, steps: int, is_style: bool) -> str:
        """Start a training job; return its request id."""
        ...

    def state(self, request_id: str) -> TrainingState:
        """Where the job is; TrainingFailed (`job_failed`) when it failed or is unknown."""
        ...

    def files(self, request_id: str) -> TrainedFiles:
        """The trained files of a completed job; TrainingFailed when the job failed."""
        ...


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
    word = word.strip()
    if not _TRIGGER_WORD.match(word):
        raise InvalidTrainingInput(
            "The trigger word must be 2–32 characters: letters, digits, '-' or '_', "
            "starting with a letter or digit (e.g. sks-style)."
        )
    return word


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
            picture.verify()
    except Image.DecompressionBombError:
        raise InvalidTrainingInput(f"{image.name} is far too large a picture.") from None
    except (UnidentifiedImageError, OSError, SyntaxError, ValueError, EOFError):
        raise InvalidTrainingInput(f"{image.name} is not a picture we can read.") from None
    if min(width, height) < MIN_IMAGE_SIDE:
        raise InvalidTrainingInput(
            f"{image.name} is {width}×{height}: training images need at least "
            f"{MIN_IMAGE_SIDE} pixels on each side."
        )
    return suffix


def training_arguments(
    *, images_url: str, trigger_word: str, steps: int, is_style: bool
) -> dict[str, object]:
    """What `fal-ai/flux-lora-fast-training` gets. A style is trained as fal documents it
    (`is_style`: no segmentation or captioning, the trigger word used as is); a subject
    keeps fal's masks of the subject (`create_masks`). Our archive is always a zip."""
    return {
        "images_data_url": images_url,
        "trigger_word": trigger_word,
        "steps": steps,
        "is_style": is_style,
        "create_masks": not is_style,
        "data_archive_format": "zip",
    }


@dataclass
class FalTrainer:
    """The real trainer, through `fal_client`'s upload and queue APIs (its submit sent at
    most once, its page-view questions bounded in time: `lora_core.fal.client`)."""

    key: str = field(repr=False)
    _client: fal_client.SyncClient = field(init=False, repr=False)

    def __post_init__(self) -> None:
        self._client = fal.GuardedClient(key=self.key)

    def upload(self, archive: bytes) -> str:
        # `upload_file` as fal documents it (it names and types the file from its path, and
        # sends files over 100 MiB in parts).
        with tempfile.TemporaryDirectory(prefix="lora-studio-") as folder:
            path = Path(folder) / "training-images.zip"
            path.write_bytes(archive)
            with _fal_errors("upload the training images to"):
                return self._client.upload_file(path)

    def submit(self, *, images_url: str, trigger_word: str, steps: int, is_style: bool) -> str:
        arguments = training_arguments(
            images_url=images_url, trigger_word=trigger_word, steps=steps, is_style=is_style
        )
        with _fal_errors("start the training on"), fal.deadline(SUBMIT_SECONDS):
            return fal.submit_once(self._client, TRAINING_APP, arguments).request_id

    def state(self, request_id: str) -> TrainingState:
        with (
            _fal_errors("read the training's state from", job="status"),
            fal.deadline(STATE_SECONDS),
        ):
            status = self._client.status(TRAINING_APP, request_id, with_logs=True)
        if isinstance(status, fal_client.Queued):
            return TrainingState("queued", queue_position=status.position)
        logs = tuple(
            str(line.get("message", "")) for line in (status.logs or []) if isinstance(line, dict)
        )
        if isinstance(status, fal_client.InProgress):
            return TrainingState("running", logs=logs)
        if isinstance(status, fal_client.Completed) and status.error:
            raise TrainingFailed(f"The training failed on fal: {status.error}", job_failed=True)
        return TrainingState("completed", logs=logs)

    def files(self, request_id: str) -> TrainedFiles:
        with (
            _fal_errors("read the trained weights from", job="result"),
            fal.deadline(STATE_SECONDS),
        ):
            result = self._client.result(TRAINING_APP, request_id)
        try:
            weights = str(result["diffusers_lora_file"]["url"])
        except (KeyError, TypeError):
            raise TrainingFailed(
                "fal finished the training but returned no weights.", job_failed=True
            ) from None
        config = result.get("config_file") if isinstance(result, dict) else None
        config_url = config.get("url") if isinstance(config, dict) else None
        return TrainedFiles(weights_url=weights, config_url=str(config_url) if config_url else None)


@contextlib.contextmanager
def _fal_errors(action: str, *, job: Literal["status", "result"] | None = None) -> Iterator[None]:
    """fal's failures as TrainingFailed with a message that says what failed. `job` names
    a question about the job itself, whose answer from fal may be final: an unknown
    request id, or (for the result) fal's own error answer, which is the job's failure.
    Anything else (a gateway, the network, a slow answer) leaves the job to be asked
    about again."""
    try:
        yield
    except fal_client.client.FalClientHTTPError as error:
        status = error.status_code
        if status in (401, 403):
            raise TrainingFailed(_refused_key(status)) from None
        if job is not None and fal.not_found(error):
            raise TrainingFailed(
                "fal no longer knows this training (it keeps requests for a limited time).",
                job_failed=True,
                unknown=True,
            ) from None
        if job == "result" and fal.answered_by_fal(error):
            raise TrainingFailed(
                f"The training failed on fal: {fal.error_detail(error)}", job_failed=True
            ) from None
        raise TrainingFailed(
            f"Could not {action} fal (HTTP {status}): {fal.error_detail(error)}"
        ) from None
    except httpx.HTTPStatusError as error:  # fal_client's upload token, asked without it
        status = error.response.status_code
        if status in (401, 403):
            raise TrainingFailed(_refused_key(status)) from None
        raise TrainingFailed(f"Could not {action} fal (HTTP {status}).") from None
    except fal.SubmitOutcomeUnknown as error:
        logger.warning("fal's answer to a training submit was lost (%s); not resubmitted", error)
        raise TrainingFailed(LOST_SUBMIT) from None
    except fal.DeadlinePassed:
        raise TrainingFailed(f"Could not {action} fal: it did not answer in time.") from None
    except (httpx.HTTPError, fal_client.client.FalClientError, ValueError, KeyError):
        raise TrainingFailed(
            f"Could not {action} fal. Check the connection and try again."
        ) from None


def _refused_key(status: int) -> str:
    return f"fal refused the API key (HTTP {status}). Check the FAL_KEY setting."


@dataclass(frozen=True)
class PreviewTrainer:
    """Pretends to train without fal (no key set): the job "runs" for `seconds` from the
    moment it was submitted, a moment kept in its request id so that it outlives the app."""

    store: MediaStore
    seconds: float = 20.0

    def upload(self, archive: bytes) -> str:
        try:
            return self.store.save(
                f"training/{uuid.uuid4().hex}.zip", archive, content_type="application/zip"
            )
        except OSError:
            raise TrainingFailed(
                "Could not save the training images: the media folder is not writable."
            ) from None

    def submit(self, *, images_url: str, trigger_word: str, steps: int, is_style: bool) -> str:
        return f"{PREVIEW_PREFIX}{time.time():.3f}-{uuid.uuid4().hex[:8]}"

    def state(self, request_id: str) -> TrainingState:
        elapsed = time.time() - _preview_started(request_id)
        if elapsed >= self.seconds:
            return TrainingState("completed", logs=("Preview training finished",))
        done = int(100 * elapsed / self.seconds)
        return TrainingState("running", logs=(f"Preview training: {done} % (no fal key set)",))

    def files(self, request_id: str) -> TrainedFiles:
        return TrainedFiles(weights_url=f"preview://weights/{request_id}.safetensors")


PREVIEW_PREFIX = "preview-"


def _preview_started(request_id: str) -> float:
    """When a preview job started; a job that is not a preview (e.g. one the original
    trainer app submitted to fal) is not the preview trainer's to judge."""
    try:
        if not request_id.startswith(PREVIEW_PREFIX):
            raise ValueError(request_id)
        return float(request_id.split("-")[1])
    except (IndexError, ValueError):
        raise TrainingFailed("Without a fal key, only preview trainings can be followed.") from None


def build_trainer(settings: Settings, store: MediaStore | None = None) -> Trainer:
    """fal when a key is set, else the offline preview trainer."""
    if (key := settings.fal_credentials) is not None:
        return FalTrainer(key=key)
    return PreviewTrainer(store or build_store(settings))
