"""The one exception nodeops raises for expected failures, and its exit codes."""

#: A container command, docker or npm failed (or the app's own tests failed).
EXIT_FAILURE = 1
#: Bad input: an invalid setting, option or project state. Nothing was changed.
EXIT_USAGE = 2
#: Docker is missing, its daemon is not reachable, or compose v2 is missing.
EXIT_DOCKER = 3
#: Interrupted with Ctrl-C, as shells report SIGINT.
EXIT_INTERRUPTED = 130


class NodeopsError(Exception):
    """An expected failure: a one-line message naming the value and the fix.

    Library modules raise it; the task layer turns it into a message on stderr
    and the exit code it carries, with no traceback.
    """

    def __init__(self, message: str, code: int = EXIT_USAGE) -> None:
        super().__init__(message)
        self.message = message
        self.code = code
