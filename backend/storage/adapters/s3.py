"""Production object store: one S3 (or S3-compatible) bucket, read by browsers through presigned GET URLs.

Credentials come from boto3's standard chain (AWS_ACCESS_KEY_ID / AWS_SECRET_ACCESS_KEY, AWS_PROFILE, instance or
task roles); nothing here reads or stores them. Objects stay private: `url()` is the only way a browser gets one.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

import boto3
from botocore.config import Config
from botocore.exceptions import BotoCoreError, ClientError

from backend.storage.ports import StorageError, is_public, validate_key

# SigV4 presigned URLs cannot live longer than seven days.
MAX_PRESIGN_SECONDS = 7 * 24 * 3600

_MISSING_KEY_CODES = {"NoSuchKey", "404", "NotFound"}


def _error_code(exc: ClientError) -> str:
    return str(exc.response.get("Error", {}).get("Code", ""))


@contextmanager
def _storage_errors() -> Iterator[None]:
    """Turn vendor errors into StorageError; the original stays chained for the logs, never in the message."""
    try:
        yield
    except (ClientError, BotoCoreError) as exc:
        raise StorageError() from exc


class S3ObjectStore:
    def __init__(self, bucket: str, *, endpoint_url: str | None = None, region: str = "us-east-1",
                 presign_seconds: int = 3600, signed_seconds: int = 600, client=None):
        if not bucket:
            raise ValueError("bucket is required")
        if not 1 <= presign_seconds <= MAX_PRESIGN_SECONDS:
            raise ValueError(f"presign_seconds must be between 1 and {MAX_PRESIGN_SECONDS}")
        self.bucket = bucket
        self.region = region
        self.presign_seconds = presign_seconds  # public objects (the bucket itself is private)
        self.signed_seconds = min(signed_seconds, presign_seconds)  # private objects
        if client is None:
            config = Config(
                signature_version="s3v4",
                # S3-compatible servers (MinIO, moto, Ceph) behind a custom endpoint rarely have wildcard DNS.
                s3={"addressing_style": "path" if endpoint_url else "auto"},
                retries={"mode": "standard", "max_attempts": 3},
                connect_timeout=5,
                read_timeout=30,
            )
            # A private session: boto3's default session is not safe to share between threads.
            client = boto3.session.Session().client("s3", endpoint_url=endpoint_url, region_name=region,
                                                     config=config)
        self._client = client

    def ensure_bucket(self) -> None:
        """Create the bucket unless it exists already (safe to call on every start)."""
        try:
            self._client.head_bucket(Bucket=self.bucket)
            return
        except ClientError as exc:
            if _error_code(exc) not in ("404", "NoSuchBucket", "NotFound"):
                # 403: the bucket exists but belongs to someone else, or these credentials may not see it.
                raise StorageError("The file storage bucket is not accessible with the configured credentials.") \
                    from exc
        except BotoCoreError as exc:
            raise StorageError() from exc
        kwargs: dict = {"Bucket": self.bucket}
        if self.region != "us-east-1":  # us-east-1 refuses an explicit LocationConstraint
            kwargs["CreateBucketConfiguration"] = {"LocationConstraint": self.region}
        try:
            self._client.create_bucket(**kwargs)
        except ClientError as exc:
            if _error_code(exc) == "BucketAlreadyOwnedByYou":  # another process won the race
                return
            if _error_code(exc) == "BucketAlreadyExists":
                raise StorageError("The file storage bucket name is taken by another account.") from exc
            raise StorageError() from exc
        except BotoCoreError as exc:
            raise StorageError() from exc

    def put(self, key: str, data: bytes, content_type: str) -> None:
        validate_key(key)
        with _storage_errors():
            self._client.put_object(Bucket=self.bucket, Key=key, Body=bytes(data), ContentType=content_type)

    def get(self, key: str) -> tuple[bytes, str]:
        validate_key(key)
        try:
            response = self._client.get_object(Bucket=self.bucket, Key=key)
            with response["Body"] as body:
                data = body.read()
        except ClientError as exc:
            if _error_code(exc) in _MISSING_KEY_CODES:
                raise KeyError(key) from None
            raise StorageError() from exc
        except BotoCoreError as exc:
            raise StorageError() from exc
        return data, response.get("ContentType") or "application/octet-stream"

    def url(self, key: str) -> str:
        validate_key(key)
        if not is_public(key):
            raise KeyError(key)
        return self._presign(key, self.presign_seconds, {})

    def signed_url(self, key: str) -> str:
        validate_key(key)
        # S3 answers with the Cache-Control named in the signed query, so no shared cache keeps a private object.
        return self._presign(key, self.signed_seconds, {"ResponseCacheControl": "private, no-store"})

    def open_signed(self, key: str, expires: int, signature: str) -> tuple[bytes, str]:
        raise KeyError(key)  # presigned URLs go to S3 directly; the app never serves a private object from S3

    def _presign(self, key: str, seconds: int, extra: dict) -> str:
        with _storage_errors():  # signing is local, but fails without credentials
            return self._client.generate_presigned_url(
                "get_object", Params={"Bucket": self.bucket, "Key": key, **extra}, ExpiresIn=seconds)

    def delete(self, key: str) -> None:
        validate_key(key)
        try:
            self._client.delete_object(Bucket=self.bucket, Key=key)  # S3 answers 204 for a missing key too
        except ClientError as exc:
            if _error_code(exc) in _MISSING_KEY_CODES:  # some S3-compatible servers do say 404
                return
            raise StorageError() from exc
        except BotoCoreError as exc:
            raise StorageError() from exc
