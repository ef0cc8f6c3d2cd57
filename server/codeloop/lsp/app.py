"""The composition root of the language server. No module-level server global:
``build_server()`` makes a fresh one (tests build many)."""

from __future__ import annotations

import gc
import logging
import os
import sys
from pathlib import Path
from typing import Any

from lsprotocol import types as lsp
from pygls.lsp.server import LanguageServer
from pygls.protocol import JsonRPCNotification, JsonRPCRequestMessage, JsonRPCResponseMessage, default_converter

from codeloop import __version__
from codeloop.config import Settings, build_settings, env_overrides
from codeloop.lsp.client import ClientFeatures, LspClient
from codeloop.lsp.documents import EditorDocuments, uri_to_path
from codeloop.services.diagnostics import DiagnosticsService
from codeloop.services.proposals import ProposalService
from codeloop.services.sessions import SessionService
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

    def initialize(self, params: lsp.InitializeParams) -> list[str]:
        self.root = _root_of(params)
        opts = params.initialization_options if isinstance(params.initialization_options, dict) else {}
        self.user_settings = _settings_section(opts.get("settings", opts))
        self.settings, problems = build_settings(env_overrides(), self.user_settings)
        self.documents = EditorDocuments(self.server.workspace)
        self.client = LspClient(self.server, self.documents)
        self.client.features = ClientFeatures.from_capabilities(params.capabilities)
        ws = Workspace(self.root)
        # Diagnostics: the editor's when it forwards them, else the configured check command.
        self.diagnostics = DiagnosticsService(
            self.root, editor=self.client, documents=self.documents, check_command=lambda: self.settings.check_command
        )
        self.proposals = ProposalService(
            ws, self.documents, self.documents, self.client, lambda: self.settings.auto_accept, diagnostics=self.diagnostics
        )
        encoding = getattr(self.server.workspace, "position_encoding", None)
        self.proposals.encoding = str(getattr(encoding, "value", encoding) or "utf-16")
        self.sessions = SessionService(self.root, self.settings, self.documents, self.proposals, self.client, self.diagnostics)
        return problems + list(self.sessions.policy.problems)

    def change_settings(self, raw: Any) -> list[str]:
        section = _settings_section(raw)
        if not section:
            return []
        self.user_settings = {**self.user_settings, **section}
        settings, problems = build_settings(env_overrides(), self.user_settings)
        self.settings = settings
        if self.sessions is not None:
            self.sessions.update_settings(settings)
        return problems

    async def shutdown(self) -> None:
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
    server.start_io()
    return 0
