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


@pytest.mark.parametrize(
    ("who", "withheld", "batch"),
    [
        (Identity(user="ann"), False, ["b-0", "b-1", "b-2"]),  # the hidden image's author
        (Identity(user="root", is_admin=True), False, ["b-0", "b-1", "b-2"]),
        (Identity(user="bob"), True, ["b-0", "b-2"]),
        (Identity(user=None), True, ["b-0", "b-2"]),
    ],
)
def test_a_hidden_image_and_its_batch_as_each_visitor_may_see_them(
    engine, add_lora, who, withheld, batch
):
    """The rule lives in the core: the page shows `withheld` and `batch` (its zip) as given."""
    from lora_core.data.clock import to_iso
    from lora_core.data.db import session_scope
    from lora_core.data.models import GeneratedImage
    from lora_core.gallery import views
    from tests.conftest import NOW

    add_lora("l")
    with session_scope(engine) as session:
        for number in range(3):
            session.add(
                GeneratedImage(
                    id=f"b-{number}", lora_training_id="l", user="ann", prompt="p",
                    image_url=f"https://cdn.example/{number}.jpg", created_at=to_iso(NOW),
                    batch_id="batch-b", hidden=True if number == 1 else None,
                )
            )  # fmt: skip
        session.commit()

    with session_scope(engine) as session:
        hidden = views.image_view(session=session, lora_id="l", image_id="b-1", who=who)
        shown = views.image_view(session=session, lora_id="l", image_id="b-0", who=who)

    assert hidden.withheld is withheld
    assert sorted(image.id for image in shown.batch) == batch
    assert not shown.withheld
