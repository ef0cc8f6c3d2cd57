"""Tool plumbing: pydantic inputs, JSON schemas for the model, a registry whose
``execute`` never raises into the loop."""

from __future__ import annotations

import json
from abc import ABC, abstractmethod
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, ClassVar, Generic, Protocol, TypeVar

from pydantic import BaseModel, ConfigDict, ValidationError

from codeloop.agent.ports import (
    ChangeApplier,
    DiagnosticsSource,
    Documents,
    NoDocuments,
    NullTerminal,
    Terminal,
)
from codeloop.policy.types import Kind, PermissionRequest
from codeloop.tools.workspace import Workspace

if TYPE_CHECKING:
    from codeloop.tools.processes import ProcessManager


def numbered(n: int, line: str) -> str:
    """A line as read_file and read_command_output show it: its number, a tab, the line.
    (No ``cat -n`` padding: it costs a token or two per line and tells the model nothing.)"""
    return f"{n}\t{line}"


class ToolInput(BaseModel):
    model_config = ConfigDict(extra="forbid")


I = TypeVar("I", bound=ToolInput)


class ReadMemo(Protocol):
    """Remembers what file text the model already holds, so re-reads stay small."""

    def recall(self, path: Path, text: str, offset: int, limit: int) -> str | None:
        """A short result to send instead of the full read, or None to send it in full.

        Unchanged since the model last read this range: a note saying so.
        Changed: what changed (a diff). Never the case right after a compaction.
        """
        ...

    def remember(self, path: Path, text: str, offset: int, limit: int) -> None: ...


@dataclass
class ToolContext:
    """What a tool may touch. Built once per session by the host."""

    workspace: Workspace
    changes: ChangeApplier
    processes: "ProcessManager"
    documents: Documents = field(default_factory=NoDocuments)
    terminal: Terminal = field(default_factory=NullTerminal)
    diagnostics: DiagnosticsSource | None = None
    read_memo: ReadMemo | None = None
    # Set per call by the loop: False when the policy lets edits land unreviewed.
    review_edits: bool = True
    call_id: str = ""

    def read_text(self, path: Path) -> tuple[str, int | None]:
        """The text the user sees: the open buffer if there is one, else the disk.

        Returns (text, document version or None). Raises OSError/UnicodeDecodeError.
        """
        doc = self.documents.get(path)
        if doc is not None:
            return doc.text, doc.version
        return path.read_text(encoding="utf-8"), None


class ToolError(Exception):
    """Raised inside a tool to return a clean error message to the model."""


class Tool(ABC, Generic[I]):
    name: ClassVar[str]
    description: ClassVar[str]
    Input: ClassVar[type[ToolInput]]
    read_only: ClassVar[bool] = True
    # How the policy sees a call: None means no permission needed.
    kind: ClassVar[Kind | None] = None

    @abstractmethod
    async def run(self, args: I, ctx: ToolContext) -> str: ...

    def summary(self, args: I) -> str:
        """The key argument, shown on tool cards."""
        for key in ("command", "path", "pattern", "file_path"):
            value = getattr(args, key, None)
            if value:
                return str(value)
        return ""

    def permission(self, args: I, ctx: ToolContext) -> PermissionRequest | None:
        """What the policy must decide before this call runs."""
        return None

    @classmethod
    def schema(cls) -> dict[str, Any]:
        """The function schema sent to the model (built once per tool class)."""
        cached = cls.__dict__.get("_schema_cache")
        if cached is None:
            cached = cls._build_schema()
            cls._schema_cache = cached  # type: ignore[attr-defined]
        return cached

    @classmethod
    def _build_schema(cls) -> dict[str, Any]:
        params = cls.Input.model_json_schema()
        params.pop("title", None)
        for prop in params.get("properties", {}).values():
            prop.pop("title", None)
        return {
            "type": "function",
            "function": {"name": cls.name, "description": cls.description, "parameters": params},
        }


@dataclass(slots=True)
class ToolResult:
    ok: bool
    text: str


def format_validation_error(tool: str, err: ValidationError) -> str:
    parts = []
    for e in err.errors():
        loc = ".".join(str(x) for x in e["loc"]) or "(arguments)"
        parts.append(f"{loc}: {e['msg']}")
    return f"Error: invalid arguments for {tool}: " + "; ".join(parts)


class ToolRegistry:
    def __init__(self, tools: list[Tool[Any]]) -> None:
        self._tools = {t.name: t for t in tools}

    def __contains__(self, name: str) -> bool:
        return name in self._tools

    def get(self, name: str) -> Tool[Any] | None:
        return self._tools.get(name)

    def names(self) -> list[str]:
        return list(self._tools)

    def schemas(self, *, read_only_only: bool = False) -> list[dict[str, Any]]:
        return [
            t.schema() for t in self._tools.values() if t.read_only or not read_only_only
        ]

    def parse(self, name: str, raw_args: str) -> tuple[Tool[Any], ToolInput] | ToolResult:
        """Look the tool up and validate its arguments; an error result otherwise."""
        tool = self._tools.get(name)
        if tool is None:
            known = ", ".join(sorted(self._tools))
            return ToolResult(False, f"Error: unknown tool {name!r}. Available tools: {known}.")
        try:
            data = json.loads(raw_args) if raw_args and raw_args.strip() else {}
        except json.JSONDecodeError as e:
            return ToolResult(
                False,
                f"Error: the arguments for {name} are not valid JSON ({e.msg} at char {e.pos}). "
                "Send a JSON object matching the tool's schema.",
            )
        if not isinstance(data, dict):
            return ToolResult(False, f"Error: the arguments for {name} must be a JSON object.")
        try:
            return tool, tool.Input.model_validate(data)
        except ValidationError as e:
            return ToolResult(False, format_validation_error(name, e))

    async def run(self, tool: Tool[Any], args: ToolInput, ctx: ToolContext) -> ToolResult:
        """Run a validated call. Never raises, except CancelledError."""
        try:
            return ToolResult(True, await tool.run(args, ctx))
        except ToolError as e:
            return ToolResult(False, f"Error: {e}")
        except Exception as e:  # a tool bug must not kill the loop
            return ToolResult(False, f"Error: {tool.name} failed: {type(e).__name__}: {e}")
