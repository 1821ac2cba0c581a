"""Project settings from ``.env``, the same file compose reads."""

from __future__ import annotations

import os
import re
from dataclasses import dataclass
from pathlib import Path

from .errors import NodeopsError

ENV_FILE = ".env"
ENV_EXAMPLE_FILE = ".env.example"

#: The node version bootstrap pins when none is given.
DEFAULT_NODE_VERSION = "24.22.3"
DEFAULT_PORT = 3000
DEFAULT_SERVICE = "app"
DEFAULT_HEALTHCHECK_PATH = "/"

_PINNED_VERSION = re.compile(r"^\d+\.\d+\.\d+$")
_SERVICE_NAME = re.compile(r"^[a-zA-Z0-9][a-zA-Z0-9_.-]*$")
_VARIABLE_NAME = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")


@dataclass(frozen=True)
class Settings:
    """Validated settings of one project."""

    node_version: str = DEFAULT_NODE_VERSION
    port: int = DEFAULT_PORT
    service: str = DEFAULT_SERVICE
    healthcheck_path: str = DEFAULT_HEALTHCHECK_PATH
    #: Names of variables passed to the production build as build arguments.
    build_arg_names: tuple[str, ...] = ()
    #: Every variable of .env and the environment, for the named build args.
    values: tuple[tuple[str, str], ...] = ()

    def value(self, name: str) -> str | None:
        return dict(self.values).get(name)


def read_env_file(path: Path, strict: bool = False) -> dict[str, str]:
    """Read the raw values of a dotenv file, without expanding ``${VAR}`` references.

    Compose interpolates the file itself, so nodeops reads the raw values.
    With ``strict``, a line that is not ``KEY=value``, which compose rejects,
    raises a `NodeopsError`; otherwise it is skipped.
    """
    # python-dotenv's parser, which dotenv_values uses too: it reports the
    # line of each invalid statement, so one pass both checks and reads.
    from dotenv.parser import parse_stream

    values = {}
    with path.open(encoding="utf-8") as stream:
        for binding in parse_stream(stream):
            if binding.error:
                if strict:
                    line = binding.original.string.strip()
                    raise NodeopsError(
                        f"invalid line {binding.original.line} in {path}: {line!r} is not"
                        " KEY=value; fix it or remove it"
                    )
                continue
            if binding.key is not None and binding.value is not None:
                values[binding.key] = binding.value
    return values


def load_settings(project: Path) -> Settings:
    """Load and validate the settings of the project in ``project``.

    As in compose, a variable set in the environment wins over ``.env``.
    """
    env_path = project / ENV_FILE
    if not env_path.is_file():
        raise NodeopsError(
            f"{env_path} is missing: run 'nodeops bootstrap' to create it,"
            f" or copy {ENV_EXAMPLE_FILE} to {ENV_FILE}"
        )
    values = read_env_file(env_path, strict=True)
    values.update(os.environ)
    return parse_settings(values, source=str(env_path), from_environment=set(os.environ))


def parse_settings(
    values: dict[str, str], source: str = ENV_FILE, from_environment: set[str] | None = None
) -> Settings:
    """Validate raw variables into `Settings`.

    Errors name ``source`` as the origin of a value, or the environment for
    the names in ``from_environment``, so the user edits the right place.
    """
    shell = from_environment or set()

    def origin(name: str) -> str:
        return "the environment" if name in shell else source

    node_version = values.get("NODE_VERSION", "").strip()
    if not node_version:
        raise NodeopsError(
            f"NODE_VERSION is not set in {origin('NODE_VERSION')}: pin a full version,"
            f" for example NODE_VERSION={DEFAULT_NODE_VERSION}"
        )
    validate_node_version(node_version, origin("NODE_VERSION"))

    return Settings(
        node_version=node_version,
        port=parse_port(values.get("PORT", str(DEFAULT_PORT)), origin("PORT")),
        service=_parse_service(values.get("NODEOPS_SERVICE", DEFAULT_SERVICE), origin("NODEOPS_SERVICE")),
        healthcheck_path=_parse_healthcheck_path(
            values.get("HEALTHCHECK_PATH", DEFAULT_HEALTHCHECK_PATH), origin("HEALTHCHECK_PATH")
        ),
        build_arg_names=_parse_build_arg_names(
            values.get("PROD_BUILD_ARGS", ""), origin("PROD_BUILD_ARGS")
        ),
        values=tuple(sorted(values.items())),
    )


def validate_node_version(version: str, source: str = ENV_FILE) -> str:
    """Accept only a full ``MAJOR.MINOR.PATCH`` version, never a floating tag."""
    if not _PINNED_VERSION.match(version):
        raise NodeopsError(
            f"invalid NODE_VERSION={version!r} in {source}: pin a full MAJOR.MINOR.PATCH"
            f" version such as {DEFAULT_NODE_VERSION}, with no 'v' or suffix; floating tags"
            " like 'lts', 'latest' or '24' are not allowed"
        )
    return version


def parse_port(raw: str, source: str = ENV_FILE) -> int:
    """Parse a TCP port number from 1 to 65535."""
    text = raw.strip()
    if not text.isdigit() or not 1 <= int(text) <= 65535:
        raise NodeopsError(
            f"invalid PORT={raw!r} in {source}: set a whole number from 1 to 65535,"
            f" for example PORT={DEFAULT_PORT}"
        )
    return int(text)


def _parse_service(raw: str, source: str) -> str:
    name = raw.strip()
    if not _SERVICE_NAME.match(name):
        raise NodeopsError(
            f"invalid NODEOPS_SERVICE={raw!r} in {source}: name the compose service,"
            f" for example NODEOPS_SERVICE={DEFAULT_SERVICE}"
        )
    return name


def _parse_healthcheck_path(raw: str, source: str) -> str:
    path = raw.strip()
    if not path.startswith("/") or any(char.isspace() for char in path):
        raise NodeopsError(
            f"invalid HEALTHCHECK_PATH={raw!r} in {source}: set a URL path that"
            " starts with '/', for example HEALTHCHECK_PATH=/health"
        )
    return path


def _parse_build_arg_names(raw: str, source: str) -> tuple[str, ...]:
    names = tuple(name for name in re.split(r"[\s,]+", raw.strip()) if name)
    for name in names:
        if not _VARIABLE_NAME.match(name):
            raise NodeopsError(
                f"invalid name {name!r} in PROD_BUILD_ARGS in {source}: list variable"
                " names separated by commas, for example PROD_BUILD_ARGS=API_URL,SENTRY_RELEASE"
            )
    return names
