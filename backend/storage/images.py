"""Image checks by content (never by file name) and thumbnails, with Pillow."""

from __future__ import annotations

import io

from PIL import Image, ImageOps, UnidentifiedImageError

from backend.errors import ValidationFailed

ALLOWED_FORMATS = {"JPEG", "PNG", "WEBP", "GIF"}
MAX_PIXELS = 40_000_000  # refuse decompression bombs before decoding


def load_image(data: bytes, *, field: str, max_bytes: int) -> Image.Image:
    if len(data) > max_bytes:
        raise ValidationFailed({field: f"Images must be at most {max_bytes // (1024 * 1024)} MB"})
    try:
        probe = Image.open(io.BytesIO(data))
        fmt = probe.format
        if fmt not in ALLOWED_FORMATS:
            raise ValidationFailed({field: "Upload a JPEG, PNG, WebP or GIF image"})
        if probe.width * probe.height > MAX_PIXELS:
            raise ValidationFailed({field: "That image is too large"})
        probe.verify()  # catches truncated/corrupt files; the image must be reopened after
        image = Image.open(io.BytesIO(data))
        image.load()
    except (UnidentifiedImageError, OSError, SyntaxError, Image.DecompressionBombError):
        raise ValidationFailed({field: "That file is not an image we can read"}) from None
    return image


def thumbnail(image: Image.Image, size: int, *, square: bool = False) -> bytes:
    """JPEG no larger than size x size; `square` crops the centre first (avatars, grid thumbnails)."""
    image = ImageOps.exif_transpose(image).convert("RGB")
    if square:
        side = min(image.size)
        left, top = (image.width - side) // 2, (image.height - side) // 2
        image = image.crop((left, top, left + side, top + side)).resize((size, size), Image.LANCZOS)
    else:
        image.thumbnail((size, size), Image.LANCZOS)
    out = io.BytesIO()
    image.save(out, "JPEG", quality=85, optimize=True)
    return out.getvalue()
