"""Filesystem access that never follows a symlink: every name is opened relative to
its parent's descriptor with ``O_NOFOLLOW``, so a folder swapped for a symlink (at
any moment) makes the open fail instead of leading out of the workspace."""

from __future__ import annotations

import os
import stat
from pathlib import Path

_NOFOLLOW = getattr(os, "O_NOFOLLOW", 0)
_CLOEXEC = getattr(os, "O_CLOEXEC", 0)
DIR_FLAGS = os.O_RDONLY | getattr(os, "O_DIRECTORY", 0) | _NOFOLLOW | _CLOEXEC
# O_NONBLOCK: a FIFO swapped in for a file must not block the open
FILE_FLAGS = os.O_RDONLY | _NOFOLLOW | _CLOEXEC | getattr(os, "O_NONBLOCK", 0)


def open_beneath(root: Path, rel: str, *, directory: bool = True) -> int:
    """A descriptor for ``root/rel``, opened one name at a time from the root without
    following any symlink on the way. Raises OSError (ELOOP, ENOTDIR...) when a name
    on the way is a symlink or missing. The caller closes it."""
    names = [n for n in rel.split("/") if n not in ("", ".")]
    if ".." in names:
        raise ValueError(f"not a path below the root: {rel!r}")
    fd = os.open(root, DIR_FLAGS)
    try:
        for i, name in enumerate(names):
            last = i == len(names) - 1
            nfd = os.open(name, FILE_FLAGS if last and not directory else DIR_FLAGS, dir_fd=fd)
            os.close(fd)
            fd = nfd
    except BaseException:
        os.close(fd)
        raise
    return fd


def read_beneath(root: Path, rel: str, limit: int | None = None) -> bytes | None:
    """The bytes of the regular file ``root/rel`` (see ``open_beneath``), or None."""
    try:
        fd = open_beneath(root, rel, directory=False)
    except (OSError, ValueError):
        return None
    try:
        if not stat.S_ISREG(os.fstat(fd).st_mode):
            return None
        with os.fdopen(fd, "rb", closefd=False) as f:
            return f.read() if limit is None else f.read(limit)
    except OSError:
        return None
    finally:
        os.close(fd)


class RealDirs:
    """Whether every folder from the root down to a workspace-relative name is a real
    folder (not a symlink) now. One ``lstat`` per folder, remembered."""

    def __init__(self, root: Path) -> None:
        self.base = str(root) + "/"
        self._known: dict[str, bool] = {"": True, ".": True}

    def folder(self, rel: str) -> bool:
        known = self._known.get(rel)
        if known is None:
            known = self.folder(rel.rpartition("/")[0])
            if known:
                try:
                    known = stat.S_ISDIR(os.lstat(self.base + rel).st_mode)
                except (OSError, ValueError):
                    known = False
            self._known[rel] = known
        return known

    def holds(self, name: str) -> bool:
        """``name``'s folders are all real (its own kind is not checked)."""
        return self.folder(name.rpartition("/")[0])

    def is_link(self, name: str) -> bool:
        """``name`` itself is a symlink now (or cannot be looked at)."""
        try:
            return stat.S_ISLNK(os.lstat(self.base + name).st_mode)
        except FileNotFoundError:
            return False  # gone since: it was a file inside when it was listed
        except (OSError, ValueError):
            return True
