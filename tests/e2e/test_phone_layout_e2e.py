"""Every page, for every role, on a 360 x 740 phone: nothing wider than the screen (no sideways scrolling of the
page; wide tables scroll inside their own labelled region), and the primary actions (submit buttons and solid
call-to-action buttons) at least 44 px tall, a thumb's target."""

from __future__ import annotations

import re

import pytest
from playwright.sync_api import expect

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


@pytest.mark.parametrize("role, tabs", [
    ("client", ["Home", "Requests", "Find pros", "Orders", "Messages"]),
    ("professional", ["Home", "Leads", "Orders", "Earnings", "Messages"]),
    ("tenant admin", ["Dashboard", "Operations", "Users", "Orders", "Messages"]),
])
def test_a_phone_has_the_main_destinations_at_the_bottom_within_a_thumbs_reach(role, tabs, app, browser):
    context = browser.new_context(viewport=PHONE, is_mobile=True, has_touch=True)
    try:
        page = context.new_page()
        sign_in(page, app, role)
        bar = page.get_by_role("navigation", name="Shortcuts")
        expect(bar).to_be_visible()
        box = bar.bounding_box()
        assert abs(box["y"] + box["height"] - PHONE["height"]) <= 1  # fixed to the bottom edge
        links = bar.get_by_role("link")
        assert [t.strip() for t in links.all_inner_texts()] == tabs
        for link in links.all():
            assert link.bounding_box()["height"] >= MIN_TARGET
        expect(bar.get_by_role("link", name=tabs[0])).to_have_attribute("aria-current", "page")  # on the home page
        bar.get_by_role("link", name="Orders").click()
        expect(page).to_have_url(re.compile(r"/orders/?$"))
        expect(bar.get_by_role("link", name="Orders")).to_have_attribute("aria-current", "page")
        # the last of the page is not hidden behind the bar: scrolled to the end, the footer ends above it (measured
        # in page coordinates, so content still arriving cannot move it between the scroll and the measure)
        room = page.evaluate("""() => {
          const footer = document.querySelector('footer').getBoundingClientRect();
          const bar = document.getElementById('phone-tabs').getBoundingClientRect();
          return document.documentElement.scrollHeight - (footer.bottom + window.scrollY) - bar.height;
        }""")
        assert room >= -1, f"the bar covers the last {-room:.0f} px of the page"
    finally:
        context.close()
    # on a desktop the header's links are the navigation and the bar is not shown
    desktop = browser.new_context(viewport={"width": 1280, "height": 800})
    try:
        page = desktop.new_page()
        sign_in(page, app, role)
        expect(page.get_by_role("navigation", name="Shortcuts")).to_be_hidden()
    finally:
        desktop.close()
