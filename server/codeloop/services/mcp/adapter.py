"""The MCP SDK behind one door: the only module of codeloop that imports ``mcp``.

Pinned to the SDK's 2.x line (``mcp>=2.3,<3``): ``mcp.Client`` negotiates the era with
each server (``server/discover`` for 2026-07-28 servers, the ``initialize`` handshake
for older ones), and both eras are handled here:

- ``tools/list_changed`` arrives as a notification in the handshake era; in the
  2026-07-28 era the server sends it only on a ``subscriptions/listen`` stream, which
  is opened when the server offers it. Either way ``on_tools_changed`` is called.
- cancelling a call (asyncio cancel of the awaiting task) makes the SDK send
  ``notifications/cancelled`` for the in-flight request; a per-call timeout does too.

stdio uses our own transport (``process.StdioProcess`` bridged to the SDK's streams):
the process group is ours to kill, the server's stderr goes to its log file, a line on
stdout that is not JSON-RPC is noted in the log and skipped (the SDK's own transport
logs a traceback for each), and the end of stdout is the server's end. Streamable HTTP
and legacy SSE use the SDK's transports with the configured headers.

Everything that leaves this module is plain data: tool listings and call results in
their wire form (camelCase JSON objects), and the exceptions defined here.
"""

from __future__ import annotations

import asyncio
import logging
import math
import os
from collections.abc import AsyncIterator, Callable, Mapping
from contextlib import AsyncExitStack, asynccontextmanager
from pathlib import Path
from typing import Any

import anyio
import httpx2
import mcp.types as types
from mcp import Client, MCPError
from mcp.types.version import HANDSHAKE_PROTOCOL_VERSIONS
from mcp.client.sse import sse_client
from mcp.client.streamable_http import streamable_http_client
from mcp.shared.message import SessionMessage
from pydantic import ValidationError

from codeloop.core.ports import SandboxRefused
from codeloop.services.mcp.config import ServerConfig
from codeloop.services.mcp.logs import ServerLog
from codeloop.services.mcp.process import StdioProcess

log = logging.getLogger(__name__)

HTTP_TIMEOUT = 30.0
HTTP_READ_TIMEOUT = 300.0
MAX_TOOL_PAGES = 100
EXIT_DRAIN = 0.2  # seconds between a stdio server's exit and the end of its stream
STOP_UNREADY_GRACE = 0.2  # seconds a server stopped before it was ready gets after its stdin closes
_NOTE_CHARS = 300


class McpFailure(Exception):
    """Base of what a connection raises."""


class StartFailed(McpFailure):
    """The server could not be started or did not complete the handshake."""


class ConnectionLost(McpFailure):
    """The server went away (its process exited, its stdout closed, HTTP errors)."""


class CallTimeout(McpFailure):
    """The server did not answer a call in time; the request was cancelled."""


class ProtocolError(McpFailure):
    """The server answered with a JSON-RPC error or a malformed result."""

    def __init__(self, message: str, code: int | None = None) -> None:
        super().__init__(message)
        self.code = code


def sdk_version() -> str:
    from importlib.metadata import PackageNotFoundError, version

    try:
        return version("mcp")
    except PackageNotFoundError:  # pragma: no cover
        return "?"


def _short(text: str, n: int = _NOTE_CHARS) -> str:
    text = text.replace("\n", "\\n")
    return text if len(text) <= n else text[:n] + "…"


@asynccontextmanager
async def _stdio_streams(proc: StdioProcess, slog: ServerLog, on_eof: Callable[[], None],
                         graces: Callable[[], tuple[float, float]]) -> AsyncIterator[Any]:
    """The SDK's transport contract (a read stream of messages, a write stream) over our
    process. ``graces()``: (stdin grace, SIGTERM grace) when it stops."""
    read_send, read_recv = anyio.create_memory_object_stream[SessionMessage | Exception](0)
    write_send, write_recv = anyio.create_memory_object_stream[SessionMessage](0)

    async def reader() -> None:
        try:
            async with read_send:
                async for raw in proc.lines(on_overlong=lambda n: slog.note(f"dropped a {n}-byte line on stdout (too long)")):
                    text = raw.decode("utf-8", "replace").strip()
                    if not text:
                        continue
                    try:
                        message = types.jsonrpc_message_adapter.validate_json(text, by_name=False)
                    except ValueError:
                        slog.note(f"ignored a line on stdout that is not JSON-RPC: {_short(text)}")
                        continue
                    await read_send.send(SessionMessage(message))
        except (anyio.ClosedResourceError, anyio.BrokenResourceError):
            pass
        except Exception:
            log.exception("reading an MCP server's stdout failed")
        finally:
            on_eof()

    async def writer() -> None:
        try:
            async with write_recv:
                async for item in write_recv:
                    data = item.message.model_dump_json(by_alias=True, exclude_unset=True)
                    await proc.write(data.encode("utf-8") + b"\n")
        except (anyio.ClosedResourceError, anyio.BrokenResourceError):
            pass
        except (ConnectionError, OSError) as e:
            slog.note(f"writing to the server failed: {e}")
            await read_send.aclose()  # the session sees the end instead of waiting forever

    async def watch_exit() -> None:
        # The end of stdout is not enough: a child the server started may hold the pipe
        # open after the server is gone. So the server's exit ends the stream too (after
        # a moment for the reader to pass on what it wrote last).
        await proc.wait_exit(None)
        await anyio.sleep(EXIT_DRAIN)
        on_eof()
        await read_send.aclose()

    try:
        async with anyio.create_task_group() as tg:
            tg.start_soon(reader)
            tg.start_soon(writer)
            tg.start_soon(watch_exit)
            try:
                yield read_recv, write_send
            finally:
                with anyio.CancelScope(shield=True):
                    try:
                        await proc.stop(*graces())
                    except BaseException:
                        proc.kill_now()
                        raise
                tg.cancel_scope.cancel()
    finally:
        proc.kill_now()  # a no-op when stop() finished its work


class Connection:
    """One connection to one MCP server. :meth:`run` in the task that owns it; :meth:`call_tool`
    and :meth:`list_tools` from any task while it is ready; :meth:`stop` from anywhere."""

    def __init__(
        self,
        config: ServerConfig,
        *,
        root: Path,
        slog: ServerLog,
        on_tools_changed: Callable[[], None],
        environ: Mapping[str, str] | None = None,
        client_name: str = "codeloop",
        client_version: str = "0",
        stdin_grace: float = 2.0,
        term_grace: float = 2.0,
        sandbox: Any = None,
    ) -> None:
        self.config = config
        self.sandbox = sandbox  # stdio servers run in it (setting sandbox.mcp)
        self.root = Path(root)
        self.slog = slog
        self.on_tools_changed = on_tools_changed
        self.environ = dict(os.environ) if environ is None else dict(environ)
        self.client_name = client_name
        self.client_version = client_version
        self.stdin_grace = stdin_grace
        self.term_grace = term_grace
        self.process: StdioProcess | None = None
        self.protocol_version: str | None = None
        self.server_name: str | None = None
        self.server_version: str | None = None
        self.instructions: str | None = None
        self.lost_reason: str | None = None
        self._client: Client | None = None
        self._wake = asyncio.Event()
        self._stopping = False
        self._ready = False
        self._was_ready = False
        self._scope: anyio.CancelScope | None = None

    @property
    def pid(self) -> int | None:
        return self.process.pid if self.process is not None else None

    @property
    def ready(self) -> bool:
        return self._ready and self._client is not None and self.lost_reason is None

    # -- lifetime -------------------------------------------------------------------

    def stop(self) -> None:
        """Ask :meth:`run` to close the connection and return. A server still starting is
        not waited for: its start is cancelled."""
        self._stopping = True
        self._wake.set()
        if not self._ready and self._scope is not None:
            self._scope.cancel()

    def _graces(self) -> tuple[float, float]:
        # A server that never served gets no time to finish requests it never had.
        return (self.stdin_grace if self._was_ready else min(self.stdin_grace, STOP_UNREADY_GRACE), self.term_grace)

    def kill_now(self) -> None:
        if self.process is not None:
            self.process.kill_now()

    def _lost(self, reason: str) -> None:
        if self.lost_reason is None and not self._stopping:
            self.lost_reason = reason
            self.slog.note(f"connection lost: {reason}")
        self._wake.set()

    async def run(self, on_ready: Callable[[list[dict[str, Any]]], None], startup_timeout: float) -> None:
        """Start the server, list its tools, call ``on_ready(tools)``, and serve until
        :meth:`stop` (returns) or the server goes away (raises ConnectionLost). Raises
        StartFailed when it cannot start (``startup_timeout`` included)."""
        scope = anyio.CancelScope(deadline=anyio.current_time() + startup_timeout)
        self._scope = scope
        if self._stopping:
            scope.cancel()
        try:
            with scope:
                async with AsyncExitStack() as stack:
                    tools = await self._open(stack)
                    scope.deadline = math.inf
                    self.slog.note(f"ready: {len(tools)} tools, protocol {self.protocol_version}, "
                                   f"server {self.server_name or '?'} {self.server_version or ''}".rstrip())
                    client = self._client  # set by _open
                    if client is not None and self.protocol_version not in HANDSHAKE_PROTOCOL_VERSIONS:
                        tg = await stack.enter_async_context(anyio.create_task_group())
                        tg.start_soon(self._listen, client)
                        stack.callback(tg.cancel_scope.cancel)
                    self._ready = self._was_ready = True
                    on_ready(tools)
                    await self._wake.wait()
                    self._ready = False
        except McpFailure:
            raise
        except Exception as e:
            leaf = _first_leaf(e) if isinstance(e, BaseExceptionGroup) else e
            if self._ready or self.lost_reason is not None:
                raise ConnectionLost(await self.loss_reason()) from None
            raise StartFailed(self._describe(leaf)) from None
        finally:
            self._ready = False
            self._scope = None
        if scope.cancelled_caught:
            if self._stopping:
                return  # stopped while starting: on purpose
            raise StartFailed(f"did not start within {startup_timeout:g} s")
        if self.lost_reason is not None and not self._stopping:
            raise ConnectionLost(await self.loss_reason())

    async def _open(self, stack: AsyncExitStack) -> list[dict[str, Any]]:
        """Connect and list the tools; raises StartFailed."""
        transport = await self._transport(stack)
        client = Client(
            transport,
            cache=None,
            client_info=types.Implementation(name=self.client_name, version=self.client_version),
            message_handler=self._on_message,
            logging_callback=self._on_log,
            list_roots_callback=self._list_roots,
        )
        try:
            await stack.enter_async_context(client)
        except (Exception, BaseExceptionGroup) as e:
            if isinstance(e, BaseExceptionGroup) and e.subgroup(anyio.get_cancelled_exc_class()) is not None:
                raise
            leaf = _first_leaf(e) if isinstance(e, BaseExceptionGroup) else e
            if self.lost_reason is not None:
                raise StartFailed(await self.loss_reason()) from None
            raise StartFailed(self._describe(leaf)) from None
        self._client = client
        self.protocol_version = client.protocol_version
        info = client.server_info
        self.server_name = info.name if info else None
        self.server_version = info.version if info else None
        self.instructions = client.instructions
        try:
            return await self.list_tools()
        except McpFailure as e:
            if self.lost_reason is not None:
                raise StartFailed(await self.loss_reason()) from None
            raise StartFailed(f"tools/list failed: {e}") from None

    async def loss_reason(self) -> str:
        """Why the connection ended, with the exit code once the process has one."""
        proc = self.process
        if proc is not None and proc.returncode is None and self.lost_reason is not None:
            await proc.wait_exit(1.0)
        if proc is not None and proc.returncode is not None:
            self.lost_reason = _exit_text(proc.returncode)
        return self.lost_reason or "the connection closed"

    async def _transport(self, stack: AsyncExitStack) -> Any:
        cfg = self.config
        if cfg.transport == "stdio":
            env = {**self.environ, **dict(cfg.env)}
            cwd = Path(cfg.cwd) if cfg.cwd else self.root
            if not await asyncio.to_thread(cwd.is_dir):
                raise StartFailed(f"the working directory {cwd} does not exist")
            proc = StdioProcess([cfg.command or "", *cfg.args], env=env, cwd=cwd, stderr_path=self.slog.path,
                                sandbox=self.sandbox)
            try:
                await proc.start()
            except SandboxRefused as e:
                raise StartFailed(str(e)) from None
            except FileNotFoundError:
                hint = " (put its arguments in \"args\")" if cfg.command and " " in cfg.command.strip() else ""
                raise StartFailed(f"command not found: {cfg.command}{hint}") from None
            except OSError as e:
                raise StartFailed(f"cannot run {cfg.command}: {e.strerror or e}") from None
            self.process = proc
            stack.callback(proc.kill_now)  # the last resort if the transport is never entered
            self.slog.note(f"started pid {proc.pid}: {cfg.command_line()}")
            return _stdio_streams(proc, self.slog, self._on_eof, self._graces)
        headers = dict(cfg.headers)
        if cfg.transport == "sse":
            return sse_client(cfg.url or "", headers=headers, timeout=HTTP_TIMEOUT, sse_read_timeout=HTTP_READ_TIMEOUT)
        http = httpx2.AsyncClient(headers=headers, timeout=httpx2.Timeout(HTTP_TIMEOUT, read=HTTP_READ_TIMEOUT))
        await stack.enter_async_context(http)
        self.slog.note(f"connecting to {cfg.url}")
        return streamable_http_client(cfg.url or "", http_client=http)

    def _on_eof(self) -> None:
        proc = self.process
        code = proc.returncode if proc is not None else None
        self._lost(_exit_text(code) if code is not None else "the server closed its stdout")

    def _describe(self, e: BaseException) -> str:
        if isinstance(e, MCPError):
            return f"{e.error.message} (MCP error {e.error.code})"
        if isinstance(e, httpx2.HTTPStatusError):
            return f"HTTP {e.response.status_code} from {self.config.url}"
        if isinstance(e, httpx2.HTTPError):
            return f"cannot reach {self.config.url}: {e or type(e).__name__}"
        if isinstance(e, ValidationError):
            return f"the server sent a malformed answer ({e.error_count()} validation errors)"
        return f"{type(e).__name__}: {e}"

    # -- what the server sends ---------------------------------------------------------

    async def _on_message(self, message: Any) -> None:
        if isinstance(message, types.ToolListChangedNotification):
            self.slog.note("the server says its tool list changed")
            self.on_tools_changed()
        elif isinstance(message, Exception):
            self.slog.note(f"transport error: {_short(self._describe(message))}")
            if isinstance(message, httpx2.HTTPError) and self.config.transport != "stdio":
                self._lost(self._describe(message))

    async def _on_log(self, params: Any) -> None:
        self.slog.note(f"server log ({params.level}): {_short(str(params.data))}")

    async def _list_roots(self, context: Any) -> Any:
        return types.ListRootsResult(roots=[types.Root(uri=self.root.resolve().as_uri(), name=self.root.name)])

    async def _listen(self, client: Client) -> None:
        """2026-07-28: the server sends list changes only on a listen stream. Each event also
        reaches ``_on_message`` (the SDK tees them), which does the work."""
        if not getattr(client.server_capabilities.tools, "list_changed", False):
            return
        try:
            async with client.listen(tools_list_changed=True) as sub:
                async for _event in sub:
                    pass
        except Exception as e:  # SubscriptionLost, a server that refuses: not fatal
            if not self._stopping:
                self.slog.note(f"the tool-change subscription ended: {_short(str(e))}")

    # -- requests ------------------------------------------------------------------

    async def list_tools(self) -> list[dict[str, Any]]:
        """Every tool (all pages), as wire JSON objects."""
        client = self._client
        if client is None:
            raise ConnectionLost("not connected")
        out: list[dict[str, Any]] = []
        cursor: str | None = None
        for _ in range(MAX_TOOL_PAGES):
            try:
                page = await client.list_tools(cursor=cursor, cache_mode="bypass")
            except MCPError as e:
                raise self._mcp_error(e) from None
            out += [t.model_dump(mode="json", by_alias=True, exclude_none=True) for t in page.tools]
            cursor = page.next_cursor
            if not cursor:
                break
        return out

    async def call_tool(self, name: str, arguments: dict[str, Any], timeout: float | None) -> dict[str, Any]:
        """``tools/call`` → the CallToolResult as wire JSON. Raises CallTimeout,
        ConnectionLost or ProtocolError; CancelledError cancels the request at the server."""
        client = self._client
        if client is None or not self.ready:
            raise ConnectionLost(self.lost_reason or "not connected")
        try:
            result = await client.call_tool(name, arguments, read_timeout_seconds=timeout)
        except MCPError as e:
            failure = self._mcp_error(e, timeout)
            if isinstance(failure, ConnectionLost):
                self._lost(str(failure))
            raise failure from None
        except ValidationError as e:
            raise ProtocolError(f"the server sent a malformed result ({e.error_count()} validation errors)") from None
        except httpx2.HTTPError as e:
            reason = self._describe(e)
            self._lost(reason)
            raise ConnectionLost(reason) from None
        except (anyio.ClosedResourceError, anyio.BrokenResourceError):
            raise ConnectionLost(self.lost_reason or "the connection closed") from None
        except RuntimeError as e:  # e.g. an input-required round the client cannot answer
            raise ProtocolError(str(e)) from None
        return result.model_dump(mode="json", by_alias=True, exclude_none=True)

    def _mcp_error(self, e: MCPError, timeout: float | None = None) -> McpFailure:
        code = e.error.code
        if code == types.REQUEST_TIMEOUT:
            return CallTimeout(f"no answer within {timeout:g} s" if timeout else "the request timed out")
        if code == types.CONNECTION_CLOSED:
            return ConnectionLost(self.lost_reason or "the connection closed")
        return ProtocolError(f"{e.error.message} (MCP error {code})", code)


def _exit_text(code: int | None) -> str:
    if code is None:
        return "the server went away"
    if code < 0:
        return f"the server was killed by signal {-code}"
    return f"the server exited with code {code}"


def _first_leaf(eg: BaseExceptionGroup) -> BaseException:
    e: BaseException = eg
    while isinstance(e, BaseExceptionGroup) and e.exceptions:
        e = e.exceptions[0]
    return e
