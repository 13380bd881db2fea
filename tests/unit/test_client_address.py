"""The one rule for a request's client address (trusted proxy hops), and the nginx config that feeds it."""

from __future__ import annotations

import re

import pytest

from backend.accounts.addresses import client_address, throttle_bucket
from backend.config import PROJECT_ROOT, Settings

PEER = "10.0.0.5"  # the proxy (or, with no proxy, the browser) as the app's socket sees it


@pytest.mark.parametrize(("forwarded_for", "hops", "expected"), [
    ("", 0, PEER),
    ("6.6.6.6", 0, PEER),  # no trusted proxy: the header is the client's own words
    ("198.51.100.7", 1, "198.51.100.7"),
    ("6.6.6.6, 198.51.100.7", 1, "198.51.100.7"),  # a client-written leftmost entry is never used
    ("6.6.6.6,198.51.100.7, 10.0.0.9", 2, "198.51.100.7"),
    ("198.51.100.7", 2, PEER),  # fewer entries than trusted hops: not through the whole chain
    ("", 1, PEER),
    ("6.6.6.6, not-an-address", 1, PEER),  # garbage where a proxy should have written: fall back to the peer
    ("6.6.6.6, 2001:DB8::1", 1, "2001:db8::1"),
    ("6.6.6.6, [2001:db8::1]:4711", 1, "2001:db8::1"),
    ("6.6.6.6, 198.51.100.7:51234", 1, "198.51.100.7"),
    ("::ffff:198.51.100.7", 1, "198.51.100.7"),
])
def test_client_address_takes_the_nth_entry_from_the_right(forwarded_for, hops, expected):
    assert client_address(PEER, forwarded_for, hops) == expected


def test_client_address_without_peer():
    assert client_address(None, None, 0) == ""
    assert client_address("", "6.6.6.6", 0) == ""


def test_ipv6_addresses_are_throttled_per_64():
    assert throttle_bucket("2001:db8:1:2:aaaa::1") == throttle_bucket("2001:db8:1:2:bbbb::9") == "2001:db8:1:2::/64"
    assert throttle_bucket("2001:db8:1:3::1") != throttle_bucket("2001:db8:1:2::1")
    assert throttle_bucket("198.51.100.7") == "198.51.100.7"
    assert throttle_bucket("") == ""


def test_trusted_hops_setting_reads_the_documented_variable(monkeypatch):
    monkeypatch.delenv("REFLEX_TRUSTED_PROXY_HOPS", raising=False)
    assert Settings(_env_file=None).trusted_proxy_hops == 0
    monkeypatch.setenv("REFLEX_TRUSTED_PROXY_HOPS", "1")  # the name Reflex itself reads, as in the README
    assert Settings(_env_file=None).trusted_proxy_hops == 1


def _locations(conf: str) -> dict[str, str]:
    return {m.group(1): m.group(2) for m in re.finditer(r"location\s+(\S+)\s*\{(.*?)\n\s*\}", conf, re.S)}


def test_nginx_sets_the_forwarded_headers_on_every_location():
    conf = re.sub(r"#[^\n]*", "", (PROJECT_ROOT / "deploy" / "nginx.conf").read_text())
    locations = _locations(conf)
    assert {"/", "/_event"} <= set(locations)
    assert "$proxy_add_x_forwarded_for" not in conf  # appending would pass a client's own entry through
    for path, body in locations.items():
        headers = dict(re.findall(r"proxy_set_header\s+(\S+)\s+([^;]+);", body))
        assert headers.get("X-Forwarded-For") == "$remote_addr", path
        assert headers.get("X-Real-IP") == "$remote_addr", path
        assert headers.get("X-Forwarded-Proto") == "$scheme", path
        assert headers.get("Host") == "$http_host", path  # with its port, as browsers write Origin
