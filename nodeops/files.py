"""Safe writes of files in the user's project."""

from __future__ import annotations

import os
import tempfile
from pathlib import Path

from .errors import NodeopsError


def write_atomic(path: Path, content: str, mode: int | None = None) -> None:
    """Replace ``path`` with ``content`` in one step, keeping its mode.

    The text goes to a temporary file in the same folder first, so a crash
    never leaves a half-written file behind.
    """
    if mode is None:
        mode = path.stat().st_mode & 0o7777 if path.exists() else 0o666 & ~_umask()
    try:
        fd, temporary = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    except PermissionError:
        raise NodeopsError(
            f"cannot write {path}: permission denied in {path.parent};"
            " run nodeops as the user who owns the project folder"
        ) from None
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as stream:
            stream.write(content)
        os.chmod(temporary, mode)
        os.replace(temporary, path)
    except BaseException:
        Path(temporary).unlink(missing_ok=True)
        raise


def _umask() -> int:
    current = os.umask(0)
    os.umask(current)
    return current
