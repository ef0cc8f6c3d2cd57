"""The client, as the services see it: events, terminal output, approvals,
proposal review, applying and saving edits, diagnostics.

Capability-gated: a client that announces ``experimental.codeloop`` gets the
custom requests; a plain LSP client (Neovim, Helix, …) gets
``window/showMessageRequest``, ``$/progress`` and ``window/logMessage``.
"""

from __future__ import annotations

import asyncio
import logging
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from lsprotocol import types as lsp
from pygls.lsp.server import LanguageServer

from codeloop.core.events import (
    ErrorEvent,
    Event,
    Notice,
    Retry,
    TextDelta,
    ToolCallFinished,
    ToolCallStarted,
    TurnEnd,
)
from codeloop.core.ports import ApprovalDecision, ApprovalRequest, DiagnosticInfo
from codeloop.edits.textedits import TextEdit
from codeloop.lsp import methods as M
from codeloop.lsp.documents import EditorDocuments, uri_to_path
from codeloop.services.proposals import (
    ApplyResult,
    CreateOp,
    EditOp,
    FileOp,
    Proposal,
    ReviewAnswer,
)

log = logging.getLogger(__name__)

TEXT_FLUSH_SECONDS = 0.016

SHOW_LIMIT = 4000  # characters of a final answer shown with window/showMessage


@dataclass
class ClientFeatures:
    proposal_review: bool = False
    approvals: bool = False
    events: bool = False
    diagnostics: bool = False
    save: bool = False
    apply_edit: bool = False
    document_changes: bool = False
    resource_create: bool = False
    progress: bool = False
    message_actions: bool = True

    @classmethod
    def from_capabilities(cls, caps: lsp.ClientCapabilities | None) -> "ClientFeatures":
        f = cls()
        if caps is None:
            return f
        exp = caps.experimental if isinstance(caps.experimental, dict) else {}
        ours = exp.get(M.EXPERIMENTAL_KEY) or {}
        if isinstance(ours, dict):
            f.proposal_review = bool(ours.get("proposalReview"))
            f.approvals = bool(ours.get("approvals"))
            f.events = bool(ours.get("events"))
            f.diagnostics = bool(ours.get("diagnostics"))
            f.save = bool(ours.get("save"))
        ws = caps.workspace
        if ws is not None:
            f.apply_edit = bool(ws.apply_edit)
            we = ws.workspace_edit
            if we is not None:
                f.document_changes = bool(we.document_changes)
                kinds = we.resource_operations or []
                f.resource_create = lsp.ResourceOperationKind.Create in kinds
        win = caps.window
        if win is not None:
            f.progress = bool(win.work_done_progress)
        return f


def to_lsp_edit(e: TextEdit) -> lsp.TextEdit:
    return lsp.TextEdit(
        range=lsp.Range(
            start=lsp.Position(line=e.start.line, character=e.start.character),
            end=lsp.Position(line=e.end.line, character=e.end.character),
        ),
        new_text=e.new_text,
    )


@dataclass
class _Progress:
    token: str
    session_id: str
    turn_id: str
    text: list[str] = field(default_factory=list)


class LspClient:
    def __init__(self, server: LanguageServer, documents: EditorDocuments) -> None:
        self.server = server
        self.documents = documents
        self.features = ClientFeatures()
        self._progress: dict[tuple[str, str], _Progress] = {}
        self._text: dict[tuple[str, str], list[str]] = {}
        self._text_timers: dict[tuple[str, str], asyncio.TimerHandle] = {}
        self._token_turns: dict[str, tuple[str, str]] = {}
        self._answers: dict[tuple[str, str], list[str]] = {}  # plain clients: the text streamed so far
        self.on_progress_cancel: Any = None  # set by the composition root

    # -- low level -----------------------------------------------------------------

    def notify(self, method: str, params: dict[str, Any]) -> None:
        self.server.protocol.notify(method, params)

    async def request(self, method: str, params: dict[str, Any]) -> Any:
        return await self.server.protocol.send_request_async(method, params)

    def log(self, text: str, kind: lsp.MessageType = lsp.MessageType.Log) -> None:
        self.server.window_log_message(lsp.LogMessageParams(type=kind, message=text))

    # -- events ----------------------------------------------------------------------

    def event(self, session_id: str, turn_id: str, event: Event) -> None:
        if self.features.events:
            key = (session_id, turn_id)
            if isinstance(event, TextDelta):
                # Coalesce streamed text: one notification per frame, not one per token,
                # so a fast stream never crowds out the editor's own requests.
                self._text.setdefault(key, []).append(event.text)
                if key not in self._text_timers:
                    loop = asyncio.get_running_loop()
                    self._text_timers[key] = loop.call_later(TEXT_FLUSH_SECONDS, self._flush_text, key)
                return
            self._flush_text(key)  # keep the order: text before whatever follows it
            self.notify(M.EVENT, {"sessionId": session_id, "turnId": turn_id, "event": event.to_dict()})
            prog = self._progress.get((session_id, turn_id))
            if prog is not None:  # a focused turn (code action) also shows $/progress
                if isinstance(event, ToolCallStarted):
                    self._report(prog, f"{event.name} {event.summary}".strip())
                elif isinstance(event, TurnEnd):
                    self.end_progress(session_id, turn_id, event.status)
            return
        self._plain_event(session_id, turn_id, event)

    def _flush_text(self, key: tuple[str, str]) -> None:
        timer = self._text_timers.pop(key, None)
        if timer is not None:
            timer.cancel()
        parts = self._text.pop(key, None)
        if parts:
            event = TextDelta("".join(parts))
            self.notify(M.EVENT, {"sessionId": key[0], "turnId": key[1], "event": event.to_dict()})

    def _plain_event(self, session_id: str, turn_id: str, event: Event) -> None:
        key = (session_id, turn_id)
        prog = self._progress.get(key)
        if isinstance(event, TextDelta):
            self._answers.setdefault(key, []).append(event.text)
            return
        if isinstance(event, Retry):
            self._answers.pop(key, None)  # the text streamed since the last tool call is discarded
        elif isinstance(event, ToolCallStarted):
            said = "".join(self._answers.pop(key, [])).strip()
            if said:
                self.log(f"[codeloop] {said}", lsp.MessageType.Info)
            self._report(prog, f"{event.name} {event.summary}".strip())
            self.log(f"[codeloop] ● {event.name}({event.summary})")
        elif isinstance(event, ToolCallFinished):
            self.log(f"[codeloop]   ⎿ {event.summary}")
        elif isinstance(event, ErrorEvent):
            self.server.window_show_message(lsp.ShowMessageParams(type=lsp.MessageType.Error, message=f"codeloop: {event.message}"))
        elif isinstance(event, Notice):
            if event.level == "warning":  # e.g. a broken settings file, bypass turned on
                self.server.window_show_message(
                    lsp.ShowMessageParams(type=lsp.MessageType.Warning, message=f"codeloop: {event.message}")
                )
            self.log(f"[codeloop] {event.message}", lsp.MessageType.Info)
        elif isinstance(event, TurnEnd):
            answer = "".join(self._answers.pop(key, []))
            if answer.strip():
                self.log(f"[codeloop] {answer.strip()}", lsp.MessageType.Info)
                # The answer itself (an explanation, what a fix changed) is what the user
                # asked for: show it, not only in the log.
                shown = answer.strip()
                if len(shown) > SHOW_LIMIT:
                    shown = shown[:SHOW_LIMIT].rstrip() + "… (the full answer is in the log)"
                self.server.window_show_message(lsp.ShowMessageParams(type=lsp.MessageType.Info, message=f"codeloop: {shown}"))
            self.end_progress(session_id, turn_id, event.status)

    def _report(self, prog: _Progress | None, message: str) -> None:
        if prog is None:
            return
        self.server.work_done_progress.report(prog.token, lsp.WorkDoneProgressReport(message=message[:120], cancellable=True))

    async def begin_progress(self, session_id: str, turn_id: str, title: str, token: str | None = None,
                             always: bool = False) -> None:
        """For plain clients (and, with ``always``, any client): a cancellable $/progress for the turn."""
        if self.features.events and not always:
            return
        if token is None:
            if not self.features.progress:
                return
            token = f"codeloop-{session_id}-{turn_id}"
            try:
                await self.server.work_done_progress.create_async(token)
            except Exception:
                log.warning("the client refused a progress token")
                return
        prog = _Progress(token, session_id, turn_id)
        self._progress[(session_id, turn_id)] = prog
        self._token_turns[token] = (session_id, turn_id)
        self.server.work_done_progress.begin(
            token, lsp.WorkDoneProgressBegin(title="codeloop", message=title[:120], cancellable=True)
        )

    def end_progress(self, session_id: str, turn_id: str, status: str) -> None:
        prog = self._progress.pop((session_id, turn_id), None)
        if prog is None:
            return
        self._token_turns.pop(prog.token, None)
        self.server.work_done_progress.tokens.pop(prog.token, None)
        self.server.work_done_progress.end(prog.token, lsp.WorkDoneProgressEnd(message=status))

    def turn_for_token(self, token: str) -> tuple[str, str] | None:
        return self._token_turns.get(str(token))

    # -- terminal ----------------------------------------------------------------------

    def terminal_started(self, session_id: str, terminal_id: str, command: str, cwd: str, background: bool) -> None:
        if self.features.events:
            self.notify(
                M.TERMINAL_STARTED,
                {"terminalId": terminal_id, "sessionId": session_id, "command": command, "cwd": cwd, "background": background},
            )
        else:
            self.log(f"[codeloop] $ {command}")

    def terminal_output(self, terminal_id: str, chunk: str) -> None:
        if self.features.events:
            self.notify(M.TERMINAL_OUTPUT, {"terminalId": terminal_id, "data": chunk})

    async def drain(self) -> None:
        """Wait while the transport to the editor is backed up (see app.serve_pipes)."""
        drain = getattr(self.server.protocol.writer, "drain", None)
        if drain is not None:
            await drain()

    def terminal_exited(self, terminal_id: str, exit_code: int | None) -> None:
        if self.features.events:
            self.notify(M.TERMINAL_EXITED, {"terminalId": terminal_id, "exitCode": exit_code})
        else:
            self.log(f"[codeloop] exit code {exit_code}")

    # -- approvals ---------------------------------------------------------------------

    async def approve(self, session_id: str, turn_id: str, request: ApprovalRequest) -> ApprovalDecision:
        if self.features.approvals:
            result = await self.request(
                M.APPROVAL_REQUEST,
                {
                    "sessionId": session_id,
                    "turnId": turn_id,
                    "callId": request.call_id,
                    "kind": request.kind,
                    "target": request.target,
                    "cwd": request.cwd,
                    "reason": request.reason,
                    "suggestedRule": request.suggested_rule,
                },
            )
            result = _as_dict(result)
            answer = result.get("answer")
            if answer not in ("allow_once", "allow_always", "deny"):
                return ApprovalDecision("deny", "the editor gave no valid answer")
            return ApprovalDecision(answer, str(result.get("message") or ""))
        what = {"Bash": "run", "Read": "read", "Edit": "edit", "Write": "write", "Tool": "call"}.get(request.kind, "use")
        choice = await self._ask(
            f"codeloop wants to {what}: {request.target}  (in {request.cwd}; {request.reason})",
            ["Allow once", "Always allow", "Deny"],
            lsp.MessageType.Warning,
        )
        mapping = {"Allow once": "allow_once", "Always allow": "allow_always"}
        return ApprovalDecision(mapping.get(choice or "", "deny"))  # type: ignore[arg-type]

    async def ask_trust(self, subject: str, question: str, detail: str) -> bool | None:
        """May the project's ``subject`` (an MCP server, its hooks, its allow rules) run or
        apply? An approval card of kind "Trust" in clients with approvals, else
        ``window/showMessageRequest``. True/False: the user's answer; None: none given."""
        if self.features.approvals:
            result = _as_dict(await self.request(M.APPROVAL_REQUEST, {
                "kind": "Trust", "target": detail, "cwd": "", "reason": question, "subject": subject,
            }))
            answer = result.get("answer")
            if answer in ("allow_once", "allow_always"):
                return True
            return False if answer == "deny" and result.get("message") != "cancelled" else None
        choice = await self._ask(f"codeloop: {question}", ["Allow", "Deny"], lsp.MessageType.Warning)
        return True if choice == "Allow" else False if choice == "Deny" else None

    def mcp_changed(self, servers: list[dict[str, Any]]) -> None:
        if self.features.events:
            self.notify(M.MCP_CHANGED, {"servers": servers})

    async def _ask(self, message: str, actions: list[str], kind: lsp.MessageType) -> str | None:
        item = await self.server.window_show_message_request_async(
            lsp.ShowMessageRequestParams(type=kind, message=message, actions=[lsp.MessageActionItem(title=a) for a in actions])
        )
        if item is None:
            return None
        return item.title if hasattr(item, "title") else _as_dict(item).get("title")

    # -- the EditorPort ----------------------------------------------------------------

    @property
    def can_apply(self) -> bool:
        return self.features.apply_edit

    @property
    def can_save(self) -> bool:
        return self.features.save

    async def review(self, proposal: Proposal) -> ReviewAnswer:
        if self.features.proposal_review:
            result = _as_dict(await self.request(M.PROPOSAL_REVIEW, self.proposal_params(proposal)))
            return self._parse_answer(result, proposal)
        summary = "; ".join(
            f"{f.rel} ({'new file' if f.is_new else f'{len(f.hunks)} hunk(s)'})" for f in proposal.files
        )
        for f in proposal.files:
            self.log(f"[codeloop] proposed change ({proposal.id}):\n{f.diff}")
        choice = await self._ask(
            f"codeloop proposes a change to {summary}. The diff is in the log.",
            ["Accept", "Reject"],
            lsp.MessageType.Info,
        )
        if choice == "Accept":
            return ReviewAnswer("accept")
        return ReviewAnswer("reject", "" if choice else "the user dismissed the review")

    def _parse_answer(self, result: dict[str, Any], proposal: Proposal) -> ReviewAnswer:
        decision = result.get("decision")
        by_uri = {self.documents.uri(f.path): f.path for f in proposal.files}

        def path_of(uri: str) -> Path | None:
            return by_uri.get(uri) or uri_to_path(uri)

        if decision == "partial":
            hunks: dict[Path, set[int]] = {}
            for uri, ids in (result.get("hunks") or {}).items():
                p = path_of(uri)
                if p is not None:
                    hunks[p] = {int(i) for i in ids}
            return ReviewAnswer("partial", str(result.get("feedback") or ""), hunks=hunks)
        if decision == "edited":
            edited: dict[Path, str] = {}
            for uri, text in (result.get("editedText") or {}).items():
                p = path_of(uri)
                if p is not None and isinstance(text, str):
                    edited[p] = text
            return ReviewAnswer("edited", str(result.get("feedback") or ""), edited=edited)
        if decision == "accept":
            return ReviewAnswer("accept", str(result.get("feedback") or ""))
        return ReviewAnswer("reject", str(result.get("feedback") or ""))

    def proposal_params(self, proposal: Proposal) -> dict[str, Any]:
        files = []
        for f in proposal.files:
            files.append(
                {
                    "uri": self.documents.uri(f.path),
                    "path": f.rel,
                    "version": f.version,
                    "isNew": f.is_new,
                    "oldText": f.old_text,
                    "newText": f.new_text,
                    "diff": f.diff,
                    "hunks": [
                        {
                            "id": h.id,
                            "header": h.header,
                            "diff": h.diff,
                            "oldStart": h.old_start,
                            "oldLines": h.old_lines,
                            "newStart": h.new_start,
                            "newLines": h.new_lines,
                        }
                        for h in f.hunk_views
                    ],
                }
            )
        ops: list[FileOp] = []
        for f in proposal.files:
            if f.is_new:
                ops.append(CreateOp(f.path))
            ops.append(EditOp(f.path, f.version, f.edits))
        edit = self.server.protocol._converter.unstructure(self.workspace_edit(ops))
        return {
            "proposalId": proposal.id,
            "sessionId": proposal.session_id,
            "turnId": proposal.turn_id,
            "callId": proposal.call_id,
            "tool": proposal.tool,
            "files": files,
            "edit": edit,
        }

    def workspace_edit(self, ops: list[FileOp]) -> lsp.WorkspaceEdit:
        changes: list[Any] = []
        for op in ops:
            uri = self.documents.uri(op.path)
            if isinstance(op, CreateOp):
                changes.append(lsp.CreateFile(uri=uri, options=lsp.CreateFileOptions(overwrite=False, ignore_if_exists=True)))
            else:
                changes.append(
                    lsp.TextDocumentEdit(
                        text_document=lsp.OptionalVersionedTextDocumentIdentifier(uri=uri, version=op.version),
                        edits=[to_lsp_edit(e) for e in op.edits],
                    )
                )
        return lsp.WorkspaceEdit(document_changes=changes)

    async def apply(self, ops: list[FileOp], label: str) -> ApplyResult:
        edit = self.workspace_edit(ops)
        try:
            result = await self.server.workspace_apply_edit_async(lsp.ApplyWorkspaceEditParams(edit=edit, label=label))
        except Exception as e:
            return ApplyResult(False, f"the editor failed to apply the edit: {e}")
        applied = bool(getattr(result, "applied", False))
        reason = getattr(result, "failure_reason", None) or ""
        return ApplyResult(applied, reason)

    async def save(self, paths: list[Path]) -> list[Path]:
        uris = {self.documents.uri(p): p for p in paths}
        try:
            result = _as_dict(await self.request(M.DOCUMENT_SAVE, {"uris": list(uris)}))
        except Exception as e:
            log.warning("the editor could not save: %s", e)
            return []
        return [uris[u] for u in result.get("saved", []) if u in uris]

    def resolved(self, proposal: Proposal, status: str, message: str, reviewed: bool) -> None:
        if self.features.events:
            params: dict[str, Any] = {"proposalId": proposal.id, "status": status, "message": message}
            if not reviewed:
                # Applied without review (auto-accept): still show what changed.
                params["proposal"] = self.proposal_params(proposal)
            self.notify(M.PROPOSAL_RESOLVED, params)
        else:
            self.log(f"[codeloop] {proposal.id} {status}: {message}")

    # -- diagnostics -------------------------------------------------------------------

    @property
    def forwards_diagnostics(self) -> bool:
        return self.features.diagnostics

    async def diagnostics(self, paths: list[Path]) -> dict[Path, list[DiagnosticInfo]]:
        return (await self.editor_diagnostics(paths))[0]

    async def editor_diagnostics(
        self, paths: list[Path]
    ) -> tuple[dict[Path, list[DiagnosticInfo]], dict[Path, int | None]]:
        """``codeloop/diagnostics/get``: the editor's diagnostics and document versions per path."""
        if not self.features.diagnostics:
            return {}, {}
        uris = {self.documents.uri(p): p for p in paths}
        entries = []
        for uri, path in uris.items():
            doc = self.documents.get(path)
            entries.append({"uri": uri, "version": doc.version if doc else None})
        result = _as_dict(await self.request(M.DIAGNOSTICS_GET, {"uris": entries}))
        out: dict[Path, list[DiagnosticInfo]] = {}
        severities = {1: "error", 2: "warning", 3: "information", 4: "hint"}
        raw = result.get("diagnostics") or {}
        if isinstance(raw, list):  # [{uri, version, diagnostics}] is accepted too
            raw = {_as_dict(e).get("uri"): _as_dict(e).get("diagnostics") for e in raw}
        for uri, diags in _as_dict(raw).items():
            path = uris.get(uri) or (uri_to_path(uri) if isinstance(uri, str) else None)
            if path is None:
                continue
            items = []
            for d in diags or []:
                d = _as_dict(d)
                rng = _as_dict(d.get("range") or {})
                start, end = _as_dict(rng.get("start") or {}), _as_dict(rng.get("end") or {})
                try:
                    severity = severities.get(int(d.get("severity") or 1), "error")
                except (TypeError, ValueError):
                    severity = "error"
                items.append(
                    DiagnosticInfo(
                        path=path,
                        line=int(start.get("line", 0)),
                        character=int(start.get("character", 0)),
                        end_line=int(end.get("line", 0)),
                        end_character=int(end.get("character", 0)),
                        severity=severity,  # type: ignore[arg-type]
                        message=str(d.get("message", "")),
                        source=str(d.get("source") or ""),
                        code=str(d.get("code") or ""),
                    )
                )
            out[path] = items
        versions: dict[Path, int | None] = {}
        for uri, version in _as_dict(result.get("versions") or {}).items():
            path = uris.get(uri) or (uri_to_path(uri) if isinstance(uri, str) else None)
            if path is not None:
                versions[path] = version if isinstance(version, int) else None
        return out, versions


def _as_dict(value: Any) -> dict[str, Any]:
    """Results of custom requests arrive as dicts (our converter) or attribute objects."""
    if value is None:
        return {}
    if isinstance(value, dict):
        return value
    if hasattr(value, "_asdict"):
        return {k: v for k, v in value._asdict().items()}
    if hasattr(value, "__dict__"):
        return dict(vars(value))
    return {}
