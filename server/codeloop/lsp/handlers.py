"""Thin protocol handlers: parse the params (``wire``), call one service, return its result
as a wire model. Bad params are ``-32602`` with a clear message; the server keeps serving.
"""

from __future__ import annotations

import logging
from typing import Any

from lsprotocol import types as lsp
from pygls.exceptions import JsonRpcException, JsonRpcInvalidParams
from pygls.lsp.server import LanguageServer

from codeloop.lsp import actions, attachments, rewind
from codeloop.lsp import methods as M
from codeloop.lsp import wire
from codeloop.lsp.documents import uri_to_path
from codeloop.lsp.state import Host, Services
from codeloop.policy.engine import BYPASS_WARNING
from codeloop.runtime.turns import TurnBusy, TurnContext, UnknownSession

log = logging.getLogger(__name__)


class TurnBusyError(JsonRpcException):
    CODE = -32803  # LSP RequestFailed: well-formed, but a turn already runs in that session


class NotInitialized(JsonRpcException):
    CODE = -32002


def register(server: LanguageServer, host: Host) -> None:
    def svc() -> Services:
        if host.services is None:
            raise NotInitialized("the server is not initialized")
        return host.services

    def show(problems: list[str], kind: lsp.MessageType = lsp.MessageType.Warning) -> None:
        for p in problems:
            server.window_show_message(lsp.ShowMessageParams(type=kind, message=f"codeloop: {p}"))

    # -- lifecycle -----------------------------------------------------------------

    @server.feature(lsp.INITIALIZE)
    def initialize(params: lsp.InitializeParams) -> None:
        host.problems = host.initialize(params)

    @server.feature(lsp.INITIALIZED)
    def initialized(params: lsp.InitializedParams) -> None:
        show(host.problems)
        host.problems = []
        if svc().settings().mode == "bypass":
            show([BYPASS_WARNING])
        host.start_workspace()

        async def probe_sandbox() -> None:  # when no sandbox works, say so once
            warning = await host.sandbox_warning()
            if warning:
                show([warning])

        svc().tasks.spawn(probe_sandbox(), "probe the sandbox")

    @server.feature(M.SANDBOX_INFO)
    async def sandbox_info(params: Any) -> dict[str, Any]:
        wire.parse(wire.EmptyParams, params)
        box = await host.sandbox.start()
        return wire.dump(wire.SandboxInfo.model_validate(box.info()))

    @server.feature(lsp.SHUTDOWN)
    async def shutdown(params: Any) -> None:
        await host.shutdown()

    @server.feature(lsp.WORKSPACE_DID_CHANGE_CONFIGURATION)
    def did_change_configuration(params: lsp.DidChangeConfigurationParams) -> None:
        before = svc().settings().mode
        show(host.change_settings(params.settings))
        if svc().settings().mode == "bypass" and before != "bypass":
            show([BYPASS_WARNING])

    # -- documents (pygls keeps the text; we track disk state and our own checks) ------

    @server.feature(lsp.TEXT_DOCUMENT_DID_OPEN)
    def did_open(params: lsp.DidOpenTextDocumentParams) -> None:
        s = svc()
        s.documents.opened(params.text_document.uri, params.text_document.text)
        if s.own is not None:
            s.own.schedule(uri_to_path(params.text_document.uri), delay=0.0)

    @server.feature(lsp.TEXT_DOCUMENT_DID_CHANGE)
    def did_change(params: lsp.DidChangeTextDocumentParams) -> None:
        s = svc()
        s.documents.changed(params.text_document.uri)
        if s.own is not None:
            s.own.schedule(uri_to_path(params.text_document.uri))

    @server.feature(lsp.TEXT_DOCUMENT_DID_SAVE, lsp.TextDocumentSaveRegistrationOptions(include_text=True))
    def did_save(params: lsp.DidSaveTextDocumentParams) -> None:
        s = svc()
        s.documents.saved(params.text_document.uri, params.text)
        if s.own is not None:
            s.own.schedule(uri_to_path(params.text_document.uri), delay=0.0)

    @server.feature(lsp.TEXT_DOCUMENT_DID_CLOSE)
    def did_close(params: lsp.DidCloseTextDocumentParams) -> None:
        s = svc()
        s.documents.closed(params.text_document.uri)
        if s.own is not None:
            s.own.forget(uri_to_path(params.text_document.uri))

    # -- chat ----------------------------------------------------------------------

    async def start(session_id: str | None, text: str, ctx: TurnContext | None, title: str | None = None,
                    always_progress: bool = False) -> dict[str, Any]:
        s = svc()
        try:
            sid, tid = s.sessions.start_turn(session_id, text, ctx)
        except TurnBusy as e:
            raise TurnBusyError(str(e)) from e
        except UnknownSession as e:
            raise JsonRpcInvalidParams(str(e)) from e
        await s.client.begin_progress(sid, tid, title or text, None, always=always_progress)
        return wire.dump(wire.ChatStartResult(session_id=sid, turn_id=tid))

    @server.feature(M.CHAT_START)
    async def chat_start(params: Any) -> dict[str, Any]:
        p = wire.parse(wire.ChatStartParams, params)
        if not p.text.strip():
            raise JsonRpcInvalidParams("'text' is empty")
        ctx = p.context or wire.ChatContext()
        sel = ctx.selection
        sel_path = uri_to_path(sel.uri) if sel is not None else None
        turn_ctx = TurnContext(
            active_file=ctx.active_file,
            selection=sel.text if sel is not None else None,
            selection_path=str(sel_path) if sel_path else None,
            images=attachments.images(p.attachments),
            context_items=attachments.context_items(p.context_items),
        )
        return await start(p.session_id, p.text, turn_ctx)

    @server.feature(M.CHAT_CANCEL)
    def chat_cancel(params: Any) -> None:
        try:
            p = wire.parse(wire.ChatCancelParams, params)
        except JsonRpcInvalidParams as e:
            log.warning("ignored %s: %s", M.CHAT_CANCEL, e)
            return
        svc().sessions.cancel(p.session_id, p.turn_id)

    @server.feature(lsp.WINDOW_WORK_DONE_PROGRESS_CANCEL)
    def progress_cancel(params: lsp.WorkDoneProgressCancelParams) -> None:
        s = svc()
        hit = s.client.turn_for_token(str(params.token))
        if hit is not None:
            s.sessions.cancel(hit[0], hit[1])

    # -- sessions ------------------------------------------------------------------

    @server.feature(M.SESSION_NEW)
    def session_new(params: Any) -> dict[str, Any]:
        return wire.dump(wire.SessionNewResult(session_id=svc().sessions.new_session()))

    @server.feature(M.SESSION_LIST)
    async def session_list(params: Any) -> dict[str, Any]:
        listed = await svc().sessions.list_sessions()
        return wire.dump(wire.SessionListResult(sessions=[wire.SessionInfo.model_validate(x) for x in listed]))

    @server.feature(M.SESSION_OPEN)
    def session_open(params: Any) -> dict[str, Any]:
        p = wire.parse(wire.SessionIdParams, params)
        try:
            return wire.dump(wire.SessionOpenResult.model_validate(svc().sessions.open(p.session_id)))
        except UnknownSession as e:
            raise JsonRpcInvalidParams(str(e)) from e

    @server.feature(M.SESSION_TRANSCRIPT)
    def session_transcript(params: Any) -> dict[str, Any]:
        p = wire.parse(wire.SessionIdParams, params)
        try:
            return wire.dump(wire.SessionTranscriptResult.model_validate(svc().sessions.transcript(p.session_id)))
        except UnknownSession as e:
            raise JsonRpcInvalidParams(str(e)) from e

    @server.feature(M.CONTEXT_SHOW)
    async def context_show(params: Any) -> dict[str, Any]:
        p = wire.parse(wire.OptionalSessionParams, params)
        try:
            slot = svc().sessions.get(p.session_id)
        except UnknownSession as e:
            raise JsonRpcInvalidParams(str(e)) from e
        assembled = await slot.session.assembled_prompt()
        return wire.dump(wire.ContextResult(session_id=slot.session.id or "", report=assembled.render_report(), text=assembled.text))

    @server.feature(M.COMMAND_TABLE)
    async def command_table(params: Any) -> dict[str, Any]:
        wire.parse(wire.EmptyParams, params)
        rows = await svc().sessions.command_table()
        return wire.dump(wire.CommandTableResult(commands=[wire.CommandInfo.model_validate(r) for r in rows]))

    # -- processes and proposals ----------------------------------------------------

    @server.feature(M.PROCESS_LIST)
    def process_list(params: Any) -> dict[str, Any]:
        return wire.dump(wire.ProcessListResult(processes=[wire.ProcessInfo.model_validate(x) for x in svc().sessions.processes()]))

    @server.feature(M.PROCESS_KILL)
    async def process_kill(params: Any) -> dict[str, Any]:
        p = wire.parse(wire.ProcessKillParams, params)
        return wire.dump(wire.ProcessKillResult(killed=await svc().sessions.kill_process(p.id)))

    @server.feature(M.PROPOSAL_LIST)
    def proposal_list(params: Any) -> dict[str, Any]:
        s = svc()
        return wire.dump(wire.ProposalListResult(proposals=[s.client.proposal_params(p) for p in s.proposals.pending.values()]))

    # -- code actions and commands (any LSP editor) ------------------------------------

    @server.feature(
        lsp.TEXT_DOCUMENT_CODE_ACTION,
        lsp.CodeActionOptions(
            code_action_kinds=[lsp.CodeActionKind.QuickFix, lsp.CodeActionKind.RefactorRewrite],
            resolve_provider=False,
        ),
    )
    def code_action(params: lsp.CodeActionParams) -> list[lsp.CodeAction]:
        s = svc()
        if s.own is None:
            return actions.code_actions(params)
        path = uri_to_path(params.text_document.uri)
        return actions.code_actions(params, s.own.on_lines, (s.own.source_name(path) or "") if path else "")

    @server.feature(lsp.TEXT_DOCUMENT_HOVER)
    def hover(params: lsp.HoverParams) -> lsp.Hover | None:
        return actions.pending_hover(svc().proposals, params)

    # pygls advertises registered commands in executeCommandProvider.
    @server.command(M.CMD_CHAT)
    async def cmd_chat(*args: Any) -> Any:
        if not args or not isinstance(args[0], str) or not args[0].strip():
            raise JsonRpcInvalidParams("codeloop.chat takes the message text as its first argument")
        session_id = args[1] if len(args) > 1 and isinstance(args[1], str) else None
        return await start(session_id, args[0], None)

    @server.command(M.CMD_CANCEL)
    def cmd_cancel(*args: Any) -> Any:
        return {"cancelled": svc().sessions.cancel(args[0] if args and isinstance(args[0], str) else None)}

    def focused(command: str):
        async def run(*args: Any) -> Any:
            s = svc()
            request = await actions.build_request(command, list(args), s.documents, s.root, s.client.conn.ask, s.documents.ready)
            if request is None:
                return None
            # A code action's turn shows $/progress (cancellable) in every client that has it.
            return await start(request.session_id, request.prompt, request.context, request.title, always_progress=True)

        return run

    for name in (M.CMD_FIX, M.CMD_ASK, M.CMD_EXPLAIN):
        server.command(name)(focused(name))

    register_mcp(server, host)
    rewind.register(server, host)  # codeloop/rewind/* and codeloop.rewind


def register_mcp(server: LanguageServer, host: Host) -> None:
    """The MCP servers panel: list them, restart one, answer for a project's server."""

    def mcp() -> Any:
        if host.mcp is None:
            raise NotInitialized("the server is not initialized")
        return host.mcp

    @server.feature(M.MCP_LIST)
    def mcp_list(params: Any) -> dict[str, Any]:
        report = host.mcp.report() if host.mcp is not None else ""
        return wire.dump(wire.McpListResult.model_validate({"servers": host.mcp_servers(), "report": report}))

    @server.feature(M.MCP_RESTART)
    async def mcp_restart(params: Any) -> dict[str, Any]:
        p = wire.parse(wire.McpNameParams, params)
        if not p.name:
            raise JsonRpcInvalidParams("'name' is empty")
        return wire.dump(wire.McpMessageResult(message=await mcp().restart(p.name)))

    @server.feature(M.MCP_CONSENT)
    async def mcp_consent(params: Any) -> dict[str, Any]:
        p = wire.parse(wire.McpConsentParams, params)
        if not p.name:
            raise JsonRpcInvalidParams("'name' is empty")
        return wire.dump(wire.McpMessageResult(message=await mcp().set_consent(p.name, p.allowed)))
