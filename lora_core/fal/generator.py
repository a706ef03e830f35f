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

from lora_core.errors import (
    GenerationFailed,
    GenerationPending,
    GenerationTimeout,
)
from lora_core.fal import client as fal
from lora_core.fal.failures import job_failure, map_http_error
from lora_core.generation.generators import (
    IMAGES_PER_BATCH,
    AddedWeights,
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
    added: tuple[AddedWeights, ...] = (),
) -> dict[str, Any]:
    """fal's arguments: the plan's (4 JPEGs, safety checker on) with the recipe's settings
    (by default the plan's: square HD, 28 steps, guidance 3.5, LoRA scale 1.5). Without
    weights, no LoRA at all: the base model (fal's `loras` defaults to none). LoRAs
    `added` follow the first in fal's `loras` list, which fal merges."""
    first = [] if weights_url is None else [{"path": weights_url, "scale": recipe.lora_scale}]
    return {
        "prompt": full_prompt,
        "loras": first + [{"path": more.weights_url, "scale": more.scale} for more in added],
        **fal_arguments(recipe),
        "num_images": num_images,
        "enable_safety_checker": True,
        "output_format": "jpeg",
    }


# How long a page view or the background sweep waits for fal's answer about a job it is
# following: best effort, never a stuck page; the sweep asks again at its next beat.
RESUME_SECONDS = 5.0


CANCEL_SECONDS = 2.0


LOST_SUBMIT = (
    "fal may have received this request, but its answer was lost, so LoRA Studio cannot "
    "follow it: fal may still run it, and its images will not appear here. Nothing was "
    "stored and this generation was not counted."
)
NOT_ANSWERING = (
    "fal accepted this generation but is not answering right now. Your images will appear "
    "here (and on the LoRA's page) when it does; nothing needs to be done, and trying "
    "again would pay twice."
)
FORGOTTEN = "fal no longer knows this job (it keeps requests for a limited time)."


# No answer from fal about a job it accepted (our time ran out, the network or its gateway
# failed, fal_client could not read what came back): ask again later, never a verdict.
NO_ANSWER = (
    fal.DeadlinePassed,
    httpx.HTTPError,
    fal_client.client.FalClientError,
    ValueError,
    KeyError,
)


@dataclass
class FalGenerator:
    """Generates through fal's queue (`fal-ai/flux-lora`). Its submit is sent at most once
    (`lora_core.fal.client`); once fal accepted a job, only fal's own terminal answer ends
    it (its result, or its failure with fal's reason and kind). When fal does not answer
    within `timeout_seconds` in all (a slow queue, an outage, an answer we cannot read),
    `GenerationPending` says so and the job is left running, to be followed by request
    id (`resume`) by whoever sweeps for it."""

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
        with fal.deadline(self.timeout_seconds):
            handle = self._submit(request)
            report(Progress("submitted", request_id=handle.request_id))
            try:
                result = self._result(handle, self._wait(handle, report))
            except GenerationFailed:
                raise
            except fal_client.client.FalClientHTTPError as error:  # fal's, on a status poll
                if fal.not_found(error):
                    raise GenerationFailed(FORGOTTEN) from None
                raise self._pending(request, handle, f"HTTP {error.status_code}") from None
            except NO_ANSWER as error:
                raise self._pending(request, handle, type(error).__name__) from None
        report(Progress("completed"))
        return result

    def _submit(self, request: GenerationRequest) -> fal_client.SyncRequestHandle:
        """Send the job, once; fal's refusal or the lost answer as our errors."""
        try:
            return fal.submit_once(
                self._client,
                FLUX_LORA_APP,
                flux_lora_arguments(
                    full_prompt=request.full_prompt,
                    weights_url=request.weights_url,
                    recipe=request.recipe,
                    num_images=request.num_images,
                    added=request.added,
                ),
                # fal's own bound on the queue wait (a job still queued then ends with
                # `request_timeout`, unbilled); it accepts only more than a second.
                start_timeout=self.timeout_seconds if self.timeout_seconds > 1 else None,
            )
        except fal.SubmitOutcomeUnknown as error:
            logger.warning(
                "batch %s: fal's answer to the submit was lost (%s); not resubmitted",
                request.batch_id,
                error.cause,
            )
            raise GenerationFailed(LOST_SUBMIT, retryable=False) from None
        except fal_client.client.FalClientHTTPError as error:
            raise map_http_error(error) from None
        except fal.DeadlinePassed:
            raise GenerationTimeout(
                f"fal did not take the request within {self.timeout_seconds:.0f} seconds. "
                "Nothing was sent; please try again."
            ) from None
        except httpx.HTTPError:
            raise GenerationFailed(
                "Could not reach fal. Check the connection and try again."
            ) from None

    def _pending(
        self, request: GenerationRequest, handle: fal_client.SyncRequestHandle, why: str
    ) -> GenerationPending:
        logger.warning(
            "batch %s: fal is not answering about request %s (%s); left to the sweep",
            request.batch_id,
            handle.request_id,
            why,
        )
        return GenerationPending(NOT_ANSWERING, request_id=handle.request_id)

    def _wait(
        self, handle: fal_client.SyncRequestHandle, report: ProgressCallback
    ) -> fal_client.Completed:
        """Poll until fal says the job is done (its `Completed`, an error in it or not)."""
        while True:
            status = self._patiently(lambda: handle.status(with_logs=True))
            if isinstance(status, fal_client.Completed):
                return status
            report(_progress_from(status))
            time.sleep(self.poll_interval)

    def _result(
        self, handle: fal_client.SyncRequestHandle, status: fal_client.Completed
    ) -> GenerationResult:
        """fal's answer for a job it says is done: the images, or the job's failure as fal
        reports it. A failed job's result endpoint answers its typed error (a model error's
        `detail[]`, a request error's `error_type`): that answer is read first, and the
        status's own `error`/`error_type` is the reason when it cannot be had. Any answer
        fal itself gives on the result endpoint is terminal (fal's CLI reads it so)."""
        try:
            result = self._patiently(lambda: handle.get(interval=self.poll_interval))
        except fal_client.client.FalClientHTTPError as error:
            if fal.not_found(error):
                raise GenerationFailed(FORGOTTEN) from None
            raise map_http_error(error) from None
        except (fal.DeadlinePassed, httpx.HTTPError):
            if status.error:
                raise job_failure(status.error, status.error_type) from None
            raise
        except (fal_client.client.FalClientError, ValueError, KeyError):
            raise GenerationFailed("fal sent a result we could not read.") from None
        return parse_flux_result(result, request_id=handle.request_id)

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
        """fal's result for a job it accepted earlier (a wait that ran out, a dead process);
        None while it runs or while fal cannot be asked (ask again later); GenerationFailed
        on fal's own terminal answer: the job failed, or fal no longer knows it."""
        handle = self._client.get_handle(FLUX_LORA_APP, request_id)
        try:
            with fal.deadline(RESUME_SECONDS):
                status = handle.status(with_logs=False)
                if not isinstance(status, fal_client.Completed):
                    return None
                return self._result(handle, status)
        except fal_client.client.FalClientHTTPError as error:  # fal's, on the status
            if fal.not_found(error):
                raise GenerationFailed(FORGOTTEN) from None
            return None
        except NO_ANSWER:
            return None

    def cancel(self, request_id: str) -> None:
        """Best effort, and briefly: a job cancelled before it runs is not billed."""
        with (
            contextlib.suppress(
                fal_client.client.FalClientError, httpx.HTTPError, fal.DeadlinePassed
            ),
            fal.deadline(CANCEL_SECONDS),
        ):
            self._client.cancel(FLUX_LORA_APP, request_id)


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
