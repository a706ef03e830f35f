"""Downloads: one image's bytes, and a batch as a zip with a manifest."""

from __future__ import annotations

import io
import json
import zipfile

import pandas as pd
import pytest

from lora_core.data.models import GeneratedImage, LoraTraining
from lora_core.errors import DownloadFailed
from lora_core.gallery import downloads

LORA = LoraTraining(
    id="lora-1", request_id="r", user="trainer", trigger_word="wtrclr",
    status="completed", created_at="2026-11-01T00:00:00.000Z",
)  # fmt: skip


def image(number: int, url: str, *, nsfw: bool = False) -> GeneratedImage:
    return GeneratedImage(
        id=f"img-{number}", lora_training_id="lora-1", user="ann",
        prompt="a red fox", image_url=url, image_width=1024, image_height=1024,
        seed="18446744073709551557", created_at=f"2026-11-25T10:00:00.00{number}Z",
        batch_id="b1", nsfw=nsfw,
    )  # fmt: skip


def test_our_own_copies_are_read_from_the_media_folder(media_store):
    url = media_store.save("fal/b1/0.jpg", b"jpeg bytes")

    assert downloads.read_image(url, store=media_store) == b"jpeg bytes"


def test_images_elsewhere_are_fetched_from_their_address(media_store, fake_fal):
    data = downloads.read_image(f"{fake_fal.url}/files/job/2.jpg", store=media_store)

    assert data.startswith(b"\xff\xd8")  # a JPEG, as the fake serves it


@pytest.mark.parametrize("where", ["expired", "missing file", "no address"])
def test_an_image_that_cannot_be_had_says_so(media_store, fake_fal, where):
    fake_fal.script.files_missing = True
    url = {
        "expired": f"{fake_fal.url}/files/job/0.jpg",
        "missing file": "app/static/media/fal/gone.jpg",
        "no address": "data:image/jpeg;base64,AAAA",
    }[where]

    with pytest.raises(DownloadFailed):
        downloads.read_image(url, store=media_store)


def test_a_batch_zip_holds_its_images_and_a_manifest_of_each(media_store, fake_fal):
    local = media_store.save("fal/b1/0.jpg", b"local jpeg")
    batch = [
        image(1, local),
        image(2, f"{fake_fal.url}/files/job/1.jpg"),
        image(3, f"{fake_fal.url}/files/job/2.jpg", nsfw=True),
        image(4, "https://127.0.0.1:1/expired.jpg"),
    ]

    archive = zipfile.ZipFile(io.BytesIO(downloads.images_zip(batch, LORA, store=media_store)))

    assert archive.namelist() == [
        "images/01-img-1.jpg", "images/02-img-2.jpg", "manifest.json", "manifest.csv",
    ]  # fmt: skip
    assert archive.read("images/01-img-1.jpg") == b"local jpeg"
    manifest = json.loads(archive.read("manifest.json"))
    assert [row["file"] for row in manifest] == [
        "images/01-img-1.jpg", "images/02-img-2.jpg", None, None,  # hidden, unreachable
    ]  # fmt: skip
    assert manifest[0] | {"image_url": None} == {
        "file": "images/01-img-1.jpg", "prompt": "a red fox",
        "full_prompt": "a red fox in the style of wtrclr", "seed": "18446744073709551557",
        "width": 1024, "height": 1024, "lora_id": "lora-1", "trigger_word": "wtrclr",
        "user": "ann", "created_at": "2026-11-25T10:00:00.001Z", "image_url": None,
        "added_loras": "",  # nothing stacked on it
    }  # fmt: skip
    csv = pd.read_csv(io.BytesIO(archive.read("manifest.csv")), dtype={"seed": str})
    assert list(csv["seed"]) == ["18446744073709551557"] * 4
    assert list(csv["image_url"]) == [item.image_url for item in batch]
