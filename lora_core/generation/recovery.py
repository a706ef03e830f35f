"""Following the batches nobody waits on (a wait that ran out while fal was quiet, a run
that was stopped, a process that died) from fal's answer for the stored request id: each
finished exactly once (taken over by one conditional UPDATE once its lease lapsed,
`lora_core.data.leases`), or failed with its slot freed when fal ended it (the job failed,
or fal no longer knows it), when it never reached fal, or when fal has given no answer at
all for `follow_for`.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import Engine, literal, select
from sqlmodel import col

from lora_core import storage
from lora_core.data import leases, lookups
from lora_core.data.clock import parse_iso, to_iso, utc_now
from lora_core.data.db import session_scope
from lora_core.data.models import BatchStatus, GenerationBatch, Sweep
from lora_core.errors import GenerationFailed
from lora_core.generation import quota, recipe_files, stacks
from lora_core.generation.generators import ImageGenerator
from lora_core.generation.recipe import batch_recipe
from lora_core.generation.storing import store_batch

# A job fal still runs (or cannot be asked about now) is asked about again after this long.
ASK_AGAIN_AFTER = timedelta(seconds=3)
GAVE_UP = "fal gave no answer about this job for too long; LoRA Studio stopped asking."


@dataclass(frozen=True)
class ResumeReport:
    finished: int = 0
    failed: int = 0
    waiting: int = 0


def resume_pending(
    *,
    engine: Engine,
    generator: ImageGenerator,
    store: storage.MediaStore | None,
    terms: leases.LeaseTerms,
    unleased_older_than: timedelta,
    follow_for: timedelta,
    lora_id: str | None = None,
    sweep_id: str | None = None,
    now: datetime | None = None,
) -> ResumeReport:
    """Finish batches left `pending` after fal accepted their job, nobody waiting on them.

    Only batches whose lease lapsed are touched (a batch an earlier version wrote without
    a lease: once older than `unleased_older_than`, longer than any live wait on fal);
    only those of `lora_id` or `sweep_id`, when given. Each is finished from fal's result
    for its request id (images stored exactly once), or marked failed (freeing its slot)
    when fal ended it, it never reached fal, or fal has not answered about it for
    `follow_for`. A job fal still runs, or that fal cannot be asked about now, is left
    for later: its lease, ours now, lapses again and the next sweep asks fal again.
    """
    now = now or utc_now()
    unleased_before = now - unleased_older_than
    outcomes = [
        _resume_one(
            engine,
            generator,
            store,
            batch,
            terms=terms,
            unleased_before=unleased_before,
            now=now,
            follow_for=follow_for,
        )
        for batch in _lapsed(
            engine, unleased_before=unleased_before, lora_id=lora_id, sweep_id=sweep_id, now=now
        )
    ]
    return ResumeReport(
        finished=outcomes.count("finished"),
        failed=outcomes.count("failed"),
        waiting=outcomes.count("waiting"),
    )


def _lapsed(
    engine: Engine,
    *,
    unleased_before: datetime,
    lora_id: str | None,
    sweep_id: str | None,
    now: datetime,
) -> list[GenerationBatch]:
    with session_scope(engine) as session:
        query = select(GenerationBatch).where(
            # Inline, not a bound parameter: so SQLite can use the partial pending index.
            col(GenerationBatch.status) == literal(BatchStatus.PENDING.value, literal_execute=True),
            leases.lapsed(GenerationBatch, now=now, unleased_before=unleased_before),
        )
        if lora_id is not None:
            query = query.where(col(GenerationBatch.lora_training_id) == lora_id)
        if sweep_id is not None:
            query = query.where(col(GenerationBatch.sweep_id) == sweep_id)
        return list(session.scalars(query))


def _resume_one(
    engine: Engine,
    generator: ImageGenerator,
    store: storage.MediaStore | None,
    batch: GenerationBatch,
    *,
    terms: leases.LeaseTerms,
    unleased_before: datetime,
    now: datetime,
    follow_for: timedelta,
) -> str | None:
    """Finish one batch whose lease lapsed: "finished", "failed", "waiting" (fal still runs
    it), or None when another process took it over first."""
    lease = leases.claim(
        engine=engine,
        table=GenerationBatch,
        row_id=batch.id,
        status=BatchStatus.PENDING,
        terms=terms,
        unleased_before=unleased_before,
        now=now,
    )
    if lease is None:
        return None
    with leases.hold(
        engine=engine,
        table=GenerationBatch,
        row_id=batch.id,
        holder=lease.holder,
        terms=terms,
    ):
        try:
            if batch.fal_request_id is None:
                raise GenerationFailed("Interrupted before fal accepted the job.")
            result = generator.resume(batch.fal_request_id)
            if result is None and parse_iso(batch.created_at) < now - follow_for:
                generator.cancel(batch.fal_request_id)
                raise GenerationFailed(GAVE_UP)
        except GenerationFailed as error:
            quota.release(engine=engine, batch_id=batch.id, error=str(error), now=now)
            return "failed"
        if result is None:
            # Asked again soon by whichever process sweeps first (not only once the
            # lease's full term has run): fal may finish any moment.
            leases.let_go(
                engine=engine,
                table=GenerationBatch,
                row_id=batch.id,
                holder=lease.holder,
                until=now + ASK_AGAIN_AFTER,
            )
            return "waiting"
        fields = _recipe_fields(engine, batch, seed=result.seed)
        store_batch(
            engine=engine,
            batch_id=batch.id,
            lora_id=batch.lora_training_id,
            user=batch.user,
            prompt=batch.prompt,
            result_images=result.images,
            seed=result.seed,
            request_id=batch.fal_request_id,
            store=store,
            label=lambda data: recipe_files.embed(data, fields),
        )
    return "finished"


def _recipe_fields(engine: Engine, batch: GenerationBatch, *, seed: str | None) -> dict[str, Any]:
    """The recipe written into the files of a batch finished here, as the process that
    started it would have written it: from the batch's row (the prompt fal got, kept on
    it; on an older row, its LoRA's trigger word, or for a sweep's baseline cell the
    sweep's LoRA's), its LoRA and the LoRAs added to it."""
    with session_scope(engine) as session:
        lora = lookups.get_lora(session=session, lora_id=batch.lora_training_id)
        sweep = session.get(Sweep, batch.sweep_id) if batch.sweep_id else None
        wording = lora or (
            lookups.get_lora(session=session, lora_id=sweep.lora_training_id) if sweep else None
        )
        stack = stacks.stacks_of(session, [batch.id]).get(batch.id, ())
        added = [lookups.get_lora(session=session, lora_id=more.lora_id) for more in stack]
    return recipe_files.fields_for(
        lora=lora,
        prompt=batch.prompt,
        recipe=batch_recipe(batch, seed=batch.requested_seed).with_stack(stack),
        seed=seed,
        created_at=to_iso(utc_now()),
        full_prompt=stacks.stored_full_prompt(batch, wording.trigger_word if wording else None),
        added=[more for more in added if more is not None],
    )
