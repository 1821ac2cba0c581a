"""package.json: reading it, and the checks the production image depends on."""

from __future__ import annotations

import json
import posixpath
import re
from pathlib import Path
from typing import Any

from .errors import NodeopsError

# A start script that only runs node on one file, such as "node server.js".
_PLAIN_NODE_START = re.compile(r"^\s*node\s+([^\s;&|<>$`'\"-][^\s;&|<>$`'\"]*)\s*$")


def read_manifest(directory: Path) -> dict[str, Any]:
    """Read package.json, raising a `NodeopsError` when it is missing or not a JSON object."""
    path = directory / "package.json"
    if not path.is_file():
        raise NodeopsError(f"package.json is missing in {directory}: run 'nodeops bootstrap' first")
    try:
        manifest = json.loads(path.read_text(encoding="utf-8"))
    except json.JSONDecodeError as error:
        raise NodeopsError(f"invalid JSON in {path} at line {error.lineno}: fix it, then run this again")
    if not isinstance(manifest, dict):
        raise NodeopsError(f"invalid {path}: it must contain a JSON object")
    return manifest


def main_file(manifest: dict[str, Any]) -> str:
    """Return the file ``node .`` starts: package.json's main, or index.js when it is unset."""
    main = manifest.get("main")
    return main if isinstance(main, str) and main.strip() else "index.js"


def _same_module(first: str, second: str) -> bool:
    """Tell whether two paths name the same module once ``./`` and a ``.js`` suffix are dropped."""

    def normalized(path: str) -> str:
        clean = posixpath.normpath(path.strip())
        return clean[: -len(".js")] if clean.endswith(".js") else clean

    return normalized(first) == normalized(second)


def check_start_script(manifest: dict[str, Any]) -> None:
    """Reject a start script that runs another file than ``main``.

    The image starts ``node .``, which runs ``main``. A start script such as
    ``node server.js`` with main unset or different means the image would
    start the wrong file, so the user must make the two agree.
    """
    scripts = manifest.get("scripts")
    start = scripts.get("start") if isinstance(scripts, dict) else None
    if not isinstance(start, str):
        return
    match = _PLAIN_NODE_START.match(start)
    if match is None:
        return
    started = match.group(1)
    main = main_file(manifest)
    if not _same_module(started, main):
        raise NodeopsError(
            f"package.json's start script runs {started!r} but main is {main!r}, and the"
            f' image starts main with "node .": set "main": "{started}" in package.json'
        )


def check_main_exists(directory: Path, manifest: dict[str, Any]) -> None:
    """Reject a ``main`` that names no file, because the image could not start."""
    main = main_file(manifest)
    target = directory / main
    candidates = [target, target.with_name(target.name + ".js"), target / "index.js"]
    if not any(candidate.is_file() for candidate in candidates):
        raise NodeopsError(
            f"package.json's main is {main!r}, which is not a file in {directory}:"
            ' set "main" to the file that starts the app'
        )
