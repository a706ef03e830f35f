"""The offline image generator: deterministic placeholder JPEGs (prompt, seed, LoRA) drawn
locally, so the app is fully usable (demos, tests) without fal credentials.
"""

from __future__ import annotations

import hashlib
import io
import textwrap
from dataclasses import dataclass, field

from PIL import Image, ImageDraw, ImageFont, ImageOps

from lora_core.errors import GenerationFailed
from lora_core.generation.generators import (
    GeneratedImageData,
    GenerationRequest,
    GenerationResult,
    Progress,
    ProgressCallback,
)
from lora_core.generation.recipe import NO_LORA_LABEL
from lora_core.storage import MediaStore


@dataclass(frozen=True)
class PreviewGenerator:
    """Draws deterministic placeholder JPEGs (prompt, seed, LoRA; 4, or a sweep cell's 1)
    without calling fal."""

    store: MediaStore
    size: int = 1024
    downloads_weights: bool = field(default=False, init=False)

    def generate(
        self, request: GenerationRequest, on_progress: ProgressCallback | None = None
    ) -> GenerationResult:
        report = on_progress or (lambda _progress: None)
        digest = hashlib.sha256(f"{request.full_prompt}|{_loras(request)}".encode()).digest()
        # As fal: the seed asked for, else one of its own (here: from the prompt and LoRA).
        seed = request.recipe.seed
        if seed is None:
            seed = int.from_bytes(digest[:6], "big")
        width, height = self._pixels(request)
        images = []
        count = request.num_images
        for index in range(count):
            report(Progress("running", message=f"Drawing preview {index + 1} of {count}"))
            data = self._draw(request, seed=seed, index=index)
            try:
                url = self.store.save(f"preview/{request.batch_id}/{index}.jpg", data)
            except OSError:
                raise GenerationFailed(
                    "Could not save the preview images: the media folder is not writable."
                ) from None
            images.append(GeneratedImageData(url=url, width=width, height=height))
        report(Progress("completed"))
        return GenerationResult(images=images, seed=str(seed), request_id=None)

    def resume(self, request_id: str) -> GenerationResult | None:
        raise GenerationFailed("A preview that was interrupted cannot be resumed.", retryable=True)

    def cancel(self, request_id: str) -> None:
        """Nothing runs elsewhere for a preview."""

    def _pixels(self, request: GenerationRequest) -> tuple[int, int]:
        """The recipe's image size, scaled so that 1024 px is `size`."""
        width, height = request.recipe.pixels
        return width * self.size // 1024, height * self.size // 1024

    def _draw(self, request: GenerationRequest, *, seed: int, index: int) -> bytes:
        width, height = self._pixels(request)
        side = min(width, height)
        # The LoRA and its scale change the picture too, as they would fal's: a sweep's cells
        # differ where they should.
        recipe = request.recipe
        shade = hashlib.sha256(
            f"{seed}:{index}:{_loras(request)}:{recipe.lora_scale}".encode()
        ).digest()
        dark = (shade[0] // 3, shade[1] // 3, shade[2] // 3)
        light = (128 + shade[3] // 2, 128 + shade[4] // 2, 128 + shade[5] // 2)
        gradient = Image.linear_gradient("L").rotate(90 * index)
        image = ImageOps.colorize(gradient.resize((width, height)), dark, light)
        draw = ImageDraw.Draw(image)
        big = ImageFont.load_default(size=side // 12)
        small = ImageFont.load_default(size=side // 28)
        margin = side // 16
        draw.text((margin, margin), "PREVIEW", font=big, fill="white")
        body = textwrap.fill(request.full_prompt, width=40, max_lines=8, placeholder=" …")
        draw.multiline_text(
            (margin, height // 4), body, font=small, fill="white", spacing=side // 80
        )
        lora = (
            f"LoRA: {request.lora_label} at scale {recipe.lora_scale:g}"
            if request.weights_url is not None
            else NO_LORA_LABEL
        )
        for more in request.added:
            lora += f" + {more.label} at {more.scale:g}"
        footer = f"{lora}\nseed {seed} · image {index + 1}/{request.num_images}"
        draw.multiline_text((margin, height - side // 5), footer, font=small, fill="white")
        buffer = io.BytesIO()
        image.save(buffer, format="JPEG", quality=85)
        return buffer.getvalue()


def _loras(request: GenerationRequest) -> str:
    """Every LoRA of the request and its scale, for the picture's seed: a stack differs."""
    added = "".join(f"|{more.weights_url}:{more.scale}" for more in request.added)
    return f"{request.weights_url}{added}"
