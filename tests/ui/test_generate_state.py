"""The Generate dialog's state and its transitions, the one place that changes it."""

from __future__ import annotations

from lora_core.errors import GenerationFailed, GenerationPending, InvalidPrompt
from lora_core.generation import recipe
from lora_core.generation.service import BatchOutcome
from ui.generate_state import DialogState, LastBatch, Waiting

OUTCOME = BatchOutcome(batch_id="b1", prompt="a fox", images=[])


def test_opening_starts_fresh_but_keeps_what_the_next_try_starts_from():
    dialog = DialogState()
    dialog.keep(prompt="a fox", made_with=recipe.Recipe(seed=7))
    dialog.succeeded("l1", OUTCOME)
    dialog.failed(InvalidPrompt("too long"))

    dialog.open("l2")

    assert (dialog.open_for, dialog.error, dialog.last, dialog.waiting) == ("l2", None, None, None)
    assert (dialog.saved_prompt, dialog.saved_recipe.seed) == ("a fox", 7)
    assert dialog.take("focus") and not dialog.take("focus")  # once
    assert dialog.round == 1


def test_a_failed_try_keeps_the_last_batch_which_the_dialog_labels_previous():
    dialog = DialogState()
    dialog.succeeded("l1", OUTCOME)

    dialog.trying("x" * 501)
    dialog.failed(InvalidPrompt("The prompt is 501 characters long; the limit is 500."))

    assert dialog.last == LastBatch("l1", OUTCOME) and dialog.error is not None


def test_a_batch_fal_went_quiet_about_is_waited_for_then_answered():
    dialog = DialogState()
    dialog.pending("l1", GenerationPending("quiet", request_id="r", batch_id="b9"))
    assert dialog.waiting == Waiting("l1", "b9")

    dialog.succeeded("l1", OUTCOME)
    assert (dialog.waiting, dialog.error, dialog.last.outcome) == (None, None, OUTCOME)

    dialog.pending("l1", GenerationPending("quiet", batch_id="b10"))
    dialog.waited_in_vain(GenerationFailed("fal failed it"))
    assert dialog.waiting is None and str(dialog.error) == "fal failed it"


def test_a_new_try_forgets_the_last_ones_news_and_a_retry_is_asked_once():
    dialog = DialogState()
    dialog.pending("l1", GenerationPending("quiet", batch_id="b9"))

    dialog.trying("a new idea")
    dialog.ask_retry()

    assert (dialog.error, dialog.waiting, dialog.saved_prompt) == (None, None, "a new idea")
    assert dialog.take("retry") and not dialog.retry


def test_closing_and_a_switch_after_a_callback():
    dialog = DialogState()
    dialog.open("l1")
    dialog.go_to_after("l1")

    assert dialog.take_switch() == "l1" and dialog.take_switch() is None
    dialog.close()
    assert dialog.open_for is None
