"""fal's `fal-ai/flux-lora-fast-training` as a trainer: the archive uploaded through
`fal_client`, the job submitted at most once and asked about by request id (through
`lora_core.fal.client`), and fal's failures told apart from trouble reaching it.
"""

from __future__ import annotations

import contextlib
import logging
import tempfile
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Literal

import fal_client
import httpx

from lora_core.errors import TrainingFailed
from lora_core.fal import client as fal
from lora_core.training.trainers import TrainedFiles, TrainingState

logger = logging.getLogger(__name__)


TRAINING_APP = "fal-ai/flux-lora-fast-training"


# A page view asks fal about a training for at most this long; a submit may take longer.
STATE_SECONDS = 5.0


SUBMIT_SECONDS = 60.0


LOST_SUBMIT = (
    "fal may have received this training, but its answer was lost: fal may still run it. "
    "It is not in your LoRAs and no training was counted; check fal's dashboard before "
    "starting it again."
)


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

    def submit(
        self,
        *,
        images_url: str,
        trigger_word: str,
        steps: int,
        is_style: bool,
        on_request_id: Callable[[str], None] | None = None,
    ) -> str:
        arguments = training_arguments(
            images_url=images_url, trigger_word=trigger_word, steps=steps, is_style=is_style
        )
        with _fal_errors("start the training on"), fal.deadline(SUBMIT_SECONDS):
            request_id = fal.submit_once(self._client, TRAINING_APP, arguments).request_id
        if on_request_id is not None:
            on_request_id(request_id)
        return request_id

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
