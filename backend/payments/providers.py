"""Which payment providers a marketplace may use, and what an operator must configure for each.

A tenant's `payment_provider` names one of these, or is "" (none). Only providers whose gateway is
registered on this installation (bootstrap.make_gateways) can take payments; there is no fallback.
"""

from __future__ import annotations

NO_PROVIDER = ""
# Preference order for a new marketplace's default: real providers first. "demo" is only ever
# registered with ENVIRONMENT=development, so in production the default is a real provider or none.
KNOWN_PROVIDERS = ("stripe", "paypal", "demo")

SETUP = {
    "stripe": "set STRIPE_SECRET_KEY and STRIPE_WEBHOOK_SECRET",
    "paypal": "set PAYPAL_CLIENT_ID, PAYPAL_CLIENT_SECRET and PAYPAL_WEBHOOK_ID",
    "demo": "the demo gateway (test cards, no money moves) exists only with ENVIRONMENT=development",
}

CANNOT_TAKE_PAYMENTS = ("This marketplace can't take payments yet: its payment provider isn't set up. "
                        "Please contact the marketplace team.")


def default_provider(configured: list[str] | tuple[str, ...]) -> str:
    """The first configured provider in preference order (a real one before demo), or none."""
    return next((name for name in KNOWN_PROVIDERS if name in configured), NO_PROVIDER)


def setup_hint(chosen: str, configured: list[str] | tuple[str, ...]) -> str:
    """What the operator must do so that a marketplace using `chosen` can take payments ("" when it can)."""
    if chosen and chosen in configured:
        return ""
    if not configured:
        how = " or ".join(SETUP[name] for name in KNOWN_PROVIDERS if name != "demo")
        return f"No payment provider is configured on this installation: {how}, restart, then choose it here."
    if not chosen:
        return "No payment provider chosen: this marketplace can't take payments. Choose one under Branding."
    if chosen in SETUP:
        return (f"Checkout is set to {chosen}, which is not configured on this installation ({SETUP[chosen]}): "
                "this marketplace can't take payments. Choose a configured provider under Branding.")
    return f"Checkout is set to an unknown provider ({chosen}): choose a configured one under Branding."
