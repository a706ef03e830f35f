"""What pages read of sweeps: a sweep's grid with each place's latest try (`sweep_view`)
and its places in reading order, each named (`reading_order`), the newest sweeps
(`recent`), and a stored sweep's axes and held settings."""

from __future__ import annotations

import json
from collections.abc import Iterator
from dataclasses import dataclass, replace

from sqlalchemy import select
from sqlmodel import Session, col

from lora_core.data import lookups
from lora_core.data.models import BatchStatus, GeneratedImage, GenerationBatch, Suite, Sweep
from lora_core.errors import InvalidSweep
from lora_core.generation import stacks
from lora_core.generation.recipe import NO_LORA, Recipe, StackedLora, batch_recipe, from_batch
from lora_core.lab.axes import NOTHING_STACKED, Axis, arm_of, loras_of


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
    suite_name: str | None = None  # a run of an evaluation suite
    beside: str | None = None  # the LoRA of another run shown beside this one
    stacked: str = ""  # what every cell stacks: "with wtrclr at 0.5" ("": nothing)

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
        """ "wtrclr · “a fox” · seed 7" (the seed only when no axis varies it); a suite's run:
        "Suite “Portraits” on wtrclr"."""
        stacked = f" · {self.stacked}" if self.stacked else ""
        if self.suite_name is not None:
            also = f", beside its run on {self.beside}" if self.beside else ""
            return f"Suite “{self.suite_name}” on {self.lora_name}{stacked}{also}"
        varied = {self.x.kind} | ({self.y.kind} if self.y is not None else set())
        seed = "" if "seed" in varied else f" · seed {self.sweep.seed}"
        return f"{self.lora_name} · “{self.sweep.prompt}”{stacked}{seed}"


def reading_order(view: SweepView) -> Iterator[str | tuple[str, CellView | None]]:
    """The grid as it reads: a row's label (a string) before each row of a second axis,
    then each place with its label ("scale 0.5 · seed 7") and its cell (None: no cell).
    Labels on one line; one that would show nothing (a LoRA named with spaces) is its
    place: "column 2", "row 1"."""
    for row, stored_row in enumerate(view.y_labels or ("",)):
        row_label = " ".join(stored_row.split()) or (f"row {row + 1}" if view.y_labels else "")
        if row_label:
            yield row_label
        for column, stored_column in enumerate(view.x_labels):
            column_label = " ".join(stored_column.split()) or f"column {column + 1}"
            label = " · ".join(part for part in (column_label, row_label) if part)
            yield label, view.cells.get((column, row))


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
    base_stack = stacks.from_text(sweep.stack)
    names = _names(
        session,
        [sweep.lora_training_id, *loras_of(x), *(loras_of(y) if y else ()),
         *(more.lora_id for more in base_stack)],
    )  # fmt: skip
    added = stacks.stacks_of(session, [batch.id for batch in latest.values()])
    return SweepView(
        sweep=sweep,
        lora_name=names.get(sweep.lora_training_id, "a LoRA no longer here"),
        x=x,
        y=y,
        x_labels=_labels(x, names),
        y_labels=_labels(y, names) if y is not None else (),
        cells={
            place: _cell_view(place, batch, images.get(batch.id), added.get(batch.id, ()))
            for place, batch in latest.items()
        },
        suite_name=_suite_name(session, sweep.suite_id),
        stacked=(
            "with " + " · ".join(
                f"{names.get(more.lora_id, 'a LoRA no longer here')} at {more.scale:g}"
                for more in base_stack
            )
            if base_stack else ""
        ),
    )  # fmt: skip


def _suite_name(session: Session, suite_id: str | None) -> str | None:
    """The name of the suite this sweep ran (one lookup, for suite runs only)."""
    if suite_id is None:
        return None
    suite = session.get(Suite, suite_id)
    return suite.name if suite is not None else "a suite no longer here"


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
    ).with_stack(stacks.from_text(sweep.stack))


def _names(session: Session, lora_ids: list[str]) -> dict[str, str]:
    names = {}
    for lora_id in set(lora_ids):
        lora = lookups.get_lora(session=session, lora_id=lora_id)
        if lora is not None:
            names[lora_id] = lora.name or lora.trigger_word
    return names


def _labels(axis: Axis, names: dict[str, str]) -> tuple[str, ...]:
    if axis.kind == "arm":
        return tuple(
            "no LoRA" if lora == NO_LORA
            else f"{names.get(lora, 'a LoRA no longer here')} · scale {scale:g}"
            for lora, scale in map(arm_of, axis.values)
        )  # fmt: skip
    if axis.kind == "stack":
        return tuple(
            NOTHING_STACKED if value == NO_LORA
            else "+ {} · {:g}".format(names.get(arm_of(value)[0], "a LoRA no longer here"),
                                      arm_of(value)[1])
            for value in axis.values
        )  # fmt: skip
    if axis.kind != "lora":
        return axis.labels
    return tuple(
        label if value == NO_LORA else names.get(value, "a LoRA no longer here")
        for value, label in zip(axis.values, axis.labels, strict=True)
    )


def _cell_view(
    place: tuple[int, int],
    batch: GenerationBatch,
    image: GeneratedImage | None,
    stack: tuple[StackedLora, ...] = (),
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
        ).with_stack(stack),
        image=image,
    )


def runs_of_suite(*, session: Session, suite_id: str, limit: int = 20) -> list[SweepSummary]:
    """The newest runs of a suite (to set one beside another)."""
    rows = list(
        session.scalars(
            select(Sweep)
            .where(col(Sweep.suite_id) == suite_id)
            .order_by(col(Sweep.created_at).desc())
            .limit(limit)
        )
    )
    names = _names(session, [row.lora_training_id for row in rows])
    return [
        SweepSummary(row, names.get(row.lora_training_id, "a LoRA no longer here")) for row in rows
    ]


def beside(first: SweepView, other: SweepView) -> SweepView:
    """Two runs of one suite as one grid: the first's columns, then the other's, on their
    shared rows (the same prompts and seeds), so a new training meets the previous one on
    identical cases. `InvalidSweep` when their rows differ."""
    if first.y is None or other.y is None or first.y.values != other.y.values:
        raise InvalidSweep("Those two runs do not share their prompts and seeds.")
    shift = len(first.x_labels)
    cells = dict(first.cells)
    for (x, y), cell in other.cells.items():
        cells[(x + shift, y)] = replace(cell, x=x + shift)
    return replace(
        first,
        x_labels=first.x_labels + other.x_labels,
        cells=cells,
        beside=other.lora_name,
    )
