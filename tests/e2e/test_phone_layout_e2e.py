"""Every page, for every role, on a 360 x 740 phone: nothing wider than the screen (no sideways scrolling of the
page; wide tables scroll inside their own labelled region), and the primary actions (submit buttons and solid
call-to-action buttons) at least 44 px tall, a thumb's target."""

from __future__ import annotations

import pytest

from tests.e2e.test_accessibility_e2e import ROLES, open_page, routes_of, sign_in, world  # noqa: F401 (fixture)

PHONE = {"width": 360, "height": 740}
MIN_TARGET = 44
PRIMARY = "main button[type=submit], main .rt-Button.rt-variant-solid"

# What sticks out past the screen's edge (outside the scrolling boxes meant for it), and primary actions too short.
MEASURE = """([selector, min]) => {
  const describe = e => `${e.tagName.toLowerCase()}${e.id ? '#' + e.id : ''}.${[...e.classList].slice(0, 3).join('.')}`;
  const wide = [...document.querySelectorAll('body *')].filter(e => {
    const r = e.getBoundingClientRect();
    return r.width > 0 && r.right > document.documentElement.clientWidth + 1
      && !e.closest('.table-scroll, [data-radix-scroll-area-viewport]');
  }).slice(0, 5).map(e => `${describe(e)} (right ${Math.round(e.getBoundingClientRect().right)})`);
  const small = [...document.querySelectorAll(selector)].filter(e => {
    const r = e.getBoundingClientRect();
    return r.width > 0 && r.height > 0 && r.height < min;
  }).map(e => `"${(e.innerText || e.getAttribute('aria-label') || '').trim().slice(0, 30)}"`
              + ` ${Math.round(e.getBoundingClientRect().height)}px`);
  return {scrollWidth: document.documentElement.scrollWidth, wide, small};
}"""


@pytest.mark.parametrize("role", list(ROLES))
def test_every_page_fits_a_phone_and_primary_actions_are_thumb_sized(role, app, world, browser, capsys):  # noqa: F811
    context = browser.new_context(viewport=PHONE, is_mobile=True, has_touch=True)
    try:
        page = context.new_page()
        sign_in(page, app, role)
        problems, lines = [], []
        for path in routes_of(role, world):
            open_page(page, app, path)
            m = page.evaluate(MEASURE, [PRIMARY, MIN_TARGET])
            lines.append(f"  {path:<40} scrollWidth={m['scrollWidth']} small targets={len(m['small'])}")
            if m["scrollWidth"] > PHONE["width"]:
                problems.append(f"{path}: the page is {m['scrollWidth']} px wide; past the edge: {m['wide']}")
            if m["small"]:
                problems.append(f"{path}: primary actions under {MIN_TARGET} px: {m['small']}")
        with capsys.disabled():
            print(f"\n360 px phone, as {role}:\n" + "\n".join(lines))
    finally:
        context.close()
    if problems:
        pytest.fail("\n".join(problems), pytrace=False)
