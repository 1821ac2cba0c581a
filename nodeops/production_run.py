"""Running the production image as an orchestrator would: health, then a timed stop."""

from __future__ import annotations

import json
import secrets
import socket
import subprocess
import time
import urllib.error
import urllib.request
from typing import Any, Callable

from .compose import PROJECT_LABEL, Project, docker_binary, run_captured
from .errors import EXIT_FAILURE, NodeopsError
from .production import inspect_image, validate_tag

#: Seconds docker stop waits after SIGTERM before it sends SIGKILL (docker's default).
STOP_GRACE_SECONDS = 10
#: A stop within this many seconds of the grace period counts as a SIGKILL.
GRACE_MARGIN_SECONDS = 1.0
#: Exit code of a process ended by SIGTERM with no handler (128 + 15).
EXIT_SIGTERM = 143
#: Exit code of a process killed by SIGKILL (128 + 9).
EXIT_SIGKILL = 137


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
