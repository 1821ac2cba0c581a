"""Tests of the production image: the pure helpers, then prod-build and prod-run on a real engine."""

from __future__ import annotations

import json
import re
import socket
import subprocess
import uuid
from pathlib import Path

import pytest

from nodeops.compose import Project
from nodeops.errors import NodeopsError
from nodeops.identity import HostUser
from nodeops.image_checks import dev_only_paths, is_ignored, leaked_variables
from nodeops.manifest import check_start_script
from nodeops.production import build_args, parse_platforms, validate_tag
from nodeops.production_run import EXIT_SIGTERM, run_argv, stop_verdict
from nodeops.settings import parse_settings

SERVER_WITH_HANDLER = """\
const express = require("express");

const port = Number(process.env.PORT || 3000);
const app = express();
app.get("/health", (request, response) => response.send("ok"));
const server = app.listen(port, () => console.log(`listening on port ${port}`));

process.on("SIGTERM", () => {
  console.log("shutdown: closing the server after SIGTERM");
  server.close(() => process.exit(0));
});
"""

SERVER_WITHOUT_HANDLER = """\
const express = require("express");

const port = Number(process.env.PORT || 3000);
const app = express();
app.get("/health", (request, response) => response.send("ok"));
app.listen(port, () => console.log(`listening on port ${port}`));
"""

STOP_LINE = re.compile(r"stopped\s+in ([\d.]+) s with exit code (-?\d+)")


# The pure helpers.


@pytest.mark.parametrize(
    "tag",
    ["chat", "chat:latest", "team/chat:1.2.0", "registry.example.com:5000/team/chat:v1_2"],
)
def test_validate_tag_accepts(tag: str) -> None:
    assert validate_tag(tag) == tag


@pytest.mark.parametrize("tag", ["", "Chat:latest", "chat:", "chat:-x", "chat latest", "-chat"])
def test_validate_tag_rejects(tag: str) -> None:
    with pytest.raises(NodeopsError) as raised:
        validate_tag(tag)
    assert "--tag" in raised.value.message
    assert "chat:latest" in raised.value.message


@pytest.mark.parametrize(
    "manifest",
    [
        {},
        {"scripts": {"test": "jest"}},
        {"scripts": {"start": "node index.js"}},
        {"main": "server.js", "scripts": {"start": "node ./server.js"}},
        {"main": "server.js", "scripts": {"start": "node server"}},
        {"main": "lib/app.js", "scripts": {"start": "node lib/app.js"}},
        {"scripts": {"start": "nodemon server.js"}},
        {"scripts": {"start": "node --enable-source-maps server.js"}},
        {"scripts": {"start": "node server.js && echo done"}},
    ],
)
def test_start_script_accepted(manifest: dict) -> None:
    check_start_script(manifest)


@pytest.mark.parametrize(
    ("manifest", "started"),
    [
        ({"scripts": {"start": "node server.js"}}, "server.js"),
        ({"main": "index.js", "scripts": {"start": "node src/main.js"}}, "src/main.js"),
    ],
)
def test_start_script_differs_from_main(manifest: dict, started: str) -> None:
    with pytest.raises(NodeopsError) as raised:
        check_start_script(manifest)
    message = raised.value.message
    assert "\n" not in message
    assert f'set "main": "{started}"' in message


def make_project(directory: Path, values: dict[str, str]) -> Project:
    settings = parse_settings({"NODE_VERSION": "24.22.3", **values})
    return Project(directory, settings, HostUser(1000, 1000))


def test_build_args_only_named(tmp_path: Path) -> None:
    project = make_project(
        tmp_path, {"API_URL": "https://api.example.com", "SECRET_TOKEN": "hunter22hunter22", "PROD_BUILD_ARGS": "API_URL"}
    )
    args = build_args(project, {"version": "2.1.0"})
    assert args["API_URL"] == "https://api.example.com"
    assert "SECRET_TOKEN" not in args
    assert "hunter22hunter22" not in args.values()
    assert args["VERSION"] == "2.1.0"
    assert args["NODE_VERSION"] == "24.22.3"
    assert re.match(r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ$", args["CREATED"])


def test_build_args_named_but_unset(tmp_path: Path) -> None:
    project = make_project(tmp_path, {"PROD_BUILD_ARGS": "API_URL,SENTRY_RELEASE", "API_URL": "x"})
    with pytest.raises(NodeopsError) as raised:
        build_args(project, {})
    assert "SENTRY_RELEASE" in raised.value.message
    assert "add SENTRY_RELEASE=... to .env" in raised.value.message


@pytest.mark.parametrize(
    ("path", "patterns", "ignored"),
    [
        (".env", [".env"], True),
        (".env.local", [".env.*"], True),
        ("config/.env", ["**/.env"], True),
        ("config/.env", [".env"], False),
        ("docker/dev-entrypoint.sh", ["docker"], True),
        ("coverage/lcov/index.html", ["coverage"], True),
        ("npm-debug.log.1", ["npm-debug.log*"], True),
        ("src/a.test.js", ["src/*.test.js"], True),
        ("src/deep/a.test.js", ["src/*.test.js"], False),
        ("README.md", ["*.md", "!README.md"], False),
        ("index.js", ["/index.js"], True),
        ("index.js", [".env"], False),
    ],
)
def test_is_ignored(path: str, patterns: list[str], ignored: bool) -> None:
    assert is_ignored(path, patterns) is ignored


def test_leaked_variables() -> None:
    history = "RUN |1 API_URL=https://api.example.com /bin/sh -c echo hunter22hunter22"
    values = {"API_URL": "https://api.example.com", "TOKEN": "hunter22hunter22", "SHORT": "sh", "OTHER": "not-in-there"}
    assert leaked_variables(history, values, {"API_URL"}) == ["TOKEN"]


def test_dev_only_paths_from_lock(tmp_path: Path) -> None:
    lock = {
        "lockfileVersion": 3,
        "packages": {
            "": {"name": "app"},
            "node_modules/express": {"version": "5.0.0"},
            "node_modules/typescript": {"version": "5.0.0", "dev": True},
            "node_modules/a/node_modules/b": {"version": "1.0.0", "dev": True},
            "node_modules/fsevents": {"version": "2.0.0", "devOptional": True},
        },
    }
    (tmp_path / "package-lock.json").write_text(json.dumps(lock), encoding="utf-8")
    assert dev_only_paths(tmp_path, {}) == ["node_modules/a/node_modules/b", "node_modules/typescript"]


def test_dev_only_paths_without_lock(tmp_path: Path) -> None:
    manifest = {"dependencies": {"express": "5"}, "devDependencies": {"typescript": "5", "express": "5"}}
    assert dev_only_paths(tmp_path, manifest) == ["node_modules/typescript"]


def test_parse_platforms() -> None:
    assert parse_platforms("") == []
    assert parse_platforms("linux/amd64, linux/arm64/v8") == ["linux/amd64", "linux/arm64/v8"]
    with pytest.raises(NodeopsError) as raised:
        parse_platforms("amd64")
    assert "'amd64'" in raised.value.message


def test_run_argv_like_orchestrator() -> None:
    argv = run_argv("chat:1", "chat-prod-run-1", "chat", 4000, 3000)
    assert "--init" in argv
    assert "--read-only" in argv
    assert argv[argv.index("--tmpfs") + 1] == "/tmp"
    assert argv[argv.index("--label") + 1] == "com.docker.compose.project=chat"
    assert argv[argv.index("--publish") + 1] == "127.0.0.1:4000:3000"
    assert argv[-1] == "chat:1"
    assert "--read-only" not in run_argv("chat:1", "n", "chat", 4000, 3000, read_only=False)


def test_stop_verdict() -> None:
    assert "handled SIGTERM" in stop_verdict(0.2, 0)
    assert "no SIGTERM handler" in stop_verdict(0.2, EXIT_SIGTERM)
    slow = stop_verdict(10.1, 137)
    assert "does not handle SIGTERM" in slow
    assert "process.on('SIGTERM'" in slow


# prod-build and prod-run on a real engine.


def docker(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run(["docker", *args], capture_output=True, text=True)


def set_env_line(project, name: str, value: str) -> None:
    """Replace or add ``name=value`` in the project's .env."""
    path = project.directory / ".env"
    lines = [line for line in path.read_text(encoding="utf-8").splitlines() if not line.startswith(f"{name}=")]
    lines.append(f"{name}={value}")
    project.write(".env", "\n".join(lines) + "\n")


def bootstrap_express(project, server: str) -> None:
    project.nodeops("bootstrap", "--port", str(project.port))
    project.nodeops("install", "express")
    project.write("index.js", server)
    set_env_line(project, "HEALTHCHECK_PATH", "/health")


def stop_result(output: str) -> tuple[float, int]:
    match = STOP_LINE.search(output)
    assert match, output
    return float(match.group(1)), int(match.group(2))


def in_image(tag: str, script: str) -> subprocess.CompletedProcess:
    return docker("run", "--rm", "--network", "none", "--entrypoint", "node", tag, "-e", script)


def file_contains(path: Path, needle: bytes) -> bool:
    """Search a large file for ``needle`` in chunks, including across chunk borders."""
    overlap = len(needle) - 1
    tail = b""
    with path.open("rb") as stream:
        while chunk := stream.read(8 * 1024 * 1024):
            if needle in tail + chunk:
                return True
            tail = chunk[-overlap:]
    return False


@pytest.mark.docker
def test_production_image_end_to_end(make_root_project, tmp_path: Path) -> None:
    project = make_root_project("prod")
    bootstrap_express(project, SERVER_WITH_HANDLER)
    project.nodeops("install", "--dev", "typescript")
    secret = f"secret-{uuid.uuid4().hex}"
    set_env_line(project, "SECRET_TOKEN", secret)
    project.write(".env.local", f"LOCAL_TOKEN={secret}\n")
    tag = f"{project.name}:test"
    project.extra_images.append(tag)

    # The build goes through compose's BuildKit, with or without buildx.
    built = project.nodeops("prod-build", "--tag", tag)
    summary = built.stdout
    assert f"image    {tag}" in summary, built.describe()
    assert "base     node:24.22.3-slim" in summary, built.describe()
    assert "added    " in summary, built.describe()
    assert "FAILED" not in summary, built.describe()
    assert summary.count("checked  ") == 5, built.describe()

    # The image configuration an orchestrator reads.
    config = json.loads(docker("image", "inspect", tag).stdout)[0]["Config"]
    assert config["User"] == "node"
    assert config["Cmd"] == ["node", "."]
    assert config["Healthcheck"]["Test"][:2] == ["CMD", "node"]
    assert config["Labels"]["org.opencontainers.image.version"] == "1.0.0"
    assert config["Labels"]["org.opencontainers.image.created"] != "unknown"
    assert "org.opencontainers.image.revision" in config["Labels"]

    # devDependencies absent, express present.
    typescript = in_image(tag, "require.resolve('typescript')")
    assert typescript.returncode != 0, typescript.stdout
    express = in_image(tag, "require.resolve('express')")
    assert express.returncode == 0, express.stderr

    # The runtime user is not root and cannot change the app.
    uid = in_image(tag, "console.log(process.getuid())")
    assert uid.stdout.strip() not in ("", "0"), uid.stderr
    write = in_image(tag, "require('fs').writeFileSync('/srv/app/index.js', 'changed')")
    assert write.returncode != 0
    assert "EACCES" in write.stderr
    create = in_image(tag, "require('fs').writeFileSync('/srv/app/new.js', 'x')")
    assert create.returncode != 0
    modules = in_image(tag, "require('fs').writeFileSync('/srv/app/node_modules/express/index.js', 'x')")
    assert modules.returncode != 0

    # The secret is in neither the history nor the filesystem.
    history = docker("image", "history", "--no-trunc", tag)
    assert history.returncode == 0, history.stderr
    assert secret not in history.stdout
    container = docker("create", "--label", f"com.docker.compose.project={project.name}", tag).stdout.strip()
    archive = tmp_path / "image.tar"
    exported = docker("export", "--output", str(archive), container)
    assert exported.returncode == 0, exported.stderr
    assert archive.stat().st_size > 10_000_000
    assert not file_contains(archive, secret.encode())
    listing = in_image(tag, "console.log(require('fs').readdirSync('/srv/app').join('\\n'))").stdout.split()
    assert ".env" not in listing
    assert ".env.local" not in listing
    assert "index.js" in listing

    # Healthy, then a quick and clean stop through the app's own handler.
    run = project.nodeops("prod-run", "--tag", tag)
    assert re.search(r"healthy\s+after", run.stdout), run.describe()
    assert "GET /health: HTTP 200" in run.stdout, run.describe()
    seconds, code = stop_result(run.stdout)
    assert seconds < 2, run.describe()
    assert code == 0, run.describe()
    assert "shutdown: closing the server after SIGTERM" in run.stdout, run.describe()
    assert "handled SIGTERM" in run.stdout, run.describe()
    leftovers = docker("container", "ls", "--all", "--quiet", "--filter", f"name={project.name}-prod-run")
    assert leftovers.stdout.strip() == ""


@pytest.mark.docker
def test_app_without_handler_stops_fast(make_root_project) -> None:
    project = make_root_project("prodnh")
    bootstrap_express(project, SERVER_WITHOUT_HANDLER)
    tag = f"{project.name}:test"
    project.extra_images.append(tag)

    project.nodeops("prod-build", "--tag", tag)
    run = project.nodeops("prod-run", "--tag", tag)

    seconds, code = stop_result(run.stdout)
    assert seconds < 2, run.describe()
    assert code == EXIT_SIGTERM, run.describe()
    assert "no SIGTERM handler" in run.stdout, run.describe()

    # A host port already in use fails with the fix, and leaves no container behind.
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        busy = project.nodeops("prod-run", "--tag", tag, "--port", str(port), expect=1)
    assert f"choose another --port than {port}" in busy.stderr, busy.describe()
    assert "Traceback" not in busy.stderr
    leftovers = docker("container", "ls", "--all", "--quiet", "--filter", f"name={project.name}-prod-run")
    assert leftovers.stdout.strip() == ""


@pytest.mark.docker
def test_prod_build_rejects_bad_input(make_root_project) -> None:
    project = make_root_project("prodbad")
    project.nodeops("bootstrap", "--port", str(project.port))
    tag = f"{project.name}:test"

    manifest = json.loads((project.directory / "package.json").read_text(encoding="utf-8"))
    manifest["scripts"]["start"] = "node server.js"
    project.write("package.json", json.dumps(manifest, indent=2) + "\n")
    mismatch = project.nodeops("prod-build", "--tag", tag, expect=2)
    assert 'set "main": "server.js"' in mismatch.stderr, mismatch.describe()
    assert "Traceback" not in mismatch.stderr

    bad_tag = project.nodeops("prod-build", "--tag", "Not Valid", expect=2)
    assert "invalid --tag 'Not Valid'" in bad_tag.stderr, bad_tag.describe()

    missing = project.nodeops("prod-run", "--tag", "nodeops-absent-image:1", expect=2)
    assert "image nodeops-absent-image:1 not found" in missing.stderr, missing.describe()
    assert docker("image", "inspect", tag).returncode != 0


@pytest.mark.docker
def test_push_without_buildx(make_root_project) -> None:
    if docker("buildx", "version").returncode == 0:
        pytest.skip("docker buildx is installed, so --push would really push")
    project = make_root_project("prodpush")
    project.nodeops("bootstrap", "--port", str(project.port))
    tag = f"{project.name}:test"

    for option in (["--push"], ["--platform", "linux/arm64"]):
        result = project.nodeops("prod-build", "--tag", tag, *option, expect=3)
        lines = result.stderr.strip().splitlines()
        assert len(lines) == 1, result.describe()
        assert f"{option[0]} needs docker buildx" in lines[0], result.describe()
        assert "docker-buildx-plugin" in lines[0], result.describe()


def test_history_check_skips_nodeops_settings() -> None:
    from nodeops.image_checks import NODEOPS_VARIABLES

    # The healthcheck itself requests 127.0.0.1, the default BIND_ADDRESS.
    history = "HEALTHCHECK CMD [\"node\" \"-e\" \"fetch('http://127.0.0.1:' + process.env.PORT)\"]"
    assert leaked_variables(history, {"BIND_ADDRESS": "127.0.0.1"}, set(NODEOPS_VARIABLES)) == []
    assert leaked_variables(history, {"SECRET_HOST": "127.0.0.1"}, set(NODEOPS_VARIABLES)) == ["SECRET_HOST"]
