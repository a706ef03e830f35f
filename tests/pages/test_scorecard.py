"""A LoRA's scorecard on its page and the gallery's filter by it, as AppTest renders them."""

from __future__ import annotations

from sqlalchemy import update

from lora_core.data.db import session_scope
from lora_core.data.models import LoraScorecard, LoraTraining, Verdict
from lora_core.gallery import scorecards
from lora_core.identity import Identity
from tests.conftest import open_with_query
from tests.support.markup import gallery_titles

LORA_PAGE = "app_pages/lora.py"
GALLERY = "app_pages/gallery.py"


def owned_by_guest(engine, lora_id: str) -> None:
    with session_scope(engine) as session:
        session.execute(update(LoraTraining).where(LoraTraining.id == lora_id).values(user="guest"))
        session.commit()


def test_its_owner_keeps_a_verdict_tags_and_notes_shown_literally(open_app, engine, add_lora):
    add_lora("neon-id", trigger_word="neonword")
    owned_by_guest(engine, "neon-id")
    at = open_with_query(open_app, LORA_PAGE, id="neon-id")

    at.selectbox(key="scorecard_verdict").set_value(Verdict.RECOMMENDED)
    at.text_input(key="scorecard_tags").set_value("Style, portraits")
    at.text_area(key="scorecard_notes").set_value("<b>best</b> at 0.8 *with* neon")
    at.button(key="FormSubmitter:scorecard_neon-id-Save").click().run()

    assert not at.exception
    line = " ".join(c.value for c in at.caption)
    assert "**Recommended** · set by guest" in line and "Tags: style, portraits" in line
    assert "<b>best</b> at 0.8 *with* neon" in [t.value for t in at.text]  # as written
    at.toggle(key="scorecard_history").set_value(True).run()
    assert any("verdict: — → recommended" in c.value for c in at.caption)


def test_someone_elses_lora_shows_the_scorecard_without_its_editor(open_app, engine, add_lora):
    add_lora("neon-id", trigger_word="neonword")
    scorecards.save(engine=engine, who=Identity(user="trainer"), lora_id="neon-id", notes="n",
                    tags=("style",), verdict=Verdict.UNDER_TEST)  # fmt: skip

    at = open_with_query(open_app, LORA_PAGE, id="neon-id")

    assert "**Under test** · set by trainer" in " ".join(c.value for c in at.caption)
    assert "scorecard_verdict" not in [s.key for s in at.selectbox]


def test_the_gallery_shows_the_loras_with_a_verdict_and_a_tag(open_app, engine, add_lora):
    for lora_id in ("neon-id", "ink-id", "clay-id"):
        add_lora(lora_id, trigger_word=lora_id.removesuffix("-id"))
    for lora_id, verdict, tags in (
        ("neon-id", Verdict.RECOMMENDED, ("style",)), ("ink-id", Verdict.RECOMMENDED, ()),
        ("clay-id", Verdict.NOT_RECOMMENDED, ("style",)),
    ):  # fmt: skip
        scorecards.save(engine=engine, who=Identity(user="trainer"), lora_id=lora_id, notes="",
                        tags=tags, verdict=verdict)  # fmt: skip

    at = open_with_query(open_app, GALLERY, verdict="recommended", tag="style")

    assert not at.exception
    assert gallery_titles(at) == ["neon"]
    at.text_input(key="gallery_tag").set_value("nothing-like-it").run()
    assert "No LoRA has that verdict and tag yet." in at.info[0].value
    assert at.query_params["tag"] == "nothing-like-it"


def test_the_dialog_starts_from_the_loras_recommended_settings(open_app, engine, add_lora):
    add_lora("neon-id", trigger_word="neonword")
    scorecards.save(engine=engine, who=Identity(user="trainer"), lora_id="neon-id", notes="",
                    tags=(), verdict=None, recommended_scale=0.8, recommended_steps=20,
                    recommended_guidance=5.0)  # fmt: skip

    at = open_with_query(open_app, LORA_PAGE, id="neon-id")
    assert "Recommended scale 0.8 · 20 steps · guidance 5" in " ".join(c.value for c in at.caption)
    at.button(key="open_generate").click().run()

    def setting(name: str) -> float:
        [slider] = [s for s in at.slider if s.key and s.key.startswith(f"gen_{name}_")]
        return slider.value

    assert (setting("scale"), setting("steps"), setting("guidance")) == (0.8, 20, 5.0)


def test_a_scale_from_a_sweep_becomes_the_recommended_one_in_one_click(open_app, engine, add_lora):
    from tests.support.arenas import Cell, finished_sweep

    add_lora("neon-id", trigger_word="neonword")
    add_lora("ink-id", trigger_word="inkword")  # someone else's: no button for it
    owned_by_guest(engine, "neon-id")
    scorecards.save(engine=engine, who=Identity(user="guest"), lora_id="neon-id",
                    notes="keep me", tags=("style",), verdict=Verdict.UNDER_TEST)  # fmt: skip
    sweep_id, _ = finished_sweep(
        engine, [Cell("neon-id", scale=s) for s in (0.5, 1.0)] + [Cell("ink-id", scale=0.5),
                                                                   Cell("ink-id", scale=1.0)]
    )  # fmt: skip
    at = open_with_query(open_app, "app_pages/lab.py", sweep=sweep_id)

    assert [s.key for s in at.selectbox if s.key.startswith("recommend_")] == ["recommend_neon-id"]
    assert at.selectbox(key="recommend_neon-id").options == [
        "scale 0.5 · 28 steps · guidance 3.5", "scale 1 · 28 steps · guidance 3.5"
    ]  # fmt: skip
    at.selectbox(key="recommend_neon-id").set_value((1.0, 28, 3.5))
    at.button(key="recommend_set_neon-id").click().run()

    assert not at.exception
    with session_scope(engine) as session:
        card = scorecards.Scorecard.of(session.get(LoraScorecard, "neon-id"))
    assert (card.recommended_scale, card.notes, card.tags, card.verdict) == (
        1.0, "keep me", ("style",), Verdict.UNDER_TEST
    )  # fmt: skip
    assert (card.recommended_steps, card.recommended_guidance) == (28, 3.5)
