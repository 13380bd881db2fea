"""App icons (web app manifest, home screen) drawn from a marketplace's logo or its initial on its brand colour.

Three shapes, because launchers treat icons differently:
- "any": a rounded square, transparent corners; shown as is (install dialog, desktop launchers, Windows).
- "maskable": full bleed, the content inside the central circle of 80 % of the width (the safe zone of the W3C
  manifest spec), because Android crops to a circle, squircle or teardrop of its own choosing.
- "apple": full bleed and opaque (iOS fills transparency with black and rounds the corners itself).

Pure: bytes and colours in, PNG bytes out. The logo is decoded with the same limits as every upload
(`images.load_image`: formats by content, decompression bombs refused from the header).
"""

from __future__ import annotations

import io

from PIL import Image, ImageDraw, ImageFont

from backend.colour import contrast_ratio, rgb
from backend.errors import ValidationFailed
from backend.storage.images import load_image

KINDS = ("any", "maskable", "apple")
SAFE_ZONE = 0.8  # maskable: the diameter of the circle every launcher's mask keeps, as a share of the width
LOGO_MAX_BYTES = 5 * 1024 * 1024
WHITE, INK = (255, 255, 255), (17, 24, 39)  # INK: the app's near-black text colour


def text_colour_on(background: tuple[int, int, int]) -> tuple[int, int, int]:
    """White or near-black, whichever reads better on the background."""
    return WHITE if contrast_ratio(WHITE, background) >= contrast_ratio(INK, background) else INK


def initial_of(name: str) -> str:
    """The first letter or digit of the name, upper-cased ("?" when it has none)."""
    for ch in name.strip():
        if ch.isalnum():
            return ch.upper()
    return "?"


def decode_logo(data: bytes) -> Image.Image:
    """The logo as RGBA; ValidationFailed when it is not an image we read (JPEG, PNG, WebP, GIF) or is too large."""
    return load_image(data, field="logo", max_bytes=LOGO_MAX_BYTES).convert("RGBA")


def render_icon(size: int, *, kind: str, brand: str, name: str, logo: Image.Image | None = None) -> bytes:
    """A `size`-pixel square PNG of the given kind: the logo on white when there is one, else the name's initial
    on the brand colour (white or near-black letter, whichever contrasts more)."""
    if kind not in KINDS:
        raise ValueError(f"kind must be one of {KINDS}")
    if not 16 <= size <= 1024:
        raise ValueError("size must be 16 to 1024 px")
    background = WHITE if logo is not None else rgb(brand)
    canvas = Image.new("RGBA", (size, size), (0, 0, 0, 0) if kind == "any" else (*background, 255))
    if kind == "any":
        ImageDraw.Draw(canvas).rounded_rectangle((0, 0, size - 1, size - 1), radius=round(size * 0.2),
                                                 fill=(*background, 255))
    # The box the content must fit in: the safe-zone circle's inscribed square for maskable icons (so that no
    # corner of a square logo is cut), a comfortable margin otherwise.
    box = {"any": 0.72, "maskable": SAFE_ZONE / 2 ** 0.5, "apple": 0.72}[kind] * size
    if logo is not None:
        _paste_logo(canvas, logo, box)
    else:
        _draw_initial(canvas, initial_of(name), text_colour_on(background), box)
    out = io.BytesIO()
    (canvas if kind == "any" else canvas.convert("RGB")).save(out, "PNG", optimize=True)
    return out.getvalue()


def _paste_logo(canvas: Image.Image, logo: Image.Image, box: float) -> None:
    scale = box / max(logo.width, logo.height)
    w, h = max(1, round(logo.width * scale)), max(1, round(logo.height * scale))
    fitted = logo.resize((w, h), Image.Resampling.LANCZOS)
    canvas.alpha_composite(fitted, ((canvas.width - w) // 2, (canvas.height - h) // 2))


def _draw_initial(canvas: Image.Image, letter: str, colour: tuple[int, int, int], box: float) -> None:
    draw = ImageDraw.Draw(canvas)
    font = ImageFont.load_default(size=max(8, round(box * 0.9)))
    left, top, right, bottom = draw.textbbox((0, 0), letter, font=font)
    x = (canvas.width - (right - left)) / 2 - left
    y = (canvas.height - (bottom - top)) / 2 - top
    draw.text((x, y), letter, font=font, fill=(*colour, 255), stroke_width=max(1, round(box * 0.012)),
              stroke_fill=(*colour, 255))


def safe_logo(data: bytes | None) -> Image.Image | None:
    """The decoded logo, or None when there is none or it cannot be read (the icon falls back to the initial)."""
    if not data:
        return None
    try:
        return decode_logo(data)
    except ValidationFailed:
        return None
