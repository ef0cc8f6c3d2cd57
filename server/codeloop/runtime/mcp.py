"""The MCP servers of one workspace connection, shared by its sessions.

One ``WorkspaceMcp`` per host connection (the CLI process; an editor connection, which
holds several chats): the servers are processes, so every chat of a workspace shares
them, the project consent is the workspace's, and ``/mcp restart`` acts for all. Each
session gets its own ``McpToolSource`` over it (``attach``): tool search's loaded tools
and what the model was told are the session's.

``start()`` reads the configuration in a thread (user ``mcpServers``, ``.mcp.json``,
``.vscode/mcp.json``, the editor's ``mcpServers``) and starts the servers in the
background: it returns without waiting for any. The SDK is imported only when a server
is configured. ``close()`` stops them all (process groups killed).

A client can bring servers of its own for its sessions (ACP's ``mcpServers`` of
``session/new``): ``add_client_servers`` runs them with the workspace's (one process per
name for the connection; the first definition of a name holds), and ``attach(session,
clients=names)`` shows a session the workspace's servers and only the client servers it
was given.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable, Collection, Mapping, Sequence
from pathlib import Path
from typing import Any

from codeloop.config import Settings
from codeloop.context import compaction
from codeloop.runtime.mcp_tools import McpToolSource
from codeloop.runtime.trust import ProjectTrust
from codeloop.services.mcp import (
    ConfigProblem,
    McpCallResult,
    McpEvent,
    McpToolInfo,
    ServerConfig,
    ServerState,
    load_config,
)
from codeloop.services.mcp.results import error_result

log = logging.getLogger(__name__)

NOT_CONFIGURED = ("No MCP servers are configured. Add them to .mcp.json in the workspace (Claude Code's format), "
                  "to mcpServers in ~/.config/codeloop/settings.json, or to the editor's codeloop.mcpServers setting.")


class WorkspaceMcp:
    def __init__(self, root: Path, settings: Settings, trust: ProjectTrust, *,
                 editor: Mapping[str, Any] | None = None, config_home: Path | None = None,
                 log_dir: Path | None = None, environ: Mapping[str, str] | None = None,
                 notify: Callable[[str], None] | None = None, max_failures: int | None = None) -> None:
        self.root = Path(root).resolve()
        self.settings = settings
        self.trust = trust
        self.editor = dict(editor) if isinstance(editor, Mapping) else None
        self.config_home = config_home
        self.log_dir = log_dir
        self.environ = environ
        self.notify = notify  # warnings for the user (a broken config)
        self.max_failures = max_failures  # None: the manager's default (restarts with backoff)
        self.manager: Any = None  # McpManager, once a server is configured
        self.problems: list[ConfigProblem] = []
        self._subscribers: list[Callable[[McpEvent | None], None]] = []
        self._unsubscribe: Callable[[], None] | None = None
        self._started = False
        self._lock = asyncio.Lock()
        self.clients: dict[str, ServerConfig] = {}  # servers clients brought (add_client_servers)

    # -- lifecycle ---------------------------------------------------------------------

    async def start(self) -> None:
        """Read the configuration and start the servers in the background."""
        async with self._lock:
            if self._started:
                return
            self._started = True
            cfg = await asyncio.to_thread(load_config, self.root, editor=self.editor,
                                          config_home=self.config_home, environ=self.environ)
            self.problems = list(cfg.problems)
            for p in cfg.problems:
                if self.notify is not None:
                    self.notify(f"{p}; the other MCP servers start anyway")
            # A client's servers are the most specific layer: they replace a name's definition.
            servers = {s.name: s for s in cfg.servers} | self.clients
            if not servers and not cfg.problems:
                return
            await self._run(list(servers.values()), cfg.problems)

    async def _run(self, servers: Sequence[ServerConfig], problems: Sequence[ConfigProblem]) -> None:
        from codeloop.services.mcp import McpManager  # noqa: PLC0415 - loads the SDK: only when configured

        manager = McpManager(
            servers, root=self.root, log_dir=self.log_dir, problems=problems,
            consent=self.trust.consent, ask=self.trust.ask, trust_project=self.trust.trust_project,
            startup_timeout=self.settings.mcp_startup_timeout, call_timeout=self.settings.mcp_call_timeout,
            environ=self.environ,
            **({"max_failures": self.max_failures} if self.max_failures is not None else {}),
        )
        self._unsubscribe = manager.subscribe(self._forward)
        self.manager = manager
        self._forward(None)
        await manager.start()

    async def add_client_servers(self, servers: Sequence[ServerConfig]) -> list[str]:
        """A client's servers for its sessions (``source`` "editor": no project consent).
        Each name runs once for the connection: one already brought keeps its first
        definition (a problem says so when another one differs). Started now when the
        workspace's servers run, else with them. Returns the problems."""
        problems: list[str] = []
        async with self._lock:
            new: list[ServerConfig] = []
            for s in servers:
                known = self.clients.get(s.name)
                if known is None:
                    self.clients[s.name] = s
                    new.append(s)
                elif known != s:
                    problems.append(f"the MCP server {s.name!r} already runs in this workspace as another session "
                                    f"defined it ({known.command_line()}); that one is used")
            if new and self._started:
                if self.manager is None:
                    await self._run(new, [])
                else:
                    await self.manager.add(new)
        return problems

    async def wait_settled(self, names: Collection[str] | None = None, timeout: float | None = None) -> bool:
        """Until none of these servers (None: every one) is starting, or ``timeout``."""
        if self.manager is None:
            return True
        settled: bool = await self.manager.wait_settled(timeout, names=names)
        return settled

    async def close(self) -> None:
        async with self._lock:
            manager, self.manager = self.manager, None
            if self._unsubscribe is not None:
                self._unsubscribe()
                self._unsubscribe = None
            self._started = False
        if manager is not None:
            await manager.close()
            self._forward(None)

    async def reconfigure(self, settings: Settings, editor: Mapping[str, Any] | None) -> bool:
        """New settings from the host. When the editor's ``mcpServers`` changed, the servers
        are stopped and started again from the new configuration. Returns whether they were."""
        self.settings = settings
        new = dict(editor) if isinstance(editor, Mapping) else None
        if new == self.editor:
            return False
        self.editor = new
        await self.close()
        await self.start()
        return True

    async def wait_consent(self) -> None:
        """Until every consent question asked at start is answered (terminal hosts)."""
        if self.manager is not None:
            await self.manager.wait_consent()

    # -- what there is -------------------------------------------------------------------

    def tools(self) -> list[McpToolInfo]:
        return self.manager.tools() if self.manager is not None else []

    def states(self) -> list[ServerState]:
        return self.manager.states() if self.manager is not None else []

    def subscribe(self, callback: Callable[[McpEvent | None], None]) -> Callable[[], None]:
        """``callback(event)`` on every server's state or tool-list change (None: the
        servers were (re)configured). Returns the function that unsubscribes."""
        self._subscribers.append(callback)

        def unsubscribe() -> None:
            if callback in self._subscribers:
                self._subscribers.remove(callback)

        return unsubscribe

    def _forward(self, event: McpEvent | None) -> None:
        for cb in list(self._subscribers):
            try:
                cb(event)
            except Exception:
                log.exception("MCP subscriber failed")

    async def call(self, qualified_name: str, arguments: Mapping[str, Any]) -> McpCallResult:
        manager = self.manager
        if manager is None:
            return error_result(f"there is no MCP tool named {qualified_name} (no MCP server is running)",
                                failure="unknown-tool")
        result: McpCallResult = await manager.call(qualified_name, arguments)
        return result

    # -- sessions ------------------------------------------------------------------------

    def attach(self, session: Any, clients: Collection[str] | None = None) -> McpToolSource:
        """Give ``session`` (an ``AgentSession``) the MCP tools, as a source of its own.
        ``clients``: the client servers (``add_client_servers``) this session sees (None:
        all of them); the workspace's own servers it always sees."""
        source = McpToolSource(
            self if clients is None else _ClientView(self, frozenset(clients)),
            context_window=lambda: compaction.context_window(session.settings.model, session.settings.context_window),
            share=lambda: session.settings.tool_search_share,
        )
        session.tools.add_source(source)
        return source

    @staticmethod
    def detach(session: Any) -> None:
        """The session ended: its MCP source stops listening and leaves its registry."""
        for source in session.tools.sources:
            if isinstance(source, McpToolSource):
                source.close()
                session.tools.remove_source(source.name)

    # -- what the user sees ----------------------------------------------------------------

    async def restart(self, name: str) -> str:
        if self.manager is None:
            return NOT_CONFIGURED
        try:
            state = self.manager.state(name)
        except KeyError:
            return f"There is no MCP server named {name!r}. Servers: {', '.join(s.name for s in self.states()) or 'none'}."
        if state.status == "needs-consent":
            return f"The MCP server {name!r} waits for your consent: /mcp allow {name} (or deny it)."
        if state.status == "disabled":
            return f"The MCP server {name!r} is disabled ({state.last_error}); /mcp allow {name} to run it."
        await self.manager.restart(name)
        return f"Restarting the MCP server {name!r}."

    async def set_consent(self, name: str, allowed: bool) -> str:
        if self.manager is None:
            return NOT_CONFIGURED
        try:
            state = self.manager.state(name)
        except KeyError:
            return f"There is no MCP server named {name!r}."
        if state.source != "project":
            return f"The MCP server {name!r} is yours ({state.origin}); it needs no consent."
        await self.manager.set_consent(name, allowed)
        return (f"Allowed the project's MCP server {name!r}; it is starting." if allowed
                else f"Refused the project's MCP server {name!r}; it stays off.")

    def report(self, commands: bool = True) -> str:
        """The servers, their state, tool counts and last errors (``/mcp``; ``codeloop mcp
        list`` with ``commands=False``: no slash commands to suggest)."""
        states = self.states()
        if not states:
            return NOT_CONFIGURED
        lines = ["MCP servers:"]
        for s in states:
            status: str = s.status
            if s.status == "failed" and s.retry_in is not None:
                status += f", retrying in {s.retry_in:.0f} s"
            tools = f"{s.tool_count} tool{'s' if s.tool_count != 1 else ''}" if s.status == "ready" else ""
            head = f"  {s.name}  [{status}]" + (f"  {tools}" if tools else "") + f"  ({s.source}, {s.transport})"
            lines.append(head)
            if s.description:
                lines.append(f"      {s.description}  — {s.origin}")
            if s.last_error and s.status != "ready":
                lines.append(f"      last error: {s.last_error}")
            if s.status == "failed" and s.stderr_tail.strip():
                tail = s.stderr_tail.strip().splitlines()[-3:]
                lines += [f"      stderr: {t}" for t in tail]
            if s.status == "needs-consent":
                lines.append(f"      waits for your consent: /mcp allow {s.name} or /mcp deny {s.name}" if commands
                             else "      waits for your consent: answer in codeloop chat, or pass --trust-project")
            if s.log_file and s.status in ("failed", "ready"):
                lines.append(f"      log: {s.log_file}")
        if commands:
            lines.append("/mcp restart <name> restarts one; /mcp allow|deny <name> answers for a project's server.")
        return "\n".join(lines)


class _ClientView:
    """The workspace's servers as one session sees them: the client servers of other
    sessions left out (``McpServers``)."""

    def __init__(self, mcp: WorkspaceMcp, names: frozenset[str]) -> None:
        self.mcp = mcp
        self.names = names

    def _sees(self, server: str) -> bool:
        return server not in self.mcp.clients or server in self.names

    def tools(self) -> list[McpToolInfo]:
        return [t for t in self.mcp.tools() if self._sees(t.server)]

    def states(self) -> list[ServerState]:
        return [s for s in self.mcp.states() if self._sees(s.name)]

    def subscribe(self, callback: Callable[[McpEvent | None], None]) -> Callable[[], None]:
        return self.mcp.subscribe(callback)

    async def call(self, qualified_name: str, arguments: Mapping[str, Any]) -> McpCallResult:
        if not any(t.qualified_name == qualified_name for t in self.tools()):
            return error_result(f"there is no MCP tool named {qualified_name} in this session", failure="unknown-tool")
        return await self.mcp.call(qualified_name, arguments)


async def open_workspace(trust: ProjectTrust, mcp: WorkspaceMcp, *, wait_for_answers: bool = False) -> None:
    """What a host does once at start: load the project consent, start the MCP servers,
    ask about the project's allow rules and hooks. ``wait_for_answers``: return once every
    question asked now (MCP servers included) is answered (a terminal asks before its prompt)."""
    await trust.load()
    await mcp.start()
    await trust.ask_rules()
    await trust.ask_hooks()
    if wait_for_answers:
        await mcp.wait_consent()


__all__ = ["NOT_CONFIGURED", "WorkspaceMcp", "open_workspace"]
