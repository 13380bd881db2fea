"""Money is an integer amount in minor units plus an ISO 4217 currency code; never a float.

Formatting here is deliberately locale-neutral (comma thousands, point decimals): it is what invoices and e-mails
show whatever the reader's browser language is.
"""

from __future__ import annotations

import re
from decimal import Decimal, InvalidOperation

# ISO 4217 minor-unit exponents that differ from the usual 2.
_EXPONENT = {
    **dict.fromkeys(["BIF", "CLP", "DJF", "GNF", "ISK", "JPY", "KMF", "KRW", "PYG", "RWF", "UGX", "UYI", "VND",
                     "VUV", "XAF", "XOF", "XPF"], 0),
    **dict.fromkeys(["BHD", "IQD", "JOD", "KWD", "LYD", "OMR", "TND"], 3),
}

# Only symbols that are unambiguous on a marketplace invoice; everything else shows its ISO code after the amount.
_SYMBOL = {"USD": "$", "EUR": "€", "GBP": "£", "JPY": "¥", "INR": "₹", "KRW": "₩", "ILS": "₪", "NGN": "₦",
           "UAH": "₴", "VND": "₫", "PHP": "₱", "TRY": "₺"}

_CODE = re.compile(r"[A-Z]{3}")


def minor_unit_exponent(currency: str) -> int:
    """How many decimal places the currency's minor unit has (USD 2, JPY 0, KWD 3)."""
    return _EXPONENT.get(_normalize(currency), 2)


def format_money(amount_minor: int, currency: str) -> str:
    """12345 USD -> "$123.45"; 12345 JPY -> "¥12,345"; 12345 XYZ -> "123.45 XYZ"; -500 EUR -> "-€5.00"."""
    if isinstance(amount_minor, bool) or not isinstance(amount_minor, int):
        raise TypeError(f"amount_minor must be an int in minor units, not {type(amount_minor).__name__}")
    code = _normalize(currency)
    exponent = _EXPONENT.get(code, 2)
    sign = "-" if amount_minor < 0 else ""
    major, minor = divmod(abs(amount_minor), 10**exponent)
    number = f"{major:,}" + (f".{minor:0{exponent}d}" if exponent else "")
    symbol = _SYMBOL.get(code)
    return f"{sign}{symbol}{number}" if symbol else f"{sign}{number} {code}"


def fee_for(amount_minor: int, fee_bps: int) -> int:
    """The platform's cut of `amount_minor` at `fee_bps` basis points (1000 = 10 %), rounded half up to a minor unit."""
    if isinstance(amount_minor, bool) or not isinstance(amount_minor, int) or amount_minor < 0:
        raise ValueError("amount_minor must be a non-negative int")
    if isinstance(fee_bps, bool) or not isinstance(fee_bps, int) or not 0 <= fee_bps <= 10_000:
        raise ValueError("fee_bps must be an int between 0 and 10000")
    return (amount_minor * fee_bps + 5_000) // 10_000


_AMOUNT = re.compile(r"(?:\d{1,3}(?:,\d{3})+|\d+)(?:\.\d*)?|\.\d+")


def parse_amount(text: str, currency: str, *, field_name: str = "amount", allow_zero: bool = False,
                 maximum_major: int | None = None) -> int:
    """Parse what a person typed ("120", "1,250.50", "$99", "80 EUR") into minor units.

    Raises ValueError with a message fit for the form field. An empty entry is 0 when `allow_zero`, else an error.
    """
    code = _normalize(currency)
    exponent = _EXPONENT.get(code, 2)
    example = "120" if exponent == 0 else "120 or 120.50"
    raw = (text or "").strip() if isinstance(text, str) else str(text)
    symbol = _SYMBOL.get(code)
    if symbol:
        raw = raw.replace(symbol, "")
    raw = re.sub(rf"(?i)\b{code}\b", "", raw).strip()
    if not raw:
        if allow_zero:
            return 0
        raise ValueError(f"Enter the {field_name}")
    if raw.startswith("-"):
        raise ValueError(f"The {field_name} cannot be negative")
    if not _AMOUNT.fullmatch(raw):
        raise ValueError(f"Enter the {field_name} as a number, like {example}")
    try:
        value = Decimal(raw.replace(",", ""))
    except InvalidOperation:
        raise ValueError(f"Enter the {field_name} as a number, like {example}") from None
    minor = value.scaleb(exponent)
    if minor != minor.to_integral_value():
        places = "no decimals" if exponent == 0 else f"at most {exponent} decimal places"
        raise ValueError(f"The {field_name} can have {places}")
    amount = int(minor)
    if amount == 0 and not allow_zero:
        raise ValueError(f"The {field_name} must be more than zero")
    if maximum_major is not None and amount > maximum_major * 10**exponent:
        raise ValueError(f"The {field_name} can be at most {format_money(maximum_major * 10**exponent, code)}")
    return amount


def _normalize(currency: str) -> str:
    code = currency.strip().upper() if isinstance(currency, str) else ""
    if not _CODE.fullmatch(code):
        raise ValueError(f"not an ISO 4217 currency code: {currency!r}")
    return code
