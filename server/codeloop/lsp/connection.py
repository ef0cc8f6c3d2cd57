"""The connection to the editor, as the client strategies use it: typed sends over pygls,
and what the client announced it can do (``ClientFeatures``)."""

from __future__ import annotations

import logging
from dataclasses import dataclass
from typing import Any

from lsprotocol import types as lsp
from pygls.lsp.server import LanguageServer

from codeloop.lsp import methods as M
from codeloop.lsp import wire

log = logging.getLogger(__name__)


@dataclass
class ClientFeatures:
    # experimental.codeloop: the custom requests a codeloop-aware client (VS Code) answers
    proposal_review: bool = False
    approvals: bool = False
    events: bool = False
    diagnostics: bool = False
    save: bool = False
    # standard LSP
    apply_edit: bool = False
    document_changes: bool = False
    resource_create: bool = False
    progress: bool = False
    show_document: bool = False

    @classmethod
    def from_capabilities(cls, caps: lsp.ClientCapabilities | None) -> "ClientFeatures":
        f = cls()
        if caps is None:
            return f
        exp = caps.experimental if isinstance(caps.experimental, dict) else {}
        ours = exp.get(M.EXPERIMENTAL_KEY) or {}
        if isinstance(ours, dict):
            on = {flag for flag in M.EXPERIMENTAL_FLAGS if ours.get(flag) is True}
            f.proposal_review = "proposalReview" in on
            f.approvals = "approvals" in on
            f.events = "events" in on
            f.diagnostics = "diagnostics" in on
            f.save = "save" in on
        ws = caps.workspace
        if ws is not None:
            f.apply_edit = bool(ws.apply_edit)
            we = ws.workspace_edit
            if we is not None:
                f.document_changes = bool(we.document_changes)
                f.resource_create = lsp.ResourceOperationKind.Create in (we.resource_operations or [])
        win = caps.window
        if win is not None:
            f.progress = bool(win.work_done_progress)
            f.show_document = bool(win.show_document is not None and win.show_document.support)
        return f


class Connection:
    """Everything the strategies send to the editor goes through here."""

    def __init__(self, server: LanguageServer) -> None:
        self.server = server

    def notify(self, method: str, params: wire.Wire) -> None:
        self.server.protocol.notify(method, wire.dump(params))

    async def request(self, method: str, params: wire.Wire) -> Any:
        return await self.server.protocol.send_request_async(method, wire.dump(params))

    def log(self, text: str, kind: lsp.MessageType = lsp.MessageType.Log) -> None:
        self.server.window_log_message(lsp.LogMessageParams(type=kind, message=text))

    def show(self, text: str, kind: lsp.MessageType = lsp.MessageType.Info) -> None:
        self.server.window_show_message(lsp.ShowMessageParams(type=kind, message=text))

    async def ask(self, message: str, actions: list[str], kind: lsp.MessageType = lsp.MessageType.Info) -> str | None:
        """``window/showMessageRequest``: the title the user picked, None when dismissed."""
        item = await self.server.window_show_message_request_async(
            lsp.ShowMessageRequestParams(type=kind, message=message, actions=[lsp.MessageActionItem(title=a) for a in actions])
        )
        if item is None:
            return None
        title = getattr(item, "title", None)
        if title is None and isinstance(item, dict):
            title = item.get("title")
        return title if isinstance(title, str) else None

    async def show_document(self, uri: str, take_focus: bool = False) -> bool:
        try:
            result = await self.server.window_show_document_async(lsp.ShowDocumentParams(uri=uri, take_focus=take_focus))
        except Exception as e:
            log.warning("the editor could not show %s: %s", uri, e)
            return False
        return bool(getattr(result, "success", False))

    async def apply_edit(self, edit: lsp.WorkspaceEdit, label: str) -> tuple[bool, str]:
        """``workspace/applyEdit``: (applied, failure reason), as the client says."""
        try:
            result = await self.server.workspace_apply_edit_async(lsp.ApplyWorkspaceEditParams(edit=edit, label=label))
        except Exception as e:
            return False, f"the editor failed to apply the edit: {e}"
        return bool(getattr(result, "applied", False)), str(getattr(result, "failure_reason", None) or "")

    def unstructure(self, obj: Any) -> Any:
        return self.server.protocol._converter.unstructure(obj)

    async def drain(self) -> None:
        """Waits while the transport to the editor is backed up (see transport.PipeWriter)."""
        drain = getattr(self.server.protocol.writer, "drain", None)
        if drain is not None:
            await drain()

    # -- $/progress ------------------------------------------------------------------

    async def create_progress(self, token: str) -> bool:
        try:
            await self.server.work_done_progress.create_async(token)
        except Exception:
            log.warning("the client refused a progress token")
            return False
        return True

    def begin_progress(self, token: str, message: str) -> None:
        self.server.work_done_progress.begin(token, lsp.WorkDoneProgressBegin(title="codeloop", message=message[:120], cancellable=True))

    def report_progress(self, token: str, message: str) -> None:
        self.server.work_done_progress.report(token, lsp.WorkDoneProgressReport(message=message[:120], cancellable=True))

    def end_progress(self, token: str, message: str) -> None:
        self.server.work_done_progress.tokens.pop(token, None)
        self.server.work_done_progress.end(token, lsp.WorkDoneProgressEnd(message=message))

    def publish_diagnostics(self, uri: str, version: int | None, diagnostics: list[lsp.Diagnostic]) -> None:
        self.server.text_document_publish_diagnostics(
            lsp.PublishDiagnosticsParams(uri=uri, version=version, diagnostics=diagnostics)
        )
