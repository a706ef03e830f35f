"""Fill an empty database with a few demo LoRAs and preview images.

    python -m lora_core.cli.demo [--force]

Does nothing when the database already holds a LoRA, so it is safe on every start, and
only touches the embedded default database unless `--force` is given.
"""

from __future__ import annotations

import sys
from datetime import datetime, timedelta

from sqlalchemy import Engine, func, select

from lora_core.data.clock import to_iso, utc_now
from lora_core.data.db import create_db_engine, session_scope
from lora_core.data.models import LoraStatus, LoraTraining, RequestId
from lora_core.data.schema import ensure_schema
from lora_core.errors import LoraStudioError, SettingsError
from lora_core.generation import quota
from lora_core.generation.preview import PreviewGenerator
from lora_core.generation.recipe import Recipe
from lora_core.generation.service import generate
from lora_core.lab import axes, sweeps
from lora_core.settings import DEFAULT_DATABASE_URL, Settings, load_settings, read_secrets_file
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
            wallet_address=DEMO_USER,
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


def seed_demo(*, engine: Engine, settings: Settings) -> bool:
    """Add the demo LoRAs (and one preview batch each) to an empty database."""
    ensure_schema(engine)
    with session_scope(engine) as session:
        if session.scalar(select(func.count()).select_from(LoraTraining)):
            return False
        session.add_all(demo_loras(utc_now()))
        session.commit()
    # The demo's batches are drawn offline (never fal, whatever the settings say) and count
    # against no one: the demo user is exempt from a policy of its own.
    generator = PreviewGenerator(build_store(settings))
    unlimited = quota.QuotaPolicy(
        limit=1, window=timedelta(hours=24), exempt_users=frozenset({DEMO_USER})
    )
    for lora_id, *_rest, prompt in DEMO_LORAS:
        if prompt:
            generate(
                engine=engine,
                generator=generator,
                policy=unlimited,
                user=DEMO_USER,
                lora_id=lora_id,
                prompt=prompt,
            )
    _demo_sweep(engine, generator, unlimited)
    return True


def _demo_sweep(engine: Engine, generator: PreviewGenerator, policy: quota.QuotaPolicy) -> None:
    """One finished X/Y sweep, so the Lab shows what a sweep looks like: the watercolor
    LoRA's scale across, two seeds down (drawn offline, cell after cell)."""
    _sweep_id, _holder, jobs = sweeps.start(
        engine=engine,
        generator=generator,
        policy=policy,
        user=DEMO_USER,
        lora_id="demo-watercolor",
        prompt="a lighthouse on a cliff",
        base=Recipe(seed=11),
        x=axes.scale_axis("0, 0.75, 1.5"),
        y=axes.seed_axis("11, 12"),
    )
    for job in jobs:
        sweeps.run_cell(job, engine=engine, generator=generator, store=None)


def main(argv: list[str] | None = None) -> int:
    force = "--force" in (sys.argv[1:] if argv is None else argv)
    try:
        settings = load_settings(read_secrets_file())
    except SettingsError as error:
        print(f"No demo data added: {error}", file=sys.stderr)
        return 1
    if settings.database.url != DEFAULT_DATABASE_URL and not force:
        # Never fill a configured (possibly shared) database with demo LoRAs by accident.
        print("A database is configured: no demo data added (use --force to add it anyway).")
        return 0
    try:
        added = seed_demo(engine=create_db_engine(settings.database.direct), settings=settings)
    except LoraStudioError as error:
        print(f"No demo data added: {error}", file=sys.stderr)
        return 1
    if added:
        print(f"Added {len(DEMO_LORAS)} demo LoRAs.")
    else:
        print("The database already has LoRAs; no demo data added.")
    return 0


if __name__ == "__main__":
    sys.exit(main())
