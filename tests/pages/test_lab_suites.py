"""The Lab's evaluation suites, as AppTest renders them: made, refused, changed, copied and
run on a LoRA with the baseline (the offline preview generator draws)."""

from __future__ import annotations

import json

from sqlalchemy import select

from lora_core.data.db import session_scope
from lora_core.data.models import GenerationBatch, Suite, Sweep
from lora_core.generation.recipe import PLAN
from lora_core.identity import Identity
from lora_core.lab import suites
from tests.conftest import open_with_query

LAB = "app_pages/lab.py"


def stored_suites(engine) -> list[Suite]:
    with session_scope(engine) as session:
        return list(session.scalars(select(Suite).order_by(Suite.created_at)))


def saved_suite(engine, user: str = "guest", name: str = "Two prompts") -> str:
    spec = suites.parse(
        prompts_text="{trigger} poster of a fox\na lighthouse", seeds_text="7", recipe=PLAN
    )
    return suites.save(engine=engine, who=Identity(user=user), name=name, spec=spec)


def test_a_suite_is_made_from_the_form_and_a_bad_one_is_refused(open_app, engine):
    at = open_with_query(open_app, LAB)
    at.text_input(key="suite_name_new").set_value("Portraits")
    at.text_area(key="suite_prompts_new").set_value("a <b>fox</b>\n\n{trigger} at dusk")
    at.text_input(key="suite_seeds_new").set_value("seven")
    at.button(key="FormSubmitter:suite_form_new-Save the suite").click().run()

    assert "seed" in at.warning[0].value.lower()
    assert stored_suites(engine) == []

    at.text_input(key="suite_seeds_new").set_value("1-3")
    at.button(key="FormSubmitter:suite_form_new-Save the suite").click().run()

    assert not at.exception
    [suite] = stored_suites(engine)
    assert (suite.name, suite.user) == ("Portraits", "guest")
    assert json.loads(suite.prompts) == ["a <b>fox</b>", "{trigger} at dusk"]
    assert json.loads(suite.seeds) == ["1", "2", "3"]
    assert "a <b>fox</b>" in at.code[0].value  # literal, as stored


def test_only_its_author_may_change_a_suite_anyone_may_copy_it(open_app, engine):
    theirs = saved_suite(engine, user="bob", name="Bob's suite")
    at = open_with_query(open_app, LAB)

    keys = [button.key for button in at.button]
    assert f"suite_change_{theirs}" not in keys and f"suite_copy_{theirs}" in keys

    at.button(key=f"suite_copy_{theirs}").click().run()
    copy = next(s for s in stored_suites(engine) if s.id != theirs)
    assert (copy.name, copy.user) == ("Copy of Bob's suite", "guest")
    at.text_input(key=f"suite_name_{copy.id}").set_value("Mine now")
    at.button(key=f"FormSubmitter:suite_form_{copy.id}-Save the suite").click().run()

    names = {s.id: s.name for s in stored_suites(engine)}
    assert names == {theirs: "Bob's suite", copy.id: "Mine now"}


def test_a_run_from_a_loras_link_starts_a_sweep_of_the_suite(open_app, engine, add_lora):
    add_lora("neon-id", trigger_word="neonword")
    suite_id = saved_suite(engine)

    at = open_with_query(open_app, LAB, suite_lora="neon-id")

    assert at.subheader[0].value == "Evaluation suites"  # first, from a LoRA's link
    assert at.multiselect(key=f"suite_loras_{suite_id}").value == ["neon-id"]
    assert "4 images = 1 generation" in " ".join(c.value for c in at.caption)
    at.button(key=f"suite_run_{suite_id}").click().run()

    assert not at.exception
    with session_scope(engine) as session:
        [sweep] = session.scalars(select(Sweep)).all()
        cells = session.scalars(select(GenerationBatch)).all()
    assert sweep.suite_id == suite_id and at.query_params["sweep"] == sweep.id
    assert sorted({cell.lora_training_id for cell in cells}) == ["neon-id", "none"]
    assert len(cells) == 4  # 2 prompts × 1 seed × (the LoRA and the baseline)


def test_a_second_scale_adds_its_images_to_the_cost(open_app, engine, add_lora):
    add_lora("neon-id", trigger_word="neonword")
    suite_id = saved_suite(engine)
    at = open_with_query(open_app, LAB, suite_lora="neon-id")

    at.number_input(key=f"suite_second_{suite_id}").set_value(0.5).run()

    assert not at.exception
    assert "6 images = 2 generations" in " ".join(c.value for c in at.caption)
    at.number_input(key=f"suite_second_{suite_id}").set_value(1.5).run()  # the suite's own
    assert "not the suite" in at.warning[0].value and "own" in at.warning[0].value
    assert f"suite_run_{suite_id}" not in [button.key for button in at.button]


def test_a_run_is_set_beside_another_run_of_its_suite(
    open_app, engine, add_lora, database, tmp_path, fake_fal
):
    from tests.support.studios import studio_for

    add_lora("v1", trigger_word="oldword", weights_url="https://weights.example/1.bin")
    add_lora("v2", trigger_word="newword", weights_url="https://weights.example/2.bin")
    suite_id = saved_suite(engine)
    studio = studio_for(database, tmp_path / "runs")
    try:
        runs = []
        for lora in ("v1", "v2"):
            sweep_id, done = studio.run_suite(
                user="guest", suite_id=suite_id, lora_ids=[lora], baseline=False
            )
            assert done.wait(30)
            runs.append(sweep_id)
    finally:
        studio.close()
    old, new = runs
    with session_scope(engine) as session:  # one cell of each run failed
        for run in runs:
            cell = session.scalars(select(GenerationBatch).where(GenerationBatch.sweep_id == run))
            cell.first().status = "failed"
        session.commit()

    at = open_with_query(open_app, LAB, sweep=new)
    assert len([b for b in at.button if (b.key or "").startswith("retry_")]) == 1  # the run's own
    options = at.selectbox(key="sweep_beside").options
    assert options[0] == "None" and options[1].startswith("oldword · ") and len(options) == 2
    at.selectbox(key="sweep_beside").set_value(old).run()

    assert not at.exception
    assert at.query_params["beside"] == old
    title = at.subheader[0].value.replace("\\", "")  # as markdown escapes it
    assert title == "Suite “Two prompts” on newword, beside its run on oldword"
    assert "sweep_zip" not in [b.key for b in at.get("download_button")]  # one sweep's only
    # Retried from a run's own page: beside another, a failed cell may be the other run's.
    assert not [b for b in at.button if (b.key or "").startswith("retry_")]


def test_a_suite_set_to_run_on_new_trainings_says_so(open_app, engine):
    at = open_with_query(open_app, LAB)
    at.text_input(key="suite_name_new").set_value("Every new LoRA")
    at.text_area(key="suite_prompts_new").set_value("{trigger} a fox")
    at.checkbox(key="suite_auto_new").check()
    at.button(key="FormSubmitter:suite_form_new-Save the suite").click().run()

    [suite] = stored_suites(engine)
    assert suite.auto_run_since is not None
    assert "runs on every new training" in " ".join(c.value for c in at.caption)
