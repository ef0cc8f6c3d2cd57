"""The composition root of the language server. No module-level server global:
``build_server()`` makes a fresh one (tests build many)."""

from __future__ import annotations

import gc
import logging
import os
import sys
import threading
from pathlib import Path
from typing import Any

from lsprotocol import types as lsp
from pygls.lsp.server import LanguageServer
from pygls.protocol import JsonRPCNotification, JsonRPCRequestMessage, JsonRPCResponseMessage, default_converter

from codeloop import __version__
from codeloop.agent.model import shared_ssl_context
from codeloop.config import Settings
from codeloop.edits.textedits import as_encoding
from codeloop.lsp import actions, handlers
from codeloop.lsp.client import EditorClient
from codeloop.lsp.connection import ClientFeatures, Connection
from codeloop.runtime.mcp import WorkspaceMcp, open_workspace
from codeloop.runtime.trust import ProjectTrust
from codeloop.runtime.sandboxing import WorkspaceSandbox, sandbox_for
from codeloop.lsp.documents import EditorDocuments, uri_to_path, use_fast_documents
from codeloop.lsp.problems import OwnDiagnostics
from codeloop.lsp.rewind import LspRewindHost
from codeloop.lsp.state import Services
from codeloop.core.tasks import Tasks
from codeloop.lsp.transport import serve_stdio
from codeloop.services.diagnostics import DiagnosticsService
from codeloop.services.proposals import ProposalService
from codeloop.runtime.turns import SessionService
from codeloop.runtime.settings import load_settings
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
    """Everything one editor connection owns (``Services``, built at ``initialize``), and the
    workspace's project trust and MCP servers (shared by every chat of the connection)."""

    def __init__(self, server: LanguageServer) -> None:
        self.server = server
        self.services: Services | None = None
        self.problems: list[str] = []
        self.settings: Settings = Settings()
        self.user_settings: dict[str, Any] = {}
        self.tasks = Tasks("lsp")
        self.trust: ProjectTrust | None = None
        self.mcp: WorkspaceMcp | None = None
        self.root: Path = Path.cwd()

    @property
    def sandbox(self) -> WorkspaceSandbox:
        """The workspace's sandbox under the current settings (probed at initialize)."""
        return sandbox_for(self.settings, self.root)

    def initialize(self, params: lsp.InitializeParams) -> list[str]:
        root = self.root = _root_of(params)
        opts = params.initialization_options if isinstance(params.initialization_options, dict) else {}
        self.user_settings = _settings_section(opts.get("settings", opts))
        self.settings, problems = load_settings(root, self.user_settings)
        features = ClientFeatures.from_capabilities(params.capabilities)
        conn = Connection(self.server)
        use_fast_documents(self.server.workspace)  # a keystroke in a 20k-line file: 40 ms -> 1 ms
        documents = EditorDocuments(self.server.workspace, self.tasks)
        client = EditorClient(conn, documents, documents.uri, features)
        # Diagnostics: the editor's when it forwards them, else the configured check command.
        diagnostics = DiagnosticsService(
            root, editor=client, documents=documents, check_command=lambda: self.settings.check_command,
            sandbox=lambda: self.sandbox,
        )
        proposals = ProposalService(
            Workspace(root), documents, documents, client, lambda: self.settings.auto_accept,
            diagnostics=diagnostics, watch=documents,
        )
        encoding = getattr(self.server.workspace, "position_encoding", None)
        proposals.encoding = as_encoding(encoding)
        self._make_workspace(root, client)
        sessions = SessionService(root, self.settings, documents, proposals, client, diagnostics,
                                  trust=self.trust, mcp=self.mcp)
        own = None
        if not features.diagnostics:
            own = OwnDiagnostics(diagnostics, documents, self.tasks, conn, lambda: self.settings.publish_diagnostics)
        self.services = Services(root, self.tasks, documents, client, diagnostics, proposals, sessions, own, lambda: self.settings)
        sessions.rewind_host = LspRewindHost(self.server, self.services)  # how /rewind asks and restores here
        # Load the CA bundle off the event loop now, not when the first chat starts.
        threading.Thread(target=shared_ssl_context, name="codeloop-tls-warmup", daemon=True).start()
        return problems + list(sessions.policy.problems)

    def change_settings(self, raw: Any) -> list[str]:
        section = _settings_section(raw)
        if not section:
            return []
        self.user_settings = {**self.user_settings, **section}
        root = self.services.root if self.services is not None else Path.cwd()
        settings, problems = load_settings(root, self.user_settings)
        self.settings = settings
        if self.services is not None:
            self.services.sessions.update_settings(settings)
        self._reconfigure_workspace(settings)
        return problems

    # -- the project trust and the MCP servers (runtime/trust.py, runtime/mcp.py) ----------

    def _make_workspace(self, root: Path, client: EditorClient) -> None:
        async def ask(request: Any) -> bool | None:
            return await client.ask_trust(request.subject, request.prompt(), request.description)

        self.trust = ProjectTrust(root, trust_project=self.settings.trust_project, ask=ask, notify=self._warn)
        self.mcp = WorkspaceMcp(root, self.settings, self.trust, editor=self.user_settings.get("mcpServers"),
                                notify=self._warn)
        self.mcp.subscribe(lambda _event: self._push_mcp(client))

    def start_workspace(self) -> None:
        """After ``initialized``: consent, then the servers, in the background."""
        if self.trust is not None and self.mcp is not None:
            self.tasks.spawn(open_workspace(self.trust, self.mcp), "open the workspace (trust, MCP servers)")

    def _reconfigure_workspace(self, settings: Settings) -> None:
        if self.trust is None or self.mcp is None:
            return
        trust_changed = self.trust.trust_project != settings.trust_project
        self.trust.trust_project = settings.trust_project
        mcp = self.mcp

        async def reconfigure() -> None:
            changed = await mcp.reconfigure(settings, self.user_settings.get("mcpServers"))
            if trust_changed and not changed:
                await mcp.close()
                await mcp.start()

        self.tasks.spawn(reconfigure(), "reconfigure the MCP servers")

    def _warn(self, message: str) -> None:
        self.server.window_show_message(lsp.ShowMessageParams(type=lsp.MessageType.Warning, message=f"codeloop: {message}"))

    def mcp_servers(self) -> list[dict[str, Any]]:
        return [_server_dict(s) for s in (self.mcp.states() if self.mcp is not None else [])]

    def _push_mcp(self, client: EditorClient) -> None:
        try:
            client.mcp_changed(self.mcp_servers())
        except Exception:  # the connection is closing
            log.debug("could not send codeloop/mcp/changed", exc_info=True)

    async def sandbox_warning(self) -> str | None:
        """Probe the sandbox (in a thread); the warning to show once if none works."""
        box = await self.sandbox.start()
        return box.warning()

    async def shutdown(self) -> None:
        if self.services is not None:
            await self.services.sessions.shutdown()
            self.services.client.close()
        await self.tasks.cancel_all()
        if self.mcp is not None:
            await self.mcp.close()  # every server's process group stops with the connection
        if self.trust is not None:
            await self.trust.close()


def _server_dict(s: Any) -> dict[str, Any]:
    return {"name": s.name, "status": s.status, "source": s.source, "transport": s.transport,
            "toolCount": s.tool_count, "lastError": s.last_error, "origin": s.origin, "description": s.description,
            "retryIn": s.retry_in, "logFile": s.log_file, "restarts": s.restarts, "pid": s.pid}


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
    serve_stdio(server, {lsp.TEXT_DOCUMENT_CODE_ACTION: actions.trim_params})
    return 0
