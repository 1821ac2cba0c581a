"""The production image: built from the Dockerfile's production target."""

from __future__ import annotations

import json
import re
import subprocess
import tempfile
from datetime import datetime, timezone
from pathlib import Path

from .compose import Project, docker_binary, run_captured, run_foreground
from .errors import EXIT_FAILURE, NodeopsError

PRODUCTION_TARGET = "production"
PRODUCTION_SERVICE = "production"

# An image reference: optional registry and path, a name, and an optional tag.
_IMAGE_TAG = re.compile(
    r"^(?:[a-zA-Z0-9.-]+(?::[0-9]+)?/)?[a-z0-9]+(?:[._-][a-z0-9]+)*"
    r"(?:/[a-z0-9]+(?:[._-][a-z0-9]+)*)*(?::[\w][\w.-]{0,127})?$"
)


def validate_tag(tag: str) -> str:
    if not tag:
        raise NodeopsError("missing --tag: name the image, for example --tag chat:latest")
    if not _IMAGE_TAG.match(tag):
        raise NodeopsError(
            f"invalid --tag {tag!r}: use a lower-case image name with an optional tag,"
            " for example chat:latest or registry.example.com/team/chat:1.2.0"
        )
    return tag


def git_revision(directory: Path) -> str:
    """Return the commit of a git checkout, or "unknown" outside one."""
    try:
        completed = subprocess.run(
            ["git", "-C", str(directory), "rev-parse", "HEAD"], capture_output=True, text=True
        )
    except FileNotFoundError:
        return "unknown"
    return completed.stdout.strip() if completed.returncode == 0 else "unknown"


def build_args(project: Project) -> dict[str, str]:
    """Return the production build arguments: nodeops' own and those named in PROD_BUILD_ARGS."""
    manifest_path = project.directory / "package.json"
    manifest = json.loads(manifest_path.read_text(encoding="utf-8")) if manifest_path.is_file() else {}
    args = {
        "NODE_VERSION": project.settings.node_version,
        "PORT": str(project.settings.port),
        "HEALTHCHECK_PATH": project.settings.healthcheck_path,
        "REVISION": git_revision(project.directory),
        "VERSION": str(manifest.get("version", "0.0.0")),
        "CREATED": datetime.now(timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ"),
    }
    for name in project.settings.build_arg_names:
        value = project.settings.value(name)
        if value is None:
            raise NodeopsError(
                f"PROD_BUILD_ARGS names {name}, which is not set: add {name}=... to .env"
                " or remove it from PROD_BUILD_ARGS"
            )
        args[name] = value
    return args


def render_build_file(project: Project, tag: str, args: dict[str, str]) -> str:
    """Render a compose file whose one service builds the production target as ``tag``."""
    build = {
        "context": str(project.directory),
        "dockerfile": str(project.directory / "Dockerfile"),
        "target": PRODUCTION_TARGET,
        "args": args,
    }
    document = {"services": {PRODUCTION_SERVICE: {"image": tag, "build": build}}}
    # JSON is valid YAML, and it quotes every value safely.
    return json.dumps(document, indent=2)


def build_production_image(project: Project, tag: str, cache: bool = True) -> list[str]:
    """Build the production image through compose (BuildKit) and return a summary."""
    validate_tag(tag)
    for required in ("Dockerfile", "package.json", "package-lock.json"):
        if not (project.directory / required).is_file():
            raise NodeopsError(
                f"{required} is missing in {project.directory}: run 'nodeops bootstrap' first"
            )
    args = build_args(project)
    with tempfile.TemporaryDirectory(prefix="nodeops-") as folder:
        build_file = Path(folder) / "production.json"
        build_file.write_text(render_build_file(project, tag, args), encoding="utf-8")
        argv = [
            docker_binary(),
            "compose",
            "--project-directory",
            str(project.directory),
            "--project-name",
            project.name,
            "--file",
            str(build_file),
            "build",
        ]
        if not cache:
            argv.append("--no-cache")
        argv.append(PRODUCTION_SERVICE)
        code = run_foreground(argv)
    if code != 0:
        project.diagnose_compose()
        raise NodeopsError(f"the production build of {tag} failed: see the build output above", EXIT_FAILURE)
    size = int(run_captured([docker_binary(), "image", "inspect", "--format", "{{.Size}}", tag]).strip())
    return [f"built {tag}: {format_size(size)}"]


def format_size(size: int) -> str:
    return f"{size / 1_000_000:.1f} MB"
