"""The tools of a session, assembled from tool sources.

A ``ToolSource`` offers tools: the built-in ones (``tools/builtin.py``), an MCP
server manager's, sub-agents, code mode. Its list may change during a session
(an MCP server's ``tools/list_changed``): a source bumps its ``version`` and
the registry picks the new list up the next time it is asked.

``ToolRegistry.parse`` and ``run`` never raise into the loop (except
``CancelledError``): an unknown tool, arguments that are not JSON or do not
match the schema, and any exception in a tool come back as an error result.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Iterable, Sequence
from typing import Any, Protocol, runtime_checkable

from codeloop.tools.base import ArgumentsError, BaseTool, ToolContext, ToolError, ToolOutput, ToolResult

log = logging.getLogger(__name__)


@runtime_checkable
class ToolSource(Protocol):
    """Where tools come from. ``version`` changes whenever ``tools()`` would."""

    name: str

    def tools(self) -> Sequence[BaseTool]: ...

    @property
    def version(self) -> int: ...


class StaticSource:
    """A fixed list of tools."""

    def __init__(self, name: str, tools: Iterable[BaseTool]) -> None:
        self.name = name
        self._tools = list(tools)

    def tools(self) -> Sequence[BaseTool]:
        return self._tools

    @property
    def version(self) -> int:
        return 0


def select_tools(names: Iterable[str], available: Iterable[BaseTool]) -> tuple[list[BaseTool], list[str]]:
    """The tools of ``available`` that ``names`` select (a tool's own name or one of its
    Claude Code names: ``Bash`` selects every shell-like tool that calls itself so), in the
    order of ``available``; and the names that select none (for a clear problem)."""
    tools = list(available)
    chosen: set[str] = set()
    unknown: list[str] = []
    for name in names:
        hit = {t.name for t in tools if name in t.names()}
        if hit:
            chosen |= hit
        else:
            unknown.append(name)
    return [t for t in tools if t.name in chosen], unknown


class ToolRegistry:
    def __init__(self, sources: Iterable[ToolSource] | Iterable[BaseTool]) -> None:
        items = list(sources)
        loose = [t for t in items if isinstance(t, BaseTool)]
        self._sources: list[ToolSource] = [s for s in items if not isinstance(s, BaseTool)]  # type: ignore[misc]
        if loose:
            self._sources.insert(0, StaticSource("tools", loose))
        self._versions: tuple[int, ...] | None = None
        self._tools: dict[str, BaseTool] = {}
        self._loaded: set[str] = set()  # deferred tools whose schemas the model asked for
        self.problems: list[str] = []

    # -- sources ---------------------------------------------------------------------

    def add_source(self, source: ToolSource) -> None:
        self._sources.append(source)
        self._versions = None

    def remove_source(self, name: str) -> None:
        self._sources = [s for s in self._sources if s.name != name]
        self._versions = None

    @property
    def sources(self) -> list[ToolSource]:
        return list(self._sources)

    def _current(self) -> dict[str, BaseTool]:
        versions = tuple(s.version for s in self._sources)
        if versions != self._versions:
            tools: dict[str, BaseTool] = {}
            problems = []
            for source in self._sources:
                for tool in source.tools():
                    if tool.name in tools:
                        problems.append(
                            f"two tools are named {tool.name!r} ({source.name} and an earlier source); "
                            "the first is kept"
                        )
                        continue
                    tools[tool.name] = tool
            for p in problems:
                if p not in self.problems:
                    log.warning("tools: %s", p)
            self.problems = problems
            self._tools = tools
            self._versions = versions
        return self._tools

    # -- lookups ---------------------------------------------------------------------

    def __contains__(self, name: str) -> bool:
        return name in self._current()

    def get(self, name: str) -> BaseTool | None:
        return self._current().get(name)

    def names(self) -> list[str]:
        return list(self._current())

    def all(self) -> list[BaseTool]:
        return list(self._current().values())

    def load(self, names: Iterable[str]) -> list[str]:
        """Tool search: send these deferred tools' schemas from now on. Returns the new ones."""
        current = self._current()
        new = [n for n in names if n in current and current[n].deferred and n not in self._loaded]
        self._loaded.update(new)
        return new

    def sent(self, tool: BaseTool) -> bool:
        """Whether the tool's schema goes with requests (deferred tools once loaded)."""
        return not tool.deferred or tool.name in self._loaded

    def schemas(self, visible: Any = None) -> list[dict[str, Any]]:
        """The schemas to send, in a stable order; ``visible(tool)`` filters (the mode)."""
        return [t.schema() for t in self._current().values() if self.sent(t) and (visible is None or visible(t))]

    # -- calls -----------------------------------------------------------------------

    def parse(self, name: str, raw_args: str) -> tuple[BaseTool, Any] | ToolResult:
        """Look the tool up and validate its arguments; an error result otherwise."""
        tool = self._current().get(name)
        if tool is None:
            known = ", ".join(sorted(self._current()))
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
            return tool, tool.validate(data)
        except ArgumentsError as e:
            return ToolResult(False, f"Error: invalid arguments for {name}: {e}")
        except Exception as e:  # a validator bug must not kill the loop
            log.exception("validating arguments for %s failed", name)
            return ToolResult(False, f"Error: could not check the arguments for {name}: {type(e).__name__}: {e}")

    async def run(self, tool: BaseTool, args: Any, ctx: ToolContext) -> ToolResult:
        """Run a validated call. Never raises, except CancelledError."""
        try:
            out = await tool.run(args, ctx)
        except ToolError as e:
            return ToolResult(False, f"Error: {e}")
        except Exception as e:  # a tool bug must not kill the loop
            log.exception("tool %s failed", tool.name)
            return ToolResult(False, f"Error: {tool.name} failed: {type(e).__name__}: {e}")
        if isinstance(out, ToolOutput):
            return ToolResult(True, out.text, out.images)
        return ToolResult(True, out)


__all__ = ["StaticSource", "ToolRegistry", "ToolSource", "select_tools"]
