"""Checks of a built production image: its user, dependencies, files, permissions and history."""

from __future__ import annotations

import json
import posixpath
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from .compose import PROJECT_LABEL, Project, docker_binary, run_captured
from .manifest import read_manifest
from .settings import ENV_FILE, read_env_file

#: Settings nodeops itself passes to the build or reads; the history check skips their values.
NODEOPS_VARIABLES = frozenset(
    {
        "NODE_VERSION",
        "PORT",
        "HEALTHCHECK_PATH",
        "PROD_BUILD_ARGS",
        "NODEOPS_SERVICE",
        "COMPOSE_PROJECT_NAME",
        "BIND_ADDRESS",
    }
)
#: Values shorter than this are skipped by the history check, because they match by chance.
MIN_SECRET_LENGTH = 8

#: Files that must never be in an image, whatever .dockerignore lists.
ALWAYS_EXCLUDED = (".env", "**/.env")


@dataclass(frozen=True)
class ImageCheck:
    """One property of the built image: what was checked, and the fix when it failed."""

    passed: bool
    summary: str
    failure: str = ""


#: Lists the app folder from inside the image, as the image's user, and prints JSON.
_PROBE_SCRIPT = r"""
const fs = require("node:fs");
const path = require("node:path");
const root = process.env.NODEOPS_APP_DIR;
const devPaths = JSON.parse(process.env.NODEOPS_DEV_PATHS);
const files = [];
const writable = [];
function isWritable(full) {
  try { fs.accessSync(full, fs.constants.W_OK); return true; } catch { return false; }
}
function walk(dir) {
  for (const entry of fs.readdirSync(dir, { withFileTypes: true })) {
    const full = path.join(dir, entry.name);
    const relative = path.relative(root, full);
    if (relative !== "node_modules" && !relative.startsWith("node_modules/")) files.push(relative);
    if (!entry.isSymbolicLink() && isWritable(full)) writable.push(relative);
    if (entry.isDirectory()) walk(full);
  }
}
if (isWritable(root)) writable.push(".");
walk(root);
const present = devPaths.filter((item) => fs.existsSync(path.join(root, item)));
console.log(JSON.stringify({ uid: process.getuid(), files, writable, present }));
"""


def dev_only_paths(directory: Path, manifest: dict[str, Any]) -> list[str]:
    """List the node_modules paths of packages only devDependencies need.

    The lock file marks them ``"dev": true``; without one in the lockfile v2+
    format, the direct devDependencies that are not also dependencies count.
    """
    lock_path = directory / "package-lock.json"
    try:
        lock = json.loads(lock_path.read_text(encoding="utf-8"))
    except (OSError, json.JSONDecodeError):
        lock = {}
    packages = lock.get("packages") if isinstance(lock, dict) else None
    if isinstance(packages, dict) and packages:
        return sorted(
            path for path, entry in packages.items() if path and isinstance(entry, dict) and entry.get("dev") is True
        )
    dev = manifest.get("devDependencies") or {}
    prod = manifest.get("dependencies") or {}
    return sorted(f"node_modules/{name}" for name in dev if name not in prod)


def _ignore_regex(pattern: str) -> re.Pattern[str]:
    """Translate one .dockerignore pattern (Go filepath.Match plus ``**``) into a regex."""
    parts = []
    index = 0
    while index < len(pattern):
        if pattern.startswith("**/", index):
            parts.append("(?:.*/)?")
            index += 3
        elif pattern.startswith("**", index):
            parts.append(".*")
            index += 2
        elif pattern[index] == "*":
            parts.append("[^/]*")
            index += 1
        elif pattern[index] == "?":
            parts.append("[^/]")
            index += 1
        elif pattern[index] == "[" and "]" in pattern[index + 1 :]:
            end = pattern.index("]", index + 1)
            parts.append(pattern[index : end + 1])
            index = end + 1
        else:
            parts.append(re.escape(pattern[index]))
            index += 1
    return re.compile("^" + "".join(parts) + "$")


def read_ignore_patterns(directory: Path) -> list[str]:
    """Return the patterns of the project's .dockerignore, in order, without comments."""
    path = directory / ".dockerignore"
    if not path.is_file():
        return []
    patterns = []
    for line in path.read_text(encoding="utf-8").splitlines():
        text = line.strip()
        if text and not text.startswith("#"):
            patterns.append(text)
    return patterns


def is_ignored(relative: str, patterns: list[str]) -> bool:
    """Tell whether .dockerignore ``patterns`` exclude ``relative`` or one of its parent folders.

    As in Docker, a pattern starting with ``!`` re-includes what earlier
    patterns excluded, and the last matching pattern wins.
    """
    prefixes = []
    pieces = relative.split("/")
    for count in range(1, len(pieces) + 1):
        prefixes.append("/".join(pieces[:count]))
    ignored = False
    for raw in patterns:
        negated = raw.startswith("!")
        pattern = posixpath.normpath(raw[1:] if negated else raw).lstrip("/")
        regex = _ignore_regex(pattern)
        if any(regex.match(prefix) for prefix in prefixes):
            ignored = not negated
    return ignored


def probe_image(tag: str, app_dir: str, dev_paths: list[str], project_name: str) -> dict[str, Any]:
    """Run the probe script in a throwaway container of ``tag`` and return its findings."""
    output = run_captured(
        [
            docker_binary(),
            "run",
            "--rm",
            "--network",
            "none",
            "--label",
            f"{PROJECT_LABEL}={project_name}",
            "--env",
            f"NODEOPS_APP_DIR={app_dir}",
            "--env",
            f"NODEOPS_DEV_PATHS={json.dumps(dev_paths)}",
            "--entrypoint",
            "node",
            tag,
            "-e",
            _PROBE_SCRIPT,
        ]
    )
    return json.loads(output.strip().splitlines()[-1])


def leaked_variables(history: str, env_values: dict[str, str], allowed: set[str]) -> list[str]:
    """Name the .env variables whose values appear in the image history.

    Variables in ``allowed`` (the named build arguments and nodeops' own
    settings) and values shorter than `MIN_SECRET_LENGTH` are skipped.
    """
    return sorted(
        name
        for name, value in env_values.items()
        if name not in allowed and len(value) >= MIN_SECRET_LENGTH and value in history
    )


def _listed(items: list[str], limit: int = 5) -> str:
    shown = ", ".join(items[:limit])
    return shown + (f" and {len(items) - limit} more" if len(items) > limit else "")


def check_image(project: Project, tag: str, image: dict[str, Any]) -> list[ImageCheck]:
    """Check the built image: its user, dependencies, files, permissions and history."""
    manifest = read_manifest(project.directory)
    app_dir = image["Config"].get("WorkingDir") or "/srv/app"
    dev_paths = dev_only_paths(project.directory, manifest)
    found = probe_image(tag, app_dir, dev_paths, project.name)
    checks = []

    # The runtime user.
    user = image["Config"].get("User") or "root"
    if found["uid"] == 0:
        checks.append(ImageCheck(False, f"runs as {user} (uid 0)", "the image runs as root: keep 'USER node' at the end of the production stage"))
    else:
        checks.append(ImageCheck(True, f"runs as {user} (uid {found['uid']}), not root"))

    # Production dependencies only.
    present = found["present"]
    if present:
        checks.append(
            ImageCheck(
                False,
                f"devDependencies in node_modules: {_listed(present)}",
                f"devDependencies are in the image ({_listed(present)}): install with"
                " 'npm ci --omit=dev' in the production-dependencies stage",
            )
        )
    else:
        checks.append(ImageCheck(True, f"no devDependencies in node_modules ({len(dev_paths)} dev-only packages looked for)"))

    # Nothing .dockerignore excludes, and never .env.
    patterns = [*read_ignore_patterns(project.directory), *ALWAYS_EXCLUDED]
    excluded = [path for path in found["files"] if is_ignored(path, patterns)]
    if excluded:
        checks.append(
            ImageCheck(
                False,
                f"ignored files in {app_dir}: {_listed(excluded)}",
                f"files that must stay out of the image are in {app_dir} ({_listed(excluded)}):"
                " list them in .dockerignore, which must also exclude .env",
            )
        )
    else:
        checks.append(ImageCheck(True, f"no .env or .dockerignore'd files among {len(found['files'])} app files"))

    # Read-only app files.
    writable = found["writable"]
    if writable:
        checks.append(
            ImageCheck(
                False,
                f"{len(writable)} app files writable by {user}: {_listed(writable)}",
                f"app files are writable by the runtime user ({_listed(writable)}): copy them"
                " with COPY, which makes them owned by root, and do not chown them to node",
            )
        )
    else:
        checks.append(ImageCheck(True, f"app files in {app_dir} not writable by {user}"))

    # No secret from .env in the build history.
    env_path = project.directory / ENV_FILE
    env_values = read_env_file(env_path) if env_path.is_file() else {}
    allowed = set(NODEOPS_VARIABLES) | set(project.settings.build_arg_names)
    history = run_captured(
        [docker_binary(), "image", "history", "--no-trunc", "--format", "{{.CreatedBy}}", tag]
    )
    leaked = leaked_variables(history, env_values, allowed)
    if leaked:
        checks.append(
            ImageCheck(
                False,
                f"values of {_listed(leaked)} from .env in the image history",
                f"the values of {_listed(leaked)} from .env are in the image history: remove"
                " them from the Dockerfile, and pass build values only through PROD_BUILD_ARGS",
            )
        )
    else:
        checked = len([name for name in env_values if name not in allowed])
        checks.append(ImageCheck(True, f"no .env value outside PROD_BUILD_ARGS in the history ({checked} checked)"))
    return checks
