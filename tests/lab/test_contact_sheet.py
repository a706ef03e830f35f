"""A sweep's contact sheet: every cell in place, labels drawn and readable, failures shown."""

from __future__ import annotations

import io

from PIL import Image

from lora_core.lab.contact_sheet import CELL, GAP, contact_sheet


def picture(color: str, size=(512, 512)) -> bytes:
    buffer = io.BytesIO()
    Image.new("RGB", size, color).save(buffer, "JPEG")
    return buffer.getvalue()


def test_a_2x3_sheet_places_every_cell_under_its_labels():
    colors = {(0, 0): "red", (1, 0): "green", (2, 0): "blue",
              (0, 1): "yellow", (1, 1): "purple", (2, 1): "orange"}  # fmt: skip
    cells = {place: picture(color) for place, color in colors.items()}

    data = contact_sheet(
        cells, x_labels=["scale 0", "scale 1", "scale 2"], y_labels=["wtr", "no LoRA"],
        title="a lighthouse · seed 1234",
    )  # fmt: skip

    with Image.open(io.BytesIO(data)) as sheet:
        assert sheet.format == "PNG"
        assert sheet.info["x_labels"].split("\n") == ["scale 0", "scale 1", "scale 2"]
        assert sheet.info["y_labels"].split("\n") == ["wtr", "no LoRA"]
        assert sheet.info["title"] == "a lighthouse · seed 1234"
        width, height = sheet.size
        left = width - 3 * (CELL + GAP) - GAP
        top = height - 2 * (CELL + GAP) - GAP
        assert left > 50 and top > 20  # room for the row labels and the column labels
        rgb = sheet.convert("RGB")
        for (column, row), color in colors.items():
            center = (
                left + column * (CELL + GAP) + CELL // 2,
                top + row * (CELL + GAP) + CELL // 2,
            )
            expected = Image.new("RGB", (1, 1), color).getpixel((0, 0))
            assert all(abs(a - b) < 40 for a, b in zip(rgb.getpixel(center), expected, strict=True))
        label_strip = rgb.crop((0, top, left, top + CELL))
        assert label_strip.getextrema() != ((255, 255),) * 3  # text drawn beside the rows


def test_a_failed_cell_is_a_labelled_blank_and_odd_shapes_are_letterboxed():
    cells = {(0, 0): picture("red", (1024, 576)), (1, 0): None, (2, 0): b"not an image"}

    data = contact_sheet(cells, x_labels=["a", "b", "c"], y_labels=[""], title="t")

    with Image.open(io.BytesIO(data)) as sheet:
        rgb = sheet.convert("RGB")
        width, height = sheet.size
        top = height - (CELL + GAP) - GAP
        left = width - 3 * (CELL + GAP) - GAP
        assert rgb.getpixel((left + CELL // 2, top + 5)) == (255, 255, 255)  # letterbox
        blank = rgb.getpixel((left + (CELL + GAP) + CELL - 5, top + CELL - 5))
        assert blank == Image.new("RGB", (1, 1), "#ece9f7").getpixel((0, 0))
