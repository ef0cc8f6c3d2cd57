"""The composition root of the language server. No module-level server global:
``build_server()`` makes a fresh one (tests build many)."""

from __future__ import annotations

import asyncio
import gc
import logging
import os
import stat
import sys
import threading
from pathlib import Path
from typing import Any

from lsprotocol import types as lsp
from pygls.io_ import run_async
from pygls.lsp.server import LanguageServer
from pygls.protocol import JsonRPCNotification, JsonRPCRequestMessage, JsonRPCResponseMessage, default_converter

from codeloop import __version__
from codeloop.agent.model import shared_ssl_context
from codeloop.config import Settings
from codeloop.core.tasks import Tasks
from codeloop.runtime.sandboxing import WorkspaceSandbox, sandbox_for
from codeloop.runtime.settings import load_settings
from codeloop.lsp.client import ClientFeatures, LspClient
from codeloop.lsp.documents import EditorDocuments, uri_to_path
from codeloop.services.diagnostics import DiagnosticsService
from codeloop.services.proposals import ProposalService
from codeloop.runtime.turns import SessionService
from codeloop.tools.workspace import Workspace

log = logging.getLogger("codeloop.lsp")


def _converter():
    """pygls' converter, but custom methods keep their params and results as dicts."""
    conv = default_converter()
    keep = lambda obj, cls: cls(**obj)  # noqa: E731
    for cls in (JsonRPCRequestMessage, JsonRPCResponseMessage, JsonRPCNotification):
        conv.register_structure_hook(cls, keep)
    return conv


class App:
    """Everything one editor connection owns. Built at ``initialize``."""

    def __init__(self, server: LanguageServer) -> None:
        self.server = server
        self.documents: EditorDocuments | None = None
        self.client: LspClient | None = None
        self.sessions: SessionService | None = None
        self.proposals: ProposalService | None = None
        self.diagnostics: DiagnosticsService | None = None
        self.settings: Settings = Settings()
        self.root: Path = Path.cwd()
        self.user_settings: dict[str, Any] = {}
        self.tasks = Tasks("lsp")

    @property
    def sandbox(self) -> WorkspaceSandbox:
        """The workspace's sandbox under the current settings (probed at initialize)."""
        return sandbox_for(self.settings, self.root)

    def initialize(self, params: lsp.InitializeParams) -> list[str]:
        self.root = _root_of(params)
        opts = params.initialization_options if isinstance(params.initialization_options, dict) else {}
        self.user_settings = _settings_section(opts.get("settings", opts))
        self.settings, problems = load_settings(self.root, self.user_settings)
        self.documents = EditorDocuments(self.server.workspace)
        self.client = LspClient(self.server, self.documents)
        self.client.features = ClientFeatures.from_capabilities(params.capabilities)
        ws = Workspace(self.root)
        # Diagnostics: the editor's when it forwards them, else the configured check command.
        self.diagnostics = DiagnosticsService(
            self.root, editor=self.client, documents=self.documents, check_command=lambda: self.settings.check_command,
            sandbox=lambda: self.sandbox,
        )
        self.proposals = ProposalService(
            ws, self.documents, self.documents, self.client, lambda: self.settings.auto_accept, diagnostics=self.diagnostics
        )
        encoding = getattr(self.server.workspace, "position_encoding", None)
        self.proposals.encoding = str(getattr(encoding, "value", encoding) or "utf-16")
        self.sessions = SessionService(self.root, self.settings, self.documents, self.proposals, self.client, self.diagnostics)
        # Load the CA bundle off the event loop now, not when the first chat starts.
        threading.Thread(target=shared_ssl_context, name="codeloop-tls-warmup", daemon=True).start()
        return problems + list(self.sessions.policy.problems)

    def change_settings(self, raw: Any) -> list[str]:
        section = _settings_section(raw)
        if not section:
            return []
        self.user_settings = {**self.user_settings, **section}
        settings, problems = load_settings(self.root, self.user_settings)
        self.settings = settings
        if self.sessions is not None:
            self.sessions.update_settings(settings)
        return problems

    async def sandbox_warning(self) -> str | None:
        """Probe the sandbox (in a thread); the warning to show once if none works."""
        box = await self.sandbox.start()
        return box.warning()

    async def shutdown(self) -> None:
        await self.tasks.cancel_all()
        if self.sessions is not None:
            await self.sessions.shutdown()


def _settings_section(raw: Any) -> dict[str, Any]:
    if not isinstance(raw, dict):
        return {}
    inner = raw.get("settings", raw)
    if isinstance(inner, dict) and isinstance(inner.get("codeloop"), dict):
        inner = inner["codeloop"]
    return inner if isinstance(inner, dict) else {}


def _root_of(params: lsp.InitializeParams) -> Path:
    if params.workspace_folders:
        p = uri_to_path(params.workspace_folders[0].uri)
        if p is not None:
            return p
    if params.root_uri:
        p = uri_to_path(params.root_uri)
        if p is not None:
            return p
    if params.root_path:
        return Path(params.root_path).resolve()
    return Path.cwd().resolve()


def build_server() -> tuple[LanguageServer, App]:
    from codeloop.lsp import handlers

    server = LanguageServer(
        "codeloop",
        __version__,
        text_document_sync_kind=lsp.TextDocumentSyncKind.Incremental,
        converter_factory=_converter,
    )
    app = App(server)
    handlers.register(server, app)
    return server, app


def run_stdio() -> int:
    logging.basicConfig(
        level=os.environ.get("CODELOOP_LOG_LEVEL", "INFO").upper(),
        stream=sys.stderr,  # stdout is the JSON-RPC transport
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
    )
    for noisy in ("pygls", "httpx", "httpx2", "httpcore", "openai"):
        logging.getLogger(noisy).setLevel(logging.WARNING)
    server, _app = build_server()
    # Everything imported and built so far lives as long as the process: keep it out of
    # the cyclic GC's full collections (each would otherwise scan ~120k objects, a
    # 30-40 ms pause in the middle of a code-action or completion request).
    gc.collect()
    gc.freeze()
    if os.name == "posix" and _is_pipe_or_socket(sys.stdin) and _is_pipe_or_socket(sys.stdout):
        serve_pipes(server)
    else:  # a file, a terminal, or Windows' pipes: pygls' own threaded reader copes with those
        server.start_io()
    return 0


# Bytes buffered for the editor above which bulk output waits (the pipe itself holds
# another 64 KiB): an answer to the editor queues behind at most this much.
WRITE_HIGH_WATER = 32 * 1024


def _is_pipe_or_socket(stream: Any) -> bool:
    try:
        mode = os.fstat(stream.fileno()).st_mode
    except (OSError, ValueError, AttributeError):
        return False
    return stat.S_ISFIFO(mode) or stat.S_ISSOCK(mode)


class _FlowControl(asyncio.Protocol):
    """Tracks the write transport's high/low water marks."""

    def __init__(self) -> None:
        self._resumed: asyncio.Future[None] | None = None

    def pause_writing(self) -> None:
        if self._resumed is None:
            self._resumed = asyncio.get_running_loop().create_future()

    def resume_writing(self) -> None:
        self._wake()

    def connection_lost(self, exc: Exception | None) -> None:
        self._wake()

    def _wake(self) -> None:
        if self._resumed is not None and not self._resumed.done():
            self._resumed.set_result(None)
        self._resumed = None

    async def drain(self) -> None:
        if self._resumed is not None:
            await asyncio.shield(self._resumed)


class _PipeWriter:
    """pygls' writer over a non-blocking asyncio pipe transport: a write never
    blocks the event loop, even when the editor is slow to read. Bulk senders
    (terminal output) call ``drain()`` so the buffer stays small and an answer to
    the editor never queues behind megabytes of output."""

    def __init__(self, transport: asyncio.WriteTransport, flow: _FlowControl) -> None:
        self.transport = transport
        self.flow = flow

    async def drain(self) -> None:
        await self.flow.drain()

    def write(self, data: bytes) -> None:
        if self.transport.is_closing():
            raise BrokenPipeError("the editor closed the connection")
        self.transport.write(data)

    def close(self) -> None:
        self.transport.close()


def serve_pipes(server: LanguageServer) -> None:
    """Serve JSON-RPC on stdin/stdout with asyncio's own pipe transports.

    pygls' ``start_io`` reads stdin in a worker thread, one executor round trip per
    header line and per body. While a turn keeps the main thread busy (a streamed
    completion), each round trip waits for the GIL several times, and an editor's
    request took 100-300 ms to be read. Read on the event loop instead: the bytes are
    there at the loop's next turn. Writes go through a buffered non-blocking
    transport, so a full pipe never blocks the loop either."""

    async def serve() -> None:
        loop = asyncio.get_running_loop()
        reader = asyncio.StreamReader(limit=1 << 20)
        await loop.connect_read_pipe(lambda: asyncio.StreamReaderProtocol(reader), sys.stdin.buffer)
        transport, flow = await loop.connect_write_pipe(_FlowControl, sys.stdout.buffer)
        transport.set_write_buffer_limits(high=WRITE_HIGH_WATER)
        server.protocol.set_writer(_PipeWriter(transport, flow))
        try:
            await run_async(
                stop_event=stop,
                reader=reader,
                protocol=server.protocol,
                logger=log,
                error_handler=server.report_server_error,
            )
        except asyncio.IncompleteReadError:
            log.info("the editor closed the connection mid-message")
        finally:
            # Let what is buffered reach the editor (the response to shutdown, say).
            for _ in range(100):
                if transport.is_closing() or not transport.get_write_buffer_size():
                    break
                await asyncio.sleep(0.01)

    stop = threading.Event()
    server._stop_event = stop  # shutdown()/exit set it, as with start_io
    try:
        asyncio.run(serve())
    except BrokenPipeError:
        log.error("Connection to the client is lost! Shutting down the server.")
    except (KeyboardInterrupt, SystemExit):
        pass
    finally:
        server.shutdown()
