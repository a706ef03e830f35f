"""History queries: filters alone and combined, paging, summary, charts and exports."""

from __future__ import annotations

import io
import warnings
from datetime import UTC, date, datetime, time, timedelta

import pandas as pd
import pytest
from sqlalchemy import select

from lora_core import legacy
from lora_core.data.clock import to_iso
from lora_core.data.db import session_scope
from lora_core.data.models import BatchStatus, GeneratedImage, GenerationBatch
from lora_core.generation import prompts
from lora_core.generation.recipe import NO_LORA
from lora_core.history import analytics, listing
from lora_core.history.filters import HistoryFilter, HistoryStatus, filtered
from tests.conftest import NOW
from tests.support.factories import star
from tests.support.plans import explain_selects

pytestmark = pytest.mark.both_backends  # the core suite, on SQLite and on libSQL

DAY = timedelta(days=1)
LABELS = {"lora-a": "alpha", "lora-b": "beta", "lora-c": "gamma"}
# Noon of the run's day: minute offsets below never cross midnight.
NOON = datetime.combine(NOW.date(), time(12), tzinfo=UTC)


@pytest.fixture
def seeded(engine, add_lora):
    """Nine batches: 3 LoRAs x 3 users over 3 days, with one failure, one filtered, one pending."""
    add_lora("lora-a", trigger_word="alpha")
    add_lora("lora-b", trigger_word="beta")
    add_lora("lora-c", trigger_word="gamma")
    plan = [
        # id, lora, user, days ago, status, images, prompt, seconds
        ("b1", "lora-a", "ann", 0, BatchStatus.SUCCEEDED, 4, "A red Fox in snow", 10),
        ("b2", "lora-a", "bob", 0, BatchStatus.FAILED, None, "a blue whale", None),
        ("b3", "lora-b", "ann", 1, BatchStatus.SUCCEEDED, 2, "red roses 100%", 30),
        ("b4", "lora-b", "cy", 1, BatchStatus.SUCCEEDED, 4, "a fox_den at dusk", 20),
        ("b5", "lora-c", "bob", 2, BatchStatus.SUCCEEDED, 4, "city at night", 40),
        ("b6", "lora-c", "cy", 2, BatchStatus.PENDING, None, "a quiet lake", None),
        ("b7", "lora-a", "cy", 2, BatchStatus.SUCCEEDED, 4, "red fox again", 50),
        ("b8", "lora-b", "bob", 0, BatchStatus.SUCCEEDED, 4, "a lighthouse", 60),
        ("b9", "gone", "ann", 1, BatchStatus.SUCCEEDED, 4, "from a deleted lora", 70),
    ]
    with session_scope(engine) as session:
        for index, (bid, lora, user, days, status, images, prompt, secs) in enumerate(plan):
            created = NOON - days * DAY - timedelta(minutes=index)
            session.add(
                GenerationBatch(
                    id=bid,
                    lora_training_id=lora,
                    user=user,
                    prompt=prompt,
                    status=status,
                    images_returned=images,
                    created_at=to_iso(created),
                    finished_at=to_iso(created + timedelta(seconds=secs)) if secs else None,
                    duration_ms=secs * 1000 if secs and status == BatchStatus.SUCCEEDED else None,
                )
            )
            for number in range(images or 0):
                session.add(
                    GeneratedImage(
                        id=f"{bid}-{number}",
                        lora_training_id=lora,
                        user=user,
                        prompt=prompt,
                        image_url=f"https://cdn.example/{bid}/{number}.jpg",
                        seed="18446744073709551557",
                        created_at=to_iso(created),
                        batch_id=bid,
                    )
                )
        session.commit()
    return engine


def ids(engine, history_filter: HistoryFilter, **paging) -> list[str]:
    with session_scope(engine) as session:
        page = listing.list_batches(session=session, history_filter=history_filter, **paging)
    return [row.batch_id for row in page.items]


def test_no_filter_lists_every_batch_newest_first(seeded):
    assert ids(seeded, HistoryFilter()) == ["b1", "b2", "b8", "b3", "b4", "b9", "b5", "b6", "b7"]


@pytest.mark.parametrize(
    ("history_filter", "expected"),
    [
        (HistoryFilter(lora_ids=("lora-a",)), {"b1", "b2", "b7"}),
        (HistoryFilter(lora_ids=("lora-a", "lora-c")), {"b1", "b2", "b5", "b6", "b7"}),
        (HistoryFilter(user="bob"), {"b2", "b5", "b8"}),
        (HistoryFilter(date_from=(NOON - DAY).date()), {"b1", "b2", "b3", "b4", "b8", "b9"}),
        (HistoryFilter(date_to=(NOON - DAY).date()), {"b3", "b4", "b5", "b6", "b7", "b9"}),
        (
            HistoryFilter(date_from=(NOON - DAY).date(), date_to=(NOON - DAY).date()),
            {"b3", "b4", "b9"},
        ),
        (HistoryFilter(statuses=(HistoryStatus.FAILED,)), {"b2"}),
        (HistoryFilter(statuses=(HistoryStatus.SAFETY_FILTERED,)), {"b3"}),
        (HistoryFilter(statuses=(HistoryStatus.PENDING,)), {"b6"}),
        (
            HistoryFilter(statuses=(HistoryStatus.SUCCEEDED, HistoryStatus.FAILED)),
            {"b1", "b2", "b4", "b5", "b7", "b8", "b9"},
        ),
        (HistoryFilter(prompt_contains="FOX"), {"b1", "b4", "b7"}),
        (HistoryFilter(prompt_contains="100%"), {"b3"}),  # % is literal, not a wildcard
        (HistoryFilter(prompt_contains="x_d"), {"b4"}),  # _ too
        (HistoryFilter(prompt_contains="   "), {f"b{n}" for n in range(1, 10)}),
    ],
)
def test_each_filter_alone(seeded, history_filter, expected):
    assert set(ids(seeded, history_filter)) == expected


def test_filters_combine(seeded):
    combined = HistoryFilter(
        lora_ids=("lora-a", "lora-b"),
        user="ann",
        statuses=(HistoryStatus.SUCCEEDED, HistoryStatus.SAFETY_FILTERED),
        prompt_contains="red",
        date_from=(NOON - 2 * DAY).date(),
    )

    assert ids(seeded, combined) == ["b1", "b3"]


def test_nothing_matches(seeded):
    assert ids(seeded, HistoryFilter(user="nobody")) == []
    with session_scope(seeded) as session:
        summary = analytics.summarize(session=session, history_filter=HistoryFilter(user="nobody"))
    assert (summary.batches, summary.failure_rate, summary.median_seconds) == (0, 0.0, None)


def test_paging_edges(seeded):
    assert ids(seeded, HistoryFilter(), page=1, page_size=4) == ["b1", "b2", "b8", "b3"]
    assert ids(seeded, HistoryFilter(), page=3, page_size=4) == ["b7"]
    assert ids(seeded, HistoryFilter(), page=99, page_size=4) == ["b7"]  # clamped
    assert ids(seeded, HistoryFilter(), page=0, page_size=4)[0] == "b1"


@pytest.mark.parametrize(
    ("sort", "expected"),
    [
        ("time", ["b7", "b6", "b5", "b9", "b4", "b3", "b8", "b2", "b1"]),
        # No duration (failed b2, pending b6) comes last either way; ties newest first.
        ("-duration", ["b9", "b8", "b7", "b5", "b3", "b4", "b1", "b2", "b6"]),
        ("duration", ["b1", "b4", "b3", "b5", "b7", "b8", "b9", "b2", "b6"]),
        ("user", ["b1", "b3", "b9", "b2", "b8", "b5", "b4", "b6", "b7"]),
        # By trigger word; a deleted LoRA's batch by its id ("gone").
        ("lora", ["b1", "b2", "b7", "b8", "b3", "b4", "b5", "b6", "b9"]),
        ("-images", ["b1", "b8", "b4", "b9", "b5", "b7", "b3", "b2", "b6"]),
        ("status", ["b2", "b6", "b3", "b1", "b8", "b4", "b9", "b5", "b7"]),
    ],
)
def test_every_sortable_column_orders_every_filtered_batch(seeded, sort, expected):
    order = listing.HistoryOrder.from_param(sort)

    assert order is not None and order.as_param() == sort
    assert ids(seeded, HistoryFilter(), order=order) == expected
    # Across pages: the second page goes on where the first stops.
    assert ids(seeded, HistoryFilter(), order=order, page=2, page_size=4) == expected[4:8]


def test_ties_in_the_sorted_column_and_time_go_by_id_so_each_row_is_on_one_page(engine):
    with session_scope(engine) as session:
        for number in range(1, 7):  # the same time, the same (plan's) steps
            session.add(GenerationBatch(id=f"t{number}", lora_training_id="x", user="ann",
                                        prompt="p", status=BatchStatus.SUCCEEDED,
                                        created_at=to_iso(NOON)))  # fmt: skip
        session.commit()
    order = listing.HistoryOrder(listing.SortColumn.STEPS)

    first = ids(engine, HistoryFilter(), order=order, page=1, page_size=4)
    second = ids(engine, HistoryFilter(), order=order, page=2, page_size=4)

    assert (first, second) == (["t6", "t5", "t4", "t3"], ["t2", "t1"])


def test_a_sort_param_names_a_column_or_is_refused():
    order = listing.HistoryOrder

    assert order.from_param(None) == order.from_param("") == order()  # newest first
    assert order.from_param("-time") == order()
    assert order.from_param("price") is None
    assert order.from_param("--time") is None
    # A header's click: the other way round on the sorted column, else its natural way.
    assert order().on_click(listing.SortColumn.TIME) == order(listing.SortColumn.TIME, False)
    assert order().on_click(listing.SortColumn.USER).as_param() == "user"
    assert order().on_click(listing.SortColumn.DURATION).as_param() == "-duration"


def test_a_batchs_images_in_fals_order_without_the_hidden_ones(seeded):
    with session_scope(seeded) as session:
        session.get(GeneratedImage, "b8-2").hidden = True
        session.add(
            GeneratedImage(id="other", lora_training_id="lora-b", user="bob", prompt="x",
                           image_url="https://cdn.example/o.jpg", batch_id="b3",
                           created_at=to_iso(NOON))
        )  # fmt: skip
        session.commit()
        images = listing.batch_images(session=session, batch_id="b8")
        none = listing.batch_images(session=session, batch_id="b2")  # failed: no image

    assert [image.id for image in images] == ["b8-0", "b8-1", "b8-3"]
    assert none == []


def test_one_batch_is_found_by_its_id_whatever_the_filter(seeded):
    with session_scope(seeded) as session:
        found = listing.find_batch(session=session, batch_id="b8")
        missing = listing.find_batch(session=session, batch_id="b404")

    assert missing is None
    assert (found.batch_id, found.user, found.trigger_word, found.prompt) == (
        "b8", "bob", "beta", "a lighthouse"
    )  # fmt: skip
    assert (found.images_shown, found.duration_seconds) == (4, 60.0)


def test_a_row_carries_what_the_table_shows(seeded):
    with session_scope(seeded) as session:
        page = listing.list_batches(session=session, history_filter=HistoryFilter(user="bob"))
    failed = next(row for row in page.items if row.batch_id == "b2")
    done = next(row for row in page.items if row.batch_id == "b8")

    assert page.total == 3
    assert (failed.status, failed.images_returned, failed.thumbnail_url) == (
        HistoryStatus.FAILED,
        0,
        None,
    )
    assert (done.trigger_word, done.duration_seconds) == ("beta", 60.0)
    assert done.thumbnail_url.startswith("https://cdn.example/b8/")


def test_summary_of_the_filtered_set(seeded):
    with session_scope(seeded) as session:
        summary = analytics.summarize(session=session, history_filter=HistoryFilter())

    assert summary.batches == 9
    assert summary.images == 4 * 6 + 2
    assert (summary.users, summary.loras) == (3, 4)
    assert summary.failure_rate == pytest.approx(1 / 9)
    assert summary.safety_filter_rate == pytest.approx(1 / 9)
    assert summary.median_seconds == 40.0  # of 10, 20, 30, 40, 50, 60, 70 (succeeded only)


def test_charts_count_per_day_lora_and_user(seeded):
    with session_scope(seeded) as session:
        per_day = analytics.batches_per_day(
            session=session, history_filter=HistoryFilter(), lora_labels=LABELS
        )
        loras = analytics.top_loras(
            analytics.lora_counts(session=session, history_filter=HistoryFilter()), LABELS
        )
        users = analytics.top_users(
            analytics.user_counts(session=session, history_filter=HistoryFilter())
        )
        words = analytics.prompt_words(session=session, history_filter=HistoryFilter())

    assert per_day["batches"].sum() == 9
    today = per_day[per_day["day"] == pd.Timestamp(NOON.date())]
    assert dict(zip(today["lora"], today["batches"], strict=True)) == {"alpha": 2, "beta": 1}
    assert loras.iloc[0].to_dict() == {"lora": "alpha", "batches": 3}
    assert "gone" in set(loras["lora"])  # a batch whose LoRA was deleted still counts
    assert sorted(users["batches"]) == [3, 3, 3]
    assert words.iloc[0].to_dict() == {"word": "red", "count": 3}
    assert "a" not in set(words["word"])


def test_per_day_names_the_top_loras_and_groups_the_rest(seeded):
    with session_scope(seeded) as session:
        per_day = analytics.batches_per_day(
            session=session, history_filter=HistoryFilter(), lora_labels=LABELS, top=1
        )

    assert set(per_day["lora"]) == {"alpha", analytics.OTHER_LORAS}
    assert per_day.groupby("lora")["batches"].sum().to_dict() == {"alpha": 3, "other LoRAs": 6}


def test_the_data_version_changes_when_a_batch_starts_or_finishes(seeded):
    from lora_core.generation import quota

    with session_scope(seeded) as session:
        before = analytics.data_version(session=session)
    batch_id = quota.reserve(
        engine=seeded,
        policy=quota.QuotaPolicy(limit=99, window=DAY),
        user="dan",
        lora_id="lora-a",
        prompt="p",
        now=NOON + timedelta(hours=1),
    )
    with session_scope(seeded) as session:
        started = analytics.data_version(session=session)
    quota.release(engine=seeded, batch_id=batch_id, error="x", now=NOON + timedelta(hours=2))
    with session_scope(seeded) as session:
        finished = analytics.data_version(session=session)

    assert len({before, started, finished}) == 3


def test_the_data_version_changes_when_the_original_app_writes_older_images(seeded):
    """Adopted batches carry their images' own (older) times: the version still moves."""
    with session_scope(seeded) as session:
        before = analytics.data_version(session=session)
        session.add(
            GeneratedImage(
                id="legacy-1",
                lora_training_id="lora-a",
                user="0xabc",
                prompt="from the original app",
                image_url="https://cdn.example/legacy/1.jpg",
                created_at=to_iso(NOON - 5 * DAY),  # older than every batch
            )
        )
        session.commit()
    assert legacy.adopt_legacy_images(engine=seeded) == 1
    with session_scope(seeded) as session:
        after = analytics.data_version(session=session)

    assert after != before


def test_the_data_version_follows_the_users_stars_when_asked(seeded):
    from lora_core.gallery import favorites

    with session_scope(seeded) as session:
        before = analytics.data_version(session=session, starred_by="ann")
        image = session.get(GeneratedImage, "b8-0")
    favorites.set_starred(engine=seeded, user="ann", image=image, starred=True)
    with session_scope(seeded) as session:
        starred = analytics.data_version(session=session, starred_by="ann")
    favorites.set_starred(engine=seeded, user="ann", image=image, starred=False)
    with session_scope(seeded) as session:
        unstarred = analytics.data_version(session=session, starred_by="ann")

    assert starred != before and unstarred != starred


def test_exports_hold_the_filtered_rows_with_urls_and_seeds(seeded):
    history_filter = HistoryFilter(lora_ids=("lora-b",))
    with session_scope(seeded) as session:
        frame = listing.export_frame(session=session, history_filter=history_filter)

    from_csv = pd.read_csv(io.BytesIO(listing.to_csv_bytes(frame)), dtype={"seed": str})
    from_parquet = pd.read_parquet(io.BytesIO(listing.to_parquet_bytes(frame)))
    for exported in (from_csv, from_parquet):
        assert list(exported.columns) == listing.EXPORT_COLUMNS
        assert list(exported["prompt"]) == ["a lighthouse", "red roses 100%", "a fox_den at dusk"]
        assert exported["seed"].iloc[0] == "18446744073709551557"
        assert len(exported["image_urls"].iloc[0].split()) == 4
        assert set(exported["status"]) == {"succeeded", "safety-filtered"}


def test_my_prompts_are_the_users_latest_distinct_prompts(seeded):
    with session_scope(seeded) as session:
        recent = prompts.recent_prompts(session=session, user="ann")

    assert recent == ["A red Fox in snow", "red roses 100%", "from a deleted lora"]


def test_the_page_query_uses_indexes_not_sorts(seeded):
    plans = explain_selects(
        seeded,
        lambda session: [
            listing.list_batches(session=session, history_filter=HistoryFilter()),
            listing.list_batches(session=session, history_filter=HistoryFilter(user="ann")),
        ],
    )

    ordered = [plan for sql, plan in plans if "ORDER BY generation_batches.created_at" in sql]
    rows = [sql for sql, _plan in plans if not sql.startswith("SELECT count(")]
    assert len(ordered) == len(rows) == 2  # nothing stacked: no second statement a page
    for plan in ordered:
        # The page itself: read in index order. Each row's preview (its batch's newest
        # shown image): an index seek by batch, its few images sorted.
        page, *previews, stacked = plan.split("CORRELATED SCALAR SUBQUERY")
        assert "TEMP B-TREE" not in page, plan
        assert "USING INDEX idx_gen_batches_" in page, plan
        assert len(previews) == 2, plan  # its picture and its seed
        # Whether it is stacked: a seek in the added LoRAs' primary key.
        assert "SEARCH batch_loras USING INDEX sqlite_autoindex_batch_loras_1" in stacked, plan
        for preview in previews:
            assert "SEARCH generated_images USING INDEX idx_gen_images_batch" in preview, plan
            assert "SCAN generated_images" not in preview, plan


@pytest.mark.parametrize("sort", ["-duration", "scale", "status", "lora"])
def test_a_sorted_page_is_chosen_from_the_batches_first_then_built(seeded, sort):
    order = listing.HistoryOrder.from_param(sort)
    [(sql, plan)] = [
        statement
        for statement in explain_selects(
            seeded,
            lambda session: listing.list_batches(
                session=session, history_filter=HistoryFilter(), order=order, total=9
            ),
        )
    ]

    # Every batch sorted, with nothing else read per batch (the LoRA's name only when the
    # sort is by it); the page's own rows (its previews, its LoRA) built for its ids only.
    chosen = sql[sql.index("IN (SELECT") :]
    assert "LIST SUBQUERY" in plan, plan
    assert "generated_images" not in chosen and "batch_loras" not in chosen
    assert ("lora_trainings" in chosen) == (sort == "lora")
    assert "SEARCH generation_batches USING INDEX sqlite_autoindex_generation_batches_1" in plan


def test_a_page_by_longest_duration_reads_the_batches_in_index_order(seeded):
    order = listing.HistoryOrder.from_param("-duration")
    [(_sql, plan)] = explain_selects(
        seeded,
        lambda session: listing.list_batches(
            session=session, history_filter=HistoryFilter(), order=order, total=9
        ),
    )

    # The page's ids: read from the index in the sort's order, no batch sorted.
    chosen = plan.split("LIST SUBQUERY")[1].split("SEARCH lora_trainings")[0]
    assert "USING COVERING INDEX idx_gen_batches_duration" in chosen, plan
    assert "TEMP B-TREE" not in chosen, plan


def test_dates_are_whole_utc_days(seeded):
    today = NOON.date()

    assert set(ids(seeded, HistoryFilter(date_from=today, date_to=today))) == {"b1", "b2", "b8"}
    assert ids(seeded, HistoryFilter(date_from=date(2000, 1, 1), date_to=date(2000, 1, 2))) == []


def test_a_flagged_image_is_never_a_thumbnail(seeded):
    with session_scope(seeded) as session:
        for image in session.scalars(select(GeneratedImage).where(GeneratedImage.batch_id == "b8")):
            image.nsfw = image.id == "b8-3"  # the newest one
        session.commit()
        page = listing.list_batches(session=session, history_filter=HistoryFilter(user="bob"))

    row = next(row for row in page.items if row.batch_id == "b8")
    assert row.thumbnail_url is not None and not row.thumbnail_url.endswith("/3.jpg")


def test_preview_and_seed_are_of_the_batchs_newest_shown_image(seeded):
    with session_scope(seeded) as session:
        for image in session.scalars(select(GeneratedImage).where(GeneratedImage.batch_id == "b8")):
            number = int(image.id[-1])
            # b8-1 is the newest; b8-2 would be, but the safety checker flagged it.
            minutes = {1: 3, 2: 4}.get(number, number - 5)
            image.created_at = to_iso(NOON + timedelta(minutes=minutes))
            image.seed = f"seed-{number}"
            image.nsfw = number == 2
        session.commit()
        page = listing.list_batches(session=session, history_filter=HistoryFilter())

    rows = {row.batch_id: row for row in page.items}
    assert (rows["b8"].thumbnail_url, rows["b8"].seed) == ("https://cdn.example/b8/1.jpg", "seed-1")
    assert all(  # each batch with images shows one of its own
        row.thumbnail_url.startswith(f"https://cdn.example/{batch_id}/")
        for batch_id, row in rows.items()
        if row.images_returned
    )
    assert rows["b2"].thumbnail_url is None  # a failed batch has no image


def test_the_preview_column_loads_the_thumbnail_where_there_is_one(seeded):
    with session_scope(seeded) as session:
        for image in session.scalars(select(GeneratedImage).where(GeneratedImage.batch_id == "b8")):
            image.thumbnail_url = image.image_url.replace(".jpg", ".thumb.webp")
        session.commit()
        page = listing.list_batches(session=session, history_filter=HistoryFilter(user="bob"))

    by_batch = {row.batch_id: row.thumbnail_url for row in page.items}
    assert by_batch["b8"].startswith("https://cdn.example/b8/")
    assert by_batch["b8"].endswith(".thumb.webp")
    assert all(
        url is None or url.endswith(".jpg") for batch, url in by_batch.items() if batch != "b8"
    )  # no thumbnail yet: the image itself


def test_exported_local_urls_are_made_absolute(seeded):
    with session_scope(seeded) as session:
        image = session.get(GeneratedImage, "b8-0")
        image.image_url = "app/static/media/fal/b8/0.jpg"
        session.commit()
        frame = listing.export_frame(
            session=session,
            history_filter=HistoryFilter(user="bob", prompt_contains="lighthouse"),
            base_url="https://studio.example",
        )

    urls = frame["image_urls"].iloc[0].split()
    assert "https://studio.example/app/static/media/fal/b8/0.jpg" in urls
    assert "https://cdn.example/b8/1.jpg" in urls


def test_the_original_apps_generations_join_history_once(seeded, add_images):
    add_images("lora-a", 2, start_minutes_ago=30)  # two clicks of the original app, 1 min apart
    with session_scope(seeded) as session:
        extra = GeneratedImage(
            id="legacy-extra",
            lora_training_id="lora-a",
            user="ann",
            prompt="prompt 1",
            image_url="https://cdn.example/x.jpg",
            created_at=session.get(GeneratedImage, "lora-a-img-0001").created_at,
        )
        session.add(extra)
        session.commit()

    assert legacy.adopt_legacy_images(engine=seeded) == 2
    assert legacy.adopt_legacy_images(engine=seeded) == 0
    with session_scope(seeded) as session:
        page = listing.list_batches(
            session=session, history_filter=HistoryFilter(prompt_contains="prompt ")
        )

    assert [(row.prompt, row.images_returned) for row in page.items] == [
        ("prompt 1", 2),
        ("prompt 0", 1),
    ]
    assert all(row.status == HistoryStatus.SAFETY_FILTERED for row in page.items)


def test_looking_for_images_to_adopt_uses_the_batch_index(seeded):
    plans = explain_selects(seeded, lambda _session: legacy.adopt_legacy_images(engine=seeded))

    [(_sql, plan)] = plans
    assert "USING INDEX idx_gen_images_batch" in plan, plan


# --- Edges the mutants asked for ------------------------------------------------------------


def at_moment(engine, batch_id: str, moment: datetime) -> None:
    with session_scope(engine) as session:
        session.get(GenerationBatch, batch_id).created_at = to_iso(moment)
        session.commit()


def test_a_days_range_includes_its_first_midnight_and_excludes_the_next(seeded):
    day = (NOON - DAY).date()
    midnight = datetime.combine(day, time(0), tzinfo=UTC)
    at_moment(seeded, "b3", midnight)  # the first instant of the day: in
    at_moment(seeded, "b4", midnight + DAY)  # the first instant of the next day: out

    assert "b3" in ids(seeded, HistoryFilter(date_from=day, date_to=day))
    assert "b4" not in ids(seeded, HistoryFilter(date_from=day, date_to=day))
    assert "b4" in ids(seeded, HistoryFilter(date_from=day + DAY))


@pytest.mark.parametrize(
    ("needle", "expected"),
    [
        ("red%fox", set()),  # %: a literal, not "anything"
        ("red_fox", set()),  # _: a literal, not "any one character"
        ("\\", set()),  # a backslash is looked for, not taken as LIKE's escape
        ("fox_den", {"b4"}),
    ],
)
def test_the_prompt_filter_takes_every_character_literally(seeded, needle, expected):
    assert set(ids(seeded, HistoryFilter(prompt_contains=needle))) == expected


def test_a_backslash_in_a_prompt_is_found(seeded):
    with session_scope(seeded) as session:
        session.get(GenerationBatch, "b5").prompt = "C:\\images\\city"
        session.commit()

    assert ids(seeded, HistoryFilter(prompt_contains="C:\\images")) == ["b5"]


def test_the_scale_filter_reads_an_unrecorded_scale_as_the_plans(seeded):
    with session_scope(seeded) as session:
        session.get(GenerationBatch, "b1").lora_scale = 0.5
        session.get(GenerationBatch, "b4").lora_scale = 1.0
        session.commit()

    assert set(ids(seeded, HistoryFilter(lora_scales=(0.5, 1.0)))) == {"b1", "b4"}
    assert "b1" not in ids(seeded, HistoryFilter(lora_scales=(1.5,)))
    assert len(ids(seeded, HistoryFilter(lora_scales=(1.5,)))) == 7  # NULL: the plan's 1.5


def test_the_starred_filter_keeps_batches_with_an_image_this_user_starred(seeded):
    star(seeded, "ann", "b3-1")
    star(seeded, "bob", "b5-0")
    star(seeded, "bob", "b3-0")

    assert ids(seeded, HistoryFilter(starred_by="ann")) == ["b3"]
    assert set(ids(seeded, HistoryFilter(starred_by="bob"))) == {"b3", "b5"}
    assert ids(seeded, HistoryFilter(starred_by="cy")) == []


def test_no_filter_is_a_plain_query_without_warnings(seeded):
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # SQLAlchemy warns on an empty and_()
        assert len(ids(seeded, HistoryFilter())) == 9


def test_the_base_model_of_a_sweep_is_not_counted_as_a_lora(seeded):
    with session_scope(seeded) as session:
        session.get(GenerationBatch, "b9").lora_training_id = NO_LORA  # a baseline cell
        session.commit()
        summary = analytics.summarize(session=session, history_filter=HistoryFilter())
        overview = analytics.overview(
            session=session, history_filter=HistoryFilter(), lora_labels=LABELS
        )

    assert summary.loras == overview.summary.loras == 3  # alpha, beta, gamma


def test_filters_ignore_invisible_characters_pasted_with_the_text(engine, seeded):
    """Text copied elsewhere may carry zero-width characters: a filter means what it shows."""
    with session_scope(engine) as session:

        def ids(history_filter: HistoryFilter) -> set[str]:
            page = listing.list_batches(session=session, history_filter=history_filter)
            return {row.batch_id for row in page.items}

        assert ids(HistoryFilter(user="\u2060an\u200bn\ufeff ")) == ids(HistoryFilter(user="ann"))
        assert ids(HistoryFilter(user="ann")) == {"b1", "b3", "b9"}
        assert ids(HistoryFilter(prompt_contains="red\u2060 fox")) == {"b1", "b7"}


def test_batches_filter_by_their_loras_verdict_and_whole_tag(seeded):
    from lora_core.data.models import Verdict
    from lora_core.gallery import scorecards
    from lora_core.identity import Identity

    admin = Identity(user="root", is_admin=True)
    for lora_id, verdict, tags in (
        ("lora-a", Verdict.RECOMMENDED, ("style_1",)),
        ("lora-b", Verdict.RECOMMENDED, ("style",)),
        ("lora-c", Verdict.UNDER_TEST, ("stylex1",)),
    ):
        scorecards.save(engine=seeded, who=admin, lora_id=lora_id, notes="", tags=tags,
                        verdict=verdict)  # fmt: skip

    def loras(**wanted) -> set[str]:
        with session_scope(seeded) as session:
            rows = session.execute(
                filtered(HistoryFilter(**wanted), GenerationBatch.lora_training_id)
            ).all()
        return {row[0] for row in rows}

    assert loras(verdict=Verdict.RECOMMENDED) == {"lora-a", "lora-b"}
    assert loras(tag="style") == {"lora-b"}
    assert loras(tag="style_1") == {"lora-a"}  # "_" is no wildcard: not "stylex1"
    assert loras(verdict=Verdict.UNDER_TEST, tag="style") == set()
