"""Typed events the agent loop emits through the host's EventSink.

Every event is a frozen dataclass with a ``type`` tag. ``to_dict()`` gives the
JSON shape the CLI prints and the language server forwards (camelCase keys, as
on the wire).
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from typing import Any, ClassVar, Literal


def _camel(name: str) -> str:
    head, *rest = name.split("_")
    return head + "".join(p.title() for p in rest)


@dataclass(frozen=True, slots=True)
class Event:
    type: ClassVar[str] = "event"

    def to_dict(self) -> dict[str, Any]:
        out: dict[str, Any] = {"type": self.type}
        for f in dataclasses.fields(self):
            out[_camel(f.name)] = getattr(self, f.name)
        return out


@dataclass(frozen=True, slots=True)
class TextDelta(Event):
    """A piece of the assistant's streamed answer."""

    type: ClassVar[str] = "textDelta"
    text: str


@dataclass(frozen=True, slots=True)
class ToolCallStarted(Event):
    type: ClassVar[str] = "toolCallStarted"
    call_id: str
    name: str
    summary: str  # the key argument, e.g. the path or the command
    arguments: dict[str, Any] = field(default_factory=dict)
    origin: str = ""  # where the tool comes from (an MCP server's name); "" for built-in tools
    # The tool call this one runs inside (code mode's program: its calls are nested under
    # its card); "" for the model's own calls.
    parent: str = ""
    code: str = ""  # a program the card shows highlighted (code mode), in ``code_language``
    code_language: str = ""


@dataclass(frozen=True, slots=True)
class ToolCallFinished(Event):
    type: ClassVar[str] = "toolCallFinished"
    call_id: str
    name: str
    ok: bool
    summary: str  # one short human line: "read 25 lines", "exit 0 · 3 lines", "stopped by you"
    result: str = ""  # the (possibly truncated) text the model got
    status: Literal["ok", "error", "cancelled"] = "ok"
    parent: str = ""  # as in ToolCallStarted


@dataclass(frozen=True, slots=True)
class Retry(Event):
    type: ClassVar[str] = "retry"
    attempt: int  # 1-based number of the retry about to happen
    max_attempts: int
    delay: float  # seconds we wait before it
    reason: str


@dataclass(frozen=True, slots=True)
class Usage(Event):
    type: ClassVar[str] = "usage"
    prompt_tokens: int
    completion_tokens: int
    cached_tokens: int = 0
    cost: float | None = None  # USD for this request, when a price is known


@dataclass(frozen=True, slots=True)
class Notice(Event):
    """Something the user should see that is not an error (compaction, mode change)."""

    type: ClassVar[str] = "notice"
    message: str
    level: Literal["info", "warning"] = "info"


@dataclass(frozen=True, slots=True)
class ErrorEvent(Event):
    type: ClassVar[str] = "error"
    message: str
    kind: str = "error"  # "api", "auth", "connection", "internal", ...


TurnStatus = Literal["done", "cancelled", "error", "max_turns"]


@dataclass(frozen=True, slots=True)
class TurnEnd(Event):
    type: ClassVar[str] = "turnEnd"
    status: TurnStatus
    message: str = ""
    prompt_tokens: int = 0
    completion_tokens: int = 0
    cached_tokens: int = 0
    cost: float | None = None


@dataclass(frozen=True, slots=True)
class HookRan(Event):
    """A hook (a user's command run at a point of the agent's life) started or ended:
    a dim line in the CLI, a small card in the panel, the log in plain clients."""

    type: ClassVar[str] = "hookRan"
    run_id: str
    hook_event: str  # "PreToolUse", "Stop", …
    phase: Literal["start", "end"]
    status: str  # "running" at the start; then "ok", "blocked", "denied", "warning", "timeout", "error"
    label: str  # the command (its first line) and the settings file it comes from
    line: str  # one plain line: what ran and how it ended
    target: str | None = None  # the tool (or SessionStart source, …) it ran for
    call_id: str = ""  # the tool call it ran for (PreToolUse, PostToolUse)
    scope: str = "user"  # "user" or "project"
    duration: float | None = None  # seconds, once ended


@dataclass(frozen=True, slots=True)
class TodosChanged(Event):
    """The session's todo list changed (the todo tool): the whole list, in order."""

    type: ClassVar[str] = "todosChanged"
    todos: tuple[dict[str, str], ...]  # {"content", "activeForm", "status"}
    changes: tuple[str, ...] = ()  # "started: …", "completed: …", "added: …", "removed: …"

    def to_dict(self) -> dict[str, Any]:
        return {"type": self.type, "todos": [dict(t) for t in self.todos], "changes": list(self.changes)}


@dataclass(frozen=True, slots=True)
class SubagentEvent(Event):
    """An event of a sub-agent's conversation, nested under the parent's tool call that
    runs it (``parent_call_id``). The child's text arrives as one ``textDelta`` per step."""

    type: ClassVar[str] = "subagent"
    parent_call_id: str
    agent: str  # the sub-agent's name ("explore", "general", a definition's name)
    event: Event

    def to_dict(self) -> dict[str, Any]:
        return {"type": self.type, "parentCallId": self.parent_call_id, "agent": self.agent,
                "event": self.event.to_dict()}
