"""Code mode's tool source: ``run_code``, a tool that runs a Python program in which the
session's tools are functions.

The functions are generated from the session's ``ToolRegistry`` (built-in and MCP tools alike,
whatever source they come from), and each call the program makes runs through
``Agent.run_tool_call``: the same path as the model's own calls (permissions and approvals,
hooks, proposals and their review, the workspace guard, the output budget), its card nested
under the program's. The model gets one result: what the program printed (head and tail), its
return value as JSON, the calls it made with their status, a short traceback, and why it ended.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Callable, Sequence
from dataclasses import dataclass, replace
from typing import Any

from pydantic import Field

from codeloop.agent.loop import Agent
from codeloop.core.ports import CommandSandbox
from codeloop.policy.types import PermissionRequest
from codeloop.runtime.codemode.runner import DEFAULT_MEMORY, CodeRun, run_program
from codeloop.runtime.codemode.stubs import MODULE, Stub, module_source, python_name
from codeloop.tools.base import BaseTool, Tool, ToolContext, ToolError, ToolInput, ToolResult, plural

log = logging.getLogger(__name__)

NAME = "run_code"
MAX_CALL_LINES = 60  # calls listed one by one in the result; the rest are counted
MAX_VALUE_CHARS = 8_000
MAX_TRACEBACK_LINES = 20
CALL_ARGS_CHARS = 100


@dataclass
class CodeModeSettings:
    enabled: bool = True
    timeout: float = 60.0  # seconds of the program's own time (also the most a call may ask for)
    max_calls: int = 200
    memory: int = DEFAULT_MEMORY


class RunCode(Tool["RunCode.Input"]):
    name = NAME
    read_only = False
    kind = "Tool"  # unsandboxed, a program is asked like any tool; sandboxed, only its calls are
    # No guidance line in the system prompt: the description says when code mode pays, and the
    # prompt stays the same whether codeMode is on or off (prompt caches).

    class Input(ToolInput):
        program: str
        timeout: float | None = Field(None, gt=0, description="Seconds of its own time (default and most: the limit).")

    description = ""  # made from the session's tools and the settings (see ``schema``)

    def __init__(self, source: "CodeModeSource") -> None:
        self.source = source

    def schema(self) -> dict[str, Any]:
        self.description = self.source.description()
        base = type(self).schema_of()
        return {**base, "function": {**base["function"], "description": self.description}}

    def summary(self, args: Input) -> str:
        lines = [ln for ln in args.program.strip().splitlines() if ln.strip() and not ln.lstrip().startswith("#")]
        body = [ln for ln in lines if not ln.startswith(("import ", "from "))] or lines
        first = body[0].strip() if body else "(empty program)"
        return (first if len(first) <= 80 else first[:79] + "…") + (f" (+{len(lines) - 1} lines)" if len(lines) > 1 else "")

    def shown_code(self, args: Input) -> tuple[str, str] | None:
        return ("python", args.program)

    def outcome(self, args: Input, result: ToolResult) -> str:
        first = result.text.splitlines()[0] if result.text else ""
        return first.removeprefix("Program ended: ")

    def more_hint(self, args: Any) -> str:
        return "print less (filter in the program) or return a smaller value"

    def permission(self, args: Input, ctx: ToolContext) -> PermissionRequest | None:
        box = self.source.sandbox()
        if box is not None and (getattr(box, "refusal", lambda: None)() is not None or box.auto_allow):
            return None  # refused (the run says why), or contained: only the program's calls are decided
        return PermissionRequest("Tool", NAME, ctx.workspace.root)

    async def run(self, args: Input, ctx: ToolContext) -> str:
        settings = self.source.settings()
        if not args.program.strip():
            raise ToolError("program is empty")
        timeout = min(args.timeout or settings.timeout, settings.timeout)
        agent = self.source.agent()
        box = self.source.sandbox()
        if agent is None or box is None:
            raise ToolError(f"{NAME} is not available in this session")
        module, _ = self.source.module()
        parent = ctx.call_id
        # The program gets whole results: no "unchanged since your read" notes (the model's
        # read memo is about what the model holds), and what it reads is not recorded there.
        inner = replace(ctx, read_memo=None, for_program=True)

        async def call(name: str, arguments: dict[str, Any], n: int) -> tuple[str, str, str]:
            if name == NAME:
                return "error", f"{NAME} cannot be called from a program", "not run"
            outcome = await agent.run_tool_call(name, arguments, call_id=f"{parent}.{n}", parent=parent,
                                                context=inner)
            return outcome.status, outcome.result.text, outcome.summary

        run = await run_program(args.program, module, sandbox=box, cwd=ctx.workspace.root, timeout=timeout,
                                max_calls=settings.max_calls, call=call, memory=settings.memory)
        if run.ending == "refused":
            raise ToolError(run.why)
        return render(run, timeout)


class CodeModeSource:
    """The ``ToolSource`` of ``run_code``: empty when ``codeMode`` is off. The functions are
    the registry's tools (those the mode shows), minus ``run_code`` itself."""

    name = "code mode"

    def __init__(self, *, agent: Callable[[], Agent | None], sandbox: Callable[[], CommandSandbox | None],
                 settings: Callable[[], CodeModeSettings]) -> None:
        self.agent = agent
        self.sandbox = sandbox
        self.settings = settings
        self._tool = RunCode(self)
        self._cache: tuple[Any, str, list[Stub]] | None = None
        self._described: tuple[Any, str] | None = None

    def tools(self) -> Sequence[BaseTool]:
        return [self._tool] if self.settings().enabled else []

    @property
    def version(self) -> int:
        return 1 if self.settings().enabled else 0

    def functions(self) -> list[BaseTool]:
        agent = self.agent()
        if agent is None:
            return []
        return [t for t in agent.tools.all() if t.name != NAME and agent.visible(t)]

    def module(self) -> tuple[str, list[Stub]]:
        """The ``codeloop_tools`` source for the tools there are now (cached while they stay)."""
        tools = self.functions()
        key = tuple((t.name, id(t)) for t in tools)
        if self._cache is None or self._cache[0] != key:
            src, stubs = module_source(tools)
            self._cache = (key, src, stubs)
        return self._cache[1], self._cache[2]

    def description(self) -> str:
        s = self.settings()
        key = (tuple(t.name for t in self.functions()), s.timeout, s.max_calls)
        if self._described is None or self._described[0] != key:
            self._described = (key, describe(self.functions(), s))
        return self._described[1]


def _example(tools: list[BaseTool]) -> tuple[str, str]:
    """An import line and a call, made from real tools (a read-only one with a required text
    parameter, if there is one)."""
    samples = {"path": "src/app.py", "pattern": "TODO", "query": "parse_config", "command": "pytest -q"}
    for t in tools:
        params = t.parameters()
        props = params.get("properties") or {}
        req = [p for p in params.get("required", []) if isinstance(props.get(p), dict) and props[p].get("type") == "string"]
        if t.read_only and req and t.name.isidentifier():
            value = samples.get(req[0], "...")
            return t.name, f'{t.name}({req[0]}="{value}")'
    return "call_tool", 'call_tool("tool_name", argument="value")'


def describe(tools: list[BaseTool], s: CodeModeSettings) -> str:
    name, example = _example(tools)
    renamed = [(t.name, fn) for t, fn in ((t, python_name(t.name)) for t in tools) if fn != t.name]
    renames = ""
    if renamed:
        shown = ", ".join(f"{a} → {b}" for a, b in renamed[:8]) + (" …" if len(renamed) > 8 else "")
        renames = f" Names that are not Python identifiers are changed: {shown}."
    return (
        "Run a Python 3 program whose functions are your tools, for many similar calls or when only "
        "part of a big output matters: only what it prints and returns comes back.\n\n"
        f"    from {MODULE} import {name}   # every tool, same name\n"
        f"    text = {example}   # keyword arguments; returns the tool's text\n\n"
        "Calls go through the same permission and review checks; a failed one raises ToolError "
        "(ToolDenied if refused). The result shows the output, the last expression's value (or "
        f"`result`) as JSON and each call. Limits: {s.timeout:g} s, {s.max_calls} calls, "
        f"{s.memory >> 20} MB; stdlib only, workspace read-only (edit with the tools), no network.{renames}"
    )


def _args_text(args: dict[str, Any]) -> str:
    parts = []
    for k, v in args.items():
        shown = json.dumps(v, ensure_ascii=False)
        if len(shown) > 40:
            shown = shown[:37] + "…" + shown[-1] if shown[0] in "\"[{" else shown[:40] + "…"
        parts.append(f"{k}={shown}")
    text = ", ".join(parts)
    return text if len(text) <= CALL_ARGS_CHARS else text[: CALL_ARGS_CHARS - 1] + "…"


def render(run: CodeRun, timeout: float) -> str:
    """The result the model gets, in every ending."""
    counts: dict[str, int] = {}
    for c in run.calls:
        counts[c.status] = counts.get(c.status, 0) + 1
    tally = ", ".join(f"{n} {s}" for s, n in counts.items())
    calls = plural(len(run.calls), "tool call") + (f" ({tally})" if tally else "")
    head = f"Program ended: {run.ending} · {run.seconds:g} s · {calls}"
    if not run.sandboxed:
        head += " · not sandboxed"
    out = [head]
    if run.why:
        out.append(run.why)
    if run.error:
        out.append(f"error: {run.error}")
    if run.stdout.total:
        out.append(f"--- stdout ({run.stdout.total:,} characters) ---\n{run.stdout.text().rstrip()}")
    else:
        out.append("--- stdout: (nothing printed) ---")
    if run.stderr.total and (run.stderr.text().strip() != run.traceback.strip()):
        out.append(f"--- stderr ({run.stderr.total:,} characters) ---\n{run.stderr.text().rstrip()}")
    if run.value_json is not None and run.value_json != "null":
        value = run.value_json
        cut = run.value_cut or (len(value) if len(value) > MAX_VALUE_CHARS else 0)
        if len(value) > MAX_VALUE_CHARS:
            value = value[:MAX_VALUE_CHARS]
        note = "" if run.value_exact else " (not JSON-serializable: its repr)"
        note += f" (cut: {cut:,} characters in all; return less)" if cut else ""
        out.append(f"--- return value ({run.value_type}){note} ---\n{value}")
    if run.calls:
        lines = [f"{c.n}. {c.tool}({_args_text(c.args)}) → {c.status}" + (f": {c.summary}" if c.summary else "")
                 for c in run.calls[:MAX_CALL_LINES]]
        if len(run.calls) > MAX_CALL_LINES:
            more = run.calls[MAX_CALL_LINES:]
            lines.append(f"... and {len(more)} more ({', '.join(sorted({c.tool for c in more}))})")
        out.append("--- tool calls ---\n" + "\n".join(lines))
    if run.traceback:
        tb = run.traceback.splitlines()
        if len(tb) > MAX_TRACEBACK_LINES:
            tb = ["..."] + tb[-MAX_TRACEBACK_LINES:]
        out.append("--- traceback ---\n" + "\n".join(tb))
    return "\n".join(out)


__all__ = ["CodeModeSettings", "CodeModeSource", "NAME", "RunCode", "describe", "render"]
