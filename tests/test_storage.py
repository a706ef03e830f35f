"""Local media storage: files land under the media folder and get a servable URL."""

from __future__ import annotations

import pytest

from lora_core.storage import LocalMediaStore


def test_saved_bytes_are_served_under_the_prefix(media_store: LocalMediaStore):
    url = media_store.save("preview/b1/0.jpg", b"jpeg bytes")

    assert url == "app/static/media/preview/b1/0.jpg"
    assert media_store.path_for(url).read_bytes() == b"jpeg bytes"
    assert not list(media_store.root.rglob("*.part"))


def test_foreign_urls_have_no_local_file(media_store: LocalMediaStore):
    assert media_store.path_for("https://fal.media/files/x.jpg") is None


def test_a_path_cannot_escape_the_media_folder(media_store: LocalMediaStore):
    with pytest.raises(ValueError):
        media_store.save("../../outside.jpg", b"x")
