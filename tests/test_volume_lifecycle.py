"""The node_modules volume against a real engine: freshness, status, pruning, faults.

Each test bootstraps one project and runs several related checks on it, so
the npm installs and image builds are paid once per test.
"""

from __future__ import annotations

import json
import subprocess
import threading
import time
from typing import Callable

import pytest

from nodeops.volume import stale_reason

from conftest import Result, TestProject, nodeops_executable

pytestmark = pytest.mark.docker

ProjectFactory = Callable[..., TestProject]

#: A test script that prints the installed is-number version, or "absent".
VERSION_SCRIPT = (
    "node -e \"try { console.log('is-number ' + require('is-number/package.json').version) }"
    " catch { console.log('is-number absent') }\""
)

MANIFESTS = ("package.json", "package-lock.json")


def bootstrap(project: TestProject) -> None:
    """Bootstrap the project and give package.json a test script that prints is-number's version."""
    project.nodeops("bootstrap", "--port", str(project.port))
    manifest = json.loads((project.directory / "package.json").read_text(encoding="utf-8"))
    manifest["scripts"]["test"] = VERSION_SCRIPT
    project.write("package.json", json.dumps(manifest, indent=2) + "\n")


def snapshot(project: TestProject) -> dict[str, str]:
    """Return package.json and package-lock.json, as a commit of a branch would hold them."""
    return {name: (project.directory / name).read_text(encoding="utf-8") for name in MANIFESTS}


def check_out(project: TestProject, branch: dict[str, str]) -> None:
    """Write a branch's manifests over the project's, as git checkout would."""
    for name, content in branch.items():
        project.write(name, content)


def volume_command(project: TestProject, command: str) -> str:
    """Run a bash command in a one-off container of the app and return its stdout."""
    return project.nodeops("shell", "--command", command).stdout


def status(project: TestProject) -> dict[str, str]:
    """Return the lines of nodeops status as a mapping of label to value."""
    lines = project.nodeops("status").stdout.splitlines()
    return {label: value.strip() for label, _, value in (line.partition("  ") for line in lines)}


def docker(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(["docker", *args], capture_output=True, text=True)


def volume_names() -> set[str]:
    return set(docker("volume", "ls", "--quiet").stdout.split())


def test_lock_switch_reinstalls(make_project: ProjectFactory) -> None:
    project = make_project("nvol")
    bootstrap(project)
    main = snapshot(project)
    project.nodeops("install", "is-number@6.0.0")
    added = snapshot(project)
    project.nodeops("install", "is-number@7.0.0")
    bumped = snapshot(project)

    # Back to a branch without the package: the volume still has it until a run.
    check_out(project, main)
    state = status(project)
    assert state["state"].startswith("stale: package-lock.json changed"), state
    result = project.nodeops("test")
    assert "is-number absent" in result.stdout, result.describe()
    assert "node_modules is out of date (package-lock.json changed): running npm ci" in result.stderr

    # A branch that adds the package, then one that bumps it.
    check_out(project, added)
    result = project.nodeops("test")
    assert "is-number 6.0.0" in result.stdout, result.describe()
    assert "(package-lock.json changed)" in result.stderr
    check_out(project, bumped)
    result = project.nodeops("test")
    assert "is-number 7.0.0" in result.stdout, result.describe()
    assert "(package-lock.json changed)" in result.stderr
    assert status(project)["state"] == "in sync"

    # Changing source files only never reinstalls.
    project.write("index.js", "console.log('changed');\n")
    result = project.nodeops("test")
    assert "is-number 7.0.0" in result.stdout, result.describe()
    assert "out of date" not in result.stderr

    # Ownership: the host mount point and everything else belong to the host user,
    # and the volume's contents to node, which is the host user in the container.
    assert (project.directory / "node_modules").stat().st_uid == project.user.uid
    assert project.foreign_owned() == []
    not_node = volume_command(project, "find node_modules ! -user node ! -group node -print -quit")
    assert not_node.strip() == ""
    owner = volume_command(project, "stat -c %U:%G node_modules node_modules/is-number")
    assert owner.split() == ["node:node", "node:node"]
    if not project.user.is_root:
        ids = volume_command(project, "stat -c %u:%g node_modules/is-number/package.json")
        assert ids.strip() == f"{project.user.uid}:{project.user.gid}"


def test_node_change_is_stale(make_root_project: ProjectFactory) -> None:
    project = make_root_project("nvol")
    bootstrap(project)

    # Only one node image exists here, so the stamp is edited to an older node.
    volume_command(project, "sed -i 's/^node .*/node v22.1.0/' node_modules/.nodeops-stamp")
    state = status(project)["state"]
    assert state == (
        "stale: installed for node v22.1.0, the project pins node v24.22.3: the next run reinstalls it"
    )
    result = project.nodeops("test")
    assert "node_modules is out of date (node changed from v22.1.0 to v24.22.3)" in result.stderr
    assert status(project)["state"] == "in sync"


def test_stale_reason_names_both_nodes() -> None:
    expected = "lock abc\nnode v24.22.3"
    assert stale_reason("lock abc\nnode v22.1.0", expected) == (
        "installed for node v22.1.0, the project pins node v24.22.3"
    )
    assert stale_reason("lock def\nnode v24.22.3", expected) == "package-lock.json changed since the last install"
    assert stale_reason("", expected) == "installed for node an unknown node, the project pins node v24.22.3"


def test_status_prune_and_decoys(make_root_project: ProjectFactory) -> None:
    project = make_root_project("nvol")
    bootstrap(project)
    other = f"{project.name}-other"
    decoy = f"{other}_node_modules"
    unlabeled = f"{project.name}-unlabeled_node_modules"
    try:
        created = docker(
            "volume", "create",
            "--label", f"com.docker.compose.project={other}",
            "--label", "com.docker.compose.volume=node_modules",
            decoy,
        )
        assert created.returncode == 0, created.stderr
        created = docker("volume", "create", unlabeled)
        assert created.returncode == 0, created.stderr

        state = status(project)
        assert state["project"] == project.name
        assert state["service"] == "app"
        assert state["image"] == f"{project.name}-app (current)"
        assert state["volume"] == f"{project.name}_node_modules"
        assert state["state"] == "in sync"
        assert state["used by"] == "no container"

        # prune-volume while the app runs detached stops it first.
        project.nodeops("up", "--detach")
        container = f"{project.name}-app-1"
        assert status(project)["used by"] == f"{container} (running)"
        result = project.nodeops("prune-volume", "--yes")
        assert f"removed container {container}" in result.stderr, result.describe()
        assert f"removed volume {project.name}_node_modules" in result.stderr
        assert f"{project.name}_node_modules" not in volume_names()
        assert {decoy, unlabeled} <= volume_names()
        assert docker("container", "inspect", container).returncode != 0

        # Nothing left to remove is not an error.
        result = project.nodeops("prune-volume", "--yes")
        assert f"no node_modules volume for {project.name}: nothing to remove" in result.stderr
        state = status(project)
        assert state["volume"] == f"{project.name}_node_modules (not created)"
        assert state["state"].startswith("missing")

        # The next run creates and fills it again, and down --volumes spares the
        # decoys but removes a volume of this project that the file no longer declares.
        result = project.nodeops("test")
        assert "is-number absent" in result.stdout, result.describe()
        assert "(the volume is empty)" in result.stderr
        orphan = f"{project.name}_old_cache"
        created = docker(
            "volume", "create",
            "--label", f"com.docker.compose.project={project.name}",
            "--label", "com.docker.compose.volume=old_cache",
            orphan,
        )
        assert created.returncode == 0, created.stderr
        result = project.nodeops("down", "--volumes")
        assert f"removed volume {orphan}" in result.stderr, result.describe()
        assert f"{project.name}_node_modules" not in volume_names()
        assert orphan not in volume_names()
        assert {decoy, unlabeled} <= volume_names()
    finally:
        docker("volume", "rm", "--force", decoy, unlabeled)


def wait_for_process(project: TestProject, marker: str, nodeops: subprocess.Popen) -> str:
    """Wait until a one-off container of the project runs ``marker``; return the container id."""
    while nodeops.poll() is None:
        listed = docker(
            "container", "ls", "--quiet",
            "--filter", f"label=com.docker.compose.project={project.name}",
            "--filter", "label=com.docker.compose.oneoff=True",
        )
        for container in listed.stdout.split():
            if marker in docker("top", container).stdout:
                return container
        time.sleep(0.2)
    pytest.fail(f"nodeops exited with {nodeops.returncode} before {marker!r} ran")


def test_interrupted_install_recovers(make_root_project: ProjectFactory) -> None:
    project = make_root_project("nvol")
    bootstrap(project)
    project.write("notes.txt", "mine\n")
    manifest = json.loads((project.directory / "package.json").read_text(encoding="utf-8"))
    manifest["scripts"]["postinstall"] = "sleep 600"
    project.write("package.json", json.dumps(manifest, indent=2) + "\n")

    # Kill the container while npm ci runs the project's postinstall script.
    volume_command(project, "rm node_modules/.nodeops-stamp")
    argv = project.user.command([nodeops_executable(), "test"])
    with subprocess.Popen(
        argv, cwd=project.directory, env=project.user.environment(),
        stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
    ) as nodeops:
        container = wait_for_process(project, "sleep 600", nodeops)
        docker("kill", container)
        _, stderr = nodeops.communicate(timeout=120)
    assert nodeops.returncode != 0, stderr
    assert status(project)["state"].startswith("incomplete")

    # The next command repairs it, and the user's files are untouched.
    del manifest["scripts"]["postinstall"]
    project.write("package.json", json.dumps(manifest, indent=2) + "\n")
    result = project.nodeops("test")
    assert "(no record of a complete install): running npm ci" in result.stderr, result.describe()
    assert status(project)["state"] == "in sync"
    assert (project.directory / "notes.txt").read_text(encoding="utf-8") == "mine\n"


def test_hand_edited_manifest_fails(make_root_project: ProjectFactory) -> None:
    project = make_root_project("nvol")
    bootstrap(project)
    project.nodeops("install", "is-number@6.0.0")
    listing = "cat node_modules/.nodeops-stamp; ls -A node_modules"
    before = volume_command(project, listing)
    original = (project.directory / "package.json").read_text(encoding="utf-8")
    manifest = json.loads(original)
    manifest["dependencies"]["is-number"] = "^7.0.0"
    edited = json.dumps(manifest, indent=2) + "\n"
    project.write("package.json", edited)

    result = project.nodeops("test", expect=65)
    assert result.stderr.strip().splitlines()[-1] == (
        "nodeops: package-lock.json does not match package.json: dependencies.is-number is"
        ' "^7.0.0" in package.json but "^6.0.0" in the lock; run \'nodeops lock\' to update the lock'
        " (node_modules was left as it was)"
    ), result.describe()
    assert "Traceback" not in result.stderr
    project.write("package.json", original)
    assert volume_command(project, listing) == before
    project.write("package.json", edited)
    assert status(project)["lock"] == (
        "out of date (dependencies.is-number is \"^7.0.0\" in package.json"
        " but \"^6.0.0\" in package-lock.json): run 'nodeops lock'"
    )

    # The volume is as it was, and nodeops lock brings the lock and the volume up to date.
    project.nodeops("lock")
    result = project.nodeops("test")
    assert "is-number 7." in result.stdout, result.describe()
    assert "out of date" not in result.stderr
    assert status(project)["state"] == "in sync"


def test_concurrent_commands(make_project: ProjectFactory) -> None:
    project = make_project("nvol")
    bootstrap(project)
    main = snapshot(project)
    project.nodeops("install", "is-number@7.0.0")

    # Two commands at once after a lock change: one installs, the other waits.
    check_out(project, main)
    results: list[Result] = []

    def run_test() -> None:
        results.append(project.nodeops("test", expect=None))

    threads = [threading.Thread(target=run_test) for _ in range(2)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    for result in results:
        assert result.returncode == 0, result.describe()
        assert "is-number absent" in result.stdout, result.describe()
    installs = [result for result in results if "running npm ci" in result.stderr]
    assert len(installs) == 1, [result.describe() for result in results]
    assert status(project)["state"] == "in sync"
    listing = volume_command(project, "npm ls --all --parseable >/dev/null && echo intact")
    assert listing.strip() == "intact"
