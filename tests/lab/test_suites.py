"""Evaluation suites: read, saved, shared and copied; run on LoRAs (and the baseline) as a
sweep through the real fal_client against the fake fal, and paired in an arena."""

from __future__ import annotations

import json

import pytest
from sqlalchemy import select

from lora_core.arena import arenas
from lora_core.data.db import session_scope
from lora_core.data.models import ArenaPair, GenerationBatch, Suite, Sweep
from lora_core.errors import InvalidSweep, NotAllowed, QuotaExceeded
from lora_core.generation.recipe import NO_LORA, Recipe, StackedLora
from lora_core.identity import Identity
from lora_core.lab import suites, views
from tests.support.studios import studio_for

pytestmark = pytest.mark.both_backends

ANN, BOB = Identity(user="ann"), Identity(user="bob")
ADMIN = Identity(user="root", is_admin=True)
SETTINGS = Recipe(lora_scale=0.8, steps=20, guidance=4.0, image_size="square")


def spec(prompts="{trigger} poster of a fox\na lighthouse", seeds="7, 8"):
    return suites.parse(prompts_text=prompts, seeds_text=seeds, recipe=SETTINGS)


@pytest.fixture
def studio(database, tmp_path, engine):
    built = studio_for(database, tmp_path, sweep_max_cells=16)
    yield built
    built.close()


def test_prompts_are_read_one_a_line_and_seeds_as_a_list_or_range():
    read = spec("  a fox \n\n a fox\n{trigger} at dusk\n", "1-3")

    assert read.prompts == ("a fox", "{trigger} at dusk")
    assert read.seeds == (1, 2, 3) and read.cases == 6
    assert read.recipe == SETTINGS


@pytest.mark.parametrize(
    ("prompts", "seeds", "message"),
    [("", "1", "at least one prompt"), ("\n".join(f"p{n}" for n in range(13)), "1", "at most 12"),
     ("x" * 501, "1", "Prompt 1 is longer"), ("a", "", "seed"), ("a", "1-9", "at most 8 seeds"),
     ("\n".join(f"p{n}" for n in range(9)), "1-4", "36 prompts × seeds are too many")],
)  # fmt: skip
def test_a_bad_suite_says_what_is_wrong(prompts, seeds, message):
    with pytest.raises(InvalidSweep, match=message):
        spec(prompts, seeds)


def test_a_suite_is_shared_changed_by_its_author_or_an_admin_and_copied(engine):
    suite_id = suites.save(engine=engine, who=ANN, name="Portraits", spec=spec())
    other = suites.save(engine=engine, who=BOB, name="Bob's", spec=spec("a cat", "1"))

    with pytest.raises(NotAllowed):
        suites.save(engine=engine, who=BOB, name="Mine now", spec=spec(), suite_id=suite_id)
    suites.save(engine=engine, who=ADMIN, name="Portraits v2", spec=spec("a dog", "3"),
                suite_id=suite_id)  # fmt: skip
    copied = suites.copy(engine=engine, who=BOB, suite_id=suite_id)

    with session_scope(engine) as session:
        rows = {suite.id: suite for suite in suites.list_suites(session=session)}
    assert (rows[suite_id].name, rows[suite_id].user) == ("Portraits v2", "ann")
    assert json.loads(rows[suite_id].prompts) == ["a dog"] and json.loads(rows[suite_id].seeds) == [
        "3"
    ]
    assert (rows[copied].name, rows[copied].user) == ("Copy of Portraits v2", "bob")
    assert rows[other].name == "Bob's"  # a bystander, unchanged
    with pytest.raises(NotAllowed):
        suites.save(engine=engine, who=Identity(user=None), name="x", spec=spec())


def test_a_run_is_a_sweep_of_its_prompts_and_seeds_on_each_lora_and_the_baseline(
    studio, engine, add_lora, fake_fal
):
    neon = add_lora("neon", trigger_word="neonword", weights_url="https://weights.example/n.bin")
    ink = add_lora("ink", trigger_word="inkword", weights_url="https://weights.example/i.bin")
    suite_id = suites.save(engine=engine, who=ANN, name="Two prompts", spec=spec())

    sweep_id, done = studio.run_suite(
        user="ann", suite_id=suite_id, lora_ids=[neon.id, ink.id], baseline=True
    )
    assert done.wait(30)

    def lora_of(body: dict) -> tuple[str | None, float | None]:
        return (body["loras"][0]["path"], body["loras"][0]["scale"]) if body.get("loras") else (
            None, None)  # fmt: skip

    sent = [(s.body["prompt"], s.body["seed"], *lora_of(s.body)) for s in fake_fal.submissions]
    assert len(sent) == 12  # 2 prompts × 2 seeds × 3 arms
    by_neon = {(p, seed) for p, seed, path, _ in sent if path == neon.lora_weights_url}
    assert {(p, seed) for p, seed in by_neon if seed == 7} == {
        ("neonword poster of a fox", 7), ("a lighthouse in the style of neonword", 7)
    }  # fmt: skip
    assert {p for p, _, path, _ in sent if path is None} == {
        "neonword poster of a fox", "a lighthouse in the style of neonword"
    }  # the baseline gets the first LoRA's words, no weights  # fmt: skip
    assert {scale for *_, scale in sent if scale is not None} == {0.8}
    with session_scope(engine) as session:
        sweep = session.get(Sweep, sweep_id)
        view = views.sweep_view(session=session, sweep_id=sweep_id)
        cells = session.scalars(
            select(GenerationBatch).where(GenerationBatch.sweep_id == sweep_id)
        ).all()
    assert sweep.suite_id == suite_id
    assert view.title == "Suite “Two prompts” on neonword"
    assert view.x.labels == ("neonword", "inkword", "no LoRA") or len(view.x.values) == 3
    assert view.y.labels == (
        "{trigger} poster of a fox · seed 7", "{trigger} poster of a fox · seed 8",
        "a lighthouse · seed 7", "a lighthouse · seed 8",
    )  # fmt: skip
    assert {cell.status for cell in cells} == {"succeeded"} and len(cells) == 12

    arena_id = arenas.create_arena(engine=engine, user="ann", name="run", sweep_ids=[sweep_id])
    with session_scope(engine) as session:
        pairs = session.scalars(select(ArenaPair).where(ArenaPair.arena_id == arena_id)).all()
    assert len(pairs) == 12  # 4 prompt-and-seed cases × 3 pairs of arms


def test_a_run_beyond_the_quota_writes_nothing(studio, engine, add_lora):
    add_lora("neon", trigger_word="neonword")
    suite_id = suites.save(engine=engine, who=ANN, name="Big",
                           spec=spec("\n".join(f"p{n}" for n in range(12)), "1-2"))  # fmt: skip

    with pytest.raises(QuotaExceeded, match="needs 12 generations"):
        studio.run_suite(user="ann", suite_id=suite_id, lora_ids=["neon"], baseline=True)

    with session_scope(engine) as session:
        assert session.scalars(select(Sweep)).all() == []
        assert session.scalars(select(GenerationBatch)).all() == []
        assert len(session.scalars(select(Suite)).all()) == 1


@pytest.mark.parametrize(
    ("loras", "message"), [([], "at least one LoRA"), ([NO_LORA], "at least one LoRA")]
)
def test_a_run_needs_a_lora(loras, message):
    with pytest.raises(InvalidSweep, match=message):
        suites.run_plan(spec(), lora_ids=loras, baseline=True)


def test_a_run_over_the_cell_limit_is_refused_before_anything():
    big = spec("\n".join(f"p{n}" for n in range(8)), "1-4")  # 32 cases: two arms at most

    assert suites.run_plan(big, lora_ids=["a"], baseline=True).cells == 64
    with pytest.raises(InvalidSweep, match=r"at most 64\. Pick fewer LoRAs"):
        suites.run_plan(big, lora_ids=["a", "b"], baseline=True)


def test_a_second_scale_runs_each_lora_at_both_and_the_baseline_once(
    studio, engine, add_lora, fake_fal
):
    add_lora("neon", trigger_word="neonword", weights_url="https://weights.example/n.bin")
    suite_id = suites.save(engine=engine, who=ANN, name="Scales", spec=spec("a fox", "7"))

    sweep_id, done = studio.run_suite(
        user="ann", suite_id=suite_id, lora_ids=["neon"], baseline=True, second_scale=1.25
    )
    assert done.wait(30)

    sent = sorted(
        (s.body["loras"][0]["scale"] if s.body.get("loras") else -1) for s in fake_fal.submissions
    )
    assert sent == [-1, 0.8, 1.25]  # the baseline once, the LoRA at the suite's and at 1.25
    with session_scope(engine) as session:
        view = views.sweep_view(session=session, sweep_id=sweep_id)
    assert view.x_labels == ("neonword · scale 0.8", "neonword · scale 1.25", "no LoRA")
    arena_id = arenas.create_arena(engine=engine, user="ann", name="s", sweep_ids=[sweep_id])
    with session_scope(engine) as session:
        assert (
            len(session.scalars(select(ArenaPair).where(ArenaPair.arena_id == arena_id)).all()) == 3
        )


def test_a_run_with_a_lora_stacked_on_each_sends_it_with_every_cell(
    studio, engine, add_lora, fake_fal, tmp_path
):
    add_lora("neon", trigger_word="neonword", weights_url="https://weights.example/n.bin")
    add_lora("house", trigger_word="housestyle", weights_url="https://weights.example/h.bin")
    suite_id = suites.save(engine=engine, who=ANN, name="Styled", spec=spec("a fox", "7, 8"))

    sweep_id, done = studio.run_suite(
        user="ann", suite_id=suite_id, lora_ids=["neon"], baseline=True,
        stacked=StackedLora("house", 0.5),
    )  # fmt: skip
    assert done.wait(30)

    sent = sorted(
        (tuple((lora["path"], lora["scale"]) for lora in s.body["loras"]), s.body["prompt"])
        for s in fake_fal.submissions
    )
    house = ("https://weights.example/h.bin", 0.5)
    neon = ("https://weights.example/n.bin", 0.8)
    # The baseline: the base model with the stacked LoRA alone, the same words.
    assert sent == [
        ((house,), "a fox in the style of neonword in the style of housestyle"),
        ((house,), "a fox in the style of neonword in the style of housestyle"),
        ((neon, house), "a fox in the style of neonword in the style of housestyle"),
        ((neon, house), "a fox in the style of neonword in the style of housestyle"),
    ]
    with session_scope(engine) as session:
        view = views.sweep_view(session=session, sweep_id=sweep_id)
        base = views.base_recipe(session.get(Sweep, sweep_id))
    assert {cell.recipe.stack for cell in view.cells.values()} == {(StackedLora("house", 0.5),)}
    # The run says so: its title, and its zip's manifest, cell by cell.
    assert view.title == "Suite “Styled” on neonword · with housestyle at 0.5"
    assert base.stack == (StackedLora("house", 0.5),)
    import io
    import zipfile

    from lora_core.lab import sweep_files
    from lora_core.storage import LocalMediaStore

    store = LocalMediaStore(tmp_path / "media", "app/static/media")
    with zipfile.ZipFile(io.BytesIO(sweep_files.archive(view, store=store))) as zipped:
        manifest = json.loads(zipped.read("manifest.json"))
    assert {row["added_loras"] for row in manifest} == {"house:0.5"}
    with pytest.raises(InvalidSweep, match="stacked on itself"):
        suites.run_plan(
            spec("a fox", "7"), lora_ids=["house"], baseline=False,
            stacked=StackedLora("house", 0.5),
        )  # fmt: skip


@pytest.mark.parametrize("second", [0.8, 2.5, -0.5])
def test_a_second_scale_must_differ_and_be_in_range(second):
    with pytest.raises(InvalidSweep, match="second scale"):
        suites.run_plan(spec(), lora_ids=["a"], baseline=True, second_scale=second)


def test_two_runs_of_a_suite_stand_side_by_side_on_their_shared_rows(
    studio, engine, add_lora, fake_fal
):
    add_lora("v1", trigger_word="oldword", weights_url="https://weights.example/1.bin")
    add_lora("v2", trigger_word="newword", weights_url="https://weights.example/2.bin")
    suite_id = suites.save(engine=engine, who=ANN, name="Versions", spec=spec("a fox", "7, 8"))
    other_suite = suites.save(engine=engine, who=ANN, name="Other", spec=spec("a cat", "7, 8"))
    runs = {}
    for lora, suite in (("v1", suite_id), ("v2", suite_id), ("v1", other_suite)):
        sweep_id, done = studio.run_suite(
            user="ann", suite_id=suite, lora_ids=[lora], baseline=False
        )
        assert done.wait(30)
        runs[(lora, suite)] = sweep_id

    with session_scope(engine) as session:
        listed = [run.sweep.id for run in views.runs_of_suite(session=session, suite_id=suite_id)]
        old, new, elsewhere = (
            views.sweep_view(session=session, sweep_id=runs[key])
            for key in (("v1", suite_id), ("v2", suite_id), ("v1", other_suite))
        )

    assert listed == [runs[("v2", suite_id)], runs[("v1", suite_id)]]  # not the other suite's
    both = views.beside(new, old)
    assert both.x_labels == ("newword", "oldword")
    assert both.title == "Suite “Versions” on newword, beside its run on oldword"
    assert {place: cell.lora_id for place, cell in both.cells.items()} == {
        (0, 0): "v2", (0, 1): "v2", (1, 0): "v1", (1, 1): "v1"
    }  # fmt: skip
    assert all(cell.x == x for (x, _), cell in both.cells.items())
    with pytest.raises(InvalidSweep, match="do not share"):
        views.beside(new, elsewhere)


def test_a_suite_runs_once_on_each_new_training_and_never_on_older_or_registered_ones(
    studio, engine, add_lora, fake_fal
):
    from datetime import timedelta

    from lora_core.data.clock import to_iso, utc_now
    from lora_core.data.models import LoraStatus, SuiteAutoRun

    before = to_iso(utc_now() - timedelta(hours=1))
    add_lora("older", trigger_word="older", created_at=before)  # trained before: not owed
    suite_id = suites.save(engine=engine, who=ANN, name="Every new one", spec=spec("a fox", "7"),
                           auto_run=True)  # fmt: skip
    manual = suites.save(engine=engine, who=ANN, name="By hand", spec=spec("a cat", "7"))
    later = to_iso(utc_now() + timedelta(seconds=1))
    add_lora("fresh", trigger_word="freshword", weights_url="https://weights.example/f.bin",
             created_at=later)  # fmt: skip
    add_lora("busy", trigger_word="busy", status=LoraStatus.PENDING, created_at=later)
    with session_scope(engine) as session:
        registered = add_lora("registered", trigger_word="reg", created_at=later)
        row = session.get(type(registered), "registered")
        row.request_id = "registered-abc"
        session.commit()

    assert studio.auto_run_suites() == 1
    assert studio.auto_run_suites() == 0  # claimed once, whoever sweeps again

    with session_scope(engine) as session:
        runs = session.scalars(select(SuiteAutoRun)).all()
        sweeps = session.scalars(select(Sweep)).all()
    assert [(r.suite_id, r.lora_training_id, r.note) for r in runs] == [(suite_id, "fresh", None)]
    assert [(s.suite_id, s.lora_training_id, s.user) for s in sweeps] == [
        (suite_id, "fresh", "trainer")  # under its trainer's quota
    ]
    assert runs[0].sweep_id == sweeps[0].id and manual


def test_an_auto_run_the_quota_refuses_is_recorded_not_retried(studio, engine, add_lora):
    from datetime import timedelta

    from lora_core.data.clock import to_iso, utc_now
    from lora_core.data.models import SuiteAutoRun

    suite_id = suites.save(engine=engine, who=ANN, name="Big",
                           spec=spec("\n".join(f"p{n}" for n in range(12)), "1-2"),
                           auto_run=True)  # fmt: skip
    add_lora("fresh", trigger_word="freshword", created_at=to_iso(utc_now() + timedelta(seconds=1)))

    assert studio.auto_run_suites() == 0
    assert studio.auto_run_suites() == 0

    with session_scope(engine) as session:
        [run] = session.scalars(select(SuiteAutoRun)).all()
        assert session.scalars(select(Sweep)).all() == []
    assert (run.suite_id, run.sweep_id) == (suite_id, None) and "needs 12 generations" in run.note


def test_turning_auto_run_off_and_on_again_starts_from_then(engine):
    suite_id = suites.save(engine=engine, who=ANN, name="A", spec=spec(), auto_run=True)
    with session_scope(engine) as session:
        first = session.get(Suite, suite_id).auto_run_since
    suites.save(engine=engine, who=ANN, name="A", spec=spec(), suite_id=suite_id, auto_run=True)
    with session_scope(engine) as session:
        assert session.get(Suite, suite_id).auto_run_since == first  # kept while on
    suites.save(engine=engine, who=ANN, name="A", spec=spec(), suite_id=suite_id)
    with session_scope(engine) as session:
        assert session.get(Suite, suite_id).auto_run_since is None
