"""Embedded object store: files under ./data/objects.

Public objects (avatars, portfolio) are served by the app's /api/v1/objects route; every other object only through
an HMAC-signed, expiring /api/v1/files URL minted after the caller's right to it was checked.
"""

from __future__ import annotations

import json
from pathlib import Path

from backend.storage.ports import is_public, validate_key
from backend.storage.signing import UrlSigner


class LocalObjectStore:
    def __init__(self, root: Path, signer: UrlSigner, *, signed_seconds: int = 600,
                 url_prefix: str = "/api/v1/objects"):
        self.root = root.resolve()
        self.signer = signer
        self.signed_seconds = signed_seconds
        self.url_prefix = url_prefix

    def _path(self, key: str) -> Path:
        validate_key(key)
        if key.endswith(".meta"):  # reserved: the content type sits beside the data in `<key>.meta`
            raise KeyError(key)
        path = (self.root / key).resolve()
        # Belt and braces after validate_key: a symlink under root must not lead outside it either.
        if not path.is_relative_to(self.root) or path == self.root:
            raise KeyError(key)
        return path

    def put(self, key: str, data: bytes, content_type: str) -> None:
        path = self._path(key)
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = path.with_suffix(path.suffix + ".tmp")
        tmp.write_bytes(data)
        tmp.replace(path)  # atomic: a reader never sees half a file
        path.with_name(path.name + ".meta").write_text(json.dumps({"content_type": content_type}))

    def get(self, key: str) -> tuple[bytes, str]:
        path = self._path(key)
        if not path.is_file():
            raise KeyError(key)
        meta = path.with_name(path.name + ".meta")
        content_type = json.loads(meta.read_text())["content_type"] if meta.exists() else "application/octet-stream"
        return path.read_bytes(), content_type

    def url(self, key: str) -> str:
        self._path(key)
        if not is_public(key):
            raise KeyError(key)
        return f"{self.url_prefix}/{key}"

    def signed_url(self, key: str) -> str:
        self._path(key)
        return self.signer.sign(key, self.signed_seconds)

    def open_signed(self, key: str, expires: int, signature: str) -> tuple[bytes, str]:
        if not self.signer.valid(key, expires, signature):
            raise KeyError(key)
        return self.get(key)

    def delete(self, key: str) -> None:
        path = self._path(key)
        if path.is_dir():  # a key prefix, not an object: nothing to delete
            return
        path.unlink(missing_ok=True)
        path.with_name(path.name + ".meta").unlink(missing_ok=True)
