"""Who may hide what: an image by its author or an admin, a LoRA by an admin."""

from __future__ import annotations

import pytest

from lora_core.data.db import session_scope
from lora_core.data.models import GeneratedImage, LoraTraining
from lora_core.errors import NotAllowed
from lora_core.gallery import moderation
from lora_core.identity import Identity
from tests.support.bystanders import unchanged_besides
from tests.support.factories import image

pytestmark = pytest.mark.both_backends  # the core suite, on SQLite and on libSQL


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


def _lora_hidden(engine, lora_id: str) -> bool | None:
    with session_scope(engine) as session:
        return session.get_one(LoraTraining, lora_id).hidden


def test_only_an_admin_hides_a_lora(engine, add_lora):
    add_lora("l")
    add_lora("other")  # a bystander: hiding one LoRA hides no other
    admin = Identity(user="root", is_admin=True)

    with pytest.raises(NotAllowed):
        moderation.set_lora_hidden(
            engine=engine, who=Identity(user="ann"), lora_id="l", hidden=True
        )
    with unchanged_besides(engine, LoraTraining, changing={"l"}):
        moderation.set_lora_hidden(engine=engine, who=admin, lora_id="l", hidden=True)
    assert _lora_hidden(engine, "l") is True

    moderation.set_lora_hidden(engine=engine, who=admin, lora_id="l", hidden=False)
    assert _lora_hidden(engine, "l") is False


def test_hiding_an_image_hides_no_other_and_showing_it_stores_null(engine, add_lora, add_images):
    add_lora("l")
    add_images("l", 3)  # l-img-0001 is ann's
    ann = Identity(user="ann")

    with unchanged_besides(engine, GeneratedImage, changing={"l-img-0001"}):
        moderation.set_image_hidden(
            engine=engine, who=ann, image=image(engine, "l-img-0001"), hidden=True
        )
    assert image(engine, "l-img-0001").hidden is True

    moderation.set_image_hidden(
        engine=engine, who=ann, image=image(engine, "l-img-0001"), hidden=False
    )
    assert image(engine, "l-img-0001").hidden is None  # NULL, never false: see the model


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
