"""The nodeops tasks: thin Invoke wrappers over the project modules.

Use them as ``nodeops TASK``, or import ``ns`` into a repo's own tasks.py and
run ``inv TASK``.
"""

from __future__ import annotations

import functools
import os
import shlex
import sys
from pathlib import Path
from typing import Any, Callable

from invoke import Collection, Context, Exit, task

from .errors import EXIT_FAILURE, EXIT_INTERRUPTED, NodeopsError
from .identity import current_host_user
from .settings import DEFAULT_NODE_VERSION, DEFAULT_PORT, ENV_EXAMPLE_FILE, ENV_FILE, load_settings


def reports_errors(body: Callable[..., Any]) -> Callable[..., Any]:
    """Turn nodeops' expected failures and Ctrl-C into a message and an exit code.

    Invoke prints an `Exit` message without a traceback, under ``inv`` as
    well as under ``nodeops``.
    """

    @functools.wraps(body)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        try:
            return body(*args, **kwargs)
        except NodeopsError as error:
            raise Exit(f"nodeops: {error.message}", error.code) from None
        except KeyboardInterrupt:
            raise Exit("nodeops: interrupted", EXIT_INTERRUPTED) from None
        except Exception as error:
            from .compose import from_whales_error

            known = from_whales_error(error)
            if known is None:
                raise
            raise Exit(f"nodeops: {known.message}", known.code) from None

    return wrapper


def say(message: str) -> None:
    print(f"nodeops: {message}", file=sys.stderr)


def find_project_directory(start: Path) -> Path:
    """Return the nearest folder, from ``start`` up, with a compose file or a .env.

    Like compose, nodeops works from any subfolder of a project. With
    neither file up to the root, ``start`` itself is the project folder, and
    the errors that follow name it.
    """
    from .compose import find_compose_file

    for folder in (start, *start.parents):
        if find_compose_file(folder) is not None or (folder / ENV_FILE).is_file():
            return folder
    return start


def open_project(prepare: bool = True, strict: bool = True):
    """Open the project around the current folder; with ``prepare``, ready it for a run.

    With ``strict`` off, invalid settings become a warning and defaults, so
    that down, prune-volume and status can still stop or show a project
    whose .env has gone wrong.
    """
    from .compose import Project
    from .settings import Settings

    directory = find_project_directory(Path.cwd())
    env_path = directory / ENV_FILE
    example = directory / ENV_EXAMPLE_FILE
    if not env_path.exists() and example.is_file():
        from .files import write_atomic

        write_atomic(env_path, example.read_text(encoding="utf-8"))
        say(f"created {ENV_FILE} from {ENV_EXAMPLE_FILE}")
    fallback = False
    try:
        settings = load_settings(directory)
    except NodeopsError as error:
        if strict or not env_path.is_file():
            raise
        settings = Settings()
        say(
            f"warning: {error.message}. Going on without .env, with NODE_VERSION="
            f"{settings.node_version} and PORT={settings.port}"
        )
        # Compose would fail on the same values, so it gets the defaults through
        # the environment (which wins over .env) and no .env at all.
        os.environ["NODE_VERSION"] = settings.node_version
        os.environ["PORT"] = str(settings.port)
        fallback = True
    project = Project(directory, settings, current_host_user(), env_file_ignored=fallback)
    if prepare:
        project.prepare()
    return project


def finish(code: int) -> None:
    """End the task with a container command's own exit code."""
    if code != 0:
        raise Exit(code=code)


@task(
    help={
        "force": "Replace the Docker and settings files nodeops writes even if they exist.",
        "node-version": f"The node image version to pin (default: .env's, else {DEFAULT_NODE_VERSION}).",
        "port": f"The port the app listens on and the host publishes (default: .env's, else {DEFAULT_PORT}).",
    }
)
@reports_errors
def bootstrap(c: Context, force: bool = False, node_version: str = "", port: str = "") -> None:
    """Set up Docker files, .env and package files in this folder."""
    from .compose import Project
    from .scaffold import create_package_files, set_env_values, write_project_files
    from .settings import parse_port, read_env_file, validate_node_version

    directory = Path.cwd()
    env_path = directory / ENV_FILE
    current = read_env_file(env_path) if env_path.is_file() else {}
    # An option wins; otherwise a value already in .env is kept, so --force
    # renders the templates with the project's own version and port.
    version = validate_node_version(
        node_version or current.get("NODE_VERSION") or DEFAULT_NODE_VERSION,
        "--node-version" if node_version else str(env_path),
    )
    port_number = parse_port(
        port or current.get("PORT") or str(DEFAULT_PORT), "--port" if port else str(env_path)
    )
    requested = {"NODE_VERSION": node_version and version, "PORT": port and str(port_number)}
    changed = {
        name: value for name, value in requested.items() if value and name in current and current[name] != value
    }
    if changed and not force:
        name, value = next(iter(changed.items()))
        option = "--node-version" if name == "NODE_VERSION" else "--port"
        raise NodeopsError(
            f"{name}={current[name]} in .env differs from {option} {value}: edit .env,"
            f" or add --force to write {name}={value} there"
        )
    for line in write_project_files(directory, version, port_number, force):
        say(line)
    if changed:
        set_env_values(env_path, changed)
        say(f"set {', '.join(f'{name}={value}' for name, value in changed.items())} in {ENV_FILE}")
    project = Project(directory, load_settings(directory), current_host_user())
    project.prepare()
    for line in create_package_files(project):
        say(line)
    say("ready: run 'nodeops up' to start the app")


@task(
    positional=["packages"],
    help={
        "packages": "Packages to add, one or several separated by spaces or commas (quote them).",
        "dev": "Save them to devDependencies.",
    },
)
@reports_errors
def install(c: Context, packages: str, dev: bool = False) -> None:
    """Add npm packages to package.json, the lock file and node_modules."""
    names = parse_packages(packages)
    project = open_project()
    from .scaffold import NPM_QUIET

    command = ["npm", "install", *NPM_QUIET, "--save-dev" if dev else "--save", *names]
    run_lock_writer(project, command)


@task
@reports_errors
def lock(c: Context) -> None:
    """Update package-lock.json to match package.json, then sync node_modules."""
    project = open_project()
    from .scaffold import NPM_QUIET

    run_lock_writer(project, ["npm", "install", *NPM_QUIET])


def run_lock_writer(project, command: list[str]) -> None:
    """Run an npm command that rewrites the lock file, as the owner of the project files.

    The entrypoint stamps node_modules afterwards, so the volume counts as in sync.
    """
    finish(project.run(command, user=project.user.project_writer, env={"NODEOPS_RESTAMP": "1"}))


def parse_packages(raw: str) -> list[str]:
    """Split package specs on spaces and commas; reject what npm would read as an option."""
    names = [name for name in raw.replace(",", " ").split() if name]
    if not names:
        raise NodeopsError(
            "no package given: name one or more, for example 'nodeops install express';"
            " to update the lock file from package.json, run 'nodeops lock'"
        )
    for name in names:
        if name.startswith("-"):
            raise NodeopsError(
                f"invalid package {name!r}: a package name cannot start with '-';"
                " use --dev for devDependencies"
            )
    return names


@task(help={"detach": "Return once the app is started, leaving it running."})
@reports_errors
def up(c: Context, detach: bool = False) -> None:
    """Build if needed and run the app with its port published."""
    project = open_project()
    project.check_port_free()
    # Sync node_modules in a one-off container first, so the install shows here
    # and a detached app starts on a complete tree.
    finish(project.run(["true"], tty=False))
    code = project.up(detach)
    if code == EXIT_INTERRUPTED:
        raise Exit(code=EXIT_INTERRUPTED)
    finish(code)
    if detach:
        say(f"running on http://localhost:{project.settings.port}; stop it with 'nodeops down'")


@task(help={"volumes": "Also remove the project's volumes (node_modules and the npm cache)."})
@reports_errors
def down(c: Context, volumes: bool = False) -> None:
    """Stop and remove the project's containers and network."""
    project = open_project(prepare=False, strict=False)
    project.write_override()
    finish(project.down(volumes))
    if volumes:
        from .volume import find_volumes

        # Compose removes the volumes its file declares. A volume the file no
        # longer declares (a renamed key) still carries the project label.
        for volume in find_volumes(project):
            project.client.volume.remove(volume.name)
            say(f"removed volume {volume.name}, which the compose file no longer declares")


@task(
    help={
        "root": "Open the shell as root instead of the app user.",
        "command": "Run this command in bash instead of an interactive shell.",
    }
)
@reports_errors
def shell(c: Context, root: bool = False, command: str = "") -> None:
    """Open bash in a one-off container of the app."""
    from .compose import APP_DIR

    project = open_project()
    argv = ["bash", "-c", command] if command else ["bash"]
    # Open the shell in the container folder that matches the current one.
    relative = Path.cwd().relative_to(project.directory).as_posix()
    workdir = APP_DIR if relative == "." else f"{APP_DIR}/{relative}"
    finish(project.run(argv, user="root" if root else None, workdir=workdir))


@task(help={"args": "Arguments passed on to npm test, as one quoted string."})
@reports_errors
def test(c: Context, args: str = "") -> None:
    """Run npm test in a one-off container; its exit code is nodeops' exit code."""
    project = open_project()
    command = ["npm", "test"]
    extra = shlex.split(args)
    if extra:
        command += ["--", *extra]
    finish(project.run(command))


@task(name="prune-volume", help={"yes": "Do not ask for confirmation."})
@reports_errors
def prune_volume(c: Context, yes: bool = False) -> None:
    """Remove this project's node_modules volume and the containers using it."""
    from .volume import remove_node_modules_volume

    project = open_project(prepare=False, strict=False)
    project.write_override()
    if not yes and sys.stdin.isatty():
        answer = input(
            f"Stop the containers using the node_modules volume of {project.name},"
            " and remove them and the volume? [y/N] "
        )
        if answer.strip().lower() not in ("y", "yes"):
            raise Exit("nodeops: nothing removed", EXIT_FAILURE)
    removed = remove_node_modules_volume(project)
    if not removed:
        say(f"no node_modules volume for {project.name}: nothing to remove")
    for item in removed:
        say(f"removed {item}")


@task
@reports_errors
def status(c: Context) -> None:
    """Show the project's image, node_modules volume and containers."""
    from .volume import containers_using, lock_mismatch, read_state

    project = open_project(prepare=False, strict=False)
    project.write_override()
    # Compose names a built image after the project and the service.
    image_name = f"{project.name}-{project.service}"
    if project.image_is_current():
        image = f"{image_name} (current)"
    else:
        image = f"{image_name} (missing or out of date: rebuilt on the next run)"
    state = read_state(project)
    lines = [
        ("project", project.name),
        ("service", project.service),
        ("node", project.settings.node_version),
        ("image", image),
        ("volume", state.name or f"{project.name}_{state.key} (not created)"),
        ("state", f"{state.state}: {state.reason}" if state.reason else state.state),
    ]
    mismatch = lock_mismatch(project.directory)
    if mismatch:
        lines.append(("lock", f"out of date ({mismatch}): run 'nodeops lock'"))
    else:
        lines.append(("lock", "matches package.json"))
    if state.name:
        users = [
            f"{container.name} ({container.state.status})"
            for container in containers_using(project, state.name)
        ]
        lines.append(("used by", ", ".join(users) if users else "no container"))
    width = max(len(label) for label, _ in lines)
    for label, value in lines:
        print(f"{label.ljust(width)}  {value}")


@task(
    name="prod-build",
    help={
        "tag": "The image name and tag to build, for example chat:latest.",
        "cache": "Use the build cache (--no-cache rebuilds every layer).",
        "push": "Push the image to its registry after the build (needs docker buildx).",
        "platform": "Build for these platforms, for example linux/amd64,linux/arm64 (needs docker buildx).",
    },
)
@reports_errors
def prod_build(c: Context, tag: str = "", cache: bool = True, push: bool = False, platform: str = "") -> None:
    """Build the production image, check it, and print its size."""
    from .errors import EXIT_FAILURE
    from .production import build_production_image

    project = open_project(prepare=False)
    report = build_production_image(project, tag, cache=cache, push=push, platform=platform)
    for line in report.lines:
        print(line)
    if report.failures:
        raise NodeopsError(f"{tag} failed its checks: " + "; ".join(report.failures), EXIT_FAILURE)


@task(
    name="prod-run",
    help={
        "tag": "The production image to run, as built by prod-build.",
        "port": "The host port to publish the app on, on 127.0.0.1 (default: a free port).",
        "timeout": "Seconds to wait for the healthcheck to pass (default 60).",
        "read-only": "Run with a read-only root filesystem and a tmpfs on /tmp (--no-read-only for apps that write).",
    },
)
@reports_errors
def prod_run(c: Context, tag: str = "", port: str = "", timeout: str = "60", read_only: bool = True) -> None:
    """Run the production image, wait until healthy, then time its stop."""
    from .production_run import run_production_image
    from .settings import parse_port

    # Numbers arrive as text, so a typo gets nodeops' message rather than
    # Invoke's int() traceback.
    host_port = parse_port(port, "--port") if port else 0
    if not timeout.strip().isdigit() or int(timeout) <= 0:
        raise NodeopsError(f"invalid --timeout {timeout!r}: give a whole number of seconds above 0, for example 60")
    project = open_project(prepare=False)
    run_production_image(project, tag, host_port=host_port, timeout=int(timeout), read_only=read_only)


ns = Collection(bootstrap, install, lock, up, down, shell, test, prune_volume, status, prod_build, prod_run)
