"""The ``codeloop_tools`` module a code-mode program imports: one function per tool.

Generated from the tools' JSON schemas, whatever their source (built-in, MCP, ...): a tool
named ``mcp__git__git-status`` becomes ``mcp__git__git_status``; each parameter becomes a
keyword-only argument with a type annotation from its schema (optional ones default to None
and are left out of the call); the docstring is the tool's description and its parameters'.
Each function calls ``_call(tool_name, arguments)``, which the program's bootstrap
(``child.py``) connects to the host.
"""

from __future__ import annotations

import keyword
import re
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

from codeloop.tools.base import BaseTool

MODULE = "codeloop_tools"

_TYPES = {"string": "str", "integer": "int", "number": "float", "boolean": "bool", "array": "list",
          "object": "dict", "null": "None"}

# What every generated module starts with: the exceptions and the generic call.
HEADER = '''"""Your tools, as functions. Each takes keyword arguments (the tool's parameters) and returns
the tool's text result. A call that fails raises ToolError (its .text says why); a call the
permissions, the user or the mode refused raises ToolDenied (a ToolError). Past the program's
cap on tool calls, ToolCallLimit (not an Exception: it ends the program).

call_tool(name, **arguments) calls any tool by its exact name."""

from __future__ import annotations

from typing import Any, Literal  # noqa: F401 - used by the annotations


class ToolError(Exception):
    """A tool call failed; ``text`` is the tool's message."""

    def __init__(self, tool: str, text: str) -> None:
        super().__init__(f"{tool}: {text}")
        self.tool = tool
        self.text = text


class ToolDenied(ToolError):
    """The call was refused (permission rules, the user, the mode)."""


class ToolCallLimit(BaseException):
    """The program made more tool calls than it may."""


def call_tool(name: str, **arguments: Any) -> str:
    """Call the tool ``name`` (its exact name) with these arguments; returns its text result."""
    return _call(name, arguments)


def _call(name: str, arguments: dict) -> str:
    args = {k: v for k, v in arguments.items() if v is not None}
    reply = _channel(name, args)  # noqa: F821 - set by the bootstrap
    status = reply.get("status")
    if status == "ok":
        return reply.get("text", "")
    if status == "limit":
        raise ToolCallLimit(reply.get("text", "too many tool calls"))
    if status == "denied":
        raise ToolDenied(name, reply.get("text", ""))
    raise ToolError(name, reply.get("text", ""))

'''


def python_name(name: str, taken: set[str] | None = None) -> str:
    """A Python identifier for a tool or parameter name, unique among ``taken``."""
    out = re.sub(r"\W", "_", name) or "_"
    if out[0].isdigit():
        out = "_" + out
    if keyword.iskeyword(out) or keyword.issoftkeyword(out) or out in ("ToolError", "ToolDenied", "ToolCallLimit",
                                                                           "call_tool", "Any", "Literal"):
        out += "_"
    if taken is not None:
        base, n = out, 2
        while out in taken:
            out = f"{base}_{n}"
            n += 1
        taken.add(out)
    return out


def annotation(schema: Any) -> str:
    """A type annotation (as text) for a JSON schema."""
    if not isinstance(schema, dict):
        return "Any"
    if "enum" in schema and isinstance(schema["enum"], list) and schema["enum"]:
        values = [v for v in schema["enum"] if isinstance(v, (str, int, float, bool))]
        if values and len(values) == len(schema["enum"]):
            return "Literal[" + ", ".join(repr(v) for v in values) + "]"
    for key in ("anyOf", "oneOf"):
        if isinstance(schema.get(key), list):
            parts = list(dict.fromkeys(annotation(s) for s in schema[key]))
            return "Any" if "Any" in parts else " | ".join(parts)
    kind = schema.get("type")
    if isinstance(kind, list):
        parts = list(dict.fromkeys(_TYPES.get(k, "Any") for k in kind if isinstance(k, str)))
        return "Any" if not parts or "Any" in parts else " | ".join(parts)
    if kind == "array":
        inner = annotation(schema.get("items")) if isinstance(schema.get("items"), dict) else "Any"
        return f"list[{inner}]"
    if kind == "object":
        return "dict[str, Any]"
    return _TYPES.get(kind, "Any") if isinstance(kind, str) else "Any"


@dataclass(frozen=True, slots=True)
class Stub:
    tool: str  # the tool's name
    function: str  # the Python name
    signature: str  # "read(*, path: str, limit: int | None = None) -> str"


def _describe(schema: dict[str, Any]) -> str:
    text = str(schema.get("description") or "").strip()
    extra = []
    if "default" in schema:
        extra.append(f"default {schema['default']!r}")
    if isinstance(schema.get("enum"), list):
        extra.append("one of " + ", ".join(repr(v) for v in schema["enum"]))
    return (text + (f" ({'; '.join(extra)})" if extra else "")).strip()


def stub_source(tool: BaseTool, function: str) -> tuple[str, Stub]:
    params = tool.parameters()
    raw = params.get("properties")
    props: dict[str, Any] = raw if isinstance(raw, dict) else {}
    required = [p for p in params.get("required", []) if isinstance(p, str) and p in props]
    taken: set[str] = set()
    args: list[str] = []
    mapping: list[tuple[str, str]] = []
    docs: list[str] = []
    for name in required + [p for p in props if p not in required]:
        py = python_name(name, taken)
        ann = annotation(props[name])
        if name in required:
            args.append(f"{py}: {ann}")
        else:
            args.append(f"{py}: {ann} | None = None" if ann not in ("Any", "None") else f"{py}: Any = None")
        mapping.append((name, py))
        desc = _describe(props[name]) if isinstance(props[name], dict) else ""
        docs.append(f"    {py}: {desc}" if desc else f"    {py}")
    sig = f"{function}(" + ("*, " + ", ".join(args) if args else "") + ") -> str"
    doc = (tool.description or tool.name).strip()
    if docs:
        doc += "\n\nArgs:\n" + "\n".join(docs)
    doc += "\n\nReturns the tool's text result. Raises ToolError (ToolDenied when refused)."
    body = ", ".join(f"{n!r}: {py}" for n, py in mapping)
    src = (f"def {sig}:\n"
           f"    return _call({tool.name!r}, {{{body}}})\n\n\n"
           f"{function}.__doc__ = {doc!r}\n\n\n")
    return src, Stub(tool.name, function, sig)


def module_source(tools: Iterable[BaseTool]) -> tuple[str, list[Stub]]:
    """The module's source, and one Stub per tool (in the tools' order)."""
    taken: set[str] = set()
    parts = [HEADER]
    stubs: list[Stub] = []
    for tool in tools:
        src, stub = stub_source(tool, python_name(tool.name, taken))
        parts.append(src)
        stubs.append(stub)
    names = ", ".join(repr(s.function) for s in stubs)
    parts.append(f"__all__ = [{names}, 'call_tool', 'ToolError', 'ToolDenied', 'ToolCallLimit']\n")
    return "".join(parts), stubs


__all__ = ["MODULE", "Stub", "annotation", "module_source", "python_name", "stub_source"]
