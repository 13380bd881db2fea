"""Small, valid files the tests upload: images made with Pillow, a PDF made with fpdf2."""

from __future__ import annotations

import io

from PIL import Image


def image(fmt: str = "PNG", size=(8, 8), color=(200, 30, 30)) -> bytes:
    out = io.BytesIO()
    Image.new("RGB", size, color).save(out, fmt)
    return out.getvalue()


def png(size=(8, 8), color=(200, 30, 30)) -> bytes:
    return image("PNG", size, color)


def jpeg(size=(64, 48), color=(200, 30, 30)) -> bytes:
    return image("JPEG", size, color)


def pdf() -> bytes:
    from fpdf import FPDF

    doc = FPDF()
    doc.add_page()
    doc.set_font("helvetica", size=12)
    doc.cell(text="Quote for the kitchen tap")
    return bytes(doc.output())
