"""The few things that can go wrong for a user, each carrying what they need to know.

The UI maps these to messages in one place (`ui/errors.py`); anything else is a bug.
"""

from __future__ import annotations

from datetime import datetime, timedelta


class LoraStudioError(Exception):
    """Base class: `str(error)` is a message fit to show a user (never a secret)."""


class SettingsError(LoraStudioError):
    """A setting is missing or has an invalid value; the message names the setting."""


class NotSignedIn(LoraStudioError):
    """Generating needs a signed-in user (login is configured and nobody is signed in)."""


class InvalidPrompt(LoraStudioError):
    """The prompt is empty or too long."""


class InvalidSettings(LoraStudioError):
    """A generation setting (scale, seed, steps, guidance, size) is out of its range."""


class InvalidSweep(InvalidSettings):
    """An X/Y sweep's axis cannot be read, or the sweep has too many cells."""


class LoraNotFound(LoraStudioError):
    """No LoRA has this id (or the id is malformed)."""


class LoraNotReady(LoraStudioError):
    """The LoRA exists but is not completed (still training, or training failed)."""

    def __init__(self, message: str, *, status: str) -> None:
        super().__init__(message)
        self.status = status


class LoraHasNoWeights(LoraStudioError):
    """The LoRA is marked completed but has no weights URL to generate from."""


class QuotaExceeded(LoraStudioError):
    """The user has used every generation of the rolling window (or, for a sweep, more
    than are left: `needed` and `remaining` say so)."""

    def __init__(
        self,
        message: str,
        *,
        limit: int,
        window: timedelta,
        next_slot_at: datetime | None,
        needed: int = 1,
        remaining: int = 0,
    ) -> None:
        super().__init__(message)
        self.limit = limit
        self.window = window
        self.next_slot_at = next_slot_at
        self.needed = needed
        self.remaining = remaining


class GenerationFailed(LoraStudioError):
    """fal (or the preview generator) failed; nothing was stored and no slot was used."""

    retryable: bool = True

    def __init__(self, message: str, *, retryable: bool = True) -> None:
        super().__init__(message)
        self.retryable = retryable


class GenerationTimeout(GenerationFailed):
    """fal did not answer in time."""


class WeightsUnavailable(GenerationFailed):
    """fal could not download the LoRA weights (expired or unreachable URL). `place`: the
    LoRA's place in fal's `loras` list when fal named it (0: the first)."""

    def __init__(self, message: str, *, place: int | None = None) -> None:
        super().__init__(message, retryable=False)
        self.place = place


class ContentRefused(GenerationFailed):
    """fal's content checker refused the request (`content_policy_violation`): the same
    input would be refused again."""

    def __init__(self, message: str) -> None:
        super().__init__(message, retryable=False)


class InvalidInput(GenerationFailed):
    """fal's schema refused an argument (a 422 whose `detail[]` names the field, such as
    `loras[0].scale`)."""

    def __init__(self, message: str, *, field: str | None = None) -> None:
        super().__init__(message, retryable=False)
        self.field = field


class GenerationPending(LoraStudioError):
    """fal accepted the job but is not answering now (our wait ran out, fal's gateway or
    the network failed, an answer could not be read). The job may still run and be billed,
    so the batch stays pending: the background sweep follows it by its request id until fal
    gives a terminal answer. Nothing to try again: that would pay twice."""

    def __init__(
        self, message: str, *, request_id: str | None = None, batch_id: str | None = None
    ) -> None:
        super().__init__(message)
        self.request_id = request_id
        self.batch_id = batch_id


class TrainingQuotaExceeded(QuotaExceeded):
    """The user has started every training of the rolling window."""


class InvalidTrainingInput(LoraStudioError):
    """The training images, trigger word or steps cannot be used; nothing was spent."""


class TrainingFailed(LoraStudioError):
    """fal could not take or finish a training (or the preview trainer failed).

    `job_failed` says the job itself failed; otherwise fal could not be asked (network, key)
    and a running job may still finish. `unknown` says fal does not know the request id
    (a job it no longer keeps, or one submitted with another key)."""

    def __init__(self, message: str, *, job_failed: bool = False, unknown: bool = False) -> None:
        super().__init__(message)
        self.job_failed = job_failed
        self.unknown = unknown


class InvalidFile(LoraStudioError):
    """A dropped file cannot be read as asked: too big a file, or too large a picture."""


class InvalidRegistration(LoraStudioError):
    """An existing LoRA cannot be registered: its weights URL, trigger word or name."""


class NotAllowed(LoraStudioError):
    """This user may not do that (hide another user's image, say)."""


class DownloadFailed(LoraStudioError):
    """An image could not be read for a download (expired address, missing file)."""


class DatabaseUnavailable(LoraStudioError):
    """The database cannot be reached or used right now."""


class InvalidArena(LoraStudioError):
    """An arena cannot be made or voted in as asked: no name, no pair, an unknown pair."""
