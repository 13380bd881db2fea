"""One whole order with the keyboard alone, in Chromium: a new client signs up and posts a request, the seeded plumber
quotes through the quote dialog, the client accepts, pays on the demo checkout, writes in the order chat, the pro
starts and delivers, the client completes. Nothing is clicked or filled: focus moves with Tab, Shift+Tab and the arrow
keys, Enter and Space press, Escape closes, text is typed. Locators only check what has focus (and what a page shows).

Along the way: the skip link is the first Tab stop and moves focus to the main content, also after a link inside the
app (the new page takes focus to its start, as a page load would); focus is visible (an outline
or a box shadow) where it lands; dialogs take focus in, keep Tab inside (a focus trap), close on Escape and give focus
back to the button that opened them, whether Radix opened them (confirmations) or the state did (the quote dialog, the
dispute note)."""

from __future__ import annotations

import re
import uuid

import pytest
from playwright.sync_api import Locator, Page, expect

from tests.e2e.conftest import PASSWORD, RunningApp, unique_email

DIALOG = "[role=dialog], [role=alertdialog]"
ORDER_PATH = re.compile(r"/orders/\d+/?$")

DESCRIBE_FOCUS = """() => {
  const e = document.activeElement;
  if (!e || e === document.body) return 'body';
  const label = e.getAttribute('aria-label') || (e.labels && e.labels.length ? e.labels[0].textContent : '')
    || e.textContent || e.getAttribute('placeholder') || '';
  return `${e.tagName.toLowerCase()}${e.id ? '#' + e.id : ''}${e.getAttribute('role') ? '[role=' +
    e.getAttribute('role') + ']' : ''} "${label.trim().replace(/\\s+/g, ' ').slice(0, 40)}"`;
}"""

# A focus indicator: an outline (or a box shadow) on the focused element, its ::after (Radix radio cards draw the ring
# there), or the text field's frame (Radix draws an input's ring on the wrapper around it).
FOCUS_RING = """(el) => {
  const ring = (n, pseudo) => {
    if (!n) return '';
    const s = getComputedStyle(n, pseudo);
    const drawn = s.outlineStyle !== 'none' && parseFloat(s.outlineWidth) > 0;
    return drawn ? `outline ${s.outlineWidth} ${s.outlineStyle}` : '';
  };
  const own = getComputedStyle(el).boxShadow;
  return ring(el, null) || ring(el, '::after') || ring(el.closest('.rt-TextFieldRoot, .rt-TextAreaRoot'), null)
    || (own && own !== 'none' ? `box-shadow ${own}` : '');
}"""


def focus_is_on(target: Locator) -> bool:
    return target.evaluate_all("els => els.includes(document.activeElement)")


def tab_to(page: Page, role: str, name: str | re.Pattern, *, within: Locator | None = None, back: bool = False,
           exact: bool = True, presses: int = 80) -> Locator:
    """Press Tab (Shift+Tab if `back`) until the control with this role and accessible name has focus; fail with the
    list of what got focus on the way. Returns the control."""
    scope = within if within is not None else page
    target = scope.get_by_role(role, name=name, exact=exact) if isinstance(name, str) else \
        scope.get_by_role(role, name=name)
    expect(target.first).to_be_visible()
    seen = []
    for _ in range(presses):
        if focus_is_on(target):
            return target
        page.keyboard.press("Shift+Tab" if back else "Tab")
        seen.append(page.evaluate(DESCRIBE_FOCUS))
    if focus_is_on(target):
        return target
    pytest.fail(f"{presses} presses of {'Shift+Tab' if back else 'Tab'} never reached the {role} {name!r}; focus "
                f"went to:\n  " + "\n  ".join(seen), pytrace=False)


def press_on(page: Page, role: str, name: str | re.Pattern, key: str = "Enter", **kw) -> Locator:
    """Tab to the control, then press `key` on it."""
    target = tab_to(page, role, name, **kw)
    page.keyboard.press(key)
    return target


def type_into(page: Page, role: str, name: str, text: str, *, replace: bool = False, **kw) -> None:
    """Tab to a field and type `text` (after selecting what it holds, if `replace`)."""
    tab_to(page, role, name, **kw)
    if replace:
        page.keyboard.press("ControlOrMeta+A")
    page.keyboard.type(text)


def assert_focus_visible(page: Page, where: str) -> None:
    ring = page.evaluate(f"() => ({FOCUS_RING})(document.activeElement)")
    assert ring, f"{where}: the focused element {page.evaluate(DESCRIBE_FOCUS)} shows no focus ring"


def assert_focus_in_dialog(page: Page) -> None:
    assert page.evaluate(f"() => !!document.activeElement.closest('{DIALOG}')"), \
        f"focus left the open dialog: {page.evaluate(DESCRIBE_FOCUS)}"


def assert_focus_trapped(page: Page, presses: int = 12) -> None:
    """Tab and Shift+Tab, more times than the dialog has controls: focus never leaves it."""
    expect(page.locator(DIALOG)).to_be_visible()
    assert_focus_in_dialog(page)
    for key in ["Tab"] * presses + ["Shift+Tab"] * presses:
        page.keyboard.press(key)
        assert_focus_in_dialog(page)


def escape_returns_focus(page: Page, opener: Locator) -> None:
    """Escape closes the open dialog and focus goes back to the button that opened it."""
    page.keyboard.press("Escape")
    expect(page.locator(DIALOG)).to_have_count(0)
    expect(opener).to_be_focused()


def skip_link_first(page: Page) -> None:
    """On a freshly opened page: the first Tab stop is "Skip to content", which sends focus to the main content."""
    page.keyboard.press("Tab")
    expect(page.get_by_role("link", name="Skip to content")).to_be_focused()
    assert_focus_visible(page, "skip link")
    page.keyboard.press("Enter")
    expect(page.locator("main#main-content")).to_be_focused()


def log_in(page: Page, app: RunningApp, email: str, home: str) -> None:
    page.goto(app.url("/login"))
    type_into(page, "textbox", "Email", email)
    type_into(page, "textbox", "Password", PASSWORD)
    press_on(page, "button", "Log in")
    expect(page).to_have_url(app.at(home))


def test_a_whole_order_with_the_keyboard_alone(new_context, app):
    title = f"Dripping shower {uuid.uuid4().hex[:6]}"
    message = "Can you bring a spare cartridge?"

    # --- a new client signs up ---
    client = new_context().new_page()
    client.goto(app.url("/signup"))
    expect(client.get_by_role("heading", name="Create your account")).to_be_visible()
    skip_link_first(client)
    hire = tab_to(client, "radio", re.compile("^Hire a pro"))  # the role group: one Tab stop, arrow keys choose
    expect(hire).to_have_attribute("aria-checked", "true")
    assert_focus_visible(client, "role choice")
    client.keyboard.press("ArrowRight")
    offer = client.get_by_role("radio", name=re.compile("^Offer services"))
    expect(offer).to_be_focused()
    expect(offer).to_have_attribute("aria-checked", "true")
    client.keyboard.press("ArrowLeft")
    expect(hire).to_be_focused()
    expect(hire).to_have_attribute("aria-checked", "true")
    type_into(client, "textbox", "Full name", "Kim Keyboard")
    assert_focus_visible(client, "Full name")
    type_into(client, "textbox", "Email", unique_email("kim"))
    type_into(client, "textbox", "Password", PASSWORD)
    press_on(client, "button", "Create account")
    expect(client).to_have_url(app.at("/client"))

    # --- posts a request ---
    press_on(client, "link", "Post a request")
    expect(client).to_have_url(app.at("/requests/new"))
    category = tab_to(client, "combobox", "Category")
    assert_focus_visible(client, "category select")
    client.keyboard.press("Enter")  # opens the list; arrows move, Enter chooses
    expect(client.get_by_role("listbox")).to_be_visible()
    plumbing = client.get_by_role("option", name="Plumbing")
    for _ in range(20):
        if focus_is_on(plumbing):
            break
        client.keyboard.press("ArrowDown")
    expect(plumbing).to_be_focused()
    client.keyboard.press("Enter")
    expect(client.get_by_role("listbox")).to_have_count(0)
    expect(category).to_be_focused()
    expect(category).to_contain_text("Plumbing")
    type_into(client, "textbox", "Title", title)
    type_into(client, "textbox", "Description", "The shower drips all night; the cartridge may be worn out.")
    type_into(client, "combobox", "City", "Austin")
    type_into(client, "textbox", "Budget from", "50")
    type_into(client, "textbox", "Budget up to", "150")
    press_on(client, "button", "Post request")
    expect(client).to_have_url(re.compile(r"/requests/\d+/?$"))
    request_url = client.url

    # --- the professional finds the lead and quotes through the quote dialog ---
    pro = new_context().new_page()
    log_in(pro, app, "diego@demo.example", "/pro")
    press_on(pro, "link", "Leads")
    expect(pro).to_have_url(app.at("/pro/leads"))
    type_into(pro, "searchbox", "Search your leads", title)
    pro.keyboard.press("Enter")
    lead = pro.locator(".lead-card", has_text=title)
    expect(lead).to_be_visible()
    expect(pro.locator(".lead-card")).to_have_count(1)
    send_quote = tab_to(pro, "button", "Send quote", within=lead)
    assert_focus_visible(pro, "Send quote")
    pro.keyboard.press("Enter")
    dialog = pro.get_by_role("dialog", name="Send a quote")
    expect(dialog).to_be_visible()
    expect(dialog.get_by_role("textbox", name="Price")).to_be_focused()  # focus moved into the dialog
    assert_focus_trapped(pro)
    escape_returns_focus(pro, send_quote)

    pro.keyboard.press("Enter")  # the same button opens it again
    expect(dialog.get_by_role("textbox", name="Price")).to_be_focused()
    pro.keyboard.type("120")
    type_into(pro, "textbox", "Message", "I can come tomorrow morning with a cartridge.", within=dialog)
    press_on(pro, "button", "Send quote", within=dialog)
    expect(pro.get_by_text("Quote sent.")).to_be_visible()
    expect(pro.locator(DIALOG)).to_have_count(0)

    # --- the client accepts the quote (a confirmation dialog) ---
    client.goto(request_url)
    card = client.locator(".quote-card", has_text="Diego Ramos")
    expect(card).to_contain_text("$120.00")
    accept = press_on(client, "button", "Accept quote", within=card)
    confirm = client.get_by_role("alertdialog", name="Accept this quote?")
    expect(confirm).to_be_visible()
    assert_focus_trapped(client, presses=4)
    escape_returns_focus(client, accept)
    client.keyboard.press("Enter")
    expect(confirm).to_be_visible()
    press_on(client, "button", "Accept", within=confirm)
    expect(client).to_have_url(ORDER_PATH)
    order_url = client.url
    expect(client.locator("#order-state")).to_contain_text("accepted")

    # --- pays on the demo checkout with the demo card ---
    press_on(client, "button", "Pay into escrow")
    expect(client).to_have_url(re.compile(r"/pay/demo/demo_cs_"))
    type_into(client, "textbox", "Card number", "4242 4242 4242 4242", replace=True)
    assert_focus_visible(client, "card number")
    press_on(client, "button", re.compile(r"^Authorise"))
    expect(client).to_have_url(re.compile(re.escape(order_url.rstrip("/")) + r"/?\?checkout=demo_cs_"))
    expect(client.locator("#order-state")).to_contain_text("paid")

    # --- writes in the order chat ---
    press_on(client, "link", "Order chat")
    expect(client).to_have_url(re.compile(r"/messages/\d+/?$"))
    # the address changes while the order page is still shown (the chat's code is on its way): start from the top
    # once the conversation is on screen, as a user would
    expect(client.get_by_role("textbox", name="Message")).to_be_visible()
    skip_link_first(client)
    type_into(client, "textbox", "Message", message)
    press_on(client, "button", "Send")
    expect(client.locator(".message-body", has_text=message)).to_be_visible()

    # --- the professional reads it, starts and delivers ---
    pro.goto(order_url)
    expect(pro.locator("#order-state")).to_contain_text("paid")
    tab_to(pro, "link", "Order chat")
    assert_focus_visible(pro, "Order chat link")
    pro.keyboard.press("Enter")
    expect(pro.locator(".message-body", has_text=message)).to_be_visible()
    pro.goto(order_url)
    press_on(pro, "button", "Start work")
    expect(pro.locator("#order-state")).to_contain_text("in progress")
    press_on(pro, "button", "Mark as delivered")
    expect(pro.locator("#order-state")).to_contain_text("delivered")

    # --- the client completes (a dispute note opened and closed on the way: a dialog the state opens) ---
    client.goto(order_url)
    expect(client.locator("#order-state")).to_contain_text("delivered")
    dispute = press_on(client, "button", "Open a dispute")
    expect(client.get_by_role("dialog")).to_be_visible()
    assert_focus_trapped(client, presses=6)
    escape_returns_focus(client, dispute)
    complete = press_on(client, "button", "Approve and complete", back=True)
    confirm = client.get_by_role("alertdialog")
    expect(confirm).to_be_visible()
    assert_focus_in_dialog(client)
    escape_returns_focus(client, complete)
    client.keyboard.press("Space")
    expect(confirm).to_be_visible()
    press_on(client, "button", "Approve and complete", within=confirm)
    expect(client.locator("#order-state")).to_contain_text("completed")
    expect(pro.locator("#order-state")).to_contain_text("completed")
