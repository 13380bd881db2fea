"""Embedded object store: files under ./data/objects, served by the app's /api/v1/objects route."""

from __future__ import annotations

import json
from pathlib import Path

from backend.storage.ports import validate_key


class LocalObjectStore:
    def __init__(self, root: Path, url_prefix: str = "/api/v1/objects"):
        self.root = root.resolve()
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
        return f"{self.url_prefix}/{key}"

    def delete(self, key: str) -> None:
        path = self._path(key)
        if path.is_dir():  # a key prefix, not an object: nothing to delete
            return
        path.unlink(missing_ok=True)
        path.with_name(path.name + ".meta").unlink(missing_ok=True)
