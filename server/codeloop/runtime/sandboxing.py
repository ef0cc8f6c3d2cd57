"""The sandbox of a workspace, as the sessions of one process share it.

``sandbox_for(settings, root)`` gives the ``WorkspaceSandbox`` for a workspace and a ``sandbox``
setting: probed once (``Sandbox.probe`` in a thread: ``await box.start()``), then shared by every
session of the process in that workspace (one private temp dir, one set of placeholders). It is
the ``CommandSandbox`` the process manager, the check command and code mode spawn through.

Until the probe has finished, ``auto_allow`` is False (the policy asks, as without a sandbox)
and ``prepare`` (called in a thread) waits for it: nothing runs unsandboxed by accident.
"""

from __future__ import annotations

import asyncio
import logging
import os
import threading
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from codeloop.config import Settings
from codeloop.runtime.settings import sandbox_settings
from codeloop.services.sandbox import Prepared, Sandbox, SandboxSettings

log = logging.getLogger(__name__)

PROBING = "sandbox: probing…"


class WorkspaceSandbox:
    """One workspace's sandbox (a ``CommandSandbox``), probed lazily and once."""

    def __init__(self, settings: SandboxSettings, root: Path, *, env: Mapping[str, str] | None = None,
                 **probe_kw: Any) -> None:
        self.settings = settings
        self.root = Path(root)
        self._env = env
        self._probe_kw = probe_kw
        self._sandbox: Sandbox | None = None
        self._lock = threading.Lock()
        self._told = False  # "no sandbox works here" said once

    # -- probing

    def _get(self) -> Sandbox:
        """The probed sandbox (blocking: probes on first use)."""
        with self._lock:
            if self._sandbox is None:
                self._sandbox = Sandbox.probe(self.settings, self.root, env=self._env, **self._probe_kw)
                log.info("%s", self._sandbox.describe())
            return self._sandbox

    async def start(self) -> "WorkspaceSandbox":
        """Probe now (in a thread), if not done yet."""
        if self._sandbox is None:
            await asyncio.to_thread(self._get)
        return self

    @property
    def ready(self) -> bool:
        return self._sandbox is not None

    @property
    def sandbox(self) -> Sandbox | None:
        return self._sandbox

    # -- the CommandSandbox port

    @property
    def auto_allow(self) -> bool:
        return self._sandbox is not None and self._sandbox.auto_allow

    @property
    def active(self) -> bool:
        return self._sandbox is not None and self._sandbox.active

    def prepare(self, argv: Sequence[str], cwd: Path | str, env: Mapping[str, str] | None = None,
                **kw: Any) -> Prepared:
        """``Sandbox.prepare`` (blocking; in a thread). Raises SandboxUnavailable (a
        ``SandboxRefused``) when the mode is on and no backend works."""
        return self._get().prepare(argv, cwd, env, **kw)

    def refusal(self) -> str | None:
        """Why every command is refused (mode on, no backend), or None."""
        sb = self._sandbox
        if sb is None or not sb.refuses:
            return None
        return sb.refusal_message()

    # -- telling the user

    def describe(self) -> str:
        """One line: the banner, the panel header, /context."""
        return self._sandbox.describe() if self._sandbox is not None else PROBING

    def info(self) -> dict[str, Any]:
        if self._sandbox is None:
            return {"mode": self.settings.mode, "backend": None, "description": PROBING}
        return self._sandbox.info()

    def warning(self) -> str | None:
        """The one clear line to show when commands are not sandboxed although they could be
        asked to be (auto with no backend, on and refusing); None when sandboxed or off.
        Given once per workspace sandbox (the second call returns None)."""
        sb = self._sandbox
        if sb is None or sb.active or self.settings.mode == "off" or self._told:
            return None
        self._told = True
        if sb.refuses:
            return sb.describe() + ". " + sb.refusal_message().splitlines()[-1]
        return sb.describe() + '. Install bubblewrap, or set "sandbox": "off" to silence this.'

    def close(self) -> None:
        with self._lock:
            if self._sandbox is not None:
                self._sandbox.close()


_SHARED: dict[tuple[str, str], WorkspaceSandbox] = {}
_SHARED_LOCK = threading.Lock()


def sandbox_for(settings: Settings | SandboxSettings, root: Path) -> WorkspaceSandbox:
    """The process's sandbox for ``root`` under this ``sandbox`` setting (shared, probed once)."""
    parsed = settings if isinstance(settings, SandboxSettings) else sandbox_settings(settings)
    key = (os.path.realpath(root), repr(sorted(parsed.to_json().items())))
    with _SHARED_LOCK:
        box = _SHARED.get(key)
        if box is None:
            box = _SHARED[key] = WorkspaceSandbox(parsed, Path(root))
        return box


def mcp_sandbox(settings: Settings, root: Path) -> WorkspaceSandbox | None:
    """The sandbox MCP stdio servers run in (setting ``sandbox.mcp``), or None."""
    parsed = sandbox_settings(settings)
    return sandbox_for(parsed, root) if parsed.mcp and parsed.mode != "off" else None


__all__ = ["PROBING", "WorkspaceSandbox", "mcp_sandbox", "sandbox_for"]
