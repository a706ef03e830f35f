"""A LoRA's scorecard: who may change it, every change kept, and the gallery's filter."""

from __future__ import annotations

from datetime import timedelta

import pytest
from sqlalchemy import select

from lora_core.data.clock import to_iso
from lora_core.data.db import session_scope
from lora_core.data.models import LoraScorecard, ScorecardChange, Verdict
from lora_core.errors import InvalidSettings, NotAllowed
from lora_core.gallery import queries, scorecards
from lora_core.generation.recipe import PLAN
from lora_core.identity import Identity
from tests.conftest import NOW

pytestmark = pytest.mark.both_backends

OWNER = Identity(user="trainer")
ADMIN = Identity(user="root", is_admin=True)


def card_of(engine, lora_id):
    with session_scope(engine) as session:
        return scorecards.Scorecard.of(session.get(LoraScorecard, lora_id))


def test_the_owner_sets_a_verdict_tags_and_notes_and_each_change_is_kept(engine, add_lora):
    add_lora("neon"), add_lora("ink")
    scorecards.save(engine=engine, who=OWNER, lora_id="ink", notes="bystander", tags=(),
                    verdict=None, now=NOW)  # fmt: skip

    scorecards.save(engine=engine, who=OWNER, lora_id="neon", notes="<b>great</b> at 0.8",
                    tags=("style", "neon"), verdict=Verdict.UNDER_TEST, now=NOW)  # fmt: skip
    scorecards.save(engine=engine, who=ADMIN, lora_id="neon", notes="<b>great</b> at 0.8",
                    tags=("style",), verdict=Verdict.RECOMMENDED,
                    now=NOW + timedelta(minutes=1))  # fmt: skip

    card = card_of(engine, "neon")
    assert (card.notes, card.tags, card.verdict) == (
        "<b>great</b> at 0.8",
        ("style",),
        "recommended",
    )
    assert (card.verdict_by, card.verdict_at) == ("root", to_iso(NOW + timedelta(minutes=1)))
    with session_scope(engine) as session:
        history = scorecards.changes(session=session, lora_id="neon")
    assert {(c.user, c.field, c.old, c.new) for c in history[:2]} == {
        ("root", "tags", "style, neon", "style"),
        ("root", "verdict", "under_test", "recommended"),
    }
    assert {(c.user, c.field, c.new) for c in history[2:]} == {
        ("trainer", "notes", "<b>great</b> at 0.8"), ("trainer", "tags", "style, neon"),
        ("trainer", "verdict", "under_test"),
    }  # fmt: skip
    assert len(history) == 5  # notes, tags, verdict; then tags, verdict
    assert card_of(engine, "ink").notes == "bystander"  # another LoRA's, untouched


def test_only_its_owner_and_admins_may_change_it(engine, add_lora):
    add_lora("neon")

    for who in (Identity(user="bob"), Identity(user=None)):
        with pytest.raises(NotAllowed):
            scorecards.save(engine=engine, who=who, lora_id="neon", notes="mine", tags=(),
                            verdict=Verdict.RECOMMENDED)  # fmt: skip

    with session_scope(engine) as session:
        assert session.scalars(select(LoraScorecard)).all() == []
        assert session.scalars(select(ScorecardChange)).all() == []


@pytest.mark.parametrize(
    ("text", "tags"),
    [(" Style, portrait ,style,, ", ("style", "portrait")), ("", ()), ("a_b, x-y", ("a_b", "x-y"))],
)
def test_tags_are_read_trimmed_lowercase_and_once(text, tags):
    assert scorecards.parse_tags(text) == tags


@pytest.mark.parametrize("text", ['say "hi"', "100%", ", ".join(f"t{n}" for n in range(11))])
def test_a_bad_tag_is_refused_with_a_reason(text):
    with pytest.raises(InvalidSettings):
        scorecards.parse_tags(text)


def test_the_gallery_filters_by_verdict_and_a_whole_tag(engine, add_lora):
    for lora_id in ("neon", "ink", "clay", "none-yet"):
        add_lora(lora_id)
    for lora_id, tags, verdict in (
        ("neon", ("style", "a_b"), Verdict.RECOMMENDED),
        ("ink", ("styles", "axb"), Verdict.RECOMMENDED),
        ("clay", ("style",), Verdict.NOT_RECOMMENDED),
    ):
        scorecards.save(engine=engine, who=OWNER, lora_id=lora_id, notes="", tags=tags,
                        verdict=verdict)  # fmt: skip

    def found(**wanted):
        with session_scope(engine) as session:
            page = queries.list_lora_page(session=session, **wanted)
        return sorted(summary.lora.id for summary in page.items), page.total

    assert found(verdict=Verdict.RECOMMENDED, tag=None) == (["ink", "neon"], 2)
    assert found(verdict=None, tag="style") == (["clay", "neon"], 2)  # not "styles"
    assert found(verdict=Verdict.RECOMMENDED, tag="Style") == (["neon"], 1)
    assert found(verdict=None, tag="a_b") == (["neon"], 1)  # "_" is no wildcard: not "axb"
    assert found(verdict=Verdict.UNDER_TEST, tag=None) == ([], 0)
    assert scorecards.matches(verdict=None, tag="") is None


def test_a_recommended_scale_is_kept_checked_and_what_the_dialog_starts_from(engine, add_lora):

    add_lora("neon"), add_lora("ink")

    with pytest.raises(InvalidSettings, match="between 0 and 2"):
        scorecards.save(engine=engine, who=OWNER, lora_id="neon", notes="", tags=(),
                        verdict=None, recommended_scale=2.5)  # fmt: skip
    scorecards.save(engine=engine, who=OWNER, lora_id="neon", notes="", tags=(), verdict=None,
                    recommended_scale=0.8)  # fmt: skip

    with session_scope(engine) as session:
        neon = scorecards.recommended_recipe(session=session, lora_id="neon")
        ink = scorecards.recommended_recipe(session=session, lora_id="ink")
        history = scorecards.changes(session=session, lora_id="neon")
    assert (neon.lora_scale, neon.steps, ink) == (0.8, PLAN.steps, PLAN)
    assert [(c.field, c.old, c.new) for c in history] == [("recommended scale", None, "0.8")]
    assert card_of(engine, "neon").recommended_scale == 0.8


def test_one_click_sets_only_the_scale_and_only_on_loras_one_may_edit(engine, add_lora):
    add_lora("neon"), add_lora("ink")
    scorecards.save(engine=engine, who=OWNER, lora_id="neon", notes="n", tags=("t",),
                    verdict=Verdict.RECOMMENDED)  # fmt: skip

    scorecards.recommend(engine=engine, who=OWNER, lora_id="neon", scale=0.75)

    card = card_of(engine, "neon")
    assert (card.recommended_scale, card.notes, card.tags, card.verdict) == (
        0.75, "n", ("t",), Verdict.RECOMMENDED
    )  # fmt: skip
    with session_scope(engine) as session:
        mine = scorecards.editable(session=session, who=OWNER, lora_ids=["neon", "ink"])
        theirs = scorecards.editable(session=session, who=Identity(user="bob"), lora_ids=["neon"])
    assert (sorted(mine), theirs) == (["ink", "neon"], {})
    with pytest.raises(NotAllowed):
        scorecards.recommend(engine=engine, who=Identity(user="bob"), lora_id="neon", scale=1)


def test_recommended_settings_are_where_the_dialog_starts_and_are_checked(engine, add_lora):
    add_lora("neon"), add_lora("ink")
    scorecards.save(engine=engine, who=OWNER, lora_id="ink", notes="", tags=(), verdict=None,
                    recommended_steps=12)  # fmt: skip

    scorecards.recommend(engine=engine, who=OWNER, lora_id="neon", scale=0.9, steps=20,
                         guidance=4.5)  # fmt: skip
    scorecards.recommend(engine=engine, who=OWNER, lora_id="neon", scale=1.1)  # the rest kept

    with session_scope(engine) as session:
        neon = scorecards.recommended_recipe(session=session, lora_id="neon")
        ink = scorecards.recommended_recipe(session=session, lora_id="ink")
        fields = {c.field for c in scorecards.changes(session=session, lora_id="neon")}
    assert (neon.lora_scale, neon.steps, neon.guidance) == (1.1, 20, 4.5)
    assert neon.image_size == PLAN.image_size and neon.seed is None
    assert (ink.lora_scale, ink.steps, ink.guidance) == (PLAN.lora_scale, 12, PLAN.guidance)
    assert fields == {"recommended scale", "recommended steps", "recommended guidance"}
    assert card_of(engine, "neon").recommended.text() == "scale 1.1 · 20 steps · guidance 4.5"
    for bad, message in (({"steps": 80}, "number of steps"), ({"guidance": 30.0}, "guidance")):
        with pytest.raises(InvalidSettings, match=f"recommended {message}"):
            scorecards.recommend(engine=engine, who=OWNER, lora_id="neon", scale=1.0, **bad)
    assert card_of(engine, "neon").recommended.steps == 20  # a refused change changes nothing
