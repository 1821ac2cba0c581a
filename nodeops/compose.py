"""The project's compose setup, and the docker commands nodeops runs on it.

Hot paths (``test``, ``shell``, ``up``) build compose argument lists and run
them directly, so they never pay for importing python-on-whales. Commands
whose output nodeops parses go through python-on-whales (see `Project.client`).
"""

from __future__ import annotations

import os
import re
import shutil
import signal
import socket
import subprocess
import sys
from dataclasses import dataclass
from functools import cached_property
from pathlib import Path
from typing import TYPE_CHECKING, Mapping, Sequence

from .errors import EXIT_DOCKER, EXIT_FAILURE, NodeopsError
from .identity import HostUser
from .override import (
    INPUTS_LABEL,
    build_inputs_hash,
    override_path,
    render_override,
    write_override,
)
from .settings import Settings, read_env_file

if TYPE_CHECKING:
    from python_on_whales import DockerClient

#: The file names compose looks for, in its own order of preference.
COMPOSE_FILE_NAMES = ("compose.yaml", "compose.yml", "docker-compose.yaml", "docker-compose.yml")

#: The app folder in the container, the target of the source bind mount.
APP_DIR = "/srv/app"

PROJECT_LABEL = "com.docker.compose.project"
SERVICE_LABEL = "com.docker.compose.service"
VOLUME_LABEL = "com.docker.compose.volume"


def find_compose_file(directory: Path) -> Path | None:
    for name in COMPOSE_FILE_NAMES:
        if (directory / name).is_file():
            return directory / name
    return None


def normalize_project_name(name: str) -> str:
    """Lower-case ``name`` and drop what compose does not allow in a project name."""
    normalized = re.sub(r"[^a-z0-9_-]", "", name.lower())
    return normalized.lstrip("_-")


def resolve_project_name(directory: Path, compose_file: Path) -> str:
    """Return the compose project name, by compose's own rules.

    In order: COMPOSE_PROJECT_NAME from the environment, then from .env, then
    the top-level ``name:`` of the compose file, then the folder name.
    nodeops passes the result with ``--project-name``, so compose and nodeops
    always agree on the labels of the project's containers and volumes.
    """
    env_file = directory / ".env"
    file_values = read_env_file(env_file) if env_file.is_file() else {}
    for source in (os.environ, file_values):
        explicit = source.get("COMPOSE_PROJECT_NAME", "").strip()
        if explicit:
            return _checked_project_name(explicit, "COMPOSE_PROJECT_NAME")
    match = re.search(r"^name:\s*['\"]?([^'\"\s#]+)", compose_file.read_text(encoding="utf-8"), re.M)
    if match and "$" not in match.group(1):
        return _checked_project_name(match.group(1), f"name in {compose_file.name}")
    return _checked_project_name(directory.resolve().name, "the project folder name")


def _checked_project_name(raw: str, source: str) -> str:
    name = normalize_project_name(raw)
    if not name:
        raise NodeopsError(
            f"invalid compose project name {raw!r} from {source}: set COMPOSE_PROJECT_NAME"
            " in .env to lower-case letters, digits, '-' or '_'"
        )
    return name


def docker_binary() -> str:
    binary = shutil.which("docker")
    if binary is None:
        raise NodeopsError(
            "docker is not installed or not on PATH: install Docker Engine (Linux)"
            " or Docker Desktop (macOS), then run this again",
            EXIT_DOCKER,
        )
    return binary


def explain_docker_failure(stderr: str) -> NodeopsError | None:
    """Map the stderr of a failed docker command to an error with the fix, if known."""
    text = stderr.lower()
    if "permission denied" in text and "docker" in text and "sock" in text:
        return NodeopsError(
            "permission denied on the Docker socket: add your user to the docker group"
            " (sudo usermod -aG docker $USER) and log in again",
            EXIT_DOCKER,
        )
    if "cannot connect to the docker daemon" in text or "is the docker daemon running" in text:
        host = os.environ.get("DOCKER_HOST")
        if host:
            return NodeopsError(
                f"cannot reach the Docker daemon at DOCKER_HOST={host}: start it there,"
                " or unset DOCKER_HOST to use the local daemon",
                EXIT_DOCKER,
            )
        return NodeopsError(
            "the Docker daemon is not running: start it (sudo systemctl start docker,"
            " or open Docker Desktop), then run this again",
            EXIT_DOCKER,
        )
    if "'compose' is not a docker command" in text or "unknown command" in text and "compose" in text:
        return NodeopsError(compose_missing_message(), EXIT_DOCKER)
    return None


def from_whales_error(error: Exception) -> NodeopsError | None:
    """Turn a python-on-whales failure into a one-line `NodeopsError`; None for other errors.

    python-on-whales is imported only by some tasks, so this looks it up in
    ``sys.modules`` instead of importing it.
    """
    exceptions = sys.modules.get("python_on_whales.exceptions")
    client_config = sys.modules.get("python_on_whales.client_config")
    if client_config is not None and isinstance(error, client_config.ClientNotFoundError):
        return NodeopsError(
            "docker is not installed or not on PATH: install Docker Engine (Linux)"
            " or Docker Desktop (macOS), then run this again",
            EXIT_DOCKER,
        )
    if exceptions is None or not isinstance(error, exceptions.DockerException):
        return None
    stderr = error.stderr or ""
    known = explain_docker_failure(stderr)
    if known is not None:
        return known
    # Options with values follow "compose", so only the subcommand group is named.
    command = " ".join(["docker", *map(str, error.docker_command[1:2])])
    lines = stderr.strip().splitlines()
    last_line = lines[-1] if lines else f"exit code {error.return_code}"
    return NodeopsError(f"{command} failed: {last_line}", EXIT_FAILURE)


def compose_missing_message() -> str:
    return (
        "the docker compose v2 plugin is missing: install it (the docker-compose-plugin"
        " package, or Docker Desktop); the old docker-compose v1 is not supported"
    )


def buildx_available() -> bool:
    completed = subprocess.run([docker_binary(), "buildx", "version"], capture_output=True, text=True)
    return completed.returncode == 0


def build_environment() -> dict[str, str]:
    """Return the environment for a compose build.

    Without the buildx plugin, compose 2.40 warns on every build that it is
    set to build with Bake. Its own builder works, so nodeops selects it
    unless the user set COMPOSE_BAKE.
    """
    env = dict(os.environ)
    if "COMPOSE_BAKE" not in env and not buildx_available():
        env["COMPOSE_BAKE"] = "false"
    return env


def run_captured(argv: Sequence[str], env: Mapping[str, str] | None = None) -> str:
    """Run a docker command, return its stdout, and raise a `NodeopsError` if it fails."""
    completed = subprocess.run(
        list(argv), capture_output=True, text=True, env=None if env is None else dict(env)
    )
    if completed.returncode != 0:
        known = explain_docker_failure(completed.stderr)
        if known is not None:
            raise known
        command = " ".join([Path(argv[0]).name, *argv[1:3]])
        lines = completed.stderr.strip().splitlines()
        last_line = lines[-1] if lines else "no error output"
        raise NodeopsError(f"{command} failed: {last_line}", EXIT_FAILURE)
    return completed.stdout


def run_foreground(argv: Sequence[str], env: Mapping[str, str] | None = None) -> int:
    """Run a command attached to the terminal and return its exit code.

    Ctrl-C reaches the child through the terminal's process group, so nodeops
    only waits for it to finish. A SIGTERM sent to nodeops is passed on, so a
    CI runner that stops nodeops also stops compose.
    """
    process = subprocess.Popen(list(argv), env=None if env is None else dict(env))
    previous_int = signal.signal(signal.SIGINT, signal.SIG_IGN)
    previous_term = signal.signal(signal.SIGTERM, lambda *_: process.send_signal(signal.SIGTERM))
    try:
        return process.wait()
    finally:
        signal.signal(signal.SIGINT, previous_int)
        signal.signal(signal.SIGTERM, previous_term)


@dataclass
class Project:
    """A Node project in a folder, with its compose files and settings."""

    directory: Path
    settings: Settings
    user: HostUser
    #: Set when .env is invalid and nodeops goes on with default settings:
    #: compose then reads no .env either, so it can still stop the project.
    env_file_ignored: bool = False

    @cached_property
    def compose_file(self) -> Path:
        found = find_compose_file(self.directory)
        if found is None:
            raise NodeopsError(
                f"no compose file in {self.directory}: run 'nodeops bootstrap' there,"
                " or cd to the project folder"
            )
        return found

    @property
    def override_file(self) -> Path:
        return override_path(self.compose_file)

    @cached_property
    def name(self) -> str:
        return resolve_project_name(self.directory, self.compose_file)

    @property
    def service(self) -> str:
        return self.settings.service

    @cached_property
    def inputs_hash(self) -> str:
        return build_inputs_hash(
            self.directory, self.compose_file, self.user, self.settings.node_version
        )

    def compose_argv(self, *args: str) -> list[str]:
        """Return a ``docker compose`` argument list pinned to this project's files."""
        return [
            docker_binary(),
            "compose",
            "--project-directory",
            str(self.directory),
            "--project-name",
            self.name,
            "--file",
            str(self.compose_file),
            "--file",
            str(self.override_file),
            *(["--env-file", os.devnull] if self.env_file_ignored else []),
            *args,
        ]

    @cached_property
    def client(self) -> DockerClient:
        """Return a python-on-whales client for this project, imported on first use."""
        from python_on_whales import DockerClient

        return DockerClient(
            compose_files=[self.compose_file, self.override_file],
            compose_project_name=self.name,
            compose_project_directory=self.directory,
            compose_env_files=[os.devnull] if self.env_file_ignored else [],
        )

    # Preparing the project before any build or run.

    def write_override(self) -> bool:
        content = render_override(self.service, self.user, self.inputs_hash)
        return write_override(self.override_file, content)

    def make_host_mount_point(self) -> None:
        """Create ``node_modules`` on the host, so Docker does not create it owned by root."""
        (self.directory / "node_modules").mkdir(exist_ok=True)

    def image_is_current(self) -> bool:
        """Tell whether the development image exists and was built from today's inputs.

        This is the first docker call of most tasks, so it also reports a
        missing or stopped Docker engine.
        """
        output = run_captured(
            [
                docker_binary(),
                "image",
                "ls",
                "--quiet",
                "--filter",
                f"label={PROJECT_LABEL}={self.name}",
                "--filter",
                f"label={SERVICE_LABEL}={self.service}",
                "--filter",
                f"label={INPUTS_LABEL}={self.inputs_hash}",
            ]
        )
        return bool(output.strip())

    def build(self, cache: bool = True) -> None:
        argv = self.compose_argv("build")
        if not cache:
            argv.append("--no-cache")
        argv.append(self.service)
        self.check_exit(run_foreground(argv, env=build_environment()), "docker compose build")

    def prepare(self) -> None:
        """Write the override and the host mount point, and build the image if it is out of date."""
        self.write_override()
        self.make_host_mount_point()
        if not self.image_is_current():
            self.check_development_stage()
            print(f"nodeops: building the development image of {self.name}", file=sys.stderr)
            self.build()

    def check_development_stage(self) -> None:
        """Fail early, with the fix, when the Dockerfile has no development stage to build."""
        dockerfile = self.directory / "Dockerfile"
        text = dockerfile.read_text(encoding="utf-8") if dockerfile.is_file() else ""
        if not re.search(r"^\s*FROM\s+\S+\s+AS\s+development\s*$", text, re.IGNORECASE | re.MULTILINE):
            raise NodeopsError(
                f"{dockerfile} has no stage named development: add one, or run"
                " 'nodeops bootstrap --force' to replace it with nodeops' Dockerfile"
            )

    # Running containers.

    def run_argv(
        self,
        command: Sequence[str],
        user: str | None = None,
        env: Mapping[str, str] | None = None,
        tty: bool | None = None,
        workdir: str | None = None,
    ) -> list[str]:
        argv = self.compose_argv("run", "--rm")
        if user is not None:
            argv += ["--user", user]
        if workdir is not None:
            argv += ["--workdir", workdir]
        for key, value in (env or {}).items():
            argv += ["--env", f"{key}={value}"]
        if tty is False:
            argv.append("-T")
        argv.append(self.service)
        argv += list(command)
        return argv

    def run(
        self,
        command: Sequence[str],
        user: str | None = None,
        env: Mapping[str, str] | None = None,
        tty: bool | None = None,
        workdir: str | None = None,
    ) -> int:
        """Run ``command`` in a one-off container and return its exit code."""
        argv = self.run_argv(command, user=user, env=env, tty=tty, workdir=workdir)
        code = run_foreground(argv)
        if code != 0:
            self.diagnose_compose()
        return code

    def check_exit(self, code: int, what: str) -> None:
        if code != 0:
            self.diagnose_compose()
            raise NodeopsError(f"{what} failed with exit code {code}: see its output above", code)

    def diagnose_compose(self) -> None:
        """Raise the known cause when compose itself, not the container, failed."""
        completed = subprocess.run(
            [docker_binary(), "compose", "version"], capture_output=True, text=True
        )
        if completed.returncode != 0:
            raise NodeopsError(compose_missing_message(), EXIT_DOCKER)

    def check_port_free(self) -> None:
        """Fail with the fix when another program listens on the app's host port.

        The app's own running container may be the listener, and then up has
        nothing to publish anew, so that case passes.
        """
        port = self.settings.port
        with socket.socket() as probe:
            probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            try:
                probe.bind(("0.0.0.0", port))
                return
            except OSError:
                pass
        ours = run_captured(
            [
                docker_binary(),
                "container",
                "ls",
                "--quiet",
                "--filter",
                f"label={PROJECT_LABEL}={self.name}",
                "--filter",
                f"publish={port}",
            ]
        )
        if not ours.strip():
            raise NodeopsError(
                f"port {port} is already in use on this host: stop the program using it,"
                " or set PORT in .env to a free port"
            )

    def up(self, detach: bool) -> int:
        argv = self.compose_argv("up", "--remove-orphans")
        if detach:
            argv.append("--detach")
        argv.append(self.service)
        return run_foreground(argv)

    def down(self, volumes: bool) -> int:
        argv = self.compose_argv("down", "--remove-orphans")
        if volumes:
            argv.append("--volumes")
        return run_foreground(argv)

