"""`lora_core.lab.views`: a sweep grid's places in reading order, each named."""

from __future__ import annotations

from types import SimpleNamespace

from lora_core.lab import views


def test_each_row_label_comes_before_its_places_named_by_column_and_row():
    view = SimpleNamespace(x_labels=("scale 0", "scale 1"), y_labels=("seed 7",), cells={})

    assert list(views.reading_order(view)) == [
        "seed 7",
        ("scale 0 · seed 7", None),
        ("scale 1 · seed 7", None),
    ]


def test_a_label_that_shows_nothing_is_named_by_its_place():
    # A LoRA axis labels its columns by the LoRAs' names, which may be blank.
    view = SimpleNamespace(x_labels=("  ", "neon\nnoir"), y_labels=("\t",), cells={})

    assert [i if isinstance(i, str) else i[0] for i in views.reading_order(view)] == [
        "row 1",
        "column 1 · row 1",
        "neon noir · row 1",
    ]


def test_one_row_has_no_row_label():
    view = SimpleNamespace(x_labels=("scale 0",), y_labels=(), cells={(0, 0): "cell"})

    assert list(views.reading_order(view)) == [("scale 0", "cell")]
