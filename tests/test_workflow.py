"""The main job end to end, as a user runs it: bootstrap, install, up, test, prod-build, prune-volume, down.

Runs against the real Docker engine and the npm registry, once as root and
once as a non-root host user with uid 1234.
"""

from __future__ import annotations

import json
import subprocess
import time
import urllib.request
from pathlib import Path

import pytest

from conftest import TestProject

APPS = Path(__file__).parent / "apps"

pytestmark = pytest.mark.docker


def fetch(url: str, data: bytes | None = None, timeout: float = 5) -> str:
    request = urllib.request.Request(url, data=data, method="POST" if data is not None else "GET")
    with urllib.request.urlopen(request, timeout=timeout) as response:
        return response.read().decode("utf-8")


def wait_for_page(url: str, deadline_seconds: float = 90) -> str:
    """Poll ``url`` until it responds, and return the body."""
    deadline = time.monotonic() + deadline_seconds
    while True:
        try:
            return fetch(url)
        except OSError:
            if time.monotonic() > deadline:
                raise
            time.sleep(0.5)


def socketio_round_trip(base: str) -> str:
    """Open a Socket.IO session over HTTP long-polling, send a chat message and read the broadcast."""
    opened = fetch(f"{base}/socket.io/?EIO=4&transport=polling")
    assert opened.startswith("0"), opened
    sid = json.loads(opened[1:])["sid"]
    session = f"{base}/socket.io/?EIO=4&transport=polling&sid={sid}"
    assert fetch(session, data=b"40") == "ok"
    connected = fetch(session)
    assert connected.startswith("40"), connected
    assert fetch(session, data=b'42["chat message","hello from the test"]') == "ok"
    return fetch(session)


def set_test_script(project: TestProject, script: str) -> None:
    manifest = json.loads((project.directory / "package.json").read_text())
    manifest.setdefault("scripts", {})["test"] = script
    project.write("package.json", json.dumps(manifest, indent=2) + "\n")


def test_chat_workflow_end_to_end(make_project) -> None:
    project: TestProject = make_project("chat")
    port = project.port

    project.nodeops("bootstrap", "--port", str(port))
    for name in ("Dockerfile", "docker-compose.yml", "docker-compose.override.yml", ".dockerignore",
                 ".env", ".env.example", ".gitignore", "package.json", "package-lock.json"):
        assert (project.directory / name).is_file(), name
    override = (project.directory / "docker-compose.override.yml").read_text()
    expected_uid = 1000 if project.user.is_root else project.user.uid
    assert f'UID: "{expected_uid}"' in override

    project.nodeops("install", "express socket.io")
    dependencies = json.loads((project.directory / "package.json").read_text())["dependencies"]
    assert set(dependencies) == {"express", "socket.io"}
    assert '"node_modules/socket.io"' in (project.directory / "package-lock.json").read_text()

    project.write("index.js", (APPS / "chat-server.js").read_text())
    project.write("index.html", (APPS / "chat-index.html").read_text())
    project.write("test.js", (APPS / "chat-test.js").read_text())

    try:
        project.nodeops("up", "--detach")
        page = wait_for_page(f"http://127.0.0.1:{port}/")
        assert "<title>nodeops chat</title>" in page
        broadcast = socketio_round_trip(f"http://127.0.0.1:{port}")
        assert '42["chat message","hello from the test"]' in broadcast

        set_test_script(project, "node test.js")
        passed = project.nodeops("test")
        assert "chat test passed" in passed.stdout
        set_test_script(project, 'node -e "process.exit(3)"')
        project.nodeops("test", expect=3)
    finally:
        project.nodeops("down", expect=None)

    tag = f"{project.name}-prod:test"
    project.extra_images.append(tag)
    built = project.nodeops("prod-build", "--tag", tag)
    assert tag in built.stdout
    container = f"{project.name}-prod"
    subprocess.run(
        ["docker", "run", "--detach", "--name", container, "--label", f"com.docker.compose.project={project.name}",
         "--publish", f"127.0.0.1:{port}:{port}", "--env", f"PORT={port}", tag],
        check=True, capture_output=True,
    )
    try:
        assert "<title>nodeops chat</title>" in wait_for_page(f"http://127.0.0.1:{port}/")
    finally:
        subprocess.run(["docker", "rm", "--force", container], capture_output=True)

    project.nodeops("up", "--detach")
    pruned = project.nodeops("prune-volume")
    assert f"removed volume {project.name}_node_modules" in pruned.stderr
    project.nodeops("down")

    assert project.foreign_owned() == []
    mount_point = (project.directory / "node_modules").stat()
    assert (mount_point.st_uid, mount_point.st_gid) == (project.user.uid, project.user.gid)


def test_bootstrap_existing_repo(make_project) -> None:
    project: TestProject = make_project("existing")
    manifest = {
        "name": "existing-app",
        "version": "2.1.0",
        "main": "server.js",
        "scripts": {"test": "node check.js"},
        "dependencies": {"ms": "^2.1.3"},
        "devDependencies": {"is-number": "^7.0.0"},
    }
    project.write("package.json", json.dumps(manifest, indent=2) + "\n")
    project.write(
        "check.js",
        'const assert = require("node:assert");\n'
        'assert.strictEqual(require("ms")("1m"), 60000);\n'
        'assert.ok(require("is-number")(5));\n'
        'console.log("existing repo test passed");\n',
    )
    project.write(".gitignore", "dist/\n")
    project.write(".env", f"PORT={project.port}\nAPI_URL=http://api.internal\n")

    result = project.nodeops("bootstrap")
    assert "added NODE_VERSION to .env" in result.stderr
    env_text = (project.directory / ".env").read_text()
    assert env_text.startswith(f"PORT={project.port}\nAPI_URL=http://api.internal\n")
    assert (project.directory / ".gitignore").read_text().startswith("dist/\n")
    assert (project.directory / "package-lock.json").is_file()
    manifest_after = json.loads((project.directory / "package.json").read_text())
    assert manifest_after["name"] == "existing-app"
    assert manifest_after["dependencies"] == {"ms": "^2.1.3"}
    assert manifest_after["devDependencies"]["is-number"] == "^7.0.0"
    assert "nodemon" in manifest_after["devDependencies"]
    assert not (project.directory / "index.js").exists()

    tested = project.nodeops("test")
    assert "existing repo test passed" in tested.stdout
    project.nodeops("down", "--volumes")
    assert project.foreign_owned() == []


def test_foreign_dockerfile_named_in_error(make_root_project) -> None:
    project: TestProject = make_root_project("foreign")
    project.write("Dockerfile", "FROM node:24.22.3-slim\nCMD [\"node\"]\n")

    result = project.nodeops("bootstrap", "--port", str(project.port), expect=2)
    assert "has no stage named development" in result.stderr
    assert "bootstrap --force" in result.stderr
    assert "Traceback" not in result.stderr
    assert (project.directory / "Dockerfile").read_text() == "FROM node:24.22.3-slim\nCMD [\"node\"]\n"


def test_gid_already_in_image(make_shared_gid_project) -> None:
    project: TestProject = make_shared_gid_project("sharedgid")
    project.nodeops("bootstrap", "--port", str(project.port))
    override = (project.directory / "docker-compose.override.yml").read_text()
    assert 'GID: "100"' in override

    result = project.nodeops("shell", "--command", "id -u; id -g; touch made-in-container")
    assert result.stdout.split()[:2] == [str(project.user.uid), "100"]
    created = (project.directory / "made-in-container").stat()
    assert (created.st_uid, created.st_gid) == (project.user.uid, 100)
    project.nodeops("down", "--volumes")
    assert project.foreign_owned() == []


def test_broken_env_still_stops(make_root_project) -> None:
    project: TestProject = make_root_project("brokenenv")
    project.nodeops("bootstrap", "--port", str(project.port))
    project.write("src/.keep", "")
    in_subfolder = project.nodeops("shell", "--command", "pwd", subfolder="src")
    assert in_subfolder.stdout.strip() == "/srv/app/src"
    project.nodeops("up", "--detach")

    env_path = project.directory / ".env"
    env_path.write_text(env_path.read_text() + "PORT=abc\nthis is not valid\n")
    rejected = project.nodeops("test", expect=2)
    assert "invalid line" in rejected.stderr, rejected.describe()
    assert "'this is not valid'" in rejected.stderr

    # status and down go on without .env, so a broken file never strands a running app.
    status_result = project.nodeops("status")
    assert "Going on without .env" in status_result.stderr, status_result.describe()
    assert "Traceback" not in status_result.stderr
    project.nodeops("down")
    listed = subprocess.run(
        ["docker", "container", "ls", "--all", "--quiet", "--filter", f"label=com.docker.compose.project={project.name}"],
        capture_output=True, text=True, check=True,
    )
    assert listed.stdout.strip() == ""
    assert env_path.read_text().endswith("PORT=abc\nthis is not valid\n")
