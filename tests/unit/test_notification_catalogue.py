"""The notification catalogue and its templates: every event renders on each of its channels, user text is escaped
where it must be and intact elsewhere, one-time links survive, SMS fit one segment, branded buttons stay readable."""

from __future__ import annotations

import html as html_lib
import re
from pathlib import Path

import pytest
from jinja2 import ChoiceLoader, DictLoader, meta

from backend.notifications import render as rendering
from backend.notifications.catalogue import (CATALOGUE, GROUP_CHANNELS, GROUP_LABELS, Event, EventSpec, Group,
                                             default_enabled, locked, spec)
from backend.notifications.models import ONE_TIME_TOKEN, Channel
from backend.notifications.render import Branding, is_gsm7, render, sms_text

BRAND = Branding(name="Acme Pros", primary_color="#4F46E5", accent_color="#F59E0B", logo_url="",
                 base_url="https://acme.example.com")
TEMPLATES = Path(rendering.__file__).parent / "templates"
GSM7_EXTENSION = set("\f^{}\\[~]|€")
ALL_EVENTS = list(Event)
SMS_EVENTS = [e for e in Event if Channel.SMS in spec(e).channels]
EMAIL_EVENTS = [e for e in Event if Channel.EMAIL in spec(e).channels]


def septets(text: str) -> int:
    return sum(2 if c in GSM7_EXTENSION else 1 for c in text)


def utf16_units(text: str) -> int:
    return len(text.encode("utf-16-le")) // 2


def luminance(hex_colour: str) -> float:
    """WCAG 2 relative luminance, written out here independently of the code under test."""
    def linear(c: float) -> float:
        return c / 12.92 if c <= 0.03928 else ((c + 0.055) / 1.055) ** 2.4
    r, g, b = (linear(int(hex_colour[i:i + 2], 16) / 255) for i in (1, 3, 5))
    return 0.2126 * r + 0.7152 * g + 0.0722 * b


def contrast(a: str, b: str) -> float:
    hi, lo = sorted((luminance(a), luminance(b)), reverse=True)
    return (hi + 0.05) / (lo + 0.05)


# --- the catalogue ---------------------------------------------------------------------------------------------

def test_every_event_has_a_spec_and_every_group_a_label():
    assert set(CATALOGUE) == set(Event)
    assert all(CATALOGUE[e].event == e for e in Event)
    assert set(GROUP_LABELS) == set(Group)
    assert GROUP_LABELS[Group.ORDERS] == "Order updates"


@pytest.mark.parametrize("event", ALL_EVENTS)
def test_defaults_are_a_subset_of_channels_and_the_sample_covers_the_context(event):
    s = spec(event)
    assert s.channels and s.defaults <= s.channels
    assert set(s.context) <= set(s.sample)


def test_a_spec_with_defaults_outside_its_channels_is_refused():
    with pytest.raises(ValueError, match="not among its channels"):
        EventSpec(event=Event.QUOTE_RECEIVED, group=Group.QUOTES, channels=frozenset({Channel.EMAIL}),
                  defaults=frozenset({Channel.SMS}), context=(), sample={})


def test_spec_accepts_the_stored_value_and_refuses_unknown_events():
    assert spec("quote_received").event == Event.QUOTE_RECEIVED
    with pytest.raises(ValueError, match="Unknown notification event: 'nope'"):
        spec("nope")


def test_only_security_is_locked():
    assert locked(Group.SECURITY) and locked("security")
    assert not any(locked(g) for g in Group if g != Group.SECURITY)


def test_group_channels_are_the_union_of_their_events_channels():
    for group in Group:
        expected = frozenset().union(*(s.channels for s in CATALOGUE.values() if s.group == group))
        assert GROUP_CHANNELS[group] == expected
    assert GROUP_CHANNELS[Group.SECURITY] == {Channel.EMAIL, Channel.SMS}
    assert GROUP_CHANNELS[Group.MESSAGES] == {Channel.EMAIL, Channel.IN_APP, Channel.PUSH}
    assert GROUP_CHANNELS[Group.ADMIN] == {Channel.EMAIL, Channel.IN_APP, Channel.PUSH}
    assert GROUP_CHANNELS[Group.LEADS] == {Channel.EMAIL, Channel.SMS, Channel.IN_APP, Channel.PUSH}


def test_channel_rules_of_the_contract():
    sms_available = {Event.LEAD_NEW, Event.LEAD_MATCHED, Event.BOOKING_REQUESTED, Event.PAYMENT_HELD,
                     Event.WORK_DELIVERED, Event.PAYOUT_SENT, Event.DISPUTE_OPENED, Event.PHONE_CODE,
                     Event.NEW_LOGIN}
    assert set(SMS_EVENTS) == sms_available
    assert {e for e in Event if Channel.SMS in spec(e).defaults} == {
        Event.LEAD_MATCHED, Event.BOOKING_REQUESTED, Event.PHONE_CODE}
    assert spec(Event.PHONE_CODE).channels == {Channel.SMS}
    assert spec(Event.VERIFY_EMAIL).channels == spec(Event.RESET_PASSWORD).channels == {Channel.EMAIL}
    assert spec(Event.NEW_LOGIN).channels == {Channel.EMAIL, Channel.SMS}
    assert spec(Event.NEW_LOGIN).defaults == {Channel.EMAIL}
    for s in CATALOGUE.values():
        if s.group not in (Group.SECURITY, Group.NEW_LEADS):   # in-app and email on for everything but these
            assert {Channel.IN_APP, Channel.EMAIL} <= s.defaults, s.event
    # a new lead nobody matched the pro to: in-app only unless they opt in, in a group of its own so that they can
    assert spec(Event.LEAD_NEW).defaults == {Channel.IN_APP}
    assert [s.event for s in CATALOGUE.values() if s.group == Group.NEW_LEADS] == [Event.LEAD_NEW]
    assert {s.event: s.group for s in CATALOGUE.values() if s.event in (
        Event.BOOKING_SENT, Event.ORDER_CANCELLED, Event.ORDER_EXPIRED)} == {
        Event.BOOKING_SENT: Group.BOOKINGS, Event.ORDER_CANCELLED: Group.ORDERS, Event.ORDER_EXPIRED: Group.ORDERS}


def test_default_enabled_per_group_and_channel():
    assert default_enabled(Group.LEADS, Channel.SMS)          # LEAD_MATCHED texts by default
    assert default_enabled(Group.NEW_LEADS, Channel.IN_APP)
    assert not default_enabled(Group.NEW_LEADS, Channel.EMAIL)  # available, but opt-in
    assert not default_enabled(Group.NEW_LEADS, Channel.SMS)
    assert default_enabled(Group.BOOKINGS, Channel.SMS)
    assert not default_enabled(Group.PAYMENTS, Channel.SMS)   # available, but opt-in
    assert not default_enabled(Group.QUOTES, Channel.SMS)     # not even available
    assert default_enabled("quotes", "email") and default_enabled(Group.MESSAGES, Channel.IN_APP)
    assert not default_enabled(Group.SECURITY, Channel.IN_APP)


# --- templates ------------------------------------------------------------------------------------------------

def _parts(s: EventSpec) -> set[str]:
    parts = {"subject"}
    if Channel.EMAIL in s.channels:
        parts |= {"txt", "html"}
    if Channel.SMS in s.channels:
        parts.add("sms")
    if Channel.IN_APP in s.channels:
        parts.add("in_app")
    return parts


def test_template_files_are_exactly_those_of_the_events_channels():
    expected = {f"{s.event}.{part}.j2" for s in CATALOGUE.values() for part in _parts(s)}
    present = {p.name for p in TEMPLATES.glob("*.j2") if not p.name.startswith("_")}
    assert present == expected


@pytest.mark.parametrize("event", ALL_EVENTS)
def test_templates_read_only_the_declared_context(event):
    """A key a template reads but the spec does not list would only fail in production, for some callers."""
    s = spec(event)
    allowed = set(s.context) | {"marketplace", "link", "s"}
    for part in _parts(s):
        source = (TEMPLATES / f"{event}.{part}.j2").read_text()
        used = meta.find_undeclared_variables(rendering._env.parse(source))
        assert used <= allowed, f"{event}.{part}.j2 reads {used - allowed}"


@pytest.mark.parametrize("event", ALL_EVENTS)
def test_every_event_renders_on_each_of_its_channels(event):
    s = spec(event)
    r = render(event, s.sample, BRAND, link="/orders/1042", unsubscribe_url="https://acme.example.com/u?t=x")
    assert r.subject and "\n" not in r.subject and len(r.subject) <= 150
    has = {Channel.EMAIL: bool(r.text and r.html), Channel.SMS: bool(r.sms),
           Channel.IN_APP: bool(r.title and r.body), Channel.PUSH: bool(r.title and r.body)}  # push shows the in-app
    assert {c for c, present in has.items() if present} == s.channels
    if Channel.EMAIL in s.channels:
        assert "https://acme.example.com/orders/1042" in r.text
        assert 'href="https://acme.example.com/orders/1042"' in r.html
        assert "Acme Pros" in r.html and "{{" not in r.html and "{%" not in r.html
    if Channel.IN_APP in s.channels:
        assert len(r.title) <= 120 and len(r.body) <= 300 and "\n" not in r.title


@pytest.mark.parametrize("event", ALL_EVENTS)
def test_a_missing_context_key_is_named(event):
    s = spec(event)
    if not s.context:
        pytest.skip("no context")
    key = s.context[-1]
    context = {k: v for k, v in s.sample.items() if k != key}
    with pytest.raises(ValueError, match=rf"'{event.value}'.*'{key}'"):
        render(event, context, BRAND)


def test_a_context_may_not_shadow_what_render_sets():
    context = {**spec(Event.QUOTE_RECEIVED).sample, "link": "https://evil.example.com"}
    with pytest.raises(ValueError, match="'link'"):
        render(Event.QUOTE_RECEIVED, context, BRAND)


def test_an_undeclared_name_in_a_template_fails_with_a_value_error(monkeypatch):
    """StrictUndefined: a template's typo is an error naming the event, not an empty gap in an email."""
    typo = DictLoader({"quote_received.subject.j2": "{{ pro_nmae }} sent you a quote"})
    monkeypatch.setattr(rendering, "_env", rendering._env.overlay(loader=ChoiceLoader([typo, rendering._env.loader])))
    with pytest.raises(ValueError, match="'quote_received'.*pro_nmae"):
        render(Event.QUOTE_RECEIVED, spec(Event.QUOTE_RECEIVED).sample, BRAND)


# --- escaping and links ---------------------------------------------------------------------------------------

def test_user_text_is_escaped_in_html_and_intact_in_text():
    nasty = '<script>alert("x")</script> Tom & Jerry'
    context = {**spec(Event.QUOTE_RECEIVED).sample, "pro_name": "Tom & Jerry", "message_excerpt": nasty}
    r = render(Event.QUOTE_RECEIVED, context, BRAND, link="/requests/7")
    assert "<script>" not in r.html
    assert "&lt;script&gt;alert(&#34;x&#34;)&lt;/script&gt; Tom &amp; Jerry" in r.html
    assert "Tom &amp; Jerry sent you a quote" in r.html
    assert nasty in r.text and "Tom & Jerry sent you a quote" in r.text
    assert r.subject.startswith("Tom & Jerry sent you a quote")
    assert nasty in r.body and r.title == "New quote from Tom & Jerry"


def test_the_marketplace_name_is_escaped_in_html():
    brand = Branding(name="Bob's <Tools> & Co", primary_color="#0F766E", accent_color="#F97316", logo_url="",
                     base_url="https://bob.example.com")
    r = render(Event.ORDER_COMPLETED, spec(Event.ORDER_COMPLETED).sample, brand, link="/orders/1")
    assert "<Tools>" not in r.html and "Bob&#39;s &lt;Tools&gt; &amp; Co" in r.html
    assert "Bob's <Tools> & Co" in r.text


@pytest.mark.parametrize("event", [Event.VERIFY_EMAIL, Event.RESET_PASSWORD])
def test_the_one_time_token_placeholder_survives_in_html_and_text_links(event):
    link = f"/verify?token={ONE_TIME_TOKEN}"
    r = render(event, spec(event).sample, BRAND, link=link)
    absolute = f"https://acme.example.com/verify?token={ONE_TIME_TOKEN}"
    assert absolute in r.text
    assert f'href="{absolute}"' in r.html
    assert "%7Bone_time_token%7D" not in r.html + r.text   # not URL-encoded
    assert r.html.count(ONE_TIME_TOKEN) >= 2                 # button and the pasteable link


def test_an_absolute_link_is_kept_and_its_ampersand_escaped_only_in_html():
    link = f"https://other.example.com/reset?a=1&token={ONE_TIME_TOKEN}"
    r = render(Event.RESET_PASSWORD, spec(Event.RESET_PASSWORD).sample, BRAND, link=link)
    assert link in r.text
    assert f'href="https://other.example.com/reset?a=1&amp;token={ONE_TIME_TOKEN}"' in r.html
    assert html_lib.unescape(r.html).count(link) >= 2


@pytest.mark.parametrize("link", ["javascript:alert(1)", "//evil.example.com/x", "orders/5", "data:text/html,x"])
def test_links_other_than_paths_and_http_urls_are_refused(link):
    with pytest.raises(ValueError, match="path starting with /"):
        render(Event.ORDER_COMPLETED, spec(Event.ORDER_COMPLETED).sample, BRAND, link=link)


def test_without_a_link_there_is_no_button():
    r = render(Event.ORDER_COMPLETED, spec(Event.ORDER_COMPLETED).sample, BRAND)
    assert "href=" not in r.html.replace('href=""', "") and "Button not working" not in r.html
    assert "https://" not in r.text


# --- footer ---------------------------------------------------------------------------------------------------

def test_text_email_ends_with_the_unsubscribe_line_when_given():
    url = "https://acme.example.com/unsubscribe?token=abc.def"
    r = render(Event.QUOTE_RECEIVED, spec(Event.QUOTE_RECEIVED).sample, BRAND, link="/r/1", unsubscribe_url=url)
    assert r.text.endswith(f"Don't want these emails? Unsubscribe: {url}")
    assert "Acme Pros\nYou get this email because you asked for or sent a quote on Acme Pros." in r.text
    assert f'href="{url}"' in r.html and "You get this email because you asked for or sent a quote" in r.html


def test_without_an_unsubscribe_url_the_footer_has_no_unsubscribe_line():
    r = render(Event.RESET_PASSWORD, spec(Event.RESET_PASSWORD).sample, BRAND, link="/reset?token=x")
    assert "Unsubscribe" not in r.text and "Unsubscribe" not in r.html
    assert r.text.endswith("Security emails can't be turned off.")


@pytest.mark.parametrize("group", list(Group))
def test_every_group_says_why_you_get_its_emails(group):
    assert rendering.GROUP_REASONS[group].format(name="Acme Pros").endswith(".")


# --- subjects and in-app --------------------------------------------------------------------------------------

def test_subjects_are_one_line_and_capped_even_with_long_multiline_user_text():
    title = "Fix my\nroof  " + "and the gutters " * 20
    r = render(Event.QUOTE_RECEIVED, {**spec(Event.QUOTE_RECEIVED).sample, "request_title": title}, BRAND)
    assert "\n" not in r.subject and len(r.subject) <= 150 and r.subject.endswith("…")
    assert r.subject == r.subject.strip() and "  " not in r.subject
    assert len(r.title) <= 120 and len(r.body) <= 300 and r.body.endswith("…")


# --- SMS ------------------------------------------------------------------------------------------------------

@pytest.mark.parametrize("event", SMS_EVENTS)
def test_sms_samples_fit_one_gsm7_segment_with_the_marketplace_prefix(event):
    link = "" if event == Event.PHONE_CODE else "/orders/1042"
    r = render(event, spec(event).sample, BRAND, link=link)
    assert r.sms.startswith("Acme Pros: ")
    assert is_gsm7(r.sms) and septets(r.sms) <= 160
    if link:
        assert r.sms.endswith(" https://acme.example.com/orders/1042")


def test_the_phone_code_is_in_its_sms():
    r = render(Event.PHONE_CODE, {"code": "004213"}, BRAND)
    assert "004213" in r.sms and r.subject and not r.text and not r.title


def test_sms_normalises_typography_to_stay_gsm7():
    text = "Acme: “Fix it” – Zoë’s job… at\u00a09 — ok"
    out = sms_text(text)
    assert out == 'Acme: "Fix it" - Zoe\'s job... at 9 - ok'
    assert is_gsm7(out)


def test_sms_keeps_gsm7_accents_and_keeps_accents_when_ucs2_anyway():
    assert sms_text("Acme: José paid Ñandú") == "Acme: José paid Ñandu"   # é and Ñ are GSM-7, ú is not
    out = sms_text("Acme: Zoë sent 👍")
    assert out == "Acme: Zoë sent 👍" and not is_gsm7(out)


def test_a_long_gsm7_sms_is_cut_at_a_word_with_the_link_whole():
    link = "https://acme.example.com/orders/1042"
    out = sms_text("Acme Pros: " + "word " * 60, link=link)
    assert out.endswith("... " + link) and septets(out) <= 160 and is_gsm7(out)
    assert out.startswith("Acme Pros: word word")
    assert "wor..." not in out   # not in the middle of a word


def test_extension_characters_count_twice():
    out = sms_text("Acme: " + "{x} " * 50)
    assert septets(out) <= 160 and len(out) < 160


def test_a_ucs2_sms_fits_70_units_with_an_ellipsis():
    out = sms_text("Acme Pros: Maria sent 🎉🎉 a long message about the kitchen faucet and the pipes under it")
    assert utf16_units(out) <= 70 and out.endswith("…") and out.startswith("Acme Pros: Maria")


def test_an_sms_drops_its_link_rather_than_say_nothing():
    link = "https://acme.example.com/" + "x" * 150
    out = sms_text("Acme Pros: a new lead is waiting for you in Austin", link=link)
    assert link not in out and out.startswith("Acme Pros: a new lead") and septets(out) <= 160


def test_a_user_supplied_emoji_makes_the_event_sms_ucs2_within_70():
    context = {**spec(Event.BOOKING_REQUESTED).sample, "client_name": "Maria 🌸"}
    r = render(Event.BOOKING_REQUESTED, context, BRAND, link="/b/9")
    assert r.sms.startswith("Acme Pros: Maria 🌸") and utf16_units(r.sms) <= 70
    assert r.sms.endswith(" https://acme.example.com/b/9")


def test_is_gsm7():
    assert is_gsm7("Hello @ £5 {ok} €") and not is_gsm7("“quoted”") and not is_gsm7("😀") and not is_gsm7("`")


# --- branding -------------------------------------------------------------------------------------------------

LIGHT = ["#FFFFFF", "#FACC15", "#F59E0B", "#A7F3D0", "#FDE68A", "#7DD3FC"]
DARK = ["#000000", "#4F46E5", "#0F766E", "#1E3A8A", "#7C2D12", "#BE123C"]
MID = ["#767676", "#777777", "#808080", "#FF0000", "#E11D48", "#22C55E", "#0EA5E9", "#F97316"]


@pytest.mark.parametrize("colour", LIGHT + DARK + MID)
def test_the_button_text_is_readable_on_the_brand_colour(colour):
    brand = Branding(name="Acme Pros", primary_color=colour, accent_color="#F59E0B", logo_url="",
                     base_url="https://acme.example.com")
    r = render(Event.ORDER_COMPLETED, spec(Event.ORDER_COMPLETED).sample, brand, link="/orders/1")
    button = re.search(r'<a href="https://acme.example.com/orders/1"[^>]*style="[^"]*;color:(#[0-9A-F]{6});', r.html)
    assert button, "the button's text colour is inline"
    assert contrast(colour, button.group(1)) >= 4.5


def test_light_brands_get_dark_button_text_and_dark_brands_white():
    assert rendering.readable_text_color("#FACC15") != "#FFFFFF"
    assert rendering.readable_text_color("#4F46E5") == "#FFFFFF"


def test_every_grey_gets_a_readable_button_text():
    """The hardest backgrounds are mid greys, where white and near-black both fall short of 4.5:1."""
    for level in range(256):
        grey = f"#{level:02X}{level:02X}{level:02X}"
        assert contrast(grey, rendering.readable_text_color(grey)) >= 4.5, grey


def test_logo_or_initial_in_the_header():
    with_logo = Branding(name="Acme Pros", primary_color="#4F46E5", accent_color="#F59E0B",
                         logo_url="/static/logo.png", base_url="https://acme.example.com")
    r = render(Event.ORDER_COMPLETED, spec(Event.ORDER_COMPLETED).sample, with_logo)
    assert '<img src="https://acme.example.com/static/logo.png" alt="Acme Pros"' in r.html
    r = render(Event.ORDER_COMPLETED, spec(Event.ORDER_COMPLETED).sample, BRAND)
    assert "<img" not in r.html
    assert re.search(r'bgcolor="#4F46E5"[^>]*>A</td>', r.html)


def test_the_layout_is_email_safe():
    r = render(Event.QUOTE_RECEIVED, spec(Event.QUOTE_RECEIVED).sample, BRAND, link="/r/1")
    assert "max-width:600px" in r.html and 'role="presentation"' in r.html
    assert "<style" not in r.html and "<script" not in r.html and "class=" not in r.html


@pytest.mark.parametrize(("field", "value"), [("primary_color", "red"), ("accent_color", "#12345"),
                                              ("name", "  "), ("base_url", "acme.example.com")])
def test_branding_is_validated(field, value):
    values = {"name": "Acme", "primary_color": "#4F46E5", "accent_color": "#F59E0B", "logo_url": "",
              "base_url": "https://acme.example.com", field: value}
    with pytest.raises(ValueError):
        Branding(**values)
