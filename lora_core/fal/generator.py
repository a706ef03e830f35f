"""fal's `fal-ai/flux-lora` as an image generator: the real `fal_client` queue API (through
`lora_core.fal.client`), its answers read, and its failures turned into our error types.
"""

from __future__ import annotations

import contextlib
import logging
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import fal_client
import httpx

from lora_core.errors import GenerationFailed, GenerationTimeout, WeightsUnavailable
from lora_core.fal import client as fal
from lora_core.generation.generators import (
    IMAGES_PER_BATCH,
    GeneratedImageData,
    GenerationRequest,
    GenerationResult,
    Progress,
    ProgressCallback,
)
from lora_core.generation.recipe import PLAN, Recipe, fal_arguments

logger = logging.getLogger(__name__)


FLUX_LORA_APP = "fal-ai/flux-lora"


def flux_lora_arguments(
    *,
    full_prompt: str,
    weights_url: str | None,
    recipe: Recipe = PLAN,
    num_images: int = IMAGES_PER_BATCH,
) -> dict[str, Any]:
    """fal's arguments: the plan's (4 JPEGs, safety checker on) with the recipe's settings
    (by default the plan's: square HD, 28 steps, guidance 3.5, LoRA scale 1.5). Without
    weights, no LoRA at all: the base model (fal's `loras` defaults to none)."""
    return {
        "prompt": full_prompt,
        "loras": [] if weights_url is None else [{"path": weights_url, "scale": recipe.lora_scale}],
        **fal_arguments(recipe),
        "num_images": num_images,
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
    fal's reason; trouble at fal's gateway is ridden out within the time. (`generate` is
    long by one try whose every branch maps one kind of failure: kept together on purpose.)"""

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
                        full_prompt=request.full_prompt,
                        weights_url=request.weights_url,
                        recipe=request.recipe,
                        num_images=request.num_images,
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
