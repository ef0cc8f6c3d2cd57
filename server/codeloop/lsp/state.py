"""What one editor connection owns once it is initialized, and what the handlers need from
the composition root (``Host``). The handlers import this module, never ``app.py``: the
composition root imports the handlers, not the other way round."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol

from lsprotocol import types as lsp

from codeloop.config import Settings
from codeloop.lsp.client import EditorClient
from codeloop.lsp.documents import EditorDocuments
from codeloop.lsp.problems import OwnDiagnostics
from codeloop.core.tasks import Tasks
from codeloop.services.diagnostics import DiagnosticsService
from codeloop.services.proposals import ProposalService
from codeloop.runtime.turns import SessionService


@dataclass
class Services:
    root: Path
    tasks: Tasks
    documents: EditorDocuments
    client: EditorClient
    diagnostics: DiagnosticsService
    proposals: ProposalService
    sessions: SessionService
    own: OwnDiagnostics | None  # codeloop's own diagnostics, for clients that forward none
    settings: Callable[[], Settings]


class Host(Protocol):
    services: Services | None
    problems: list[str]  # setting problems to show once the client is initialized
    mcp: Any  # runtime.mcp.WorkspaceMcp | None: the workspace's MCP servers

    def start_workspace(self) -> None:
        """After ``initialized``: project trust, then the MCP servers, in the background."""
        ...

    def mcp_servers(self) -> list[dict[str, Any]]: ...

    @property
    def sandbox(self) -> Any:
        """runtime.sandboxing.WorkspaceSandbox: the workspace's sandbox under the current settings."""
        ...

    async def sandbox_warning(self) -> str | None: ...

    def initialize(self, params: lsp.InitializeParams) -> list[str]: ...

    def change_settings(self, raw: Any) -> list[str]: ...

    async def shutdown(self) -> None: ...
