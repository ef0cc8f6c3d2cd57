"""Holding a sandboxed command's process count (against fork bombs).

RLIMIT_NPROC counts the tasks of a real uid, and the kernel never applies it to root (the
initial user, whatever the capabilities). So:

- not root, in a user namespace (bubblewrap): the count is per user namespace, so an
  RLIMIT_NPROC set *inside* the sandbox counts only the sandbox's own tasks ("rlimit-userns");
- not root, no namespace (Landlock): RLIMIT_NPROC = the uid's current tasks + the limit, set in
  the child ("rlimit", approximate: the user's other processes share the count);
- root: a pids cgroup per command (cgroup v1 ``pids`` or v2 with the pids controller), when the
  cgroup filesystem is writable ("cgroup"); otherwise nothing holds ("none", and we say so).
"""

from __future__ import annotations

import itertools
import logging
import os
import signal
import time
from dataclasses import dataclass
from pathlib import Path

log = logging.getLogger(__name__)

PREFIX = "codeloop-sandbox-"
_COUNTER = itertools.count(1)  # shared by every manager of this process: names never collide


def _pids_hierarchy() -> tuple[str, Path] | None:
    """("v1" | "v2", the directory under which our command cgroups can go)."""
    try:
        mountinfo = Path("/proc/self/mountinfo").read_text()
        own = Path("/proc/self/cgroup").read_text()
    except OSError:
        return None
    v1_path = v2_path = None
    for line in own.splitlines():
        parts = line.split(":", 2)
        if len(parts) != 3:
            continue
        if "pids" in parts[1].split(","):
            v1_path = parts[2]
        elif parts[0] == "0" and parts[1] == "":
            v2_path = parts[2]
    for line in mountinfo.splitlines():
        left, _, right = line.partition(" - ")
        fields, rfields = left.split(), right.split()
        if len(fields) < 5 or len(rfields) < 3:
            continue
        mnt, fstype, super_opts = fields[4], rfields[0], rfields[2]
        if fstype == "cgroup" and "pids" in super_opts.split(",") and v1_path is not None:
            return "v1", Path(mnt) / v1_path.lstrip("/")
    for line in mountinfo.splitlines():
        left, _, right = line.partition(" - ")
        fields, rfields = left.split(), right.split()
        if len(fields) < 5 or not rfields or rfields[0] != "cgroup2" or v2_path is None:
            continue
        root = Path(fields[4])
        try:
            if "pids" in (root / "cgroup.controllers").read_text().split():
                return "v2", root  # the root of the hierarchy (our own cgroup holds processes)
        except OSError:
            continue
    return None


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


@dataclass
class CommandCgroup:
    path: Path
    version: str

    @property
    def procs(self) -> Path:
        return self.path / "cgroup.procs"

    def peak(self) -> int | None:
        """The most tasks the cgroup ever held (pids.peak, kernel 6.1+), if known."""
        try:
            return int((self.path / "pids.peak").read_text())
        except (OSError, ValueError):
            return None

    def kill_and_remove(self, wait: float = 1.0) -> bool:
        """SIGKILL what is left in the cgroup and remove it; False if it could not be removed yet."""
        if not self.path.exists():
            return True
        deadline = time.monotonic() + wait
        while True:
            pids = []
            try:
                pids = [int(x) for x in self.procs.read_text().split()]
            except (OSError, ValueError):
                pass
            if pids:
                if self.version == "v2" and (self.path / "cgroup.kill").exists():
                    try:
                        (self.path / "cgroup.kill").write_text("1")
                    except OSError:
                        pass
                for pid in pids:
                    try:
                        os.kill(pid, signal.SIGKILL)
                    except OSError:
                        pass
            try:
                os.rmdir(self.path)
                return True
            except FileNotFoundError:
                return True
            except OSError:
                if time.monotonic() > deadline:
                    return False
                time.sleep(0.02)


class PidsCgroups:
    """Creates one pids cgroup per sandboxed command under the hierarchy found at start-up."""

    def __init__(self, version: str, base: Path) -> None:
        self.version = version
        self.base = base
        self._pending: list[CommandCgroup] = []

    @classmethod
    def find(cls) -> tuple["PidsCgroups | None", str]:
        """The manager, or None and why not."""
        found = _pids_hierarchy()
        if found is None:
            return None, "no pids cgroup controller is mounted"
        version, base = found
        mgr = cls(version, base)
        mgr.prune_stale()
        try:
            test = mgr.new(8)
        except OSError as e:
            return None, f"the pids cgroup ({base}) is not writable: {e.strerror or e}"
        test.kill_and_remove()
        return mgr, ""

    def new(self, max_tasks: int) -> CommandCgroup:
        if self.version == "v2":
            ctl = self.base / "cgroup.subtree_control"
            try:
                if "pids" not in ctl.read_text().split():
                    ctl.write_text("+pids")
            except OSError:
                pass
        path = self.base / f"{PREFIX}{os.getpid()}-{next(_COUNTER)}"
        os.mkdir(path, 0o755)
        cg = CommandCgroup(path, self.version)
        try:
            (path / "pids.max").write_text(str(int(max_tasks)))
        except OSError:
            cg.kill_and_remove()
            raise
        return cg

    def release(self, cg: CommandCgroup) -> None:
        """Kill what is left in ``cg`` and remove it; if its tasks are still exiting, retry at the
        next release (never waits)."""
        if not cg.kill_and_remove(wait=0):
            self._pending.append(cg)
        self._pending = [c for c in self._pending if c is cg or not c.kill_and_remove(wait=0)]

    def close(self) -> None:
        for c in self._pending:
            c.kill_and_remove(wait=1.0)
        self._pending.clear()

    def prune_stale(self) -> None:
        """Kill what is left in the cgroups of codeloop processes that are gone, and remove them.

        (A server killed within the first milliseconds of starting a command can leave that
        command running: bubblewrap arms --die-with-parent only once it has set up.)"""
        try:
            entries = list(os.scandir(self.base))
        except OSError:
            return
        for e in entries:
            if not e.name.startswith(PREFIX) or not e.is_dir():
                continue
            try:
                pid = int(e.name[len(PREFIX):].split("-", 1)[0])
            except ValueError:
                continue
            if pid != os.getpid() and not _alive(pid):
                CommandCgroup(Path(e.path), self.version).kill_and_remove(wait=0.5)
