"""The MCP servers of one session: started in the background, watched, restarted, stopped.

``await manager.start()`` returns at once: each allowed server starts in a tracked task
of its own (its errors are logged), and its tools appear when it is ready (subscribers
are told). A server that fails to start (the start-up timeout included) or crashes is
marked failed with the tail of its stderr, and restarted with exponential backoff (1 s,
2 s, 4 s, ... up to a minute) until it has failed ``max_failures`` times in a row; then
it waits for :meth:`McpManager.restart`. A failing server never blocks the others.

A project's servers start only with the user's consent (``consent.py``): the manager asks
through the host's :class:`ConsentAsker`, one server at a time, in the background.

Calls never raise (except ``asyncio.CancelledError``, which cancels the request at the
server): every failure is an error :class:`McpCallResult` saying what happened.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable, Collection, Coroutine, Mapping, Sequence
from pathlib import Path
from typing import Any, Literal

import codeloop
from codeloop.services.mcp.adapter import (
    CallTimeout,
    Connection,
    ConnectionLost,
    McpFailure,
    ProtocolError,
    StartFailed,
)
from codeloop.services.mcp.config import ConfigProblem, ServerConfig
from codeloop.services.mcp.info import McpEvent, McpToolInfo, ServerState, Status
from codeloop.services.mcp.consent import ONCE, ConsentAsker, ProjectConsent, request_for
from codeloop.edits.disk import ensure_codeloop_gitignore
from codeloop.services.mcp.logs import LOG_DIR, ServerLog, log_file_name
from codeloop.services.mcp.names import NameRegistry
from codeloop.services.mcp.results import McpCallResult, convert, error_result

log = logging.getLogger(__name__)

DEFAULT_STARTUP_TIMEOUT = 30.0
DEFAULT_CALL_TIMEOUT = 600.0
DEFAULT_MAX_FAILURES = 5
_KEEP: Any = object()


class _Server:
    def __init__(self, config: ServerConfig, slog: ServerLog | None) -> None:
        self.config = config
        self.slog = slog
        self.status: Status = "starting"
        self.tools: list[McpToolInfo] = []
        self.conn: Connection | None = None
        self.task: asyncio.Task[None] | None = None
        self.last_error: str | None = None
        self.stderr_tail = ""
        self.restarts = 0
        self.failures = 0
        self.retry_at: float | None = None
        self.wake = asyncio.Event()
        self.restart_requested = False
        self.refreshing = False
        self.refresh_again = False
        self.settled = asyncio.Event()  # set while not "starting"


class McpManager:
    def __init__(
        self,
        servers: Sequence[ServerConfig],
        *,
        root: Path,
        log_dir: Path | None = None,
        consent: ProjectConsent | None = None,
        ask: ConsentAsker | None = None,
        trust_project: bool = False,
        problems: Sequence[ConfigProblem] = (),
        startup_timeout: float = DEFAULT_STARTUP_TIMEOUT,
        call_timeout: float | None = DEFAULT_CALL_TIMEOUT,
        max_failures: int = DEFAULT_MAX_FAILURES,
        backoff: float = 1.0,
        max_backoff: float = 60.0,
        environ: Mapping[str, str] | None = None,
        reserved_names: set[str] | None = None,
        stdin_grace: float = 2.0,
        term_grace: float = 2.0,
        sandbox: Any = None,
    ) -> None:
        self.root = Path(root)
        self.sandbox = sandbox  # a CommandSandbox stdio servers run in (setting sandbox.mcp), or None
        self.log_dir = Path(log_dir) if log_dir is not None else self.root / LOG_DIR
        self.consent = consent
        self.ask = ask
        self.trust_project = trust_project
        self.startup_timeout = startup_timeout
        self.call_timeout = call_timeout
        self.max_failures = max_failures
        self.backoff = backoff
        self.max_backoff = max_backoff
        self.environ = environ
        self.stdin_grace = stdin_grace
        self.term_grace = term_grace
        self._names = NameRegistry(reserved_names)
        self._servers: dict[str, _Server] = {}
        for cfg in servers:
            self._servers[cfg.name] = _Server(cfg, ServerLog(self.log_dir / log_file_name(cfg.name)))
        for p in problems:
            if p.server is not None and p.server not in self._servers:
                st = _Server(ServerConfig(name=p.server, transport="stdio", source="user", origin=p.origin), None)
                st.status = "failed"
                st.last_error = f"invalid configuration: {p}"
                st.settled.set()
                self._servers[p.server] = st
        self._by_qualified: dict[str, tuple[str, str]] = {}
        self._subscribers: list[Callable[[McpEvent], None]] = []
        self._tasks: set[asyncio.Task[Any]] = set()
        self._connections: list[Connection] = []
        self._started = False
        self._closing = False
        self._ask_task: asyncio.Task[Any] | None = None

    # -- public: lifecycle -------------------------------------------------------------

    async def start(self) -> None:
        """Start every allowed server in the background; returns without waiting for any."""
        if self._started:
            return
        self._started = True
        if self._servers and self._log_dir_is_ours():
            await asyncio.to_thread(ensure_codeloop_gitignore, self.root)
        project = [st for st in self._servers.values() if st.config.needs_consent and st.slog is not None]
        if project and self.consent is not None:
            await self.consent.load()
            if self.consent.untrusted_reason:
                log.warning("MCP: %s", self.consent.untrusted_reason)
        to_ask: list[_Server] = []
        for st in self._servers.values():
            if st.slog is None:  # invalid configuration
                continue
            cfg = st.config
            if cfg.disabled:
                self._set(st, "disabled", error=f"disabled in {cfg.origin}")
                continue
            verdict = self._consent_status(cfg)
            if verdict == "allowed":
                self._launch(st)
            elif verdict == "denied":
                self._set(st, "disabled", error="you refused to let this project server run "
                                                f"(remembered in {self._consent_path()})")
            else:
                self._set(st, "needs-consent", error=None)
                to_ask.append(st)
        if to_ask and self.ask is not None:
            self._ask_task = self._spawn(self._ask_all(to_ask), "mcp-consent")

    async def close(self) -> None:
        """Stop every server (process groups killed) and every task of ours."""
        self._closing = True
        if self._ask_task is not None:
            self._ask_task.cancel()  # a question nobody answered: nothing to wait for
        for st in self._servers.values():
            if st.conn is not None:
                st.conn.stop()
            st.wake.set()
        tasks = [t for t in self._tasks if not t.done()]
        if tasks:
            grace = self.stdin_grace + self.term_grace + 3.0
            _, pending = await asyncio.wait(tasks, timeout=grace)
            for t in pending:
                t.cancel()
            if pending:
                await asyncio.wait(pending, timeout=5.0)
        for conn in self._connections:
            conn.kill_now()
        self._connections.clear()

    async def add(self, servers: Sequence[ServerConfig]) -> list[str]:
        """Run these servers too (an ACP client's, passed with a session): each name not
        here yet is added, and started at once when the manager runs. A name already here
        keeps its server. Returns the names added."""
        added: list[str] = []
        for cfg in servers:
            if cfg.name in self._servers or self._closing:
                continue
            st = _Server(cfg, ServerLog(self.log_dir / log_file_name(cfg.name)))
            self._servers[cfg.name] = st
            added.append(cfg.name)
            if not self._started:
                continue
            if cfg.disabled:
                self._set(st, "disabled", error=f"disabled in {cfg.origin}")
            elif self._consent_status(cfg) == "allowed":
                self._launch(st)
            else:
                self._set(st, "needs-consent", error=None)
                if self.ask is not None:
                    self._spawn(self._ask_all([st]), f"mcp-consent {cfg.name}")
        if added and self._started and self._log_dir_is_ours():
            await asyncio.to_thread(ensure_codeloop_gitignore, self.root)
        return added

    async def restart(self, name: str) -> None:
        """Restart a server now (also one that gave up, or failed its start)."""
        st = self._servers.get(name)
        if st is None:
            raise KeyError(f"no MCP server named {name!r}")
        if st.slog is None or st.status in ("disabled", "needs-consent") or self._closing:
            return
        st.failures = 0
        if st.task is not None and not st.task.done():
            st.restart_requested = True
            if st.conn is not None:
                st.conn.stop()
            st.wake.set()
        else:
            self._launch(st)

    async def set_consent(self, name: str, allowed: bool) -> None:
        """The user's answer for a project server, given outside the asker (``/mcp``, a
        panel button): remembered, and the server starts or stops."""
        st = self._servers.get(name)
        if st is None:
            raise KeyError(f"no MCP server named {name!r}")
        await self._apply_consent(st, allowed)

    async def wait_consent(self) -> None:
        """Wait until every consent question asked at start has been answered (a terminal
        host asks them before its first prompt, so they do not cross its input)."""
        task = self._ask_task
        if task is not None and not task.done():
            await asyncio.wait([task])

    async def wait_settled(self, timeout: float | None = None, names: Collection[str] | None = None) -> bool:
        """Wait until no server (of ``names``, when given) is starting (for ``codeloop mcp
        list``, a host's first prompt, tests)."""
        waits = [st.settled.wait() for n, st in self._servers.items() if names is None or n in names]
        if not waits:
            return True
        try:
            await asyncio.wait_for(asyncio.gather(*waits), timeout)
        except TimeoutError:
            return False
        return True

    # -- public: what there is -----------------------------------------------------------

    def states(self) -> list[ServerState]:
        return [self._state(st) for st in self._servers.values()]

    def state(self, name: str) -> ServerState:
        return self._state(self._servers[name])

    def tools(self) -> list[McpToolInfo]:
        """The tools of every ready server, in configuration order."""
        out: list[McpToolInfo] = []
        for st in self._servers.values():
            if st.status == "ready":
                out += st.tools
        return out

    def tool(self, qualified_name: str) -> McpToolInfo | None:
        key = self._by_qualified.get(qualified_name)
        if key is None:
            return None
        st = self._servers.get(key[0])
        if st is None:
            return None
        return next((t for t in st.tools if t.qualified_name == qualified_name), None)

    def subscribe(self, callback: Callable[[McpEvent], None]) -> Callable[[], None]:
        """``callback(event)`` on every state change and tool-list change. Returns a function
        that unsubscribes. Callbacks run on the event loop and must not block."""
        self._subscribers.append(callback)

        def unsubscribe() -> None:
            if callback in self._subscribers:
                self._subscribers.remove(callback)

        return unsubscribe

    # -- public: calls -------------------------------------------------------------------

    async def call(self, qualified_name: str, arguments: Mapping[str, Any] | None,
                   timeout: float | None = None) -> McpCallResult:
        """Call a tool by its qualified name. ``timeout`` (seconds) overrides the manager's
        per-call timeout. Never raises but CancelledError (which cancels the request)."""
        key = self._by_qualified.get(qualified_name)
        if key is None:
            return error_result(f"there is no MCP tool named {qualified_name}", failure="unknown-tool")
        server, tool = key
        st = self._servers[server]
        limit = self.call_timeout if timeout is None else timeout
        if st.status == "starting":
            wait = self.startup_timeout if limit is None else min(self.startup_timeout, limit)
            try:
                await asyncio.wait_for(st.settled.wait(), wait)
            except TimeoutError:
                pass
        conn = st.conn
        if st.status != "ready" or conn is None or not conn.ready:
            why = f"it is {st.status}" + (f": {st.last_error}" if st.last_error else "")
            if st.retry_at is not None:
                why += f" (restarting in {max(0, round(st.retry_at - time.monotonic()))} s)"
            return error_result(f"the MCP server {server!r} is not available ({why})", failure="not-ready",
                                server=server, tool=tool)
        if not any(t.name == tool for t in st.tools):
            return error_result(f"the MCP server {server!r} no longer has a tool named {tool!r}",
                                failure="unknown-tool", server=server, tool=tool)
        args = dict(arguments or {})
        try:
            raw = await conn.call_tool(tool, args, limit)
        except CallTimeout:
            return error_result(f"the MCP tool {tool!r} of server {server!r} did not answer within {limit:g} s; "
                                f"the call was cancelled", failure="timeout", server=server, tool=tool)
        except ConnectionLost:
            reason = await conn.loss_reason()
            tail = st.slog.tail(8) if st.slog is not None else ""
            text = f"the MCP server {server!r} stopped during the call: {reason}"
            if not self._closing:
                text += "; it will be restarted"
            if tail:
                text += f"\nIts last output on stderr:\n{tail}"
            return error_result(text, failure="crashed", server=server, tool=tool)
        except ProtocolError as e:
            return error_result(f"the MCP server {server!r} answered with an error: {e}", failure="protocol",
                                server=server, tool=tool)
        except McpFailure as e:
            return error_result(f"the MCP server {server!r}: {e}", failure="protocol", server=server, tool=tool)
        return convert(raw, server=server, tool=tool)

    # -- internals: consent ---------------------------------------------------------------

    def _consent_status(self, cfg: ServerConfig) -> str:
        if not cfg.needs_consent:
            return "allowed"
        if self.consent is None:
            return "allowed" if self.trust_project else "unknown"
        return self.consent.status(cfg, self.trust_project)

    def _consent_path(self) -> str:
        return str(self.consent.path) if self.consent is not None else "this session"

    async def _ask_all(self, servers: list[_Server]) -> None:
        assert self.ask is not None
        for st in servers:
            if self._closing:
                return
            if st.status != "needs-consent":
                continue
            changed = self.consent.changed(st.config) if self.consent is not None else False
            try:
                answer = await self.ask(request_for(st.config, changed))
            except Exception:
                log.exception("MCP: asking about server %r failed", st.config.name)
                continue
            if answer is None or self._closing:
                continue
            await self._apply_consent(st, bool(answer), remember=answer != ONCE)

    async def _apply_consent(self, st: _Server, allowed: bool, *, remember: bool = True) -> None:
        if self.consent is not None:
            try:
                await self.consent.record(st.config, allowed, remember=remember)
            except ValueError as e:
                log.warning("MCP: %s (the answer holds for this session)", e)
        if allowed:
            if st.status in ("needs-consent", "disabled"):
                self._launch(st)
        else:
            if st.conn is not None:
                st.conn.stop()
            st.restart_requested = False
            self._set(st, "disabled", error="you refused to let this project server run")
            st.wake.set()

    # -- internals: running ---------------------------------------------------------------

    def _log_dir_is_ours(self) -> bool:
        try:
            self.log_dir.resolve().relative_to((self.root / ".codeloop").resolve())
        except ValueError:
            return False
        return True

    def _spawn(self, coro: Coroutine[Any, Any, Any], name: str) -> asyncio.Task[Any]:
        task = asyncio.get_running_loop().create_task(coro, name=name)
        self._tasks.add(task)
        task.add_done_callback(self._task_done)
        return task

    def _task_done(self, task: asyncio.Task[Any]) -> None:
        self._tasks.discard(task)
        if task.cancelled():
            return
        exc = task.exception()
        if exc is not None:
            log.error("MCP task %s failed", task.get_name(), exc_info=exc)

    def _launch(self, st: _Server) -> None:
        if self._closing or (st.task is not None and not st.task.done()):
            return
        st.restart_requested = False
        self._set(st, "starting")
        st.task = self._spawn(self._supervise(st), f"mcp-{st.config.name}")

    async def _supervise(self, st: _Server) -> None:
        cfg = st.config
        assert st.slog is not None
        first = True
        while not self._closing:
            if not first:
                st.restarts += 1
            first = False
            st.retry_at = None
            self._set(st, "starting")
            st.slog.begin(f"starting {cfg.name} ({cfg.source}, {cfg.origin}): {cfg.describe()}")
            conn = Connection(cfg, root=self.root, slog=st.slog, environ=self.environ,
                              on_tools_changed=lambda: self._tools_changed(st),
                              client_version=codeloop.__version__,
                              stdin_grace=self.stdin_grace, term_grace=self.term_grace, sandbox=self.sandbox)
            st.conn = conn
            self._connections.append(conn)
            was_ready = False
            error: str | None = None

            def on_ready(tools: list[dict[str, Any]], conn: Connection = conn) -> None:
                nonlocal was_ready
                was_ready = True
                st.failures = 0
                self._set_tools(st, tools)
                self._set(st, "ready")
                self._emit("tools", st)

            try:
                await conn.run(on_ready, self.startup_timeout)
            except StartFailed as e:
                error = f"failed to start: {e}"
            except ConnectionLost as e:
                error = f"stopped: {e}" if was_ready else f"failed to start: {e}"
            except Exception as e:  # a bug of ours or the SDK's: log it, treat as a failure
                log.exception("MCP server %r: unexpected error", cfg.name)
                error = f"unexpected error: {type(e).__name__}: {e}"
            finally:
                st.conn = None
                if conn.process is None or conn.process.finished:
                    self._connections.remove(conn)
                withdrawn = bool(st.tools)
                st.tools = []
                if was_ready and not self._closing:
                    if st.status == "ready" and (st.restart_requested or error is not None):
                        # Gone: the event that withdraws its tools says what comes next (never
                        # "ready" without a process).
                        self._set(st, "starting" if st.restart_requested else "failed",
                                  error=error if error is not None else _KEEP)
                    elif withdrawn:
                        self._emit("tools", st)
            if self._closing or st.status == "disabled":
                break
            if st.restart_requested:
                st.restart_requested = False
                continue
            if error is None:
                break  # stopped on purpose
            st.failures += 1
            st.last_error = error
            st.stderr_tail = await asyncio.to_thread(st.slog.tail)
            st.slog.note(error)
            log.warning("MCP server %r %s", cfg.name, error)
            if st.failures >= self.max_failures:
                st.retry_at = None
                self._set(st, "failed", error=error)
                st.slog.note(f"gave up after {st.failures} failures in a row; /mcp restart to try again")
                st.wake.clear()
                await st.wake.wait()
                if st.restart_requested and not self._closing:
                    st.restart_requested = False
                    continue
                break
            delay = min(self.max_backoff, self.backoff * 2 ** (st.failures - 1))
            st.retry_at = time.monotonic() + delay
            self._set(st, "failed", error=error)
            st.wake.clear()
            try:
                await asyncio.wait_for(st.wake.wait(), delay)
            except TimeoutError:
                pass
            if self._closing or st.status == "disabled":
                break
            st.restart_requested = False

    def _set_tools(self, st: _Server, tools: list[dict[str, Any]]) -> None:
        infos: list[McpToolInfo] = []
        seen: set[str] = set()
        for t in tools:
            name = t.get("name")
            if not isinstance(name, str) or not name or name in seen:
                continue
            seen.add(name)
            qn = self._names.name_for(st.config.name, name)
            self._by_qualified[qn] = (st.config.name, name)
            given_ann, given_schema = t.get("annotations"), t.get("inputSchema")
            ann: dict[str, Any] = given_ann if isinstance(given_ann, dict) else {}
            schema: dict[str, Any] = given_schema if isinstance(given_schema, dict) else {"type": "object"}
            title = t.get("title") or (ann.get("title") if isinstance(ann.get("title"), str) else None)
            infos.append(McpToolInfo(qualified_name=qn, server=st.config.name, name=name,
                                     description=str(t.get("description") or ""), input_schema=schema,
                                     annotations=dict(ann), title=title))
        st.tools = infos

    def _tools_changed(self, st: _Server) -> None:
        if self._closing:
            return
        if st.refreshing:
            st.refresh_again = True
            return
        st.refreshing = True
        self._spawn(self._refresh(st), f"mcp-refresh-{st.config.name}")

    async def _refresh(self, st: _Server) -> None:
        try:
            while True:
                st.refresh_again = False
                conn = st.conn
                if conn is None or not conn.ready:
                    return
                try:
                    tools = await conn.list_tools()
                except McpFailure as e:
                    if st.slog is not None:
                        st.slog.note(f"refreshing the tool list failed: {e}")
                    return
                if st.conn is conn and st.status == "ready":
                    self._set_tools(st, tools)
                    self._emit("tools", st)
                if not st.refresh_again:
                    return
        finally:
            st.refreshing = False

    # -- internals: state ------------------------------------------------------------------

    def _set(self, st: _Server, status: Status, error: Any = _KEEP) -> None:
        changed = st.status != status
        st.status = status
        if error is not _KEEP:
            st.last_error = error
            changed = True
        if status == "starting":
            st.settled.clear()
        else:
            st.settled.set()
        if changed:
            self._emit("state", st)

    def _state(self, st: _Server) -> ServerState:
        cfg = st.config
        conn = st.conn
        retry = None
        if st.retry_at is not None and st.status == "failed":
            retry = max(0.0, round(st.retry_at - time.monotonic(), 1))
        return ServerState(
            name=cfg.name, source=cfg.source, transport=cfg.transport, status=st.status,
            tool_count=len(st.tools) if st.status == "ready" else 0, last_error=st.last_error,
            stderr_tail=st.stderr_tail, origin=cfg.origin,
            description=cfg.describe() if st.slog is not None else "",
            log_file=str(st.slog.path) if st.slog is not None else None,
            pid=conn.pid if conn is not None else None, restarts=st.restarts, retry_in=retry,
            protocol_version=conn.protocol_version if conn is not None else None,
            server_version=conn.server_version if conn is not None else None,
            instructions=conn.instructions if conn is not None else None,
        )

    def _emit(self, kind: Literal["tools", "state"], st: _Server) -> None:
        if not self._subscribers:
            return
        event = McpEvent(kind, st.config.name, self._state(st))
        for cb in list(self._subscribers):
            try:
                cb(event)
            except Exception:
                log.exception("MCP subscriber failed")


__all__ = ["McpEvent", "McpManager", "McpToolInfo", "ServerState", "Status"]
