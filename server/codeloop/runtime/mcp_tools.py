"""The MCP servers' tools as one session's tool source.

``McpToolSource`` lists an ``McpTool`` (``tools.base.SchemaTool``) per tool of every
ready server, named ``mcp__<server>__<tool>``. Each is decided by the policy by name
(kind "Tool": Claude Code's rules ``mcp__server``, ``mcp__server__*``,
``mcp__server__tool``), shows its server on its card (``origin``), and returns the
server's result: text (budgeted by the session like any tool's), ``isError`` as an error,
images as image parts when the model takes them. ``readOnlyHint`` makes a tool
``read_only`` (calls may run concurrently, and it stays in plan mode); it never skips a
permission.

Tool search: when every MCP schema would take more than ``toolSearchShare`` of the
context window, the MCP tools are ``deferred`` (their schemas are not sent) and a
``search_tools`` tool lists them by name with a line each; what it finds is loaded for
the rest of the session. Its description is the same for as long as the tool list is
(prompt caches keep their prefix): it lists every MCP tool, loaded or not.

One source per session over the workspace's shared servers (``runtime/mcp.py``): the
loaded tools, and what the model was told, are the session's.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Mapping
from typing import Any, Protocol

from codeloop.policy.types import PermissionRequest
from codeloop.services.mcp import McpCallResult, McpEvent, McpToolInfo, ServerState, plan_tools, run_search
from codeloop.services.mcp.names import sanitize, server_prefix
from codeloop.tools.base import (
    BaseTool,
    Image,
    SchemaTool,
    ToolContext,
    ToolError,
    ToolOutput,
    ToolResult,
    elided_head,
    first_line,
)

# An error result longer than this is cut (successful results go through the session's
# output budget; errors do not).
MAX_ERROR_CHARS = 8000
# The most tool names a note to the model lists.
NOTE_NAMES = 12
INSTRUCTIONS_CHARS = 2000


class McpServers(Protocol):
    """What a source needs of the workspace's MCP servers (``runtime.mcp.WorkspaceMcp``)."""

    def tools(self) -> list[McpToolInfo]: ...

    def states(self) -> list[ServerState]: ...

    def subscribe(self, callback: Callable[[McpEvent | None], None]) -> Callable[[], None]: ...

    def call(self, qualified_name: str, arguments: Mapping[str, Any]) -> Awaitable[McpCallResult]: ...


def rule_name(info: McpToolInfo) -> str:
    """The name permission rules match: ``mcp__<server>__<tool>``, never cut or suffixed
    (the name the model calls may be, when it is over 64 characters or collides)."""
    return server_prefix(info.server) + sanitize(info.name)


class McpTool(SchemaTool):
    def __init__(self, info: McpToolInfo, servers: McpServers) -> None:
        description = info.description or info.title or f"The tool {info.name} of the MCP server {info.server}."
        super().__init__(info.qualified_name, description, dict(info.input_schema), read_only=info.read_only,
                         kind="Tool", origin=info.server)
        self.info = info
        self.servers = servers

    def permission(self, args: Any, ctx: ToolContext) -> PermissionRequest:
        return PermissionRequest("Tool", rule_name(self.info), ctx.workspace.root)

    async def run(self, args: dict[str, Any], ctx: ToolContext) -> str | ToolOutput:
        result = await self.servers.call(self.name, args)  # cancelling the turn cancels the request
        text = result.model_text(ctx.images)
        if result.is_error:
            if len(text) > MAX_ERROR_CHARS:
                text = text[:MAX_ERROR_CHARS] + f"\n[... {len(text) - MAX_ERROR_CHARS:,} more characters cut]"
            raise ToolError(text)
        images: tuple[Image, ...] = ()
        if ctx.images:
            images = tuple(Image(p.mime_type, p.data, f"{self.name} image {i}") for i, p in enumerate(result.images, 1))
        return ToolOutput(text or "(the tool returned nothing)", images)

    def more_hint(self, args: Any) -> str:
        return "call the tool again with narrower arguments, if it takes any"

    def outcome(self, args: Any, result: ToolResult) -> str:
        # The card's line is the server's answer, not the notes the session added after it.
        return first_line(result.text.split("\n\n[", 1)[0])

    def elided_note(self, args: dict[str, Any], text: str, ctx: ToolContext) -> str:
        if self.read_only:
            return super().elided_note(args, text, ctx)
        return (f"{elided_head(text)} It was the MCP tool {self.name}; it may change things, so call it again "
                f"only to act again, not to see this result.]")


class SearchTool(SchemaTool):
    """``search_tools``: loads the schemas of deferred MCP tools for the rest of the session."""

    def __init__(self, schema: dict[str, Any], source: "McpToolSource") -> None:
        fn = schema["function"]
        super().__init__(fn["name"], fn["description"], fn["parameters"], read_only=True, kind=None)
        self.source = source

    async def run(self, args: dict[str, Any], ctx: ToolContext) -> str:
        query = args.get("query")
        if not isinstance(query, str) or not query.strip():
            raise ToolError("give a query: keywords, or select:name1,name2")
        limit = args.get("limit")
        text, new = run_search(query, self.source.infos(), self.source.loaded,
                               limit if isinstance(limit, int) else 5)
        self.source.load(new)
        return text

    def summary(self, args: Any) -> str:
        return str(args.get("query", "")) if isinstance(args, dict) else ""


class McpToolSource:
    """The MCP tools of one session (a ``tools.registry.ToolSource``)."""

    name = "mcp"

    def __init__(self, servers: McpServers, *, context_window: Callable[[], int],
                 share: Callable[[], float]) -> None:
        self.servers = servers
        self.context_window = context_window
        self.share = share
        self.loaded: set[str] = set()
        self._generation = 0
        self._key: tuple[Any, ...] | None = None
        self._version = 0
        self._tools: list[BaseTool] = []
        self._cache: dict[str, McpTool] = {}
        self._search: SearchTool | None = None
        self._infos: list[McpToolInfo] = []
        self._told: dict[str, tuple[str, ...]] | None = None  # per server, the tools the model was told of
        self._unsubscribe = servers.subscribe(self._changed)

    # -- ToolSource --------------------------------------------------------------------

    @property
    def version(self) -> int:
        self._refresh()
        return self._version

    def tools(self) -> list[BaseTool]:
        self._refresh()
        return self._tools

    def infos(self) -> list[McpToolInfo]:
        self._refresh()
        return self._infos

    def load(self, names: list[str]) -> None:
        """Tool search found these: send their schemas from the next request on."""
        new = [n for n in names if n not in self.loaded]
        if new:
            self.loaded.update(new)
            self._generation += 1

    def close(self) -> None:
        """Stop listening to the servers (the session ended)."""
        self._unsubscribe()

    def _changed(self, event: McpEvent | None) -> None:
        self._generation += 1

    def _refresh(self) -> None:
        key = (self._generation, self.context_window(), self.share())
        if key == self._key:
            return
        self._key = key
        infos = self.servers.tools()
        plan = plan_tools(infos, context_window=key[1], share=key[2]) if infos else None
        tools: list[BaseTool] = []
        cache: dict[str, McpTool] = {}
        for info in infos:
            tool = self._cache.get(info.qualified_name)
            if tool is None or tool.info != info:
                tool = McpTool(info, self.servers)
            tool.deferred = bool(plan and plan.deferred) and info.qualified_name not in self.loaded
            cache[info.qualified_name] = tool
            tools.append(tool)
        if plan is not None and plan.search_tool is not None:
            if self._search is None or self._search.schema() != plan.search_tool:
                self._search = SearchTool(plan.search_tool, self)
            tools.append(self._search)
        else:
            self._search = None
        self._cache, self._tools, self._infos = cache, tools, infos
        self._version += 1

    # -- what the model is told ------------------------------------------------------------

    def take_notes(self) -> list[str]:
        """What changed in the MCP tools since the model was last told (a server connected
        mid-session, stopped, or changed its tools), as short notes for the next user
        message or tool result. The first call tells only the servers' instructions: the
        tools there are then are in the request's tool list anyway."""
        self._refresh()
        now: dict[str, tuple[str, ...]] = {}
        for info in self._infos:
            now.setdefault(info.server, ())
            now[info.server] += (info.qualified_name,)
        told, self._told = self._told, now
        deferred = self._search is not None
        states = {s.name: s for s in self.servers.states()}
        notes: list[str] = []
        for server, names in now.items():
            before = told.get(server) if told is not None else None
            if before is None:
                if told is not None:
                    how = (f"load them with {self._search.name} (they are listed in its description)" if deferred
                           and self._search is not None else f"they are: {_names(names)}")
                    notes.append(f"The MCP server {server!r} is now connected with {len(names)} tool"
                                 f"{'s' if len(names) != 1 else ''}; {how}.")
                instructions = (states[server].instructions or "").strip() if server in states else ""
                if instructions:
                    if len(instructions) > INSTRUCTIONS_CHARS:
                        instructions = instructions[:INSTRUCTIONS_CHARS] + " [...]"
                    notes.append(f"Instructions from the MCP server {server!r}:\n{instructions}")
            elif before != names:
                added = [n for n in names if n not in before]
                removed = [n for n in before if n not in names]
                parts = ([f"added {_names(added)}"] if added else []) + ([f"removed {_names(removed)}"] if removed else [])
                notes.append(f"The MCP server {server!r} changed its tools: {'; '.join(parts) or 'new definitions'}.")
        for server, names in (told or {}).items():
            if server not in now:
                state = states.get(server)
                why = f" ({state.status}: {state.last_error})" if state is not None and state.last_error else ""
                notes.append(f"The MCP server {server!r} is no longer available{why}; its tools "
                             f"({_names(names)}) cannot be called until it is back.")
        return notes


def _names(names: tuple[str, ...] | list[str]) -> str:
    shown = ", ".join(names[:NOTE_NAMES])
    return shown + (f" and {len(names) - NOTE_NAMES} more" if len(names) > NOTE_NAMES else "")


__all__ = ["McpServers", "McpTool", "McpToolSource", "SearchTool", "rule_name"]
