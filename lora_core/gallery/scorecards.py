"""A scorecard per LoRA: what the team learned about it, as A1111's LoRA metadata editor and
Civitai's model pages keep it — notes (plain text, shown literally), tags and a verdict
(recommended / not recommended / under test) with who set it and when.

Its LoRA's owner (who trained or registered it) and admins may change it; every change of a
field is kept with its author and time (`changes`). The gallery filters by verdict and tag
(`matches`).
"""

from __future__ import annotations

import json
import re
import uuid
from dataclasses import dataclass, replace
from datetime import datetime

from sqlalchemy import ColumnElement, Engine, exists, select
from sqlmodel import Session, col

from lora_core.data.clock import to_iso, utc_now
from lora_core.data.db import session_scope
from lora_core.data.models import LoraScorecard, LoraTraining, ScorecardChange, Verdict
from lora_core.errors import InvalidSettings, LoraNotFound, NotAllowed
from lora_core.generation.prompts import clean_template
from lora_core.generation.recipe import GUIDANCE_RANGE, PLAN, SCALE_RANGE, STEPS_RANGE, Recipe
from lora_core.identity import Identity

VERDICT_LABELS = {
    Verdict.RECOMMENDED: "Recommended",
    Verdict.NOT_RECOMMENDED: "Not recommended",
    Verdict.UNDER_TEST: "Under test",
}
MAX_NOTES = 2000
MAX_TAGS = 10
_TAG = re.compile(r"^[\w][\w \-]{0,29}$")  # letters, digits, spaces, - and _: up to 30


@dataclass(frozen=True)
class Recommended:
    """The settings a LoRA's Generate dialog starts from (None: the plan's)."""

    scale: float | None = None
    steps: int | None = None
    guidance: float | None = None

    def check(self) -> Recommended:
        """Itself, or `InvalidSettings` naming the setting out of the app's range."""
        for value, (low, high), what in (
            (self.scale, SCALE_RANGE, "scale"),
            (self.steps, STEPS_RANGE, "number of steps"),
            (self.guidance, GUIDANCE_RANGE, "guidance"),
        ):
            if value is not None and not low <= value <= high:
                raise InvalidSettings(f"A recommended {what} is between {low:g} and {high:g}.")
        return self

    def text(self) -> str:
        """ "scale 0.8 · 20 steps · guidance 4" (only those set)."""
        parts = [
            f"scale {self.scale:g}" if self.scale is not None else "",
            f"{self.steps} steps" if self.steps is not None else "",
            f"guidance {self.guidance:g}" if self.guidance is not None else "",
        ]
        return " · ".join(part for part in parts if part)


@dataclass(frozen=True)
class Scorecard:
    notes: str
    tags: tuple[str, ...]
    verdict: Verdict | None
    verdict_by: str | None
    verdict_at: str | None
    recommended_scale: float | None = None
    prompt_template: str | None = None  # None: the plan's "… in the style of {trigger}"
    recommended_steps: int | None = None
    recommended_guidance: float | None = None

    @property
    def recommended(self) -> Recommended:
        return Recommended(
            self.recommended_scale, self.recommended_steps, self.recommended_guidance
        )

    @classmethod
    def of(cls, row: LoraScorecard | None) -> Scorecard:
        if row is None:
            return EMPTY
        return cls(
            notes=row.notes or "",
            tags=tuple(json.loads(row.tags or "[]")),
            verdict=Verdict(row.verdict) if row.verdict else None,
            verdict_by=row.verdict_by,
            verdict_at=row.verdict_at,
            recommended_scale=row.recommended_scale,
            prompt_template=row.prompt_template,
            recommended_steps=row.recommended_steps,
            recommended_guidance=row.recommended_guidance,
        )


EMPTY = Scorecard(notes="", tags=(), verdict=None, verdict_by=None, verdict_at=None)


def parse_tags(text: str) -> tuple[str, ...]:
    """Tags typed as "style, portrait": trimmed, in lower case, each once; `InvalidSettings`
    for one that is not letters, digits, spaces, - or _ (up to 30), or more than 10."""
    tags = tuple(
        dict.fromkeys(tag.strip().lower() for tag in (text or "").split(",") if tag.strip())
    )
    if bad := [tag for tag in tags if not _TAG.match(tag)]:
        raise InvalidSettings(
            f"The tag “{bad[0]}” is not one: use letters, digits, spaces, - and _ (up to 30)."
        )
    if len(tags) > MAX_TAGS:
        raise InvalidSettings(f"A LoRA has at most {MAX_TAGS} tags.")
    return tags


def may_edit(who: Identity, lora: LoraTraining) -> bool:
    """Its owner (who trained or registered it) and admins."""
    return who.user is not None and (who.is_admin or who.user == lora.user)


def save(
    *,
    engine: Engine,
    who: Identity,
    lora_id: str,
    notes: str,
    tags: tuple[str, ...],
    verdict: Verdict | None,
    recommended_scale: float | None = None,
    prompt_template: str | None = None,
    recommended_steps: int | None = None,
    recommended_guidance: float | None = None,
    now: datetime | None = None,
) -> None:
    """Change the LoRA's scorecard, keeping each changed field's old and new value with its
    author and time; a verdict changed records who set it and when. A prompt template
    applies to generations from then on (each batch keeps the prompt fal got)."""
    prompt_template = clean_template(prompt_template)
    if len(notes or "") > MAX_NOTES:
        raise InvalidSettings(f"Notes have at most {MAX_NOTES} characters.")
    recommended = Recommended(recommended_scale, recommended_steps, recommended_guidance).check()
    moment = to_iso(now or utc_now())
    with session_scope(engine) as session:
        lora = session.get(LoraTraining, lora_id)
        if lora is None:
            raise LoraNotFound("LoRA not found")
        if not may_edit(who, lora):
            raise NotAllowed("Only the LoRA's owner or an admin can change its scorecard.")
        row = session.get(LoraScorecard, lora_id)
        before = Scorecard.of(row)
        if row is None:
            row = LoraScorecard(lora_training_id=lora_id, updated_by=who.user, updated_at=moment)
            session.add(row)
        after = {
            "notes": notes or "", "tags": ", ".join(tags), "verdict": verdict or "",
            "recommended scale": _scale_text(recommended_scale),
            "recommended steps": _scale_text(recommended.steps),
            "recommended guidance": _scale_text(recommended.guidance),
            "prompt template": prompt_template or "",
        }  # fmt: skip
        old = {
            "notes": before.notes, "tags": ", ".join(before.tags), "verdict": before.verdict or "",
            "recommended scale": _scale_text(before.recommended_scale),
            "recommended steps": _scale_text(before.recommended_steps),
            "recommended guidance": _scale_text(before.recommended_guidance),
            "prompt template": before.prompt_template or "",
        }  # fmt: skip
        for field, value in after.items():
            if value != old[field]:
                session.add(
                    ScorecardChange(
                        id=uuid.uuid4().hex, lora_training_id=lora_id, user=who.user,
                        field=field, old=old[field] or None, new=value or None, created_at=moment,
                    )
                )  # fmt: skip
        row.notes = notes or None
        row.recommended_scale = recommended_scale
        row.recommended_steps, row.recommended_guidance = recommended.steps, recommended.guidance
        row.prompt_template = prompt_template
        row.tags = json.dumps(list(tags)) if tags else None
        if (verdict or None) != before.verdict:
            row.verdict = verdict.value if verdict else None
            row.verdict_by, row.verdict_at = (who.user, moment) if verdict else (None, None)
        row.updated_by, row.updated_at = who.user, moment  # type: ignore[assignment]
        session.commit()


def editable(*, session: Session, who: Identity, lora_ids: list[str]) -> dict[str, str]:
    """Of these LoRAs, those whose scorecard `who` may change: id → name."""
    if who.user is None or not lora_ids:
        return {}
    loras = session.scalars(select(LoraTraining).where(col(LoraTraining.id).in_(lora_ids)))
    return {lora.id: lora.name or lora.trigger_word for lora in loras if may_edit(who, lora)}


def recommend(
    *,
    engine: Engine,
    who: Identity,
    lora_id: str,
    scale: float,
    steps: int | None = None,
    guidance: float | None = None,
    now: datetime | None = None,
) -> None:
    """Set the recommended settings in one click (a sweep's cell, a leaderboard's best
    scale): the scale, and steps and guidance when given (else those kept), the rest kept."""
    with session_scope(engine) as session:
        card = Scorecard.of(session.get(LoraScorecard, lora_id))
    save(
        engine=engine, who=who, lora_id=lora_id, notes=card.notes, tags=card.tags,
        verdict=card.verdict, recommended_scale=scale, prompt_template=card.prompt_template,
        recommended_steps=card.recommended_steps if steps is None else steps,
        recommended_guidance=card.recommended_guidance if guidance is None else guidance,
        now=now,
    )  # fmt: skip


def _scale_text(scale: float | None) -> str:
    return "" if scale is None else f"{scale:g}"


def recommended_recipe(*, session: Session, lora_id: str) -> Recipe:
    """What the Generate dialog starts from for this LoRA: the plan's settings with its
    scorecard's recommended ones, where it has some."""
    row = session.execute(
        select(
            LoraScorecard.recommended_scale,
            LoraScorecard.recommended_steps,
            LoraScorecard.recommended_guidance,
        ).where(col(LoraScorecard.lora_training_id) == lora_id)
    ).first()
    if row is None:
        return PLAN
    scale, steps, guidance = row
    return replace(
        PLAN,
        lora_scale=PLAN.lora_scale if scale is None else float(scale),
        steps=PLAN.steps if steps is None else int(steps),
        guidance=PLAN.guidance if guidance is None else float(guidance),
    )


def changes(*, session: Session, lora_id: str, limit: int = 20) -> list[ScorecardChange]:
    """The scorecard's latest changes, newest first."""
    return list(
        session.scalars(
            select(ScorecardChange)
            .where(col(ScorecardChange.lora_training_id) == lora_id)
            .order_by(col(ScorecardChange.created_at).desc(), col(ScorecardChange.id))
            .limit(limit)
        )
    )


def matches(*, verdict: Verdict | None, tag: str | None) -> ColumnElement[bool] | None:
    """The gallery's filter on a LoRA's scorecard (its verdict, one of its tags), as a
    condition on `LoraTraining`; None without either."""
    if verdict is None and not tag:
        return None
    conditions = [col(LoraScorecard.lora_training_id) == col(LoraTraining.id)]
    if verdict is not None:
        conditions.append(col(LoraScorecard.verdict) == verdict.value)
    if tag:
        # Tags are letters, digits, spaces, - and _ (`parse_tags`): no LIKE wildcard but _,
        # escaped here; JSON quotes each, so a whole tag matches.
        escaped = tag.strip().lower().replace("\\", "").replace("_", "\\_")
        conditions.append(col(LoraScorecard.tags).like(f'%"{escaped}"%', escape="\\"))
    return exists().where(*conditions)
