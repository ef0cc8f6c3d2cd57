"""The ACP agent: the protocol's requests over codeloop's sessions.

One ``AcpSlot`` per ACP session: the ``AgentSession`` behind it (built exactly as the
other hosts build theirs, with this host's ports), its workspace (``workspace.py``: the
project trust and the MCP servers of its ``cwd``, shared by the connection's sessions
there), its line to the client and its running turn. The ACP session id is the codeloop
session's id, so ``session/load`` of it resumes the conversation saved in the workspace
(``context/store.py``).

- ``initialize``: protocol version 1; sessions can be loaded and listed; prompts may
  carry images and embedded resources; MCP servers over stdio, HTTP and SSE.
- ``session/new``: a session in ``cwd``, in the mode the settings give (``ask``, or
  the user's ``mode``), with the workspace's MCP servers and the client's; then the
  command menu.
- ``session/load``: resumes a saved session and replays it as updates; a session with
  no messages replays nothing; an unknown id is error -32002.
- ``session/set_mode``: ask, acceptEdits, plan, bypass (``AgentSession.set_mode``).
- ``session/prompt``: the first one waits for the workspace's trust questions (asked in
  its turn) and its MCP servers; slash commands go to the command layer; anything else is a
  turn. It ends with ``end_turn``, ``max_turn_requests``, ``cancelled``, or
  ``refusal`` when the model's server failed before anything of the turn was kept
  (the prompt is then not part of the conversation, which is what refusal means).
- ``session/cancel``: cancels the turn's task, as every host does.
"""

from __future__ import annotations

import asyncio
import logging
from pathlib import Path
from typing import Any

from acp import PROTOCOL_VERSION, RequestError
from acp.schema import (
    AgentCapabilities,
    AuthenticateResponse,
    ClientCapabilities,
    CurrentModeUpdate,
    Implementation,
    InitializeResponse,
    ListSessionsResponse,
    LoadSessionResponse,
    McpCapabilities,
    NewSessionResponse,
    PromptCapabilities,
    PromptResponse,
    SessionCapabilities,
    SessionInfo,
    SessionListCapabilities,
    SetSessionModeResponse,
)

from codeloop import __version__
from codeloop.acp.convert import HOST, available_commands, modes, plan_update, prompt_parts, replay
from codeloop.acp.events import AcpSink, message, thought
from codeloop.acp.files import ClientDocuments
from codeloop.acp.link import Outbox, SessionLink
from codeloop.acp.mcp import SETTLE_TIMEOUT, server_configs
from codeloop.acp.review import AcpApprover, AcpChangeApplier
from codeloop.acp.rewind import ClientRewindPort
from codeloop.acp.terminal import ClientTerminalRunner, LiveOutput
from codeloop.acp.workspace import AcpWorkspace
from codeloop.commands.table import dispatch
from codeloop.context.store import SessionStore
from codeloop.core.ports import NoDocuments
from codeloop.core.tasks import Tasks
from codeloop.policy import PermissionPolicy
from codeloop.policy.engine import BYPASS_WARNING
from codeloop.policy.types import MODES, PermissionRequest
from codeloop.runtime.mcp import WorkspaceMcp
from codeloop.runtime.sandboxing import sandbox_for
from codeloop.runtime.session import AgentSession, Ports
from codeloop.runtime.settings import load_settings
from codeloop.runtime.turns import TurnContext, user_content
from codeloop.services.diagnostics import CheckedApplier, DiagnosticsService
from codeloop.tools.base import BaseTool

log = logging.getLogger(__name__)

_STOP = {"done": "end_turn", "max_turns": "max_turn_requests", "cancelled": "cancelled"}


class AcpSlot:
    """One ACP session: the codeloop session behind it, its workspace, the MCP servers its
    client passed (their names) and its running turn."""

    def __init__(self, session_id: str, root: Path, link: SessionLink, workspace: AcpWorkspace,
                 clients: frozenset[str]) -> None:
        self.id = session_id
        self.root = root
        self.link = link
        self.workspace = workspace
        self.clients = clients
        self.session: AgentSession = None  # type: ignore[assignment]  # set by the agent
        self.mcp_settled = False
        self.task: asyncio.Task[str] | None = None
        self.cancelled = False

    @property
    def running(self) -> bool:
        return self.task is not None and not self.task.done()

    def cancel(self) -> None:
        self.cancelled = True
        if self.task is not None and not self.task.done():
            self.task.cancel()


class _CommandHost:
    """The command layer's view of an ACP session. /clear and /resume switch the codeloop
    session behind it (the client keeps its session id)."""

    name = HOST

    def __init__(self, agent: CodeloopAgent, slot: AcpSlot) -> None:
        self.agent = agent
        self.slot = slot

    @property
    def session(self) -> AgentSession:
        return self.slot.session

    @property
    def mcp(self) -> WorkspaceMcp:
        return self.slot.workspace.mcp

    async def _switch(self, resume: str | None) -> AgentSession:
        slot, previous = self.slot, self.slot.session
        session, warnings = self.agent.build(slot.root, slot.link, resume, slot.workspace,
                                             start_source=None if resume else "clear")
        session.update_settings(session.settings.model_copy(
            update={"model": previous.settings.model, "mode": previous.policy.mode}))
        slot.workspace.mcp.attach(session, clients=slot.clients)  # the same servers as before
        WorkspaceMcp.detach(previous)
        slot.session = session
        await previous.close("clear" if resume is None else "other")
        for w in warnings:
            slot.link.outbox.put(message(f"> {w}\n\n"))
        return session

    async def new_session(self) -> AgentSession:
        return await self._switch(None)

    def rewind_ui(self) -> None:
        return None  # ACP has no free-form question: /rewind N previews, /rewind N --yes applies

    def rewind_port(self) -> ClientRewindPort | None:
        """Restores through the client's fs/* when it offers them, else to the disk."""
        fs = self.agent.client.fs
        if fs is None or not (fs.read_text_file or fs.write_text_file):
            return None
        documents = self.slot.session.ports.documents
        return ClientRewindPort(self.slot.link, documents if isinstance(documents, ClientDocuments) else None,
                                write=bool(fs.write_text_file))

    async def resume(self, session_id: str) -> AgentSession:
        try:
            return await self._switch(session_id)
        except (FileNotFoundError, KeyError, ValueError) as e:
            raise LookupError(f"no session {session_id!r} in this workspace ({e})") from e


class CodeloopAgent:
    """The ACP ``Agent`` (``acp.interfaces.Agent``). ``flags`` are the host's settings
    layer (``codeloop acp --model ...``), as the CLI's flags are."""

    def __init__(self, flags: dict[str, Any] | None = None) -> None:
        self.flags = dict(flags or {})
        self.conn: Any = None
        self.client = ClientCapabilities()
        self.slots: dict[str, AcpSlot] = {}
        self.workspaces: dict[Path, AcpWorkspace] = {}  # by cwd: their trust and MCP servers
        self.tasks = Tasks("acp")

    def on_connect(self, conn: Any) -> None:
        self.conn = conn

    # -- lifecycle ---------------------------------------------------------------------

    async def initialize(self, protocol_version: int, client_capabilities: ClientCapabilities | None = None,
                         client_info: Any = None, **kwargs: Any) -> InitializeResponse:
        self.client = client_capabilities or ClientCapabilities()
        fs = self.client.fs
        log.info("ACP client %s: fs read=%s write=%s, terminal=%s", getattr(client_info, "name", "?"),
                 bool(fs and fs.read_text_file), bool(fs and fs.write_text_file), bool(self.client.terminal))
        return InitializeResponse(
            protocol_version=PROTOCOL_VERSION,
            agent_capabilities=AgentCapabilities(
                load_session=True,
                prompt_capabilities=PromptCapabilities(image=True, audio=False, embedded_context=True),
                mcp_capabilities=McpCapabilities(http=True, sse=True),
                session_capabilities=SessionCapabilities(list=SessionListCapabilities()),
            ),
            agent_info=Implementation(name="codeloop", title="codeloop", version=__version__),
            auth_methods=[],
        )

    async def authenticate(self, method_id: str, **kwargs: Any) -> AuthenticateResponse:
        return AuthenticateResponse()

    async def shutdown(self) -> None:
        for slot in list(self.slots.values()):
            await self._close(slot)
        for ws in list(self.workspaces.values()):
            try:
                await ws.close()  # the MCP servers stop with the connection
            except Exception:
                log.exception("closing the workspace %s failed", ws.root)
        self.workspaces.clear()
        await self.tasks.cancel_all()

    # -- sessions ----------------------------------------------------------------------

    def _root(self, cwd: str) -> Path:
        root = Path(cwd)
        if not root.is_absolute():
            raise RequestError.invalid_params({"message": f"cwd must be an absolute path, not {cwd!r}"})
        if not root.is_dir():
            raise RequestError.invalid_params({"message": f"cwd {cwd!r} is not a directory"})
        return root.resolve()

    def _workspace(self, root: Path) -> AcpWorkspace:
        ws = self.workspaces.get(root)
        if ws is None:
            settings, _ = load_settings(root, self.flags)  # (its problems are each session's warnings)
            ws = self.workspaces[root] = AcpWorkspace(root, settings, self.tasks)
        return ws

    def build(self, root: Path, link: SessionLink, resume: str | None, ws: AcpWorkspace,
              start_source: str | None = None) -> tuple[AgentSession, list[str]]:
        """An ``AgentSession`` with this host's ports, and the warnings to show. Its MCP
        tools are attached by the caller (``WorkspaceMcp.attach``)."""
        settings, problems = load_settings(root, self.flags)
        fs = self.client.fs
        documents = ClientDocuments(link, asyncio.get_running_loop()) if fs and fs.read_text_file else None
        applier = AcpChangeApplier(link, documents=documents, write=bool(fs and fs.write_text_file))
        # No editor diagnostics over ACP: the check command reports new errors after a
        # write, and answers the diagnostics tool, as in the CLI.
        checker = DiagnosticsService(root, check_command=settings.check_command, sandbox=sandbox_for(settings, root))
        ports = Ports(
            sink=AcpSink(link), approver=AcpApprover(link), changes=CheckedApplier(applier, checker, applier.display),
            documents=documents if documents is not None else NoDocuments(), diagnostics=checker,
            runner=ClientTerminalRunner(link) if self.client.terminal else None,
            terminal=LiveOutput(link),  # the output of what runs here (the sandbox, no client terminal)
        )
        # The project's own allow rules and hooks apply once the project is trusted.
        policy = PermissionPolicy(root, mode=settings.mode, user_settings=settings.permissions, gate=ws.trust)
        session = AgentSession(settings, root, ports, resume=resume, policy=policy, project_trust=ws.trust,
                               start_source=start_source)

        def remember(path: Path) -> list[str]:
            return session.policy.remember(PermissionRequest("Edit", applier.display(path), root, path))

        applier.remember = remember
        link.tool = self._lookup(link)
        warnings = [*problems, *session.policy.problems, *session.load_warnings]
        if session.settings.mode == "bypass":
            warnings.append(BYPASS_WARNING)
        return session, warnings

    def _lookup(self, link: SessionLink) -> Any:
        def tool(name: str) -> BaseTool | None:
            slot = self.slots.get(link.session_id)
            return slot.session.tools.get(name) if slot is not None else None

        return tool

    async def _open(self, root: Path, resume: str | None, mcp_servers: Any) -> tuple[AcpSlot, list[str]]:
        link = SessionLink(conn=self.conn, root=root, outbox=Outbox(self.conn, self.tasks), tasks=self.tasks)
        ws = self._workspace(root)
        session, warnings = self.build(root, link, resume, ws)
        sid = session.id or resume or ""
        link.bind(sid)
        configs, problems = server_configs(mcp_servers)
        warnings += problems + await ws.mcp.add_client_servers(configs)
        slot = AcpSlot(sid, root, link, ws, frozenset(c.name for c in configs))
        slot.session = session
        link.cancel_turn = slot.cancel
        ws.mcp.attach(session, clients=slot.clients)
        ws.links.append(link)
        ws.open()  # the consent, the servers (the questions wait for the first prompt)
        self.slots[sid] = slot
        return slot, warnings

    async def _close(self, slot: AcpSlot) -> None:
        slot.cancel()
        if slot.task is not None:
            await asyncio.gather(slot.task, return_exceptions=True)
        WorkspaceMcp.detach(slot.session)
        try:
            await slot.session.close()
        except Exception:
            log.exception("closing session %s failed", slot.id)
        if slot.link in slot.workspace.links:
            slot.workspace.links.remove(slot.link)
        await slot.link.outbox.close()
        self.slots.pop(slot.id, None)

    def _slot(self, session_id: str) -> AcpSlot:
        slot = self.slots.get(session_id)
        if slot is None:
            raise RequestError.invalid_params({"message": f"no session {session_id!r} in this connection; "
                                                          "create it (session/new) or load it (session/load)"})
        return slot

    async def new_session(self, cwd: str, mcp_servers: Any = None, additional_directories: Any = None,
                          **kwargs: Any) -> NewSessionResponse:
        slot, warnings = await self._open(self._root(cwd), None, mcp_servers)
        out = slot.link.outbox
        out.put(available_commands())
        for w in warnings:
            out.put(message(f"> {w}\n\n"))
        # The client learns the id from this answer: its updates go out after it.
        asyncio.get_running_loop().call_soon(out.release)
        return NewSessionResponse(session_id=slot.id, modes=modes(slot.session.policy.mode))

    async def load_session(self, cwd: str, session_id: str, mcp_servers: Any = None,
                           additional_directories: Any = None, **kwargs: Any) -> LoadSessionResponse:
        root = self._root(cwd)
        existing = self.slots.get(session_id)
        if existing is not None:
            if existing.running:
                raise RequestError.invalid_request({"message": f"session {session_id!r} is running a turn"})
            writer = existing.session.writer
            if writer is not None and not writer.path.exists():  # a new session, nothing saved yet
                return await self._reload_unsaved(existing, mcp_servers)
            await self._close(existing)
        try:
            slot, warnings = await self._open(root, session_id, mcp_servers)
        except (FileNotFoundError, KeyError, ValueError) as e:
            why = "invalid id" if isinstance(e, ValueError) and "invalid session id" in str(e) else "not found"
            raise RequestError(-32002, f"Resource not found: no session {session_id!r} in {root} ({why}); "
                                       "session/list lists the saved ones", {"uri": session_id}) from e
        out = slot.link.outbox
        out.release()
        for update in self._replay(slot):
            out.put(update)
        out.put(available_commands())
        for w in warnings:
            out.put(message(f"> {w}\n\n"))
        await out.flush()  # the whole conversation before the answer, as the spec has it
        return LoadSessionResponse(modes=modes(slot.session.policy.mode))

    async def _reload_unsaved(self, slot: AcpSlot, mcp_servers: Any) -> LoadSessionResponse:
        """``session/load`` of a session of this connection that has no message yet (its file
        appears with the first): it stays as it is, nothing to replay; servers the client
        passes now join it."""
        configs, problems = server_configs(mcp_servers)
        problems += await slot.workspace.mcp.add_client_servers(configs)
        new = frozenset(c.name for c in configs) - slot.clients
        if new:
            slot.clients |= new
            slot.mcp_settled = False
            WorkspaceMcp.detach(slot.session)
            slot.workspace.mcp.attach(slot.session, clients=slot.clients)
        out = slot.link.outbox
        out.put(available_commands())
        for w in problems:
            out.put(message(f"> {w}\n\n"))
        await out.flush()
        return LoadSessionResponse(modes=modes(slot.session.policy.mode))

    def _replay(self, slot: AcpSlot) -> list[Any]:
        """The conversation as updates, then its todo list as the plan (when it has one)."""
        updates = replay(slot.session.messages, self._summary(slot), slot.root)
        todos = slot.session.todos.items
        if todos:
            updates.append(plan_update([t.to_json() for t in todos]))
        return updates

    def _summary(self, slot: AcpSlot) -> Any:
        def lookup(name: str, raw: str) -> tuple[BaseTool | None, str]:
            parsed = slot.session.tools.parse(name, raw)
            if isinstance(parsed, tuple):
                tool, args = parsed
                try:
                    return tool, tool.summary(args)
                except Exception:
                    return tool, ""
            return slot.session.tools.get(name), ""

        return lookup

    async def list_sessions(self, cwd: str | None = None, cursor: str | None = None, **kwargs: Any) -> ListSessionsResponse:
        root = self._root(cwd) if cwd else Path.cwd().resolve()
        settings, _ = load_settings(root, self.flags)
        try:
            infos = await asyncio.to_thread(SessionStore(root, storage=settings.session_storage).list)
        except (OSError, ValueError) as e:
            raise RequestError.internal_error({"message": f"could not list the sessions: {e}"}) from e
        return ListSessionsResponse(sessions=[
            SessionInfo(session_id=i.id, cwd=str(root), title=i.title or None, updated_at=i.updated or None) for i in infos
        ])

    async def set_session_mode(self, session_id: str, mode_id: str, **kwargs: Any) -> SetSessionModeResponse:
        slot = self._slot(session_id)
        if mode_id not in MODES:
            raise RequestError.invalid_params({"message": f"unknown mode {mode_id!r}; modes: {', '.join(MODES)}"})
        slot.session.set_mode(mode_id)
        if mode_id == "bypass":
            slot.link.outbox.put(message(f"> Mode: bypass. {BYPASS_WARNING}\n\n"))
        return SetSessionModeResponse()

    # -- turns -------------------------------------------------------------------------

    async def prompt(self, session_id: str, prompt: list[Any], **kwargs: Any) -> PromptResponse:
        slot = self._slot(session_id)
        if slot.running:
            raise RequestError.invalid_request({"message": "a turn is already running in this session; cancel it first"})
        text, ctx = prompt_parts(prompt, slot.root)
        if not text.strip() and not ctx.images and not ctx.context_items:
            raise RequestError.invalid_params({"message": "the prompt is empty"})
        slot.cancelled = False
        task = self.tasks.spawn(self._turn(slot, text, ctx), f"turn in {session_id}")
        slot.task = task
        try:
            await asyncio.wait({task})
        except asyncio.CancelledError:  # the request itself (the connection is closing)
            task.cancel()
            raise
        reason = "cancelled" if slot.cancelled or task.cancelled() else task.result()
        await slot.link.outbox.flush()  # every update of the turn before its answer
        return PromptResponse(stop_reason=reason)

    async def _turn(self, slot: AcpSlot, text: str, ctx: TurnContext) -> str:
        with slot.workspace.asking(slot.link):  # the project's trust is asked in this turn, if at all
            await slot.workspace.ready()
            if not slot.mcp_settled:  # the servers' tools (the client's, those just trusted) from the first request on
                await slot.workspace.mcp.wait_settled(None, SETTLE_TIMEOUT)
                slot.mcp_settled = True
            return await self._run(slot, text, ctx)

    async def _run(self, slot: AcpSlot, text: str, ctx: TurnContext) -> str:
        out = slot.link.outbox
        mode, current = slot.session.policy.mode, slot.session
        try:
            reply = await dispatch(text, _CommandHost(self, slot))
            if reply is not None and reply.send is None:
                if slot.session is not current:  # /resume: the client is shown that conversation
                    for update in self._replay(slot):
                        out.put(update)
                out.put(message(reply.text))
                if slot.session.policy.mode != mode:
                    out.put(CurrentModeUpdate(session_update="current_mode_update",
                                              current_mode_id=slot.session.policy.mode))
                return "end_turn"
            session = slot.session
            content, notice = user_content(reply.send if reply is not None and reply.send else text, ctx,
                                           session.settings)
            if notice:
                out.put(thought(notice))
            before = len(session.messages)
            end = await session.send(content)
        except asyncio.CancelledError:
            raise
        except Exception as e:  # never let a turn die silently
            log.exception("turn failed")
            out.put(message(f"\n\nError: internal error: {e}\n"))
            return "end_turn"
        if end.status == "max_turns":
            out.put(message(f"\n\n> {end.message}\n"))
        if end.status == "error":
            # Nothing of the turn was kept (the model's server failed at once): the prompt is
            # not part of the conversation, which is what "refusal" tells the client.
            return "refusal" if len(session.messages) == before else "end_turn"
        return _STOP.get(end.status, "end_turn")

    async def cancel(self, session_id: str, **kwargs: Any) -> None:
        slot = self.slots.get(session_id)
        if slot is not None:
            slot.cancel()


__all__ = ["AcpSlot", "CodeloopAgent"]
