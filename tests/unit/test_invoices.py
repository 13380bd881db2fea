"""Invoice PDFs: valid, one page, the right numbers in the visible text, any Unicode name without a crash.

The visible text is read back from uncompressed output: literal strings shown with `Tj`, decoded through each
font's ToUnicode map (the embedded DejaVu subset) or as latin-1 (the core-font fallback).
"""

from __future__ import annotations

import re
from dataclasses import replace
from datetime import date
from pathlib import Path

import pytest

from backend.orders import invoices
from backend.orders.invoices import InvoiceData, render_invoice

DEJAVU_HINT = "Install Debian's fonts-dejavu-core (apt-get install -y fonts-dejavu-core) for Unicode invoices"


def _data(**changes) -> InvoiceData:
    base = InvoiceData(
        invoice_number="DEMO-000042", issued_on=date(2026, 11, 25), marketplace_name="Demo Marketplace",
        currency="EUR", client_name="Zoë Łukasiewicz 山田", client_email="zoe@example.com",
        pro_name="Ólafur Þórsson", pro_email="olafur@example.com", order_id=42,
        order_title="Fix the kitchen sink", lines=[("Fix the kitchen sink — leaking trap", 1234550),
                                                  ("Replacement parts", 10000)],
        platform_fee_minor=124455, total_minor=1244550)
    return replace(base, **changes)


def _unescape(raw: bytes) -> bytes:
    out, i = bytearray(), 0
    simple = {ord("n"): b"\n", ord("r"): b"\r", ord("t"): b"\t", ord("b"): b"\b", ord("f"): b"\f"}
    while i < len(raw):
        if raw[i] != 0x5C:  # backslash
            out.append(raw[i])
            i += 1
            continue
        nxt = raw[i + 1]
        if nxt in simple:
            out += simple[nxt]
            i += 2
        elif 0x30 <= nxt <= 0x37:
            digits = re.match(rb"[0-7]{1,3}", raw[i + 1:i + 4]).group()
            out.append(int(digits, 8) & 0xFF)
            i += 1 + len(digits)
        else:  # \( \) \\ and anything else: the character itself
            out.append(nxt)
            i += 2
    return bytes(out)


def shown_strings(pdf: bytes) -> list[tuple[float | None, str]]:
    """(x in pt, text) for every string the content streams show, in drawing order."""
    objects = {int(m.group(1)): m.group(2) for m in re.finditer(rb"(\d+) 0 obj\n(.*?)\nendobj", pdf, re.S)}
    to_unicode: dict[bytes, dict[bytes, str]] = {}
    for name, ref in re.findall(rb"/(F\d+) (\d+) 0 R", pdf):
        cmap_ref = re.search(rb"/ToUnicode (\d+) 0 R", objects[int(ref)])
        if cmap_ref:
            cmap = objects[int(cmap_ref.group(1))]
            assert b"beginbfrange" not in cmap, "this reader only knows bfchar maps"
            to_unicode[name] = {bytes.fromhex(src.decode()): bytes.fromhex(dst.decode()).decode("utf-16-be")
                                for src, dst in re.findall(rb"<([0-9A-Fa-f]+)> <([0-9A-Fa-f]+)>", cmap)}
    shown, font = [], None
    # fpdf2 writes `BT x y Td [r g b rg] (string) Tj ET`; the colour operator is optional.
    pattern = (rb"/(F\d+) [\d.]+ Tf"
               rb"|(?:(-?[\d.]+) -?[\d.]+ Td (?:[\d.]+ (?:[\d.]+ [\d.]+ )?(?:rg|g) )?)?\(((?:\\.|[^\\()])*)\) ?Tj")
    for m in re.finditer(pattern, pdf, re.S):
        if m.group(1):
            font = m.group(1)
            continue
        raw = _unescape(m.group(3))
        if font in to_unicode:
            cmap = to_unicode[font]
            text = "".join(cmap[raw[i:i + 2]] for i in range(0, len(raw), 2))
        else:
            text = raw.decode("latin-1")
        shown.append((float(m.group(2)) if m.group(2) else None, text))
    return shown


def shown_text(pdf: bytes) -> str:
    return "\n".join(text for _, text in shown_strings(pdf))


def _page_count(pdf: bytes) -> int:
    return len(re.findall(rb"/Type /Page\b(?!s)", pdf))


@pytest.fixture
def dejavu():
    missing = [str(p) for p in invoices.UNICODE_FONT_FILES.values() if not Path(p).is_file()]
    assert not missing, f"{DEJAVU_HINT}; missing: {missing}"


def test_default_output_is_a_compressed_pdf():
    pdf = render_invoice(_data())
    assert pdf.startswith(b"%PDF-") and pdf.rstrip().endswith(b"%%EOF")
    assert b"/FlateDecode" in pdf


def test_unicode_invoice_shows_numbers_parties_lines_and_total(dejavu):
    pdf = render_invoice(_data(), compress=False)
    assert pdf.startswith(b"%PDF-") and _page_count(pdf) == 1
    assert b"DejaVuSans" in pdf
    text = shown_text(pdf)
    for expected in ("Invoice", "DEMO-000042", "25 November 2026", "#42", "Demo Marketplace",
                     "Ólafur Þórsson", "olafur@example.com", "zoe@example.com",
                     "Fix the kitchen sink — leaking trap", "Replacement parts",
                     "€12,345.50", "€100.00", "Total", "€12,445.50", "Includes platform fee", "€1,244.55",
                     "Page 1"):
        assert expected in text, expected
    # DejaVu draws Latin extensions; it has no CJK glyphs, which show as "?" rather than vanishing.
    assert "Zoë Łukasiewicz ??" in text


def test_amounts_are_right_aligned_in_their_column(dejavu):
    pdf = render_invoice(_data(lines=[("Short", 100), ("Long amount", 1234500)], platform_fee_minor=0,
                               total_minor=1234600), compress=False)
    x = {text: pos for pos, text in shown_strings(pdf)}
    page_middle = 595.28 / 2
    # Left-aligned cells would start at the same x; right-aligned ones start further left the longer they are.
    assert page_middle < x["€12,346.00"] < x["€1.00"]
    assert x["Description"] < page_middle < x["Amount"]


def test_core_font_fallback_when_no_unicode_font_is_installed(monkeypatch):
    monkeypatch.setattr(invoices, "UNICODE_FONT_FILES", {"": Path("/nonexistent/a.ttf"),
                                                         "B": Path("/nonexistent/b.ttf")})
    pdf = render_invoice(_data(marketplace_name="Acme € Services"), compress=False)
    assert b"/Helvetica" in pdf and b"DejaVu" not in pdf and _page_count(pdf) == 1
    text = shown_text(pdf)
    for expected in ("DEMO-000042", "EUR 12,445.50", "EUR 1,244.55", "Zoë Lukasiewicz ??", "Ólafur Þórsson",
                     "Fix the kitchen sink - leaking trap", "Acme EUR Services"):
        assert expected in text, expected


def test_core_font_can_be_forced():
    text = shown_text(render_invoice(_data(), compress=False, unicode_font=False))
    assert "EUR 12,445.50" in text


@pytest.mark.parametrize("unicode_font", [True, False])
def test_hostile_names_do_not_break_rendering(unicode_font):
    data = _data(client_name="Line\nbreak\t(and) \\ back\x00slash 🙂 עברית العربية", pro_name="",
                 order_title="(" * 50 + "x" * 400, lines=[("ünïcödé " * 40, 1244550)])
    pdf = render_invoice(data, compress=False, unicode_font=unicode_font)
    assert pdf.startswith(b"%PDF-")
    text = shown_text(pdf)
    assert "Line break (and) \\ back" in text  # control characters became spaces


def test_jpy_invoice_has_no_decimals(dejavu):
    data = _data(currency="JPY", lines=[("Cleaning", 12345)], platform_fee_minor=1235, total_minor=12345)
    text = shown_text(render_invoice(data, compress=False))
    assert "¥12,345" in text and "¥1,235" in text


def test_many_lines_flow_onto_further_pages_with_footers(dejavu):
    lines = [(f"Item {i}", 100) for i in range(80)]
    pdf = render_invoice(_data(lines=lines, platform_fee_minor=800, total_minor=8000), compress=False)
    assert _page_count(pdf) > 1
    text = shown_text(pdf)
    assert "Page 2" in text and "€80.00" in text


def test_same_data_gives_the_same_bytes():
    assert render_invoice(_data()) == render_invoice(_data())


@pytest.mark.parametrize("changes", [
    {"total_minor": 1},  # lines do not add up
    {"platform_fee_minor": 2_000_000},  # fee above the total
    {"platform_fee_minor": -1},
    {"lines": []},
    {"currency": "EURO"},
    {"invoice_number": " "},
    {"lines": [("Float", 12.5)], "total_minor": 12},
])
def test_inconsistent_data_is_refused(changes):
    with pytest.raises((ValueError, TypeError)):
        _data(**changes)
