"""The sandbox's plain values: what a backend probe found (:class:`BackendProbe`), what to spawn
(:class:`Prepared`), the guarantees a backend can give, and the refusal of ``mode: on``."""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from typing import Any, Callable

from codeloop.core.ports import SandboxRefused
from codeloop.services.sandbox.limits import CommandCgroup

log = logging.getLogger(__name__)

BACKENDS: tuple[str, ...] = ("bubblewrap", "landlock")

# What each backend can guarantee (a guarantee is only claimed when it holds: see guarantees()).
GUARANTEES: dict[str, str] = {
    "fs": "the filesystem is read-only outside the workspace and the private temp dir",
    "tmp": "a private temp dir (TMPDIR); the shared /tmp is not written",
    "shm": "a private /dev/shm",
    "secrets": "the home directories' secrets (~/.ssh, ~/.aws, ...) cannot be read",
    "devices": "no raw devices (disks, memory)",
    "workspace-config": ".git/hooks, .git/config, .codeloop/, .vscode/, .claude/ and .mcp.json are "
                        "read-only and cannot be created",
    "network": "no network",
    "sockets": "no Unix sockets to daemons (Docker, D-Bus, systemd, ssh/gpg agents)",
    "pid-namespace": "own PID namespace: nothing outside is visible or can be signalled, and "
                     "everything dies with the sandbox",
    "signals": "cannot signal processes outside the sandbox",
    "process-limit": "a cap on the number of tasks (fork bombs)",
}


class SandboxUnavailable(SandboxRefused):
    """``mode: on`` and no backend works: the command must not run (fail closed)."""


@dataclass
class BackendProbe:
    name: str
    ok: bool
    reason: str = ""  # why it is unavailable
    fix: str = ""  # how to make it available
    version: str = ""
    limit: str = "none"  # the verified process-limit mechanism: cgroup | rlimit-userns | rlimit | none
    limit_note: str = ""  # why there is no process limit, if there is none
    seconds: float = 0.0

    def summary(self) -> str:
        if self.ok:
            return f"{self.name} {self.version}".strip()
        return f"{self.name}: {self.reason}" + (f" (fix: {self.fix})" if self.fix else "")


@dataclass
class Prepared:
    """What to spawn: ``argv`` with ``env`` in ``cwd``, passing ``pass_fds``, in a new session.
    Call :meth:`cleanup` once the process (group) has ended, or if spawning failed."""

    argv: list[str]
    env: dict[str, str]
    cwd: str
    pass_fds: tuple[int, ...] = ()
    backend: str = "none"
    preexec_fn: None = None  # always None: everything is in argv
    start_new_session: bool = True
    cgroup: CommandCgroup | None = None
    removed_env: list[str] = field(default_factory=list)
    _cleanups: list[Callable[[], None]] = field(default_factory=list, repr=False)
    _done: bool = field(default=False, repr=False)

    @property
    def sandboxed(self) -> bool:
        return self.backend != "none"

    def cleanup(self) -> None:
        if self._done:
            return
        self._done = True
        for fn in reversed(self._cleanups):
            try:
                fn()
            except Exception:
                log.exception("sandbox cleanup failed")

    def __enter__(self) -> "Prepared":
        return self

    def __exit__(self, *exc: Any) -> None:
        self.cleanup()

