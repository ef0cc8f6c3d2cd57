"""The client, as the services see it: one object per connection that implements their
ports (``ClientPort`` for sessions, ``EditorPort`` for proposals, ``EditorDiagnostics``)
by delegating each port to a strategy chosen once, at ``initialize``, from what the client
announced:

| port | codeloop-aware client (``experimental.codeloop``) | plain LSP client |
|---|---|---|
| events, terminal | ``sinks.CapableSink`` | ``sinks.PlainSink`` |
| approvals | ``approvals.CapableApprovals`` | ``approvals.PlainApprovals`` |
| review | ``review.CapableReview`` | ``review.PlainReview`` |
| editor diagnostics | ``editor_diagnostics.ForwardedDiagnostics`` | ``NoForwardedDiagnostics`` |
| apply, save | ``editing.LspEditing`` (saving only when ``save`` is announced) | |

Each flag of ``experimental.codeloop`` picks its port's strategy on its own.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from codeloop.core.events import Event
from codeloop.core.ports import ApprovalDecision, ApprovalRequest, DiagnosticInfo, Documents
from codeloop.lsp import methods as M
from codeloop.lsp import wire
from codeloop.lsp.approvals import CapableApprovals, PlainApprovals
from codeloop.lsp.connection import ClientFeatures, Connection
from codeloop.lsp.editing import LspEditing
from codeloop.lsp.editor_diagnostics import ForwardedDiagnostics, NoForwardedDiagnostics
from codeloop.lsp.progress import TurnProgress
from codeloop.lsp.review import CapableReview, PlainReview
from codeloop.lsp.sinks import CapableSink, PlainSink
from codeloop.services.proposals import ApplyResult, FileOp, Proposal, ReviewAnswer


class EditorClient:
    def __init__(self, conn: Connection, documents: Documents, uri_of, features: ClientFeatures) -> None:  # noqa: ANN001
        self.conn = conn
        self.features = features
        self.progress = TurnProgress(conn, features)
        self.sink = CapableSink(conn, self.progress) if features.events else PlainSink(conn, self.progress)
        self.approvals = CapableApprovals(conn) if features.approvals else PlainApprovals(conn)
        self.reviews = (
            CapableReview(conn, uri_of) if features.proposal_review else PlainReview(conn, uri_of, features.show_document)
        )
        self.editing = LspEditing(conn, uri_of, features)
        self.forwarded = ForwardedDiagnostics(conn, documents, uri_of) if features.diagnostics else NoForwardedDiagnostics()

    # -- ClientPort (sessions) -----------------------------------------------------------

    def event(self, session_id: str, turn_id: str, event: Event) -> None:
        self.sink.event(session_id, turn_id, event)

    def terminal_started(self, session_id: str, terminal_id: str, command: str, cwd: str, background: bool) -> None:
        self.sink.terminal_started(session_id, terminal_id, command, cwd, background)

    def terminal_output(self, terminal_id: str, chunk: str) -> None:
        self.sink.terminal_output(terminal_id, chunk)

    def terminal_exited(self, terminal_id: str, exit_code: int | None) -> None:
        self.sink.terminal_exited(terminal_id, exit_code)

    async def drain(self) -> None:
        await self.conn.drain()

    async def approve(self, session_id: str, turn_id: str, request: ApprovalRequest) -> ApprovalDecision:
        return await self.approvals.approve(session_id, turn_id, request)

    async def ask_trust(self, subject: str, question: str, detail: str) -> bool | None:
        """May the project's ``subject`` (an MCP server, its hooks, its allow rules) run or
        apply? True/False: the user's answer; None: none given."""
        return await self.approvals.ask_trust(subject, question, detail)

    def mcp_changed(self, servers: list[dict[str, Any]]) -> None:
        if self.features.events:
            self.conn.notify(M.MCP_CHANGED, wire.McpChangedParams.model_validate({"servers": servers}))

    # -- progress of a turn ----------------------------------------------------------------

    async def begin_progress(self, session_id: str, turn_id: str, title: str, token: str | None = None,
                             always: bool = False) -> None:
        await self.progress.begin(session_id, turn_id, title, token, always)

    def turn_for_token(self, token: str) -> tuple[str, str] | None:
        return self.progress.turn_for_token(token)

    # -- EditorPort (proposals) --------------------------------------------------------------

    @property
    def can_apply(self) -> bool:
        return self.editing.can_apply

    @property
    def can_save(self) -> bool:
        return self.editing.can_save

    @property
    def change_settle(self) -> float:
        return self.editing.change_settle

    async def review(self, proposal: Proposal) -> ReviewAnswer:
        return await self.reviews.review(proposal)

    async def apply(self, ops: list[FileOp], label: str) -> ApplyResult:
        return await self.editing.apply(ops, label)

    async def save(self, paths: list[Path]) -> list[Path]:
        return await self.editing.save(paths)

    def resolved(self, proposal: Proposal, status: str, message: str, reviewed: bool) -> None:
        self.reviews.resolved(proposal, status, message, reviewed)

    def proposal_params(self, proposal: Proposal) -> wire.ProposalReviewParams:
        return self.reviews.params(proposal)

    # -- EditorDiagnostics ---------------------------------------------------------------------

    @property
    def forwards_diagnostics(self) -> bool:
        return self.forwarded.forwards_diagnostics

    async def editor_diagnostics(self, paths: list[Path]) -> tuple[dict[Path, list[DiagnosticInfo]], dict[Path, int | None]]:
        return await self.forwarded.editor_diagnostics(paths)

    async def diagnostics(self, paths: list[Path]) -> dict[Path, list[DiagnosticInfo]]:
        return await self.forwarded.diagnostics(paths)

    def close(self) -> None:
        self.reviews.close()
