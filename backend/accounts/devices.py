"""What a login comes from, in words a person recognises ("Chrome on macOS"), and whether this user has logged in
from it before: the new-login warning is sent for a device or a network that none of their recent sessions used.

A user agent is only a claim the browser makes, so this is a courtesy warning, not a security boundary: it tells a
user about a sign-in they may not have made; it never decides whether the login is allowed.
"""

from __future__ import annotations

import re

from backend.accounts.addresses import throttle_bucket

UNKNOWN_DEVICE = "an unknown device"

# First match wins: Edge and Opera also say "Chrome", Chrome also says "Safari", so the specific ones come first.
_BROWSERS = (
    ("Edge", re.compile(r"\bEdg(?:e|A|iOS)?/")),
    ("Opera", re.compile(r"\b(?:OPR|Opera)/")),
    ("Samsung Internet", re.compile(r"\bSamsungBrowser/")),
    ("Firefox", re.compile(r"\b(?:Firefox|FxiOS)/")),
    ("Chrome", re.compile(r"\b(?:Chrome|CriOS|Chromium)/")),
    ("Safari", re.compile(r"\bVersion/[\d.]+.*\bSafari/")),
)
_SYSTEMS = (
    ("iPhone", re.compile(r"\biPhone\b")),
    ("iPad", re.compile(r"\biPad\b")),
    ("Android", re.compile(r"\bAndroid\b")),
    ("ChromeOS", re.compile(r"\bCrOS\b")),
    ("Windows", re.compile(r"\bWindows\b")),
    ("macOS", re.compile(r"\bMac OS X\b|\bMacintosh\b")),
    ("Linux", re.compile(r"\bLinux\b")),
)


def device_label(user_agent: str) -> str:
    """"Chrome on macOS", "Safari on iPhone", "Firefox", or UNKNOWN_DEVICE when the agent says nothing we know."""
    agent = user_agent or ""
    browser = next((name for name, pattern in _BROWSERS if pattern.search(agent)), "")
    system = next((name for name, pattern in _SYSTEMS if pattern.search(agent)), "")
    if browser and system:
        return f"{browser} on {system}"
    return browser or system or UNKNOWN_DEVICE


def network_of(ip: str) -> str:
    """The network an address belongs to, as throttling counts it (an IPv4 address, an IPv6 /64)."""
    return throttle_bucket(ip) if ip else ""


def is_new_place(ip: str, user_agent: str, seen: list[tuple[str, str]]) -> bool:
    """Whether a login from (ip, user_agent) uses a device or a network that none of `seen` (earlier sessions'
    (ip, user_agent)) used. Nothing known about this login (no address, no agent): nothing to warn about."""
    device, network = device_label(user_agent), network_of(ip)
    if device == UNKNOWN_DEVICE and not network:
        return False
    known_devices = {device_label(agent) for _, agent in seen}
    known_networks = {network_of(address) for address, _ in seen}
    return (device != UNKNOWN_DEVICE and device not in known_devices) or (bool(network)
                                                                           and network not in known_networks)
