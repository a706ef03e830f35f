"""A sweep's downloads: its contact sheet (one labelled PNG) and a zip of its images with a
manifest saying which cell each file is and how it was made (the images carry their
recipes inside too). A cell without an image (failed, still running, unreadable) is
drawn as a blank and listed without a file: a download never fails for one cell."""

from __future__ import annotations

import io
import json
import zipfile
from concurrent.futures import ThreadPoolExecutor

import pandas as pd

from lora_core import web
from lora_core.errors import DownloadFailed
from lora_core.gallery.downloads import FETCH_TIMEOUT_SECONDS, read_image
from lora_core.generation import stacks
from lora_core.generation.recipe import NO_LORA
from lora_core.lab.contact_sheet import contact_sheet
from lora_core.lab.views import CellView, SweepView
from lora_core.storage import MediaStore

SHEET_NAME = "contact-sheet.png"


def sheet(view: SweepView, *, store: MediaStore) -> bytes:
    """The contact sheet as PNG bytes."""
    return _sheet(view, _images(view, store))


def archive(view: SweepView, *, store: MediaStore) -> bytes:
    """The zip: `contact-sheet.png`, `images/r<row>-c<column>.jpg`, and `manifest.json` and
    `manifest.csv`, one row per cell, row by row."""
    images = _images(view, store)
    buffer = io.BytesIO()
    rows = []
    with zipfile.ZipFile(buffer, "w", zipfile.ZIP_DEFLATED) as zipped:
        zipped.writestr(SHEET_NAME, _sheet(view, images))
        for place in sorted(view.cells, key=lambda at: (at[1], at[0])):
            cell = view.cells[place]
            name = None
            if (data := images.get(place)) is not None:
                name = f"images/r{cell.y + 1}-c{cell.x + 1}.jpg"
                zipped.writestr(name, data)
            rows.append(_manifest_row(view, cell, name))
        zipped.writestr("manifest.json", json.dumps(rows, indent=2, ensure_ascii=False))
        zipped.writestr("manifest.csv", pd.DataFrame(rows).to_csv(index=False))
    return buffer.getvalue()


def file_stem(view: SweepView) -> str:
    return f"sweep-{view.sweep.id[:8]}"


def _sheet(view: SweepView, images: dict[tuple[int, int], bytes]) -> bytes:
    return contact_sheet(
        {place: images.get(place) for place in view.cells},
        x_labels=view.x_labels,
        y_labels=view.y_labels,
        title=view.title,
    )


def _images(view: SweepView, store: MediaStore) -> dict[tuple[int, int], bytes]:
    """Each cell's image file, fetched at once; cells without one are left out."""
    shown = {
        place: cell.image
        for place, cell in view.cells.items()
        if cell.image is not None and not cell.image.nsfw
    }

    def fetch(url: str) -> bytes | None:
        try:
            return read_image(url, store=store, client=client)
        except DownloadFailed:
            return None

    with (
        web.client(timeout=FETCH_TIMEOUT_SECONDS, follow_redirects=True) as client,
        ThreadPoolExecutor(max_workers=max(min(len(shown), 8), 1)) as pool,
    ):
        contents = pool.map(fetch, [image.image_url for image in shown.values()])
        found = dict(zip(shown, contents, strict=True))
    return {place: data for place, data in found.items() if data is not None}


def _manifest_row(view: SweepView, cell: CellView, name: str | None) -> dict[str, object]:
    return {
        "row": cell.y + 1,
        "column": cell.x + 1,
        "x": view.x_labels[cell.x] if cell.x < len(view.x_labels) else "",
        "y": view.y_labels[cell.y] if cell.y < len(view.y_labels) else "",
        "file": name,
        "status": cell.status.value,
        "error": cell.error,
        "prompt": cell.prompt,
        "lora_id": None if cell.lora_id == NO_LORA else cell.lora_id,
        "lora_scale": cell.recipe.lora_scale,
        "seed": None if cell.recipe.seed is None else str(cell.recipe.seed),
        "steps": cell.recipe.steps,
        "guidance": cell.recipe.guidance,
        "image_size": cell.recipe.image_size,
        "added_loras": stacks.as_text(cell.recipe.stack),
        "image_url": cell.image.image_url if cell.image is not None else None,
    }
