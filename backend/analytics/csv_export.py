"""CSV exports of the dashboard's charts and tables: RFC 4180 through the csv module, safe to open in a spreadsheet.

Formula injection (OWASP "CSV Injection", CWE-1236): a spreadsheet runs a cell that starts with `=`, `+`, `-` or `@`
(and, in some, with a tab, a carriage return or a NUL before one) as a formula: `=HYPERLINK("https://evil", "Click")`
in a request title would become a link in the admin's Excel. Every *text* cell whose first character, or first
character after leading whitespace (Excel trims it), is one of those, or their full-width forms, is written with a
leading `'`, which spreadsheets show as text. Numbers (int, float, Decimal) are written as numbers: -12.5 stays a
number a spreadsheet can sum; only text is ever neutralised.
"""

from __future__ import annotations

import csv
import io
import math
import re
import unicodedata
from collections.abc import Sequence
from datetime import date, datetime
from decimal import Decimal

# First characters a spreadsheet may read as the start of a formula (OWASP; ASVS 1.2.10 adds NUL), and their
# full-width forms, which some spreadsheets fold to the ASCII ones.
FORMULA_STARTS = frozenset("=+-@\t\r\0" "\uff1d\uff0b\uff0d\uff20")
NEUTRALISER = "'"
MAX_STEM = 80


def neutralise(text: str) -> str:
    """`text` as a cell no spreadsheet runs: prefixed with `'` when it (or it without leading whitespace) starts
    like a formula; otherwise unchanged."""
    if text[:1] in FORMULA_STARTS or text.lstrip()[:1] in FORMULA_STARTS:
        return NEUTRALISER + text
    return text


def cell(value: object) -> str:
    """One value as the CSV writes it: numbers as numbers, None (and a float that is no number) as empty, booleans
    as true/false, dates in ISO 8601, anything else as its text, neutralised."""
    if value is None:
        return ""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int):
        return str(value)
    if isinstance(value, float):
        return repr(value) if math.isfinite(value) else ""
    if isinstance(value, Decimal):
        return format(value, "f") if value.is_finite() else ""
    if isinstance(value, datetime | date):
        return value.isoformat()
    return neutralise(str(value))


def to_csv(headers: Sequence[str], rows: Sequence[Sequence[object]]) -> str:
    """The table as CSV text (UTF-8 when encoded; no byte-order mark): a header row, then one line per row, fields
    quoted only where RFC 4180 needs it (a comma, a quote, a line break), lines ended by CRLF. Every row must be as
    wide as the header."""
    buffer = io.StringIO()
    writer = csv.writer(buffer, dialect="excel", quoting=csv.QUOTE_MINIMAL, lineterminator="\r\n")
    writer.writerow([neutralise(str(h)) for h in headers])
    for number, row in enumerate(rows, start=1):
        if len(row) != len(headers):
            raise ValueError(f"row {number} has {len(row)} fields; the header has {len(headers)}")
        writer.writerow([cell(v) for v in row])
    return buffer.getvalue()


def safe_filename(stem: str) -> str:
    """A download's file name from any text: ASCII letters, digits, `-` and `_` only (no path, no quote, no header
    trick), lower case, at most MAX_STEM characters before `.csv`; "export.csv" when nothing is left."""
    ascii_text = unicodedata.normalize("NFKD", str(stem)).encode("ascii", "ignore").decode("ascii").lower()
    if ascii_text.endswith(".csv"):
        ascii_text = ascii_text[:-4]
    slug = re.sub(r"[^a-z0-9_]+", "-", ascii_text).strip("-_")[:MAX_STEM].strip("-_")
    return f"{slug or 'export'}.csv"
