"""What the app is made of, built once from its settings: the `Studio`.

A page asks the studio for its parts (`engine`, `store`, `generator`, `trainer`, the two
quota policies) or runs a use case through it, with every dependency already wired:
`generate`, `start_sweep`, `run_suite`, `retry_cell`, `start_training`, `register`, `trainings`,
`training_view`, `follow_trainings`, `resume_stale_batches`, `recover`, `quota_status`,
`training_status`. The UI builds one per process (`ui/context.py`), which also runs
`recover` every few seconds in the background (`sweeper.Sweeper`): every job fal accepted
is followed there, whether or not a page is open. Scripts and tests build their own.

One module, longer than most, because it is one thing: the app's wiring, every use case a
page may run with its dependencies given once; each method is a few lines of relay.
"""

from __future__ import annotations

import functools
import threading
from dataclasses import dataclass
from datetime import timedelta

from sqlalchemy import Engine

from lora_core import demo, identity, legacy, thumbnails
from lora_core.data import leases
from lora_core.data.db import create_db_engine, session_scope
from lora_core.data.models import LoraStatus, LoraTraining
from lora_core.data.schema import ensure_schema
from lora_core.errors import InvalidSweep, LoraStudioError
from lora_core.gallery import downloads
from lora_core.generation import quota, recovery, service
from lora_core.generation.generators import ImageGenerator, ProgressCallback
from lora_core.generation.preview import PreviewGenerator
from lora_core.generation.recipe import PLAN, Recipe, StackedLora
from lora_core.lab import pool, suites, sweeps
from lora_core.lab.axes import Axis
from lora_core.search import indexing
from lora_core.settings import Settings
from lora_core.storage import MediaStore, build_store
from lora_core.training import following, lifecycle, registry
from lora_core.training.archive import UploadedFile
from lora_core.training.preview import PreviewTrainer
from lora_core.training.trainers import Trainer

# A batch nobody waits on is followed once its lease lapsed (one an earlier version wrote
# without a lease: once older than any live wait on fal, its timeout and a margin).
RESUME_MARGIN = timedelta(minutes=1)


@dataclass(frozen=True)
class RecoveryReport:
    batches: recovery.ResumeReport
    trainings_failed: int
    trainings_asked: int = 0
    suite_runs: int = 0  # suites started on new trainings (`Studio.auto_run_suites`)


def build_generator(settings: Settings, store: MediaStore | None = None) -> ImageGenerator:
    """fal when credentials are set, else the offline preview generator drawing into
    `store` (by default the store the settings choose)."""
    if (key := settings.fal_credentials) is not None:
        # fal's client is imported when fal is used: a quick demo's start does without it.
        from lora_core.fal.generator import FalGenerator

        return FalGenerator(key=key, timeout_seconds=settings.fal_timeout_seconds)
    return PreviewGenerator(store or build_store(settings))


def build_trainer(settings: Settings, store: MediaStore | None = None) -> Trainer:
    """fal when credentials are set, else the offline preview trainer."""
    if (key := settings.fal_credentials) is not None:
        from lora_core.fal.trainer import FalTrainer

        return FalTrainer(key=key)
    return PreviewTrainer(store or build_store(settings))


def generation_policy(settings: Settings) -> quota.QuotaPolicy:
    return quota.QuotaPolicy(
        limit=settings.generation_limit,
        window=settings.generation_window,
        exempt_users=identity.exempt_users(settings),
        # A batch still pending after fal's timeout (and a margin) was abandoned.
        abandoned_after=timedelta(seconds=settings.fal_timeout_seconds) + timedelta(minutes=5),
    )


def training_policy(settings: Settings) -> quota.QuotaPolicy:
    return quota.QuotaPolicy(
        limit=settings.training_limit,
        window=settings.training_window,
        exempt_users=identity.exempt_users(settings),
    )


@dataclass(frozen=True)
class Studio:
    settings: Settings
    engine: Engine
    store: MediaStore
    generator: ImageGenerator
    trainer: Trainer
    generation_policy: quota.QuotaPolicy
    training_policy: quota.QuotaPolicy
    thumbnails: thumbnails.ThumbnailQueue
    cells: pool.CellPool
    lease_terms: leases.LeaseTerms = leases.DEFAULT_TERMS

    @property
    def kit(self) -> service.GenerationKit:
        """What every generation and sweep is made with, from the settings."""
        return service.GenerationKit(
            engine=self.engine,
            generator=self.generator,
            policy=self.generation_policy,
            store=self.store,
            allow_private_weights=self.settings.allow_private_weights_urls,
            lease_terms=self.lease_terms,
            max_stacked=self.settings.max_stacked_loras,
        )

    def generate(
        self,
        *,
        user: str,
        lora_id: str,
        prompt: str | None,
        recipe: Recipe = PLAN,
        on_progress: ProgressCallback | None = None,
    ) -> service.BatchOutcome:
        return service.generate(
            kit=self.kit,
            user=user,
            lora_id=lora_id,
            prompt=prompt,
            recipe=recipe,
            on_progress=on_progress,
        )

    def start_sweep(
        self,
        *,
        user: str,
        lora_id: str,
        prompt: str,
        base: Recipe,
        x: Axis,
        y: Axis | None = None,
        max_cells: int | None = None,
        suite_id: str | None = None,
    ) -> tuple[str, threading.Event]:
        """Start an X/Y sweep (`lora_core.lab.sweeps`): its cells are reserved and written at
        once, then run here in the background; (its id, an event set when its cells end).
        `max_cells` defaults to the SWEEP_MAX_CELLS setting; `suite_id`: a suite's run."""
        sweep_id, holder, jobs = sweeps.start(
            kit=self.kit,
            user=user,
            lora_id=lora_id,
            prompt=prompt,
            base=base,
            x=x,
            y=y,
            max_cells=max_cells or self.settings.sweep_max_cells,
            suite_id=suite_id,
        )
        return sweep_id, self._run_cells(holder, jobs)

    def run_suite(
        self,
        *,
        user: str,
        suite_id: str,
        lora_ids: list[str],
        baseline: bool,
        second_scale: float | None = None,
        stacked: StackedLora | None = None,
    ) -> tuple[str, threading.Event]:
        """Run an evaluation suite on these LoRAs (and the base model, with `baseline`): a
        sweep of its prompts and seeds (`lora_core.lab.suites`), `stacked` on each cell if
        given; (its id, an event)."""
        with session_scope(self.engine) as session:
            suite = suites.get_suite(session=session, suite_id=suite_id)
            if suite is None:
                raise InvalidSweep("That suite no longer exists.")
            spec = suites.spec_of(suite)
        plan = suites.run_plan(
            spec, lora_ids=lora_ids, baseline=baseline, second_scale=second_scale, stacked=stacked
        )
        return self.start_sweep(
            user=user, lora_id=plan.lora_id, prompt=plan.prompt, base=plan.base, x=plan.x,
            y=plan.y, max_cells=suites.MAX_CELLS, suite_id=suite_id,
        )  # fmt: skip

    def retry_cell(self, *, user: str, batch_id: str) -> threading.Event:
        """Try a failed cell of one of `user`'s sweeps again, in the background."""
        holder, jobs = sweeps.retry(kit=self.kit, user=user, batch_id=batch_id)
        return self._run_cells(holder, jobs)

    def _run_cells(self, holder: str, jobs: list[sweeps.CellJob]) -> threading.Event:
        return self.cells.launch(
            [
                functools.partial(
                    sweeps.run_cell,
                    job,
                    engine=self.engine,
                    generator=self.generator,
                    store=self.store,
                )
                for job in jobs
            ],
            engine=self.engine,
            holder=holder,
            terms=self.lease_terms,
        )

    def start_training(
        self,
        *,
        user: str,
        files: list[UploadedFile],
        trigger_word: str,
        steps: int,
        is_style: bool,
    ) -> LoraTraining:
        return lifecycle.start_training(
            engine=self.engine,
            trainer=self.trainer,
            policy=self.training_policy,
            user=user,
            files=files,
            trigger_word=trigger_word,
            steps=steps,
            is_style=is_style,
            lease_terms=self.lease_terms,
        )

    def register(
        self, *, user: str, weights_url: str, trigger_word: str, name: str, keep_copy: bool
    ) -> LoraTraining:
        return registry.register_lora(
            engine=self.engine,
            user=user,
            weights_url=weights_url,
            trigger_word=trigger_word,
            name=name,
            allow_private_hosts=self.settings.allow_private_weights_urls,
            keep_copy_in=self.store if keep_copy else None,
        )

    @property
    def follows_in_background(self) -> bool:
        """Whether each app process sweeps (`recover`) every few seconds; when not
        (RECOVERY_SWEEP_SECONDS=0), the pages that show fal's jobs follow them as they
        are viewed."""
        return self.settings.recovery_sweep_seconds > 0

    def follow_trainings(
        self,
        *,
        user: str | None = None,
        lora_id: str | None = None,
        every: timedelta = following.FOLLOW_EVERY,
    ) -> int:
        """Ask fal about the trainings nobody is asking about now (`following.follow`)."""
        return following.follow(
            engine=self.engine,
            trainer=self.trainer,
            store=self.store,
            allow_private_hosts=self.settings.allow_private_weights_urls,
            terms=self.lease_terms,
            user=user,
            lora_id=lora_id,
            every=every,
        )

    def _follow_for_a_page(self, *, user: str | None = None, lora_id: str | None = None) -> None:
        """Without the background sweep, a page that shows trainings follows them as it
        is viewed (each view may ask: the page itself decides how often it reruns)."""
        self.follow_trainings(user=user, lora_id=lora_id, every=timedelta(0))
        lifecycle.fail_unsubmitted(engine=self.engine, policy=self.training_policy)

    def trainings(self, user: str) -> list[following.TrainingView]:
        """`user`'s trainings, newest first, as the background sweep last found them."""
        if not self.follows_in_background:
            self._follow_for_a_page(user=user)
        with session_scope(self.engine) as session:
            loras = lifecycle.list_trainings(session=session, user=user)
        return [following.view(lora) for lora in loras]

    def training_view(self, lora: LoraTraining) -> following.TrainingView:
        """One LoRA (a row just read) as the background sweep last found it."""
        if lora.status != LoraStatus.PENDING or self.follows_in_background:
            return following.view(lora)
        self._follow_for_a_page(lora_id=lora.id)
        with session_scope(self.engine) as session:
            stored = session.get(LoraTraining, lora.id)
        return following.view(stored or lora)

    def prepare_history(self) -> None:
        """Without the background sweep (which adopts them at every beat), the original
        app's images get their batch rows as History is viewed."""
        if not self.follows_in_background:
            legacy.adopt_legacy_images(engine=self.engine)

    def prepare_search(self) -> None:
        """Without the background sweep (which indexes them at every beat), images not
        indexed yet (the original app's) get their words indexed as Search is viewed."""
        if not self.follows_in_background:
            while indexing.index_missing(engine=self.engine) == indexing.BATCH:
                pass

    def resume_stale_batches(
        self, *, lora_id: str | None = None, sweep_id: str | None = None
    ) -> recovery.ResumeReport:
        """Follow batches nobody waits on: for one LoRA, one sweep, or all."""
        return recovery.resume_pending(
            engine=self.engine,
            generator=self.generator,
            store=self.store,
            terms=self.lease_terms,
            unleased_older_than=timedelta(seconds=self.settings.fal_timeout_seconds)
            + RESUME_MARGIN,
            follow_for=timedelta(hours=self.settings.fal_follow_hours),
            lora_id=lora_id,
            sweep_id=sweep_id,
        )

    def recover(self) -> RecoveryReport:
        """One beat of the background sweep: every job fal accepted that nobody waits on
        is asked about (batches finished or failed on fal's answer, trainings followed to
        completion), whatever never reached fal is failed (its slot freed), and the original
        app's new images get their batch rows (History, Usage and the quota read them)."""
        legacy.adopt_legacy_images(engine=self.engine)
        indexing.index_missing(engine=self.engine)  # the original app's, a few hundred a beat
        return RecoveryReport(
            batches=self.resume_stale_batches(),
            trainings_failed=lifecycle.fail_unsubmitted(
                engine=self.engine, policy=self.training_policy
            ),
            trainings_asked=self.follow_trainings(
                # Without a background sweep, the next page view asks again.
                every=following.FOLLOW_EVERY if self.follows_in_background else timedelta(0)
            ),
            suite_runs=self.auto_run_suites(),
        )

    def auto_run_suites(self) -> int:
        """Run every suite that runs on new trainings on each LoRA newly trained (with the
        baseline, under its trainer's quota), once whichever process gets there first; a
        run the quota refuses is recorded as such, not tried again. How many started."""
        with session_scope(self.engine) as session:
            due = [(suite.id, lora.id, lora.user) for suite, lora in suites.due_auto_runs(
                session=session
            )]  # fmt: skip
        started = 0
        for suite_id, lora_id, user in due:
            if not suites.claim_auto_run(engine=self.engine, suite_id=suite_id, lora_id=lora_id):
                continue
            sweep_id, note = None, None
            try:
                sweep_id, _done = self.run_suite(
                    user=user, suite_id=suite_id, lora_ids=[lora_id], baseline=True
                )
                started += 1
            except LoraStudioError as error:
                note = str(error)
            suites.record_auto_run(
                engine=self.engine, suite_id=suite_id, lora_id=lora_id, sweep_id=sweep_id,
                note=note,
            )  # fmt: skip
        return started

    def close(self) -> None:
        """Stop the background work (thumbnails, sweep cells not yet started: recovery
        settles them) and let the database connections go."""
        self.thumbnails.close()
        self.cells.close()
        self.engine.dispose()

    def quota_status(self, user: str) -> quota.QuotaStatus:
        with session_scope(self.engine) as session:
            return quota.get_status(session=session, policy=self.generation_policy, user=user)

    def training_status(self, user: str) -> quota.QuotaStatus:
        with session_scope(self.engine) as session:
            return lifecycle.get_status(session=session, policy=self.training_policy, user=user)


def build_studio(settings: Settings) -> Studio:
    """Everything from the settings: the engine (schema made current), the store, fal's or
    the preview's generator and trainer, the two quota policies. With nothing configured,
    the embedded default database gets the demo data on its first start (a quick demo on
    Streamlit Community Cloud, whose disk starts empty at every reboot)."""
    engine = create_db_engine(settings.database)
    ensure_schema(engine)
    store = build_store(settings)
    demo.seed_embedded_default(engine=engine, settings=settings)
    return Studio(
        settings=settings,
        engine=engine,
        store=store,
        generator=build_generator(settings, store=store),
        trainer=build_trainer(settings, store=store),
        generation_policy=generation_policy(settings),
        training_policy=training_policy(settings),
        thumbnails=thumbnails.ThumbnailQueue(
            engine=engine,
            make_one=lambda image: downloads.make_thumbnail(image, store=store),
        ),
        cells=pool.CellPool(workers=settings.sweep_concurrency),
    )
