"""Object stores: the S3 adapter against moto's S3 HTTP server, and one contract both adapters must keep.

moto speaks the real S3 HTTP API, so boto3 runs unchanged against it. What moto (5.2) does NOT do is check the
signature or the expiry of a presigned URL: a tampered or expired one is answered 200 (measured). The presigned-URL
test therefore checks (a) over HTTP, that moto serves the object with the signature and refuses it without one
(the object is private), and (b) with an independent SigV4 verifier written here from AWS's published algorithm,
that the signature is valid for our credentials and key, and that a tampered or expired URL does not verify.
"""

from __future__ import annotations

import hashlib
import hmac
import urllib.error
import urllib.request
import uuid
from datetime import datetime, timedelta, timezone
from urllib.parse import parse_qsl, quote, urlsplit

import pytest

from backend.storage.adapters.local import LocalObjectStore
from backend.storage.adapters.s3 import S3ObjectStore
from backend.storage.ports import StorageError, is_public, new_key
from backend.storage.signing import UrlSigner
from tests.servers import _free_port

from tests.integration.conftest import FAKE_KEY_ID, FAKE_SECRET

BAD_KEYS = ["", "/abs/key", "../escape", "a/../../b", "a/..", "a//b", "a/./b", "trailing/", "back\\slash",
            "nul\x00byte"]


@pytest.fixture(scope="module")
def s3_store(moto_endpoint):
    store = S3ObjectStore(bucket="mp-test", endpoint_url=moto_endpoint)
    store.ensure_bucket()
    return store


@pytest.fixture(params=["local", "s3"])
def store(request, tmp_path):
    if request.param == "local":
        return LocalObjectStore(tmp_path, UrlSigner("test-secret"))
    return request.getfixturevalue("s3_store")


def _key(name: str) -> str:
    # The S3 bucket is shared by the module's tests; a fresh prefix keeps them independent.
    return f"t1/{uuid.uuid4().hex[:8]}/{name}"


def _public_key(name: str) -> str:
    return f"t1/avatars/{uuid.uuid4().hex[:8]}-{name}"


# ------------------------------------------------------------------ contract: both adapters


def test_put_then_get_returns_bytes_and_content_type(store):
    key = _key("avatars/u1.jpg")
    store.put(key, b"\xff\xd8jpeg bytes", "image/jpeg")
    assert store.get(key) == (b"\xff\xd8jpeg bytes", "image/jpeg")
    store.put(key, b"replaced", "image/png")  # overwrite replaces data and type together
    assert store.get(key) == (b"replaced", "image/png")


def test_get_of_missing_key_raises_key_error(store):
    with pytest.raises(KeyError):
        store.get(_key("nothing-here.pdf"))


def test_delete_removes_and_is_a_no_op_when_missing(store):
    key = _key("invoices/1.pdf")
    store.put(key, b"%PDF-1.4", "application/pdf")
    store.delete(key)
    with pytest.raises(KeyError):
        store.get(key)
    store.delete(key)  # again: nothing to delete, no error
    store.delete(_key("never-existed"))


@pytest.mark.parametrize("bad", BAD_KEYS)
def test_bad_keys_are_refused_by_every_operation(store, bad):
    with pytest.raises(KeyError):
        store.put(bad, b"x", "text/plain")
    with pytest.raises(KeyError):
        store.get(bad)
    with pytest.raises(KeyError):
        store.delete(bad)
    with pytest.raises(KeyError):
        store.url(bad)
    with pytest.raises(KeyError):
        store.signed_url(bad)


def test_url_names_the_key(store):
    key = _public_key("a.txt")
    assert key in store.url(key)


def test_keys_are_random_and_only_avatars_and_portfolio_are_public():
    keys = {new_key(7, "invoices", ".pdf") for _ in range(100)}
    assert len(keys) == 100 and all(k.startswith("t7/invoices/") and k.endswith(".pdf") for k in keys)
    assert all(len(k) - len("t7/invoices/.pdf") >= 22 for k in keys)  # 128 random bits, url-safe base64
    assert is_public("t1/avatars/u1-x.jpg") and is_public("t1/portfolio/u1-x-thumb.jpg")
    for private in ("t1/invoices/x.pdf", "t1/chat/3/x.png", "t1/requests/x.jpg", "t1/anything-new/x",
                    "avatars/x.jpg", "t1/avatars"):
        assert not is_public(private), private


def test_a_private_object_has_no_lasting_url(store):
    key = _key("invoices/x.pdf")
    store.put(key, b"%PDF", "application/pdf")
    with pytest.raises(KeyError):
        store.url(key)
    assert key.replace(" ", "%20") in store.signed_url(key) or key in store.signed_url(key)


def test_local_signed_urls_open_one_object_until_they_expire(tmp_path):
    store = LocalObjectStore(tmp_path, UrlSigner("test-secret"), signed_seconds=60)
    key, other = _key("chat/a.png"), _key("chat/b.png")
    store.put(key, b"secret a", "image/png")
    store.put(other, b"secret b", "image/png")
    params = dict(parse_qsl(urlsplit(store.signed_url(key)).query))
    expires, signature = int(params["expires"]), params["signature"]
    assert store.open_signed(key, expires, signature) == (b"secret a", "image/png")
    for bad in [(other, expires, signature),  # the signature opens its own object only
                (key, expires + 3600, signature),  # nor lives longer than it was signed for
                (key, expires, signature[:-1] + ("0" if signature[-1] != "0" else "1")),  # tampered
                (key, expires, ""),
                (key, 0, signature)]:
        with pytest.raises(KeyError):
            store.open_signed(*bad)
    # another secret (another installation, or a rotated SECRET_KEY) does not accept it
    with pytest.raises(KeyError):
        LocalObjectStore(tmp_path, UrlSigner("another-secret")).open_signed(key, expires, signature)
    # and once expired it is refused
    assert UrlSigner("test-secret").valid(key, expires, signature, now=expires - 1)
    assert not UrlSigner("test-secret").valid(key, expires, signature, now=expires + 1)


# ------------------------------------------------------------------ S3 specifics


def test_ensure_bucket_is_idempotent(moto_endpoint):
    store = S3ObjectStore(bucket="mp-test", endpoint_url=moto_endpoint)
    store.ensure_bucket()
    store.ensure_bucket()
    assert store._client.head_bucket(Bucket="mp-test")["ResponseMetadata"]["HTTPStatusCode"] == 200


def test_ensure_bucket_outside_us_east_1_sets_the_location(moto_endpoint):
    store = S3ObjectStore(bucket="mp-test-eu", endpoint_url=moto_endpoint, region="eu-west-1")
    store.ensure_bucket()
    store.ensure_bucket()
    assert store._client.get_bucket_location(Bucket="mp-test-eu")["LocationConstraint"] == "eu-west-1"
    store.put("t1/x.txt", b"eu", "text/plain")
    assert store.get("t1/x.txt") == (b"eu", "text/plain")


def test_missing_bucket_is_a_storage_error_with_a_safe_message(moto_endpoint):
    store = S3ObjectStore(bucket="mp-never-created", endpoint_url=moto_endpoint)
    with pytest.raises(StorageError) as info:
        store.get("t1/a.txt")
    assert "mp-never-created" not in info.value.message and "NoSuchBucket" not in info.value.message
    assert info.value.__cause__ is not None  # the vendor error is kept for the logs


def test_unreachable_endpoint_is_a_storage_error(moto_endpoint):
    store = S3ObjectStore(bucket="mp-test", endpoint_url=f"http://127.0.0.1:{_free_port()}")
    with pytest.raises(StorageError):
        store.put("t1/a.txt", b"x", "text/plain")
    with pytest.raises(StorageError):
        store.ensure_bucket()


def _http_get(url: str) -> tuple[int, bytes, str]:
    try:
        with urllib.request.urlopen(url, timeout=10) as resp:
            return resp.status, resp.read(), resp.headers.get("Content-Type", "")
    except urllib.error.HTTPError as exc:
        return exc.code, exc.read(), ""


def test_presigned_url_serves_the_object_over_http(s3_store):
    key = _public_key("ünïcode name.png")
    s3_store.put(key, b"png bytes", "image/png")
    status, body, content_type = _http_get(s3_store.url(key))
    assert (status, body, content_type) == (200, b"png bytes", "image/png")


def test_signed_url_of_a_private_object_is_served_uncached(s3_store):
    key = _key("chat/photo.png")
    s3_store.put(key, b"private png", "image/png")
    with urllib.request.urlopen(s3_store.signed_url(key), timeout=10) as resp:
        assert resp.read() == b"private png"
        assert resp.headers["Cache-Control"] == "private, no-store"


def test_object_without_signature_is_refused(s3_store):
    key = _key("private.pdf")
    s3_store.put(key, b"%PDF secret", "application/pdf")
    parts = urlsplit(s3_store.signed_url(key))
    status, body, _ = _http_get(f"{parts.scheme}://{parts.netloc}{parts.path}")
    assert status == 403 and b"secret" not in body


# An independent SigV4 query-string verifier (AWS "Authenticating Requests: Using Query Parameters"), standing in
# for the check real S3 makes and moto skips.
def _sigv4_query_valid(url: str, secret: str, now: datetime) -> bool:
    parts = urlsplit(url)
    params = parse_qsl(parts.query, keep_blank_values=True)
    given = dict(params)
    signature = given.pop("X-Amz-Signature", "")
    if given.get("X-Amz-Algorithm") != "AWS4-HMAC-SHA256":
        return False
    signed_at = datetime.strptime(given["X-Amz-Date"], "%Y%m%dT%H%M%SZ").replace(tzinfo=timezone.utc)
    if now > signed_at + timedelta(seconds=int(given["X-Amz-Expires"])):
        return False
    _key_id, day, region, service, terminator = given["X-Amz-Credential"].split("/")
    enc = lambda s: quote(s, safe="-_.~")  # noqa: E731
    canonical_query = "&".join(f"{enc(k)}={enc(v)}" for k, v in sorted(given.items()))
    assert given["X-Amz-SignedHeaders"] == "host"
    canonical_request = "\n".join(["GET", parts.path, canonical_query, f"host:{parts.netloc}", "", "host",
                                   "UNSIGNED-PAYLOAD"])
    scope = f"{day}/{region}/{service}/{terminator}"
    to_sign = "\n".join(["AWS4-HMAC-SHA256", given["X-Amz-Date"], scope,
                         hashlib.sha256(canonical_request.encode()).hexdigest()])
    signing_key = f"AWS4{secret}".encode()
    for part in (day, region, service, terminator):
        signing_key = hmac.new(signing_key, part.encode(), hashlib.sha256).digest()
    expected = hmac.new(signing_key, to_sign.encode(), hashlib.sha256).hexdigest()
    return hmac.compare_digest(expected, signature)


def test_presigned_url_is_signed_for_our_key_and_expires(moto_endpoint):
    store = S3ObjectStore(bucket="mp-test", endpoint_url=moto_endpoint, presign_seconds=3600, signed_seconds=600)
    key = _key("invoices/INV-7.pdf")
    url = store.signed_url(key)
    params = dict(parse_qsl(urlsplit(url).query))
    assert params["X-Amz-Expires"] == "600"  # private objects: the short lifetime
    assert params["X-Amz-Credential"].startswith(f"{FAKE_KEY_ID}/") and "/us-east-1/s3/" in params["X-Amz-Credential"]

    now = datetime.now(timezone.utc)
    assert _sigv4_query_valid(url, FAKE_SECRET, now)
    assert not _sigv4_query_valid(url, "another-secret", now)
    assert not _sigv4_query_valid(url, FAKE_SECRET, now + timedelta(seconds=601))  # expired

    sig = params["X-Amz-Signature"]
    tampered_sig = url.replace(f"X-Amz-Signature={sig}", f"X-Amz-Signature={sig[:-1]}{'0' if sig[-1] != '0' else '1'}")
    assert tampered_sig != url and not _sigv4_query_valid(tampered_sig, FAKE_SECRET, now)
    other_key = url.replace("INV-7.pdf", "INV-8.pdf")  # the signature must not open a different object
    assert not _sigv4_query_valid(other_key, FAKE_SECRET, now)
    longer = url.replace("X-Amz-Expires=600", "X-Amz-Expires=604800")  # nor live longer than it was signed for
    assert not _sigv4_query_valid(longer, FAKE_SECRET, now)


def test_presign_lifetime_is_bounded():
    with pytest.raises(ValueError):
        S3ObjectStore(bucket="mp-test", presign_seconds=0)
    with pytest.raises(ValueError):
        S3ObjectStore(bucket="mp-test", presign_seconds=8 * 24 * 3600)
