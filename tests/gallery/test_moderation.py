"""Who may hide what: an image by its author or an admin, a LoRA by an admin."""

from __future__ import annotations

import pytest

from lora_core.errors import NotAllowed
from lora_core.gallery import moderation
from lora_core.identity import Identity
from tests.support.factories import image


@pytest.mark.parametrize(
    ("who", "allowed"),
    [
        (Identity(user="ann"), True),  # the author (add_images: odd images are ann's)
        (Identity(user="root", is_admin=True), True),
        (Identity(user="bob"), False),
        (Identity(user=None), False),
    ],
)
def test_only_the_author_or_an_admin_hides_an_image(engine, add_lora, add_images, who, allowed):
    add_lora("l")
    add_images("l", 2)
    target = image(engine, "l-img-0001")

    if allowed:
        moderation.set_image_hidden(engine=engine, who=who, image=target, hidden=True)
        assert image(engine, "l-img-0001").hidden is True
    else:
        with pytest.raises(NotAllowed):
            moderation.set_image_hidden(engine=engine, who=who, image=target, hidden=True)
        assert image(engine, "l-img-0001").hidden is None


def test_only_an_admin_hides_a_lora(engine, add_lora):
    add_lora("l")

    with pytest.raises(NotAllowed):
        moderation.set_lora_hidden(
            engine=engine, who=Identity(user="ann"), lora_id="l", hidden=True
        )
    moderation.set_lora_hidden(
        engine=engine, who=Identity(user="root", is_admin=True), lora_id="l", hidden=True
    )
