"""Every training fal accepted is followed to fal's own answer in the background, whether
or not anyone opens a page: it completes with its weights copied within seconds of fal
finishing, even when the process that submitted it died before ever asking about it."""

from __future__ import annotations

import time
from pathlib import Path

import pytest

from lora_core.data.db import DatabaseTarget, session_scope
from lora_core.data.models import LoraStatus, LoraTraining, RequestId
from lora_core.settings import Settings
from lora_core.studio import Studio, build_studio
from lora_core.sweeper import Sweeper
from lora_core.training import lifecycle as training
from lora_core.training.trainers import TrainingState
from tests.conftest import TEST_FAL_KEY, database_env
from tests.support.factories import pictures, stored_loras
from tests.support.fakefal import FakeFal, weights_bytes
from tests.support.workers import start_worker

pytestmark = pytest.mark.both_backends  # the core suite, on SQLite and on libSQL


@pytest.fixture
def studio(database: DatabaseTarget, tmp_path: Path, engine) -> Studio:
    """The app's parts as one app process builds them, with fal's trainer."""
    settings = Settings(
        **{name.lower(): value for name, value in database_env(database).items()},
        fal_key=TEST_FAL_KEY,
        media_dir=tmp_path / "media",
        allow_private_weights_urls=True,  # the fake fal is on this machine
        recovery_sweep_seconds=0.2,
    )
    built = build_studio(settings)
    yield built
    built.close()


def wait_for(condition, *, seconds: float, what: str) -> float:
    """Poll until `condition()`; how long it took."""
    started = time.monotonic()
    while not condition():
        assert time.monotonic() - started < seconds, what
        time.sleep(0.05)
    return time.monotonic() - started


def the_training(engine) -> LoraTraining:
    [row] = stored_loras(engine)
    return row


def test_an_unwatched_training_completes_and_its_weights_are_copied_within_seconds(
    studio, engine, fake_fal: FakeFal
):
    """Nobody opens a page; fal forgets the request 3 s after finishing it."""
    fake_fal.script.queue_positions = []
    fake_fal.script.processing_seconds = 1.0
    fake_fal.script.result_expires_after = 3.0
    lora = studio.start_training(
        user="ann", files=pictures(5), trigger_word="sks", steps=100, is_style=True
    )
    submitted = time.monotonic()
    sweeper = Sweeper(studio.recover, every_seconds=0.2, name="test-sweep").start()
    try:
        wait_for(
            lambda: the_training(engine).weights_copy_url is not None,
            seconds=15,
            what="the training was never completed and copied",
        )
    finally:
        sweeper.stop()

    # Within seconds of fal finishing, and before fal forgot it.
    assert time.monotonic() - submitted < 1.0 + 3.0
    row = the_training(engine)
    assert row.status == LoraStatus.COMPLETED and row.id == lora.id
    copy = studio.store.path_for(row.weights_copy_url)
    assert copy is not None and copy.read_bytes() == weights_bytes(row.request_id)
    assert row.config_copy_url is not None
    with session_scope(engine) as session:
        status = training.get_status(session=session, policy=studio.training_policy, user="ann")
    assert status.used == 1  # a completed training keeps its slot: it was paid for


def test_the_sweep_keeps_fals_state_for_the_pages_which_only_read_it(
    studio, engine, fake_fal: FakeFal
):
    fake_fal.script.queue_positions = [3, 2]
    studio.start_training(user="ann", files=pictures(5), trigger_word="sks", steps=100,
                          is_style=False)  # fmt: skip
    polls = len(fake_fal.status_polls)

    [seen] = studio.trainings("ann")  # a page: reads the row, asks fal nothing
    assert seen.state == TrainingState("queued")
    assert len(fake_fal.status_polls) == polls

    studio.recover()
    [seen] = studio.trainings("ann")
    assert (seen.state.stage, seen.state.queue_position) == ("queued", 3)
    assert len(fake_fal.status_polls) == polls + 1
    studio.recover()  # asked again only after FOLLOW_EVERY: nothing now
    assert len(fake_fal.status_polls) == polls + 1


def test_a_process_killed_between_submit_and_first_poll_leaves_a_training_that_completes(
    studio, engine, database: DatabaseTarget, fake_fal: FakeFal
):
    fake_fal.script.queue_positions = []
    worker = start_worker(database, DIES_RIGHT_AFTER_FAL_TOOK_THE_TRAINING)

    assert worker.wait(timeout=60) == 9  # killed right after fal took the job
    [request_id] = fake_fal.jobs
    row = the_training(engine)
    assert (row.status, row.request_id) == (LoraStatus.PENDING, request_id)
    assert not row.request_id.startswith(RequestId.RESERVED)

    sweeper = Sweeper(studio.recover, every_seconds=0.2, name="test-sweep").start()
    try:
        wait_for(
            lambda: the_training(engine).status != LoraStatus.PENDING,
            seconds=10,  # the dead process's lease lapses after 2 s
            what="the training was never followed",
        )
    finally:
        sweeper.stop()

    row = the_training(engine)
    assert row.status == LoraStatus.COMPLETED and row.weights_copy_url is not None
    assert len(fake_fal.training_submissions) == 1


DIES_RIGHT_AFTER_FAL_TOOK_THE_TRAINING = """
import os
from lora_core.fal.trainer import FalTrainer
from lora_core.training import lifecycle
from tests.support.factories import pictures

class DiesAfterSubmit(FalTrainer):
    def submit(self, **arguments):
        super().submit(**arguments)
        os._exit(9)

lifecycle.start_training(
    engine=engine, trainer=DiesAfterSubmit(key=generator.key), policy=policy, user="ann",
    files=pictures(5), trigger_word="sks", steps=100, lease_terms=terms,
)
"""
