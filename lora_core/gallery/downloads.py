"""Downloads: one image's bytes, and a batch of images as a zip with a manifest.

Images live either in the app's own media store (read from disk when local) or at a web
address (fal's, or the S3 bucket's), fetched over HTTP.
"""

from __future__ import annotations

import io
import json
import zipfile
from collections.abc import Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import asdict, dataclass

import httpx

from lora_core import thumbnails, web
from lora_core.data.models import GeneratedImage, LoraTraining
from lora_core.errors import DownloadFailed
from lora_core.generation import recipe_files, stacks
from lora_core.generation.prompts import with_trigger
from lora_core.generation.recipe import PLAN, Recipe, stored_seed
from lora_core.storage import (
    MAX_IMAGE_BYTES,
    LocalMediaStore,
    MediaStore,
    is_remote,
    save_thumbnail,
)

FETCH_TIMEOUT_SECONDS = 20


@dataclass(frozen=True)
class ManifestRow:
    file: str | None  # None: the image could not be fetched, or the safety filter hid it
    prompt: str
    full_prompt: str
    seed: str | None
    width: int | None
    height: int | None
    lora_id: str
    trigger_word: str
    user: str
    created_at: str
    image_url: str
    added_loras: str = ""  # the LoRAs stacked on it, "id:scale id:scale" in fal's order


def read_image(url: str, *, store: MediaStore, client: httpx.Client | None = None) -> bytes:
    """The bytes of one of our images; DownloadFailed when they cannot be had."""
    if isinstance(store, LocalMediaStore) and (path := store.path_for(url)) is not None:
        try:
            return path.read_bytes()
        except OSError:
            raise DownloadFailed("This image's file is missing from the media folder.") from None
    if not is_remote(url):
        raise DownloadFailed("This image has no address it can be downloaded from.")
    try:
        if client is None:
            with web.client(timeout=FETCH_TIMEOUT_SECONDS, follow_redirects=True) as own:
                response = own.get(url)
        else:
            response = client.get(url)
        response.raise_for_status()
    except httpx.HTTPError:
        raise DownloadFailed(
            "Could not fetch this image: its address may have expired. Try again later."
        ) from None
    if len(response.content) > MAX_IMAGE_BYTES:
        raise DownloadFailed("This image is larger than the app downloads.")
    return response.content


def _is_png(image: GeneratedImage) -> bool:
    return image.image_url.lower().split("?")[0].endswith(".png")


def file_name(image: GeneratedImage) -> str:
    return f"{image.id}{'.png' if _is_png(image) else '.jpg'}"


def mime_type(image: GeneratedImage) -> str:
    return "image/png" if _is_png(image) else "image/jpeg"


@dataclass(frozen=True)
class Made:
    """How a stored image was made, as its recipe file says (`lora_core.gallery.views`):
    its recipe (the seed fal used, the LoRAs added), the prompt fal got (None: the plan's
    rule with the LoRA's trigger word, on rows older than it was kept), the added LoRAs,
    and its own (first) LoRA, which for an image shown on an added LoRA's page is another."""

    recipe: Recipe
    full_prompt: str | None = None
    added: tuple[LoraTraining, ...] = ()
    first: LoraTraining | None = None


def with_recipe(data: bytes, image: GeneratedImage, lora: LoraTraining, made: Made) -> bytes:
    """The image's bytes carrying its recipe (`recipe_files`), as every download does; its
    own LoRA first when `made` knows it (`lora`: the page's)."""
    return recipe_files.embed(
        data,
        recipe_files.fields_for(
            lora=made.first or lora,
            prompt=image.prompt,
            recipe=made.recipe,
            seed=image.seed,
            created_at=image.created_at,
            full_prompt=made.full_prompt,
            added=made.added,
        ),
    )


def image_download(
    image: GeneratedImage, lora: LoraTraining, made: Made, *, store: MediaStore
) -> bytes:
    """One image as "Download image" serves it: its file, with its recipe inside."""
    return with_recipe(read_image(image.image_url, store=store), image, lora, made)


def images_zip(
    images: Sequence[GeneratedImage],
    lora: LoraTraining,
    *,
    store: MediaStore,
    recipes: Mapping[str, Made] | None = None,
) -> bytes:
    """The images (fetched at once, each with its recipe inside: `recipes` by image id,
    else the plan's with the image's seed) and `manifest.json`/`manifest.csv` describing
    each. An image that cannot be fetched, or that the safety filter hid, is listed
    without a file: the zip never fails because of one image."""

    def fetch(image: GeneratedImage) -> bytes | None:
        if image.nsfw:
            return None
        try:
            data = read_image(image.image_url, store=store, client=client)
        except DownloadFailed:
            return None
        made = (recipes or {}).get(image.id) or Made(PLAN.with_seed(stored_seed(image.seed)))
        return with_recipe(data, image, lora, made)

    with (
        web.client(timeout=FETCH_TIMEOUT_SECONDS, follow_redirects=True) as client,
        ThreadPoolExecutor(max_workers=max(len(images), 1)) as pool,
    ):
        contents = list(pool.map(fetch, images))
    rows = []
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", zipfile.ZIP_DEFLATED) as archive:
        for number, (image, data) in enumerate(zip(images, contents, strict=True), start=1):
            name = None
            if data is not None:
                name = f"images/{number:02d}-{file_name(image)}"
                archive.writestr(name, data)
            rows.append(_manifest_row(image, lora, name, (recipes or {}).get(image.id)))
        records = [asdict(row) for row in rows]
        archive.writestr("manifest.json", json.dumps(records, indent=2, ensure_ascii=False))
        archive.writestr("manifest.csv", _csv(records))
    return buffer.getvalue()


def _csv(records: list[dict[str, object]]) -> str:
    # pandas is imported when a zip is made, not with the app (a third of a cold start's
    # imports: benchmarks/cold_start.py).
    import pandas as pd

    return pd.DataFrame(records).to_csv(index=False)


def _manifest_row(
    image: GeneratedImage, lora: LoraTraining, name: str | None, made: Made | None
) -> ManifestRow:
    full_prompt = made.full_prompt if made is not None else None
    lora = (made.first if made is not None else None) or lora
    return ManifestRow(
        file=name,
        prompt=image.prompt,
        full_prompt=full_prompt or with_trigger(image.prompt, lora.trigger_word),
        seed=image.seed,
        width=image.image_width,
        height=image.image_height,
        lora_id=lora.id,
        trigger_word=lora.trigger_word,
        user=image.user,
        created_at=image.created_at,
        image_url=image.image_url,
        added_loras=stacks.as_text(made.recipe.stack) if made is not None else "",
    )


def make_thumbnail(
    image: thumbnails.Missing, *, store: MediaStore, client: httpx.Client | None = None
) -> str | None:
    """Read an image that has no thumbnail (ours, or the original app's on its own URL)
    and store its thumbnail; its URL, or None when the image cannot be read or is none."""
    try:
        data = read_image(image.image_url, store=store, client=client)
    except DownloadFailed:
        return None
    return save_thumbnail(store, image.relative_path, data)
