"""Where images live: our own copies, and the URL that serves them.

fal's image URLs expire, so every image fal returns is copied here (4 at once) and served
from our URL; fal's URL is kept beside it. The default store is a folder under Streamlit's
static directory, so every stored image has a URL that opens in a new browser tab
(`app/static/media/...`). A copy that fails leaves fal's URL in place for `repair` to retry.
"""

from __future__ import annotations

import shutil
import uuid
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol

import httpx
from pydantic import SecretStr

from lora_core import thumbnails, web
from lora_core.settings import Settings

COPY_TIMEOUT_SECONDS = 30
# What is stored under a URL never changes (every name holds a batch or image id), so a
# browser may keep it for good; sent by the bucket with every image and thumbnail.
IMMUTABLE = "public, max-age=31536000, immutable"
MAX_IMAGE_BYTES = 50 * 1024 * 1024


class MediaStore(Protocol):
    def save(self, relative_path: str, data: bytes, *, content_type: str = "image/jpeg") -> str:
        """Store `data` and return the URL that serves it; OSError when it cannot."""
        ...

    def save_file(self, relative_path: str, path: Path, *, content_type: str) -> str:
        """Store the file at `path` (large ones: weights) without reading it into memory."""
        ...


@dataclass(frozen=True)
class LocalMediaStore:
    root: Path
    url_prefix: str

    def save(self, relative_path: str, data: bytes, *, content_type: str = "image/jpeg") -> str:
        """Write `data` under the store and return the URL that serves it."""
        target = self._target(relative_path)
        temporary = self._temporary(target)
        temporary.write_bytes(data)
        temporary.replace(target)
        return f"{self.url_prefix}/{relative_path}"

    def save_file(self, relative_path: str, path: Path, *, content_type: str) -> str:
        target = self._target(relative_path)
        temporary = self._temporary(target)
        shutil.copyfile(path, temporary)
        temporary.replace(target)
        return f"{self.url_prefix}/{relative_path}"

    @staticmethod
    def _temporary(target: Path) -> Path:
        """A name beside `target` no other writer uses (two copies may run at once)."""
        return target.with_name(f".{target.name}.{uuid.uuid4().hex}.part")

    def _target(self, relative_path: str) -> Path:
        target = (self.root / relative_path).resolve()
        if not target.is_relative_to(self.root.resolve()):
            raise ValueError(f"path escapes the media folder: {relative_path}")
        target.parent.mkdir(parents=True, exist_ok=True)
        return target

    def path_for(self, url: str) -> Path | None:
        """The file behind one of our URLs, or None for a URL we did not issue."""
        prefix = f"{self.url_prefix}/"
        if not url.startswith(prefix):
            return None
        path = (self.root / url.removeprefix(prefix)).resolve()
        return path if path.is_relative_to(self.root.resolve()) else None


@dataclass
class S3MediaStore:
    """An S3-compatible bucket; `public_url` is where its objects are served from."""

    bucket: str
    public_url: str
    prefix: str = "media"
    endpoint_url: str | None = None
    access_key_id: str | None = field(default=None, repr=False)
    secret_access_key: str | None = field(default=None, repr=False)
    region: str = "us-east-1"
    _client: Any = field(init=False, repr=False)

    def __post_init__(self) -> None:
        # boto3 is imported with the first bucket, not with the app: a quick demo's start
        # (local media) does without its import.
        import boto3
        from botocore.config import Config

        self._client = boto3.client(
            "s3",
            endpoint_url=self.endpoint_url,
            aws_access_key_id=self.access_key_id,
            aws_secret_access_key=self.secret_access_key,
            region_name=self.region,
            config=Config(retries={"max_attempts": 3}, connect_timeout=5, read_timeout=30),
        )

    def save(self, relative_path: str, data: bytes, *, content_type: str = "image/jpeg") -> str:
        key = self._key(relative_path)
        try:
            self._client.put_object(
                Bucket=self.bucket,
                Key=key,
                Body=data,
                ContentType=content_type,
                CacheControl=IMMUTABLE,
            )
        except _s3_errors() as error:
            raise OSError(f"could not store {key} in bucket {self.bucket}: {error}") from error
        return f"{self.public_url.rstrip('/')}/{key}"

    def save_file(self, relative_path: str, path: Path, *, content_type: str) -> str:
        """Uploaded by boto3 in parts when large."""
        key = self._key(relative_path)
        try:
            self._client.upload_file(
                str(path), self.bucket, key, ExtraArgs={"ContentType": content_type}
            )
        except _s3_errors() as error:
            raise OSError(f"could not store {key} in bucket {self.bucket}: {error}") from error
        return f"{self.public_url.rstrip('/')}/{key}"

    def _key(self, relative_path: str) -> str:
        return f"{self.prefix.strip('/')}/{relative_path}".lstrip("/")


def _s3_errors() -> tuple[type[Exception], ...]:
    """boto3's failures of a request and of an upload (read as an exception is matched,
    boto3 being loaded by then)."""
    from boto3.exceptions import S3UploadFailedError
    from botocore.exceptions import BotoCoreError, ClientError

    return BotoCoreError, ClientError, S3UploadFailedError


def _download(client: httpx.Client, url: str) -> bytes:
    response = client.get(url)
    response.raise_for_status()
    if len(response.content) > MAX_IMAGE_BYTES:
        raise ValueError(f"{url} is larger than {MAX_IMAGE_BYTES} bytes")
    return response.content


@dataclass(frozen=True)
class Copied:
    """Our copy of an image, and of its thumbnail (None when none could be made)."""

    url: str
    thumbnail_url: str | None


def copy_images(
    store: MediaStore,
    sources: Sequence[tuple[str, str]],
    *,
    label: Callable[[bytes], bytes] | None = None,
) -> list[Copied | None]:
    """Copy each `(url, relative_path)` into `store`, all at once, each with its thumbnail
    beside it (`lora_core.thumbnails`); `label` rewrites each file's bytes before it is
    stored (the recipe written into it).

    Returns our copy for each source, or None where the copy failed (the caller keeps the
    original URL then). Never raises for a failed download.
    """
    if not sources:
        return []

    def copy(source: tuple[str, str]) -> Copied | None:
        url, relative_path = source
        try:
            data = _download(client, url)
            copied = store.save(relative_path, label(data) if label else data)
        except (httpx.HTTPError, OSError, ValueError):
            return None
        return Copied(copied, save_thumbnail(store, thumbnails.path_beside(relative_path), data))

    with (
        web.client(timeout=COPY_TIMEOUT_SECONDS, follow_redirects=True) as client,
        ThreadPoolExecutor(max_workers=len(sources)) as pool,
    ):
        return list(pool.map(copy, sources))


def save_thumbnail(store: MediaStore, relative_path: str, data: bytes) -> str | None:
    """Store the thumbnail of the image `data`; None when it is no image or the store
    refused (the grid shows the full image then)."""
    try:
        return store.save(
            relative_path, thumbnails.make(data), content_type=thumbnails.CONTENT_TYPE
        )
    except (thumbnails.NotAnImage, OSError):
        return None


def is_remote(url: str) -> bool:
    return url.startswith(("https://", "http://"))


def build_store(settings: Settings) -> MediaStore:
    """The store the settings choose: the local media folder, or an S3-compatible bucket."""
    if settings.storage_backend == "s3":
        return S3MediaStore(
            bucket=settings.s3_bucket or "",
            public_url=settings.s3_public_url or "",
            prefix=settings.s3_prefix,
            endpoint_url=settings.s3_endpoint_url,
            access_key_id=_secret(settings.s3_access_key_id),
            secret_access_key=_secret(settings.s3_secret_access_key),
            region=settings.s3_region,
        )
    return LocalMediaStore(settings.media_dir, settings.media_url_prefix)


def _secret(value: SecretStr | None) -> str | None:
    return value.get_secret_value() if value is not None else None
