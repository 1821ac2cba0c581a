"""Bootstrap: the project files nodeops writes, and the package files npm creates."""

from __future__ import annotations

import json
import sys
from dataclasses import dataclass
from importlib.resources import files
from pathlib import Path

from .compose import Project, find_compose_file
from .errors import EXIT_FAILURE, NodeopsError
from .files import write_atomic
from .manifest import read_manifest
from .override import override_path
from .settings import (
    ENV_EXAMPLE_FILE,
    ENV_FILE,
    parse_port,
    read_env_file,
    validate_node_version,
)

DEFAULT_COMPOSE_FILE = "docker-compose.yml"
ENTRYPOINT_FILE = "docker/dev-entrypoint.sh"

#: npm flags for every install nodeops runs: no audit or funding chatter.
NPM_QUIET = ("--no-audit", "--no-fund")


def read_template(name: str) -> str:
    """Read a template shipped in the package (the repository's docker/ folder)."""
    return files("nodeops.templates").joinpath(name).read_text(encoding="utf-8")


def render(name: str, values: dict[str, str]) -> str:
    """Fill the ``__KEY__`` placeholders of a template.

    Docker files use ``${VAR}`` themselves, so nodeops' placeholders differ.
    """
    text = read_template(name)
    for key, value in values.items():
        text = text.replace(f"__{key}__", value)
    return text


@dataclass(frozen=True)
class PlannedFile:
    path: str
    content: str
    mode: int = 0o644


def plan_files(directory: Path, node_version: str, port: int) -> list[PlannedFile]:
    """List the Docker and settings files of a project, rendered from the templates."""
    values = {"NODE_VERSION": node_version, "PORT": str(port)}
    env_text = render("env", values)
    compose_file = find_compose_file(directory)
    compose_name = compose_file.name if compose_file else DEFAULT_COMPOSE_FILE
    return [
        PlannedFile("Dockerfile", render("Dockerfile", values)),
        PlannedFile(compose_name, render("docker-compose.yml", values)),
        PlannedFile(".dockerignore", render("dockerignore", values)),
        PlannedFile(ENTRYPOINT_FILE, render("dev-entrypoint.sh", values), 0o755),
        PlannedFile(ENV_EXAMPLE_FILE, env_text),
    ]


def write_project_files(directory: Path, node_version: str, port: int, force: bool) -> list[str]:
    """Write the files that are missing (all of them with ``force``); return what was done.

    The user's own files are kept: only ``force`` replaces them, and ``.env``
    and ``.gitignore`` only ever get the lines they are missing.
    """
    validate_node_version(node_version, "--node-version")
    parse_port(str(port), "--port")
    report = []
    for planned in plan_files(directory, node_version, port):
        path = directory / planned.path
        if path.exists() and not force:
            report.append(f"kept {planned.path}")
            continue
        existed = path.exists()
        path.parent.mkdir(parents=True, exist_ok=True)
        write_atomic(path, planned.content, planned.mode)
        report.append(f"{'replaced' if existed else 'wrote'} {planned.path}")
    report.append(_complete_env_file(directory, node_version, port))
    compose_file = find_compose_file(directory)
    assert compose_file is not None  # Written above when it was missing.
    report.append(_complete_gitignore(directory, override_path(compose_file).name))
    return report


def _complete_env_file(directory: Path, node_version: str, port: int) -> str:
    path = directory / ENV_FILE
    required = {"NODE_VERSION": node_version, "PORT": str(port)}
    if not path.exists():
        write_atomic(path, render("env", {key: value for key, value in required.items()}))
        return f"wrote {ENV_FILE}"
    present = read_env_file(path)
    missing = {key: value for key, value in required.items() if key not in present}
    if not missing:
        return f"kept {ENV_FILE}"
    text = path.read_text(encoding="utf-8")
    if text and not text.endswith("\n"):
        text += "\n"
    text += "".join(f"{key}={value}\n" for key, value in missing.items())
    write_atomic(path, text)
    return f"added {', '.join(missing)} to {ENV_FILE}"


def set_env_values(path: Path, values: dict[str, str]) -> None:
    """Replace the values of existing ``KEY=`` lines in a dotenv file, keeping every other line."""
    lines = path.read_text(encoding="utf-8").splitlines(keepends=True)
    for index, line in enumerate(lines):
        name = line.split("=", 1)[0].strip()
        key = name.removeprefix("export ").strip()
        if "=" in line and key in values:
            prefix = "export " if name.startswith("export ") else ""
            lines[index] = f"{prefix}{key}={values[key]}\n"
    write_atomic(path, "".join(lines))


def _complete_gitignore(directory: Path, override_name: str) -> str:
    path = directory / ".gitignore"
    entries = ["node_modules/", ENV_FILE, override_name]
    text = path.read_text(encoding="utf-8") if path.exists() else ""
    present = {line.strip() for line in text.splitlines()}
    missing = [entry for entry in entries if entry not in present and entry.rstrip("/") not in present]
    if not missing:
        return "kept .gitignore"
    if text and not text.endswith("\n"):
        text += "\n"
    text += "".join(f"{entry}\n" for entry in missing)
    write_atomic(path, text)
    return f"added {', '.join(missing)} to .gitignore"


def create_package_files(project: Project) -> list[str]:
    """Create package.json and package-lock.json inside containers, as the host user.

    npm never runs on the host. The lock install goes through the
    development entrypoint, which leaves the node_modules volume in sync.
    """
    report = []
    package_path = project.directory / "package.json"
    if not package_path.exists():
        _run_npm(project, ["npm", "init", "--yes"], restamp=False)
        _tidy_new_manifest(package_path, project.name)
        report.append("created package.json (npm init --yes)")
        main = json.loads(package_path.read_text(encoding="utf-8")).get("main", "index.js")
        main_path = project.directory / main
        if not main_path.exists():
            write_atomic(main_path, render("index.js", {}))
            report.append(f"wrote a starter {main}")
    manifest = read_manifest(project.directory)
    install = ["npm", "install", *NPM_QUIET]
    declared = {**manifest.get("dependencies", {}), **manifest.get("devDependencies", {})}
    if "nodemon" not in declared:
        # The development service runs the app under nodemon.
        install += ["--save-dev", "nodemon"]
        report.append("added nodemon to devDependencies")
    lock_path = project.directory / "package-lock.json"
    had_lock = lock_path.exists()
    if not had_lock or "nodemon" not in declared:
        _run_npm(project, install, restamp=True)
        report.append("updated package-lock.json" if had_lock else "created package-lock.json")
    else:
        report.append("kept package-lock.json")
    return report


def _run_npm(project: Project, command: list[str], restamp: bool) -> None:
    env = {"NODEOPS_RESTAMP": "1"} if restamp else None
    code = project.run(command, user=project.user.project_writer, env=env, tty=False)
    if code != 0:
        raise NodeopsError(f"{' '.join(command)} failed with exit code {code}: see npm's output above", EXIT_FAILURE)


def _tidy_new_manifest(path: Path, name: str) -> None:
    """Name a new package.json after the project, and drop what npm init adopted.

    npm init names the package after the container's folder (app) and lists
    every package it finds in node_modules, which may be a leftover volume.
    """
    manifest = read_manifest(path.parent)
    manifest["name"] = name
    if manifest.pop("dependencies", None):
        print("nodeops: ignored the packages of an old node_modules volume", file=sys.stderr)
    write_atomic(path, json.dumps(manifest, indent=2) + "\n")
