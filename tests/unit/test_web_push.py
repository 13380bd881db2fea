"""Web push at the boundary: the browser's subscription checked field by field, the payload the service worker reads,
push in the catalogue (it follows in-app), the VAPID keys the adapter accepts, and how bootstrap picks them."""

from __future__ import annotations

import base64
import json
import os
import stat

import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec

import backend.bootstrap as bootstrap
from backend.config import Settings
from backend.errors import ValidationFailed
from backend.notifications.adapters.webpush import WebPushSender, generate_keys
from backend.notifications.catalogue import CATALOGUE, Event, Group, default_enabled, spec
from backend.notifications.models import Channel
from backend.notifications.push import clean_label, parse_subscription, push_payload


def b64url(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).decode().rstrip("=")


def browser_keys() -> dict[str, str]:
    """What a browser's subscription carries: a P-256 public key and a 16-byte auth secret."""
    point = ec.generate_private_key(ec.SECP256R1()).public_key().public_bytes(
        serialization.Encoding.X962, serialization.PublicFormat.UncompressedPoint)
    return {"p256dh": b64url(point), "auth": b64url(os.urandom(16))}


FCM = "https://fcm.googleapis.com/fcm/send/dXJ0aGVyZQ:APA91bH-example"


@pytest.mark.parametrize("endpoint", [
    FCM,
    "https://updates.push.services.mozilla.com/wpush/v2/gAAAAABexample",
    "https://web.push.apple.com/QGx1example",
    "https://wns2-par02p.notify.windows.com/w/?token=BQYAAAexample",
])
def test_the_browsers_push_services_are_accepted_in_production(endpoint):
    parsed = parse_subscription({"endpoint": endpoint, "keys": browser_keys(), "expirationTime": None},
                                allow_loopback=False)
    assert parsed.endpoint == endpoint and len(parsed.auth) == 22 and len(parsed.p256dh) == 87


@pytest.mark.parametrize("endpoint, message", [
    ("http://fcm.googleapis.com/fcm/send/x", "https"),
    ("https://127.0.0.1:8443/push/x", "not a browser push service"),
    ("https://169.254.169.254/latest/meta-data", "not a browser push service"),
    ("https://fcm.googleapis.com.evil.example/x", "not a browser push service"),
    ("https://evilfcm.googleapis.com.example/x", "not a browser push service"),
    ("https://fcm.googleapis.com:8080/x", "not a browser push service"),
    ("https://user:pw@fcm.googleapis.com/x", "not a valid push service URL"),
    ("https://fcm.googleapis.com/x#frag", "not a valid push service URL"),
    ("https://fcm.googleapis.com/x y", "not a valid URL"),
    ("ftp://fcm.googleapis.com/x", "https"),
    ("", "no endpoint"),
    ("https://fcm.googleapis.com/" + "x" * 2000, "longer than"),
])
def test_anything_else_is_refused_with_a_field_error(endpoint, message):
    with pytest.raises(ValidationFailed) as refused:
        parse_subscription({"endpoint": endpoint, "keys": browser_keys()}, allow_loopback=False)
    assert set(refused.value.errors) == {"endpoint"} and message in refused.value.errors["endpoint"]


def test_the_loopback_push_service_only_outside_production():
    local = {"endpoint": "http://127.0.0.1:41234/push/abc", "keys": browser_keys()}
    assert parse_subscription(local, allow_loopback=True).endpoint == local["endpoint"]
    assert parse_subscription({**local, "endpoint": "http://localhost:9/p"}, allow_loopback=True)
    with pytest.raises(ValidationFailed):
        parse_subscription(local, allow_loopback=False)
    with pytest.raises(ValidationFailed):  # loopback only, not any http host
        parse_subscription({**local, "endpoint": "http://10.0.0.5/push/abc"}, allow_loopback=True)


def test_keys_must_be_base64url_of_the_right_length_and_a_curve_point():
    keys = browser_keys()
    cases = {
        "p256dh": [None, "", "not base64!", b64url(os.urandom(33)), b64url(b"\x04" + b"\x00" * 64)],
        "auth": [None, "", "***", b64url(os.urandom(8)), b64url(os.urandom(32))],
    }
    for name, values in cases.items():
        for value in values:
            with pytest.raises(ValidationFailed) as refused:
                parse_subscription({"endpoint": FCM, "keys": {**keys, name: value}}, allow_loopback=False)
            assert set(refused.value.errors) == {name}, (name, value)
    padded = {"p256dh": keys["p256dh"] + "=", "auth": keys["auth"] + "=="}
    assert parse_subscription({"endpoint": FCM, "keys": padded}, allow_loopback=False).auth == keys["auth"]


def test_every_bad_field_is_named_at_once():
    with pytest.raises(ValidationFailed) as refused:
        parse_subscription({"endpoint": "javascript:alert(1)", "keys": "none"}, allow_loopback=True)
    assert set(refused.value.errors) == {"endpoint", "p256dh", "auth"}
    with pytest.raises(ValidationFailed) as refused:
        parse_subscription(["not", "a", "dict"], allow_loopback=True)
    assert set(refused.value.errors) == {"subscription"}


def test_the_payload_is_exactly_what_the_service_worker_reads():
    payload = push_payload(title="Alex sent you a quote", body="$240 for “Fix a faucet”",
                           url="https://demo.example.com/requests/1", tag="t1-n42")
    assert json.loads(payload) == {"title": "Alex sent you a quote", "body": "$240 for “Fix a faucet”",
                                   "url": "https://demo.example.com/requests/1", "tag": "t1-n42"}
    assert "“".encode() in payload  # UTF-8, not \\u escapes: the 4 KB limit goes further


def test_a_device_label_is_one_printable_line():
    assert clean_label("  Chrome\non\tAndroid \x00") == "Chrome on Android"
    assert clean_label("") == "This browser" and len(clean_label("x" * 500)) == 80


def test_push_follows_in_app_in_the_catalogue():
    for s in CATALOGUE.values():
        assert (Channel.PUSH in s.channels) == (Channel.IN_APP in s.channels), s.event
        if s.group != Group.NEW_LEADS:
            assert (Channel.PUSH in s.defaults) == (Channel.IN_APP in s.defaults), s.event
    assert Channel.PUSH not in spec(Event.RESET_PASSWORD).channels  # security keeps to email and SMS
    assert Channel.PUSH in spec(Event.LEAD_NEW).channels and Channel.PUSH not in spec(Event.LEAD_NEW).defaults
    assert default_enabled(Group.QUOTES, Channel.PUSH) and not default_enabled(Group.NEW_LEADS, Channel.PUSH)


# ---------------------------------------------------------------------------------------------------------------
# Keys
# ---------------------------------------------------------------------------------------------------------------

def test_the_adapter_derives_and_checks_the_public_key():
    private, public = generate_keys()
    assert WebPushSender(private, "mailto:ops@example.com").public_key == public
    assert WebPushSender(private, "https://example.com/contact", public_key=public + "=").public_key == public
    with pytest.raises(ValueError, match="public half"):
        WebPushSender(private, "mailto:ops@example.com", public_key=generate_keys()[1])
    with pytest.raises(ValueError, match="VAPID_PRIVATE_KEY"):
        WebPushSender("not-a-key", "mailto:ops@example.com")
    with pytest.raises(ValueError, match="VAPID_SUBJECT"):
        WebPushSender(private, "ops@example.com")


def test_without_keys_outside_development_there_is_no_push_channel(tmp_path, caplog):
    settings = Settings(environment="test", data_dir=tmp_path)
    assert bootstrap._push_channel(settings) is None
    assert "push channel is off" in caplog.text and not (tmp_path / "dev-vapid.json").exists()


def test_development_makes_a_key_pair_once_and_keeps_it_private(tmp_path):
    settings = Settings(environment="development", data_dir=tmp_path)
    first = bootstrap._push_channel(settings)
    path = tmp_path / "dev-vapid.json"
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert bootstrap._push_channel(settings).public_key == first.public_key == json.loads(path.read_text())[
        "public_key"]


def test_configured_keys_win_and_the_subject_defaults_to_the_sender(tmp_path):
    private, public = generate_keys()
    settings = Settings(environment="development", data_dir=tmp_path, vapid_private_key=private,
                        vapid_public_key=public, email_from="hello@demo.example")
    sender = bootstrap._push_channel(settings)
    assert sender.public_key == public and sender._subject == "mailto:hello@demo.example"
    assert not (tmp_path / "dev-vapid.json").exists()
