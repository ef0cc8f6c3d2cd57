"""Asking the user to allow a tool call (the ``Approver`` port), in two strategies:
``codeloop/approval/request`` for a codeloop-aware client, ``window/showMessageRequest``
for any other."""

from __future__ import annotations

import logging

from lsprotocol import types as lsp
from pydantic import ValidationError

from codeloop.core.ports import ApprovalDecision, ApprovalRequest
from codeloop.lsp import methods as M
from codeloop.lsp import wire
from codeloop.lsp.connection import Connection

log = logging.getLogger(__name__)


class CapableApprovals:
    def __init__(self, conn: Connection) -> None:
        self.conn = conn

    async def approve(self, session_id: str, turn_id: str, request: ApprovalRequest) -> ApprovalDecision:
        params = wire.ApprovalRequestParams(
            session_id=session_id,
            turn_id=turn_id,
            call_id=request.call_id,
            kind=request.kind,
            target=request.target,
            cwd=request.cwd,
            reason=request.reason,
            suggested_rule=request.suggested_rule,
        )
        raw = await self.conn.request(M.APPROVAL_REQUEST, params)
        try:
            result = wire.ApprovalResult.model_validate(raw if isinstance(raw, dict) else {})
        except ValidationError as e:
            log.warning("the editor's approval answer is malformed: %s", wire.describe(e))
            return ApprovalDecision("deny", "the editor gave no valid answer")
        return ApprovalDecision(result.answer, result.message or "")

    async def ask_trust(self, subject: str, question: str, detail: str) -> bool | None:
        """An approval card of kind "Trust": allow (once or always) trusts, deny refuses, a
        card dropped unanswered (``cancelled``) gives no answer."""
        params = wire.ApprovalRequestParams(kind="Trust", target=detail, cwd="", reason=question, subject=subject)
        raw = await self.conn.request(M.APPROVAL_REQUEST, params)
        result = raw if isinstance(raw, dict) else {}
        answer = result.get("answer")
        if answer in ("allow_once", "allow_always"):
            return True
        return False if answer == "deny" and result.get("message") != "cancelled" else None


_VERBS = {"Bash": "run", "Read": "read", "Edit": "edit", "Write": "write", "Tool": "call"}
_ANSWERS = {"Allow once": "allow_once", "Always allow": "allow_always"}


class PlainApprovals:
    def __init__(self, conn: Connection) -> None:
        self.conn = conn

    async def approve(self, session_id: str, turn_id: str, request: ApprovalRequest) -> ApprovalDecision:
        what = _VERBS.get(request.kind, "use")
        choice = await self.conn.ask(
            f"codeloop wants to {what}: {request.target}  (in {request.cwd}; {request.reason})",
            ["Allow once", "Always allow", "Deny"],
            lsp.MessageType.Warning,
        )
        return ApprovalDecision(_ANSWERS.get(choice or "", "deny"))  # type: ignore[arg-type]

    async def ask_trust(self, subject: str, question: str, detail: str) -> bool | None:
        choice = await self.conn.ask(f"codeloop: {question}", ["Allow", "Deny"], lsp.MessageType.Warning)
        return True if choice == "Allow" else False if choice == "Deny" else None
