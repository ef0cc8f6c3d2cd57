"""The client's MCP servers (``mcpServers`` of ``session/new`` and ``session/load``).

``server_configs`` turns ACP's server entries (stdio, Streamable HTTP, SSE) into the
MCP client's ``ServerConfig`` (``services/mcp``): they are the user's own, as an
editor's ``mcpServers`` setting is (source "editor": no project consent), and their
tools are named as every MCP tool is (``mcp__<server>__<tool>``), asked through the
policy like any MCP tool.

HAND-OFF (until the MCP tool source of branch h/mcp2 is on main): ``ClientMcpTools``
below is a small tool source of its own over an ``McpManager`` of the client's
servers, so the session has their tools. Once ``runtime/mcp.py`` (``WorkspaceMcp``)
lands, the agent gives it these servers (``WorkspaceMcp(..., editor=entries(...))``,
which also brings the user's and the project's servers) and ``attach``es each session;
this class then goes.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

from acp.schema import HttpMcpServer, McpServerStdio, SseMcpServer

from codeloop.services.mcp import McpToolInfo, ServerConfig
from codeloop.tools.base import Image, SchemaTool, ToolContext, ToolError, ToolOutput

log = logging.getLogger(__name__)

ORIGIN = "the ACP client (session mcpServers)"
SETTLE_TIMEOUT = 30.0  # seconds the first prompt waits for the client's servers to start


def server_configs(servers: Sequence[Any] | None) -> tuple[list[ServerConfig], list[str]]:
    """The client's servers as ``ServerConfig`` entries, and the problems (one per server
    that cannot be used; the others are unaffected)."""
    out: dict[str, ServerConfig] = {}
    problems: list[str] = []
    for s in servers or []:
        name = str(getattr(s, "name", "") or "").strip()
        if not name:
            problems.append("an MCP server from the client has no name; it is ignored")
            continue
        if name in out:
            problems.append(f"the client named two MCP servers {name!r}; the first is kept")
            continue
        if isinstance(s, McpServerStdio):
            out[name] = ServerConfig(name=name, transport="stdio", source="editor", origin=ORIGIN, command=s.command,
                                     args=tuple(s.args), env={e.name: e.value for e in s.env},
                                     raw=s.model_dump(by_alias=True))
        elif isinstance(s, (HttpMcpServer, SseMcpServer)):
            out[name] = ServerConfig(name=name, transport="http" if isinstance(s, HttpMcpServer) else "sse",
                                     source="editor", origin=ORIGIN, url=s.url,
                                     headers={h.name: h.value for h in s.headers}, raw=s.model_dump(by_alias=True))
        else:
            problems.append(f"the MCP server {name!r} uses a transport codeloop does not speak "
                            f"({type(s).__name__}); it is ignored")
    return list(out.values()), problems


def entries(configs: Sequence[ServerConfig]) -> dict[str, dict[str, Any]]:
    """The servers in the editor's ``mcpServers`` setting format (``{"name": entry}``)."""
    out: dict[str, dict[str, Any]] = {}
    for c in configs:
        if c.transport == "stdio":
            out[c.name] = {"type": "stdio", "command": c.command, "args": list(c.args), "env": dict(c.env)}
        else:
            out[c.name] = {"type": c.transport, "url": c.url, "headers": dict(c.headers)}
    return out


class ClientMcpTool(SchemaTool):
    def __init__(self, info: McpToolInfo, manager: Any) -> None:
        super().__init__(info.qualified_name, info.description, dict(info.input_schema), read_only=info.read_only,
                         kind="Tool", origin=info.server)
        self.manager = manager

    async def run(self, args: Any, ctx: ToolContext) -> ToolOutput:
        result = await self.manager.call(self.name, args)
        if result.is_error:
            raise ToolError(result.text)
        images = tuple(Image(i.mime_type, i.data) for i in result.images) if ctx.images else ()
        return ToolOutput(result.model_text(ctx.images), images)


class ClientMcpTools:
    """HAND-OFF (see the module's docstring): the client's servers as a tool source."""

    name = "acp-mcp"

    def __init__(self, configs: Sequence[ServerConfig], root: Path, *, notify: Callable[[str], None] | None = None) -> None:
        self.configs = list(configs)
        self.root = root
        self.notify = notify
        self.manager: Any = None
        self._version = 0
        self._tools: list[ClientMcpTool] = []
        self._built = -1
        self._unsubscribe: Callable[[], None] | None = None

    async def start(self) -> None:
        from codeloop.services.mcp import McpManager  # noqa: PLC0415 - loads the SDK: only with servers

        self.manager = McpManager(self.configs, root=self.root)
        self._unsubscribe = self.manager.subscribe(self._changed)
        await self.manager.start()

    def _changed(self, event: Any) -> None:
        self._version += 1
        if self.notify is not None and event.kind == "state" and event.state.status == "failed":
            self.notify(f"The MCP server {event.server!r} failed: {event.state.last_error}")

    async def settle(self, timeout: float = SETTLE_TIMEOUT) -> None:
        if self.manager is not None:
            await self.manager.wait_settled(timeout)

    @property
    def version(self) -> int:
        return self._version

    def tools(self) -> list[ClientMcpTool]:
        if self._built != self._version:
            infos = self.manager.tools() if self.manager is not None else []
            self._tools = [ClientMcpTool(i, self.manager) for i in infos]
            self._built = self._version
        return self._tools

    async def close(self) -> None:
        if self._unsubscribe is not None:
            self._unsubscribe()
        if self.manager is not None:
            await self.manager.close()


__all__ = ["ClientMcpTool", "ClientMcpTools", "ORIGIN", "entries", "server_configs"]
