"""What a tool is, wherever it comes from.

``BaseTool`` is the contract every tool meets: a name, a description, a JSON
schema for its arguments, ``read_only``, a ``kind`` for the permission policy,
``validate`` and ``run``. Everything else the agent needs to know about a tool
lives on the tool too, with defaults: the summary shown on a card, the human
one-liner after a call, how to get more of a cut result, which arguments can be
large, the note that stands in for an old elided result, the files a call
touches, the guidance line the system prompt shows.

Two kinds of tools implement it:

- ``Tool[I]``: a built-in tool with a pydantic ``Input`` class (its schema is
  generated from it, once per class);
- ``SchemaTool``: a tool whose schema arrives at run time (an MCP server's),
  validated against that schema.

Tools never raise into the loop: ``ToolError`` (or any exception) becomes an
error result in the registry (``tools/registry.py``).
"""

from __future__ import annotations

import json
from abc import ABC, abstractmethod
from dataclasses import dataclass, field
from pathlib import Path
from collections.abc import Mapping, Sequence
from typing import Any, ClassVar, Generic, Protocol, TypeVar

from pydantic import BaseModel, ConfigDict, ValidationError

from codeloop.core.ports import (
    ChangeApplier,
    DiagnosticsSource,
    Documents,
    NoDocuments,
    NullTerminal,
    ReadMemo,
    Terminal,
)
from codeloop.context.todos import Todo
from codeloop.policy.types import Kind, PermissionRequest
from codeloop.tools import claude
from codeloop.tools.processes import ProcessManager
from codeloop.tools.workspace import Workspace

DEFAULT_COMMAND_TIMEOUT = 120.0


class ToolInput(BaseModel):
    model_config = ConfigDict(extra="forbid")


I = TypeVar("I", bound=ToolInput)  # noqa: E741 - the input type of a tool


class TodoStore(Protocol):
    """The session's todo list (``todo_write``): the host shows it and keeps it."""

    def current(self) -> Sequence[Todo]: ...

    def replace(self, todos: Sequence[Todo]) -> None: ...


@dataclass
class ToolContext:
    """What a tool may touch. Built once per session by the host."""

    workspace: Workspace
    changes: ChangeApplier
    processes: ProcessManager
    documents: Documents = field(default_factory=NoDocuments)
    terminal: Terminal = field(default_factory=NullTerminal)
    diagnostics: DiagnosticsSource | None = None
    read_memo: ReadMemo | None = None
    # The default timeout of a command (the commandTimeout setting).
    command_timeout: float = DEFAULT_COMMAND_TIMEOUT
    # Whether the model takes image parts (images a tool returns are sent to it).
    images: bool = False
    # The session's todo list (None: this conversation has none, e.g. a sub-agent).
    todos: TodoStore | None = None
    # Set per call by the loop: False when the policy lets edits land unreviewed.
    review_edits: bool = True
    call_id: str = ""
    # A program reads the results (code mode), not the model: no first-look cuts meant to
    # spare the model's context.
    for_program: bool = False

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


class ArgumentsError(ValueError):
    """The arguments do not match the tool's schema; the message is for the model."""


@dataclass(frozen=True, slots=True)
class Image:
    """An image a tool returns (or the user attaches): sent as an image part."""

    mime: str
    data: str  # base64
    label: str = ""

    def data_url(self) -> str:
        return f"data:{self.mime};base64,{self.data}"


@dataclass(frozen=True, slots=True)
class ToolOutput:
    """What ``run`` may return instead of plain text: text plus images."""

    text: str
    images: tuple[Image, ...] = ()


@dataclass(slots=True)
class ToolResult:
    ok: bool
    text: str
    images: tuple[Image, ...] = ()


class BaseTool(ABC):
    """The contract of every tool. Subclasses set the attributes, as class
    attributes (built-in tools) or per instance (tools made at run time)."""

    name: str
    description: str
    read_only: bool = True
    # How the policy sees a call: None means no permission is needed. "Bash" marks a
    # shell-like tool: it stays in plan mode, where the policy decides each command.
    kind: Kind | None = None
    # What a call does, for clients that show it by an icon (ACP's tool kinds: "read",
    # "edit", "search", "execute", "fetch", "think", "other"). None: follows from ``kind``.
    activity: str | None = None
    # Where the tool comes from, shown on its card ("" for built-in tools).
    origin: str = ""
    # Arguments that can be large and can be read back from the files (a whole new file's
    # content): elision shortens them in old calls.
    large_arguments: tuple[str, ...] = ()
    # One line of guidance for the system prompt's tool section ("" for none).
    guidance: str = ""
    # Tool search: a deferred tool's schema is sent only once the model loaded it.
    deferred: bool = False
    # Whether a sub-agent may be given this tool (not the tools that act on the parent's
    # own conversation: its todo list, starting sub-agents).
    for_subagents: bool = True
    # Claude Code's names for this tool (configs written for Claude Code name them: hook
    # matchers, an agent file's ``tools``). The first is the ``tool_name`` a hook written
    # for Claude Code is sent; every one of them selects this tool. (): its own name only.
    claude_names: tuple[str, ...] = ()
    # Input fields Claude Code spells differently: {field: (Claude Code's field, how)},
    # how = "same" (renamed), "path" (absolute there) or "ms" (seconds here, ms there).
    claude_fields: ClassVar[Mapping[str, tuple[str, str]]] = {}

    # -- schema and arguments ------------------------------------------------------

    @abstractmethod
    def parameters(self) -> dict[str, Any]:
        """The JSON schema of the arguments object."""

    def schema(self) -> dict[str, Any]:
        """The function schema sent to the model."""
        return {
            "type": "function",
            "function": {"name": self.name, "description": self.description, "parameters": self.parameters()},
        }

    @abstractmethod
    def validate(self, data: dict[str, Any]) -> Any:
        """The arguments ``run`` takes, from the parsed JSON object. Raises ArgumentsError."""

    # -- running ---------------------------------------------------------------------

    @abstractmethod
    async def run(self, args: Any, ctx: ToolContext) -> str | ToolOutput: ...

    def permission(self, args: Any, ctx: ToolContext) -> PermissionRequest | None:
        """What the policy must decide before this call runs (None: nothing)."""
        return None

    def concurrent(self, args: Any) -> bool:
        """Whether this call may run at the same time as the step's other calls (when all
        of them may): calls that change nothing, by default."""
        return self.read_only

    # -- Claude Code's dialect (hooks written for Claude Code) ---------------------------

    def names(self) -> tuple[str, ...]:
        """Every name that selects this tool: its own, then Claude Code's."""
        return (self.name, *(n for n in self.claude_names if n != self.name))

    def claude_input(self, args: Mapping[str, Any], root: Path) -> dict[str, Any]:
        """The call's arguments (the JSON object) as Claude Code's tool takes them."""
        return claude.to_claude(args, self.claude_fields, root)

    def from_claude_input(self, data: Mapping[str, Any], root: Path) -> dict[str, Any]:
        """Arguments in Claude Code's fields (a hook's ``updatedInput``) back in this tool's."""
        return claude.from_claude(data, self.claude_fields, root)

    def same_argument(self, key: str, old: Any, new: Any, root: Path) -> bool:
        """Whether ``new`` says the same as ``old`` for argument ``key`` (a path given back
        in another spelling of the same file is the same)."""
        if old == new:
            return True
        spec = self.claude_fields.get(key)
        return (spec is not None and spec[1] == "path" and isinstance(old, str) and isinstance(new, str)
                and claude.absolute(old, root) == claude.absolute(new, root))

    # -- what the agent knows about the tool ------------------------------------------

    def summary(self, args: Any) -> str:
        """The key argument, shown on the tool card while it runs."""
        return ""

    def shown_code(self, args: Any) -> tuple[str, str] | None:
        """A program the card shows highlighted, as (language, source); None for most tools."""
        return None

    def outcome(self, args: Any, result: ToolResult) -> str:
        """One short human line once the call has ended (the card's summary)."""
        return first_line(result.text)

    def more_hint(self, args: Any) -> str:
        """How the model gets more of a result that the output budget cut."""
        return "narrow the request (a more specific query, a path or a smaller range)"

    def fitted(self, args: Any, full: str, shown: str, ctx: ToolContext) -> None:
        """Called after the output budget fitted a result (``shown`` may be shorter)."""

    def touched(self, args: Any, ctx: ToolContext) -> list[Path]:
        """Files this call read or changed (their folders' AGENTS.md join the prompt)."""
        return []

    def dropped(self, args: dict[str, Any], ctx: ToolContext) -> None:
        """Called once when an old result of this tool first leaves the requests (elided):
        the model no longer holds it."""

    def elided_note(self, args: dict[str, Any], text: str, ctx: ToolContext) -> str:
        """The note that stands in for an old result left out of a request: what it was,
        and exactly how to get it again."""
        shown = json.dumps(args, ensure_ascii=False)
        if len(shown) > 300:
            shown = shown[:300] + "…"
        return f"{elided_head(text)} It was {self.name} with {shown}; call it again with the same arguments to see it.]"


def elided_head(text: str) -> str:
    size = f"{len(text):,} characters, {text.count(chr(10)) + 1:,} lines"
    return f"[Old result elided to keep the context small ({size})."


def first_line(text: str, width: int = 160) -> str:
    lines = [ln for ln in text.strip().splitlines() if ln.strip()]
    if not lines:
        return "(no output)"
    first = lines[0]
    if len(first) > width:
        first = first[: width - 1] + "…"
    if len(lines) > 1:
        first += f" (+{len(lines) - 1} lines)"
    return first


def plural(n: int, word: str) -> str:
    return f"{n:,} {word}" if n == 1 else f"{n:,} {word}s"


class Tool(BaseTool, Generic[I]):
    """A built-in tool: class attributes (``name``, ``description``, ...) and a pydantic ``Input``."""

    Input: ClassVar[type[ToolInput]]
    _schema_cache: ClassVar[dict[str, Any]]  # set by schema_of(), per class

    def parameters(self) -> dict[str, Any]:
        params: dict[str, Any] = type(self).schema_of()["function"]["parameters"]
        return params


    def schema(self) -> dict[str, Any]:
        return type(self).schema_of()

    @classmethod
    def schema_of(cls) -> dict[str, Any]:
        """The function schema, built once per tool class."""
        cached = cls.__dict__.get("_schema_cache")
        if cached is None:
            params = cls.Input.model_json_schema()
            params.pop("title", None)
            # Unknown arguments are refused by validate() anyway (extra="forbid"); saying so
            # in every request's schema costs tokens and tells the model nothing.
            params.pop("additionalProperties", None)
            for name, prop in list(params.get("properties", {}).items()):
                prop.pop("title", None)
                params["properties"][name] = _optional(prop)
            cached = {
                "type": "function",
                "function": {"name": cls.name, "description": cls.description, "parameters": params},
            }
            cls._schema_cache = cached
        return cached

    def validate(self, data: dict[str, Any]) -> I:
        try:
            return self.Input.model_validate(data)  # type: ignore[return-value]
        except ValidationError as e:
            parts = []
            for err in e.errors():
                loc = ".".join(str(x) for x in err["loc"]) or "(arguments)"
                parts.append(f"{loc}: {err['msg']}")
            raise ArgumentsError("; ".join(parts)) from None

    @abstractmethod
    async def run(self, args: I, ctx: ToolContext) -> str | ToolOutput: ...


class SchemaTool(BaseTool):
    """A tool whose JSON schema is known only at run time (an MCP server's tools).

    Arguments are checked against the schema (``jsonschema``); ``run`` gets the dict.
    Subclasses implement ``run``."""

    def __init__(self, name: str, description: str, parameters: dict[str, Any], *, read_only: bool = False,
                 kind: Kind | None = "Tool", origin: str = "") -> None:
        self.name = name
        self.description = description
        self._parameters = _object_schema(parameters)
        self.read_only = read_only
        self.kind = kind
        self.origin = origin
        self._validator: Any = None

    def parameters(self) -> dict[str, Any]:
        return self._parameters

    def validate(self, data: dict[str, Any]) -> dict[str, Any]:
        import jsonschema  # noqa: PLC0415 - a heavy import only schema tools need

        if self._validator is None:
            cls = jsonschema.validators.validator_for(self._parameters, default=jsonschema.Draft202012Validator)
            try:
                cls.check_schema(self._parameters)
                self._validator = cls(self._parameters)
            except jsonschema.SchemaError:
                self._validator = False  # a broken schema from the server: take the arguments as they are
        if self._validator:
            errors = sorted(self._validator.iter_errors(data), key=lambda e: list(e.path))
            if errors:
                parts = [f"{'.'.join(str(p) for p in e.path) or '(arguments)'}: {e.message}" for e in errors[:5]]
                raise ArgumentsError("; ".join(parts))
        return data

    def summary(self, args: Any) -> str:
        if isinstance(args, dict):
            for value in args.values():
                if isinstance(value, str) and value.strip():
                    return value if len(value) < 80 else value[:79] + "…"
        return ""

    def permission(self, args: Any, ctx: ToolContext) -> PermissionRequest | None:
        if self.kind is None:
            return None
        return PermissionRequest(self.kind, self.name, ctx.workspace.root)


def _optional(prop: dict[str, Any]) -> dict[str, Any]:
    """``{"anyOf": [{...}, {"type": "null"}], "default": null}`` (pydantic's ``X | None = None``)
    as just ``{...}``: the argument is optional already, and the short form costs fewer tokens
    on every request."""
    any_of = prop.get("anyOf")
    if not isinstance(any_of, list) or prop.get("default", 0) is not None:
        return prop
    rest = [s for s in any_of if s != {"type": "null"}]
    if len(rest) != 1 or len(rest) == len(any_of):
        return prop
    out = {**rest[0], **{k: v for k, v in prop.items() if k not in ("anyOf", "default")}}
    return out


def _object_schema(schema: Any) -> dict[str, Any]:
    if not isinstance(schema, dict) or not schema:
        return {"type": "object", "properties": {}}
    if "type" not in schema:
        return {"type": "object", **schema}
    return schema


__all__ = [
    "ArgumentsError",
    "BaseTool",
    "DEFAULT_COMMAND_TIMEOUT",
    "Image",
    "SchemaTool",
    "TodoStore",
    "Tool",
    "ToolContext",
    "ToolError",
    "ToolInput",
    "ToolOutput",
    "ToolResult",
    "elided_head",
    "first_line",
    "plural",
]
