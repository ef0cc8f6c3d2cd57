"""Ports: the small Protocols through which the domain reaches the outside world.

The agent loop and the tools know nothing of LSP, terminals or disks beyond
these. The headless CLI and the language server each provide adapters.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from contextlib import AbstractAsyncContextManager
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


@runtime_checkable
class CommandObserver(Protocol):
    """Sees each command the agent runs (checkpoints: snapshots of the workspace before
    and after it). ``around`` wraps a foreground command from before it starts until it
    has ended; a background process (``background``) only while it is being started:
    what it changes later is nobody's in particular. An observer's failure never stops
    a command (the process manager logs it and runs the command anyway)."""

    def around(self, command: str, cwd: Path, background: bool) -> AbstractAsyncContextManager[Any]: ...


@dataclass(frozen=True, slots=True)
class CommandRun:
    """How a command run elsewhere ended (see ``CommandRunner``)."""

    output: str  # stdout and stderr together, as the runner kept them
    exit_code: int | None  # None: it did not exit by itself (killed, signalled)
    signal: str | None = None  # the signal that ended it ("SIGTERM"), when known
    timed_out: bool = False  # stopped by the runner after the timeout
    truncated: bool = False  # the runner kept only the end of the output


@runtime_checkable
class CommandRunner(Protocol):
    """Runs a foreground command somewhere other than here: the ACP client's terminal.
    The process manager hands it the commands it would run itself when a host gives one.
    Cancelling the call stops the command there."""

    async def run(self, command: str, cwd: Path, timeout: float, call_id: str = "") -> CommandRun: ...


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


HookPermission = Literal["allow", "ask", "deny"]


@dataclass(frozen=True, slots=True)
class BeforeTool:
    """What the hooks said before a tool call (Claude Code's PreToolUse).

    ``blocked``: do not run it; ``reason`` tells the model why. ``permission`` is a
    REQUEST to the policy, never a decision: "ask" makes the user answer even where the
    policy allows; "allow" skips the question only where the policy would ask by default
    (never over a deny or ask rule, the catastrophic class, or a change to the agent's own
    configuration). ``updated_input``: the arguments to run instead (checked by the tool).
    ``context``: added to the call's result for the model. ``stop``: end the turn now
    (the call does not run); ``stop_reason`` is for the user.
    """

    blocked: bool = False
    reason: str | None = None
    permission: HookPermission | None = None
    permission_reason: str | None = None
    updated_input: dict[str, Any] | None = None
    context: str | None = None
    stop: bool = False
    stop_reason: str | None = None


@dataclass(frozen=True, slots=True)
class AfterTool:
    """What the hooks said after a tool ran (PostToolUse): ``feedback`` is added to the
    result the model gets; ``stop`` ends the turn after this step."""

    feedback: str | None = None
    stop: bool = False
    stop_reason: str | None = None


@dataclass(frozen=True, slots=True)
class StopVerdict:
    """What the hooks said when the agent was about to end its turn (Stop, SubagentStop):
    ``go_on`` is the instruction to continue with (None: the turn ends)."""

    go_on: str | None = None


@runtime_checkable
class ToolHooks(Protocol):
    """The user's hooks around the loop's tool calls and its stop (the runtime runs them;
    the loop only reads the answers). Never raises, except CancelledError."""

    async def before_tool(self, name: str, arguments: dict[str, Any], call_id: str) -> BeforeTool: ...

    async def after_tool(self, name: str, arguments: dict[str, Any], call_id: str, result: str,
                         ok: bool) -> AfterTool: ...

    async def on_stop(self, active: bool, answer: str) -> StopVerdict:
        """``active``: the agent is already going on because of a stop hook this turn."""
        ...


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
