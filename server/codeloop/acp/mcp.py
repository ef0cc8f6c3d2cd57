"""The client's MCP servers (``mcpServers`` of ``session/new`` and ``session/load``).

``server_configs`` turns ACP's server entries (stdio, Streamable HTTP, SSE) into the MCP
client's ``ServerConfig`` (``services/mcp``), as given (no ``${VAR}`` expansion: the
client sends values). They are the user's own, as an editor's ``mcpServers`` setting is
(source "editor": no project consent), and run with the workspace's servers
(``runtime.mcp.WorkspaceMcp.add_client_servers``): their tools are named as every MCP
tool is (``mcp__<server>__<tool>``) and asked through the policy like any MCP tool.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from acp.schema import HttpMcpServer, McpServerStdio, SseMcpServer

from codeloop.services.mcp import ServerConfig

ORIGIN = "the ACP client (session mcpServers)"
SETTLE_TIMEOUT = 30.0  # seconds a session's first prompt waits for the MCP servers to start


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


__all__ = ["ORIGIN", "SETTLE_TIMEOUT", "server_configs"]
