"""The plain data the MCP package hands out (no SDK here): tools, server states, events."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, Literal

from codeloop.services.mcp.config import SourceName, TransportName

Status = Literal["starting", "ready", "failed", "disabled", "needs-consent"]


@dataclass(frozen=True)
class McpToolInfo:
    """One tool of one server, as the session needs it."""

    qualified_name: str  # mcp__<server>__<tool>, what the model calls
    server: str
    name: str  # the tool's own name at its server
    description: str
    input_schema: Mapping[str, Any]
    annotations: Mapping[str, Any] = field(default_factory=dict)  # readOnlyHint, destructiveHint, ...
    title: str | None = None

    @property
    def read_only(self) -> bool:
        """The server's ``readOnlyHint`` (a hint: it may let calls run concurrently, it never
        skips a permission)."""
        return self.annotations.get("readOnlyHint") is True

    def schema(self) -> dict[str, Any]:
        """The function schema for the model (Chat Completions ``tools`` entry)."""
        params = dict(self.input_schema) if isinstance(self.input_schema, Mapping) else {}
        if params.get("type") != "object":
            params = {"type": "object", "properties": {}}
        return {"type": "function",
                "function": {"name": self.qualified_name, "description": self.description, "parameters": params}}


@dataclass(frozen=True)
class ServerState:
    name: str
    source: SourceName
    transport: TransportName
    status: Status
    tool_count: int = 0
    last_error: str | None = None
    stderr_tail: str = ""
    origin: str = ""
    description: str = ""  # what starting it does (the command, or the URL)
    log_file: str | None = None
    pid: int | None = None
    restarts: int = 0
    retry_in: float | None = None  # seconds until the next automatic restart
    protocol_version: str | None = None
    server_version: str | None = None
    instructions: str | None = None  # what the server asks the model to know (for the system prompt)


@dataclass(frozen=True)
class McpEvent:
    kind: Literal["tools", "state"]  # "tools": that server's tool list changed
    server: str
    state: ServerState
