"""Settings from .env: valid values load, invalid ones name the variable and the fix."""

from __future__ import annotations

from pathlib import Path

import pytest

from nodeops.errors import EXIT_USAGE, NodeopsError
from nodeops.settings import load_settings, parse_settings


def test_parse_settings_defaults() -> None:
    settings = parse_settings({"NODE_VERSION": "24.22.3"})
    assert settings.node_version == "24.22.3"
    assert settings.port == 3000
    assert settings.service == "app"
    assert settings.healthcheck_path == "/"
    assert settings.build_arg_names == ()


@pytest.mark.parametrize("version", ["lts", "latest", "24", "24.22", "v24.22.3", "24.22.3-slim", ""])
def test_node_version_must_be_pinned(version: str) -> None:
    with pytest.raises(NodeopsError) as caught:
        parse_settings({"NODE_VERSION": version})
    assert "NODE_VERSION" in caught.value.message
    assert "24.22.3" in caught.value.message
    assert caught.value.code == EXIT_USAGE


@pytest.mark.parametrize("port", ["0", "65536", "abc", "-1", "30 00"])
def test_invalid_port_rejected(port: str) -> None:
    with pytest.raises(NodeopsError) as caught:
        parse_settings({"NODE_VERSION": "24.22.3", "PORT": port})
    assert f"PORT={port!r}" in caught.value.message
    assert "1 to 65535" in caught.value.message


def test_build_arg_names_split() -> None:
    settings = parse_settings({"NODE_VERSION": "24.22.3", "PROD_BUILD_ARGS": "API_URL, RELEASE"})
    assert settings.build_arg_names == ("API_URL", "RELEASE")


def test_build_arg_names_invalid() -> None:
    with pytest.raises(NodeopsError, match="PROD_BUILD_ARGS"):
        parse_settings({"NODE_VERSION": "24.22.3", "PROD_BUILD_ARGS": "API-URL"})


def test_healthcheck_path_needs_slash() -> None:
    with pytest.raises(NodeopsError, match="HEALTHCHECK_PATH"):
        parse_settings({"NODE_VERSION": "24.22.3", "HEALTHCHECK_PATH": "health"})


def test_environment_wins_over_env_file(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    (tmp_path / ".env").write_text("NODE_VERSION=24.22.3\nPORT=3000\n")
    monkeypatch.setenv("PORT", "4000")
    assert load_settings(tmp_path).port == 4000


def test_env_file_not_interpolated(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("SECRET", raising=False)
    (tmp_path / ".env").write_text("NODE_VERSION=24.22.3\nSECRET=a${HOME}b\n")
    assert load_settings(tmp_path).value("SECRET") == "a${HOME}b"


def test_missing_env_file_names_fix(tmp_path: Path) -> None:
    with pytest.raises(NodeopsError) as caught:
        load_settings(tmp_path)
    assert "nodeops bootstrap" in caught.value.message


def test_error_names_environment(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    (tmp_path / ".env").write_text("NODE_VERSION=24.22.3\n")
    monkeypatch.setenv("NODE_VERSION", "lts")
    with pytest.raises(NodeopsError) as caught:
        load_settings(tmp_path)
    assert "in the environment" in caught.value.message
    assert str(tmp_path) not in caught.value.message


def test_unparsable_env_line(tmp_path: Path) -> None:
    (tmp_path / ".env").write_text("NODE_VERSION=24.22.3\nthis is not valid\n")
    with pytest.raises(NodeopsError) as caught:
        load_settings(tmp_path)
    assert "invalid line 2" in caught.value.message
    assert "'this is not valid'" in caught.value.message
