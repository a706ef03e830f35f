"""Image generators behind one interface: fal's `fal-ai/flux-lora`, or an offline preview.

`FalGenerator` goes through the real `fal_client` queue API and turns its failures into
our own error types. `PreviewGenerator` draws deterministic placeholder JPEGs locally so
the app is fully usable (demos, tests) without a fal key.
"""

from __future__ import annotations

import contextlib
import hashlib
import io
import logging
import textwrap
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, Literal, Protocol

import fal_client
import httpx
from PIL import Image, ImageDraw, ImageFont, ImageOps

from lora_core.errors import GenerationFailed, GenerationTimeout, WeightsUnavailable
from lora_core.fal import client as fal
from lora_core.settings import Settings
from lora_core.storage import MediaStore, build_store

logger = logging.getLogger(__name__)

FLUX_LORA_APP = "fal-ai/flux-lora"
IMAGES_PER_BATCH = 4


@dataclass(frozen=True)
class GenerationRequest:
    batch_id: str
    full_prompt: str
    weights_url: str
    lora_label: str


@dataclass(frozen=True)
class GeneratedImageData:
    url: str
    width: int | None
    height: int | None
    nsfw: bool = False


@dataclass(frozen=True)
class GenerationResult:
    images: list[GeneratedImageData]
    seed: str | None
    request_id: str | None


@dataclass(frozen=True)
class Progress:
    stage: Literal["submitted", "queued", "running", "completed"]
    queue_position: int | None = None
    message: str | None = None
    request_id: str | None = None


ProgressCallback = Callable[[Progress], None]


class ImageGenerator(Protocol):
    # Whether the LoRA's weights URL must be one the generator can download (fal does).
    downloads_weights: bool

    def generate(
        self, request: GenerationRequest, on_progress: ProgressCallback | None = None
    ) -> GenerationResult: ...

    def resume(self, request_id: str) -> GenerationResult | None:
        """The result of a job submitted earlier (by a process that died), None while it
        still runs; raises GenerationFailed when fal says it failed or is unknown."""
        ...

    def cancel(self, request_id: str) -> None: ...


def flux_lora_arguments(*, full_prompt: str, weights_url: str) -> dict[str, Any]:
    """The fixed fal arguments of the original plan."""
    return {
        "prompt": full_prompt,
        "loras": [{"path": weights_url, "scale": 1.5}],
        "image_size": "square_hd",
        "num_inference_steps": 28,
        "guidance_scale": 3.5,
        "num_images": IMAGES_PER_BATCH,
        "enable_safety_checker": True,
        "output_format": "jpeg",
    }


# How long a page view may wait for fal's answer about a job it is finishing (recovery), and
# the part of a generation's time kept for cancelling it: best effort, never a stuck page.
RESUME_SECONDS = 5.0
CANCEL_SECONDS = 2.0
LOST_SUBMIT = (
    "fal may have received this request, but its answer was lost, so LoRA Studio cannot "
    "follow it: fal may still run it, and its images will not appear here. Nothing was "
    "stored and this generation was not counted."
)


@dataclass
class FalGenerator:
    """Generates through fal's queue (`fal-ai/flux-lora`). A generation never waits longer
    than `timeout_seconds` in all (submit, polls, the result and a cancel), its submit is
    sent at most once (`lora_core.fal.client`), and a job fal reports as failed is a failure with
    fal's reason; trouble at fal's gateway is ridden out within the time."""

    key: str = field(repr=False)
    timeout_seconds: float = 180
    downloads_weights: bool = field(default=True, init=False)
    # fal_client's own default. fal's answer is only seen at the next poll: 0.25 s put the
    # app's overhead at 7 % of a 2-second generation, 0.1 s at under 5 %
    # (benchmarks/generation.py).
    poll_interval: float = 0.1
    _client: fal_client.SyncClient = field(init=False, repr=False)

    def __post_init__(self) -> None:
        self._client = fal.GuardedClient(key=self.key, default_timeout=self.timeout_seconds)

    def generate(
        self, request: GenerationRequest, on_progress: ProgressCallback | None = None
    ) -> GenerationResult:
        report = on_progress or (lambda _progress: None)
        started = time.monotonic()
        cancel_time = min(CANCEL_SECONDS, self.timeout_seconds / 10)
        handle: fal_client.SyncRequestHandle | None = None
        try:
            with fal.deadline(self.timeout_seconds - cancel_time):
                handle = fal.submit_once(
                    self._client,
                    FLUX_LORA_APP,
                    flux_lora_arguments(
                        full_prompt=request.full_prompt, weights_url=request.weights_url
                    ),
                    # fal's own bound on the queue wait; it accepts only more than a second.
                    start_timeout=self.timeout_seconds if self.timeout_seconds > 1 else None,
                )
                report(Progress("submitted", request_id=handle.request_id))
                self._wait(handle, report)
                result = self._patiently(lambda: handle.get(interval=self.poll_interval))
        except GenerationFailed:
            raise
        except fal.SubmitOutcomeUnknown as error:
            logger.warning(
                "batch %s: fal's answer to the submit was lost (%s); not resubmitted",
                request.batch_id,
                error.cause,
            )
            raise GenerationFailed(LOST_SUBMIT, retryable=False) from None
        except fal.DeadlinePassed:
            self._cancel(handle, until=started + self.timeout_seconds)
            raise GenerationTimeout(
                f"fal did not finish within {self.timeout_seconds:.0f} seconds. Please try again."
            ) from None
        except fal_client.client.FalClientHTTPError as error:
            self._cancel(handle, until=started + self.timeout_seconds)
            raise _map_http_error(error) from None
        except httpx.HTTPError:
            self._cancel(handle, until=started + self.timeout_seconds)
            raise GenerationFailed(
                "Could not reach fal. Check the connection and try again."
            ) from None
        except (fal_client.client.FalClientError, ValueError, KeyError):
            # fal_client's own failures on an answer it cannot read (unknown status, no JSON).
            self._cancel(handle, until=started + self.timeout_seconds)
            raise GenerationFailed(
                "fal sent an answer we could not read. Please try again."
            ) from None
        except BaseException:
            # The run was stopped (e.g. the user closed the dialog): don't leave a paid job.
            self._cancel(handle, until=time.monotonic() + CANCEL_SECONDS)
            raise
        report(Progress("completed"))
        return parse_flux_result(result, request_id=handle.request_id)

    def _wait(self, handle: fal_client.SyncRequestHandle, report: ProgressCallback) -> None:
        """Poll until fal says the job is done; a job fal failed raises its failure."""
        while True:
            status = self._patiently(lambda: handle.status(with_logs=True))
            if isinstance(status, fal_client.Completed):
                if status.error:
                    raise job_failure(status.error, status.error_type)
                return
            report(_progress_from(status))
            time.sleep(self.poll_interval)

    def _patiently(self, ask: Callable[[], Any]) -> Any:
        """Ask fal until fal itself answers: its gateway's errors and rate limits (which
        fal_client gives up on after a few tries, or never retries) are asked past until
        the deadline, which raises `DeadlinePassed`."""
        while True:
            try:
                return ask()
            except fal_client.client.FalClientHTTPError as error:
                if fal.answered_by_fal(error):
                    raise
                time.sleep(self.poll_interval)

    def resume(self, request_id: str) -> GenerationResult | None:
        """fal's result for a job a dead process left; None while it runs or while fal
        cannot be asked (ask again later); GenerationFailed when fal says it failed, or no
        longer knows it."""
        try:
            with fal.deadline(RESUME_SECONDS):
                status = self._client.status(FLUX_LORA_APP, request_id)
                if not isinstance(status, fal_client.Completed):
                    return None
                if status.error:
                    raise job_failure(status.error, status.error_type)
                result = self._client.result(FLUX_LORA_APP, request_id)
        except fal_client.client.FalClientHTTPError as error:
            if fal.not_found(error):
                raise GenerationFailed(
                    "fal no longer knows this job (it keeps requests for a limited time)."
                ) from None
            if fal.answered_by_fal(error):
                raise _map_http_error(error) from None
            return None
        except (fal.DeadlinePassed, httpx.HTTPError):
            return None
        except (fal_client.client.FalClientError, ValueError, KeyError):
            raise GenerationFailed("fal sent an answer we could not read.") from None
        return parse_flux_result(result, request_id=request_id)

    def cancel(self, request_id: str) -> None:
        self._cancel_id(request_id, seconds=CANCEL_SECONDS)

    def _cancel(self, handle: fal_client.SyncRequestHandle | None, *, until: float) -> None:
        if handle is not None:
            self._cancel_id(handle.request_id, seconds=until - time.monotonic())

    def _cancel_id(self, request_id: str, *, seconds: float) -> None:
        # Best effort, and briefly: a job cancelled before it runs is not billed.
        if seconds <= 0:
            return
        with (
            contextlib.suppress(
                fal_client.client.FalClientError, httpx.HTTPError, fal.DeadlinePassed
            ),
            fal.deadline(seconds),
        ):
            self._client.cancel(FLUX_LORA_APP, request_id)


def job_failure(error: str, error_type: str | None) -> GenerationFailed:
    """A job fal ran and reports as failed (`COMPLETED` with an error), as our error."""
    text = str(error)[:300]
    if error_type == "request_timeout":
        return GenerationTimeout(f"fal gave up on this job: {text}. Please try again.")
    if error_type == "client_cancelled":
        return GenerationFailed("The job was cancelled on fal.")
    lowered = text.lower()
    if "lora" in lowered and any(word in lowered for word in ("download", "weights", "fetch")):
        return WeightsUnavailable(
            "fal could not load this LoRA's weights: the weights URL may have expired or be "
            "unreachable."
        )
    return GenerationFailed(f"fal could not generate these images: {text}")


def _progress_from(status: fal_client.Status) -> Progress:
    if isinstance(status, fal_client.Queued):
        return Progress("queued", queue_position=status.position)
    if isinstance(status, fal_client.InProgress):
        logs = status.logs or []
        last = logs[-1].get("message") if logs and isinstance(logs[-1], dict) else None
        return Progress("running", message=last)
    return Progress("completed")


def parse_flux_result(result: Any, *, request_id: str | None) -> GenerationResult:
    """Our view of fal's flux-lora output; a malformed answer is a failed generation."""
    try:
        raw_images = result["images"]
        flags = result.get("has_nsfw_concepts") or []
        images = [
            GeneratedImageData(
                url=str(image["url"]),
                width=image.get("width"),
                height=image.get("height"),
                nsfw=bool(flags[index]) if index < len(flags) else False,
            )
            for index, image in enumerate(raw_images)
        ]
    except (KeyError, TypeError, AttributeError):
        raise GenerationFailed("fal returned an unexpected response. Please try again.") from None
    seed = result.get("seed")
    return GenerationResult(
        images=images, seed=None if seed is None else str(seed), request_id=request_id
    )


def _is_about_weights(error: fal_client.client.FalClientHTTPError) -> bool:
    if error.error_type == "file_download_error":
        return True
    for item in fal.detail_items(error):
        if item.get("type") == "file_download_error" or "loras" in map(str, item.get("loc", [])):
            return True
    text = fal.error_detail(error).lower()
    return "lora" in text and any(word in text for word in ("download", "weights", "fetch"))


def _map_http_error(error: fal_client.client.FalClientHTTPError) -> GenerationFailed:
    status = error.status_code
    if status in (401, 403):
        return GenerationFailed(
            f"fal refused the API key (HTTP {status}). Check the FAL_KEY setting.",
            retryable=False,
        )
    if _is_about_weights(error):
        return WeightsUnavailable(
            "fal could not load this LoRA's weights: the weights URL may have expired or be "
            "unreachable."
        )
    if status == 422:
        return GenerationFailed(
            f"fal rejected the request: {fal.error_detail(error)}", retryable=False
        )
    if status == 504 or error.error_type == "request_timeout":
        return GenerationTimeout("fal timed out while generating. Please try again.")
    reason = f": {fal.error_detail(error)}" if fal.answered_by_fal(error) else ""
    return GenerationFailed(
        f"fal could not generate images right now (HTTP {status}){reason}. Please try again."
    )


@dataclass(frozen=True)
class PreviewGenerator:
    """Draws 4 deterministic placeholder JPEGs (prompt, seed, LoRA) without calling fal."""

    store: MediaStore
    size: int = 1024
    downloads_weights: bool = field(default=False, init=False)

    def generate(
        self, request: GenerationRequest, on_progress: ProgressCallback | None = None
    ) -> GenerationResult:
        report = on_progress or (lambda _progress: None)
        digest = hashlib.sha256(f"{request.full_prompt}|{request.weights_url}".encode()).digest()
        seed = int.from_bytes(digest[:6], "big")
        images = []
        for index in range(IMAGES_PER_BATCH):
            report(
                Progress("running", message=f"Drawing preview {index + 1} of {IMAGES_PER_BATCH}")
            )
            data = self._draw(request, seed=seed, index=index)
            try:
                url = self.store.save(f"preview/{request.batch_id}/{index}.jpg", data)
            except OSError:
                raise GenerationFailed(
                    "Could not save the preview images: the media folder is not writable."
                ) from None
            images.append(GeneratedImageData(url=url, width=self.size, height=self.size))
        report(Progress("completed"))
        return GenerationResult(images=images, seed=str(seed), request_id=None)

    def resume(self, request_id: str) -> GenerationResult | None:
        raise GenerationFailed("A preview that was interrupted cannot be resumed.", retryable=True)

    def cancel(self, request_id: str) -> None:
        """Nothing runs elsewhere for a preview."""

    def _draw(self, request: GenerationRequest, *, seed: int, index: int) -> bytes:
        shade = hashlib.sha256(f"{seed}:{index}".encode()).digest()
        dark = (shade[0] // 3, shade[1] // 3, shade[2] // 3)
        light = (128 + shade[3] // 2, 128 + shade[4] // 2, 128 + shade[5] // 2)
        gradient = Image.linear_gradient("L").rotate(90 * index)
        image = ImageOps.colorize(gradient.resize((self.size, self.size)), dark, light)
        draw = ImageDraw.Draw(image)
        big = ImageFont.load_default(size=self.size // 12)
        small = ImageFont.load_default(size=self.size // 28)
        margin = self.size // 16
        draw.text((margin, margin), "PREVIEW", font=big, fill="white")
        body = textwrap.fill(request.full_prompt, width=40, max_lines=8, placeholder=" …")
        draw.multiline_text(
            (margin, self.size // 4), body, font=small, fill="white", spacing=self.size // 80
        )
        footer = f"LoRA: {request.lora_label}\nseed {seed} · image {index + 1}/{IMAGES_PER_BATCH}"
        draw.multiline_text((margin, self.size - self.size // 5), footer, font=small, fill="white")
        buffer = io.BytesIO()
        image.save(buffer, format="JPEG", quality=85)
        return buffer.getvalue()


def build_generator(settings: Settings, store: MediaStore | None = None) -> ImageGenerator:
    """fal when a key is set, else the offline preview generator drawing into `store`
    (by default the store the settings choose)."""
    if (key := settings.fal_credentials) is not None:
        return FalGenerator(key=key, timeout_seconds=settings.fal_timeout_seconds)
    return PreviewGenerator(store or build_store(settings))
