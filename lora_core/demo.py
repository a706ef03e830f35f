"""Demo data: a few LoRAs with preview images, a finished sweep and starter evaluation
suites, for an empty database.

`seed_demo` fills any empty database (`python -m lora_core.cli.demo` calls it, `run.sh` on
every start); `seed_embedded_default` is what the app itself does as it starts, so that a
quick demo (Streamlit Community Cloud with nothing configured, a fresh disk at every reboot)
shows LoRAs with pictures at once. Only the embedded default database is ever filled that
way, never a configured one; several processes starting at once fill it once (the demo
LoRAs go in as one transaction, which only one writer can win).
"""

from __future__ import annotations

from datetime import datetime, timedelta

from sqlalchemy import Engine, func, select
from sqlalchemy.exc import IntegrityError

from lora_core.data.clock import to_iso, utc_now
from lora_core.data.db import session_scope
from lora_core.data.models import LoraStatus, LoraTraining, RequestId
from lora_core.data.schema import ensure_schema
from lora_core.generation import quota
from lora_core.generation.preview import PreviewGenerator
from lora_core.generation.recipe import PLAN, Recipe
from lora_core.generation.service import GenerationKit, generate
from lora_core.identity import Identity
from lora_core.lab import axes, suites, sweeps
from lora_core.settings import Settings
from lora_core.storage import build_store

DEMO_USER = "demo"
# (id, trigger word, status, steps, days ago, a first prompt or None)
DEMO_LORAS = [
    ("demo-watercolor", "wtrclr", LoraStatus.COMPLETED, 1000, 6, "a lighthouse on a cliff"),
    ("demo-neon-noir", "neonnoir", LoraStatus.COMPLETED, 1200, 4, "a rainy street at night"),
    ("demo-claymation", "clayfig", LoraStatus.COMPLETED, 800, 2, "a fox reading a book"),
    ("demo-blueprint", "blprnt", LoraStatus.COMPLETED, 1000, 1, None),
    ("demo-in-training", "inktrain", LoraStatus.PENDING, 1000, 0, None),
]


def demo_loras(now: datetime) -> list[LoraTraining]:
    return [
        LoraTraining(
            id=lora_id,
            request_id=RequestId.DEMO.new(lora_id),
            user=DEMO_USER,
            trigger_word=trigger,
            steps=steps,
            image_urls=None,
            lora_weights_url=(
                f"https://example.com/demo-loras/{lora_id}.safetensors"
                if status == LoraStatus.COMPLETED
                else None
            ),
            status=status,
            created_at=to_iso(now - timedelta(days=days_ago)),
        )
        for lora_id, trigger, status, steps, days_ago, _prompt in DEMO_LORAS
    ]


def seed_embedded_default(*, engine: Engine, settings: Settings) -> bool:
    """As the app starts: fill the embedded default database when it is empty (a quick
    demo with nothing configured); never a configured one. True when this call did."""
    if not settings.uses_embedded_database:
        return False
    return _seed(engine, settings)  # the schema was made current as the app started


def seed_demo(*, engine: Engine, settings: Settings) -> bool:
    """Add the demo LoRAs (and one preview batch each) to an empty database. True when
    this call added them; False when the database holds a LoRA, or another process
    starting at the same moment added them first."""
    ensure_schema(engine)
    return _seed(engine, settings)


def _seed(engine: Engine, settings: Settings) -> bool:
    """`seed_demo` on a database whose schema is current."""
    with session_scope(engine) as session:
        if session.scalar(select(func.count()).select_from(LoraTraining)):
            return False
        session.add_all(demo_loras(utc_now()))
        try:
            session.commit()
        except IntegrityError:
            return False  # another process's first start won the same rows
    # The demo's batches are drawn offline (never fal, whatever the settings say) and count
    # against no one: the demo user is exempt from a policy of its own.
    generator = PreviewGenerator(build_store(settings))
    unlimited = quota.QuotaPolicy(
        limit=1, window=timedelta(hours=24), exempt_users=frozenset({DEMO_USER})
    )
    kit = GenerationKit(engine=engine, generator=generator, policy=unlimited)
    for lora_id, *_rest, prompt in DEMO_LORAS:
        if prompt:
            generate(kit=kit, user=DEMO_USER, lora_id=lora_id, prompt=prompt)
    _demo_sweep(kit)
    _starter_suites(engine)
    return True


# Evaluation suites a team can start from (`lora_core.lab.suites`): name, prompts, seeds.
STARTER_SUITES = (
    (
        "Starter: subjects",
        "{trigger} portrait of an old fisherman\n{trigger} a red fox in the snow\n"
        "{trigger} a bowl of fruit on a table\n{trigger} a city street at night",
        "7, 8",
    ),
    (
        "Starter: does the style hold?",
        "a lighthouse on a cliff\na cat asleep on a windowsill\na mountain lake at dawn",
        "11",
    ),
)


def _starter_suites(engine: Engine) -> None:
    who = Identity(user=DEMO_USER)
    for name, prompts, seeds in STARTER_SUITES:
        spec = suites.parse(prompts_text=prompts, seeds_text=seeds, recipe=PLAN)
        suites.save(engine=engine, who=who, name=name, spec=spec)


def _demo_sweep(kit: GenerationKit) -> None:
    """One finished X/Y sweep, so the Lab shows what a sweep looks like: the watercolor
    LoRA's scale across, two seeds down (drawn offline, cell after cell)."""
    _sweep_id, _holder, jobs = sweeps.start(
        kit=kit,
        user=DEMO_USER,
        lora_id="demo-watercolor",
        prompt="a lighthouse on a cliff",
        base=Recipe(seed=11),
        x=axes.scale_axis("0, 0.75, 1.5"),
        y=axes.seed_axis("11, 12"),
    )
    for job in jobs:
        sweeps.run_cell(job, engine=kit.engine, generator=kit.generator, store=None)
