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
wait. Pages read the grid back from the database (`sweep_view`), so leaving a page or
reloading it loses nothing.
"""

from __future__ import annotations

import json
import logging
import secrets
import threading
import uuid
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor, wait
from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import Engine, select
from sqlmodel import Session, col

from lora_core import storage
from lora_core.data import leases, lookups
from lora_core.data.clock import to_iso, utc_now
from lora_core.data.db import session_scope
from lora_core.data.models import BatchStatus, GeneratedImage, GenerationBatch, LoraTraining, Sweep
from lora_core.errors import InvalidSweep, LoraNotFound, LoraStudioError
from lora_core.generation import quota, service
from lora_core.generation.generators import GenerationRequest, ImageGenerator
from lora_core.generation.prompts import clean_prompt, full_prompt
from lora_core.generation.recipe import NO_LORA, Recipe, batch_columns, batch_recipe, from_batch
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


@dataclass(frozen=True)
class CellView:
    """One cell as the grid shows it: its latest try."""

    x: int
    y: int
    batch_id: str
    status: BatchStatus
    error: str | None
    prompt: str
    lora_id: str  # NO_LORA: the base model alone
    recipe: Recipe  # its seed: the one fal used once it succeeded
    image: GeneratedImage | None


@dataclass(frozen=True)
class SweepView:
    sweep: Sweep
    lora_name: str
    x: Axis
    y: Axis | None
    x_labels: tuple[str, ...]
    y_labels: tuple[str, ...]
    cells: dict[tuple[int, int], CellView]

    @property
    def size(self) -> int:
        return len(self.x_labels) * max(len(self.y_labels), 1)

    def count(self, status: BatchStatus) -> int:
        return sum(1 for cell in self.cells.values() if cell.status == status)

    @property
    def running(self) -> bool:
        return self.count(BatchStatus.PENDING) > 0

    @property
    def title(self) -> str:
        """ "wtrclr · “a fox” · seed 7" (the seed only when no axis varies it)."""
        varied = {self.x.kind} | ({self.y.kind} if self.y is not None else set())
        seed = "" if "seed" in varied else f" · seed {self.sweep.seed}"
        return f"{self.lora_name} · “{self.sweep.prompt}”{seed}"


class CellPool:
    """This process's sweep cells, at most `workers` fal calls at once, in the background:
    a page that starts a sweep returns at once and reads the grid back as cells finish."""

    def __init__(self, *, workers: int) -> None:
        self._pool = ThreadPoolExecutor(max_workers=workers, thread_name_prefix="sweep-cell")

    def launch(
        self,
        jobs: list[Callable[[], None]],
        *,
        engine: Engine,
        holder: str,
        terms: leases.LeaseTerms,
    ) -> threading.Event:
        """Queue `jobs`, and hold the leases of every row `holder` holds (the cells, queued
        or running) until the last one ends; the event is set then."""
        futures = [self._pool.submit(job) for job in jobs]
        done = threading.Event()

        def hold_while_running() -> None:
            try:
                with leases.hold(
                    engine=engine, table=GenerationBatch, row_id=None, holder=holder, terms=terms
                ):
                    wait(futures)
            finally:
                done.set()

        threading.Thread(target=hold_while_running, name=f"sweep-{holder}", daemon=True).start()
        return done

    def close(self) -> None:
        """Stop taking cells; queued ones are left pending, for recovery to settle."""
        self._pool.shutdown(wait=False, cancel_futures=True)


def start(
    *,
    engine: Engine,
    generator: ImageGenerator,
    policy: quota.QuotaPolicy,
    user: str,
    lora_id: str,
    prompt: str,
    base: Recipe,
    x: Axis,
    y: Axis | None = None,
    max_cells: int = 16,
    allow_private_weights: bool = False,
    lease_terms: leases.LeaseTerms = leases.DEFAULT_TERMS,
    now: datetime | None = None,
) -> tuple[str, str, list[CellJob]]:
    """Plan the sweep, check every cell, and write the sweep with its pending cells (all or
    none against the quota); (sweep id, lease holder, the cells' jobs) for `CellPool`.
    A `base` without a seed gets one at random, the same for every cell."""
    if base.seed is None:
        base = base.with_seed(secrets.randbelow(2**32))
    text = clean_prompt(prompt)
    cells = plan(prompt=text, lora_id=lora_id, base=base, x=x, y=y, max_cells=max_cells)
    loras = _ready_loras(engine, [lora_id, *(cell.lora_id or NO_LORA for cell in cells)])
    main = loras[lora_id]
    urls = _weights_urls(loras, generator, allow_private_weights)
    prompts = [clean_prompt(cell.prompt) for cell in cells]  # S/R may empty or lengthen it
    sweep_id = uuid.uuid4().hex
    now = now or utc_now()
    lease = leases.Lease.new(lease_terms, now)
    ids = quota.reserve_cells(
        engine=engine,
        policy=policy,
        user=user,
        sweep_id=sweep_id,
        cells=[_cell_columns(cell) for cell in cells],
        lease=lease,
        also=_sweep_row(
            sweep_id, user=user, lora_id=lora_id, prompt=text, base=base, x=x, y=y, now=now
        ),
        now=now,
    )
    jobs = [
        _job(
            batch_id,
            user=user,
            prompt=cell_prompt,
            lora=loras[cell.lora_id or NO_LORA],
            wording=main,
            urls=urls,
            recipe=cell.recipe,
        )
        for batch_id, cell, cell_prompt in zip(ids, cells, prompts, strict=True)
    ]
    return sweep_id, lease.holder, jobs


def retry(
    *,
    engine: Engine,
    generator: ImageGenerator,
    policy: quota.QuotaPolicy,
    user: str,
    batch_id: str,
    allow_private_weights: bool = False,
    lease_terms: leases.LeaseTerms = leases.DEFAULT_TERMS,
    now: datetime | None = None,
) -> tuple[str, list[CellJob]]:
    """Try a failed cell again, as a new batch at its place (against the quota, counted
    with its sweep's cells); (lease holder, its job). Only the sweep's author may."""
    with session_scope(engine) as session:
        failed = session.get(GenerationBatch, batch_id)
        sweep = session.get(Sweep, failed.sweep_id) if failed and failed.sweep_id else None
        if failed is None or sweep is None or sweep.wallet_address != user:
            raise InvalidSweep("Only a cell of one of your sweeps can be tried again.")
        if failed.status != BatchStatus.FAILED:
            raise InvalidSweep("This cell did not fail: there is nothing to try again.")
        main = lookups.get_lora(session=session, lora_id=sweep.lora_training_id)
    recipe = batch_recipe(failed, seed=failed.requested_seed)
    cell = Cell(
        x=failed.sweep_x or 0,
        y=failed.sweep_y or 0,
        prompt=failed.prompt,
        lora_id=None if failed.lora_training_id == NO_LORA else failed.lora_training_id,
        recipe=recipe,
    )
    loras = _ready_loras(engine, [cell.lora_id or NO_LORA])
    urls = _weights_urls(loras, generator, allow_private_weights)
    lease = leases.Lease.new(lease_terms, now)
    [new_id] = quota.reserve_cells(
        engine=engine,
        policy=policy,
        user=user,
        sweep_id=sweep.id,
        cells=[_cell_columns(cell)],
        lease=lease,
        free_places=True,  # twice at once (two tabs, a double click): once
        now=now,
    )
    job = _job(
        new_id,
        user=user,
        prompt=clean_prompt(failed.prompt),
        lora=loras[cell.lora_id or NO_LORA],
        wording=main,
        urls=urls,
        recipe=recipe,
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
        )
    except LoraStudioError as error:
        log.info("Sweep cell %s: %s", job.batch_id, error)
    except Exception:
        log.exception("Sweep cell %s failed", job.batch_id)


def sweep_view(*, session: Session, sweep_id: str) -> SweepView | None:
    """The sweep with its cells (each place's latest try, its image once it has one);
    None for an id that names no sweep."""
    if not lookups.is_valid_lora_id(sweep_id):  # the same shape: 32 hex digits
        return None
    sweep = session.get(Sweep, sweep_id)
    if sweep is None:
        return None
    batches = list(
        session.scalars(
            select(GenerationBatch)
            .where(col(GenerationBatch.sweep_id) == sweep_id)
            .order_by(col(GenerationBatch.created_at), col(GenerationBatch.id))
        )
    )
    latest = {(batch.sweep_x or 0, batch.sweep_y or 0): batch for batch in batches}
    images = {
        image.batch_id: image
        for image in session.scalars(
            select(GeneratedImage).where(
                col(GeneratedImage.batch_id).in_([batch.id for batch in latest.values()])
            )
        )
    }
    x, y = axes_of(sweep)
    names = _names(session, [sweep.lora_training_id, *x.values, *(y.values if y else ())])
    return SweepView(
        sweep=sweep,
        lora_name=names.get(sweep.lora_training_id, "a LoRA no longer here"),
        x=x,
        y=y,
        x_labels=_labels(x, names),
        y_labels=_labels(y, names) if y is not None else (),
        cells={
            place: _cell_view(place, batch, images.get(batch.id)) for place, batch in latest.items()
        },
    )


@dataclass(frozen=True)
class SweepSummary:
    sweep: Sweep
    lora_name: str


def recent(*, session: Session, limit: int = 5) -> list[SweepSummary]:
    """The newest sweeps, everyone's, for the Lab's list (their links open each grid)."""
    rows = list(session.scalars(select(Sweep).order_by(col(Sweep.created_at).desc()).limit(limit)))
    names = _names(session, [row.lora_training_id for row in rows])
    return [
        SweepSummary(row, names.get(row.lora_training_id, "a LoRA no longer here")) for row in rows
    ]


def axes_of(sweep: Sweep) -> tuple[Axis, Axis | None]:
    x = Axis(sweep.x_kind, tuple(json.loads(sweep.x_values)))  # type: ignore[arg-type]
    if sweep.y_kind is None or sweep.y_values is None:
        return x, None
    return x, Axis(sweep.y_kind, tuple(json.loads(sweep.y_values)))  # type: ignore[arg-type]


def base_recipe(sweep: Sweep) -> Recipe:
    return from_batch(
        lora_scale=sweep.lora_scale,
        steps=sweep.num_inference_steps,
        guidance=sweep.guidance_scale,
        image_size=sweep.image_size,
        seed=sweep.seed,
    )


def _ready_loras(engine: Engine, lora_ids: list[str]) -> dict[str, LoraTraining | None]:
    """Each LoRA, ready to generate from (the reason it is not, else); NO_LORA maps to
    None."""
    found: dict[str, LoraTraining | None] = {NO_LORA: None}
    for wanted_id in sorted(set(lora_ids) - {NO_LORA}):
        try:
            found[wanted_id] = service.ready_lora(engine=engine, lora_id=wanted_id)
        except LoraNotFound:
            raise LoraNotFound("A LoRA of this sweep is not in LoRA Studio.") from None
    return found


def _weights_urls(
    loras: dict[str, LoraTraining | None], generator: ImageGenerator, allow_private: bool
) -> dict[str, str]:
    """The weights URL fal is given for each LoRA (checked now, before the quota)."""
    return {
        lora_id: service.weights_url_for(
            lora, generator=generator, allow_private_weights=allow_private
        )
        for lora_id, lora in loras.items()
        if lora is not None
    }


def _job(
    batch_id: str,
    *,
    user: str,
    prompt: str,
    lora: LoraTraining | None,
    wording: LoraTraining | None,
    urls: dict[str, str],
    recipe: Recipe,
) -> CellJob:
    """One cell's fal call: `lora` None is the baseline, which gets the same words (the
    sweep's LoRA's trigger word, `wording`, included): only the weights differ."""
    words = lora or wording
    return CellJob(
        batch_id=batch_id,
        user=user,
        prompt=prompt,
        lora=lora,
        request=GenerationRequest(
            batch_id=batch_id,
            full_prompt=full_prompt(prompt, words.trigger_word) if words else prompt,
            weights_url=urls[lora.id] if lora is not None else None,
            lora_label=lora.trigger_word if lora is not None else "no LoRA",
            recipe=recipe,
            num_images=1,
        ),
    )


def _cell_columns(cell: Cell) -> dict[str, object]:
    """A cell's batch columns besides those every cell of the sweep shares."""
    return {
        "lora_training_id": cell.lora_id or NO_LORA,
        "prompt": cell.prompt,
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
) -> Sweep:
    return Sweep(
        id=sweep_id,
        wallet_address=user,
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
    )


def _names(session: Session, lora_ids: list[str]) -> dict[str, str]:
    names = {}
    for lora_id in set(lora_ids):
        lora = lookups.get_lora(session=session, lora_id=lora_id)
        if lora is not None:
            names[lora_id] = lora.name or lora.trigger_word
    return names


def _labels(axis: Axis, names: dict[str, str]) -> tuple[str, ...]:
    if axis.kind != "lora":
        return axis.labels
    return tuple(
        label if value == NO_LORA else names.get(value, "a LoRA no longer here")
        for value, label in zip(axis.values, axis.labels, strict=True)
    )


def _cell_view(
    place: tuple[int, int], batch: GenerationBatch, image: GeneratedImage | None
) -> CellView:
    return CellView(
        x=place[0],
        y=place[1],
        batch_id=batch.id,
        status=BatchStatus(batch.status),
        error=batch.error,
        prompt=batch.prompt,
        lora_id=batch.lora_training_id,
        recipe=batch_recipe(
            batch, seed=image.seed if image is not None and image.seed else batch.requested_seed
        ),
        image=image,
    )
