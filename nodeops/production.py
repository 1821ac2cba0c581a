"""The production image: building it, checking it, and running it as an orchestrator would.

The image is built from the Dockerfile's production target through
``docker compose build``, because compose reaches BuildKit (and so the npm
cache mount) even where the buildx plugin is missing.
"""

from __future__ import annotations

import json
import posixpath
import re
import secrets
import socket
import subprocess
import tempfile
import time
import urllib.error
import urllib.request
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path
from typing import Any, Callable

from .compose import PROJECT_LABEL, Project, docker_binary, run_captured, run_foreground
from .errors import EXIT_DOCKER, EXIT_FAILURE, NodeopsError
from .settings import ENV_FILE, read_env_file

PRODUCTION_TARGET = "production"
PRODUCTION_SERVICE = "production"

#: Seconds docker stop waits after SIGTERM before it sends SIGKILL (docker's default).
STOP_GRACE_SECONDS = 10
#: A stop within this many seconds of the grace period counts as a SIGKILL.
GRACE_MARGIN_SECONDS = 1.0
#: Exit code of a process ended by SIGTERM with no handler (128 + 15).
EXIT_SIGTERM = 143
#: Exit code of a process killed by SIGKILL (128 + 9).
EXIT_SIGKILL = 137

#: Settings nodeops itself passes to the build or reads; the history check skips their values.
NODEOPS_VARIABLES = frozenset(
    {"NODE_VERSION", "PORT", "HEALTHCHECK_PATH", "PROD_BUILD_ARGS", "NODEOPS_SERVICE", "COMPOSE_PROJECT_NAME"}
)
#: Values shorter than this are skipped by the history check, because they match by chance.
MIN_SECRET_LENGTH = 8

#: Files that must never be in an image, whatever .dockerignore lists.
ALWAYS_EXCLUDED = (".env", "**/.env")

# An image reference: optional registry and path, a name, and an optional tag.
_IMAGE_TAG = re.compile(
    r"^(?:[a-zA-Z0-9.-]+(?::[0-9]+)?/)?[a-z0-9]+(?:[._-][a-z0-9]+)*"
    r"(?:/[a-z0-9]+(?:[._-][a-z0-9]+)*)*(?::[\w][\w.-]{0,127})?$"
)
# A start script that only runs node on one file, such as "node server.js".
_PLAIN_NODE_START = re.compile(r"^\s*node\s+([^\s;&|<>$`'\"-][^\s;&|<>$`'\"]*)\s*$")
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


def buildx_available() -> bool:
    completed = subprocess.run(
        [docker_binary(), "buildx", "version"], capture_output=True, text=True
    )
    return completed.returncode == 0


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
        code = run_foreground(build_argv(project, build_file, cache=cache, push=push))
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


# Checks on the built image.


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
                " owned by root without write permission, as the production-files stage does",
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


# Running the image as an orchestrator would.


def free_port() -> int:
    """Return a TCP port that is free on the host's loopback interface."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def run_argv(
    tag: str, name: str, project_name: str, host_port: int, container_port: int, read_only: bool = True
) -> list[str]:
    """Return the ``docker run`` argument list of the production trial container."""
    argv = [
        docker_binary(),
        "run",
        "--detach",
        "--name",
        name,
        "--label",
        f"{PROJECT_LABEL}={project_name}",
        "--init",
        "--publish",
        f"127.0.0.1:{host_port}:{container_port}",
    ]
    if read_only:
        argv += ["--read-only", "--tmpfs", "/tmp"]
    argv.append(tag)
    return argv


def stop_verdict(seconds: float, exit_code: int) -> str:
    """Explain how the app reacted to SIGTERM, and how to fix a slow or abrupt stop."""
    if seconds >= STOP_GRACE_SECONDS - GRACE_MARGIN_SECONDS or exit_code == EXIT_SIGKILL:
        return (
            f"the app does not handle SIGTERM, so docker killed it after the {STOP_GRACE_SECONDS} s"
            " grace period: add process.on('SIGTERM', () => server.close(() => process.exit(0)))"
            ' and keep the exec-form CMD ["node", "."]'
        )
    if exit_code == EXIT_SIGTERM:
        return (
            "the app has no SIGTERM handler: the init ended it at once, but its shutdown code"
            " did not run; add process.on('SIGTERM', () => server.close(() => process.exit(0)))"
        )
    if exit_code == 0:
        return "the app handled SIGTERM and exited cleanly"
    return f"the app exited with code {exit_code} on SIGTERM: check its shutdown code"


def _container_state(container: str) -> dict[str, Any]:
    output = run_captured([docker_binary(), "container", "inspect", "--format", "{{json .State}}", container])
    return json.loads(output)


def _container_logs(container: str) -> str:
    completed = subprocess.run(
        [docker_binary(), "container", "logs", container],
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    return completed.stdout


def wait_healthy(container: str, timeout: float) -> float:
    """Wait until the container's healthcheck passes and return the seconds it took."""
    started = time.monotonic()
    while True:
        state = _container_state(container)
        health = state.get("Health")
        if not state.get("Running"):
            raise NodeopsError(
                f"the app exited with code {state.get('ExitCode')} before it was healthy:"
                f" its output was:\n{_container_logs(container).rstrip()}",
                EXIT_FAILURE,
            )
        if health is None:
            raise NodeopsError(
                "the image declares no HEALTHCHECK: keep the HEALTHCHECK line of the"
                " production stage in the Dockerfile",
                EXIT_FAILURE,
            )
        if health.get("Status") == "healthy":
            return time.monotonic() - started
        if health.get("Status") == "unhealthy" or time.monotonic() - started > timeout:
            attempts = health.get("Log") or []
            last = attempts[-1].get("Output", "").strip() if attempts else "no attempt finished"
            raise NodeopsError(
                f"the app was not healthy within {timeout:g} s (status {health.get('Status')},"
                f" last check: {last or 'no output'}): make HEALTHCHECK_PATH in .env a path"
                " the app answers with a 2xx status",
                EXIT_FAILURE,
            )
        time.sleep(0.5)


def fetch_health(host_port: int, path: str) -> int:
    """Request the health path on the host's loopback port and return the HTTP status."""
    url = f"http://127.0.0.1:{host_port}{path}"
    try:
        with urllib.request.urlopen(url, timeout=5) as response:
            return response.status
    except urllib.error.HTTPError as error:
        return error.code
    except (urllib.error.URLError, OSError) as error:
        raise NodeopsError(f"GET {url} failed: {error}: check that the app listens on PORT", EXIT_FAILURE)


def _image_env(image: dict[str, Any]) -> dict[str, str]:
    pairs = (item.partition("=") for item in image["Config"].get("Env") or [])
    return {key: value for key, _, value in pairs}


def start_container(argv: list[str], host_port: int) -> None:
    """Run ``docker run --detach``, raising the daemon's own reason when the start fails."""
    completed = subprocess.run(argv, capture_output=True, text=True)
    if completed.returncode == 0:
        return
    reasons = [line for line in completed.stderr.splitlines() if line.strip() and "--help" not in line]
    reason = reasons[0].removeprefix("docker: ") if reasons else "no error output"
    if "allocated" in reason or "in use" in reason:
        hint = f"choose another --port than {host_port}"
    else:
        hint = "fix that cause, then run this again"
    raise NodeopsError(f"starting the container failed: {reason}: {hint}", EXIT_FAILURE)


def run_production_image(
    project: Project,
    tag: str,
    host_port: int = 0,
    timeout: float = 60,
    read_only: bool = True,
    report: Callable[[str], None] = print,
) -> None:
    """Run ``tag`` as an orchestrator would, wait until healthy, fetch health, and stop it.

    Each finding goes to ``report`` as it happens. The container is removed
    in every case. Raises a `NodeopsError` when the app never becomes
    healthy or its health path does not return a 2xx status.
    """
    validate_tag(tag)
    image = inspect_image(tag)
    if image is None:
        raise NodeopsError(f"image {tag} not found: build it first with 'nodeops prod-build --tag {tag}'")
    env = _image_env(image)
    container_port = int(env.get("PORT") or project.settings.port)
    health_path = env.get("HEALTHCHECK_PATH") or project.settings.healthcheck_path
    port = host_port or free_port()
    name = f"{project.name}-prod-run-{secrets.token_hex(3)}"

    try:
        # Inside the try: a failed start (a port in use) still leaves a created container.
        start_container(run_argv(tag, name, project.name, port, container_port, read_only), port)
        report(f"started  {name} from {tag} on http://127.0.0.1:{port} (--init{', --read-only' if read_only else ''})")
        seconds = wait_healthy(name, timeout)
        report(f"healthy  after {seconds:.1f} s")
        status = fetch_health(port, health_path)
        report(f"fetched  GET {health_path}: HTTP {status}")

        started = time.monotonic()
        run_captured([docker_binary(), "container", "stop", "--time", str(STOP_GRACE_SECONDS), name])
        stop_seconds = time.monotonic() - started
        exit_code = int(_container_state(name).get("ExitCode", -1))
        report(f"stopped  in {stop_seconds:.2f} s with exit code {exit_code} after SIGTERM")
        report(f"verdict  {stop_verdict(stop_seconds, exit_code)}")
        report("app output:")
        for line in _container_logs(name).rstrip().splitlines():
            report(f"  {line}")
        if not 200 <= status < 300:
            raise NodeopsError(
                f"GET {health_path} returned HTTP {status}: make HEALTHCHECK_PATH in .env a path"
                " the app answers with a 2xx status",
                EXIT_FAILURE,
            )
    finally:
        subprocess.run(
            [docker_binary(), "container", "rm", "--force", name], capture_output=True, text=True
        )
