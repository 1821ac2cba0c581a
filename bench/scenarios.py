"""The seven measurements, each against its reference, driving the nodeops CLI."""

from __future__ import annotations

import json
import re
import tempfile
import time
import uuid
from dataclasses import dataclass
from pathlib import Path
from typing import Callable

from .apps import TOGGLED_PACKAGE, App, bump_lock_version, restore_lock_state, save_lock_state
from .engine import PROJECT_LABEL, BenchError, image_size_mb, run, timed
from .report import Comparison, Measurement, parse_importtime

BENCH_DIR = Path(__file__).resolve().parent
CLASSIC_DOCKERFILE = BENCH_DIR / "Dockerfile.classic"

STARTUP_TARGET_S = 0.150
OVERHEAD_TARGET_RATIO = 1.10

# A BuildKit cache mount flag of a RUN step, whatever its options.
CACHE_MOUNT = re.compile(r"--mount=type=cache\S*\s*")


@dataclass
class Setup:
    """The inputs of every measurement: the commands, the repeat counts and the node version."""

    nodeops: str
    python: str
    repeat: int
    startup_repeat: int
    node_version: str

    @property
    def slim_image(self) -> str:
        return f"node:{self.node_version}-slim"


def sample(count: int, measure: Callable[[], float]) -> list[float]:
    return [measure() for _ in range(count)]


def alternate(count: int, first: Callable[[], float], second: Callable[[], float]) -> tuple[list[float], list[float]]:
    """Time two commands in turns, so a slow phase of the machine hits both alike."""
    first_samples, second_samples = [], []
    for _ in range(count):
        first_samples.append(first())
        second_samples.append(second())
    return first_samples, second_samples


def measure_startup(setup: Setup, cwd: Path) -> tuple[list[Comparison], list[str]]:
    """Time ``nodeops --list`` and ``--help`` against ``python -c pass`` and ``docker compose version``."""
    count = setup.startup_repeat
    python_pass = Measurement("python -c pass", sample(count, lambda: timed([setup.python, "-c", "pass"], cwd)))
    compose_version = Measurement(
        "docker compose version", sample(count, lambda: timed(["docker", "compose", "version"], cwd))
    )
    # The floor for any Invoke program: the interpreter plus the invoke import.
    import_invoke = Measurement(
        "python -c 'import invoke'",
        sample(count, lambda: timed([setup.python, "-c", "import invoke"], cwd)),
    )
    rows = []
    for flag in ("--list", "--help"):
        subject = Measurement(f"nodeops {flag}", sample(count, lambda: timed([setup.nodeops, flag], cwd)))
        for reference in (python_pass, compose_version, import_invoke):
            rows.append(
                Comparison(
                    "1. Start-up",
                    "-",
                    subject,
                    reference,
                    target=f"< {STARTUP_TARGET_S * 1000:.0f} ms",
                    met=subject.median < STARTUP_TARGET_S,
                )
            )

    # Where the start-up time goes: the slowest imports on the --list path.
    profile = run([setup.python, "-X", "importtime", "-m", "nodeops", "--list"], cwd=cwd).stderr
    notes = [
        "slowest imports of `nodeops --list` (python -X importtime, cumulative): "
        + ", ".join(f"{name} {seconds * 1000:.0f} ms" for name, _, seconds in parse_importtime(profile))
    ]
    # The task list comes first on stdout; the check prints its line last.
    loaded = run([setup.python, "-c", IMPORTED_CHECK], cwd=cwd).stdout.strip().splitlines()[-1]
    notes.append(f"modules imported by `nodeops --list`, checked with sys.modules: {loaded}")
    return rows, notes


# Runs the --list path in-process and reports which heavy libraries it imported.
IMPORTED_CHECK = """\
import sys
from nodeops.program import program
try:
    program.run(["nodeops", "--list"], exit=False)
finally:
    heavy = ("python_on_whales", "pydantic", "dotenv", "unittest.mock", "asyncio")
    print(", ".join(f"{name} {'yes' if name in sys.modules else 'no'}" for name in heavy))
"""


def measure_overhead(setup: Setup, app: App) -> list[Comparison]:
    """Time ``nodeops test`` and ``shell --command true`` against the raw compose runs."""
    cwd = app.directory
    pairs = [
        ("nodeops test", [setup.nodeops, "test"], "docker compose run --rm app npm test",
         ["docker", "compose", "run", "--rm", "app", "npm", "test"]),
        ("nodeops shell --command true", [setup.nodeops, "shell", "--command", "true"],
         "docker compose run --rm app bash -c true",
         ["docker", "compose", "run", "--rm", "app", "bash", "-c", "true"]),
    ]
    rows = []
    for label, argv, reference_label, reference_argv in pairs:
        # One untimed run of each, so neither pays for a first install or build.
        timed(argv, cwd)
        timed(reference_argv, cwd)
        subject_samples, reference_samples = alternate(
            setup.repeat, lambda: timed(argv, cwd), lambda: timed(reference_argv, cwd)
        )
        row = Comparison(
            "2. Task overhead",
            app.kind,
            Measurement(label, subject_samples),
            Measurement(reference_label, reference_samples),
            target=f"ratio <= {OVERHEAD_TARGET_RATIO:.2f}",
        )
        row.met = row.ratio is not None and row.ratio <= OVERHEAD_TARGET_RATIO
        rows.append(row)
    return rows


def prod_build(setup: Setup, app: App, tag: str) -> float:
    return timed([setup.nodeops, "prod-build", "--tag", tag], app.directory)


def measure_source_rebuild(setup: Setup, app: App) -> list[Comparison]:
    """Time the first production build, then rebuilds after a change to index.js only."""
    tag = app.tag("prod")
    first = Measurement("first nodeops prod-build", [prod_build(setup, app, tag)])
    index = app.directory / "index.js"
    original = index.read_text(encoding="utf-8")

    def rebuild() -> float:
        index.write_text(original + f"// source change {uuid.uuid4().hex}\n", encoding="utf-8")
        return prod_build(setup, app, tag)

    try:
        samples = sample(setup.repeat, rebuild)
    finally:
        index.write_text(original, encoding="utf-8")
    return [
        Comparison(
            "3. Production rebuild after a source-only change",
            app.kind,
            Measurement("rebuild after editing index.js", samples),
            first,
            note="the npm layer should stay cached",
        )
    ]


def measure_lock_rebuild(setup: Setup, app: App) -> tuple[list[Comparison], list[str]]:
    """Time production rebuilds after a lock file change, with and without the npm cache mount.

    The run without the mount uses a copy of nodeops' Dockerfile with the
    mount removed from the dependency step. Both runs change the lock file
    (its package version), which rebuilds that step; ``--no-cache`` is not
    used because it would also empty the cache mount.
    """
    tag = app.tag("prod")
    dockerfile = app.directory / "Dockerfile"
    original_dockerfile = dockerfile.read_text(encoding="utf-8")
    if not CACHE_MOUNT.search(original_dockerfile):
        return [], [f"{app.kind} app: no npm cache mount found in nodeops' Dockerfile, lock rebuild not measured"]
    state = save_lock_state(app)

    def rebuild() -> float:
        bump_lock_version(app, f"1.0.{time.time_ns()}")
        return prod_build(setup, app, tag)

    try:
        with_mount = sample(setup.repeat, rebuild)
        dockerfile.write_text(CACHE_MOUNT.sub("", original_dockerfile), encoding="utf-8")
        without_mount = sample(setup.repeat, rebuild)
    finally:
        dockerfile.write_text(original_dockerfile, encoding="utf-8")
        restore_lock_state(app, state)
    return [
        Comparison(
            "4. Production rebuild after a lock file change",
            app.kind,
            Measurement("with the npm cache mount (nodeops)", with_mount),
            Measurement("without the cache mount", without_mount),
        )
    ], []


def toggle_package(app: App, states: list[dict[str, str]], index: int) -> None:
    restore_lock_state(app, states[index % len(states)])


def measure_stale_volume(setup: Setup, app: App) -> list[Comparison]:
    """Time a lock file change to a passing test: ``nodeops test`` against the manual cure.

    The lock changes by adding or removing one package, and the app's test
    requires every dependency, so a stale node_modules volume fails it. The
    manual cure removes the volume (found by its compose labels), rebuilds
    the development image and runs the test with compose.
    """
    cwd = app.directory
    without = save_lock_state(app)
    run([setup.nodeops, "install", TOGGLED_PACKAGE], cwd=cwd)
    # The project now has the package, so the first change removes it.
    states = [without, save_lock_state(app)]
    step = 0

    def next_state() -> None:
        nonlocal step
        toggle_package(app, states, step)
        step += 1

    def with_nodeops() -> float:
        next_state()
        return timed([setup.nodeops, "test"], cwd)

    def manual_cure() -> float:
        next_state()
        start = time.perf_counter()
        volumes = run(
            [
                "docker", "volume", "ls", "--quiet",
                "--filter", f"label={PROJECT_LABEL}={app.name}",
                "--filter", "label=com.docker.compose.volume=node_modules",
            ]
        ).stdout.split()
        if volumes:
            run(["docker", "volume", "rm", *volumes])
        run(["docker", "compose", "build", "app"], cwd=cwd)
        run(["docker", "compose", "run", "--rm", "app", "npm", "test"], cwd=cwd)
        return time.perf_counter() - start

    try:
        subject, reference = alternate(setup.repeat, with_nodeops, manual_cure)
    finally:
        restore_lock_state(app, without)
    return [
        Comparison(
            "5. Stale volume: lock file change to a passing test",
            app.kind,
            Measurement("nodeops test (entrypoint runs npm ci)", subject),
            Measurement("remove volume, compose build, compose run", reference),
        )
    ]


def measure_image_size(setup: Setup, app: App) -> list[Comparison]:
    """Compare nodeops' production image with the classic one that copies dev node_modules."""
    slim = image_size_mb(setup.slim_image)
    nodeops_tag = app.tag("prod")
    classic_tag = app.tag("classic")
    with tempfile.TemporaryDirectory(prefix="nodeops-bench-") as folder:
        build_file = Path(folder) / "classic.json"
        document = {
            "services": {
                "classic": {
                    "image": classic_tag,
                    "build": {
                        "context": str(app.directory),
                        "dockerfile": str(CLASSIC_DOCKERFILE),
                        "args": {"NODE_VERSION": setup.node_version},
                        "labels": {PROJECT_LABEL: app.name},
                    },
                }
            }
        }
        build_file.write_text(json.dumps(document), encoding="utf-8")
        run(
            [
                "docker", "compose",
                "--project-directory", str(app.directory),
                "--project-name", app.name,
                "--file", str(build_file),
                "build", "classic",
            ]
        )
    nodeops_size = image_size_mb(nodeops_tag)
    classic_size = image_size_mb(classic_tag)
    section = "6. Production image size"
    return [
        Comparison(section, app.kind, Measurement("nodeops image", [nodeops_size], "MB"),
                   Measurement("classic image", [classic_size], "MB")),
        Comparison(section, app.kind, Measurement("nodeops: added over slim", [nodeops_size - slim], "MB"),
                   Measurement("classic: added over slim", [classic_size - slim], "MB"),
                   note=f"{setup.slim_image} is {slim:.1f} MB"),
    ]


def measure_stop(setup: Setup, app: App) -> list[Comparison]:
    """Time ``docker stop`` of the production container with and without the SIGTERM handler."""
    tag = app.tag("prod")

    def stop_time(command: list[str]) -> float:
        name = f"{app.name}-stop-{uuid.uuid4().hex[:6]}"
        run(["docker", "run", "--detach", "--name", name, "--label", f"{PROJECT_LABEL}={app.name}", tag, *command])
        try:
            wait_for_log(name, "listening")
            return timed(["docker", "stop", name])
        finally:
            run(["docker", "rm", "--force", name], check=False)

    with_handler, without_handler = alternate(
        setup.repeat, lambda: stop_time([]), lambda: stop_time(["node", "index-no-handler.js"])
    )
    return [
        Comparison(
            "7. Production container stop time (docker stop, 10 s grace period)",
            app.kind,
            Measurement("with the SIGTERM handler (node .)", with_handler),
            Measurement("without a handler (node index-no-handler.js)", without_handler),
        )
    ]


def wait_for_log(container: str, text: str, timeout: float = 30) -> None:
    """Wait until the container's log contains ``text``; raise `BenchError` after ``timeout`` seconds."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        logs = run(["docker", "logs", container], check=False)
        if text in logs.stdout + logs.stderr:
            return
        time.sleep(0.1)
    raise BenchError(f"container {container} did not log {text!r} within {timeout:.0f} s")
