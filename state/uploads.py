"""Reading Reflex uploads: only after the handler has checked who is asking, and never more than a
file's limit into memory.

By the time an upload handler runs, Starlette has spooled the request's files to temporary files
(the request as a whole was capped by marketplace_app/limits.py). Here the files are counted, their
spooled sizes checked, and each is read with one bounded read(max_bytes + 1), so an oversized file
is refused without ever being held whole. The backend services check count, size and content again.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from backend.config import get_settings
from backend.errors import ValidationFailed

MB = 1024 * 1024


def image_limit_mb() -> int:
    """The size limit of every uploaded image (avatar, portfolio, request photo), in MB, as the pages state it."""
    return get_settings().max_avatar_bytes // MB


def _mb(n: int) -> str:
    return f"{n / MB:.0f} MB"


async def read_uploads(files: Sequence[Any] | None, *, field: str, max_files: int,
                       max_bytes: int) -> list[tuple[str, bytes]]:
    """[(file name, bytes)] of the uploaded files; ValidationFailed({field: ...}) when there are more
    than max_files or one is over max_bytes. Call it after the caller's right to upload was checked."""
    files = list(files or [])
    if len(files) > max_files:
        raise ValidationFailed({field: f"Choose at most {max_files} file{'s' if max_files != 1 else ''} at once."})
    for upload in files:
        size = getattr(upload, "size", None)
        if size is not None and size > max_bytes:
            raise ValidationFailed({field: f"{_name(upload)}: files can be at most {_mb(max_bytes)}."})
    read = []
    for upload in files:
        data = await upload.read(max_bytes + 1)
        if len(data) > max_bytes:
            raise ValidationFailed({field: f"{_name(upload)}: files can be at most {_mb(max_bytes)}."})
        read.append((getattr(upload, "filename", None) or "file", data))
    return read


def _name(upload: Any) -> str:
    name = str(getattr(upload, "filename", None) or "file").replace("\\", "/").rsplit("/", 1)[-1]
    return "".join(ch for ch in name if ch.isprintable())[:80] or "file"
