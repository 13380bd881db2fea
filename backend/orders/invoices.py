"""Invoice PDFs (fpdf2): one clean A4 page per completed order.

Names are any Unicode. fpdf2's built-in fonts are latin-1 only and it ships no Unicode font, so we embed DejaVu Sans
from Debian's `fonts-dejavu-core` package when it is installed (Latin, Greek, Cyrillic, €, ...). Without it we fall
back to Helvetica with text transliterated to latin-1. Either way a character the font cannot draw (e.g. CJK with
DejaVu) becomes "?" instead of failing the invoice or silently vanishing.
"""

from __future__ import annotations

import unicodedata
from collections.abc import Callable
from dataclasses import dataclass
from datetime import date, datetime, time, timezone
from pathlib import Path

from fpdf import FPDF
from fpdf.fonts import FontFace

from backend.money import format_money, minor_unit_exponent

UNICODE_FONT_FILES = {
    "": Path("/usr/share/fonts/truetype/dejavu/DejaVuSans.ttf"),
    "B": Path("/usr/share/fonts/truetype/dejavu/DejaVuSans-Bold.ttf"),
}

_MONTHS = ("January", "February", "March", "April", "May", "June", "July", "August", "September", "October",
           "November", "December")
_GREY = (110, 110, 110)
_INK = (20, 20, 20)
_RULE = (200, 200, 200)

# Latin-1 fallbacks for common characters outside it (used only with the core font).
_LATIN1_SUBSTITUTES = str.maketrans({
    "€": "EUR ", "–": "-", "—": "-", "‘": "'", "’": "'", "‚": ",", "“": '"', "”": '"', "„": '"',
    "…": "...", "•": "-", "Ł": "L", "ł": "l", "Đ": "D", "đ": "d", "Œ": "OE", "œ": "oe",
    "\u00a0": " ", "\u202f": " ",
})


@dataclass(frozen=True)
class InvoiceData:
    invoice_number: str
    issued_on: date
    marketplace_name: str
    currency: str  # ISO 4217
    client_name: str
    client_email: str
    pro_name: str
    pro_email: str
    order_id: int
    order_title: str
    lines: list[tuple[str, int]]  # (description, amount in minor units)
    platform_fee_minor: int  # the marketplace's share, included in the total
    total_minor: int

    def __post_init__(self) -> None:
        minor_unit_exponent(self.currency)  # ValueError for a code that is not ISO 4217-shaped
        if not self.invoice_number.strip():
            raise ValueError("invoice_number is required")
        if not self.lines:
            raise ValueError("an invoice needs at least one line")
        amounts = [amount for _, amount in self.lines] + [self.platform_fee_minor, self.total_minor]
        if any(isinstance(a, bool) or not isinstance(a, int) for a in amounts):
            raise TypeError("amounts are ints in minor units")
        if sum(amount for _, amount in self.lines) != self.total_minor:
            raise ValueError("the lines must add up to the total")
        if not 0 <= self.platform_fee_minor <= self.total_minor:
            raise ValueError("the platform fee is part of the total: 0 <= fee <= total")


class _InvoicePDF(FPDF):
    footer_text = ""
    font_family_name = "helvetica"

    def footer(self) -> None:
        self.set_y(-16)
        self.set_draw_color(*_RULE)
        self.line(self.l_margin, self.get_y(), self.w - self.r_margin, self.get_y())
        self.set_y(-13)
        self.set_font(self.font_family_name, "", 8)
        self.set_text_color(*_GREY)
        self.cell(self.epw * 0.75, 5, self.footer_text, align="L")
        self.cell(self.epw * 0.25, 5, f"Page {self.page_no()}", align="R")


def render_invoice(data: InvoiceData, *, compress: bool = True, unicode_font: bool = True) -> bytes:
    """The invoice as PDF bytes. Same data, same bytes (the creation date is the issue date).

    `compress=False` leaves content streams readable (tests look for text in them); `unicode_font=False` forces the
    latin-1 core-font fallback that is used when DejaVu Sans is not installed.
    """
    pdf = _InvoicePDF(orientation="portrait", unit="mm", format="A4")
    pdf.set_compression(compress)
    pdf.set_margins(18, 18, 18)
    pdf.set_auto_page_break(True, margin=22)
    pdf.set_creation_date(datetime.combine(data.issued_on, time(12), tzinfo=timezone.utc))

    safe = _use_fonts(pdf, unicode_font)
    family = pdf.font_family_name
    money = lambda minor: safe(format_money(minor, data.currency))  # noqa: E731
    number = safe(data.invoice_number)
    market = safe(data.marketplace_name)

    pdf.set_title(f"Invoice {number}")
    pdf.set_author(market)
    pdf.set_creator(market)
    pdf.footer_text = f"{market} · Invoice {number} · Order #{data.order_id}"
    pdf.add_page()
    pdf.set_text_color(*_INK)
    pdf.set_draw_color(*_RULE)

    # Header: who issues it, and what it is.
    top = pdf.get_y()
    pdf.set_font(family, "B", 15)
    pdf.multi_cell(pdf.epw * 0.6, 7, market, align="L")
    pdf.set_xy(pdf.l_margin + pdf.epw * 0.6, top)
    pdf.set_font(family, "B", 26)
    pdf.cell(pdf.epw * 0.4, 11, "Invoice", align="R")
    pdf.set_y(max(pdf.get_y() + 13, top + 16))

    # Numbers: label / value pairs.
    issued = f"{data.issued_on.day} {_MONTHS[data.issued_on.month - 1]} {data.issued_on.year}"
    for label, value in (("Invoice number", number), ("Issued on", issued), ("Order", f"#{data.order_id}"),
                         ("Currency", safe(data.currency.upper()))):
        pdf.set_font(family, "", 9)
        pdf.set_text_color(*_GREY)
        pdf.cell(34, 5.5, label)
        pdf.set_font(family, "B", 10)
        pdf.set_text_color(*_INK)
        pdf.cell(pdf.epw - 34, 5.5, value, new_x="LMARGIN", new_y="NEXT")
    pdf.ln(6)

    # Parties, side by side.
    column = (pdf.epw - 8) / 2
    top = pdf.get_y()
    bottoms = []
    for i, (label, name, email) in enumerate((("Billed to", data.client_name, data.client_email),
                                              ("Service provided by", data.pro_name, data.pro_email))):
        x = pdf.l_margin + i * (column + 8)
        pdf.set_xy(x, top)
        pdf.set_font(family, "", 9)
        pdf.set_text_color(*_GREY)
        pdf.cell(column, 5.5, label.upper(), new_x="LEFT", new_y="NEXT")
        pdf.set_font(family, "B", 11)
        pdf.set_text_color(*_INK)
        pdf.multi_cell(column, 6, safe(name), align="L", new_x="LEFT", new_y="NEXT")
        pdf.set_font(family, "", 10)
        pdf.multi_cell(column, 5.5, safe(email), align="L", new_x="LEFT", new_y="NEXT")
        bottoms.append(pdf.get_y())
    pdf.set_xy(pdf.l_margin, max(bottoms) + 6)

    pdf.set_font(family, "", 9)
    pdf.set_text_color(*_GREY)
    pdf.cell(pdf.epw, 5.5, "ORDER", new_x="LMARGIN", new_y="NEXT")
    pdf.set_font(family, "B", 11)
    pdf.set_text_color(*_INK)
    pdf.multi_cell(pdf.epw, 6, f"#{data.order_id} · {safe(data.order_title)}", align="L",
                   new_x="LMARGIN", new_y="NEXT")
    pdf.ln(5)

    # Lines.
    amount_width = 42
    pdf.set_font(family, "", 10)
    with pdf.table(col_widths=(pdf.epw - amount_width, amount_width), text_align=("LEFT", "RIGHT"),
                   borders_layout="HORIZONTAL_LINES", line_height=6.5, padding=(1.5, 2),
                   headings_style=FontFace(emphasis="BOLD", fill_color=(243, 243, 243))) as table:
        table.row(["Description", "Amount"])
        for description, amount in data.lines:
            table.row([safe(description), money(amount)])
    pdf.ln(3)

    # Total, and the fee it includes.
    label_width = 70
    x = pdf.l_margin + pdf.epw - label_width - amount_width
    pdf.set_x(x)
    pdf.set_font(family, "B", 12)
    pdf.cell(label_width, 8, "Total", border="T")
    pdf.cell(amount_width, 8, money(data.total_minor), border="T", align="R", new_x="LMARGIN", new_y="NEXT")
    pdf.set_x(x)
    pdf.set_font(family, "", 9)
    pdf.set_text_color(*_GREY)
    pdf.cell(label_width, 6, "Includes platform fee")
    pdf.cell(amount_width, 6, money(data.platform_fee_minor), align="R", new_x="LMARGIN", new_y="NEXT")
    pdf.ln(8)

    pdf.set_font(family, "", 9)
    pdf.multi_cell(pdf.epw, 5, f"All amounts in {safe(data.currency.upper())}. This invoice was issued by {market} "
                   f"for order #{data.order_id}. Thank you for your business.", align="L")
    return bytes(pdf.output())


def _use_fonts(pdf: _InvoicePDF, unicode_font: bool) -> Callable[[str], str]:
    """Register the fonts; return the function that makes any text drawable with them."""
    if unicode_font and all(path.is_file() for path in UNICODE_FONT_FILES.values()):
        for style, path in UNICODE_FONT_FILES.items():
            pdf.add_font("DejaVu", style, str(path))
        drawable = None
        for style in UNICODE_FONT_FILES:
            pdf.set_font("DejaVu", style, 10)
            chars = set(pdf.current_font.cmap)
            drawable = chars if drawable is None else drawable & chars
        pdf.font_family_name = "DejaVu"
        return lambda text: "".join(ch if ord(ch) in drawable else "?" for ch in _one_line(text))
    pdf.font_family_name = "helvetica"
    return lambda text: _to_latin1(_one_line(text))


def _one_line(text: str) -> str:
    # Control characters (a newline in a name) would break the layout or the PDF string; show them as spaces.
    text = "".join(" " if unicodedata.category(ch) in ("Cc", "Zl", "Zp") else ch for ch in str(text))
    return " ".join(text.split())


def _to_latin1(text: str) -> str:
    out = []
    for ch in text.translate(_LATIN1_SUBSTITUTES):
        if ord(ch) < 256:
            out.append(ch)
            continue
        base = "".join(c for c in unicodedata.normalize("NFKD", ch) if ord(c) < 256 and not unicodedata.combining(c))
        out.append(base or "?")
    return " ".join("".join(out).split())  # "€5" became "EUR 5"; "€ 5" must not become "EUR  5"
