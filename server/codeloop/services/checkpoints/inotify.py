"""A minimal inotify watcher over ctypes (Linux). One watch per tracked folder.

``drain()`` reads the events queued since the last call, without blocking, and says
which paths may have changed. The kernel queues an event as part of the system call that
changed the file, so once a command has exited, every change it made is in the queue:
draining then is exact. What inotify cannot see (writes through ``mmap``, network file
systems changed elsewhere) is caught by the occasional full walk; a queue overflow is
reported (``overflow``) and the caller walks the tree instead.
"""

from __future__ import annotations

import ctypes
import ctypes.util
import errno
import logging
import os
import struct
import sys
from dataclasses import dataclass, field

log = logging.getLogger(__name__)

IN_MODIFY = 0x00000002
IN_ATTRIB = 0x00000004
IN_CLOSE_WRITE = 0x00000008
IN_MOVED_FROM = 0x00000040
IN_MOVED_TO = 0x00000080
IN_CREATE = 0x00000100
IN_DELETE = 0x00000200
IN_DELETE_SELF = 0x00000400
IN_MOVE_SELF = 0x00000800
IN_UNMOUNT = 0x00002000
IN_Q_OVERFLOW = 0x00004000
IN_IGNORED = 0x00008000
IN_ONLYDIR = 0x01000000
IN_DONT_FOLLOW = 0x02000000
IN_EXCL_UNLINK = 0x04000000
IN_ISDIR = 0x40000000
IN_NONBLOCK = 0o4000
IN_CLOEXEC = 0o2000000

MASK = (
    IN_MODIFY | IN_ATTRIB | IN_CLOSE_WRITE | IN_MOVED_FROM | IN_MOVED_TO | IN_CREATE | IN_DELETE
    | IN_DELETE_SELF | IN_MOVE_SELF | IN_ONLYDIR | IN_DONT_FOLLOW | IN_EXCL_UNLINK
)
_HEADER = struct.Struct("iIII")


class WatcherUnavailable(OSError):
    pass


class WatchLimit(OSError):
    """The per-user limit of watches (fs.inotify.max_user_watches) is reached."""


@dataclass
class Batch:
    """What changed since the last drain: ``files`` (relative paths, maybe changed),
    ``dirs_new`` (folders created or moved in: walk them), ``dirs_gone`` (folders deleted or
    moved away: everything under them may be gone), ``overflow``/``lost_root`` (walk all)."""

    files: set[str] = field(default_factory=set)
    dirs_new: list[str] = field(default_factory=list)
    dirs_gone: list[str] = field(default_factory=list)
    overflow: bool = False
    lost_root: bool = False

    def empty(self) -> bool:
        return not (self.files or self.dirs_new or self.dirs_gone or self.overflow or self.lost_root)


def _libc() -> ctypes.CDLL:
    name = ctypes.util.find_library("c") or "libc.so.6"
    libc = ctypes.CDLL(name, use_errno=True)
    libc.inotify_init1.argtypes = [ctypes.c_int]
    libc.inotify_init1.restype = ctypes.c_int
    libc.inotify_add_watch.argtypes = [ctypes.c_int, ctypes.c_char_p, ctypes.c_uint32]
    libc.inotify_add_watch.restype = ctypes.c_int
    libc.inotify_rm_watch.argtypes = [ctypes.c_int, ctypes.c_int]
    libc.inotify_rm_watch.restype = ctypes.c_int
    return libc


class Watcher:
    """Watches folders (given as absolute path and root-relative name, "" for the root)."""

    def __init__(self) -> None:
        if not sys.platform.startswith("linux"):
            raise WatcherUnavailable("inotify is Linux only")
        try:
            self._c = _libc()
        except (OSError, AttributeError) as e:
            raise WatcherUnavailable(f"no inotify in libc: {e}") from None
        fd = self._c.inotify_init1(IN_NONBLOCK | IN_CLOEXEC)
        if fd < 0:
            err = ctypes.get_errno()
            raise WatcherUnavailable(err, f"inotify_init1: {os.strerror(err)}")
        self.fd = fd
        self._wd_dir: dict[int, str] = {}  # watch -> folder (relative)
        self._dir_wd: dict[str, int] = {}

    @property
    def count(self) -> int:
        return len(self._dir_wd)

    def add(self, abs_dir: str, rel_dir: str) -> None:
        """Watch a folder. Raises WatchLimit at the per-user limit, OSError if it is gone."""
        wd = self._c.inotify_add_watch(self.fd, os.fsencode(abs_dir), MASK)
        if wd < 0:
            err = ctypes.get_errno()
            if err == errno.ENOSPC:
                raise WatchLimit(err, "the inotify watch limit (fs.inotify.max_user_watches) is reached")
            raise OSError(err, f"inotify_add_watch {abs_dir}: {os.strerror(err)}")
        old = self._wd_dir.get(wd)
        if old is not None and old != rel_dir:
            self._dir_wd.pop(old, None)  # the same folder under a new name (moved)
        self._wd_dir[wd] = rel_dir
        self._dir_wd[rel_dir] = wd

    def watching(self, rel_dir: str) -> bool:
        return rel_dir in self._dir_wd

    def watched(self) -> list[str]:
        return list(self._dir_wd)

    def forget(self, rel_dir: str) -> None:
        """Stop watching a folder and every folder below it."""
        prefix = rel_dir + "/" if rel_dir else ""
        for d in [d for d in self._dir_wd if d == rel_dir or d.startswith(prefix)]:
            wd = self._dir_wd.pop(d)
            self._wd_dir.pop(wd, None)
            self._c.inotify_rm_watch(self.fd, wd)  # fails harmlessly if the folder is gone

    def drain(self) -> Batch:
        batch = Batch()
        while True:
            try:
                buf = os.read(self.fd, 1 << 20)
            except BlockingIOError:
                break
            except InterruptedError:
                continue
            if not buf:
                break
            self._parse(buf, batch)
        return batch

    def _parse(self, buf: bytes, batch: Batch) -> None:
        pos = 0
        n = len(buf)
        while pos + _HEADER.size <= n:
            wd, mask, _cookie, length = _HEADER.unpack_from(buf, pos)
            pos += _HEADER.size
            name = os.fsdecode(buf[pos : pos + length].rstrip(b"\0"))
            pos += length
            if mask & IN_Q_OVERFLOW:
                batch.overflow = True
                continue
            folder = self._wd_dir.get(wd)
            if mask & IN_IGNORED:
                if folder is not None and self._dir_wd.get(folder) == wd:
                    self._dir_wd.pop(folder, None)
                self._wd_dir.pop(wd, None)
                continue
            if folder is None:
                continue  # a folder we stopped watching
            if mask & (IN_DELETE_SELF | IN_MOVE_SELF | IN_UNMOUNT):
                if folder == "":
                    batch.lost_root = True
                continue  # the parent's event (IN_DELETE/IN_MOVED_FROM with IN_ISDIR) covers it
            if not name:
                continue
            rel = f"{folder}/{name}" if folder else name
            if mask & IN_ISDIR:
                if mask & (IN_CREATE | IN_MOVED_TO):
                    batch.dirs_new.append(rel)
                elif mask & (IN_DELETE | IN_MOVED_FROM):
                    batch.dirs_gone.append(rel)
                continue
            batch.files.add(rel)

    def close(self) -> None:
        if self.fd >= 0:
            try:
                os.close(self.fd)
            except OSError:
                pass
            self.fd = -1
        self._wd_dir.clear()
        self._dir_wd.clear()
