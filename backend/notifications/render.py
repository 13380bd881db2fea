"""Render a catalogue event for every channel it uses, in the marketplace's branding.

Templates are Jinja2 files in `templates/`: `<event>.subject.j2` (every event: the email subject and the delivery
row's label), `.txt.j2` and `.html.j2` (email), `.sms.j2` (SMS), `.in_app.j2` (first line the title, the rest the
body). Only `*.html.j2` is autoescaped: a user's text is escaped in HTML and left intact everywhere else. Undefined
names fail (StrictUndefined): a template never silently prints an empty name.

Links: `link` is a path on the marketplace ("/orders/5" -> base_url + "/orders/5") or an absolute http(s) URL kept
as it is; nothing URL-encodes it, so ONE_TIME_TOKEN ("{one_time_token}") stays in it verbatim (HTML-escaping leaves
braces alone) for the service to swap in the real token at send time.
"""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from jinja2 import Environment, FileSystemLoader, StrictUndefined, TemplateError, UndefinedError, select_autoescape

from backend.colour import contrast_ratio
from backend.identity import TenantPublic
from backend.notifications.catalogue import Event, Group, spec
from backend.notifications.models import Channel

TEMPLATES = Path(__file__).parent / "templates"

SUBJECT_MAX = 150
TITLE_MAX = 120
BODY_MAX = 300
GSM7_SEGMENT = 160   # septets in one GSM-7 SMS
UCS2_SEGMENT = 70    # UTF-16 code units in one UCS-2 SMS
SMS_MIN_TEXT = 30    # below this much room for the words, an SMS drops its link rather than say nothing

# Names render() sets; a caller's context must not shadow them (the layout's only reach the HTML email).
_RESERVED = ("marketplace", "link", "email_subject", "why_you_get_this", "unsubscribe_url", "logo_src", "initial",
             "primary", "accent", "button_text_color", "link_color")

# Why the recipient gets an email of this group: the footer says it ("You get this email because ...").
GROUP_REASONS: Mapping[Group, str] = {
    Group.LEADS: "you offer services on {name} and want to hear about requests that fit your work.",
    Group.NEW_LEADS: "you offer services on {name} and asked to hear about new requests in your area.",
    Group.QUOTES: "you asked for or sent a quote on {name}.",
    Group.BOOKINGS: "you have a booking on {name}.",
    Group.ORDERS: "you have an order on {name}.",
    Group.PAYMENTS: "money moved for one of your orders on {name}.",
    Group.REVIEWS: "you finished an order on {name}.",
    Group.MESSAGES: "someone wrote to you on {name} while you were away.",
    Group.SECURITY: "it concerns the security of your {name} account. Security emails can't be turned off.",
    Group.ADMIN: "you are an admin of {name}.",
}

_HEX = re.compile(r"^#[0-9a-fA-F]{6}$")
WHITE = "#FFFFFF"
NEAR_BLACK = "#111827"
BLACK = "#000000"
BODY_TEXT = "#1F2937"   # the email's text colour: links use the brand colour only when it reads as well on white
AA_CONTRAST = 4.5       # WCAG 2 AA for normal text


@dataclass(frozen=True)
class Branding:
    name: str
    primary_color: str   # "#RRGGBB"
    accent_color: str    # "#RRGGBB"
    logo_url: str        # "" -> the name's initial in a square of the primary colour; a path is made absolute
    base_url: str        # the marketplace's absolute URL, no trailing slash (links are base_url + path)

    def __post_init__(self) -> None:
        if not self.name.strip():
            raise ValueError("The marketplace needs a name to sign its messages.")
        for label, colour in (("primary", self.primary_color), ("accent", self.accent_color)):
            if not _HEX.match(colour):
                raise ValueError(f"The {label} colour must look like #4F46E5, not {colour!r}.")
        if not self.base_url.startswith(("https://", "http://")):
            raise ValueError(f"The marketplace URL must be an absolute http(s) URL, not {self.base_url!r}.")

    @classmethod
    def for_tenant(cls, tenant: TenantPublic, base_url: str) -> Branding:
        return cls(name=tenant.name, primary_color=tenant.primary_color, accent_color=tenant.accent_color,
                   logo_url=tenant.logo_url, base_url=base_url.rstrip("/"))


@dataclass(frozen=True)
class Rendered:
    """Each field is "" for a channel the event does not use (a phone code has no email)."""
    subject: str   # one line, <= 150 chars
    text: str      # plain-text email body, ending with the footer (and the unsubscribe line when given)
    html: str      # HTML email: branded layout, escaped user text, a button to the link
    sms: str       # "<Marketplace>: <text> <link>", one segment (see sms_text)
    title: str     # in-app title, <= 120
    body: str      # in-app body, <= 300


_env = Environment(
    loader=FileSystemLoader(TEMPLATES),
    autoescape=select_autoescape(enabled_extensions=("html.j2",), default_for_string=False, default=False),
    undefined=StrictUndefined,
    trim_blocks=True,
    lstrip_blocks=True,
    auto_reload=False,   # templates ship with the code: no stat() per message when fanning out to thousands
)
# "email" -> "Email", "sms" -> "SMS": how a channel reads in a sentence (the admin's delivery alert)
CHANNEL_LABELS: Mapping[str, str] = {Channel.EMAIL: "Email", Channel.SMS: "SMS", Channel.IN_APP: "In-app",
                                     Channel.PUSH: "Push"}
_env.filters["channel_label"] = lambda value: CHANNEL_LABELS.get(str(value), str(value))


def render(event: Event, context: Mapping[str, Any], branding: Branding, *, link: str = "",
           unsubscribe_url: str = "") -> Rendered:
    """Render `event` for each of its channels. Raises ValueError naming the event and the key when the context
    lacks one its templates need."""
    event_spec = spec(event)
    name = event_spec.event.value
    missing = [key for key in event_spec.context if key not in context]
    if missing:
        raise ValueError(f"Notification {name!r} needs the context key(s) {', '.join(map(repr, missing))}.")
    shadowed = [key for key in _RESERVED if key in context]
    if shadowed:
        raise ValueError(f"Notification {name!r}: render() sets {', '.join(map(repr, shadowed))}; pass the link "
                         f"and the unsubscribe URL as arguments and name other keys differently.")
    values = {**context, "marketplace": branding, "link": absolute_link(link, branding.base_url)}
    channels = event_spec.channels
    subject = _one_line(_render(name, "subject", values), SUBJECT_MAX)
    text = html = sms = title = body = ""
    if Channel.EMAIL in channels:
        why = "You get this email because " + GROUP_REASONS[event_spec.group].format(name=branding.name)
        text = _render(name, "txt", values).strip() + "\n\n" + _text_footer(branding, why, unsubscribe_url)
        html = _render(name, "html", {**values, **_layout(branding), "email_subject": subject,
                                      "why_you_get_this": why, "unsubscribe_url": unsubscribe_url})
    if Channel.SMS in channels:
        sms = sms_text(f"{branding.name}: {_render(name, 'sms', values)}", link=values["link"])
    if Channel.IN_APP in channels:
        title, body = _in_app(_render(name, "in_app", values))
    return Rendered(subject=subject, text=text, html=html, sms=sms, title=title, body=body)


def absolute_link(link: str, base_url: str) -> str:
    """A path on the marketplace becomes base_url + path; an absolute http(s) URL stays; anything else (a
    javascript: URL, a protocol-relative //host) is refused: it would end up in an href."""
    link = link.strip()
    if not link:
        return ""
    if link.startswith("/") and not link.startswith("//"):
        return base_url.rstrip("/") + link
    if link.startswith(("https://", "http://")):
        return link
    raise ValueError(f"A notification link must be a path starting with / or an http(s) URL, not {link!r}.")


def _render(event: str, part: str, values: Mapping[str, Any]) -> str:
    template_name = f"{event}.{part}.j2"
    try:
        return _env.get_template(template_name).render(values)
    except UndefinedError as exc:   # a template reads a key its spec does not list
        raise ValueError(f"Notification {event!r} ({template_name}): {exc.message}") from exc
    except TemplateError as exc:
        raise ValueError(f"Notification {event!r} ({template_name}) cannot be rendered: {exc}") from exc


def _one_line(text: str, limit: int) -> str:
    return _shorten(" ".join(text.split()), limit, "…")


def _shorten(text: str, limit: int, ellipsis: str, measure: Callable[[str], int] = len) -> str:
    """`text` if it fits, else its longest start that fits with `ellipsis`, cut at a word when one is near."""
    if measure(text) <= limit:
        return text
    room = limit - measure(ellipsis)
    used = end = 0
    for c in text:   # every measure here adds up per character
        used += measure(c)
        if used > room:
            break
        end += 1
    cut = text[:end]
    space = cut.rfind(" ")
    if space >= room * 2 // 3:   # a word boundary close to the end: don't leave half a word
        cut = cut[:space]
    return cut.rstrip(" ,;:-–—") + ellipsis


def _in_app(rendered: str) -> tuple[str, str]:
    first, _, rest = rendered.strip().partition("\n")
    return _one_line(first, TITLE_MAX), _shorten(" ".join(rest.split()), BODY_MAX, "…")


def _text_footer(branding: Branding, why: str, unsubscribe_url: str) -> str:
    lines = ["-- ", branding.name, why]
    if unsubscribe_url:
        lines.append(f"Don't want these emails? Unsubscribe: {unsubscribe_url}")
    return "\n".join(lines)


def _layout(branding: Branding) -> dict[str, str]:
    """What _base.html.j2 needs besides the message: the logo's absolute URL, the initial, readable colours."""
    logo = absolute_link(branding.logo_url, branding.base_url) if branding.logo_url else ""
    primary = branding.primary_color.upper()
    return {
        "logo_src": logo,
        "initial": branding.name.strip()[0].upper(),
        "primary": primary,
        "accent": branding.accent_color.upper(),
        "button_text_color": readable_text_color(primary),
        "link_color": primary if contrast_ratio(primary, WHITE) >= AA_CONTRAST else BODY_TEXT,
    }


# --- colour ---------------------------------------------------------------------------------------------------

def readable_text_color(background: str) -> str:
    """White on the brand colour when it passes WCAG AA (4.5:1), else near-black, else black. Some mid tones
    (around #767676) pass with neither white nor #111827; pure black always reaches >= 4.58 there."""
    for candidate in (WHITE, NEAR_BLACK):
        if contrast_ratio(background, candidate) >= AA_CONTRAST:
            return candidate
    return max((WHITE, BLACK), key=lambda c: contrast_ratio(background, c))


# --- SMS ------------------------------------------------------------------------------------------------------
# The rule: an SMS is "<Marketplace>: <text>" with the link (if any) after it, whitespace collapsed to single spaces.
# Typographic punctuation (smart quotes, dashes, ellipsis, non-breaking and thin spaces, bullets) becomes its ASCII
# twin, and accented letters outside GSM-7 lose their accent when that makes the whole message GSM-7, so most texts
# fit one GSM-7 segment: 160 septets (the extension characters ^{}\[~]|€ take two). A text that still needs other
# characters (emoji, CJK, ...) goes as UCS-2: one segment is 70 UTF-16 units. Over the limit the words are cut (at a
# word when one is near) and end with "..." (GSM-7) or "…" (UCS-2); the link is never cut, but is dropped when it
# would leave fewer than SMS_MIN_TEXT characters for the words. One segment only: multi-part messages cost more
# and arrive out of order on some carriers.

GSM7_BASIC = frozenset(
    "@£$¥èéùìòÇ\nØø\rÅåΔ_ΦΓΛΩΠΨΣΘΞÆæßÉ !\"#¤%&'()*+,-./0123456789:;<=>?"
    "¡ABCDEFGHIJKLMNOPQRSTUVWXYZÄÖÑÜ§¿abcdefghijklmnopqrstuvwxyzäöñüà")
GSM7_EXTENSION = frozenset("\f^{}\\[~]|€")

_TYPOGRAPHY = str.maketrans({
    "‘": "'", "’": "'", "‚": "'", "‛": "'", "′": "'", "`": "'", "´": "'",
    "“": '"', "”": '"', "„": '"', "‟": '"', "″": '"', "«": '"', "»": '"',
    "‐": "-", "‑": "-", "‒": "-", "–": "-", "—": "-", "―": "-", "−": "-", "•": "-", "·": "-",
    "…": "...",
    "\u00a0": " ", "\u2002": " ", "\u2003": " ", "\u2007": " ", "\u2009": " ", "\u200a": " ", "\u202f": " ",
    "\u200b": "", "\u2060": "", "\ufeff": "",
})


def is_gsm7(text: str) -> bool:
    """Whether `text` can go in the GSM-7 alphabet (basic set or extension table)."""
    return all(c in GSM7_BASIC or c in GSM7_EXTENSION for c in text)


def _septets(text: str) -> int:
    return sum(2 if c in GSM7_EXTENSION else 1 for c in text)


def _utf16_units(text: str) -> int:
    return len(text.encode("utf-16-le")) // 2


def _strip_accents(text: str) -> str:
    """"Zoë" -> "Zoe", "ﬁ" -> "fi"; letters GSM-7 has (é, ñ, ü) stay."""
    out = []
    for c in text:
        if c in GSM7_BASIC or c in GSM7_EXTENSION:
            out.append(c)
            continue
        base = "".join(d for d in unicodedata.normalize("NFKD", c) if not unicodedata.combining(d))
        out.append(base if base and is_gsm7(base) else c)
    return "".join(out)


def _normalise(text: str) -> str:
    text = " ".join(text.translate(_TYPOGRAPHY).split())
    plain = _strip_accents(text)
    return plain if is_gsm7(plain) else text   # accents kept when the message is UCS-2 anyway


def sms_text(text: str, *, link: str = "") -> str:
    """One SMS segment by the rule above; `link` (optional) goes after the text, whole."""
    link = link.strip()
    text = _normalise(text)
    message = f"{text} {link}" if link else text
    if is_gsm7(message):
        limit, ellipsis, measure = GSM7_SEGMENT, "...", _septets
    else:
        limit, ellipsis, measure = UCS2_SEGMENT, "…", _utf16_units
    if measure(message) <= limit:
        return message
    tail = f" {link}" if link else ""
    if limit - measure(tail) < SMS_MIN_TEXT:
        tail = ""
    return _shorten(text, limit - measure(tail), ellipsis, measure) + tail
