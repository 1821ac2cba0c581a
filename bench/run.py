"""Run the nodeops benchmark and write bench/results/latest.md and latest.json.

Usage: python bench/run.py [--repeat N] [--quick] [--nodeops PATH]
"""

from __future__ import annotations

import argparse
import json
import shutil
import signal
import sys
import tempfile
import time
import traceback
from datetime import datetime, timezone
from pathlib import Path
from types import FrameType

# Run as a script (python bench/run.py): make the bench package importable.
sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench import scenarios  # noqa: E402 (needs the path set above)
from bench.apps import App, bootstrap, create_app  # noqa: E402
from bench.engine import BenchError, machine_info, remove_project, script_interpreter, versions  # noqa: E402
from bench.report import Results, render_markdown, results_to_json  # noqa: E402

RESULTS_DIR = Path(__file__).resolve().parent / "results"
DEFAULT_NODE_VERSION = "24.22.3"


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description="Measure nodeops against raw docker compose, side by side.")
    parser.add_argument("--repeat", type=int, default=3, help="Runs of each docker measurement (default 3).")
    parser.add_argument(
        "--startup-repeat", type=int, default=15, help="Runs of each start-up measurement (default 15)."
    )
    parser.add_argument(
        "--quick", action="store_true", help="One run of each docker measurement, the small app only."
    )
    parser.add_argument("--nodeops", default="", help="The nodeops command to measure (default: the one on PATH).")
    parser.add_argument(
        "--node-version", default=DEFAULT_NODE_VERSION, help=f"The node image version (default {DEFAULT_NODE_VERSION})."
    )
    parser.add_argument("--output", type=Path, default=RESULTS_DIR, help="Folder for latest.md and latest.json.")
    args = parser.parse_args(argv)
    if args.repeat < 1 or args.startup_repeat < 1:
        parser.error("--repeat and --startup-repeat must be at least 1")
    if args.quick:
        args.repeat = 1
        args.startup_repeat = min(args.startup_repeat, 5)
    return args


def find_nodeops(requested: str) -> str:
    """Return the nodeops command: the requested one, one beside this Python, or one on PATH."""
    if requested:
        return requested
    beside = Path(sys.executable).parent / "nodeops"
    if beside.exists():
        return str(beside)
    found = shutil.which("nodeops")
    if found is None:
        raise BenchError("nodeops is not installed: run pip install -e . or pass --nodeops PATH")
    return found


def raise_interrupt(signum: int, frame: FrameType | None) -> None:
    """Turn SIGTERM into KeyboardInterrupt, so cleanup runs as it does for Ctrl-C."""
    raise KeyboardInterrupt


def log(message: str) -> None:
    print(f"bench: {message}", file=sys.stderr, flush=True)


def run_benchmark(args: argparse.Namespace, root: Path, apps: list[App]) -> Results:
    """Bootstrap the apps and run every measurement, keeping the results of those that fail."""
    nodeops = find_nodeops(args.nodeops)
    python = script_interpreter(nodeops)
    setup = scenarios.Setup(nodeops, python, args.repeat, args.startup_repeat, args.node_version)
    results = Results(
        date=datetime.now(timezone.utc).strftime("%Y-%m-%d %H:%M UTC"),
        machine=machine_info(),
        versions=versions(nodeops, python, f"node:{args.node_version}"),
        options={"repeat": args.repeat, "startup_repeat": args.startup_repeat, "quick": args.quick},
    )

    def attempt(title: str, measure, *measure_args) -> None:
        log(title)
        start = time.perf_counter()
        try:
            outcome = measure(*measure_args)
        except BenchError as error:
            results.errors.append(f"{title}: {error}")
            log(f"{title} failed: {error}")
            return
        rows, notes = outcome if isinstance(outcome, tuple) else (outcome, [])
        results.rows += rows
        results.notes += notes
        log(f"{title}: done in {time.perf_counter() - start:.0f} s")

    attempt("start-up", scenarios.measure_startup, setup, root)
    kinds = ["small"] if args.quick else ["small", "large"]
    for kind in kinds:
        app = create_app(root, kind)
        apps.append(app)
        log(f"bootstrapping the {kind} app in {app.directory}")
        start = time.perf_counter()
        bootstrap(app, nodeops, args.node_version)
        results.notes.append(f"{kind} app: nodeops bootstrap took {time.perf_counter() - start:.1f} s"
                             f" ({count_packages(app)} packages in package-lock.json)")
        attempt(f"{kind}: task overhead", scenarios.measure_overhead, setup, app)
        attempt(f"{kind}: source rebuild", scenarios.measure_source_rebuild, setup, app)
        attempt(f"{kind}: image size", scenarios.measure_image_size, setup, app)
        attempt(f"{kind}: lock rebuild", scenarios.measure_lock_rebuild, setup, app)
        if kind == "small":
            attempt(f"{kind}: stop time", scenarios.measure_stop, setup, app)
        if kind == kinds[-1]:
            attempt(f"{kind}: stale volume", scenarios.measure_stale_volume, setup, app)
    return results


def count_packages(app: App) -> int:
    lock = json.loads((app.directory / "package-lock.json").read_text(encoding="utf-8"))
    return sum(1 for key in lock.get("packages", {}) if key)


def write_results(results: Results, folder: Path) -> None:
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "latest.md").write_text(render_markdown(results), encoding="utf-8")
    (folder / "latest.json").write_text(json.dumps(results_to_json(results), indent=2) + "\n", encoding="utf-8")


def clean_up(apps: list[App], root: Path) -> None:
    """Remove the apps' containers, volumes, networks and images, then their folders."""
    for app in apps:
        log(f"removing the docker resources of {app.name}")
        for problem in remove_project(app.name, app.images):
            log(problem)
    shutil.rmtree(root, ignore_errors=True)


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    signal.signal(signal.SIGTERM, raise_interrupt)
    started = time.perf_counter()
    root = Path(tempfile.mkdtemp(prefix="nodeops-bench-"))
    apps: list[App] = []
    try:
        results = run_benchmark(args, root, apps)
        results.notes.append(f"the whole run took {time.perf_counter() - started:.0f} s, cleanup excluded")
        write_results(results, args.output)
    except KeyboardInterrupt:
        log("interrupted: cleaning up")
        return 130
    except BenchError as error:
        log(f"failed: {error}")
        return 1
    except Exception:
        traceback.print_exc()
        return 1
    finally:
        # Ctrl-C during cleanup would leave resources behind, so it waits.
        signal.signal(signal.SIGINT, signal.SIG_IGN)
        clean_up(apps, root)
    log(f"wrote {args.output / 'latest.md'} and latest.json")
    return 1 if results.errors else 0


if __name__ == "__main__":
    sys.exit(main())
