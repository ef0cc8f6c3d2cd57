"""Thin protocol handlers: convert params, call one service, return.

Custom requests get their params as plain dicts (see ``app._converter``).
Bad params raise ``JsonRpcInvalidParams`` with a clear message; the server
keeps serving.
"""

from __future__ import annotations

import binascii
import logging
from typing import Any

from lsprotocol import types as lsp
from pygls.exceptions import JsonRpcException, JsonRpcInvalidParams
from pygls.lsp.server import LanguageServer

from codeloop.lsp import methods as M
from codeloop.policy.engine import BYPASS_WARNING
from codeloop.lsp.app import App
from codeloop.lsp.documents import uri_to_path
from codeloop.lsp import actions
from codeloop.runtime.turns import ContextItem, ImageAttachment, TurnBusy, TurnContext, UnknownSession

log = logging.getLogger(__name__)


class TurnBusyError(JsonRpcException):
    CODE = -32002


def _params(params: Any) -> dict[str, Any]:
    if params is None:
        return {}
    if isinstance(params, dict):
        return params
    if isinstance(params, (list, tuple)):
        raise JsonRpcInvalidParams("params must be an object")
    if hasattr(params, "_asdict"):
        return dict(params._asdict())
    return dict(vars(params))


def _str(p: dict[str, Any], key: str, required: bool = True) -> str | None:
    value = p.get(key)
    if value is None:
        if required:
            raise JsonRpcInvalidParams(f"missing required parameter {key!r}")
        return None
    if not isinstance(value, str):
        raise JsonRpcInvalidParams(f"parameter {key!r} must be a string")
    return value


IMAGE_TYPES = ("image/png", "image/jpeg", "image/gif", "image/webp")
MAX_IMAGES = 8
MAX_IMAGE_BYTES = 20 * 1024 * 1024  # decoded, per image
CONTEXT_KINDS = ("file", "folder", "problems", "selection", "terminal")
MAX_CONTEXT_ITEMS = 50
MAX_CONTEXT_CHARS = 1_000_000  # all items together


def _attachments(value: Any) -> list[ImageAttachment]:
    """``attachments: [{"type": "image", "mimeType": "image/png", "data": "<base64>"}]``"""
    if value is None:
        return []
    if not isinstance(value, list):
        raise JsonRpcInvalidParams("'attachments' must be an array")
    if len(value) > MAX_IMAGES:
        raise JsonRpcInvalidParams(f"at most {MAX_IMAGES} attachments per message, got {len(value)}")
    out = []
    for i, a in enumerate(value):
        if not isinstance(a, dict) or a.get("type") != "image":
            raise JsonRpcInvalidParams(f"attachments[{i}] must be {{\"type\": \"image\", \"mimeType\", \"data\"}}")
        mime, data = a.get("mimeType"), a.get("data")
        if mime not in IMAGE_TYPES:
            raise JsonRpcInvalidParams(f"attachments[{i}].mimeType must be one of {', '.join(IMAGE_TYPES)}, got {mime!r}")
        if not isinstance(data, str) or not data:
            raise JsonRpcInvalidParams(f"attachments[{i}].data must be a non-empty base64 string")
        if len(data) * 3 // 4 > MAX_IMAGE_BYTES:
            raise JsonRpcInvalidParams(f"attachments[{i}] is larger than {MAX_IMAGE_BYTES // (1024 * 1024)} MB")
        try:
            binascii.a2b_base64(data.encode("ascii"), strict_mode=True)
        except (ValueError, binascii.Error) as e:
            raise JsonRpcInvalidParams(f"attachments[{i}].data is not valid base64: {e}") from e
        out.append(ImageAttachment(mime, data))
    return out


def _context_items(value: Any) -> list[ContextItem]:
    """``contextItems: [{"kind": "file"|"folder"|"problems"|"selection"|"terminal", "label", "text"}]``"""
    if value is None:
        return []
    if not isinstance(value, list):
        raise JsonRpcInvalidParams("'contextItems' must be an array")
    if len(value) > MAX_CONTEXT_ITEMS:
        raise JsonRpcInvalidParams(f"at most {MAX_CONTEXT_ITEMS} context items per message, got {len(value)}")
    out = []
    for i, c in enumerate(value):
        if not isinstance(c, dict):
            raise JsonRpcInvalidParams(f"contextItems[{i}] must be an object")
        kind, label, text = c.get("kind"), c.get("label"), c.get("text")
        if kind not in CONTEXT_KINDS:
            raise JsonRpcInvalidParams(f"contextItems[{i}].kind must be one of {', '.join(CONTEXT_KINDS)}, got {kind!r}")
        if not isinstance(label, str) or not isinstance(text, str):
            raise JsonRpcInvalidParams(f"contextItems[{i}].label and .text must be strings")
        out.append(ContextItem(kind, label.replace('"', "'"), text))
    if sum(len(c.text) for c in out) > MAX_CONTEXT_CHARS:
        raise JsonRpcInvalidParams(f"the context items hold more than {MAX_CONTEXT_CHARS:,} characters")
    return out


def register(server: LanguageServer, app: App) -> None:
    def sessions():
        if app.sessions is None:
            raise JsonRpcException("the server is not initialized")
        return app.sessions

    def show(problems: list[str], kind: lsp.MessageType = lsp.MessageType.Warning) -> None:
        for p in problems:
            server.window_show_message(lsp.ShowMessageParams(type=kind, message=f"codeloop: {p}"))

    # -- lifecycle -----------------------------------------------------------------

    @server.feature(lsp.INITIALIZE)
    def initialize(params: lsp.InitializeParams) -> None:
        app.pending_problems = app.initialize(params)

    @server.feature(lsp.INITIALIZED)
    def initialized(params: lsp.InitializedParams) -> None:
        show(getattr(app, "pending_problems", []))
        app.pending_problems = []
        if app.settings.mode == "bypass":
            show([BYPASS_WARNING])

        async def probe_sandbox() -> None:  # when no sandbox works, say so once
            warning = await app.sandbox_warning()
            if warning:
                show([warning])

        app.tasks.spawn(probe_sandbox(), "probe the sandbox")

    @server.feature(M.SANDBOX_INFO)
    async def sandbox_info(params: Any) -> dict[str, Any]:
        box = await app.sandbox.start()
        return box.info()

    @server.feature(lsp.SHUTDOWN)
    async def shutdown(params: Any) -> None:
        await app.shutdown()

    @server.feature(lsp.WORKSPACE_DID_CHANGE_CONFIGURATION)
    def did_change_configuration(params: lsp.DidChangeConfigurationParams) -> None:
        before = app.settings.mode
        show(app.change_settings(params.settings))
        if app.settings.mode == "bypass" and before != "bypass":
            show([BYPASS_WARNING])

    # -- documents (pygls keeps the text; we track disk state) ----------------------

    @server.feature(lsp.TEXT_DOCUMENT_DID_OPEN)
    def did_open(params: lsp.DidOpenTextDocumentParams) -> None:
        if app.documents is not None:
            app.documents.opened(params.text_document.uri)

    @server.feature(lsp.TEXT_DOCUMENT_DID_SAVE, lsp.TextDocumentSaveRegistrationOptions(include_text=True))
    def did_save(params: lsp.DidSaveTextDocumentParams) -> None:
        if app.documents is not None:
            app.documents.saved(params.text_document.uri, params.text)

    @server.feature(lsp.TEXT_DOCUMENT_DID_CLOSE)
    def did_close(params: lsp.DidCloseTextDocumentParams) -> None:
        if app.documents is not None:
            app.documents.closed(params.text_document.uri)

    # -- chat ----------------------------------------------------------------------

    @server.feature(M.CHAT_START)
    async def chat_start(params: Any) -> dict[str, Any]:
        p = _params(params)
        text = _str(p, "text")
        assert text is not None
        if not text.strip():
            raise JsonRpcInvalidParams("'text' is empty")
        ctx = p.get("context") if isinstance(p.get("context"), dict) else {}
        selection = ctx.get("selection") if isinstance(ctx.get("selection"), dict) else None
        sel_path = uri_to_path(selection["uri"]) if selection and isinstance(selection.get("uri"), str) else None
        turn_ctx = TurnContext(
            active_file=ctx.get("activeFile") if isinstance(ctx.get("activeFile"), str) else None,
            selection=selection.get("text") if selection else None,
            selection_path=str(sel_path) if sel_path else None,
            images=_attachments(p.get("attachments")),
            context_items=_context_items(p.get("contextItems")),
        )
        return await _start(p.get("sessionId"), text, turn_ctx, None)

    async def _start(session_id: Any, text: str, ctx: TurnContext | None, token: Any,
                     title: str | None = None, always_progress: bool = False) -> dict[str, Any]:
        if session_id is not None and not isinstance(session_id, str):
            raise JsonRpcInvalidParams("'sessionId' must be a string")
        svc = sessions()
        assert app.client is not None
        try:
            sid, tid = svc.start_turn(session_id, text, ctx)
        except TurnBusy as e:
            raise TurnBusyError(str(e)) from e
        except UnknownSession as e:
            raise JsonRpcInvalidParams(str(e)) from e
        await app.client.begin_progress(sid, tid, title or text, token, always=always_progress)
        return {"sessionId": sid, "turnId": tid}

    @server.feature(M.CHAT_CANCEL)
    def chat_cancel(params: Any) -> None:
        p = _params(params)
        sessions().cancel(p.get("sessionId"), p.get("turnId"))

    @server.feature(lsp.WINDOW_WORK_DONE_PROGRESS_CANCEL)
    def progress_cancel(params: lsp.WorkDoneProgressCancelParams) -> None:
        if app.client is None:
            return
        hit = app.client.turn_for_token(str(params.token))
        if hit is not None:
            sessions().cancel(hit[0], hit[1])

    # -- sessions ------------------------------------------------------------------

    @server.feature(M.SESSION_NEW)
    def session_new(params: Any) -> dict[str, Any]:
        return {"sessionId": sessions().new_session()}

    @server.feature(M.SESSION_LIST)
    async def session_list(params: Any) -> dict[str, Any]:
        return {"sessions": await sessions().list_sessions()}

    @server.feature(M.SESSION_OPEN)
    def session_open(params: Any) -> dict[str, Any]:
        sid = _str(_params(params), "sessionId")
        try:
            return sessions().open(sid or "")
        except UnknownSession as e:
            raise JsonRpcInvalidParams(str(e)) from e

    @server.feature(M.SESSION_TRANSCRIPT)
    def session_transcript(params: Any) -> dict[str, Any]:
        sid = _str(_params(params), "sessionId")
        try:
            return sessions().transcript(sid or "")
        except UnknownSession as e:
            raise JsonRpcInvalidParams(str(e)) from e

    @server.feature(M.CONTEXT_SHOW)
    async def context_show(params: Any) -> dict[str, Any]:
        sid = _str(_params(params), "sessionId", required=False)
        slot = sessions().get(sid)
        assembled = await slot.session.assembled_prompt()
        return {"sessionId": slot.session.id, "report": assembled.render_report(), "text": assembled.text}

    # -- processes and proposals ----------------------------------------------------

    @server.feature(M.PROCESS_LIST)
    def process_list(params: Any) -> dict[str, Any]:
        return {"processes": sessions().processes()}

    @server.feature(M.PROCESS_KILL)
    async def process_kill(params: Any) -> dict[str, Any]:
        pid = _str(_params(params), "id")
        return {"killed": await sessions().kill_process(pid or "")}

    @server.feature(M.PROPOSAL_LIST)
    def proposal_list(params: Any) -> dict[str, Any]:
        assert app.proposals is not None and app.client is not None
        return {"proposals": [app.client.proposal_params(p) for p in app.proposals.pending.values()]}

    # -- code actions and commands (any LSP editor) ------------------------------------

    @server.feature(
        lsp.TEXT_DOCUMENT_CODE_ACTION,
        lsp.CodeActionOptions(
            code_action_kinds=[lsp.CodeActionKind.QuickFix, lsp.CodeActionKind.RefactorRewrite],
            resolve_provider=False,
        ),
    )
    def code_action(params: lsp.CodeActionParams) -> list[lsp.CodeAction]:
        return actions.code_actions(params)

    @server.feature(lsp.TEXT_DOCUMENT_HOVER)
    def hover(params: lsp.HoverParams) -> lsp.Hover | None:
        if app.proposals is None:
            return None
        return actions.pending_hover(app.proposals, params)

    # pygls advertises registered commands in executeCommandProvider.
    @server.command(M.CMD_CHAT)
    async def cmd_chat(*args: Any) -> Any:
        if not args or not isinstance(args[0], str) or not args[0].strip():
            raise JsonRpcInvalidParams("codeloop.chat takes the message text as its first argument")
        session_id = args[1] if len(args) > 1 and isinstance(args[1], str) else None
        return await _start(session_id, args[0], None, None)

    @server.command(M.CMD_CANCEL)
    def cmd_cancel(*args: Any) -> Any:
        return {"cancelled": sessions().cancel(args[0] if args and isinstance(args[0], str) else None)}

    def focused(command: str):
        async def run(*args: Any) -> Any:
            request = await actions.build_request(server, app, command, list(args))
            if request is None:
                return None
            # An optional sessionId continues that conversation; else a new session.
            first = args[0] if args and isinstance(args[0], dict) else {}
            session_id = first.get("sessionId") if isinstance(first.get("sessionId"), str) else None
            # A code action's turn shows $/progress (cancellable) in every client that has it.
            return await _start(session_id, request.prompt, request.context, None, request.title, always_progress=True)

        return run

    for name in (M.CMD_FIX, M.CMD_ASK, M.CMD_EXPLAIN):
        server.command(name)(focused(name))
