"""Embedded object store: files under ./data/objects, served by the app's /api/v1/objects route."""

from __future__ import annotations

import json
from pathlib import Path


class LocalObjectStore:
    def __init__(self, root: Path, url_prefix: str = "/api/v1/objects"):
        self.root = root.resolve()
        self.url_prefix = url_prefix

    def _path(self, key: str) -> Path:
        path = (self.root / key).resolve()
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
        if not path.is_file() or path.name.endswith(".meta"):
            raise KeyError(key)
        meta = path.with_name(path.name + ".meta")
        content_type = json.loads(meta.read_text())["content_type"] if meta.exists() else "application/octet-stream"
        return path.read_bytes(), content_type

    def url(self, key: str) -> str:
        return f"{self.url_prefix}/{key}"
