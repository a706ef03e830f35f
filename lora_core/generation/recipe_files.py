"""Recipes inside the image files: how an image was made, written into its own JPEG
metadata, so that a downloaded image found in a folder months later says it.

Written without re-encoding the picture: one EXIF segment (APP1) put right after the JPEG's
start marker, made by Pillow. It holds the full prompt as the image description (what most
viewers show), "LoRA Studio" as the software, and the whole recipe as JSON in the user
comment. `read` finds ours, or the "parameters" text AUTOMATIC1111 writes into its PNGs.
"""

from __future__ import annotations

import io
import json
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from PIL import Image, UnidentifiedImageError

from lora_core.data.models import LoraTraining
from lora_core.errors import InvalidFile, InvalidSettings
from lora_core.generation.prompts import with_trigger
from lora_core.generation.recipe import Recipe, StackedLora, checked, stored_seed

APP_NAME = "LoRA Studio"
MODEL = "fal-ai/flux-lora"
FORMAT = "lora-studio-recipe/1"
_SOI = b"\xff\xd8"
_EXIF_IFD = 0x8769
_IMAGE_DESCRIPTION, _SOFTWARE, _USER_COMMENT = 0x010E, 0x0131, 0x9286
_ASCII = b"ASCII\x00\x00\x00"  # the user comment's character code (EXIF 2.3)
_UNICODE = b"UNICODE\x00"


@dataclass(frozen=True)
class FoundRecipe:
    """What an image file says of how it was made: ours (`fields`), or another tool's text."""

    fields: dict[str, Any] | None = None
    other_text: str | None = None  # e.g. AUTOMATIC1111's "parameters"
    cut: int = 0  # characters of `other_text` left out (`MAX_TEXT_SHOWN`)


def recipe_fields(
    *,
    prompt: str,
    full_prompt: str,
    lora_id: str | None,
    lora_name: str | None,
    trigger_word: str | None,
    weights_url: str | None,
    recipe: Recipe,
    seed: str | None,
    created_at: str,
    added: Sequence[dict[str, Any]] = (),
) -> dict[str, Any]:
    """Everything a recipe in a file holds (the seed is the one fal used; no LoRA id: the
    base model alone, and `lora` is null). `lora` and `lora_scale` are the first LoRA;
    `added_loras` the LoRAs stacked on it, in fal's order, each with its `scale`."""
    width, height = recipe.pixels
    return {
        "format": FORMAT,
        "app": APP_NAME,
        "model": MODEL,
        "prompt": prompt,
        "full_prompt": full_prompt,
        "lora": None
        if lora_id is None
        else {
            "id": lora_id,
            "name": lora_name,
            "trigger_word": trigger_word,
            "weights_url": weights_url,
        },
        "lora_scale": recipe.lora_scale,
        "added_loras": list(added),
        "seed": seed,
        "steps": recipe.steps,
        "guidance": recipe.guidance,
        "image_size": recipe.image_size,
        "width": width,
        "height": height,
        "created_at": created_at,
    }


def fields_for(
    *,
    lora: LoraTraining | None,
    prompt: str,
    recipe: Recipe,
    seed: str | None,
    created_at: str,
    full_prompt: str | None = None,
    added: Sequence[LoraTraining] = (),
) -> dict[str, Any]:
    """`recipe_fields` for an image of `lora` (None: the base model alone) from `prompt` as
    typed; `full_prompt` is what fal got, by default the prompt trimmed with the trigger
    word. The weights URL is our durable copy's where there is one. `added`: the LoRAs of
    `recipe.stack`."""
    if full_prompt is None:
        full_prompt = prompt.strip()
        if lora is not None:
            full_prompt = with_trigger(full_prompt, lora.trigger_word)
    return recipe_fields(
        prompt=prompt,
        full_prompt=full_prompt,
        lora_id=lora.id if lora is not None else None,
        lora_name=lora.name if lora is not None else None,
        trigger_word=lora.trigger_word if lora is not None else None,
        weights_url=(lora.weights_copy_url or lora.lora_weights_url) if lora is not None else None,
        recipe=recipe,
        seed=seed,
        created_at=created_at,
        added=[
            {**_lora_fields(stacked.lora_id, found), "scale": stacked.scale}
            for stacked in recipe.stack
            for found in [{more.id: more for more in added}.get(stacked.lora_id)]
        ],
    )


def _lora_fields(lora_id: str, lora: LoraTraining | None) -> dict[str, Any]:
    """An added LoRA as a recipe names it (its id alone, were it since removed)."""
    if lora is None:
        return {"id": lora_id}
    return {
        "id": lora.id,
        "name": lora.name,
        "trigger_word": lora.trigger_word,
        "weights_url": lora.weights_copy_url or lora.lora_weights_url,
    }


def embed(data: bytes, fields: dict[str, Any]) -> bytes:
    """The JPEG `data` with the recipe in its metadata; anything else unchanged (a PNG, or
    bytes that are no image, are served as they are)."""
    if not data.startswith(_SOI):
        return data
    exif = Image.Exif()
    exif[_IMAGE_DESCRIPTION] = str(fields.get("full_prompt", ""))
    exif[_SOFTWARE] = APP_NAME
    comment = json.dumps(fields, ensure_ascii=False, separators=(",", ":"))
    exif.get_ifd(_EXIF_IFD)[_USER_COMMENT] = _UNICODE + comment.encode("utf-16-be")
    payload = exif.tobytes()  # b"Exif\0\0" + the TIFF structure
    if len(payload) + 2 > 0xFFFF:
        return data  # a segment holds 64 KB; a recipe that long is not one of ours
    segment = b"\xff\xe1" + (len(payload) + 2).to_bytes(2, "big") + payload
    return _SOI + segment + _without_exif(data[2:])


# The reader takes files up to this size, and shows another tool's text up to this length:
# a PNG may carry tens of megabytes of text, which a page would freeze on.
MAX_FILE_BYTES = 20 * 1024 * 1024
MAX_TEXT_SHOWN = 10_000


def read(data: bytes) -> FoundRecipe | None:
    """The recipe an image file carries; None when it carries none (or is no image).
    `InvalidFile` for a file over `MAX_FILE_BYTES` or a picture too large to open (Pillow's
    decompression-bomb limit); another tool's text is cut to `MAX_TEXT_SHOWN` characters."""
    if len(data) > MAX_FILE_BYTES:
        raise InvalidFile(
            f"This file is {len(data) / 2**20:.0f} MB; the recipe reader reads image files up "
            f"to {MAX_FILE_BYTES // 2**20} MB."
        )
    try:
        image = Image.open(io.BytesIO(data))
    except Image.DecompressionBombError:
        raise InvalidFile(
            "This picture is too large to read: it has more than "
            f"{2 * (Image.MAX_IMAGE_PIXELS or 0) // 1_000_000:,} million pixels."
        ) from None
    except (UnidentifiedImageError, OSError, ValueError, SyntaxError):
        return None
    with image:
        comment = image.getexif().get_ifd(_EXIF_IFD).get(_USER_COMMENT)
        text = _comment_text(comment)
        if text:
            try:
                fields = json.loads(text)
            except ValueError:
                fields = None
            if isinstance(fields, dict) and fields.get("format") == FORMAT:
                return FoundRecipe(fields=fields)
            return _other(text)
        parameters = image.info.get("parameters")  # AUTOMATIC1111's PNG text chunk
        if isinstance(parameters, str) and parameters.strip():
            return _other(parameters)
    return None


def _other(text: str) -> FoundRecipe:
    """Another tool's text, cut to what a page can show."""
    return FoundRecipe(other_text=text[:MAX_TEXT_SHOWN], cut=max(len(text) - MAX_TEXT_SHOWN, 0))


def as_recipe(fields: dict[str, Any]) -> Recipe | None:
    """The recipe a file's fields describe, if the app could generate it again."""
    try:
        return checked(
            Recipe(
                lora_scale=float(fields["lora_scale"]),
                steps=int(fields["steps"]),
                guidance=float(fields["guidance"]),
                image_size=str(fields["image_size"]),
                seed=stored_seed(str(fields.get("seed") or "")),
                stack=tuple(
                    StackedLora(lora_id=str(more["id"]), scale=float(more["scale"]))
                    for more in fields.get("added_loras") or ()
                ),
            )
        )
    except (KeyError, TypeError, ValueError, InvalidSettings):
        return None


def _comment_text(comment: object) -> str | None:
    if isinstance(comment, str):
        return comment
    if not isinstance(comment, bytes):
        return None
    if comment.startswith(_UNICODE):
        body = comment[len(_UNICODE) :]
        for encoding in ("utf-16-be", "utf-16-le"):
            try:
                return body.decode(encoding)
            except UnicodeDecodeError:
                continue
        return None
    if comment.startswith(_ASCII):
        return comment[len(_ASCII) :].decode("ascii", "replace")
    return comment.decode("utf-8", "replace")


def _without_exif(rest: bytes) -> bytes:
    """The JPEG after its start marker, minus any EXIF segments before the image data
    (ours replaces them: the first EXIF is the one readers take)."""
    position = 0
    kept = bytearray()
    while position + 4 <= len(rest) and rest[position] == 0xFF:
        marker = rest[position + 1]
        if marker in (0xDA, 0xD9):  # start of scan, end of image: the rest is image data
            break
        length = int.from_bytes(rest[position + 2 : position + 4], "big")
        end = position + 2 + length
        segment = rest[position:end]
        if not (marker == 0xE1 and segment[4:10] == b"Exif\x00\x00"):
            kept += segment
        position = end
    return bytes(kept) + rest[position:]
