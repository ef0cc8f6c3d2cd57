"""What a probed sandbox is and promises, derived from its settings and its probes: whether it
is active or refuses commands, the guarantees that hold, what it cannot do, the one-line
description and the JSON summary. The base of :class:`~codeloop.services.sandbox.core.Sandbox`,
which adds preparing and running commands."""

from __future__ import annotations

from typing import Any

from codeloop.services.sandbox import launcher as L
from codeloop.services.sandbox.model import GUARANTEES, BackendProbe
from codeloop.services.sandbox.settings import SandboxSettings


class SandboxStatus:
    """The state a Sandbox is made with, and everything said about it."""

    settings: SandboxSettings
    mode: str
    network: bool
    backend: str  # "bubblewrap" | "landlock" | "none"
    probes: dict[str, BackendProbe]
    _limit_kind: str  # cgroup | rlimit-userns | rlimit | none
    _limit_note: str  # why there is no process limit
    _probing: bool  # the probe's own sandbox: the limit is not verified yet

    # -- state

    @property
    def active(self) -> bool:
        return self.backend != "none"

    @property
    def refuses(self) -> bool:
        """``mode: on`` with no working backend: every prepare() raises SandboxUnavailable."""
        return self.mode == "on" and not self.active

    @property
    def unavailable_reason(self) -> str | None:
        """Why the preferred backend(s) could not be used (None if the first choice works or the
        sandbox is off by setting)."""
        failed = [p for p in self.probes.values() if not p.ok]
        if not failed:
            return None
        return "; ".join(p.summary() for p in failed)

    @property
    def auto_allow(self) -> bool:
        """Whether the policy may run an *unknown* command without asking because it is
        sandboxed (``autoAllow``): only when the sandbox really contains it, i.e. it cannot
        plant a git hook or an editor/agent config in the workspace (bubblewrap, not Landlock)
        and cannot send the workspace anywhere (network off)."""
        g = self.guarantees()
        return bool(self.settings.auto_allow and "workspace-config" in g and "network" in g)

    @property
    def process_limit(self) -> int | None:
        """The task cap of each sandboxed command, when one verifiably holds."""
        return self.settings.max_processes if self.active and self._limit_active() else None

    def guarantees(self) -> dict[str, str]:
        """The guarantees that hold for commands run through prepare() (id -> description)."""
        if not self.active:
            return {}
        keys = ["fs", "tmp", "secrets", "devices", "sockets"]
        if self.backend == "bubblewrap":
            keys += ["workspace-config", "pid-namespace", "signals", "shm"]
            if not self.network:
                keys.append("network")
        else:
            if not self.network:
                keys.append("network")  # seccomp refuses non-Unix sockets; Landlock (ABI 4+) TCP too
            if L.landlock_abi() >= 6:
                keys.append("signals")
        if self._limit_active():
            keys.append("process-limit")
        return {k: GUARANTEES[k] for k in GUARANTEES if k in keys}

    def limitations(self) -> list[str]:
        """What the active backend cannot do, in words."""
        if not self.active:
            return ["commands run unsandboxed"]
        out: list[str] = []
        if self.backend == "landlock":
            out += [
                "no PID namespace: other processes are visible, and a command's descendants that "
                "leave its process group are not killed with it",
                "inside the workspace nothing is protected: Landlock cannot make .git/hooks, .git/config, "
                ".codeloop/, .vscode/, .claude/ or .mcp.json read-only inside a writable directory",
                "no private loopback: with the network off, localhost is refused too",
                "/dev/shm is shared with the host (POSIX semaphores need it)",
            ]
            if L.landlock_abi() < 6:
                out.append(f"Landlock ABI {L.landlock_abi()} cannot stop signals to the user's other processes")
        if self.network:
            out.append("network on: the host's network and localhost services are reachable")
        probe = self.probes[self.backend]
        if not self._limit_active():
            out.append(f"no process limit: {probe.limit_note or self._limit_note}")
        return out

    def describe(self) -> str:
        """One line for a banner, the panel header or /context."""
        if self.mode == "off":
            return "sandbox: off (setting) — commands run unsandboxed"
        if not self.active:
            why = self.unavailable_reason or "no backend"
            if self.mode == "on":
                return f"sandbox: on, but unavailable — commands are refused ({why})"
            return f"sandbox: none — commands run unsandboxed because no sandbox works here ({why})"
        probe = self.probes[self.backend]
        name = "bubblewrap" if self.backend == "bubblewrap" else "Landlock"
        parts = [f"{name} {probe.version}".strip()]
        if self.backend == "bubblewrap":
            parts.append("workspace + private /tmp writable, home secrets hidden, workspace config read-only")
            parts.append("network on" if self.network else "network off")
            parts.append("own PID namespace")
        else:
            parts.append("workspace + private TMPDIR writable, home secrets hidden")
            g = self.guarantees()
            parts.append("network on" if self.network else ("network off" if "network" in g else "network NOT blocked"))
            parts.append("no PID namespace, workspace config not protected")
        limit = self.process_limit
        parts.append(f"≤ {limit} tasks" if limit else "no process limit")
        return "sandbox: " + ", ".join(parts)

    def refusal_message(self) -> str:
        lines = ['The sandbox is on (setting "sandbox": "on") but no sandbox works here, so the command was not run.']
        for p in self.probes.values():
            lines.append(f"- {p.summary()}")
        lines.append("Fix one of these, or set \"sandbox\" to \"auto\" or \"off\" to run commands unsandboxed.")
        return "\n".join(lines)

    def info(self) -> dict[str, Any]:
        """A JSON-able summary (for /context, the panel, logs)."""
        return {
            "mode": self.mode,
            "backend": self.backend,
            "network": self.network,
            "description": self.describe(),
            "guarantees": sorted(self.guarantees()),
            "limitations": self.limitations() if self.mode != "off" else [],
            "processLimit": self.process_limit,
            "autoAllow": self.auto_allow,
            "unavailable": {p.name: p.summary() for p in self.probes.values() if not p.ok},
        }


    def _limit_active(self) -> bool:
        if self._probing:
            return self._limit_kind != "none"
        probe = self.probes.get(self.backend)
        return probe is not None and probe.limit != "none"
