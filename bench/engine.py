"""Running and timing commands, and removing what the benchmark created in Docker."""

from __future__ import annotations

import os
import platform
import subprocess
import sys
import time
from pathlib import Path
from typing import Mapping, Sequence

PROJECT_LABEL = "com.docker.compose.project"


class BenchError(Exception):
    """A command the benchmark depends on failed; the message names it and its output."""


def run(
    argv: Sequence[str],
    cwd: Path | None = None,
    env: Mapping[str, str] | None = None,
    check: bool = True,
    timeout: float = 900,
) -> subprocess.CompletedProcess[str]:
    """Run ``argv`` with its output captured; raise `BenchError` if it fails and ``check`` is set."""
    completed = subprocess.run(
        list(argv),
        cwd=cwd,
        env=None if env is None else dict(env),
        stdin=subprocess.DEVNULL,
        capture_output=True,
        text=True,
        timeout=timeout,
    )
    if check and completed.returncode != 0:
        tail = "\n".join((completed.stderr or completed.stdout).strip().splitlines()[-15:])
        raise BenchError(f"{' '.join(argv)} failed with exit code {completed.returncode}:\n{tail}")
    return completed


def timed(argv: Sequence[str], cwd: Path | None = None, env: Mapping[str, str] | None = None) -> float:
    """Run ``argv`` and return its wall-clock time in seconds; raise `BenchError` if it fails."""
    start = time.perf_counter()
    run(argv, cwd=cwd, env=env)
    return time.perf_counter() - start


def output(argv: Sequence[str]) -> str:
    """Return the stripped stdout of ``argv``, or "unknown" when it fails."""
    try:
        return run(argv, check=False).stdout.strip() or "unknown"
    except (OSError, subprocess.TimeoutExpired):
        return "unknown"


def image_size_mb(image: str) -> float:
    """Return the size of a local image in MB (10^6 bytes), as docker image inspect reports it."""
    size = run(["docker", "image", "inspect", "--format", "{{.Size}}", image]).stdout.strip()
    return int(size) / 1_000_000


def machine_info() -> dict[str, str]:
    """Describe the machine: CPU cores, memory and kernel."""
    memory = "unknown"
    meminfo = Path("/proc/meminfo")
    if meminfo.is_file():
        for line in meminfo.read_text().splitlines():
            if line.startswith("MemTotal:"):
                memory = f"{int(line.split()[1]) / 1024 / 1024:.1f} GiB"
    return {
        "cores": str(os.cpu_count()),
        "memory": memory,
        "system": f"{platform.system()} {platform.release()} {platform.machine()}",
    }


def versions(nodeops: str, python: str, node_image: str) -> dict[str, str]:
    """Collect the versions of the tools under test."""
    return {
        "python": output([python, "-c", "import platform; print(platform.python_version())"]),
        "docker engine": output(["docker", "version", "--format", "{{.Server.Version}}"]),
        "docker cli": output(["docker", "version", "--format", "{{.Client.Version}}"]),
        "compose": output(["docker", "compose", "version", "--short"]),
        "node": output(["docker", "run", "--rm", node_image, "node", "--version"]),
        "nodeops": output([nodeops, "--version"]).removeprefix("nodeops").strip(),
    }


def script_interpreter(script: str) -> str:
    """Return the interpreter named on the ``#!`` line of ``script``, or this Python."""
    try:
        first = Path(script).read_text(encoding="utf-8", errors="replace").splitlines()[0]
    except (OSError, IndexError):
        return sys.executable
    if first.startswith("#!") and "python" in first:
        return first[2:].strip().split()[0]
    return sys.executable


def remove_project(name: str, images: Sequence[str] = ()) -> list[str]:
    """Remove every container, volume, network and image labelled with compose project ``name``.

    Also removes the images in ``images`` by tag. Returns what could not be removed.
    """
    label = f"label={PROJECT_LABEL}={name}"
    problems = []

    def ids(*argv: str) -> list[str]:
        return run(["docker", *argv, "--quiet", "--filter", label], check=False).stdout.split()

    steps = [
        (["container", "rm", "--force", "--volumes"], ids("container", "ls", "--all")),
        (["volume", "rm", "--force"], ids("volume", "ls")),
        (["network", "rm"], ids("network", "ls")),
        (["image", "rm", "--force"], sorted(set(ids("image", "ls")) | set(images))),
    ]
    for command, targets in steps:
        if not targets:
            continue
        completed = run(["docker", *command, *targets], check=False)
        if completed.returncode != 0 and "No such image" not in completed.stderr:
            problems.append(f"docker {' '.join(command)} failed: {completed.stderr.strip()}")
    return problems
