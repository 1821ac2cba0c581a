"""The host user whose uid and gid the container's node user takes."""

from __future__ import annotations

import os
from dataclasses import dataclass

#: The uid and gid of the node user in the official node images.
IMAGE_NODE_ID = 1000


@dataclass(frozen=True)
class HostUser:
    """The user running nodeops, and how containers act on its files."""

    uid: int
    gid: int

    @property
    def is_root(self) -> bool:
        return self.uid == 0

    @property
    def node_ids(self) -> tuple[int, int]:
        """Return the uid and gid the image gives its node user.

        The node user takes the host ids, so files it writes through the bind
        mount belong to the host user. Root is the exception: the app must
        never run as uid 0, so node keeps the image's 1000:1000.
        """
        if self.is_root:
            return IMAGE_NODE_ID, IMAGE_NODE_ID
        return self.uid, self.gid

    @property
    def project_writer(self) -> str | None:
        """Return the container user for commands that write project files.

        Those commands (npm init, npm install --save) must create files the
        host user owns. A non-root host user already is the container's node
        user, so None keeps the image's user. A root host user is root in the
        container too, because node could not write a folder that root owns.
        """
        return "root" if self.is_root else None


def current_host_user() -> HostUser:
    return HostUser(uid=os.getuid(), gid=os.getgid())
