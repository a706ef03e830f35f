"""Durable LoRA weights: fal's files expire, so a trained (or registered) LoRA's weights and
config are copied into our store, and generation gives fal a URL it can still download."""

from __future__ import annotations

import time
from datetime import timedelta

import httpx
import pytest

from lora_core import weights
from lora_core.cli import repair
from lora_core.data.db import session_scope
from lora_core.data.models import LoraStatus, LoraTraining
from lora_core.errors import WeightsUnavailable
from lora_core.fal.trainer import FalTrainer
from lora_core.generation import service
from lora_core.generation.service import GenerationKit
from lora_core.training import following, registry
from lora_core.training import lifecycle as training
from lora_core.training.lifecycle import QuotaPolicy
from tests.conftest import TEST_FAL_KEY
from tests.support.factories import pictures, stored_batches
from tests.support.fakefal import weights_bytes
from tests.support.hosts import private_host

POLICY = QuotaPolicy(limit=9, window=timedelta(hours=24))


@pytest.fixture(params=["local", "s3"])
def store(request, media_store):
    """Either store a deployment may use: the local media folder or an S3 bucket."""
    return media_store if request.param == "local" else request.getfixturevalue("s3_store")


def read(store, url: str) -> bytes:
    if url.startswith("http"):
        return httpx.get(url).content
    return store.path_for(url).read_bytes()


def trained(engine, fal_trainer, store) -> LoraTraining:
    """A LoRA trained on the fake fal, followed until fal reports it complete."""
    lora = training.start_training(
        engine=engine, trainer=fal_trainer, policy=POLICY, user="ann",
        files=pictures(5), trigger_word="sks", steps=100,
    )  # fmt: skip
    return followed_to_the_end(engine, lora.id, store)


def next_millisecond() -> None:
    """Leases are compared to the millisecond (ISO text): a beat let go at 0 s ahead is
    taken by the next only from the next millisecond on, as the sweep's would be."""
    time.sleep(0.002)


def followed_to_the_end(engine, lora_id: str, store) -> LoraTraining:
    """Beats of the background sweep until fal reports the training done."""
    for _ in range(4):
        following.follow(
            engine=engine, trainer=FalTrainer(key=TEST_FAL_KEY), store=store, lora_id=lora_id,
            allow_private_hosts=True,  # the fake fal is on this machine
            every=timedelta(0),
        )  # fmt: skip
        next_millisecond()
    with session_scope(engine) as session:
        lora = session.get(LoraTraining, lora_id)
    assert lora.status == LoraStatus.COMPLETED
    return lora


def test_a_completed_training_keeps_its_weights_and_config_in_our_store(
    engine, fal_trainer, fake_fal, store
):
    lora = trained(engine, fal_trainer, store)

    fal_url = f"{fake_fal.url}/files/{lora.request_id}"
    assert lora.lora_weights_url == f"{fal_url}/pytorch_lora_weights.safetensors"  # fal's
    assert lora.config_url == f"{fal_url}/config.json"
    assert lora.weights_copy_url.endswith(f"loras/{lora.id}/weights.safetensors")
    assert read(store, lora.weights_copy_url) == weights_bytes(lora.request_id)
    assert lora.request_id in read(store, lora.config_copy_url).decode()


def test_a_copy_that_fails_leaves_the_lora_usable_and_repair_makes_it_later(
    engine, fal_trainer, fake_fal, media_store
):
    lora = training.start_training(
        engine=engine, trainer=fal_trainer, policy=POLICY, user="ann",
        files=pictures(5), trigger_word="sks", steps=100,
    )  # fmt: skip
    fake_fal.script.files_missing = True  # fal's CDN does not answer when we copy
    lora = followed_to_the_end(engine, lora.id, media_store)
    assert lora.weights_copy_url is None

    def run() -> repair.RepairReport:
        return repair.repair_weights(engine=engine, store=media_store, allow_private_hosts=True)

    assert run() == repair.RepairReport(0, 1)
    fake_fal.script.files_missing = False
    assert run() == repair.RepairReport(1, 0)
    assert run() == repair.RepairReport(0, 0)
    with session_scope(engine) as session:
        copied = session.get(LoraTraining, lora.id)
    assert read(media_store, copied.weights_copy_url) == weights_bytes(lora.request_id)
    assert copied.config_copy_url is not None  # the config file came with it


def generate(engine, fal_generator, policy, lora_id: str):
    return service.generate(
        kit=GenerationKit(
            engine=engine, generator=fal_generator, policy=policy, allow_private_weights=True
        ),
        user="ann",
        lora_id=lora_id,
        prompt="a cat",
    )


def test_fal_gets_its_own_weights_url_while_it_answers(
    engine, fal_trainer, fal_generator, fake_fal, s3_store, policy
):
    lora = trained(engine, fal_trainer, s3_store)

    generate(engine, fal_generator, policy, lora.id)

    assert fake_fal.submissions[-1].body["loras"][0]["path"] == lora.lora_weights_url


def test_once_fals_weights_expired_fal_gets_our_public_copy(
    engine, fal_trainer, fal_generator, fake_fal, s3_store, policy
):
    lora = trained(engine, fal_trainer, s3_store)
    fake_fal.script.files_missing = True  # fal's media expired
    fake_fal.script.fetch_loras = True  # and the job downloads its LoRA, as fal's runner does

    outcome = generate(engine, fal_generator, policy, lora.id)

    assert fake_fal.submissions[-1].body["loras"][0]["path"] == lora.weights_copy_url
    assert fake_fal.fetched == [(lora.weights_copy_url, 200)]
    assert len(outcome.images) == 4


@pytest.mark.parametrize("copy", ["local", "none"])
def test_expired_weights_fal_cannot_get_elsewhere_are_refused_before_a_slot(
    engine, fal_trainer, fal_generator, fake_fal, media_store, policy, copy
):
    lora = trained(engine, fal_trainer, media_store if copy == "local" else None)
    fake_fal.script.files_missing = True
    submitted = len(fake_fal.submissions)

    with pytest.raises(WeightsUnavailable) as caught:
        generate(engine, fal_generator, policy, lora.id)

    assert str(caught.value) == (weights.LOCAL_COPY if copy == "local" else weights.NO_COPY)
    assert stored_batches(engine) == []  # no slot was reserved
    assert len(fake_fal.submissions) == submitted  # fal was not called


def test_weights_that_cannot_be_asked_about_from_here_are_left_to_fal(monkeypatch):
    """A network error here says nothing of what fal can reach: fal's URL is used."""
    lora = LoraTraining(
        id="l", request_id="r", user="a", trigger_word="t", status="completed",
        created_at="2026-01-01T00:00:00.000Z",
        lora_weights_url="https://no-such-host.invalid/w.safetensors",
    )  # fmt: skip

    assert weights.url_for_fal(lora) == lora.lora_weights_url


@pytest.mark.parametrize("keep", [True, False])
def test_a_registered_lora_keeps_a_copy_when_asked(engine, fake_fal, media_store, keep):
    url = f"{fake_fal.url}/files/elsewhere/pytorch_lora_weights.safetensors"

    lora = registry.register_lora(
        engine=engine, user="ann", weights_url=url, trigger_word="mine",
        allow_private_hosts=True, keep_copy_in=media_store if keep else None,
    )  # fmt: skip

    assert lora.lora_weights_url == url
    if keep:
        assert read(media_store, lora.weights_copy_url) == weights_bytes("elsewhere")
    else:
        assert lora.weights_copy_url is None


def test_weights_on_a_private_network_are_not_fetched_unless_allowed(engine, fake_fal, media_store):
    """A stored URL must not make the server copy its own network's files into the store."""
    lora = LoraTraining(
        id="inside", request_id="r", user="a", trigger_word="t", status="completed",
        created_at="2026-01-01T00:00:00.000Z",
        lora_weights_url=f"{fake_fal.url}/files/x/pytorch_lora_weights.safetensors",
    )  # fmt: skip
    with session_scope(engine) as session:
        session.add(lora)
        session.commit()
        session.refresh(lora)

    refused = weights.copy_files(engine=engine, store=media_store, lora=lora)
    asked = weights.answers(lora.lora_weights_url)

    assert refused.weights_copy_url is None and asked is None
    assert fake_fal.requests == []  # not even asked
    allowed = weights.copy_files(
        engine=engine, store=media_store, lora=lora, allow_private_hosts=True
    )
    assert read(media_store, allowed.weights_copy_url) == weights_bytes("x")


def test_only_a_404_or_410_counts_as_gone(fake_fal):
    answers = weights.answers
    assert answers(f"{fake_fal.url}/files/x/config.json", allow_private_hosts=True) is True
    assert answers(f"{fake_fal.url}/files/x/nothing.bin", allow_private_hosts=True) is False
    assert answers("https://[::1/broken", allow_private_hosts=True) is None


def used(engine, policy) -> int:
    from lora_core.generation import quota

    with session_scope(engine) as session:
        return quota.get_status(session=session, policy=policy, user="ann").used


def test_when_fal_cannot_download_weights_a_probe_said_answer_the_copy_is_tried_once(
    engine, fal_trainer, fal_generator, fake_fal, s3_store, policy
):
    """Our probe answered minutes ago (cached); fal's runner now finds the URL gone. The
    same batch is tried once more with our public copy: one slot, and the next batch
    goes straight to the copy."""
    lora = trained(engine, fal_trainer, s3_store)
    assert weights.answers(lora.lora_weights_url, allow_private_hosts=True) is True  # cached
    fake_fal.script.files_missing = True  # fal's media expired since
    fake_fal.script.fetch_loras = True  # and the job downloads its LoRA, as fal's runner does

    outcome = generate(engine, fal_generator, policy, lora.id)

    first, second = fake_fal.submissions
    assert first.body["loras"][0]["path"] == lora.lora_weights_url
    assert second.body["loras"][0]["path"] == lora.weights_copy_url
    assert len(outcome.shown) == 4
    [batch] = stored_batches(engine)
    assert batch.status == "succeeded"
    assert fake_fal.jobs[batch.fal_request_id].arguments == second.body  # the one that ran
    assert used(engine, policy) == 1
    generate(engine, fal_generator, policy, lora.id)
    assert fake_fal.submissions[-1].body["loras"][0]["path"] == lora.weights_copy_url
    assert len(fake_fal.submissions) == 3


def test_when_fal_cannot_download_weights_and_no_copy_can_serve_the_slot_comes_back(
    engine, fal_trainer, fal_generator, fake_fal, media_store, policy
):
    lora = trained(engine, fal_trainer, media_store)  # a local copy: fal cannot reach it
    assert weights.answers(lora.lora_weights_url, allow_private_hosts=True) is True
    fake_fal.script.files_missing = True
    fake_fal.script.fetch_loras = True

    with pytest.raises(WeightsUnavailable):
        generate(engine, fal_generator, policy, lora.id)

    assert len(fake_fal.submissions) == 1
    assert [batch.status for batch in stored_batches(engine)] == ["failed"]
    assert used(engine, policy) == 0


@pytest.mark.parametrize(("status", "answer"), [(200, True), (403, False), (404, False),
                                                 (410, False), (500, None)])  # fmt: skip
def test_an_expired_signed_url_answering_403_counts_as_gone(status, answer):
    """S3, GCS and fal's CDN answer 403 once a signed URL has expired (to HEAD and GET)."""
    with private_host(status) as host:
        url = host.url
        assert weights.answers(f"{url}/w.safetensors", allow_private_hosts=True) is answer


def test_the_lora_page_can_say_where_fal_gets_the_weights():
    lora = LoraTraining(
        id="l", request_id="r", user="a", trigger_word="t", status="completed",
        created_at="2026-01-01T00:00:00.000Z", lora_weights_url="https://fal.media/w",
        weights_copy_url="app/static/media/loras/l/weights.safetensors",
    )  # fmt: skip

    assert "local media folder, which fal cannot reach" in weights.where_fal_downloads(lora)
    weights.fallback_for_fal(lora, failed_url="https://fal.media/w")  # fal said: gone
    assert weights.where_fal_downloads(lora) == weights.LOCAL_COPY
    lora.weights_copy_url = "https://bucket.example/loras/l/weights.safetensors"
    assert weights.where_fal_downloads(lora).startswith("fal downloads our copy")
