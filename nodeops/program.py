"""The ``nodeops`` command: the task collection as a standalone program."""

from __future__ import annotations

from invoke import Exit, ParseError, Program

from . import __version__
from .errors import EXIT_USAGE
from .tasks import ns


def merge_install_words(words: list[str]) -> list[str]:
    """Join the package names after ``install`` into its one positional argument.

    npm users type ``nodeops install express socket.io``. Invoke would read
    the second name as another task, so the names become one comma-separated
    argument (install splits on commas). Options such as ``--dev`` stay as
    they are, and ``--`` ends the rewrite.
    """
    if "install" not in words:
        return words
    start = words.index("install") + 1
    end = words.index("--", start) if "--" in words[start:] else len(words)
    options = [word for word in words[start:end] if word.startswith("-")]
    names = [word for word in words[start:end] if not word.startswith("-")]
    if len(names) < 2:
        return words
    return [*words[:start], *options, ",".join(names), *words[end:]]


class NodeopsProgram(Program):
    """Invoke's program with nodeops' exit codes for usage errors, and npm-style install."""

    def parse_tasks(self) -> None:
        self.core.unparsed = merge_install_words(list(self.core.unparsed))
        try:
            super().parse_tasks()
        except ParseError as error:
            raise Exit(
                f"nodeops: {str(error).rstrip('!.')}. Run 'nodeops --list' for the tasks,"
                " or 'nodeops --help TASK' for a task's options.",
                EXIT_USAGE,
            ) from None


program = NodeopsProgram(name="nodeops", binary="nodeops", namespace=ns, version=__version__)


def main() -> None:
    program.run()
