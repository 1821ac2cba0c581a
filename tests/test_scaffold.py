"""Bootstrap's file writing: missing files are created, the user's files are kept."""

from __future__ import annotations

from pathlib import Path

import pytest

from nodeops.errors import NodeopsError
from nodeops.scaffold import set_env_values, write_project_files
from nodeops.tasks import parse_packages


def test_empty_folder_gets_every_file(tmp_path: Path) -> None:
    write_project_files(tmp_path, "24.22.3", 3000, force=False)
    for name in ("Dockerfile", "docker-compose.yml", ".dockerignore", ".env", ".env.example",
                 ".gitignore", "docker/dev-entrypoint.sh"):
        assert (tmp_path / name).is_file(), name
    assert "ARG NODE_VERSION=24.22.3" in (tmp_path / "Dockerfile").read_text()
    assert "NODE_VERSION=24.22.3\n" in (tmp_path / ".env").read_text()
    assert (tmp_path / "docker/dev-entrypoint.sh").stat().st_mode & 0o111
    ignored = (tmp_path / ".gitignore").read_text().splitlines()
    assert ignored == ["node_modules/", ".env", "docker-compose.override.yml"]


def test_user_files_kept_without_force(tmp_path: Path) -> None:
    (tmp_path / "Dockerfile").write_text("FROM scratch\n")
    report = write_project_files(tmp_path, "24.22.3", 3000, force=False)
    assert "kept Dockerfile" in report
    assert (tmp_path / "Dockerfile").read_text() == "FROM scratch\n"


def test_force_replaces_user_files(tmp_path: Path) -> None:
    (tmp_path / "Dockerfile").write_text("FROM scratch\n")
    report = write_project_files(tmp_path, "24.22.3", 3000, force=True)
    assert "replaced Dockerfile" in report
    assert "AS development" in (tmp_path / "Dockerfile").read_text()


def test_existing_compose_yaml_kept(tmp_path: Path) -> None:
    (tmp_path / "compose.yaml").write_text("services: {}\n")
    write_project_files(tmp_path, "24.22.3", 3000, force=False)
    assert not (tmp_path / "docker-compose.yml").exists()
    assert "compose.override.yaml" in (tmp_path / ".gitignore").read_text()


def test_gitignore_and_env_only_grow(tmp_path: Path) -> None:
    (tmp_path / ".gitignore").write_text("dist\nnode_modules")
    (tmp_path / ".env").write_text("PORT=4000\n")
    write_project_files(tmp_path, "24.22.3", 3000, force=True)
    assert (tmp_path / ".gitignore").read_text() == "dist\nnode_modules\n.env\ndocker-compose.override.yml\n"
    assert (tmp_path / ".env").read_text() == "PORT=4000\nNODE_VERSION=24.22.3\n"


@pytest.mark.parametrize(("version", "port"), [("lts", 3000), ("24.22.3", 0), ("24.22.3", 70000)])
def test_bad_options_write_nothing(tmp_path: Path, version: str, port: int) -> None:
    with pytest.raises(NodeopsError):
        write_project_files(tmp_path, version, port, force=False)
    assert list(tmp_path.iterdir()) == []


def test_parse_packages_splits() -> None:
    assert parse_packages("express socket.io") == ["express", "socket.io"]
    assert parse_packages("express,@types/node@^22") == ["express", "@types/node@^22"]


@pytest.mark.parametrize("raw", ["", " , ", "--save", "express -g"])
def test_parse_packages_rejects(raw: str) -> None:
    with pytest.raises(NodeopsError):
        parse_packages(raw)


def test_set_env_values_keeps_lines(tmp_path: Path) -> None:
    path = tmp_path / ".env"
    path.write_text("PORT=80\n# the team's comment\nexport NODE_VERSION=22.1.0\nAPI_URL=x\n")
    set_env_values(path, {"PORT": "3302", "NODE_VERSION": "24.22.3"})
    assert path.read_text() == "PORT=3302\n# the team's comment\nexport NODE_VERSION=24.22.3\nAPI_URL=x\n"
