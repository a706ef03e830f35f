"""Local media storage: files land under the media folder and get a servable URL."""

from __future__ import annotations

import io
import ssl

import httpx
import pytest
from PIL import Image

from lora_core import storage, thumbnails
from lora_core.storage import LocalMediaStore, S3MediaStore, copy_images


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


def test_images_are_copied_all_at_once_and_failures_are_none(media_store, fake_fal):
    base = f"https://{fake_fal.host}/files/req"
    sources = [(f"{base}/{index}.jpg", f"fal/b/{index}.jpg") for index in range(4)]

    copies = copy_images(media_store, [*sources, (f"https://{fake_fal.host}/nope", "fal/b/x.jpg")])

    assert [copy.url for copy in copies[:4]] == [
        f"app/static/media/fal/b/{index}.jpg" for index in range(4)
    ]
    assert copies[4] is None
    for index, copy in enumerate(copies[:4]):
        assert media_store.path_for(copy.url).read_bytes()[:3] == b"\xff\xd8\xff"
        assert copy.thumbnail_url == f"app/static/media/fal/b/{index}.thumb.webp"
        thumbnail = Image.open(media_store.path_for(copy.thumbnail_url))
        assert thumbnail.format == "WEBP" and max(thumbnail.size) <= thumbnails.LONG_SIDE


def test_copying_batch_after_batch_builds_no_tls_context(media_store, fake_fal, monkeypatch):
    """Building one reads the whole certificate bundle (~30 ms of CPU, more than the copy)."""
    copy_images(media_store, [(f"https://{fake_fal.host}/files/r/0.jpg", "fal/a/0.jpg")])
    built: list[ssl.SSLContext] = []
    original = ssl.create_default_context
    monkeypatch.setattr(
        ssl, "create_default_context", lambda *a, **k: built.append(original(*a, **k)) or built[-1]
    )

    for batch in ("b", "c"):
        source = (f"https://{fake_fal.host}/files/r/0.jpg", f"fal/{batch}/0.jpg")
        assert copy_images(media_store, [source])[0] is not None

    assert built == []


def test_a_store_that_cannot_be_written_is_a_failed_copy(tmp_path, fake_fal):
    (tmp_path / "media").write_text("a file, not a folder")
    store = LocalMediaStore(tmp_path / "media", "m")

    assert copy_images(store, [(f"https://{fake_fal.host}/files/r/0.jpg", "a/0.jpg")]) == [None]


def test_an_s3_bucket_stores_and_serves_the_image(s3_store):
    url = s3_store.save("fal/b/0.jpg", b"\xff\xd8\xff jpeg")

    assert url == f"{s3_store.public_url}/media/fal/b/0.jpg"
    response = httpx.get(url)
    assert response.status_code == 200 and response.content == b"\xff\xd8\xff jpeg"
    assert response.headers["content-type"] == "image/jpeg"


def test_fal_images_are_copied_into_the_bucket(s3_store, fake_fal):
    sources = [
        (f"https://{fake_fal.host}/files/r/{index}.jpg", f"fal/b/{index}.jpg") for index in range(4)
    ]

    copies = copy_images(s3_store, sources)

    assert all(copy.url.startswith(s3_store.public_url) for copy in copies)
    assert all(httpx.get(copy.url).content[:3] == b"\xff\xd8\xff" for copy in copies)
    for index, copy in enumerate(copies):
        assert copy.thumbnail_url == f"{s3_store.public_url}/media/fal/b/{index}.thumb.webp"
        served = httpx.get(copy.thumbnail_url)
        assert served.headers["content-type"] == "image/webp"
        assert served.headers["cache-control"] == "public, max-age=31536000, immutable"
        assert Image.open(io.BytesIO(served.content)).format == "WEBP"


def test_what_is_no_image_is_copied_without_a_thumbnail(media_store, fake_fal):
    """A file fal says is an image but Pillow cannot read: kept, the grid shows it whole."""
    media_store.save("junk.jpg", b"not an image")

    assert storage.save_thumbnail(media_store, "junk.thumb.webp", b"not an image") is None


def test_a_missing_bucket_is_a_failed_copy_not_a_crash(s3_store, fake_fal):
    s3_store.bucket = "no-such-bucket"

    assert copy_images(s3_store, [(f"https://{fake_fal.host}/files/r/0.jpg", "x.jpg")]) == [None]


def test_the_settings_choose_the_store(tmp_path, s3_server):
    from lora_core.settings import Settings
    from lora_core.storage import build_store

    assert isinstance(build_store(Settings(media_dir=tmp_path)), LocalMediaStore)
    s3 = build_store(
        Settings(storage_backend="s3", s3_bucket="b", s3_public_url="https://cdn.example/b")
    )
    assert isinstance(s3, S3MediaStore) and s3.bucket == "b"


def test_a_url_that_climbs_out_of_the_media_folder_is_not_ours(tmp_path):
    store = LocalMediaStore(tmp_path / "media", "app/static/media")
    (tmp_path / "secret.txt").write_text("not for download")

    assert store.path_for("app/static/media/../secret.txt") is None
    assert store.path_for("app/static/media/fal/b/0.jpg") == (tmp_path / "media/fal/b/0.jpg")


def test_two_writers_of_one_file_never_share_a_temporary_file(media_store: LocalMediaStore):
    from concurrent.futures import ThreadPoolExecutor

    payloads = [bytes([n]) * 200_000 for n in range(8)]
    with ThreadPoolExecutor(max_workers=8) as pool:
        urls = set(pool.map(lambda data: media_store.save("loras/l/weights.bin", data), payloads))

    assert urls == {"app/static/media/loras/l/weights.bin"}
    assert media_store.path_for(urls.pop()).read_bytes() in payloads  # whole, one of them
    assert not list(media_store.root.rglob("*.part"))
