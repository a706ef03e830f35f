"""The generate use case: validate, reserve a slot, call the generator, store the batch.

On a failure before fal accepted the job, or on fal's own terminal answer that the job
failed, the batch is marked failed (freeing its slot) and no image row is written. A job
fal accepted and has not ended stays pending (holding its slot): the background sweep
follows it by request id and stores its images when fal answers (`recovery`).

One module because it is one path: everything a batch meets between the click and its
stored images (or its settled failure), read top to bottom in the order it happens.
"""

from __future__ import annotations

import contextlib
from collections.abc import Sequence
from dataclasses import dataclass, replace
from datetime import datetime

from sqlalchemy import Engine, update
from sqlmodel import col

from lora_core import storage, weights
from lora_core.data import leases, lookups
from lora_core.data.clock import to_iso, utc_now
from lora_core.data.db import session_scope
from lora_core.data.models import (
    BatchStatus,
    GeneratedImage,
    GenerationBatch,
    LoraStatus,
    LoraTraining,
)
from lora_core.errors import (
    DatabaseUnavailable,
    GenerationFailed,
    GenerationPending,
    LoraHasNoWeights,
    LoraNotFound,
    LoraNotReady,
    LoraStudioError,
    WeightsUnavailable,
)
from lora_core.generation import quota, recipe_files, stacks
from lora_core.generation.generators import (
    IMAGES_PER_BATCH,
    AddedWeights,
    GenerationRequest,
    GenerationResult,
    ImageGenerator,
    Progress,
    ProgressCallback,
)
from lora_core.generation.prompts import clean_prompt
from lora_core.generation.recipe import NO_LORA, PLAN, Recipe, batch_columns, checked
from lora_core.generation.storing import images_of_batch, store_batch


@dataclass(frozen=True)
class BatchOutcome:
    batch_id: str
    prompt: str
    images: list[GeneratedImage]
    """Every image fal returned, in its order: those its safety checker flagged too
    (`nsfw`: stored, never shown)."""
    asked: int = IMAGES_PER_BATCH

    @property
    def shown(self) -> list[GeneratedImage]:
        return [image for image in self.images if not image.nsfw]

    @property
    def flagged(self) -> int:
        """Images fal's safety checker flagged (`has_nsfw_concepts`; fal sends them black)."""
        return sum(1 for image in self.images if image.nsfw)

    @property
    def missing(self) -> int:
        """Images asked for that fal did not return at all (fal returns every image asked
        for, flagged ones black; fewer is an odd answer, counted as filtered too)."""
        return max(self.asked - len(self.images), 0)


@dataclass(frozen=True)
class GenerationKit:
    """What every generation is made with, besides what it is asked for: wired once
    (`lora_core.studio.build_studio`), handed to `generate` and to a sweep's `start` and
    `retry`. `store`: where fal's images are copied (their URLs expire); None keeps fal's.
    `allow_private_weights`: weights on a private network may be checked (tests, a
    deployment inside one: ALLOW_PRIVATE_WEIGHTS_URLS). `lease_terms`: how a batch's
    process holds it while it waits on fal (`lora_core.data.leases`)."""

    engine: Engine
    generator: ImageGenerator
    policy: quota.QuotaPolicy
    store: storage.MediaStore | None = None
    allow_private_weights: bool = False
    lease_terms: leases.LeaseTerms = leases.DEFAULT_TERMS
    max_stacked: int = 3  # LoRAs a generation may add to its first (MAX_STACKED_LORAS)


def check_ready(lora: LoraTraining) -> None:
    """Raise the reason images can't be generated from `lora`, if there is one."""
    if lora.status == LoraStatus.PENDING:
        raise LoraNotReady(
            "This LoRA is still training. You can generate images once training has completed.",
            status=lora.status,
        )
    if lora.status != LoraStatus.COMPLETED:
        raise LoraNotReady(
            f"This LoRA's training {lora.status}, so images can't be generated from it.",
            status=lora.status,
        )
    if not lora.lora_weights_url:
        raise LoraHasNoWeights("This LoRA has no weights file, so images can't be generated.")


def ready_lora(*, engine: Engine, lora_id: str) -> LoraTraining:
    """The LoRA if images can be generated from it, else a distinct error per reason."""
    with session_scope(engine) as session:
        lora = lookups.get_lora(session=session, lora_id=lora_id)
    if lora is None:
        raise LoraNotFound("LoRA not found")
    check_ready(lora)
    return lora


def weights_url_for(
    lora: LoraTraining, *, generator: ImageGenerator, allow_private_weights: bool
) -> str:
    """The weights URL the generator is given: one fal can download (fal's, or our public
    copy), checked before any slot is spent; WeightsUnavailable otherwise."""
    if generator.downloads_weights:
        return weights.url_for_fal(lora, allow_private_hosts=allow_private_weights)
    return lora.lora_weights_url or ""


def generate(
    *,
    kit: GenerationKit,
    user: str,
    lora_id: str,
    prompt: str | None,
    recipe: Recipe = PLAN,
    on_progress: ProgressCallback | None = None,
    now: datetime | None = None,
) -> BatchOutcome:
    """Generate 4 images from a LoRA for `user` and store them; see the module docstring.

    The batch's lease is held, renewed
    every few seconds, until it is stored or failed: were this process to die, another
    would finish the batch from fal once the lease lapsed (`recovery`). Failures are
    settled by `run_reserved`; `GenerationPending` (fal accepted the job and went quiet)
    carries the batch's id, so that a page can show its images when they arrive.
    """
    engine, generator, lease_terms = kit.engine, kit.generator, kit.lease_terms
    clean_prompt(prompt)  # checked before anything is spent; fal gets it trimmed
    recipe = checked(recipe)
    prompt = prompt or ""  # stored as typed
    lora = ready_lora(engine=engine, lora_id=lora_id)
    with session_scope(engine) as session:
        added = stacks.added_loras(session, first=lora, stack=recipe.stack, most=kit.max_stacked)
        full_prompt = stacks.prompt_for(session, prompt, [lora, *added])
    # Before a slot is spent: every LoRA ready, with weights fal can download (fal's, or
    # our public copy); in a stack, the message names the LoRA.
    with stacks.naming(lora, stacked=bool(added)):
        weights_url = weights_url_for(
            lora, generator=generator, allow_private_weights=kit.allow_private_weights
        )
    added_weights = []
    for more, stacked in zip(added, recipe.stack, strict=True):
        with stacks.naming(more, stacked=True):
            check_ready(more)
            url = weights_url_for(
                more, generator=generator, allow_private_weights=kit.allow_private_weights
            )
        added_weights.append(AddedWeights(url, stacked.scale, stacks.label(more)))
    lease = leases.Lease.new(lease_terms, now)
    batch_id = quota.reserve(
        engine=engine,
        policy=kit.policy,
        user=user,
        lora_id=lora.id,
        prompt=prompt,
        lease=lease,
        columns={**batch_columns(recipe), "full_prompt": full_prompt},
        stack=recipe.stack,
        now=now,
    )
    held = leases.hold(
        engine=engine,
        table=GenerationBatch,
        row_id=batch_id,
        holder=lease.holder,
        terms=lease_terms,
    )
    try:
        with held:
            images, _result = run_reserved(
                engine=engine,
                generator=generator,
                request=GenerationRequest(
                    batch_id=batch_id,
                    full_prompt=full_prompt,
                    weights_url=weights_url,
                    lora_label=lora.trigger_word,
                    recipe=recipe,
                    added=tuple(added_weights),
                ),
                lora=lora,
                added=added,
                user=user,
                prompt=prompt,
                store=kit.store,
                on_progress=on_progress,
            )
    except GenerationPending as error:
        error.batch_id = batch_id  # for whoever waits for its images to arrive
        raise
    return BatchOutcome(
        batch_id=batch_id,
        prompt=prompt,
        images=images,
        asked=IMAGES_PER_BATCH,
    )


def run_reserved(
    *,
    engine: Engine,
    generator: ImageGenerator,
    request: GenerationRequest,
    lora: LoraTraining | None,
    user: str,
    prompt: str,
    store: storage.MediaStore | None,
    on_progress: ProgressCallback | None = None,
    added: Sequence[LoraTraining] = (),
) -> tuple[list[GeneratedImage], GenerationResult]:
    """Generate a batch already reserved (its id in `request`) and store it, its recipe in
    each stored file; fal's request id is stored as soon as it is known. `lora` None: the
    base model alone. A failure is settled here before it propagates (`settle`): the batch
    fails and frees its slot, unless fal accepted the job and has not ended it. `added`:
    the LoRAs of `request.added`, in its order."""
    accepted: list[str] = []
    recorder = _recording_request_id(engine, request.batch_id, on_progress, accepted)
    try:
        result = _generate_with_weights_fallback(
            generator, request, [lora, *added], recorder, accepted
        )
        fields = recipe_files.fields_for(
            lora=lora,
            prompt=prompt,
            recipe=request.recipe,
            seed=result.seed,
            created_at=to_iso(utc_now()),
            full_prompt=request.full_prompt,
            added=added,
        )
        images = store_batch(
            engine=engine,
            batch_id=request.batch_id,
            lora_id=lora.id if lora is not None else NO_LORA,
            user=user,
            prompt=prompt,
            result_images=result.images,
            seed=result.seed,
            request_id=result.request_id,
            store=store,
            label=lambda data: recipe_files.embed(data, fields),
        )
    except BaseException as error:
        # Also on BaseException: Streamlit stops a run (the user closed the dialog, clicked
        # again, left the page) by raising one, and the batch must be settled then too.
        settle(engine, request.batch_id, error, accepted=bool(accepted))
        raise
    return images, result


def _generate_with_weights_fallback(
    generator: ImageGenerator,
    request: GenerationRequest,
    loras: Sequence[LoraTraining | None],
    recorder: ProgressCallback,
    accepted: list[str],
) -> GenerationResult:
    """The generator's result; when fal says it could not download the weights of one of
    `loras` (the request's, in fal's order; fal names its place in `loras`), once more
    with that LoRA's durable copy when fal can download it (the same batch and slot: fal
    bills no failed download twice, and the user clicked once). In a stack, the message
    names the LoRA whose weights failed."""
    try:
        return generator.generate(request, on_progress=recorder)
    except WeightsUnavailable as error:
        # What fal got, in its order: a baseline without weights sends only the added.
        sent = [
            (place, lora, url)
            for place, (lora, url) in enumerate(
                zip(
                    loras,
                    [request.weights_url, *(m.weights_url for m in request.added)],
                    strict=True,
                )
            )
            if lora is not None and url is not None
        ]
        if error.place is None and len(sent) > 1:  # fal did not say which: no guess
            names = ", ".join(stacks.label(lora) for _place, lora, _url in sent)
            raise WeightsUnavailable(
                f"fal could not load the weights of one of these LoRAs ({names}): a weights "
                "URL may have expired or be unreachable."
            ) from None
        spot = error.place or 0
        if spot >= len(sent):
            raise
        place, lora, failed = sent[spot]
        named = f"{stacks.label(lora)}: {error}" if len(sent) > 1 else str(error)
        fallback = (
            weights.fallback_for_fal(lora, failed_url=failed)
            if generator.downloads_weights
            else None
        )
        if fallback is None:
            raise WeightsUnavailable(named) from None
    accepted.clear()  # fal ended the first job: only the second one is followed now
    if place == 0:
        retried = replace(request, weights_url=fallback)
    else:
        added = list(request.added)
        added[place - 1] = replace(added[place - 1], weights_url=fallback)
        retried = replace(request, added=tuple(added))
    try:
        return generator.generate(retried, on_progress=recorder)
    except WeightsUnavailable as again:
        if len(sent) > 1:
            raise WeightsUnavailable(f"{stacks.label(lora)}: {again}") from None
        raise


def settle(engine: Engine, batch_id: str, error: BaseException, *, accepted: bool) -> None:
    """After a failure: a batch fal never accepted, or whose job fal itself ended (a
    `GenerationFailed`), is failed with the reason, freeing its slot. One fal accepted
    and has not ended (it stopped answering, our run was stopped, storing failed) stays
    pending: fal may run and bill it, so its lease is let go at once and the background
    sweep follows it by request id until fal answers (`recovery`)."""
    if accepted and not isinstance(error, GenerationFailed):
        with contextlib.suppress(DatabaseUnavailable):
            leases.let_go(engine=engine, table=GenerationBatch, row_id=batch_id)
        return
    reason = str(error) if isinstance(error, LoraStudioError) else type(error).__name__
    release_quietly(engine, batch_id, reason)


def _recording_request_id(
    engine: Engine,
    batch_id: str,
    on_progress: ProgressCallback | None,
    accepted: list[str],
) -> ProgressCallback:
    """Pass progress on, and store fal's request id on the batch as soon as it is known
    (`accepted` gets it too: from then on, fal may bill the job)."""

    def callback(progress: Progress) -> None:
        if progress.request_id:
            accepted.append(progress.request_id)
            with session_scope(engine) as session:
                session.execute(
                    update(GenerationBatch)
                    .where(col(GenerationBatch.id) == batch_id)
                    .values(fal_request_id=progress.request_id)
                )
                session.commit()
        if on_progress is not None:
            on_progress(progress)

    return callback


def release_quietly(engine: Engine, batch_id: str, reason: str) -> None:
    """Free the slot; if the database itself is down the original error matters more."""
    with contextlib.suppress(DatabaseUnavailable):
        quota.release(engine=engine, batch_id=batch_id, error=reason)


def batch_outcome(*, engine: Engine, batch_id: str) -> BatchOutcome | None:
    """A batch as its author waits for it: its outcome once stored, None while pending
    (fal has not answered yet), `GenerationFailed` with the stored reason once it failed."""
    with session_scope(engine) as session:
        batch = session.get(GenerationBatch, batch_id)
        if batch is None or batch.status == BatchStatus.PENDING:
            return None
        if batch.status == BatchStatus.FAILED:
            raise GenerationFailed(batch.error or "The generation failed.", retryable=False)
        images = images_of_batch(session, batch_id)
    return BatchOutcome(
        batch_id=batch_id,
        prompt=batch.prompt,
        images=images,
        asked=batch.num_images or IMAGES_PER_BATCH,
    )
