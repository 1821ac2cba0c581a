"""The production image: its build inputs, and building it.

The image is built from the Dockerfile's production target through
``docker compose build``, because compose reaches BuildKit (and so the npm
cache mount) even where the buildx plugin is missing.
"""

from __future__ import annotations

import json
import re
import subprocess
import tempfile
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

from .compose import Project, build_environment, buildx_available, docker_binary, run_captured, run_foreground
from .errors import EXIT_DOCKER, EXIT_FAILURE, NodeopsError
from .image_checks import check_image
from .manifest import check_main_exists, check_start_script, read_manifest

PRODUCTION_TARGET = "production"
PRODUCTION_SERVICE = "production"

# An image reference: optional registry and path, a name, and an optional tag.
_IMAGE_TAG = re.compile(
    r"^(?:[a-zA-Z0-9.-]+(?::[0-9]+)?/)?[a-z0-9]+(?:[._-][a-z0-9]+)*"
    r"(?:/[a-z0-9]+(?:[._-][a-z0-9]+)*)*(?::[\w][\w.-]{0,127})?$"
)
# A platform such as linux/amd64 or linux/arm64/v8, or several separated by commas.
_PLATFORM = re.compile(r"^[a-z0-9_]+/[a-z0-9_]+(?:/[a-z0-9_]+)?$")


# Input checks, run before anything is built.


def validate_tag(tag: str) -> str:
    """Reject a missing or malformed image reference, naming the expected form."""
    if not tag:
        raise NodeopsError("missing --tag: name the image, for example --tag chat:latest")
    if not _IMAGE_TAG.match(tag):
        raise NodeopsError(
            f"invalid --tag {tag!r}: use a lower-case image name with an optional tag,"
            " for example chat:latest or registry.example.com/team/chat:1.2.0"
        )
    return tag



def parse_platforms(raw: str) -> list[str]:
    """Split ``--platform`` on commas and reject values that are not os/arch[/variant]."""
    platforms = [item.strip() for item in raw.split(",") if item.strip()]
    for platform in platforms:
        if not _PLATFORM.match(platform):
            raise NodeopsError(
                f"invalid --platform {platform!r}: use os/arch, for example linux/amd64"
                " or linux/amd64,linux/arm64"
            )
    return platforms



def require_buildx(option: str, tag: str) -> None:
    """Raise a one-line error naming ``option`` when no buildx builder is installed."""
    if not buildx_available():
        fallback = f"then 'docker push {tag}'" if option == "--push" else "for this machine's platform"
        raise NodeopsError(
            f"{option} needs docker buildx, which is not installed here ('docker buildx version'"
            f" failed): install the docker-buildx-plugin package, or build without {option}"
            f" ({fallback})",
            EXIT_DOCKER,
        )



# Build arguments and the build itself.


def git_revision(directory: Path) -> str:
    """Return the commit of a git checkout, or "unknown" outside one."""
    try:
        completed = subprocess.run(
            ["git", "-C", str(directory), "rev-parse", "HEAD"], capture_output=True, text=True
        )
    except FileNotFoundError:
        return "unknown"
    return completed.stdout.strip() if completed.returncode == 0 else "unknown"


def build_args(project: Project, manifest: dict[str, Any]) -> dict[str, str]:
    """Return the production build arguments: nodeops' own and those named in PROD_BUILD_ARGS.

    No other variable of .env is passed, so secrets in it never reach a layer.
    """
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


def render_build_file(
    project: Project, tag: str, args: dict[str, str], platforms: list[str] | None = None
) -> str:
    """Render a compose file whose one service builds the production target as ``tag``."""
    build: dict[str, Any] = {
        "context": str(project.directory),
        "dockerfile": str(project.directory / "Dockerfile"),
        "target": PRODUCTION_TARGET,
        "args": args,
    }
    if platforms:
        build["platforms"] = platforms
    document = {"services": {PRODUCTION_SERVICE: {"image": tag, "build": build}}}
    # JSON is valid YAML, and it quotes every value safely.
    return json.dumps(document, indent=2)


def build_argv(project: Project, build_file: Path, cache: bool = True, push: bool = False) -> list[str]:
    """Return the ``docker compose build`` argument list for the rendered build file."""
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
    if push:
        argv.append("--push")
    argv.append(PRODUCTION_SERVICE)
    return argv


@dataclass
class BuildReport:
    """The summary lines of a production build, and the checks the image failed."""

    lines: list[str] = field(default_factory=list)
    failures: list[str] = field(default_factory=list)


def build_production_image(
    project: Project, tag: str, cache: bool = True, push: bool = False, platform: str = ""
) -> BuildReport:
    """Build the production image through compose (BuildKit), check it, and return a summary."""
    validate_tag(tag)
    platforms = parse_platforms(platform)
    # NOTE: with buildx installed, --push and --platform go to compose as `build --push`
    # and `build.platforms`; that path has not been run against a real buildx builder.
    if push:
        require_buildx("--push", tag)
    if platforms:
        require_buildx("--platform", tag)
    for required in ("Dockerfile", "package-lock.json"):
        if not (project.directory / required).is_file():
            raise NodeopsError(
                f"{required} is missing in {project.directory}: run 'nodeops bootstrap' first"
            )
    manifest = read_manifest(project.directory)
    check_start_script(manifest)
    check_main_exists(project.directory, manifest)
    args = build_args(project, manifest)

    with tempfile.TemporaryDirectory(prefix="nodeops-") as folder:
        build_file = Path(folder) / "production.json"
        build_file.write_text(render_build_file(project, tag, args, platforms), encoding="utf-8")
        code = run_foreground(build_argv(project, build_file, cache=cache, push=push), env=build_environment())
    if code != 0:
        project.diagnose_compose()
        raise NodeopsError(f"the production build of {tag} failed: see the build output above", EXIT_FAILURE)

    report = BuildReport()
    image = inspect_image(tag)
    if image is None:
        # A multi-platform build is pushed, not loaded into the local image store.
        report.lines.append(f"image    {tag} (pushed; not loaded here, so not checked)")
        return report
    base = f"node:{project.settings.node_version}-slim"
    base_image = inspect_image(base)
    size = int(image["Size"])
    report.lines.append(f"image    {tag}")
    report.lines.append(f"size     {format_size(size)}")
    if base_image is not None:
        base_size = int(base_image["Size"])
        report.lines.append(f"base     {base} {format_size(base_size)}")
        report.lines.append(f"added    {format_size(size - base_size)} ({size - base_size:,} bytes)")
    for check in check_image(project, tag, image):
        report.lines.append(f"{'checked' if check.passed else 'FAILED '}  {check.summary}")
        if not check.passed:
            report.failures.append(check.failure)
    if report.failures:
        # An image that failed its checks may hold a secret: remove the tag so
        # it cannot be pushed or run by mistake.
        run_captured([docker_binary(), "image", "rm", tag])
        report.lines.append(f"removed  {tag}, because it failed its checks")
    return report


def inspect_image(reference: str) -> dict[str, Any] | None:
    """Return ``docker image inspect`` of ``reference``, or None when the image is not here."""
    completed = subprocess.run(
        [docker_binary(), "image", "inspect", reference], capture_output=True, text=True
    )
    if completed.returncode != 0:
        return None
    return json.loads(completed.stdout)[0]


def format_size(size: int) -> str:
    return f"{size / 1_000_000:.1f} MB"
