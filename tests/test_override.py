"""The override file: host ids, root handling, and never clobbering the user's own file."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from nodeops.compose import normalize_project_name, resolve_project_name
from nodeops.errors import NodeopsError
from nodeops.files import write_atomic
from nodeops.identity import HostUser
from nodeops.override import MARKER, override_path, render_override, write_override


def test_override_uses_host_ids() -> None:
    text = render_override("app", HostUser(1234, 1234), "abc")
    assert text.startswith(MARKER)
    assert 'UID: "1234"' in text
    assert 'GID: "1234"' in text
    assert 'dev.nodeops.inputs: "abc"' in text


def test_override_root_keeps_node_ids() -> None:
    text = render_override("app", HostUser(0, 0), "abc")
    assert 'UID: "1000"' in text
    assert 'GID: "1000"' in text


def test_override_existing_gid() -> None:
    # macOS users are often uid 501 in group 20, a gid the Debian image already has.
    text = render_override("web", HostUser(501, 20), "abc")
    assert "  web:\n" in text
    assert 'GID: "20"' in text


def test_root_writes_project_files_as_root() -> None:
    assert HostUser(0, 0).project_writer == "root"
    assert HostUser(1234, 1234).project_writer is None


def test_override_path_pairs_compose_file() -> None:
    assert override_path(Path("/p/docker-compose.yml")).name == "docker-compose.override.yml"
    assert override_path(Path("/p/compose.yaml")).name == "compose.override.yaml"


def test_write_override_skips_unchanged(tmp_path: Path) -> None:
    path = tmp_path / "docker-compose.override.yml"
    content = render_override("app", HostUser(1234, 1234), "abc")
    assert write_override(path, content) is True
    assert write_override(path, content) is False


def test_write_override_keeps_user_file(tmp_path: Path) -> None:
    path = tmp_path / "docker-compose.override.yml"
    path.write_text("services:\n  app:\n    ports: ['9229:9229']\n")
    with pytest.raises(NodeopsError, match="not written by nodeops"):
        write_override(path, render_override("app", HostUser(1234, 1234), "abc"))
    assert path.read_text() == "services:\n  app:\n    ports: ['9229:9229']\n"


def test_write_atomic_keeps_mode(tmp_path: Path) -> None:
    path = tmp_path / "script.sh"
    path.write_text("old")
    os.chmod(path, 0o750)
    write_atomic(path, "new")
    assert path.read_text() == "new"
    assert path.stat().st_mode & 0o777 == 0o750
    assert [entry.name for entry in tmp_path.iterdir()] == ["script.sh"]


@pytest.mark.parametrize(
    ("raw", "expected"),
    [("My App", "myapp"), ("chat.v2", "chatv2"), ("_x-Y_1", "x-y_1")],
)
def test_normalize_project_name(raw: str, expected: str) -> None:
    assert normalize_project_name(raw) == expected


def test_project_name_precedence(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("COMPOSE_PROJECT_NAME", raising=False)
    project = tmp_path / "Chat_App"
    project.mkdir()
    compose = project / "docker-compose.yml"
    compose.write_text("services: {}\n")
    assert resolve_project_name(project, compose) == "chat_app"
    compose.write_text("name: fromfile\nservices: {}\n")
    assert resolve_project_name(project, compose) == "fromfile"
    (project / ".env").write_text("COMPOSE_PROJECT_NAME=fromenvfile\n")
    assert resolve_project_name(project, compose) == "fromenvfile"
    monkeypatch.setenv("COMPOSE_PROJECT_NAME", "fromshell")
    assert resolve_project_name(project, compose) == "fromshell"
