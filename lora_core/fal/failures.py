"""What fal's failures mean, as our error types: a failed job's status, and an error answer
(to the submit, or on a failed job's result), by the kinds fal documents first
(`error_type`, a model error's `type`; `lora_core.fal.client.error_types`), then by status.
"""

from __future__ import annotations

import re

import fal_client

from lora_core.errors import (
    ContentRefused,
    GenerationFailed,
    GenerationTimeout,
    InvalidInput,
    WeightsUnavailable,
)
from lora_core.fal import client as fal

WEIGHTS = (
    "fal could not load this LoRA's weights: the weights URL may have expired or be unreachable."
)


def job_failure(error: str, error_type: str | None) -> GenerationFailed:
    """A job fal reports as failed in its status (`COMPLETED` with `error`/`error_type`),
    when its result's own typed answer cannot be had."""
    text = str(error)[:300]
    return _typed_failure({error_type} if error_type else set(), field=None, text=text) or (
        GenerationFailed(f"fal could not generate these images: {text}")
    )


def _typed_failure(kinds: set[str], *, field: str | None, text: str) -> GenerationFailed | None:
    """Our error for the kinds fal documents (`error_type`, a model error's `type`), or
    None for a kind that needs no words of its own."""
    if "file_download_error" in kinds and (field is None or field.startswith("loras")):
        return WeightsUnavailable(WEIGHTS, place=_lora_place(field))
    if "content_policy_violation" in kinds:
        return ContentRefused(
            "fal's content checker refused this request"
            + (f" ({field})" if field else "")
            + ". Change the prompt and try again."
        )
    if kinds & {"request_timeout", "startup_timeout"}:
        return GenerationTimeout(f"fal gave up on this job: {text}. Please try again.")
    if "client_cancelled" in kinds:
        return GenerationFailed("The job was cancelled on fal.")
    return None


def map_http_error(error: fal_client.client.FalClientHTTPError) -> GenerationFailed:
    """fal's error answer (to the submit, or on a failed job's result) as our error: by its
    documented kind first (`lora_core.fal.client.error_types`), then by its status."""
    status = error.status_code
    if status in (401, 403):
        return GenerationFailed(
            f"fal refused the API key (HTTP {status}). Check the FAL_KEY setting.",
            retryable=False,
        )
    items = fal.detail_items(error)
    first = items[0] if items else {}
    field = fal.field_name(first.get("loc"))
    typed = _typed_failure(fal.error_types(error), field=field, text=fal.error_detail(error))
    if typed is not None:
        return typed
    if status == 422:
        where = f" {field}:" if field else ""
        return InvalidInput(
            f"fal rejected the request:{where} {fal.error_detail(error)}", field=field
        )
    if status == 504:
        return GenerationTimeout("fal timed out while generating. Please try again.")
    reason = f": {fal.error_detail(error)}" if fal.answered_by_fal(error) else ""
    return GenerationFailed(
        f"fal could not generate images right now (HTTP {status}){reason}. Please try again."
    )


def _lora_place(field: str | None) -> int | None:
    """The LoRA a field names: `loras[1].path` is the second (1); None for no place."""
    found = re.match(r"loras\[(\d+)\]", field or "")
    return int(found.group(1)) if found else None
