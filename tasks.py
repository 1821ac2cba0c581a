"""This repository's tasks: the nodeops collection, extended as a Node repo would.

In a Node repo, the first two statements below are all a tasks.py needs for
``inv up``, ``inv install express`` and the rest; add your own tasks after.
"""

import shlex
import sys
from pathlib import Path

from invoke import Collection, Context, task

from nodeops import tasks as nodeops_tasks

ns = Collection.from_module(nodeops_tasks)


@task
def selftest(c: Context) -> None:
    """Run nodeops' own test suite (needs a Docker engine)."""
    # The pytest script, not "python -m pytest": that form puts this folder
    # first on sys.path, and its nodeops folder lacks the packaged templates.
    pytest = Path(sys.executable).parent / "pytest"
    c.run(shlex.join([str(pytest), "-ra"]), pty=False)


ns.add_task(selftest)
