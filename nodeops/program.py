"""The ``nodeops`` command: the task collection as a standalone program."""

from __future__ import annotations

from invoke import Program

from . import __version__
from .tasks import ns

program = Program(name="nodeops", binary="nodeops", namespace=ns, version=__version__)


def main() -> None:
    program.run()
