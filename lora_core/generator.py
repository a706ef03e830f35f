"""Image generators behind one interface: fal's `fal-ai/flux-lora`, or an offline preview.

`FalGenerator` goes through the real `fal_client` queue API and turns its failures into
our own error types. `PreviewGenerator` draws deterministic placeholder JPEGs locally so
the app is fully usable (demos, tests) without a fal key.
"""

from __future__ import annotations

import contextlib
import hashlib
import io
import textwrap
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, Literal, Protocol

import fal_client
import httpx
from PIL import Image, ImageDraw, ImageFont, ImageOps

from lora_core.errors import GenerationFailed, GenerationTimeout, WeightsUnavailable
from lora_core.settings import Settings
from lora_core.storage import MediaStore, build_store

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


class _DeadlinePassed(Exception):
    pass


@dataclass
class FalGenerator:
    key: str = field(repr=False)
    timeout_seconds: float = 180
    # fal_client's own default. fal's answer is only seen at the next poll: 0.25 s put the
    # app's overhead at 7 % of a 2-second generation, 0.1 s at under 5 %
    # (benchmarks/generation.py).
    poll_interval: float = 0.1
    _client: fal_client.SyncClient = field(init=False, repr=False)

    def __post_init__(self) -> None:
        self._client = fal_client.SyncClient(key=self.key)

    def generate(
        self, request: GenerationRequest, on_progress: ProgressCallback | None = None
    ) -> GenerationResult:
        report = on_progress or (lambda _progress: None)
        request_ids: list[str] = []
        deadline = time.monotonic() + self.timeout_seconds

        def on_enqueue(request_id: str) -> None:
            request_ids.append(request_id)
            report(Progress("submitted", request_id=request_id))

        def on_queue_update(status: fal_client.Status) -> None:
            # Runs on this thread (no client_timeout executor), so the UI can render it.
            report(_progress_from(status))
            if time.monotonic() > deadline:
                raise _DeadlinePassed

        try:
            result = self._client.subscribe(
                FLUX_LORA_APP,
                arguments=flux_lora_arguments(
                    full_prompt=request.full_prompt, weights_url=request.weights_url
                ),
                with_logs=True,
                interval=self.poll_interval,
                on_enqueue=on_enqueue,
                on_queue_update=on_queue_update,
            )
        except _DeadlinePassed:
            self._cancel(request_ids)
            raise GenerationTimeout(
                f"fal did not finish within {self.timeout_seconds:.0f} seconds. Please try again."
            ) from None
        except fal_client.FalClientTimeoutError:
            raise GenerationTimeout("fal did not answer in time. Please try again.") from None
        except fal_client.client.FalClientHTTPError as error:
            raise _map_http_error(error) from None
        except httpx.HTTPError:
            raise GenerationFailed(
                "Could not reach fal. Check the connection and try again."
            ) from None
        except (fal_client.client.FalClientError, ValueError, KeyError):
            # fal_client's own failures on an answer it cannot read (unknown status, no JSON).
            self._cancel(request_ids)
            raise GenerationFailed(
                "fal sent an answer we could not read. Please try again."
            ) from None
        except BaseException:
            # The run was stopped (e.g. the user closed the dialog): don't leave a paid job.
            self._cancel(request_ids)
            raise
        report(Progress("completed"))
        return parse_flux_result(result, request_id=request_ids[-1] if request_ids else None)

    def resume(self, request_id: str) -> GenerationResult | None:
        try:
            status = self._client.status(FLUX_LORA_APP, request_id)
            if not isinstance(status, fal_client.Completed):
                return None
            result = self._client.result(FLUX_LORA_APP, request_id)
        except fal_client.client.FalClientHTTPError as error:
            raise _map_http_error(error) from None
        except (httpx.HTTPError, fal_client.client.FalClientError, ValueError, KeyError):
            raise GenerationFailed("Could not read this job's result from fal.") from None
        return parse_flux_result(result, request_id=request_id)

    def cancel(self, request_id: str) -> None:
        self._cancel([request_id])

    def _cancel(self, request_ids: list[str]) -> None:
        if not request_ids:
            return
        # Best effort: a job cancelled before it runs is not billed.
        with contextlib.suppress(fal_client.client.FalClientError, httpx.HTTPError):
            self._client.cancel(FLUX_LORA_APP, request_ids[-1])


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


def _detail_items(error: fal_client.client.FalClientHTTPError) -> list[dict[str, Any]]:
    detail = error.message
    if isinstance(detail, list):
        return [item for item in detail if isinstance(item, dict)]
    return []


def fal_error_detail(error: fal_client.client.FalClientHTTPError) -> str:
    items = _detail_items(error)
    if items:
        return "; ".join(str(item.get("msg", "")) for item in items if item.get("msg"))
    return str(error.message)[:300]


def _is_about_weights(error: fal_client.client.FalClientHTTPError) -> bool:
    if error.error_type == "file_download_error":
        return True
    for item in _detail_items(error):
        if item.get("type") == "file_download_error" or "loras" in map(str, item.get("loc", [])):
            return True
    text = fal_error_detail(error).lower()
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
            f"fal rejected the request: {fal_error_detail(error)}", retryable=False
        )
    if status == 504 or error.error_type == "request_timeout":
        return GenerationTimeout("fal timed out while generating. Please try again.")
    return GenerationFailed(
        f"fal could not generate images right now (HTTP {status}). Please try again."
    )


@dataclass(frozen=True)
class PreviewGenerator:
    """Draws 4 deterministic placeholder JPEGs (prompt, seed, LoRA) without calling fal."""

    store: MediaStore
    size: int = 1024

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
    if settings.fal_key is not None:
        return FalGenerator(
            key=settings.fal_key.get_secret_value(), timeout_seconds=settings.fal_timeout_seconds
        )
    return PreviewGenerator(store or build_store(settings))
