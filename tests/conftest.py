"""Fixtures for tests that drive a real Docker engine, real npm and real files.

Each test project gets its own folder and compose project name, and every
container, volume, network and image labelled with that name is removed
after the test, whether it passed or not. Tests marked ``docker`` skip with
the reason on a machine without a Docker engine, and fail instead under CI.
"""

from __future__ import annotations

import grp
import os
import pwd
import shutil
import socket
import subprocess
import sys
import uuid
from dataclasses import dataclass, field
from pathlib import Path
from typing import Iterator, Sequence

import pytest

#: The non-root host user the workflow also runs as, with a uid that is not 1000.
TEST_USER = "nodeops-test"
TEST_UID = 1234
#: A second user whose gid is the "users" group that Debian, and so the node image, already has.
SHARED_GID_USER = "nodeops-test-users"
SHARED_GID_UID = 1235
SHARED_GID = 100

#: Where test projects live: readable by the test user, unlike root's home.
PROJECTS_ROOT = Path(os.environ.get("NODEOPS_TEST_ROOT", "/tmp/nodeops-tests"))


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line("markers", "docker: needs a running Docker engine with compose v2")


def docker_available() -> tuple[bool, str]:
    if shutil.which("docker") is None:
        return False, "docker is not installed"
    info = subprocess.run(["docker", "info"], capture_output=True, text=True)
    if info.returncode != 0:
        return False, "the Docker daemon is not reachable"
    compose = subprocess.run(["docker", "compose", "version"], capture_output=True, text=True)
    if compose.returncode != 0:
        return False, "the docker compose v2 plugin is missing"
    return True, ""


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    if not any(item.get_closest_marker("docker") for item in items):
        return
    available, reason = docker_available()
    if available:
        return
    if os.environ.get("CI"):
        raise pytest.UsageError(f"CI needs a Docker engine, but {reason}: run ../shared/docker-engine-up")
    skip = pytest.mark.skip(reason=f"{reason}; these tests need a Docker engine")
    for item in items:
        if item.get_closest_marker("docker"):
            item.add_marker(skip)


def nodeops_executable() -> str:
    """Return the nodeops console script installed beside the running interpreter."""
    candidate = Path(sys.executable).parent / "nodeops"
    if candidate.exists():
        return str(candidate)
    found = shutil.which("nodeops")
    if found is None:
        raise RuntimeError("nodeops is not installed: run pip install . first")
    return found


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


@dataclass
class HostUser:
    """Who runs nodeops in a test: root, or the unprivileged test user."""

    name: str
    uid: int
    gid: int

    @property
    def is_root(self) -> bool:
        return self.uid == 0

    def command(self, argv: Sequence[str]) -> list[str]:
        if self.is_root or os.getuid() == self.uid:
            return list(argv)
        return ["runuser", "-u", self.name, "--", *argv]

    def environment(self) -> dict[str, str]:
        env = dict(os.environ)
        if not self.is_root:
            home = pwd.getpwuid(self.uid).pw_dir
            env.update(HOME=home, USER=self.name, LOGNAME=self.name)
            env.pop("DOCKER_CONFIG", None)
        return env


def ensure_user(name: str, uid: int, gid: int) -> HostUser:
    """Create a host user in the docker group unless it exists; make its group if none has ``gid``."""
    try:
        entry = pwd.getpwnam(name)
    except KeyError:
        try:
            grp.getgrgid(gid)
        except KeyError:
            subprocess.run(["groupadd", "--gid", str(gid), name], check=True, capture_output=True)
        subprocess.run(
            [
                "useradd",
                "--uid",
                str(uid),
                "--gid",
                str(gid),
                "--groups",
                "docker",
                "--create-home",
                "--shell",
                "/bin/bash",
                name,
            ],
            check=True,
            capture_output=True,
        )
        entry = pwd.getpwnam(name)
    subprocess.run(["usermod", "--append", "--groups", "docker", name], check=True)
    return HostUser(name, entry.pw_uid, entry.pw_gid)


def ensure_test_user() -> HostUser:
    """Create the test user (uid and gid 1234, in the docker group) unless it exists."""
    return ensure_user(TEST_USER, TEST_UID, TEST_UID)


def host_users() -> list[str]:
    users = ["root"] if os.getuid() == 0 else ["current"]
    if os.getuid() == 0:
        users.append("uid1234")
    return users


@pytest.fixture(params=host_users())
def host_user(request: pytest.FixtureRequest) -> HostUser:
    """Run the test once as root (or the current user) and once as uid 1234."""
    if request.param == "uid1234":
        return ensure_test_user()
    uid = os.getuid()
    return HostUser(pwd.getpwuid(uid).pw_name, uid, os.getgid())


@pytest.fixture
def make_shared_gid_project() -> Iterator:
    """Like make_project, as a user whose gid (100, users) the node image already has."""
    if os.getuid() != 0:
        pytest.skip("creating a host user needs root")
    yield from _project_factory(ensure_user(SHARED_GID_USER, SHARED_GID_UID, SHARED_GID))


@pytest.fixture
def root_user() -> HostUser:
    uid = os.getuid()
    return HostUser(pwd.getpwuid(uid).pw_name, uid, os.getgid())


@dataclass
class Result:
    argv: list[str]
    returncode: int
    stdout: str
    stderr: str

    def describe(self) -> str:
        return (
            f"$ {' '.join(self.argv)}\nexit code {self.returncode}\n"
            f"--- stdout\n{self.stdout}\n--- stderr\n{self.stderr}"
        )


@dataclass
class TestProject:
    """A project folder owned by a host user, with its own compose project name."""

    __test__ = False  # A fixture, not a test class, despite its name.

    directory: Path
    user: HostUser
    port: int
    extra_images: list[str] = field(default_factory=list)

    @property
    def name(self) -> str:
        return self.directory.name

    def run(
        self,
        argv: Sequence[str],
        timeout: float = 600,
        env: dict[str, str] | None = None,
        subfolder: str = "",
    ) -> Result:
        environment = self.user.environment()
        environment.update(env or {})
        completed = subprocess.run(
            self.user.command(argv),
            cwd=self.directory / subfolder,
            env=environment,
            stdin=subprocess.DEVNULL,
            capture_output=True,
            text=True,
            timeout=timeout,
        )
        return Result(list(argv), completed.returncode, completed.stdout, completed.stderr)

    def nodeops(self, *args: str, expect: int | None = 0, **kwargs) -> Result:
        """Run the nodeops command; fail with its output unless it exits with ``expect``."""
        result = self.run([nodeops_executable(), *args], **kwargs)
        if expect is not None:
            assert result.returncode == expect, result.describe()
        return result

    def write(self, relative: str, content: str) -> Path:
        """Write a file in the project as its host user would."""
        path = self.directory / relative
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(content, encoding="utf-8")
        for target in [path, *path.parents]:
            if target == self.directory:
                break
            os.chown(target, self.user.uid, self.user.gid)
        return path

    def foreign_owned(self) -> list[str]:
        """List the paths in the project that the host user does not own."""
        foreign = []
        for root, folders, files in os.walk(self.directory):
            for name in [*folders, *files]:
                path = Path(root) / name
                status = path.lstat()
                if (status.st_uid, status.st_gid) != (self.user.uid, self.user.gid):
                    foreign.append(f"{path.relative_to(self.directory)} ({status.st_uid}:{status.st_gid})")
        return foreign


def remove_project_resources(name: str, images: Sequence[str] = ()) -> None:
    """Remove every container, volume, network and image labelled with the compose project ``name``."""
    label = f"label=com.docker.compose.project={name}"

    def ids(*argv: str) -> list[str]:
        completed = subprocess.run(["docker", *argv], capture_output=True, text=True)
        return completed.stdout.split()

    containers = ids("container", "ls", "--all", "--quiet", "--filter", label)
    if containers:
        subprocess.run(["docker", "container", "rm", "--force", "--volumes", *containers], capture_output=True)
    volumes = ids("volume", "ls", "--quiet", "--filter", label)
    if volumes:
        subprocess.run(["docker", "volume", "rm", "--force", *volumes], capture_output=True)
    networks = ids("network", "ls", "--quiet", "--filter", label)
    if networks:
        subprocess.run(["docker", "network", "rm", *networks], capture_output=True)
    tagged = [*images, *ids("image", "ls", "--quiet", "--filter", label)]
    if tagged:
        subprocess.run(["docker", "image", "rm", "--force", *tagged], capture_output=True)


@pytest.fixture
def make_project(host_user: HostUser) -> Iterator:
    """Return a factory of empty project folders owned by ``host_user``, cleaned up afterwards."""
    yield from _project_factory(host_user)


@pytest.fixture
def make_root_project(root_user: HostUser) -> Iterator:
    """Like make_project, but only as root (or the user running the tests)."""
    yield from _project_factory(root_user)


def _project_factory(user: HostUser) -> Iterator:
    created: list[TestProject] = []

    def factory(prefix: str = "ntest") -> TestProject:
        PROJECTS_ROOT.mkdir(parents=True, exist_ok=True)
        PROJECTS_ROOT.chmod(0o1777)
        directory = PROJECTS_ROOT / f"{prefix}-{uuid.uuid4().hex[:10]}"
        directory.mkdir()
        os.chown(directory, user.uid, user.gid)
        project = TestProject(directory, user, free_port())
        created.append(project)
        return project

    yield factory
    for project in created:
        remove_project_resources(project.name, project.extra_images)
        shutil.rmtree(project.directory, ignore_errors=True)
