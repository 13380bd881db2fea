"""A marketplace's brand colour must carry white text (and read on white) at WCAG AA, 4.5:1."""

from __future__ import annotations

import pytest

from backend.errors import ValidationFailed
from backend.colour import WHITE, contrast_ratio, relative_luminance
from backend.tenancy.contrast import brand_contrast_problem, passing_shade
from backend.tenancy.models import TenantBranding
from backend.validation import parse_input


def test_relative_luminance_and_ratio_match_the_wcag_definition():
    assert relative_luminance("#FFFFFF") == pytest.approx(1.0)
    assert relative_luminance("#000000") == pytest.approx(0.0)
    assert contrast_ratio("#000000", WHITE) == pytest.approx(21.0)
    assert contrast_ratio(WHITE, WHITE) == pytest.approx(1.0)
    # the reference grey: #767676 is the lightest that passes on white, #777777 just fails
    assert contrast_ratio("#767676", WHITE) == pytest.approx(4.54, abs=0.01)
    assert contrast_ratio("#777777", WHITE) < 4.5
    assert contrast_ratio("#4F46E5", WHITE) == contrast_ratio(WHITE, "#4F46E5")  # symmetric


@pytest.mark.parametrize("colour", ["#F59E0B", "#22C55E", "#3B82F6", "#FFFFFF", "#FDE047", "#0EA5E9"])
def test_the_suggested_shade_passes_keeps_the_hue_and_is_the_lightest_that_does(colour):
    shade = passing_shade(colour)
    assert contrast_ratio(shade, WHITE) >= 4.5
    assert relative_luminance(shade) < relative_luminance(colour)
    # one step lighter (every channel +1, capped) no longer passes, or the shade is as light as it can get
    r, g, b = (int(shade[i:i + 2], 16) for i in (1, 3, 5))
    lighter = "#{:02X}{:02X}{:02X}".format(*(min(255, c + 2) for c in (r, g, b)))
    assert contrast_ratio(lighter, WHITE) < 4.5 + 0.2


def test_a_passing_colour_is_its_own_shade_and_has_no_problem():
    assert passing_shade("#4f46e5") == "#4F46E5"
    assert brand_contrast_problem("#4F46E5") is None


def test_a_light_brand_colour_is_refused_with_a_darker_shade_in_the_message():
    with pytest.raises(ValidationFailed) as refused:
        parse_input(TenantBranding, {"name": "Sunny", "primary_color": "#f59e0b"})
    message = refused.value.errors["primary_color"]
    assert "2.15:1" in message and "4.5:1" in message
    shade = passing_shade("#F59E0B")
    assert shade in message
    assert parse_input(TenantBranding, {"name": "Sunny", "primary_color": shade}).primary_color == shade


def test_the_seeded_marketplaces_brand_colours_pass():
    import inspect

    import backend.seed as seed

    source = inspect.getsource(seed.seed)
    for colour in ("#4F46E5", "#0F766E"):
        assert colour in source
        assert brand_contrast_problem(colour) is None
