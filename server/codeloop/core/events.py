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
