"""A page of images grouped into the generations that made them."""

from __future__ import annotations

from lora_core.gallery import groups
from tests.support.factories import unsaved_image as image


def test_images_are_grouped_by_batch_in_order():
    images = [image(1, batch="b2"), image(2, batch="b2"), image(3, batch="b1")]

    found = groups.group_by_batch(images)

    assert [[i.id for i in g.images] for g in found] == [["i1", "i2"], ["i3"]]


def test_rows_without_a_batch_group_by_user_prompt_and_second():
    images = [
        image(1, batch=None, prompt="a", second=5),
        image(2, batch=None, prompt="a", second=5),
        image(3, batch=None, prompt="b", second=5),
        image(4, batch=None, prompt="b", second=4),
    ]

    found = groups.group_by_batch(images)

    assert [len(g.images) for g in found] == [2, 1, 1]
    assert [g.prompt for g in found] == ["a", "b", "b"]


def test_the_cells_of_one_sweep_make_one_group():
    images = [image(1, batch="c1"), image(2, batch="c2"), image(3, batch="b"), image(4, batch="b")]

    found = groups.group_by_batch(images, {"c1": "s", "c2": "s"})

    assert [[i.id for i in g.images] for g in found] == [["i1", "i2"], ["i3", "i4"]]
    assert [g.sweep_id for g in found] == ["s", None]


def test_no_images_no_groups():
    assert groups.group_by_batch([]) == []
