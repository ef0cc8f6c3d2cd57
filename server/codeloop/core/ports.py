"""Ports: the small Protocols through which the domain reaches the outside world.

The agent loop and the tools know nothing of LSP, terminals or disks beyond
these. The headless CLI and the language server each provide adapters.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal, Protocol, runtime_checkable

from codeloop.core.events import Event
from codeloop.edits.change import ChangeOutcome, ChangeSet


@runtime_checkable
class EventSink(Protocol):
    """Receives the loop's events (text deltas, tool calls, usage, turn end)."""

    def emit(self, event: Event) -> None: ...


@runtime_checkable
class ChangeApplier(Protocol):
    """Lands a ChangeSet: on disk (CLI) or as a reviewed editor proposal (LSP)."""

    async def apply(self, changes: ChangeSet) -> ChangeOutcome: ...


ApprovalAnswer = Literal["allow_once", "allow_always", "deny"]


@dataclass(frozen=True, slots=True)
class ApprovalRequest:
    # "Bash", "Read", "Edit", "Write", "Tool" (a call of a tool named in ``target``), or
    # "Trust" (starting a project's MCP server or hooks: ``target`` says what runs)
    kind: str
    target: str  # the command line, the path, or the tool
    cwd: str
    reason: str  # why we ask (which rule, or the default)
    suggested_rule: str | None = None  # what "always allow" would add
    call_id: str = ""


@dataclass(frozen=True, slots=True)
class ApprovalDecision:
    answer: ApprovalAnswer
    message: str = ""  # e.g. the user's reason for denying


@runtime_checkable
class Approver(Protocol):
    async def approve(self, request: ApprovalRequest) -> ApprovalDecision: ...


@runtime_checkable
class Terminal(Protocol):
    """Mirrors the commands the agent runs (the editor's codeloop terminal)."""

    def started(self, terminal_id: str, command: str, cwd: str, background: bool) -> None: ...

    def output(self, terminal_id: str, chunk: str) -> None: ...

    def exited(self, terminal_id: str, exit_code: int | None) -> None: ...


@runtime_checkable
class Draining(Protocol):
    """A terminal that can say "wait, I am behind": ``drain()`` returns once the
    output sent so far has mostly gone out. Command output is then read no faster
    than the mirror takes it (a real terminal applies the same backpressure)."""

    async def drain(self) -> None: ...


@dataclass(frozen=True, slots=True)
class OpenDocument:
    path: Path
    text: str
    version: int
    language_id: str = ""
    dirty: bool = False  # differs from what is on disk, as far as the host knows


@runtime_checkable
class Documents(Protocol):
    """The editor's open buffers. The agent reads these instead of the disk."""

    def get(self, path: Path) -> OpenDocument | None: ...

    def open_documents(self) -> list[OpenDocument]: ...


@dataclass(frozen=True, slots=True)
class DiagnosticInfo:
    path: Path
    line: int  # 0-based
    character: int
    end_line: int
    end_character: int
    severity: Literal["error", "warning", "information", "hint"]
    message: str
    source: str = ""
    code: str = ""


@runtime_checkable
class DiagnosticsSource(Protocol):
    """Diagnostics from the editor (other language servers) or a check command."""

    async def diagnostics(self, paths: list[Path]) -> dict[Path, list[DiagnosticInfo]]: ...


class ReadMemo(Protocol):
    """Remembers what file text the model already holds, so re-reads stay small."""

    def recall(self, path: Path, text: str, offset: int, limit: int, again: str = ...) -> str | None:
        """A short result to send instead of the full read, or None to send it in full.
        ``again`` says how to get the text again in full anyway (the tool's words).

        Unchanged since the model last read this range: a note saying so.
        Changed: what changed (a diff). Never the case right after a compaction.
        """
        ...

    def remember(self, path: Path, text: str, offset: int, limit: int) -> None: ...

    def forget(self, path: Path) -> None: ...


@runtime_checkable
class MessageLog(Protocol):
    """Persists each conversation message as it is added (session storage)."""

    def append(self, message: dict[str, Any]) -> None: ...


class SpawnPlan(Protocol):
    """What to spawn for one command: ``argv`` with ``env`` in ``cwd``, passing ``pass_fds``,
    in a new session. ``cleanup()`` once its process group has ended (or the spawn failed)."""

    argv: list[str]
    env: dict[str, str]
    cwd: str
    pass_fds: tuple[int, ...]

    def cleanup(self) -> None: ...


class SandboxRefused(RuntimeError):
    """The sandbox refuses to run a command (``"sandbox": "on"`` and no backend works here).
    The message names the sandbox, says why it is unavailable and how to fix it."""


@runtime_checkable
class CommandSandbox(Protocol):
    """Contains the commands the agent runs (an OS sandbox; the runtime injects
    ``codeloop.services.sandbox``). ``prepare`` is blocking but quick: call it in a thread, in
    the process that spawns, once per spawn. It raises SandboxRefused when commands must not
    run (fail closed). Optional: ``refusal() -> str | None`` says so before anything is asked
    (the process manager then refuses every command up front)."""

    @property
    def auto_allow(self) -> bool:
        """Whether a command the policy would ask about only because it is unknown may run
        without asking: the sandbox fully contains it (setting ``sandbox.autoAllow``)."""
        ...

    def prepare(self, argv: Sequence[str], cwd: Path | str, env: Mapping[str, str] | None = None,
                **kw: Any) -> SpawnPlan: ...


# Null adapters: used where a host has nothing to offer.


class NullTerminal:
    def started(self, terminal_id: str, command: str, cwd: str, background: bool) -> None:
        pass

    def output(self, terminal_id: str, chunk: str) -> None:
        pass

    def exited(self, terminal_id: str, exit_code: int | None) -> None:
        pass


@dataclass
class NoDocuments:
    docs: dict[Path, OpenDocument] = field(default_factory=dict)

    def get(self, path: Path) -> OpenDocument | None:
        return self.docs.get(path)

    def open_documents(self) -> list[OpenDocument]:
        return list(self.docs.values())


class DenyAll:
    """An approver for when nobody can be asked."""

    def __init__(self, why: str) -> None:
        self.why = why

    async def approve(self, request: ApprovalRequest) -> ApprovalDecision:
        return ApprovalDecision("deny", self.why)
