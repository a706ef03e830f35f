"""fal's safety checker as fal answers: every image asked for comes back, flagged ones
black with `has_nsfw_concepts[i]` true. History, its rates and exports count the flags."""

from __future__ import annotations

import pytest
from sqlalchemy import text

from lora_core.data import schema
from lora_core.data.clock import to_iso, utc_now
from lora_core.data.db import session_scope
from lora_core.generation import service
from lora_core.history import analytics, listing
from lora_core.history.filters import HistoryFilter, HistoryStatus

pytestmark = pytest.mark.both_backends  # the core suite, on SQLite and on libSQL


@pytest.fixture
def flagged_batch(add_lora, fake_fal, generate_batch) -> service.BatchOutcome:
    """A real generation through fal_client: 4 images back, the 2nd and 3rd flagged."""
    lora = add_lora("lora-a", trigger_word="alpha")
    fake_fal.script.nsfw = [False, True, True, False]
    return generate_batch(lora.id, "a storm")


def test_four_images_with_two_flagged_show_two_and_count_as_safety_filtered(engine, flagged_batch):
    assert (len(flagged_batch.images), len(flagged_batch.shown)) == (4, 2)
    with session_scope(engine) as session:
        [row] = listing.list_batches(session=session, history_filter=HistoryFilter()).items
        summary = analytics.summarize(session=session, history_filter=HistoryFilter())
        only_filtered = listing.list_batches(
            session=session,
            history_filter=HistoryFilter(statuses=(HistoryStatus.SAFETY_FILTERED,)),
        ).items

    assert row.status == HistoryStatus.SAFETY_FILTERED
    assert (row.images_returned, row.images_flagged, row.images_shown) == (4, 2, 2)
    assert [item.batch_id for item in only_filtered] == [flagged_batch.batch_id]
    assert summary.safety_filter_rate == 1.0 and summary.images == 2
    assert summary.megapixels == pytest.approx(4 * 1024 * 1024 / 1_000_000)  # fal bills all 4


def test_the_export_carries_the_flags(engine, flagged_batch):
    with session_scope(engine) as session:
        frame = listing.export_frame(session=session, history_filter=HistoryFilter())

    assert frame.loc[0, ["images_returned", "images_flagged", "status"]].tolist() == [
        4,
        2,
        "safety-filtered",
    ]


def test_a_batch_without_flags_is_a_plain_success(engine, add_lora, generate_batch):
    lora = add_lora("lora-b")
    generate_batch(lora.id, "a calm sea")

    with session_scope(engine) as session:
        [row] = listing.list_batches(session=session, history_filter=HistoryFilter()).items

    assert (row.status, row.images_shown, row.images_flagged) == (HistoryStatus.SUCCEEDED, 4, 0)


def test_batches_stored_before_the_count_get_it_from_their_images(bare_at_0011):
    engine = bare_at_0011
    now = to_iso(utc_now())
    with engine.begin() as connection:
        connection.execute(
            text(
                "INSERT INTO generation_batches (id, lora_training_id, wallet_address, prompt, "
                "status, images_returned, created_at) VALUES "
                "('old', 'l', 'ann', 'p', 'succeeded', 4, :now), "
                "('clean', 'l', 'ann', 'p', 'succeeded', 4, :now), "
                "('failed', 'l', 'ann', 'p', 'failed', NULL, :now)"
            ),
            {"now": now},
        )
        for batch, flags in (("old", [0, 1, 1, 0]), ("clean", [0, 0, 0, 0])):
            for index, flag in enumerate(flags):
                connection.execute(
                    text(
                        "INSERT INTO generated_images (id, lora_training_id, wallet_address, "
                        "prompt, image_url, created_at, batch_id, nsfw) "
                        "VALUES (:id, 'l', 'ann', 'p', 'u', :now, :batch, :flag)"
                    ),
                    {"id": f"{batch}-{index}", "now": now, "batch": batch, "flag": flag},
                )

    schema.ensure_schema(engine)

    with engine.connect() as connection:
        counts = dict(
            connection.execute(text("SELECT id, images_flagged FROM generation_batches")).all()
        )
    assert counts == {"old": 2, "clean": 0, "failed": None}


@pytest.fixture
def bare_at_0011(database):
    """The test's database migrated to the revision before the flags were counted."""
    from alembic import command

    from lora_core.data.db import create_db_engine

    engine = create_db_engine(database)
    config = schema.alembic_config()
    with engine.begin() as connection:
        config.attributes["connection"] = connection
        command.upgrade(config, "0011_sweeps")
    yield engine
    engine.dispose()
