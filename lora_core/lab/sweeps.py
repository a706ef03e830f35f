"""X/Y sweeps, run: started, run a few cells at a time, a failed cell tried again, read back.

A sweep (`models.Sweep`) keeps what was asked; each of its cells is a batch of one image
(`GenerationBatch.sweep_id`, `sweep_x`, `sweep_y`, `num_images = 1`), so a cell lives as
any batch does: reserved against the quota (a sweep's cells all or none, four to a slot:
`quota.reserve_cells`), fal's request id stored as soon as it is known, its lease held
while this process runs it, finished by `recovery` when this process dies.

Starting checks everything a cell needs (the LoRAs are ready, their weights reachable, the
prompts valid) before the quota is touched, writes the sweep and its cells in one
transaction, then hands the cells to the process's `CellPool`, which runs at most a few at
once (fal limits concurrent requests per account) and holds the cells' leases while they
wait. Pages read the grid back from the database (`lora_core.lab.views`), so leaving a page or
reloading it loses nothing; `lora_core.lab.pool` runs the cells.
"""

from __future__ import annotations

import json
import logging
import secrets
import uuid
from collections.abc import Collection
from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import Engine

from lora_core import storage
from lora_core.data import leases, lookups
from lora_core.data.clock import to_iso, utc_now
from lora_core.data.db import session_scope
from lora_core.data.models import BatchStatus, GenerationBatch, LoraTraining, Sweep
from lora_core.errors import InvalidSweep, LoraNotFound, LoraStudioError
from lora_core.generation import quota, service, stacks
from lora_core.generation.generators import AddedWeights, GenerationRequest, ImageGenerator
from lora_core.generation.prompts import clean_prompt
from lora_core.generation.recipe import NO_LORA, Recipe, batch_columns, batch_recipe
from lora_core.lab.axes import Axis, Cell, plan

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class CellJob:
    """Everything one cell's fal call needs, built before the quota is touched."""

    batch_id: str
    user: str
    prompt: str  # as the sweep made it (the prompt, or its S/R variant)
    lora: LoraTraining | None  # None: the base model alone
    request: GenerationRequest
    added: tuple[LoraTraining, ...] = ()  # the LoRAs stacked on it, in fal's order


def start(
    *,
    kit: service.GenerationKit,
    user: str,
    lora_id: str,
    prompt: str,
    base: Recipe,
    x: Axis,
    y: Axis | None = None,
    max_cells: int = 16,
    suite_id: str | None = None,
    now: datetime | None = None,
) -> tuple[str, str, list[CellJob]]:
    """Plan the sweep, check every cell, and write the sweep with its pending cells (all or
    none against the quota); (sweep id, lease holder, the cells' jobs) for `CellPool`.
    A `base` without a seed gets one at random, the same for every cell."""
    if base.seed is None:
        base = base.with_seed(secrets.randbelow(2**32))
    prompt = clean_prompt(prompt)
    cells = plan(prompt=prompt, lora_id=lora_id, base=base, x=x, y=y, max_cells=max_cells)
    own = [lora_id, *(cell.lora_id or NO_LORA for cell in cells)]
    stacked = [more.lora_id for cell in cells for more in cell.recipe.stack]
    loras = _ready_loras(kit.engine, own, stacked=stacked)
    main = loras[lora_id]
    urls = _weights_urls(
        loras, kit.generator, kit.allow_private_weights, stacked=set(stacked) - set(own)
    )
    prompts = [clean_prompt(cell.prompt) for cell in cells]  # S/R may empty or lengthen it
    wordings = _wordings(kit.engine, cells, prompts, loras, main)
    sweep_id = uuid.uuid4().hex
    now = now or utc_now()
    lease = leases.Lease.new(kit.lease_terms, now)
    ids = quota.reserve_cells(
        engine=kit.engine,
        policy=kit.policy,
        user=user,
        sweep_id=sweep_id,
        cells=[_cell_columns(cell, full) for cell, full in zip(cells, wordings, strict=True)],
        lease=lease,
        stacks=[cell.recipe.stack for cell in cells],
        also=[
            _sweep_row(
                sweep_id,
                user=user,
                lora_id=lora_id,
                prompt=prompt,
                base=base,
                x=x,
                y=y,
                now=now,
                suite_id=suite_id,
            )
        ],
        now=now,
    )
    jobs = [
        _job(
            batch_id,
            user=user,
            prompt=cell_prompt,
            lora=loras[cell.lora_id or NO_LORA],
            full_prompt=full,
            urls=urls,
            recipe=cell.recipe,
            added=[loras[more.lora_id] for more in cell.recipe.stack],
        )
        for batch_id, cell, cell_prompt, full in zip(ids, cells, prompts, wordings, strict=True)
    ]
    return sweep_id, lease.holder, jobs


def retry(
    *,
    kit: service.GenerationKit,
    user: str,
    batch_id: str,
    now: datetime | None = None,
) -> tuple[str, list[CellJob]]:
    """Try a failed cell again, as a new batch at its place (against the quota, counted
    with its sweep's cells); (lease holder, its job). Only the sweep's author may."""
    with session_scope(kit.engine) as session:
        failed = session.get(GenerationBatch, batch_id)
        sweep = session.get(Sweep, failed.sweep_id) if failed and failed.sweep_id else None
        if failed is None or sweep is None or sweep.user != user:
            raise InvalidSweep("Only a cell of one of your sweeps can be tried again.")
        if failed.status != BatchStatus.FAILED:
            raise InvalidSweep("This cell did not fail: there is nothing to try again.")
        main = lookups.get_lora(session=session, lora_id=sweep.lora_training_id)
        stack = stacks.stacks_of(session, [failed.id]).get(failed.id, ())
    recipe = batch_recipe(failed, seed=failed.requested_seed).with_stack(stack)
    cell = Cell(
        x=failed.sweep_x or 0,
        y=failed.sweep_y or 0,
        prompt=failed.prompt,
        lora_id=None if failed.lora_training_id == NO_LORA else failed.lora_training_id,
        recipe=recipe,
    )
    loras = _ready_loras(kit.engine, [cell.lora_id or NO_LORA], stacked=[m.lora_id for m in stack])
    urls = _weights_urls(
        loras, kit.generator, kit.allow_private_weights,
        stacked={m.lora_id for m in stack} - {cell.lora_id or NO_LORA},
    )  # fmt: skip
    [full] = _wordings(kit.engine, [cell], [clean_prompt(failed.prompt)], loras, main)
    lease = leases.Lease.new(kit.lease_terms, now)
    [new_id] = quota.reserve_cells(
        engine=kit.engine,
        policy=kit.policy,
        user=user,
        sweep_id=sweep.id,
        cells=[_cell_columns(cell, failed.full_prompt or full)],
        lease=lease,
        stacks=[stack],
        free_places=True,  # twice at once (two tabs, a double click): once
        now=now,
    )
    job = _job(
        new_id,
        user=user,
        prompt=clean_prompt(failed.prompt),
        lora=loras[cell.lora_id or NO_LORA],
        full_prompt=failed.full_prompt or full,
        urls=urls,
        recipe=recipe,
        added=[loras[more.lora_id] for more in stack],
    )
    return lease.holder, [job]


def run_cell(
    job: CellJob, *, engine: Engine, generator: ImageGenerator, store: storage.MediaStore | None
) -> None:
    """One cell's fal call and its image stored. A failure is settled by
    `service.run_reserved`: the cell fails with the reason people read (its share of the
    quota freed with it), or, when fal accepted it and went quiet, stays pending for the
    background sweep."""
    try:
        service.run_reserved(
            engine=engine,
            generator=generator,
            request=job.request,
            lora=job.lora,
            user=job.user,
            prompt=job.prompt,
            store=store,
            added=job.added,
        )
    except LoraStudioError as error:
        log.info("Sweep cell %s: %s", job.batch_id, error)
    except Exception:
        log.exception("Sweep cell %s failed", job.batch_id)


def _ready_loras(
    engine: Engine, lora_ids: list[str], *, stacked: Collection[str] = ()
) -> dict[str, LoraTraining | None]:
    """Each LoRA, ready to generate from (the reason it is not, else; a LoRA only
    `stacked` on the cells is named in it); NO_LORA maps to None."""
    found: dict[str, LoraTraining | None] = {NO_LORA: None}
    for wanted_id in sorted(set(lora_ids) - {NO_LORA}):
        try:
            found[wanted_id] = service.ready_lora(engine=engine, lora_id=wanted_id)
        except LoraNotFound:
            raise LoraNotFound("A LoRA of this sweep is not in LoRA Studio.") from None
    for wanted_id in sorted(set(stacked) - set(found)):
        with session_scope(engine) as session:
            lora = lookups.get_lora(session=session, lora_id=wanted_id)
        if lora is None:
            raise LoraNotFound("A LoRA stacked in this sweep is not in LoRA Studio.")
        with stacks.naming(lora, stacked=True):
            service.check_ready(lora)
        found[wanted_id] = lora
    return found


def _weights_urls(
    loras: dict[str, LoraTraining | None],
    generator: ImageGenerator,
    allow_private: bool,
    *,
    stacked: Collection[str] = (),
) -> dict[str, str]:
    """The weights URL fal is given for each LoRA (checked now, before the quota; a LoRA
    only `stacked` on the cells is named in what is wrong with its weights)."""
    urls = {}
    for lora_id, lora in loras.items():
        if lora is None:
            continue
        with stacks.naming(lora, stacked=lora_id in stacked):
            urls[lora_id] = service.weights_url_for(
                lora, generator=generator, allow_private_weights=allow_private
            )
    return urls


def _wordings(
    engine: Engine,
    cells: list[Cell],
    prompts: list[str],
    loras: dict[str, LoraTraining | None],
    main: LoraTraining | None,
) -> list[str]:
    """What fal gets for each cell (`stacks.prompt_for`): its LoRA's trigger word, then
    its stacked LoRAs'. A baseline cell (no LoRA) gets the same words as the sweep's LoRA,
    its trigger word included: only the weights differ."""
    with session_scope(engine) as session:
        return [
            stacks.prompt_for(
                session,
                prompt,
                [
                    words
                    for words in (
                        loras[cell.lora_id] if cell.lora_id else main,
                        *(loras[more.lora_id] for more in cell.recipe.stack),
                    )
                    if words is not None
                ],
            )
            for cell, prompt in zip(cells, prompts, strict=True)
        ]


def _job(
    batch_id: str,
    *,
    user: str,
    prompt: str,
    lora: LoraTraining | None,
    full_prompt: str,
    urls: dict[str, str],
    recipe: Recipe,
    added: list[LoraTraining | None],
) -> CellJob:
    """One cell's fal call (`lora` None: the baseline, the base model's weights only)."""
    stacked = tuple(more for more in added if more is not None)
    return CellJob(
        batch_id=batch_id,
        user=user,
        prompt=prompt,
        lora=lora,
        request=GenerationRequest(
            batch_id=batch_id,
            full_prompt=full_prompt,
            weights_url=urls[lora.id] if lora is not None else None,
            lora_label=lora.trigger_word if lora is not None else "no LoRA",
            recipe=recipe,
            num_images=1,
            added=tuple(
                AddedWeights(urls[more.id], spec.scale, stacks.label(more))
                for more, spec in zip(stacked, recipe.stack, strict=True)
            ),
        ),
        added=stacked,
    )


def _cell_columns(cell: Cell, full_prompt: str) -> dict[str, object]:
    """A cell's batch columns besides those every cell of the sweep shares."""
    return {
        "lora_training_id": cell.lora_id or NO_LORA,
        "prompt": cell.prompt,
        "full_prompt": full_prompt,
        **batch_columns(cell.recipe),
        "sweep_x": cell.x,
        "sweep_y": cell.y,
        "num_images": 1,
    }


def _sweep_row(
    sweep_id: str,
    *,
    user: str,
    lora_id: str,
    prompt: str,
    base: Recipe,
    x: Axis,
    y: Axis | None,
    now: datetime,
    suite_id: str | None = None,
) -> Sweep:
    return Sweep(
        id=sweep_id,
        user=user,
        lora_training_id=lora_id,
        prompt=prompt,
        x_kind=x.kind,
        x_values=json.dumps(list(x.values)),
        y_kind=y.kind if y is not None else None,
        y_values=json.dumps(list(y.values)) if y is not None else None,
        lora_scale=base.lora_scale,
        num_inference_steps=base.steps,
        guidance_scale=base.guidance,
        image_size=base.image_size,
        seed=str(base.seed),
        created_at=to_iso(now),  # its cells' time: one clock for the sweep
        suite_id=suite_id,
        stack=stacks.as_text(base.stack) or None,
    )
