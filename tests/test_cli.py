"""The command line: task listing, and one clear line with an exit code for each expected failure."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from conftest import nodeops_executable

TASKS = ("bootstrap", "install", "lock", "up", "down", "shell", "test", "prune-volume", "status", "prod-build")
GOOD_ENV = "NODE_VERSION=24.22.3\nPORT=3000\n"


def run(argv: list[str], cwd: Path, env: dict[str, str] | None = None) -> subprocess.CompletedProcess:
    environment = dict(os.environ)
    environment.update(env or {})
    return subprocess.run(argv, cwd=cwd, env=environment, capture_output=True, text=True, stdin=subprocess.DEVNULL)


def assert_clean_failure(result: subprocess.CompletedProcess, code: int, *fragments: str) -> None:
    described = f"exit {result.returncode}\nstdout:\n{result.stdout}\nstderr:\n{result.stderr}"
    assert result.returncode == code, described
    assert "Traceback" not in result.stderr, described
    for fragment in fragments:
        assert fragment in result.stderr, described


def test_list_shows_every_task(tmp_path: Path) -> None:
    result = run([nodeops_executable(), "--list"], tmp_path)
    assert result.returncode == 0, result.stderr
    for name in TASKS:
        assert f"  {name} " in result.stdout, name


def test_module_entry_point(tmp_path: Path) -> None:
    result = run([sys.executable, "-m", "nodeops", "--list"], tmp_path)
    assert result.returncode == 0, result.stderr
    assert "prune-volume" in result.stdout


def test_unknown_option(tmp_path: Path) -> None:
    result = run([nodeops_executable(), "up", "--bogus"], tmp_path)
    assert_clean_failure(result, 2, "--bogus", "nodeops --help TASK")


def test_misspelled_task(tmp_path: Path) -> None:
    result = run([nodeops_executable(), "instal", "express"], tmp_path)
    assert_clean_failure(result, 2, "'instal'", "nodeops --list")


def test_numeric_option_typo(tmp_path: Path) -> None:
    result = run([nodeops_executable(), "bootstrap", "--port", "abc"], tmp_path)
    assert_clean_failure(result, 2, "PORT='abc' in --port")
    assert list(tmp_path.iterdir()) == []


def test_install_words_merged() -> None:
    from nodeops.program import merge_install_words

    assert merge_install_words(["install", "express", "socket.io", "--dev"]) == ["install", "--dev", "express,socket.io"]
    assert merge_install_words(["install", "express"]) == ["install", "express"]
    assert merge_install_words(["install", "a", "b", "--", "rest"]) == ["install", "a,b", "--", "rest"]
    assert merge_install_words(["up", "--detach"]) == ["up", "--detach"]


def test_pinned_version_error_keeps_env(tmp_path: Path) -> None:
    (tmp_path / ".env").write_text("NODE_VERSION=lts\n")
    (tmp_path / "docker-compose.yml").write_text("services: {}\n")
    result = run([nodeops_executable(), "test"], tmp_path)
    assert_clean_failure(result, 2, "NODE_VERSION='lts'", "24.22.3")
    assert (tmp_path / ".env").read_text() == "NODE_VERSION=lts\n"


def test_invalid_port_error(tmp_path: Path) -> None:
    (tmp_path / ".env").write_text("NODE_VERSION=24.22.3\nPORT=http\n")
    result = run([nodeops_executable(), "up"], tmp_path)
    assert_clean_failure(result, 2, "PORT='http'", "1 to 65535")


def test_missing_compose_file(tmp_path: Path) -> None:
    (tmp_path / ".env").write_text(GOOD_ENV)
    result = run([nodeops_executable(), "test"], tmp_path)
    assert_clean_failure(result, 2, "no compose file", "nodeops bootstrap")


def test_missing_env_file(tmp_path: Path) -> None:
    result = run([nodeops_executable(), "shell"], tmp_path)
    assert_clean_failure(result, 2, ".env is missing", "nodeops bootstrap")


def test_env_created_from_example(tmp_path: Path) -> None:
    (tmp_path / ".env.example").write_text("NODE_VERSION=lts\n")
    result = run([nodeops_executable(), "test"], tmp_path)
    assert_clean_failure(result, 2, "created .env from .env.example", "NODE_VERSION='lts'")
    assert (tmp_path / ".env").read_text() == "NODE_VERSION=lts\n"


def test_bootstrap_bad_version_writes_nothing(tmp_path: Path) -> None:
    result = run([nodeops_executable(), "bootstrap", "--node-version", "latest"], tmp_path)
    assert_clean_failure(result, 2, "'latest'")
    assert list(tmp_path.iterdir()) == []


def test_install_rejects_option_as_package(tmp_path: Path) -> None:
    result = run([nodeops_executable(), "install", "express,--global"], tmp_path)
    assert_clean_failure(result, 2, "'--global'", "--dev")


def test_docker_not_installed(tmp_path: Path) -> None:
    (tmp_path / ".env").write_text(GOOD_ENV)
    (tmp_path / "docker-compose.yml").write_text("services: {}\n")
    empty = tmp_path / "empty-bin"
    empty.mkdir()
    result = run([nodeops_executable(), "test"], tmp_path, env={"PATH": str(empty)})
    assert_clean_failure(result, 3, "docker is not installed", "Docker Desktop")


@pytest.mark.skipif(subprocess.run(["which", "docker"], capture_output=True).returncode != 0,
                    reason="needs the docker client to reach a missing daemon")
def test_daemon_not_running(tmp_path: Path) -> None:
    (tmp_path / ".env").write_text(GOOD_ENV)
    (tmp_path / "docker-compose.yml").write_text("services: {}\n")
    socket = f"unix://{tmp_path}/no-daemon.sock"
    result = run([nodeops_executable(), "test"], tmp_path, env={"DOCKER_HOST": socket})
    assert_clean_failure(result, 3, f"DOCKER_HOST={socket}", "unset DOCKER_HOST")


def test_inv_uses_collection(tmp_path: Path) -> None:
    (tmp_path / "tasks.py").write_text("from nodeops.tasks import ns\n")
    inv = str(Path(nodeops_executable()).parent / "inv")
    listed = run([inv, "--list"], tmp_path)
    assert listed.returncode == 0, listed.stderr
    assert "prod-build" in listed.stdout
    (tmp_path / ".env").write_text("NODE_VERSION=24\n")
    failed = run([inv, "test"], tmp_path)
    assert_clean_failure(failed, 2, "NODE_VERSION='24'")


def test_compose_plugin_missing_explained() -> None:
    from nodeops.compose import explain_docker_failure

    error = explain_docker_failure("docker: 'compose' is not a docker command.\nSee 'docker --help'\n")
    assert error is not None
    assert error.code == 3
    assert "compose v2 plugin is missing" in error.message
