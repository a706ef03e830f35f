"""The read side: LoRAs newest first with counts and thumbnails; a LoRA's images, paged."""

from __future__ import annotations

from datetime import timedelta

import pytest

from lora_core.data import lookups
from lora_core.data.clock import to_iso
from lora_core.data.db import session_scope
from lora_core.data.models import GeneratedImage, LoraTraining
from lora_core.gallery import favorites, queries, views
from tests.conftest import NOW
from tests.support.factories import hide, star
from tests.support.factories import unsaved_image as image
from tests.support.plans import explain_selects

pytestmark = pytest.mark.both_backends  # the core suite, on SQLite and on libSQL


def test_loras_newest_first_with_count_and_latest_image(engine, add_lora, add_images):
    old = add_lora("old", created_at=to_iso(NOW - timedelta(days=3)))
    new = add_lora("new", created_at=to_iso(NOW - timedelta(days=1)))
    add_lora("empty", created_at=to_iso(NOW - timedelta(days=2)))
    add_images(old.id, 5)
    add_images(new.id, 2)

    with session_scope(engine) as session:
        summaries = queries.list_loras(session=session)

    assert [s.lora.id for s in summaries] == ["new", "empty", "old"]
    assert [s.image_count for s in summaries] == [2, 0, 5]
    assert summaries[0].cover_url == "https://cdn.example/new/1.jpg"
    assert summaries[1].cover_url is None
    assert summaries[2].cover_url == "https://cdn.example/old/4.jpg"


@pytest.fixture
def cap_of_three(monkeypatch):
    """The gallery's image count capped at 3 (its statement is built once a process)."""
    monkeypatch.setattr(queries, "IMAGE_COUNT_CAP", 3)
    queries._summaries_statement.cache_clear()
    yield
    queries._summaries_statement.cache_clear()


def test_a_card_counts_images_up_to_the_cap_then_says_more(
    engine, add_lora, add_images, cap_of_three
):
    for lora_id, count in (("many", 5), ("exact", 3), ("three", 3), ("few", 2)):
        add_lora(lora_id)
        add_images(lora_id, count)
    hide(engine, "three-img-0000")  # a hidden image is not counted

    with session_scope(engine) as session:
        page = queries.list_lora_page(session=session, page_size=24)

    counts = {s.lora.id: (s.image_count, s.more_images) for s in page.items}
    assert counts == {
        "many": (3, True),
        "exact": (3, False),  # the cap itself is a count
        "three": (2, False),
        "few": (2, False),
    }


def test_the_gallery_pages_loras_and_summarises_only_the_page(engine, add_lora, add_images):
    for day in range(30):  # lora-29 is the newest
        add_lora(f"lora-{day:02d}", created_at=to_iso(NOW - timedelta(days=30 - day)))
    add_images("lora-03", 5)
    add_lora("secret", created_at=to_iso(NOW))
    with session_scope(engine) as session:
        session.get(LoraTraining, "secret").hidden = True
        session.commit()

    with session_scope(engine) as session:
        first = queries.list_lora_page(session=session, page_size=24)
        second = queries.list_lora_page(session=session, page=2, page_size=24)
        beyond = queries.list_lora_page(session=session, page=9, page_size=24)

    assert (first.total, first.page_count, len(first.items)) == (30, 2, 24)
    # Pictures first: the one LoRA with images, then the others newest first.
    assert [s.lora.id for s in first.items[:2]] == ["lora-03", "lora-29"]
    assert first.items[0].image_count == 5
    assert first.items[0].cover_url == "https://cdn.example/lora-03/4.jpg"
    assert [s.lora.id for s in second.items] == [f"lora-{day:02d}" for day in range(6, -1, -1)
                                                 if day != 3]  # fmt: skip
    assert beyond.page == 2 and [s.lora.id for s in beyond.items] == ["lora-06", "lora-05",
        "lora-04", "lora-02", "lora-01", "lora-00"]  # fmt: skip


def test_a_gallery_page_and_its_total_come_in_one_statement(engine, add_lora):
    def asked(page: int) -> tuple[queries.Page[queries.LoraSummary], int]:
        found = []
        plans = explain_selects(
            engine,
            lambda session: found.append(
                queries.list_lora_page(session=session, page=page, page_size=2)
            ),
        )
        return found[0], len(plans)

    empty, empty_statements = asked(1)
    for day in range(5):
        add_lora(f"lora-{day}", created_at=to_iso(NOW - timedelta(days=day)))
    second, second_statements = asked(2)
    beyond, beyond_statements = asked(7)

    assert (empty.total, empty.items, empty_statements) == (0, [], 1)
    assert (second.total, second.page_count, second_statements) == (5, 3, 1)
    assert [s.lora.id for s in second.items] == ["lora-2", "lora-3"]
    # Past the end: counted, then the last page asked again.
    assert (beyond.total, beyond.page, beyond_statements) == (5, 3, 3)
    assert [s.lora.id for s in beyond.items] == ["lora-4"]


def test_the_gallery_counts_only_shown_images_as_pictures(engine, add_lora, add_images):
    """A LoRA whose only images are hidden goes with the LoRAs without images."""
    add_lora("hidden-only", created_at=to_iso(NOW - timedelta(days=2)))
    add_lora("pictures", created_at=to_iso(NOW - timedelta(days=3)))
    add_lora("newest-empty", created_at=to_iso(NOW - timedelta(days=1)))
    add_images("hidden-only", 1)
    add_images("pictures", 1)
    hide(engine, "hidden-only-img-0000")

    with session_scope(engine) as session:
        page = queries.list_lora_page(session=session)

    assert [s.lora.id for s in page.items] == ["pictures", "newest-empty", "hidden-only"]


def test_a_loras_images_are_newest_first_and_paged(engine, add_lora, add_images):
    lora = add_lora("paged")
    add_images(lora.id, 30)
    add_images("another", 3)

    with session_scope(engine) as session:
        first = queries.list_lora_images(session=session, lora_id=lora.id, page=1, page_size=24)
        second = queries.list_lora_images(session=session, lora_id=lora.id, page=2, page_size=24)

    assert (first.total, first.page_count) == (30, 2)
    assert [image.prompt for image in first.items[:2]] == ["prompt 29", "prompt 28"]
    assert len(first.items) == 24 and len(second.items) == 6
    assert second.items[-1].prompt == "prompt 0"
    assert {image.lora_training_id for image in first.items + second.items} == {"paged"}


@pytest.mark.parametrize(("asked", "served"), [(0, 1), (-3, 1), (99, 2)])
def test_a_page_out_of_range_is_clamped(engine, add_lora, asked, served, add_images):
    lora = add_lora("clamped")
    add_images(lora.id, 30)

    with session_scope(engine) as session:
        page = queries.list_lora_images(session=session, lora_id=lora.id, page=asked, page_size=24)

    assert page.page == served
    assert page.items


def test_a_lora_without_images_has_one_empty_page(engine, add_lora):
    lora = add_lora()

    with session_scope(engine) as session:
        page = queries.list_lora_images(session=session, lora_id=lora.id)

    assert (page.items, page.total, page.page, page.page_count) == ([], 0, 1, 1)


@pytest.mark.parametrize("lora_id", ["", None, "no spaces", "../x", "x" * 65, "a'; DROP TABLE"])
def test_a_malformed_id_finds_nothing(engine, add_lora, lora_id):
    add_lora()

    with session_scope(engine) as session:
        assert lookups.get_lora(session=session, lora_id=lora_id) is None


def test_paging_through_a_loras_images_shows_each_once_newest_first(engine, add_lora):
    lora = add_lora("paged")
    with session_scope(engine) as session:
        for number in range(23):  # the original app gave a generation's images one timestamp
            session.add(
                GeneratedImage(
                    id=f"img-{number:02d}", lora_training_id=lora.id, user="ann",
                    prompt=f"prompt {number // 4}", image_url=f"https://cdn.example/{number}.jpg",
                    created_at=to_iso(NOW - timedelta(minutes=100 - number // 4)),
                )
            )  # fmt: skip
        session.commit()

    with session_scope(engine) as session:  # pages 4 and 5 are read from the oldest end
        pages = [
            queries.list_lora_images(session=session, lora_id=lora.id, page=n, page_size=5)
            for n in range(1, 6)
        ]

    assert [len(page.items) for page in pages] == [5, 5, 5, 5, 3]
    shown = [image.id for page in pages for image in page.items]
    assert shown == [f"img-{n:02d}" for n in reversed(range(23))]  # ties: the later row first


def test_every_query_of_the_lora_page_uses_an_index(engine, add_lora):
    lora = add_lora("indexed")

    plans = explain_selects(
        engine,
        lambda session: [
            queries.list_lora_images(session=session, lora_id=lora.id),
            queries.list_loras(session=session),
        ],
    )

    assert len(plans) == 4
    # Whether it was stacked in others' batches: one seek in batch_loras' own index.
    stacked = "SEARCH batch_loras USING COVERING INDEX idx_batch_loras_lora (lora_training_id=?)"
    assert plans[0][1].endswith(stacked) and plans[1][1].endswith(stacked), plans[:2]
    # A page's rows are picked in the index alone (then read by rowid), however deep.
    shown = "COVERING INDEX idx_gen_images_lora_created_shown (lora_training_id=? AND hidden=?)"
    assert shown in plans[0][1] and shown in plans[2][1]
    for _sql, plan in plans:
        steps = plan.split(" | ")
        for index, step in enumerate(steps):
            if "TEMP B-TREE" in step:
                # Only to rank one LoRA's stars (and their images), or to keep the page's
                # own few rows in order once their covers are joined.
                ranked = " | ".join(steps[index - 2 : index])
                page_rows = steps[index - 2] == "SCAN anon_1"
                assert "SEARCH image_favorites USING COVERING INDEX" in ranked or page_rows, plan
        for step in steps:
            if step.startswith("SCAN"):  # only the list of all LoRAs, in index order
                assert step in (
                    "SCAN lora_trainings USING INDEX idx_lora_trainings_created",
                    "SCAN anon_1",  # that list's page, then, to join each cover by id
                    "SCAN CONSTANT ROW",  # a select of subqueries: each one a seek
                ), plan


def test_labels_name_loras_by_trigger_word_unless_two_share_one(engine, add_lora):
    add_lora("a", trigger_word="sks")
    add_lora("b", trigger_word="sks")
    add_lora("c", trigger_word="other")

    with session_scope(engine) as session:
        names = queries.lora_names(session=session)

    assert queries.unique_labels(names) == {"a": "sks (a)", "b": "sks (b)", "c": "other"}


def test_the_image_count_key_changes_with_each_new_image_and_each_hide(
    engine, add_lora, add_images
):
    add_lora("keyed")
    with session_scope(engine) as session:
        empty = queries.image_count_key(session=session, lora_id="keyed")
        assert empty == (None, 0, 0, 0)  # newest, hidden; stacked in others' batches: none
        assert queries.count_lora_images(session=session, lora_id="keyed") == 0
    add_images("keyed", 3)

    with session_scope(engine) as session:
        three = queries.image_count_key(session=session, lora_id="keyed")
        assert three[0][1] == "keyed-img-0002"
        assert queries.count_lora_images(session=session, lora_id="keyed") == 3
        page = queries.list_lora_images(session=session, lora_id="keyed", total=3)
        assert page.items[0].id == three[0][1]
    hide(engine, "keyed-img-0000")
    with session_scope(engine) as session:
        hidden_one = queries.image_count_key(session=session, lora_id="keyed")
        assert hidden_one == (three[0], 1, 0, 0)
        assert queries.count_lora_images(session=session, lora_id="keyed") == 2
    # Showing it again and hiding another leaves the count, and the key, as they were.
    hide(engine, "keyed-img-0000", hidden=False)
    hide(engine, "keyed-img-0001")
    with session_scope(engine) as session:
        assert queries.image_count_key(session=session, lora_id="keyed") == hidden_one
        assert queries.count_lora_images(session=session, lora_id="keyed") == 2


def test_the_image_count_key_is_index_seeks_in_one_statement(engine, add_lora, add_images):
    add_lora("keyed")
    add_images("keyed", 30)

    [(_sql, plan)] = explain_selects(
        engine, lambda session: queries.image_count_key(session=session, lora_id="keyed")
    )

    assert "COVERING INDEX idx_gen_images_lora_created (lora_training_id=?)" in plan, plan
    assert "COVERING INDEX idx_gen_images_lora_hidden (lora_training_id=?" in plan, plan
    # The batches it was stacked in, and their images: index seeks, no scan.
    assert "COVERING INDEX idx_batch_loras_lora (lora_training_id=?)" in plan, plan
    assert "SCAN generated_images" not in plan, plan


def test_the_lora_pages_header_is_one_statement_with_the_same_count_key(
    engine, add_lora, add_images
):
    """The LoRA, its scorecard and its image count's key: one round trip to a libSQL
    server instead of three, and the key `image_count_key` reads on its own."""
    add_lora("keyed")
    add_lora("bystander")
    add_images("keyed", 3)
    add_images("bystander", 2)
    hide(engine, "keyed-img-0001")

    [(_sql, plan)] = explain_selects(
        engine, lambda session: views.lora_view(session=session, lora_id="keyed")
    )
    with session_scope(engine) as session:
        view = views.lora_view(session=session, lora_id="keyed")
        key = queries.image_count_key(session=session, lora_id="keyed")
        empty = views.lora_view(session=session, lora_id="nobody")

    assert view is not None and view.lora.id == "keyed"
    assert view.count_key == key == (key[0], 1, 0, 0) and key[0][1] == "keyed-img-0002"
    assert "SCAN generated_images" not in plan and "SCAN lora_trainings" not in plan, plan
    assert empty is None


def test_an_image_is_found_only_on_its_own_lora(engine):
    with session_scope(engine) as session:
        session.add(image(1, batch="b1"))
        session.commit()

    with session_scope(engine) as session:
        assert queries.get_image(session=session, lora_id="l", image_id="i1").id == "i1"
        for lora_id, image_id in (("other", "i1"), ("l", "nope"), ("l", ""), ("l", "x" * 300)):
            assert queries.get_image(session=session, lora_id=lora_id, image_id=image_id) is None


def test_the_batch_of_an_image_is_its_whole_generation(engine):
    rows = [
        image(1, batch="b1"), image(2, batch="b1"), image(3, batch="b2"),
        # the original app's: one click is the same user, prompt and second
        image(4, batch=None, prompt="old", second=5),
        image(5, batch=None, prompt="old", second=5),
        image(6, batch=None, prompt="old", second=6),
        image(7, batch=None, prompt="other", second=5),
    ]  # fmt: skip
    with session_scope(engine) as session:
        session.add_all(rows)
        session.commit()

    with session_scope(engine) as session:
        ours = queries.batch_of(session=session, image=session.get(GeneratedImage, "i2"))
        legacy = queries.batch_of(session=session, image=session.get(GeneratedImage, "i5"))

    assert [item.id for item in ours] == ["i1", "i2"]
    assert [item.id for item in legacy] == ["i4", "i5"]


def test_each_loras_latest_images_for_one_prompt_come_from_its_index(engine):
    rows = [
        GeneratedImage(
            id=f"{lora}-{number}", lora_training_id=lora, user="ann", prompt=prompt,
            image_url=f"https://cdn.example/{lora}/{number}.jpg", nsfw=number == 5,
            created_at=f"2026-11-0{1 + number // 4}T10:00:00.00{number % 4}Z",
        )
        for lora, prompt in (("a", "a red fox"), ("b", "a red fox"), ("c", "a blue fox"))
        for number in range(6)
    ]  # fmt: skip
    with session_scope(engine) as session:
        session.add_all(rows)
        session.commit()

    plans = explain_selects(
        engine,
        lambda session: queries.latest_for_prompt(
            session=session, lora_ids=["a", "b", "c"], prompt="a red fox"
        ),
    )
    with session_scope(engine) as session:
        latest = queries.latest_for_prompt(
            session=session, lora_ids=["a", "b", "c"], prompt="a red fox"
        )

    assert [image.id for image in latest["a"]] == ["a-4", "a-3", "a-2", "a-1"]  # a-5: flagged
    assert len(latest["b"]) == 4 and latest["c"] == []
    index = "idx_gen_images_lora_prompt_shown (lora_training_id=? AND prompt=? AND hidden=?)"
    assert all(index in plan for _sql, plan in plans), plans


def test_hidden_images_leave_every_gallery_but_not_history(engine, add_lora, add_images):
    add_lora("l")
    add_images("l", 3)  # l-img-0002 is the newest
    star(engine, "ann", "l-img-0002")
    hide(engine, "l-img-0002")

    with session_scope(engine) as session:
        [summary] = queries.list_loras(session=session)
        page = queries.list_lora_images(session=session, lora_id="l")
        starred = favorites.list_starred_images(session=session, user="ann", lora_id="l")
        for_prompt = queries.latest_for_prompt(session=session, lora_ids=["l"], prompt="prompt 2")
        assert session.get(GeneratedImage, "l-img-0002") is not None  # kept, for History

    assert (summary.image_count, summary.cover_url) == (2, "https://cdn.example/l/1.jpg")
    assert (page.total, [i.id for i in page.items]) == (2, ["l-img-0001", "l-img-0000"])
    assert (starred.total, starred.items, for_prompt["l"]) == (0, [], [])

    hide(engine, "l-img-0002", hidden=False)
    with session_scope(engine) as session:
        assert queries.count_lora_images(session=session, lora_id="l") == 3
        assert session.get(GeneratedImage, "l-img-0002").hidden is None  # NULL, never false


def test_a_page_of_a_lora_stacked_in_others_batches_walks_its_own_index_in_order(engine, add_lora):
    from lora_core.data.models import BatchLora

    add_lora("stacked")
    with session_scope(engine) as session:
        session.add(BatchLora(batch_id="b", position=1, lora_training_id="stacked", lora_scale=1))
        session.commit()

    plans = explain_selects(
        engine,
        lambda session: queries.list_lora_images(
            session=session, lora_id="stacked", page=3, total=100
        ),
    )

    [(_, exists_plan), (_, page_plan)] = plans
    assert "idx_batch_loras_lora (lora_training_id=?)" in exists_plan
    own = "CO-ROUTINE anon_2 | SEARCH generated_images USING COVERING INDEX idx_gen_images_lora_"
    assert own + "created_shown (lora_training_id=? AND hidden=?) | SCAN anon_2" in page_plan
    assert "SCAN generated_images" not in page_plan


def add_batches_of_every_kind(engine) -> None:
    """LoRA "l"'s images, two of each batch: a plain batch, two cells of a sweep, a batch
    with "other" added at 0.6 (its own scale 1.1), and one image of the original app (no
    batch); "other" has a sweep's cell of its own, a bystander."""
    from lora_core.data.models import BatchLora, GenerationBatch

    batches = {
        "plain": ("l", None, 0.8),
        "cell-1": ("l", "sweep-1", 0.5),
        "cell-2": ("l", "sweep-1", 1.0),
        "stacked": ("l", None, 1.1),
        "bystander": ("other", "sweep-2", 0.7),
    }
    with session_scope(engine) as session:
        for number, (batch_id, (lora_id, sweep_id, scale)) in enumerate(batches.items()):
            at = to_iso(NOW - timedelta(minutes=10 - number))
            session.add(
                GenerationBatch(
                    id=batch_id, lora_training_id=lora_id, user="ann", prompt=batch_id,
                    status="succeeded", created_at=at, sweep_id=sweep_id, lora_scale=scale,
                )
            )  # fmt: skip
            for index in range(2):
                session.add(stored_image(f"{batch_id}-{index}", lora_id, batch_id, at))
        session.add(stored_image("legacy", "l", None, to_iso(NOW - timedelta(hours=1))))
        session.add(
            BatchLora(batch_id="stacked", position=1, lora_training_id="other", lora_scale=0.6)
        )
        session.commit()


def stored_image(image_id: str, lora_id: str, batch_id: str | None, at: str) -> GeneratedImage:
    return GeneratedImage(
        id=image_id, lora_training_id=lora_id, user="ann", prompt="p",
        image_url=f"https://cdn.example/{image_id}.jpg", created_at=at, batch_id=batch_id,
    )  # fmt: skip


def test_a_page_of_images_comes_with_its_batches_facts_in_one_statement(engine, add_lora):
    add_lora("l")
    add_lora("other")
    add_batches_of_every_kind(engine)

    with session_scope(engine) as session:
        alone = queries.list_lora_images(session=session, lora_id="l", page_size=4)
    found: list[tuple[queries.Page[GeneratedImage], dict[str, queries.BatchFacts]]] = []
    plans = explain_selects(
        engine,
        lambda session: found.append(
            queries.list_lora_images_with_batches(
                session=session, lora_id="l", page=2, page_size=4, total=9, stacked=False
            )
        ),
    )
    with session_scope(engine) as session:
        first, first_facts = queries.list_lora_images_with_batches(
            session=session, lora_id="l", page_size=4
        )
    [(second, second_facts)] = found

    assert [i.id for i in first.items] == [i.id for i in alone.items]  # the same page
    assert [i.id for i in first.items] == ["stacked-1", "stacked-0", "cell-2-1", "cell-2-0"]
    assert first_facts == {
        "stacked": queries.BatchFacts(sweep_id=None, first_scale=1.1, stacked=True),
        "cell-2": queries.BatchFacts(sweep_id="sweep-1", first_scale=1.0, stacked=False),
    }
    assert [i.id for i in second.items] == ["cell-1-1", "cell-1-0", "plain-1", "plain-0"]
    assert second_facts == {
        "cell-1": queries.BatchFacts(sweep_id="sweep-1", first_scale=0.5, stacked=False),
        "plain": queries.BatchFacts(sweep_id=None, first_scale=0.8, stacked=False),
    }
    [(_sql, plan)] = plans  # images and batches together
    assert "SEARCH generation_batches USING INDEX" in plan
    assert "SCAN generation_batches" not in plan and "SCAN batch_loras" not in plan


def test_the_original_apps_images_have_no_batch_facts(engine, add_lora):
    add_lora("l")
    add_lora("other")
    add_batches_of_every_kind(engine)

    with session_scope(engine) as session:
        last, facts = queries.list_lora_images_with_batches(
            session=session, lora_id="l", page=3, page_size=4
        )
        asked = queries.batch_facts(session=session, batch_ids=["bystander", "gone", "plain"])

    assert [i.id for i in last.items] == ["legacy"] and facts == {}
    assert asked == {  # an unknown id is left out
        "bystander": queries.BatchFacts(sweep_id="sweep-2", first_scale=0.7, stacked=False),
        "plain": queries.BatchFacts(sweep_id=None, first_scale=0.8, stacked=False),
    }


def test_the_lora_pages_images_come_with_their_groups_notes(engine, add_lora):
    add_lora("l", trigger_word="ink")
    add_lora("other", trigger_word="wtrclr")
    add_batches_of_every_kind(engine)
    star(engine, "ann", "cell-1-0")
    star(engine, "ann", "stacked-1")

    def shown(session, **asked):
        return views.lora_images(
            session=session, lora_id="l", page=1, page_size=9, total=9, stacked=False, **asked
        )

    with session_scope(engine) as session:
        everyone = shown(session)
        starred = shown(session, starred_by="ann")
        on_other = views.lora_images(
            session=session, lora_id="other", page=1, page_size=9, total=4, stacked=True
        )
    quiet = explain_selects(
        engine, lambda session: views.lora_images(
            session=session, lora_id="l", page=2, page_size=4, total=9, stacked=False
        ),
    )  # fmt: skip

    assert len(everyone.images.items) == 9
    assert everyone.notes.sweeps == {"cell-1": "sweep-1", "cell-2": "sweep-1"}
    assert everyone.notes.marks == {"stacked": "with wtrclr at 0.6"}
    assert [i.id for i in starred.images.items] == ["stacked-1", "cell-1-0"]
    assert starred.notes.sweeps == {"cell-1": "sweep-1"}
    assert starred.notes.marks == {"stacked": "with wtrclr at 0.6"}
    assert {i.id for i in on_other.images.items} == {
        "stacked-0", "stacked-1", "bystander-0", "bystander-1"
    }  # fmt: skip
    assert on_other.notes.marks == {"stacked": "with ink at 1.1"}
    assert on_other.notes.sweeps == {"bystander": "sweep-2"}
    assert len(quiet) == 1  # nothing stacked on that page: one statement in all
