"""X/Y sweeps run through the real fal_client against the fake fal: cells as batches of one
image, the quota reserved all or none (racing users too), a failed cell and its retry, the
baseline without LoRA, a process killed mid-sweep, the grid read back, its downloads; a
stacked LoRA as an axis."""

from __future__ import annotations

import io
import json
import subprocess
import threading
import time
import zipfile
from dataclasses import replace
from datetime import timedelta

import pytest
from PIL import Image
from sqlalchemy import select

from lora_core import weights
from lora_core.data import leases
from lora_core.data.clock import to_iso, utc_now
from lora_core.data.db import DatabaseTarget, session_scope
from lora_core.data.models import BatchLora, BatchStatus, GeneratedImage, GenerationBatch, Sweep
from lora_core.errors import (
    InvalidPrompt,
    InvalidSettings,
    InvalidSweep,
    LoraNotFound,
    LoraNotReady,
    QuotaExceeded,
)
from lora_core.generation import quota, recipe_files, recovery
from lora_core.generation.quota import QuotaPolicy
from lora_core.generation.recipe import NO_LORA, Recipe, StackedLora
from lora_core.generation.service import GenerationKit
from lora_core.lab import axes, sweep_files, sweeps, views
from lora_core.lab.contact_sheet import CELL
from lora_core.lab.pool import CellPool
from tests.conftest import TEST_FAL_KEY
from tests.support.bystanders import unchanged_besides
from tests.support.fakefal import JobFailure
from tests.support.hosts import private_host
from tests.support.race import race
from tests.support.workers import start_worker

pytestmark = pytest.mark.both_backends  # the core suite, on SQLite and on libSQL

BASE = Recipe(lora_scale=1.0, steps=20, guidance=4.0, image_size="square", seed=1234)
TERMS = leases.LeaseTerms(duration=timedelta(seconds=2), renew_every=timedelta(seconds=0.25))


@pytest.fixture
def pool():
    cells = CellPool(workers=2)
    yield cells
    cells.close()


@pytest.fixture
def sweep_kit(engine, fal_generator, policy) -> GenerationKit:
    """What the tests' sweeps are made with: fal's generator against the fake, weights on
    this machine allowed, short leases."""
    return GenerationKit(
        engine=engine,
        generator=fal_generator,
        policy=policy,
        allow_private_weights=True,
        lease_terms=TERMS,
    )


@pytest.fixture
def run_sweep(engine, fal_generator, policy, media_store, pool, sweep_kit):
    """Start a sweep as the Studio does and wait for its cells; its id."""

    def run(lora_id: str, *, x, y=None, user="ann", prompt="a red fox", wait=True, **kw):
        sweep_id, holder, jobs = sweeps.start(
            kit=replace(sweep_kit, policy=kw.pop("policy", policy)),
            user=user,
            lora_id=lora_id,
            prompt=prompt,
            base=kw.pop("base", BASE),
            x=x,
            y=y,
            **kw,
        )
        done = launch(jobs, holder)
        if wait:
            assert done.wait(60), "the sweep's cells never ended"
        return sweep_id

    def launch(jobs, holder):
        return pool.launch(
            [
                lambda job=job: sweeps.run_cell(
                    job, engine=engine, generator=fal_generator, store=media_store
                )
                for job in jobs
            ],
            engine=engine,
            holder=holder,
            terms=TERMS,
        )

    run.launch = launch
    run.generator = fal_generator
    return run


def view(engine, sweep_id):
    with session_scope(engine) as session:
        return views.sweep_view(session=session, sweep_id=sweep_id)


def cells_of(engine) -> list[GenerationBatch]:
    with session_scope(engine) as session:
        return list(session.scalars(select(GenerationBatch).order_by(GenerationBatch.created_at)))


def used(engine, policy, user="ann") -> int:
    with session_scope(engine) as session:
        return quota.get_status(session=session, policy=policy, user=user).used


def test_a_2x3_sweep_sends_one_image_per_cell_with_its_values(
    engine, add_lora, run_sweep, fake_fal, policy
):
    lora = add_lora(trigger_word="wtrclr")
    sweep_id = run_sweep(lora.id, x=axes.scale_axis("0, 1, 2"), y=axes.seed_axis("7, 8"))

    sent = sorted(
        (s.body["seed"], s.body["loras"][0]["scale"], s.body["num_images"])
        for s in fake_fal.submissions
    )
    assert sent == [(7, 0.0, 1), (7, 1.0, 1), (7, 2.0, 1), (8, 0.0, 1), (8, 1.0, 1), (8, 2.0, 1)]
    assert {s.body["prompt"] for s in fake_fal.submissions} == {"a red fox in the style of wtrclr"}
    # Everything off the axes held fixed.
    assert {
        (s.body["num_inference_steps"], s.body["image_size"]) for s in fake_fal.submissions
    } == {(20, "square")}
    grid = view(engine, sweep_id)
    assert grid.x_labels == ("scale 0", "scale 1", "scale 2")
    assert grid.y_labels == ("seed 7", "seed 8")
    assert grid.count(BatchStatus.SUCCEEDED) == 6 and not grid.running
    cell = grid.cells[(2, 1)]  # column "scale 2", row "seed 8"
    assert (cell.recipe.lora_scale, cell.recipe.seed) == (2.0, 8)
    assert cell.image is not None and cell.image.seed == "8"
    batches = cells_of(engine)
    assert {(b.num_images, b.images_returned, b.sweep_id) for b in batches} == {(1, 1, sweep_id)}
    # 6 images, 4 to a generation: 2 of the quota.
    assert used(engine, policy) == 2


def test_each_stored_cell_carries_its_recipe_in_the_file(engine, add_lora, run_sweep, media_store):
    lora = add_lora(trigger_word="wtrclr")
    sweep_id = run_sweep(lora.id, x=axes.scale_axis("0.5, 1.5"))

    for cell in view(engine, sweep_id).cells.values():
        data = media_store.path_for(cell.image.image_url).read_bytes()
        fields = recipe_files.read(data).fields
        assert fields["lora_scale"] == cell.recipe.lora_scale
        assert fields["seed"] == "1234" and fields["steps"] == 20
        assert fields["lora"]["id"] == lora.id


def test_the_baseline_cell_has_no_lora_and_the_same_words(
    engine, add_lora, run_sweep, fake_fal, media_store
):
    lora = add_lora(trigger_word="wtrclr")
    other = add_lora(trigger_word="inkwash")
    sweep_id = run_sweep(lora.id, x=axes.lora_axis([lora.id, other.id, NO_LORA]))

    sent = sorted((s.body["prompt"], len(s.body["loras"])) for s in fake_fal.submissions)
    assert sent == [
        ("a red fox in the style of inkwash", 1),
        ("a red fox in the style of wtrclr", 0),  # the baseline: the same words, no weights
        ("a red fox in the style of wtrclr", 1),
    ]
    grid = view(engine, sweep_id)
    assert grid.x_labels == ("wtrclr", "inkwash", "no LoRA")
    baseline = grid.cells[(2, 0)]
    assert baseline.lora_id == NO_LORA and baseline.image.lora_training_id == NO_LORA
    fields = recipe_files.read(media_store.path_for(baseline.image.image_url).read_bytes()).fields
    assert fields["lora"] is None and fields["full_prompt"] == "a red fox in the style of wtrclr"


def test_a_sweep_beyond_the_quota_writes_nothing(engine, add_lora, run_sweep, fake_fal, add_batch):
    lora = add_lora()
    tight = QuotaPolicy(limit=3, window=timedelta(hours=24))
    add_batch(age=timedelta(minutes=5))  # 1 of 3 used: 2 left, 12 images need 3

    with pytest.raises(QuotaExceeded, match="This needs 3 generations of your quota; 2 of your 3"):
        run_sweep(
            lora.id, x=axes.scale_axis("0-1.5 step 0.5"), y=axes.seed_axis("1-3"), policy=tight
        )

    assert [b.sweep_id for b in cells_of(engine)] == [None]
    with session_scope(engine) as session:
        assert session.scalars(select(Sweep)).all() == []
    assert fake_fal.submissions == []


def test_a_sweep_that_fits_exactly_takes_every_cell(engine, add_lora, run_sweep, add_batch):
    lora = add_lora()
    tight = QuotaPolicy(limit=4, window=timedelta(hours=24))
    add_batch(age=timedelta(minutes=5))

    run_sweep(lora.id, x=axes.scale_axis("0-1.5 step 0.5"), y=axes.seed_axis("1-3"), policy=tight)

    assert len([b for b in cells_of(engine) if b.sweep_id]) == 12
    assert used(engine, tight) == 4


def test_racing_sweeps_never_exceed_the_quota(engine, add_lora, fal_generator, media_store):
    lora = add_lora()
    tight = QuotaPolicy(limit=5, window=timedelta(hours=24))

    def start_one() -> None:
        sweeps.start(
            kit=GenerationKit(
                engine=engine, generator=fal_generator, policy=tight, allow_private_weights=True
            ),
            user="ann",
            lora_id=lora.id,
            prompt="a red fox",
            base=BASE,
            x=axes.scale_axis("0, 0.5, 1, 1.5"),
            y=axes.seed_axis("1-3"),
        )

    outcomes = race(4, start_one, refused=QuotaExceeded)

    assert outcomes == ["refused", "refused", "refused", "won"]
    assert len(cells_of(engine)) == 12
    assert used(engine, tight) == 3


def test_a_failed_cell_says_why_and_a_retry_fills_its_place(
    sweep_kit, engine, add_lora, run_sweep, fake_fal, policy, pool, fal_generator, media_store
):
    lora = add_lora()
    fake_fal.script.prompt_failures = {"green": JobFailure("GPU out of memory", "runner_error")}
    sweep_id = run_sweep(lora.id, x=axes.prompt_axis("a red fox", "red, blue, green"))

    grid = view(engine, sweep_id)
    failed = grid.cells[(2, 0)]
    assert failed.status == BatchStatus.FAILED and failed.image is None
    assert "GPU out of memory" in failed.error
    assert grid.count(BatchStatus.SUCCEEDED) == 2
    assert grid.x_labels == ("red", "blue", "green")
    assert used(engine, policy) == 1  # 2 images hold one slot, the failed cell none

    fake_fal.script.prompt_failures = {}
    holder, jobs = sweeps.retry(
        kit=sweep_kit,
        user="ann",
        batch_id=failed.batch_id,
    )
    assert run_sweep.launch(jobs, holder).wait(30)

    retried = view(engine, sweep_id).cells[(2, 0)]
    assert retried.status == BatchStatus.SUCCEEDED and retried.batch_id != failed.batch_id
    assert retried.prompt == "a green fox" and retried.recipe.seed == 1234
    assert fake_fal.submissions[-1].body["prompt"].startswith("a green fox")
    assert fake_fal.submissions[-1].body["loras"][0]["path"] == lora.lora_weights_url  # a LoRA cell
    assert used(engine, policy) == 1  # 3 images: still one slot


def test_only_the_author_retries_and_only_a_failed_cell(engine, add_lora, run_sweep, fake_fal):
    lora = add_lora()
    fake_fal.script.job_failure = JobFailure("Runner crashed", "runner_server_error")
    sweep_id = run_sweep(lora.id, x=axes.scale_axis("1"))
    [cell] = view(engine, sweep_id).cells.values()

    def retry(user, batch_id):
        return sweeps.retry(
            kit=GenerationKit(
                engine=engine,
                generator=None,
                policy=QuotaPolicy(limit=8, window=timedelta(hours=24)),
            ),
            user=user,
            batch_id=batch_id,
        )

    with pytest.raises(InvalidSweep, match="one of your sweeps"):
        retry("bob", cell.batch_id)
    with pytest.raises(InvalidSweep, match="one of your sweeps"):
        retry("ann", "no-such-batch")
    with session_scope(engine) as session:
        session.get(GenerationBatch, cell.batch_id).status = BatchStatus.SUCCEEDED
        session.commit()
    with pytest.raises(InvalidSweep, match="did not fail"):
        retry("ann", cell.batch_id)


def test_a_sweep_whose_every_cell_failed_holds_no_quota(
    engine, add_lora, run_sweep, fake_fal, policy
):
    lora = add_lora()
    fake_fal.script.job_failure = JobFailure("Runner crashed", "runner_server_error")
    sweep_id = run_sweep(lora.id, x=axes.scale_axis("0, 1"), y=axes.seed_axis("1, 2, 3"))

    assert view(engine, sweep_id).count(BatchStatus.FAILED) == 6
    assert used(engine, policy) == 0


def test_nothing_is_reserved_when_a_cell_could_not_run(engine, add_lora, run_sweep, fake_fal):
    lora = add_lora()
    training = add_lora(status="pending")

    with pytest.raises(LoraNotReady):
        run_sweep(lora.id, x=axes.lora_axis([lora.id, training.id]))
    with pytest.raises(InvalidPrompt):  # S/R made a prompt over 500 characters
        run_sweep(lora.id, prompt="a red fox", x=axes.prompt_axis("a red fox", f"red, {'x' * 500}"))
    with pytest.raises(InvalidSweep, match="at most 16"):
        run_sweep(lora.id, x=axes.seed_axis("1-5"), y=axes.scale_axis("0-2 step 0.5"), max_cells=16)

    assert cells_of(engine) == [] and fake_fal.submissions == []


def test_a_page_reading_mid_sweep_sees_finished_and_waiting_cells(
    engine, add_lora, run_sweep, fake_fal
):
    """What a reload shows: the grid from the database, cells filling in as they finish."""
    lora = add_lora()
    fake_fal.script.processing_seconds = 1.0
    sweep_id = run_sweep(lora.id, x=axes.seed_axis("1-4"), wait=False)  # 2 at a time

    first = view(engine, sweep_id)
    assert first.size == 4 and first.running
    assert first.count(BatchStatus.PENDING) >= 2
    deadline = time.monotonic() + 30
    while (grid := view(engine, sweep_id)).running:
        assert time.monotonic() < deadline
        time.sleep(0.1)
    assert grid.count(BatchStatus.SUCCEEDED) == 4
    assert len(fake_fal.submissions) == 4


def test_an_unknown_sweep_id_is_none(engine):
    assert view(engine, "0" * 32) is None
    assert view(engine, "../etc/passwd") is None


def start_dying_sweep(database: DatabaseTarget, lora_id: str) -> subprocess.Popen:
    """A separate process that starts a 4-cell sweep, 2 cells at a time, through fal_client."""
    return start_worker(
        database,
        f"""
        import time
        from lora_core.generation.recipe import Recipe
        from lora_core.lab import axes, sweeps
        from lora_core.lab.pool import CellPool
        from lora_core.generation.service import GenerationKit
        kit = GenerationKit(
            engine=engine, generator=generator, policy=policy, allow_private_weights=True,
            lease_terms=terms,
        )
        sweep_id, holder, jobs = sweeps.start(
            kit=kit, user="ann", lora_id={lora_id!r}, prompt="a lighthouse",
            base=Recipe(seed=99), x=axes.seed_axis("1-4"),
        )
        pool = CellPool(workers=2)
        pool.launch(
            [lambda job=job: sweeps.run_cell(job, engine=engine, generator=generator, store=None)
             for job in jobs],
            engine=engine, holder=holder, terms=terms,
        )
        time.sleep(120)
        """,
    )


def test_a_sweep_killed_midway_is_settled_by_recovery_and_its_lost_cells_retried(
    sweep_kit, engine, database, add_lora, fal_generator, fake_fal, media_store, policy
):
    lora = add_lora()
    fake_fal.script.processing_seconds = 2.0
    fake_fal.script.queue_positions = []
    worker = start_dying_sweep(database, lora.id)
    deadline = time.monotonic() + 30
    while sum(1 for b in cells_of(engine) if b.fal_request_id) < 2:
        assert time.monotonic() < deadline, "the sweep never reached fal"
        time.sleep(0.05)
    worker.kill()
    worker.wait(timeout=10)
    [sweep_id] = {b.sweep_id for b in cells_of(engine)}

    def settle(only: str) -> recovery.ResumeReport:
        return recovery.resume_pending(
            engine=engine,
            generator=fal_generator,
            store=media_store,
            terms=TERMS,
            unleased_older_than=timedelta(minutes=4),
            follow_for=timedelta(days=30),
            sweep_id=only,  # as the sweep's page does
            now=utc_now(),
        )

    deadline = time.monotonic() + 20
    while view(engine, sweep_id).running:
        assert time.monotonic() < deadline, "recovery never settled the sweep"
        assert settle("another-sweep") == recovery.ResumeReport()
        settle(sweep_id)
        time.sleep(0.2)

    grid = view(engine, sweep_id)
    # The two cells fal had accepted are finished from its answers, nothing submitted twice;
    # the two still queued in the dead process never reached fal: failed, their slot freed.
    assert grid.count(BatchStatus.SUCCEEDED) == 2 and grid.count(BatchStatus.FAILED) == 2
    assert len(fake_fal.submissions) == 2
    finished = [cell for cell in grid.cells.values() if cell.image is not None]
    for cell in finished:  # recovery writes the recipe into the files too
        data = media_store.path_for(cell.image.image_url).read_bytes()
        assert recipe_files.read(data).fields["seed"] == str(cell.recipe.seed)
    lost = [cell for cell in grid.cells.values() if cell.status == BatchStatus.FAILED]
    assert all("before fal accepted" in cell.error for cell in lost)
    assert used(engine, policy) == 1

    holder, jobs = sweeps.retry(
        kit=sweep_kit,
        user="ann",
        batch_id=lost[0].batch_id,
    )
    pool = CellPool(workers=1)
    pool.launch(
        [
            lambda: sweeps.run_cell(
                jobs[0], engine=engine, generator=fal_generator, store=media_store
            )
        ],
        engine=engine,
        holder=holder,
        terms=TERMS,
    ).wait(30)
    assert view(engine, sweep_id).count(BatchStatus.SUCCEEDED) == 3
    with session_scope(engine) as session:
        assert len(session.scalars(select(GeneratedImage)).all()) == 3


def test_a_sweep_downloads_as_a_labelled_sheet_and_a_zip_with_a_manifest(
    engine, add_lora, run_sweep, fake_fal, media_store
):
    lora = add_lora(trigger_word="wtrclr")
    fake_fal.script.prompt_failures = {"a blue fox": JobFailure("GPU out of memory", "runner")}
    sweep_id = run_sweep(
        lora.id, x=axes.scale_axis("0, 1, 2"), y=axes.prompt_axis("a red fox", "red, blue")
    )
    grid = view(engine, sweep_id)

    with Image.open(io.BytesIO(sweep_files.sheet(grid, store=media_store))) as sheet:
        assert sheet.info["x_labels"].split("\n") == ["scale 0", "scale 1", "scale 2"]
        assert sheet.info["y_labels"].split("\n") == ["red", "blue"]
        assert sheet.info["title"] == "wtrclr · “a red fox” · seed 1234"
        assert sheet.width > 3 * CELL and 2 * CELL < sheet.height < 3 * CELL

    with zipfile.ZipFile(io.BytesIO(sweep_files.archive(grid, store=media_store))) as zipped:
        names = set(zipped.namelist())
        manifest = json.loads(zipped.read("manifest.json"))
        first = zipped.read("images/r1-c1.jpg")
    assert names == {
        "contact-sheet.png", "manifest.json", "manifest.csv",
        "images/r1-c1.jpg", "images/r1-c2.jpg", "images/r1-c3.jpg",
    }  # fmt: skip
    assert [(row["row"], row["column"], row["x"], row["y"]) for row in manifest] == [
        (1, 1, "scale 0", "red"), (1, 2, "scale 1", "red"), (1, 3, "scale 2", "red"),
        (2, 1, "scale 0", "blue"), (2, 2, "scale 1", "blue"), (2, 3, "scale 2", "blue"),
    ]  # fmt: skip
    blue = manifest[3]
    assert blue["file"] is None and blue["status"] == "failed" and "GPU" in blue["error"]
    assert blue["prompt"] == "a blue fox" and blue["seed"] == "1234"
    assert recipe_files.read(first).fields["lora_scale"] == 0.0


def test_cells_run_no_more_at_once_than_the_pool_allows(engine, add_lora, run_sweep, fake_fal):
    """fal limits concurrent requests per account: a pool of 2 keeps 2 cells in flight."""
    lora = add_lora()
    fake_fal.script.processing_seconds = 0.6
    fake_fal.script.queue_positions = []

    run_sweep(lora.id, x=axes.seed_axis("1-4"))  # the pool fixture: 2 workers

    first, second, third, fourth = sorted(s.at for s in fake_fal.submissions)
    assert second - first < 0.3  # two at once
    assert third - first >= 0.5 and fourth - second >= 0.5  # the others waited for a slot


def test_a_failed_cell_retried_twice_at_once_runs_once(engine, add_lora, run_sweep, fake_fal):
    """Two tabs (or a double click) on Retry: one new try, one fal call."""
    lora = add_lora()
    fake_fal.script.job_failure = JobFailure("Runner crashed", "runner_server_error")
    sweep_id = run_sweep(lora.id, x=axes.scale_axis("1"))
    [failed] = view(engine, sweep_id).cells.values()
    fake_fal.script.job_failure = None

    def retry() -> None:
        sweeps.retry(
            kit=GenerationKit(
                engine=engine,
                generator=run_sweep.generator,
                policy=QuotaPolicy(limit=8, window=timedelta(hours=24)),
                allow_private_weights=True,
            ),
            user="ann",
            batch_id=failed.batch_id,
        )

    outcomes = race(2, retry, refused=InvalidSweep)

    assert outcomes == ["refused", "won"]
    assert len(cells_of(engine)) == 2  # the failed try and one new one
    with pytest.raises(InvalidSweep, match="already being generated again"):
        retry()


def test_a_baseline_cell_is_retried_even_if_the_sweeps_lora_was_hidden_since(
    engine, add_lora, run_sweep, fake_fal, pool, media_store
):
    lora = add_lora(trigger_word="wtrclr")
    fake_fal.script.prompt_failures = {"wtrclr": JobFailure("Runner crashed", "runner")}
    sweep_id = run_sweep(lora.id, x=axes.lora_axis([NO_LORA]))
    [failed] = view(engine, sweep_id).cells.values()
    fake_fal.script.prompt_failures = {}
    with session_scope(engine) as session:
        session.get(type(lora), lora.id).status = "failed"  # no longer ready
        session.commit()

    holder, jobs = sweeps.retry(
        kit=GenerationKit(
            engine=engine,
            generator=run_sweep.generator,
            policy=QuotaPolicy(limit=8, window=timedelta(hours=24)),
            allow_private_weights=True,
            lease_terms=TERMS,
        ),
        user="ann",
        batch_id=failed.batch_id,
    )
    assert run_sweep.launch(jobs, holder).wait(30)

    assert view(engine, sweep_id).count(BatchStatus.SUCCEEDED) == 1
    assert fake_fal.submissions[-1].body["loras"] == []
    assert fake_fal.submissions[-1].body["prompt"] == "a red fox in the style of wtrclr"


def test_the_lab_lists_the_newest_five_sweeps_with_their_loras_names(engine, add_lora):
    lora = add_lora("named", trigger_word="wtrclr")
    with session_scope(engine) as session:
        for minute, lora_id in enumerate(["named"] * 5 + ["gone"]):
            session.add(
                Sweep(id=f"s{minute}", user="ann", lora_training_id=lora_id,
                      prompt="p", x_kind="scale", x_values="[1.0]", lora_scale=1.0,
                      num_inference_steps=20, guidance_scale=4.0, image_size="square",
                      seed="1", created_at=to_iso(utc_now() + timedelta(minutes=minute)))
            )  # fmt: skip
        session.commit()

    with session_scope(engine) as session:
        listed = views.recent(session=session)

    assert [item.sweep.id for item in listed] == ["s5", "s4", "s3", "s2", "s1"]
    assert [item.lora_name for item in listed] == ["a LoRA no longer here"] + [
        lora.trigger_word
    ] * 4


def test_loras_on_the_rows_are_labelled_by_name(engine, add_lora, run_sweep):
    lora, other = add_lora("first", trigger_word="inkwash"), add_lora("second", trigger_word="clay")

    sweep_id = run_sweep(lora.id, x=axes.scale_axis("1"), y=axes.lora_axis([lora.id, other.id]))

    grid = view(engine, sweep_id)
    assert grid.y_labels == ("inkwash", "clay")
    assert grid.y == axes.lora_axis([lora.id, other.id]) and grid.x == axes.scale_axis("1")


def test_a_retried_cell_of_the_first_column_stays_in_it(
    sweep_kit, engine, add_lora, run_sweep, fake_fal, policy, fal_generator
):
    lora = add_lora()
    fake_fal.script.prompt_failures = {"red": JobFailure("GPU out of memory", "runner_error")}
    sweep_id = run_sweep(lora.id, x=axes.prompt_axis("a red fox", "red, blue"))
    failed = view(engine, sweep_id).cells[(0, 0)]
    assert failed.status == BatchStatus.FAILED
    fake_fal.script.prompt_failures = {}

    holder, jobs = sweeps.retry(
        kit=sweep_kit,
        user="ann",
        batch_id=failed.batch_id,
    )
    assert run_sweep.launch(jobs, holder).wait(30)

    grid = view(engine, sweep_id)
    assert grid.cells[(0, 0)].status == BatchStatus.SUCCEEDED
    assert grid.cells[(0, 0)].prompt == "a red fox"
    assert grid.count(BatchStatus.SUCCEEDED) == 2 and len(grid.cells) == 2


def test_a_sweep_placed_in_time_keeps_one_clock(engine, add_lora, run_sweep):
    lora = add_lora()
    then = utc_now() - timedelta(hours=2)

    sweep_id = run_sweep(lora.id, x=axes.scale_axis("0.5, 1"), now=then)

    with session_scope(engine) as session:
        sweep = session.get(Sweep, sweep_id)
    assert sweep.created_at == to_iso(then)
    assert {cell.created_at for cell in cells_of(engine)} == {to_iso(then)}


def test_closing_the_pool_drops_the_cells_still_queued(engine):
    pool = CellPool(workers=1)
    release, ran = threading.Event(), []
    pool.launch(
        [lambda: release.wait(10), lambda: ran.append("queued")],
        engine=engine, holder="nobody", terms=TERMS,
    )  # fmt: skip

    pool.close()
    release.set()
    time.sleep(0.3)

    assert ran == []  # left pending, for recovery to settle


def test_a_sweep_is_at_most_sixteen_cells_unless_told(engine, add_lora, run_sweep):
    lora = add_lora()

    with pytest.raises(InvalidSweep, match="at most 16"):
        run_sweep(lora.id, x=axes.seed_axis("1-17"))


def test_a_sweep_naming_an_unknown_lora_says_so(engine, add_lora, run_sweep):
    lora = add_lora()

    with pytest.raises(LoraNotFound) as refused:
        run_sweep(lora.id, x=axes.lora_axis([lora.id, "0123456789abcdef"]))

    assert str(refused.value) == "A LoRA of this sweep is not in LoRA Studio."


def test_a_sweeps_held_settings_read_back_as_its_base_recipe(engine, add_lora, run_sweep):
    lora = add_lora()
    base = Recipe(lora_scale=0.8, steps=12, guidance=2.5, image_size="portrait_4_3", seed=99)

    sweep_id = run_sweep(lora.id, x=axes.prompt_axis("a red fox", "red"), base=base)

    with session_scope(engine) as session:
        assert views.base_recipe(session.get(Sweep, sweep_id)) == base


def test_a_cell_fal_went_quiet_about_stays_pending_and_is_finished_never_retried(
    sweep_kit, engine, add_lora, fake_fal, policy, pool, media_store
):
    """fal accepted the cell, then its gateway failed for longer than the cell's wait:
    fal may bill it, so it is neither failed nor offered again; recovery stores it."""
    from lora_core.fal.generator import FalGenerator

    lora = add_lora()
    impatient = FalGenerator(key=TEST_FAL_KEY, timeout_seconds=0.5, poll_interval=0.02)
    fake_fal.script.queue_positions = []
    fake_fal.script.processing_seconds = 0.2
    fake_fal.script.outage_after_submit = 2.0
    sweep_id, holder, jobs = sweeps.start(
        kit=replace(sweep_kit, generator=impatient),
        user="ann",
        lora_id=lora.id,
        prompt="a red fox",
        base=BASE,
        x=axes.scale_axis("1"),
    )
    done = pool.launch(
        [lambda job=job: sweeps.run_cell(job, engine=engine, generator=impatient, store=None)
         for job in jobs],
        engine=engine, holder=holder, terms=TERMS,
    )  # fmt: skip
    assert done.wait(30)

    [cell] = view(engine, sweep_id).cells.values()
    assert cell.status == BatchStatus.PENDING and cell.error is None
    assert used(engine, policy) == 1  # its share is held while fal may bill it
    with pytest.raises(InvalidSweep, match="did not fail"):
        sweeps.retry(
            kit=GenerationKit(engine=engine, generator=impatient, policy=policy),
            user="ann",
            batch_id=cell.batch_id,
        )

    time.sleep(2.0)  # fal answers again
    report = recovery.resume_pending(
        engine=engine, generator=impatient, store=media_store, terms=TERMS,
        unleased_older_than=timedelta(minutes=4), follow_for=timedelta(days=30),
        now=utc_now() + TERMS.duration + timedelta(seconds=1),
    )  # fmt: skip

    assert report == recovery.ResumeReport(finished=1)
    [cell] = view(engine, sweep_id).cells.values()
    assert cell.status == BatchStatus.SUCCEEDED and cell.image is not None
    assert len(fake_fal.submissions) == 1


def test_a_sweep_without_a_seed_gets_one_at_random_for_every_cell(
    engine, add_lora, run_sweep, fake_fal
):
    lora = add_lora()

    first = run_sweep(lora.id, x=axes.scale_axis("0, 1"), base=Recipe(lora_scale=1.0))
    second = run_sweep(lora.id, x=axes.scale_axis("0, 1"), base=Recipe(lora_scale=1.0))

    seeds = {view(engine, sweep_id).sweep.seed for sweep_id in (first, second)}
    assert all(seed.isdigit() for seed in seeds) and len(seeds) == 2
    sent = [submission.body["seed"] for submission in fake_fal.submissions]
    assert len(set(sent[:2])) == 1 and len(set(sent[2:])) == 1  # one per sweep, all cells


def test_a_stack_axis_sends_each_cell_with_its_stacked_lora(
    engine,
    add_lora,
    run_sweep,
    fake_fal,
):
    subject = add_lora("subject", trigger_word="ohwx", weights_url="https://127.0.0.1/s.st")
    add_lora("style", trigger_word="wtrclr", weights_url="https://127.0.0.1/style.st")
    add_lora("noir", trigger_word="neonnoir", weights_url="https://127.0.0.1/noir.st")
    x = axes.stack_axis([NO_LORA, "style", "noir"], "0.5, 1")
    y = axes.scale_axis("0.8, 1.2")

    sweep_id = run_sweep(subject.id, x=x, y=y)

    sent = sorted(
        (body["loras"][0]["scale"],
         tuple((more["path"], more["scale"]) for more in body["loras"][1:]),
         body["prompt"])
        for body in (submission.body for submission in fake_fal.submissions)
    )  # fmt: skip
    assert len(sent) == 10  # 5 columns × 2 rows
    assert (0.8, (), "a red fox in the style of ohwx") in sent
    assert (1.2, (("https://127.0.0.1/style.st", 0.5),),
            "a red fox in the style of ohwx in the style of wtrclr") in sent  # fmt: skip
    assert (0.8, (("https://127.0.0.1/noir.st", 1.0),),
            "a red fox in the style of ohwx in the style of neonnoir") in sent  # fmt: skip
    grid = view(engine, sweep_id)
    assert grid.x_labels == ("alone", "+ wtrclr · 0.5", "+ wtrclr · 1", "+ neonnoir · 0.5",
                             "+ neonnoir · 1")  # fmt: skip
    assert grid.count(BatchStatus.SUCCEEDED) == 10
    assert grid.cells[(2, 1)].recipe.stack == (StackedLora("style", 1.0),)
    assert grid.cells[(2, 1)].recipe.lora_scale == 1.2
    assert grid.cells[(0, 0)].recipe.stack == ()
    with session_scope(engine) as session:
        rows = session.scalars(select(BatchLora)).all()
    assert len(rows) == 8 and {row.position for row in rows} == {1}
    by_batch = {batch.id: batch for batch in cells_of(engine)}
    assert all(by_batch[row.batch_id].lora_training_id == "subject" for row in rows)


def test_a_stacked_cell_that_failed_is_retried_with_its_stack(
    engine,
    add_lora,
    run_sweep,
    fake_fal,
    sweep_kit,
):
    subject = add_lora("subject", trigger_word="ohwx", weights_url="https://127.0.0.1/s.st")
    add_lora("noir", trigger_word="neonnoir", weights_url="https://127.0.0.1/noir.st")
    fake_fal.script.prompt_failures = {"neonnoir": JobFailure("GPU out of memory", "runner_error")}
    sweep_id = run_sweep(subject.id, x=axes.stack_axis([NO_LORA, "noir"], "0.7"))
    failed = view(engine, sweep_id).cells[(1, 0)]
    assert failed.status == BatchStatus.FAILED

    fake_fal.script.prompt_failures = {}
    holder, jobs = sweeps.retry(kit=sweep_kit, user="ann", batch_id=failed.batch_id)
    assert run_sweep.launch(jobs, holder).wait(30)

    retried = view(engine, sweep_id).cells[(1, 0)]
    assert retried.status == BatchStatus.SUCCEEDED
    assert retried.recipe.stack == (StackedLora("noir", 0.7),)
    body = fake_fal.submissions[-1].body
    assert body["loras"][1] == {"path": "https://127.0.0.1/noir.st", "scale": 0.7}
    assert body["prompt"] == "a red fox in the style of ohwx in the style of neonnoir"


def test_a_lora_stacked_on_itself_is_refused_before_any_cost(
    engine,
    add_lora,
    run_sweep,
    fake_fal,
):
    subject = add_lora("subject")
    add_lora("style")
    with pytest.raises(InvalidSweep, match="cannot be stacked on itself"):
        run_sweep(
            subject.id,
            x=axes.lora_axis(["subject", "style"]),
            y=axes.stack_axis(["style"], "0.5"),
        )
    assert fake_fal.submissions == [] and cells_of(engine) == []


def test_a_stacked_lora_that_is_not_ready_is_named_before_any_cost(
    engine, add_lora, run_sweep, fake_fal
):
    subject = add_lora("subject")
    add_lora("halfway", trigger_word="halfway", status="pending")

    with pytest.raises(InvalidSettings, match=r"^halfway: This LoRA is still training"):
        run_sweep(subject.id, x=axes.stack_axis([NO_LORA, "halfway"], "0.5"))
    assert fake_fal.submissions == [] and cells_of(engine) == []


# --- The grid reads its own cells at their places; retries land where they failed ----------


class NoFalCalls:
    """A generator for sweeps that are only started here (their cells never run): it
    downloads no weights, so starting asks no host."""

    downloads_weights = False

    def generate(self, request, on_progress=None):
        raise AssertionError("no cell runs in these tests")

    def resume(self, request_id):
        return None

    def cancel(self, request_id):
        pass


def started(engine, policy, lora_id: str, *, user="ann", now=None, x="0, 1", y="7, 8"):
    """A sweep started (its cells written, pending), none run: (its id, {place: batch id})."""
    sweep_id, _holder, _jobs = sweeps.start(
        kit=GenerationKit(engine=engine, generator=NoFalCalls(), policy=policy),
        user=user, lora_id=lora_id, prompt="a red fox", base=BASE,
        x=axes.scale_axis(x), y=axes.seed_axis(y) if y else None, now=now,
    )  # fmt: skip
    return sweep_id, {
        (cell.sweep_x, cell.sweep_y): cell.id for cell in cells_of(engine)
        if cell.sweep_id == sweep_id
    }  # fmt: skip


def set_status(engine, statuses: dict[str, str]) -> None:
    with session_scope(engine) as session:
        for batch_id, status in statuses.items():
            session.get(GenerationBatch, batch_id).status = status
        session.commit()


def test_a_sweeps_grid_shows_its_own_cells_only(engine, add_lora, policy):
    """bob started the same grid a minute later: ann's sweep shows none of his cells."""
    lora = add_lora()
    anns, ann_cells = started(engine, policy, lora.id, now=utc_now() - timedelta(minutes=2))
    _bobs, bob_cells = started(
        engine, policy, lora.id, user="bob", now=utc_now() - timedelta(minutes=1), x="0, 1, 2"
    )
    set_status(engine, dict.fromkeys(bob_cells.values(), BatchStatus.SUCCEEDED))

    grid = view(engine, anns)

    assert {place: cell.batch_id for place, cell in grid.cells.items()} == ann_cells
    assert grid.count(BatchStatus.PENDING) == 4 and grid.count(BatchStatus.SUCCEEDED) == 0


@pytest.mark.parametrize("place", [(1, 1), (0, 1), (1, 0)])
def test_a_failed_cell_is_retried_at_its_own_place(engine, add_lora, policy, place):
    lora = add_lora()
    sweep_id, cells = started(engine, policy, lora.id)
    set_status(engine, {batch_id: BatchStatus.SUCCEEDED for batch_id in cells.values()})
    set_status(engine, {cells[place]: BatchStatus.FAILED})

    with unchanged_besides(engine, GenerationBatch) as watch:
        sweeps.retry(
            kit=GenerationKit(engine=engine, generator=NoFalCalls(), policy=policy),
            user="ann",
            batch_id=cells[place],
        )

    [(new_id,)] = watch.added["generation_batches"]
    with session_scope(engine) as session:
        new = session.get(GenerationBatch, new_id)
    assert (new.sweep_id, new.sweep_x, new.sweep_y) == (sweep_id, *place)
    grid = view(engine, sweep_id)
    shown = {spot: cell.batch_id for spot, cell in grid.cells.items()}
    assert shown == cells | {place: new_id}  # the other three places keep their cells
    assert grid.cells[place].status == BatchStatus.PENDING
    assert grid.count(BatchStatus.SUCCEEDED) == 3


@pytest.mark.parametrize(("pending", "running"), [(0, False), (1, True), (2, True)])
def test_a_sweep_is_running_while_any_cell_is_pending(engine, add_lora, policy, pending, running):
    lora = add_lora()
    sweep_id, cells = started(engine, policy, lora.id, y="")
    ordered = [cells[(0, 0)], cells[(1, 0)]]
    set_status(engine, {batch_id: BatchStatus.SUCCEEDED for batch_id in ordered[pending:]})

    grid = view(engine, sweep_id)

    assert grid.count(BatchStatus.PENDING) == pending
    assert grid.running is running


def test_by_default_a_sweep_never_asks_a_host_on_a_private_network(
    engine, add_lora, fal_generator, policy
):
    """Starting a sweep and retrying its cell, with the kit's defaults: the weights URL is
    left to fal, and the host it names is asked nothing from here."""
    kit = GenerationKit(engine=engine, generator=fal_generator, policy=policy)
    with private_host() as host:
        lora = add_lora(weights_url=host.weights_url)
        sweep_id, _holder, jobs = sweeps.start(
            kit=kit, user="ann", lora_id=lora.id, prompt="a red fox", base=BASE,
            x=axes.scale_axis("0.5, 1"),
        )  # fmt: skip
        assert host.requests == []
        assert [job.request.weights_url for job in jobs] == [host.weights_url] * 2
        set_status(engine, {jobs[0].batch_id: BatchStatus.FAILED})
        weights.forget_answers()  # a retry comes later: what a host answered is asked afresh

        _holder, [job] = sweeps.retry(kit=kit, user="ann", batch_id=jobs[0].batch_id)

    assert host.requests == []
    assert job.request.weights_url == host.weights_url
    assert view(engine, sweep_id).count(BatchStatus.PENDING) == 2
