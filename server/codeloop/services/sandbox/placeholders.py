"""Mount points for the protected workspace paths that do not exist yet (bubblewrap), counted,
removed when idle, and recorded so that the next start removes the ones a crash left behind."""

from __future__ import annotations

import fcntl
import json
import logging
import os
import tempfile
import threading
import time
from pathlib import Path
from typing import Callable, Iterable

log = logging.getLogger(__name__)


class Placeholders:
    """Empty directories made as mount points for missing protected paths (``.vscode``, ``.mcp.json``
    ...) so that a sandboxed command cannot create them.

    Counted per path. When the last command using one ends it is removed after ``idle`` seconds
    without a new command (so that they do not flicker in the editor at every command), or at
    ``close()``; only if still empty (anything the user put there stays). ``.git/hooks`` is
    persistent (git's own directory). A registry in the temp dir lets the next start remove the
    ones a crashed process left behind."""

    def __init__(self, state_dir: Path, idle: float = 30.0) -> None:
        self.state_dir = state_dir
        self.registry = state_dir / "placeholders.json"
        self.idle = idle
        self._lock = threading.Lock()
        self._counts: dict[str, int] = {}
        self._idle_since: dict[str, float] = {}

    @staticmethod
    def default_state_dir() -> Path:
        return Path(tempfile.gettempdir()) / f"codeloop-sandbox-state-{os.getuid()}"

    def _ensure_dir(self) -> bool:
        try:
            os.makedirs(self.state_dir, mode=0o700, exist_ok=True)
            st = os.lstat(self.state_dir)
            return st.st_uid == os.getuid() and not os.path.islink(self.state_dir)
        except OSError:
            return False

    def _update(self, fn: Callable[[dict[str, int]], None]) -> None:
        if not self._ensure_dir():
            return
        try:
            with open(self.state_dir / "placeholders.lock", "w") as lock:
                fcntl.flock(lock, fcntl.LOCK_EX)
                try:
                    data = json.loads(self.registry.read_text())
                except (OSError, ValueError):
                    data = {}
                fn(data)
                tmp = self.registry.with_suffix(f".{os.getpid()}.tmp")
                tmp.write_text(json.dumps(data))
                os.replace(tmp, self.registry)
        except OSError as e:
            log.warning("sandbox placeholder registry: %s", e)

    def prune_stale(self) -> None:
        """Remove the (empty) placeholders of codeloop processes that are gone."""
        def fn(data: dict[str, int]) -> None:
            for path, pid in list(data.items()):
                if pid == os.getpid() or _pid_alive(pid):
                    continue
                try:
                    os.rmdir(path)
                except OSError:
                    pass
                del data[path]

        if self.registry.exists():
            self._update(fn)

    def acquire(self, paths: Iterable[Path], persistent: Iterable[Path] = ()) -> list[str]:
        """Make the missing ``paths`` (empty directories); returns the keys to release."""
        held: list[str] = []
        new: list[str] = []
        keep = {str(p) for p in persistent}
        with self._lock:
            for p in paths:
                key = str(p)
                if key in self._counts:
                    self._counts[key] += 1
                    self._idle_since.pop(key, None)
                    held.append(key)
                    continue
                if os.path.lexists(p):
                    continue  # it appeared meanwhile: it is protected as an existing path
                try:
                    os.mkdir(p, 0o755)
                except OSError as e:
                    log.warning("sandbox: cannot make the mount point %s: %s", p, e)
                    continue
                if key in keep:
                    continue
                self._counts[key] = 1
                held.append(key)
                new.append(key)
        if new:
            pid = os.getpid()
            self._update(lambda data: data.update({k: pid for k in new}))
        self.sweep()
        return held

    def release(self, keys: Iterable[str]) -> None:
        now = time.monotonic()
        with self._lock:
            for key in keys:
                if key in self._counts:
                    self._counts[key] -= 1
                    if self._counts[key] <= 0:
                        self._counts[key] = 0
                        self._idle_since[key] = now
        self.sweep()

    def sweep(self, max_idle: float | None = None) -> None:
        """Remove the placeholders no command has used for ``max_idle`` seconds."""
        max_idle = self.idle if max_idle is None else max_idle
        now = time.monotonic()
        gone: list[str] = []
        with self._lock:
            for key, since in list(self._idle_since.items()):
                if now - since < max_idle or self._counts.get(key):
                    continue
                try:
                    os.rmdir(key)  # only if still empty
                except OSError:
                    pass
                del self._idle_since[key]
                self._counts.pop(key, None)
                gone.append(key)
        if gone:
            def forget(data: dict[str, int]) -> None:
                for k in gone:
                    data.pop(k, None)

            self._update(forget)

    def close(self) -> None:
        with self._lock:
            now = time.monotonic()
            for key, n in self._counts.items():
                if n <= 0:
                    self._idle_since.setdefault(key, now)
        self.sweep(max_idle=0)


def _pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True

