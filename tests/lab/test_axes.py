"""X/Y sweeps planned from typed axes: values, ranges, Prompt S/R, no LoRA, limits, cost."""

from __future__ import annotations

import pytest

from lora_core.errors import InvalidSweep
from lora_core.generation.recipe import Recipe
from lora_core.lab import axes
from lora_core.lab.axes import NO_LORA, Axis

BASE = Recipe(lora_scale=1.0, steps=20, guidance=4.0, image_size="square", seed=1234)


@pytest.mark.parametrize(
    ("typed", "values"),
    [
        ("0, 0.5, 1, 1.5, 2", ("0", "0.5", "1", "1.5", "2")),
        ("0 0.5 1", ("0", "0.5", "1")),
        ("0-2 step 0.5", ("0", "0.5", "1", "1.5", "2")),
        ("0.5 to 1.5 by 0.25", ("0.5", "0.75", "1", "1.25", "1.5")),
        ("0-1 step 0.3", ("0", "0.3", "0.6", "0.9")),  # the end only when a step lands on it
        ("1, 1, 0.5", ("1", "0.5")),  # each value once, in the order typed
    ],
)
def test_scales_are_a_list_or_a_range(typed, values):
    assert axes.scale_axis(typed) == Axis("scale", values)


@pytest.mark.parametrize(
    ("typed", "message"),
    [
        ("", "at least one"),
        ("0, lots", "as a list"),
        ("0-3 step 1", "between 0 and 2"),
        ("2-0 step 0.5", "must go up"),
        ("0-2 step 0", "must go up"),
        ("0-2 step 0.01", "at most 64"),
    ],
)
def test_a_scale_axis_that_cannot_be_read_says_why(typed, message):
    with pytest.raises(InvalidSweep, match=message):
        axes.scale_axis(typed)


def test_seeds_are_whole_numbers_and_a_range_steps_by_one():
    assert axes.seed_axis("1-4").values == ("1", "2", "3", "4")
    assert axes.seed_axis("42, 18446744073709551557").values[1] == "18446744073709551557"
    with pytest.raises(InvalidSweep, match="whole numbers"):
        axes.seed_axis("1.5")


def test_prompt_search_and_replace_starts_from_a_word_of_the_prompt():
    axis = axes.prompt_axis("a red fox in the snow", "red, blue, golden")

    cells = axes.plan(prompt="a red fox in the snow", lora_id="fox", base=BASE, x=axis)

    assert [cell.prompt for cell in cells] == [
        "a red fox in the snow", "a blue fox in the snow", "a golden fox in the snow"
    ]  # fmt: skip
    with pytest.raises(InvalidSweep, match="“green” is not in the prompt"):
        axes.prompt_axis("a red fox", "green, blue")


def test_a_two_axis_sweep_holds_everything_else_fixed_row_by_row():
    cells = axes.plan(
        prompt="a lighthouse",
        lora_id="wtr",
        base=BASE,
        x=axes.scale_axis("0, 1, 2"),
        y=axes.lora_axis(["wtr", NO_LORA]),
    )

    assert [(cell.x, cell.y) for cell in cells] == [(0, 0), (1, 0), (2, 0), (0, 1), (1, 1), (2, 1)]
    assert [cell.recipe.lora_scale for cell in cells] == [0, 1, 2, 0, 1, 2]
    assert [cell.lora_id for cell in cells] == ["wtr"] * 3 + [None] * 3  # None: the base model
    assert {cell.recipe.seed for cell in cells} == {1234}  # the seed held fixed
    assert {
        (cell.recipe.steps, cell.recipe.guidance, cell.recipe.image_size) for cell in cells
    } == {(20, 4.0, "square")}
    assert {cell.prompt for cell in cells} == {"a lighthouse"}


def test_a_seed_axis_varies_the_seed_and_nothing_else():
    cells = axes.plan(prompt="p", lora_id="l", base=BASE, x=axes.seed_axis("7, 8"))

    assert [cell.recipe.seed for cell in cells] == [7, 8]
    assert {cell.recipe.lora_scale for cell in cells} == {1.0}


def test_limits_a_fixed_seed_and_different_axes():
    with pytest.raises(InvalidSweep, match="17 cells; at most 16"):
        axes.plan(prompt="p", lora_id="l", base=BASE, x=axes.seed_axis("1-17"))
    with pytest.raises(InvalidSweep, match="holds its seed fixed"):
        axes.plan(prompt="p", lora_id="l", base=BASE.with_seed(None), x=axes.seed_axis("1"))
    with pytest.raises(InvalidSweep, match="different things"):
        axes.plan(prompt="p", lora_id="l", base=BASE, x=axes.seed_axis("1"),
                  y=axes.seed_axis("2"))  # fmt: skip
    assert len(axes.plan(prompt="p", lora_id="l", base=BASE, x=axes.seed_axis("1-4"),
                         y=axes.scale_axis("0-1.5 step 0.5"), max_cells=16)) == 16  # fmt: skip


@pytest.mark.parametrize(
    ("cells", "text"),
    [(1, "1 image = 1 generation"), (4, "4 images = 1 generation"),
     (5, "5 images = 2 generations"), (12, "12 images = 3 generations")],
)  # fmt: skip
def test_the_cost_in_quota_is_four_images_to_a_generation(cells, text):
    assert axes.cost_text(cells) == text


def test_labels_say_what_each_row_and_column_is():
    assert axes.scale_axis("0, 1.5").labels == ("scale 0", "scale 1.5")
    assert axes.lora_axis(["wtr", NO_LORA]).labels == ("wtr", "no LoRA")
    assert axes.seed_axis("3").labels == ("seed 3",)


def test_range_edges_one_value_no_step_and_exactly_the_most_values():
    assert axes.scale_axis("1-1").values == ("1",)
    assert axes.scale_axis("0-2").values == ("0", "1", "2")  # a step of 1 unless given
    assert axes.scale_axis("0-1.26 step 0.02").values[-1] == "1.26"  # 64 values: allowed
    assert axes.seed_axis("5-5").values == ("5",)
    assert axes.seed_axis("1-9 step 4").values == ("1", "5", "9")
    assert len(axes.seed_axis("1-64").values) == 64
    assert axes.seed_axis(f"0, {2**64 - 1}").values == ("0", str(2**64 - 1))
    with pytest.raises(InvalidSweep):
        axes.seed_axis("1-65")


@pytest.mark.parametrize(
    ("call", "message"),
    [
        (lambda: axes.scale_axis("oops"),
         "Type the LoRA scale values as a list (0, 0.5, 1) or a range (0-2 step 0.5)."),
        (lambda: axes.scale_axis("3"), "Every LoRA scale must be between 0 and 2."),
        (lambda: axes.seed_axis("9-1"), "The seed range must go up, by a step above 0."),
        (lambda: axes.seed_axis("1-100"),
         "That seed range has too many values; at most 64."),
        (lambda: axes.seed_axis("one"),
         "Seeds are whole numbers: a list (1, 2, 3) or a range (1-4)."),
        (lambda: axes.seed_axis(" "), "Give at least one seed."),
        (lambda: axes.seed_axis(str(2**64)),
         f"Every seed must be between 0 and {2**64 - 1}."),
        (lambda: axes.prompt_axis("a red fox", " , "),
         "Give the word to replace, then what replaces it: red, blue, green."),
        (lambda: axes.lora_axis([]), "Pick at least one LoRA (or no LoRA) for the LoRA axis."),
    ],
)  # fmt: skip
def test_each_refusal_says_exactly_what_to_type(call, message):
    with pytest.raises(InvalidSweep) as refused:
        call()
    assert str(refused.value) == message
