"""Evaluation suites: the same test for every LoRA, a named and shared list of prompts and
seeds with the settings every run uses.

A prompt may say `{trigger}` where a LoRA's trigger word goes; without it the plan's rule
applies ("… in the style of <trigger word>", `generation.prompts.with_trigger`). A run of a
suite is a sweep (`lora_core.lab.sweeps`): its LoRAs (and, if asked, the base model as a
baseline) across (with a second scale, each LoRA at both: the `arm` axis), each prompt
with each seed down (the `case` axis), so it has the sweeps'
quota (all or nothing), recovery, retries, grid, contact sheet and zip, and its images pair
in a blind arena (`lora_core.arena`). Anyone signed in may run or copy a suite; its author
and admins may change it.
"""

from __future__ import annotations

import json
import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import Engine, exists, insert, select, update
from sqlmodel import Session, col

from lora_core.data.clock import to_iso, utc_now
from lora_core.data.db import session_scope
from lora_core.data.models import LoraStatus, LoraTraining, RequestId, Suite, SuiteAutoRun
from lora_core.errors import InvalidSweep, NotAllowed
from lora_core.generation.prompts import MAX_PROMPT_LENGTH
from lora_core.generation.recipe import NO_LORA, SCALE_RANGE, Recipe, StackedLora, checked
from lora_core.identity import Identity
from lora_core.lab.axes import Axis, arm_value, case_value, lora_axis, seed_axis

MAX_PROMPTS = 12
MAX_SEEDS = 8
MAX_NAME_LENGTH = 80
MAX_CELLS = 64  # a run: prompts × seeds × arms


@dataclass(frozen=True)
class SuiteSpec:
    """A suite as it is read: its prompts, seeds and settings (the seed of `recipe` unset)."""

    prompts: tuple[str, ...]
    seeds: tuple[int, ...]
    recipe: Recipe

    @property
    def cases(self) -> int:
        return len(self.prompts) * len(self.seeds)


def spec_of(suite: Suite) -> SuiteSpec:
    return SuiteSpec(
        prompts=tuple(json.loads(suite.prompts)),
        seeds=tuple(int(seed) for seed in json.loads(suite.seeds)),
        recipe=Recipe(
            lora_scale=suite.lora_scale,
            steps=suite.num_inference_steps,
            guidance=suite.guidance_scale,
            image_size=suite.image_size,
        ),
    )


def parse(*, prompts_text: str, seeds_text: str, recipe: Recipe) -> SuiteSpec:
    """Prompts one per line (blank lines skipped), seeds as a list or range; `InvalidSweep`
    saying what is wrong."""
    prompts = [line.strip() for line in (prompts_text or "").splitlines() if line.strip()]
    if not prompts:
        raise InvalidSweep("Write at least one prompt, one per line.")
    if len(prompts) > MAX_PROMPTS:
        raise InvalidSweep(
            f"A suite has at most {MAX_PROMPTS} prompts; this one has {len(prompts)}."
        )
    if long := [number for number, p in enumerate(prompts, 1) if len(p) > MAX_PROMPT_LENGTH]:
        raise InvalidSweep(f"Prompt {long[0]} is longer than {MAX_PROMPT_LENGTH} characters.")
    seeds = [int(seed) for seed in seed_axis(seeds_text or "").values]
    if len(seeds) > MAX_SEEDS:
        raise InvalidSweep(f"A suite has at most {MAX_SEEDS} seeds; this one has {len(seeds)}.")
    cases = len(dict.fromkeys(prompts)) * len(seeds)
    if cases * 2 > MAX_CELLS:  # a run takes a LoRA and the baseline at least
        raise InvalidSweep(
            f"{cases} prompts × seeds are too many for a run of a LoRA and the baseline "
            f"(at most {MAX_CELLS // 2}): use fewer prompts or seeds."
        )
    return SuiteSpec(tuple(dict.fromkeys(prompts)), tuple(seeds), checked(recipe.with_seed(None)))


def save(
    *,
    engine: Engine,
    who: Identity,
    name: str,
    spec: SuiteSpec,
    suite_id: str | None = None,
    auto_run: bool = False,
    now: datetime | None = None,
) -> str:
    """Create a suite (no `suite_id`) or change one (its author or an admin); its id. With
    `auto_run`, it runs on every LoRA whose training starts from now on (`due_auto_runs`)."""
    if who.user is None:
        raise NotAllowed("Sign in to make or change a suite.")
    name = (name or "").strip()
    if not name or len(name) > MAX_NAME_LENGTH:
        raise InvalidSweep(f"Give the suite a name of at most {MAX_NAME_LENGTH} characters.")
    moment = to_iso(now or utc_now())
    values = {
        "name": name,
        "prompts": json.dumps(list(spec.prompts), ensure_ascii=False),
        "seeds": json.dumps([str(seed) for seed in spec.seeds]),
        "lora_scale": spec.recipe.lora_scale,
        "num_inference_steps": spec.recipe.steps,
        "guidance_scale": spec.recipe.guidance,
        "image_size": spec.recipe.image_size,
        "updated_at": moment,
    }
    with session_scope(engine) as session:
        if suite_id is None:
            suite_id = uuid.uuid4().hex
            since = moment if auto_run else None
            session.add(
                Suite(id=suite_id, user=who.user, created_at=moment, auto_run_since=since, **values)
            )
        else:
            suite = session.get(Suite, suite_id)
            if suite is None:
                raise InvalidSweep("That suite no longer exists.")
            if not (who.is_admin or suite.user == who.user):
                raise NotAllowed("Only its author or an admin can change this suite; copy it.")
            for column, value in values.items():
                setattr(suite, column, value)
            if not auto_run:
                suite.auto_run_since = None
            elif suite.auto_run_since is None:  # from now on, not every LoRA there is
                suite.auto_run_since = moment
        session.commit()
    return suite_id


def copy(*, engine: Engine, who: Identity, suite_id: str, now: datetime | None = None) -> str:
    """A copy of a suite, the user's own to change ("Copy of …"); its id."""
    with session_scope(engine) as session:
        suite = session.get(Suite, suite_id)
        if suite is None:
            raise InvalidSweep("That suite no longer exists.")
        name, spec = suite.name, spec_of(suite)
    return save(
        engine=engine, who=who, name=f"Copy of {name}"[:MAX_NAME_LENGTH], spec=spec, now=now
    )


def list_suites(*, session: Session) -> list[Suite]:
    """Every suite, newest first (they are shared)."""
    return list(session.scalars(select(Suite).order_by(col(Suite.created_at).desc())))


def get_suite(*, session: Session, suite_id: str | None) -> Suite | None:
    if not suite_id or len(suite_id) > 64:
        return None
    return session.get(Suite, suite_id)


@dataclass(frozen=True)
class RunPlan:
    """A run of a suite as a sweep: the LoRA whose trigger word the baseline's prompts use,
    the first prompt (the sweep's title), the settings, and the two axes."""

    lora_id: str
    prompt: str
    base: Recipe
    x: Axis
    y: Axis

    @property
    def cells(self) -> int:
        return len(self.x.values) * len(self.y.values)


def run_plan(
    spec: SuiteSpec,
    *,
    lora_ids: Sequence[str],
    baseline: bool,
    second_scale: float | None = None,
    stacked: StackedLora | None = None,
) -> RunPlan:
    """The sweep that runs `spec` on these LoRAs (and the base model, with `baseline`); with
    `second_scale`, each LoRA at the suite's scale and at that one (an `arm` axis); with
    `stacked`, that LoRA stacked on every cell (the baseline too: the base model with it)."""
    loras = [lora for lora in dict.fromkeys(lora_ids) if lora != NO_LORA]
    if not loras:
        raise InvalidSweep("Pick at least one LoRA to run the suite on.")
    if stacked is not None and stacked.lora_id in loras:
        raise InvalidSweep("A LoRA cannot be stacked on itself: take it out of “Run on”.")
    cases = Axis("case", tuple(case_value(p, seed) for p in spec.prompts for seed in spec.seeds))
    arms = lora_axis([*loras, *([NO_LORA] if baseline else [])])
    if second_scale is not None:
        low, high = SCALE_RANGE
        if not low <= second_scale <= high or second_scale == spec.recipe.lora_scale:
            raise InvalidSweep(
                f"A second scale is between {low:g} and {high:g}, and not the suite's own "
                f"({spec.recipe.lora_scale:g})."
            )
        scales = (spec.recipe.lora_scale, second_scale)
        arms = Axis(
            "arm",
            tuple(arm_value(lora, scale) for lora in loras for scale in scales)
            + ((arm_value(NO_LORA, spec.recipe.lora_scale),) if baseline else ()),
        )
    base = spec.recipe.with_seed(spec.seeds[0]).with_stack((stacked,) if stacked else ())
    plan = RunPlan(loras[0], spec.prompts[0], base, arms, cases)
    if plan.cells > MAX_CELLS:
        raise InvalidSweep(
            f"That run has {plan.cells} images; at most {MAX_CELLS}. Pick fewer LoRAs, or "
            "leave out the baseline."
        )
    return plan


# Trainings of these kinds were not trained here (registered, the demo's): no auto run.
NOT_TRAINED_HERE = (RequestId.REGISTERED.value, RequestId.DEMO.value)


def due_auto_runs(*, session: Session, limit: int = 5) -> list[tuple[Suite, LoraTraining]]:
    """(suite, LoRA) pairs an auto run is owed: a suite that runs on new trainings, and a
    LoRA trained here that completed with weights, whose training started after the suite
    began to, and that the suite has not been run on that way yet."""
    claimed = exists().where(
        col(SuiteAutoRun.suite_id) == col(Suite.id),
        col(SuiteAutoRun.lora_training_id) == col(LoraTraining.id),
    )
    rows = session.execute(
        select(Suite, LoraTraining)
        .join(LoraTraining, col(LoraTraining.created_at) > col(Suite.auto_run_since))
        .where(
            col(Suite.auto_run_since).is_not(None),
            col(LoraTraining.status) == LoraStatus.COMPLETED,
            col(LoraTraining.lora_weights_url).is_not(None),
            *(~col(LoraTraining.request_id).startswith(kind) for kind in NOT_TRAINED_HERE),
            ~claimed,
        )
        .order_by(col(LoraTraining.created_at))
        .limit(limit)
    ).all()
    return [(suite, lora) for suite, lora in rows]


def claim_auto_run(
    *, engine: Engine, suite_id: str, lora_id: str, now: datetime | None = None
) -> bool:
    """Whether this process is the one to start the suite's run on the LoRA (one statement:
    of several replicas sweeping at once, one claims it)."""
    with session_scope(engine) as session:
        claimed = session.execute(
            insert(SuiteAutoRun.__table__)  # type: ignore[arg-type]
            .prefix_with("OR IGNORE")
            .values(
                suite_id=suite_id,
                lora_training_id=lora_id,
                created_at=to_iso(now or utc_now()),
            )
        ).rowcount
        session.commit()
    return claimed == 1


def record_auto_run(
    *, engine: Engine, suite_id: str, lora_id: str, sweep_id: str | None, note: str | None
) -> None:
    """What a claimed auto run became: its sweep, or why it could not start (the quota)."""
    with session_scope(engine) as session:
        session.execute(
            update(SuiteAutoRun)
            .where(
                col(SuiteAutoRun.suite_id) == suite_id,
                col(SuiteAutoRun.lora_training_id) == lora_id,
            )
            .values(sweep_id=sweep_id, note=note and note[:500])
        )
        session.commit()
