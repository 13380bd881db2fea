"""WCAG 2 contrast of a marketplace's brand colour (the ratio itself: backend/colour.py).

The brand colour fills buttons under white text and colours links and icons on white, so both must reach AA for
normal text (4.5:1). The ratio is symmetric, so white text on the colour and the colour on white are one number.
A colour that falls short is refused with the nearest darker shade of the same hue that passes.
"""

from __future__ import annotations

import colorsys

from backend.colour import AA_NORMAL_TEXT, WHITE, contrast_ratio, rgb


def _hex(r: float, g: float, b: float) -> str:
    return "#{:02X}{:02X}{:02X}".format(*(max(0, min(255, round(c * 255))) for c in (r, g, b)))


def passing_shade(hex_colour: str, against: str = WHITE, minimum: float = AA_NORMAL_TEXT) -> str:
    """The lightest shade of `hex_colour` (same hue and saturation, lower lightness) with at least `minimum`
    contrast against `against` (white); the colour itself if it already passes."""
    if contrast_ratio(hex_colour, against) >= minimum:
        return hex_colour.upper()
    r, g, b = (c / 255 for c in rgb(hex_colour))
    hue, lightness, saturation = colorsys.rgb_to_hls(r, g, b)
    low, high = 0.0, lightness  # black always passes against white; the colour itself does not
    for _ in range(30):
        mid = (low + high) / 2
        if contrast_ratio(_hex(*colorsys.hls_to_rgb(hue, mid, saturation)), against) >= minimum:
            low = mid
        else:
            high = mid
    shade = _hex(*colorsys.hls_to_rgb(hue, low, saturation))
    while contrast_ratio(shade, against) < minimum:  # rounding to whole channels can land just short
        low = max(0.0, low - 1 / 255)
        shade = _hex(*colorsys.hls_to_rgb(hue, low, saturation))
    return shade


def brand_contrast_problem(hex_colour: str) -> str | None:
    """None if white text on the colour (and the colour on white) reaches 4.5:1, else the field's message."""
    ratio = contrast_ratio(hex_colour, WHITE)
    if ratio >= AA_NORMAL_TEXT:
        return None
    return (f"White text on {hex_colour.upper()} has a contrast of {ratio:.2f}:1, and {hex_colour.upper()} text on "
            f"white the same; both need at least {AA_NORMAL_TEXT}:1 to be readable (WCAG AA). Try a darker shade "
            f"such as {passing_shade(hex_colour)}.")
