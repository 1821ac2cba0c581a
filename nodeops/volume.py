"""The project's node_modules volume: finding it by label, its state, removing it."""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass
from pathlib import Path, PurePosixPath

from .compose import APP_DIR, PROJECT_LABEL, VOLUME_LABEL, Project
from .errors import EXIT_FAILURE, NodeopsError

STAMP_FILE = ".nodeops-stamp"

#: The package.json fields that npm ci requires the lock's root package to repeat.
DEPENDENCY_FIELDS = ("dependencies", "devDependencies", "optionalDependencies", "peerDependencies")


@dataclass(frozen=True)
class VolumeState:
    """The known state of a project's node_modules volume."""

    key: str
    #: The Docker name of the volume, or None when it does not exist.
    name: str | None
    #: missing, empty, in sync, stale or incomplete.
    state: str
    reason: str = ""


def node_modules_key(project: Project) -> str:
    """Return the compose volume key mounted on the app's node_modules folder."""
    config = project.client.compose.config(return_json=True)
    service = config.get("services", {}).get(project.service)
    if service is None:
        raise NodeopsError(
            f"service {project.service!r} not found in {project.compose_file.name}:"
            " set NODEOPS_SERVICE in .env to your app's service"
        )
    target = str(PurePosixPath(APP_DIR) / "node_modules")
    for mount in service.get("volumes", []):
        if mount.get("type") == "volume" and mount.get("target") == target and mount.get("source"):
            return mount["source"]
    raise NodeopsError(
        f"service {project.service!r} mounts no named volume on {target}:"
        f" add 'node_modules:{target}' to its volumes"
    )


def find_volumes(project: Project, key: str | None = None) -> list:
    """Return this project's volumes (only ``key``'s when given), found by compose labels."""
    filters = [("label", f"{PROJECT_LABEL}={project.name}")]
    if key is not None:
        filters.append(("label", f"{VOLUME_LABEL}={key}"))
    return project.client.volume.list(filters=filters)


def containers_using(project: Project, volume_name: str) -> list:
    """Return the containers, running or stopped, that mount the volume."""
    return project.client.container.list(all=True, filters=[("volume", volume_name)])


def lock_mismatch(directory: Path) -> str | None:
    """Return how package-lock.json differs from package.json, or None when it matches.

    The development entrypoint makes the same check before it touches the
    volume, so a package.json edited by hand fails with this reason.
    """
    try:
        manifest = json.loads((directory / "package.json").read_text(encoding="utf-8"))
        lock = json.loads((directory / "package-lock.json").read_text(encoding="utf-8"))
    except FileNotFoundError as error:
        return f"{Path(error.filename).name} is missing"
    except json.JSONDecodeError as error:
        return f"invalid JSON at line {error.lineno}: {error.msg}"
    root = lock.get("packages", {}).get("") if isinstance(lock, dict) else None
    if not isinstance(manifest, dict) or not isinstance(root, dict):
        return None
    for field in DEPENDENCY_FIELDS:
        declared = manifest.get(field) or {}
        locked = root.get(field) or {}
        for name in sorted({*declared, *locked}):
            if declared.get(name) != locked.get(name):
                return (
                    f"{field}.{name} is {_show(declared.get(name))} in package.json"
                    f" but {_show(locked.get(name))} in package-lock.json"
                )
    return None


def _show(value: object) -> str:
    return "missing" if value is None else json.dumps(value)


def expected_stamp(project: Project) -> str:
    """Return the stamp the entrypoint writes after installing the current lock file."""
    lock = project.directory / "package-lock.json"
    digest = hashlib.sha256(lock.read_bytes()).hexdigest() if lock.is_file() else "none"
    return f"lock {digest}\nnode v{project.settings.node_version}"


def read_state(project: Project) -> VolumeState:
    """Read the install stamp inside the volume and compare it with the lock file."""
    key = node_modules_key(project)
    volumes = find_volumes(project, key)
    if not volumes:
        return VolumeState(key, None, "missing", "it is created and filled on the next run")
    name = volumes[0].name
    listing = _read_volume(project, name, ["ls", "-A", "/modules"])
    entries = [entry for entry in listing.split() if entry]
    if not entries:
        return VolumeState(key, name, "empty", "it is filled on the next run")
    if STAMP_FILE not in entries:
        return VolumeState(key, name, "incomplete", "no record of a complete install: the next run reinstalls it")
    stamp = _read_volume(project, name, ["cat", f"/modules/{STAMP_FILE}"]).strip()
    expected = expected_stamp(project)
    if stamp == expected:
        return VolumeState(key, name, "in sync")
    return VolumeState(key, name, "stale", stale_reason(stamp, expected) + ": the next run reinstalls it")


def stale_reason(stamp: str, expected: str) -> str:
    """Say why the volume's stamp differs from the one the current lock and node would write."""
    installed_node = stamp.splitlines()[-1] if stamp else ""
    expected_node = expected.splitlines()[-1]
    if installed_node != expected_node:
        installed = installed_node.removeprefix("node ").strip() or "an unknown node"
        return f"installed for node {installed}, the project pins node {expected_node.removeprefix('node ')}"
    return "package-lock.json changed since the last install"


def _read_volume(project: Project, volume_name: str, command: list[str]) -> str:
    from python_on_whales.exceptions import DockerException

    # The development stage's base image: present wherever the project was built.
    image = f"node:{project.settings.node_version}"
    try:
        output = project.client.run(
            image,
            command,
            remove=True,
            volumes=[(volume_name, "/modules", "ro")],
            labels={PROJECT_LABEL: project.name},
        )
    except DockerException as error:
        raise NodeopsError(f"reading volume {volume_name} failed: {error.stderr.strip() or error}", EXIT_FAILURE)
    return output or ""


def remove_node_modules_volume(project: Project) -> list[str]:
    """Stop and remove the containers using the volume, then remove only the volume.

    Returns what was removed. The volume is found by the project and volume
    labels compose puts on it, so a volume of the same name in another
    compose project, or one without labels, is never touched.
    """
    from python_on_whales.exceptions import DockerException

    key = node_modules_key(project)
    removed = []
    for volume in find_volumes(project, key):
        try:
            for container in containers_using(project, volume.name):
                name = container.name
                container.stop()
                container.remove(force=True, volumes=False)
                removed.append(f"container {name}")
            project.client.volume.remove(volume.name)
        except DockerException as error:
            raise NodeopsError(
                f"removing volume {volume.name} failed: {error.stderr.strip() or error};"
                " stop what uses it with 'nodeops down', then run this again",
                EXIT_FAILURE,
            ) from None
        removed.append(f"volume {volume.name}")
    return removed
