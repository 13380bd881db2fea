"""Colours: "#RRGGBB" parsing and WCAG 2 contrast (https://www.w3.org/TR/WCAG21/#dfn-contrast-ratio), shared by the
brand colour check (tenancy), the app icons (storage) and the emails' colours (notifications)."""

from __future__ import annotations

import re

RGB = tuple[int, int, int]
WHITE = "#FFFFFF"
AA_NORMAL_TEXT = 4.5  # WCAG 2 AA for normal text

_HEX = re.compile(r"^#?([0-9a-fA-F]{6})$")


def rgb(hex_colour: str) -> RGB:
    """(r, g, b) of "#RRGGBB" (the "#" optional); ValueError for anything else."""
    match = _HEX.match(hex_colour.strip())
    if not match:
        raise ValueError(f"not a #RRGGBB colour: {hex_colour!r}")
    value = match.group(1)
    return int(value[0:2], 16), int(value[2:4], 16), int(value[4:6], 16)


def relative_luminance(colour: str | RGB) -> float:
    def channel(c: int) -> float:
        s = c / 255
        return s / 12.92 if s <= 0.04045 else ((s + 0.055) / 1.055) ** 2.4

    r, g, b = (channel(c) for c in (rgb(colour) if isinstance(colour, str) else colour))
    return 0.2126 * r + 0.7152 * g + 0.0722 * b


def contrast_ratio(a: str | RGB, b: str | RGB) -> float:
    """From 1 (the same) to 21 (black on white); symmetric."""
    light, dark = sorted((relative_luminance(a), relative_luminance(b)), reverse=True)
    return (light + 0.05) / (dark + 0.05)
