"""A sweep's contact sheet: its cells in one image, with the axes' labels along the top and
the left, as kohya's sample grids and AUTOMATIC1111's X/Y plots are shared.

Drawn with Pillow as a PNG; the labels are also in the PNG's text chunks (`title`,
`x_labels`, `y_labels`, one per line), so a script can read what the grid shows.
"""

from __future__ import annotations

import io
from collections.abc import Mapping, Sequence

from PIL import Image, ImageDraw, ImageFont, ImageOps, PngImagePlugin, UnidentifiedImageError

CELL = 256  # pixels a side per cell
GAP = 4
BACKGROUND = "white"
INK = "#0f0c1a"
MISSING = "#ece9f7"


def contact_sheet(
    cells: Mapping[tuple[int, int], bytes | None],
    *,
    x_labels: Sequence[str],
    y_labels: Sequence[str],
    title: str,
    cell: int = CELL,
) -> bytes:
    """The grid of `cells` ((column, row) -> image bytes, None for a failed or missing
    one, drawn as a labelled blank) as PNG bytes."""
    columns, rows = max(len(x_labels), 1), max(len(y_labels), 1)
    font = ImageFont.load_default(size=max(cell // 14, 12))
    left = _label_width(y_labels, font) if any(y_labels) else GAP
    top = 2 * (font.size + 2 * GAP) if any(x_labels) else font.size + 2 * GAP
    width = left + columns * (cell + GAP) + GAP
    height = top + rows * (cell + GAP) + GAP
    sheet = Image.new("RGB", (width, height), BACKGROUND)
    draw = ImageDraw.Draw(sheet)
    draw.text((GAP, GAP), _fit(title, font, width - 2 * GAP), font=font, fill=INK)
    for column, label in enumerate(x_labels):
        x = left + column * (cell + GAP)
        draw.text(
            (x + GAP, top - font.size - GAP), _fit(label, font, cell - GAP), font=font, fill=INK
        )
    for row, label in enumerate(y_labels):
        y = top + row * (cell + GAP)
        draw.text((GAP, y + GAP), _fit(label, font, left - 2 * GAP), font=font, fill=INK)
    for row in range(rows):
        for column in range(columns):
            origin = (left + column * (cell + GAP), top + row * (cell + GAP))
            picture = _picture(cells.get((column, row)), cell)
            if picture is None:
                draw.rectangle((*origin, origin[0] + cell - 1, origin[1] + cell - 1), fill=MISSING)
                draw.text((origin[0] + GAP, origin[1] + GAP), "no image", font=font, fill=INK)
            else:
                sheet.paste(picture, origin)
    info = PngImagePlugin.PngInfo()
    info.add_text("title", title)
    info.add_text("x_labels", "\n".join(x_labels))
    info.add_text("y_labels", "\n".join(y_labels))
    buffer = io.BytesIO()
    sheet.save(buffer, format="PNG", pnginfo=info, optimize=True)
    return buffer.getvalue()


def _picture(data: bytes | None, side: int) -> Image.Image | None:
    """The image fitted into a square of `side` (letterboxed), or None if there is none."""
    if not data:
        return None
    try:
        with Image.open(io.BytesIO(data)) as image:
            fitted = ImageOps.pad(image.convert("RGB"), (side, side), color=BACKGROUND)
    except (UnidentifiedImageError, OSError):
        return None
    return fitted


def _label_width(labels: Sequence[str], font: ImageFont.FreeTypeFont) -> int:
    widest = max((font.getlength(label) for label in labels), default=0)
    return int(min(widest, CELL)) + 3 * GAP


def _fit(text: str, font: ImageFont.FreeTypeFont, width: float) -> str:
    """`text`, cut with an ellipsis to fit `width` pixels."""
    if font.getlength(text) <= width:
        return text
    while text and font.getlength(text + "…") > width:
        text = text[:-1]
    return text + "…"
