"""The sessions and turns of an editor connection.

Owns the AgentSessions of one workspace, runs each turn as a tracked asyncio
task, forwards events and command output to the client port, and answers the
session requests (list, open, transcript, processes). Slash commands go to the
command layer (``codeloop.commands``), like in every host.
"""

from __future__ import annotations

import asyncio
import itertools
import logging
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol

from codeloop.commands.custom import for_workspace
from codeloop.commands.table import describe, dispatch
from codeloop.config import Settings, takes_images
from codeloop.context.prompt import EditorContext
from codeloop.context.store import SessionStore
from codeloop.core.events import Event, Notice, TurnEnd
from codeloop.core.ports import ApprovalDecision, ApprovalRequest, DiagnosticsSource, Documents
from codeloop.core.tasks import Tasks
from codeloop.policy import PermissionPolicy
from codeloop.runtime.mcp import WorkspaceMcp
from codeloop.runtime.session import AgentSession, Ports
from codeloop.runtime.trust import ProjectTrust
from codeloop.services.proposals import ProposalService

log = logging.getLogger(__name__)


class ClientPort(Protocol):
    """What the session service needs from the client (implemented in codeloop.lsp)."""

    def event(self, session_id: str, turn_id: str, event: Event) -> None: ...

    def terminal_started(self, session_id: str, terminal_id: str, command: str, cwd: str, background: bool) -> None: ...

    def terminal_output(self, terminal_id: str, chunk: str) -> None: ...

    def terminal_exited(self, terminal_id: str, exit_code: int | None) -> None: ...

    async def drain(self) -> None:
        """Returns once what was sent to the editor has mostly gone out."""
        ...

    async def approve(self, session_id: str, turn_id: str, request: ApprovalRequest) -> ApprovalDecision: ...


class TurnBusy(Exception):
    pass


class UnknownSession(Exception):
    pass


@dataclass(frozen=True)
class ImageAttachment:
    """An image the user pasted or dropped into the message (base64, as it came)."""

    mime_type: str
    data: str


@dataclass(frozen=True)
class ContextItem:
    """Context the user @-mentioned (a file, a folder, the problems, the selection, the terminal)."""

    kind: str
    label: str
    text: str


@dataclass
class TurnContext:
    active_file: str | None = None
    selection_path: str | None = None
    selection: str | None = None
    images: list[ImageAttachment] = field(default_factory=list)
    context_items: list[ContextItem] = field(default_factory=list)


IMAGES_LEFT_OUT = (
    "[The user attached {n} image(s) to this message, but they were not sent: the model "
    "{model!r} is not known to take images (setting `images`: {setting}). Say so if the request "
    "needs them.]"
)


def user_content(text: str, ctx: TurnContext | None, settings: Settings) -> tuple[str | list[dict[str, Any]], str | None]:
    """The user message for the model, and a notice for the user (images left out), if any.

    Plain text without context items or images; else content parts: the text, each context
    item as a text part, each image as an ``image_url`` part (a data URL), or a note instead
    when the model does not take images.
    """
    if ctx is None or (not ctx.images and not ctx.context_items):
        return text, None
    parts: list[dict[str, Any]] = [{"type": "text", "text": text}]
    for item in ctx.context_items:
        parts.append({"type": "text", "text": f'<context kind="{item.kind}" label="{item.label}">\n{item.text}\n</context>'})
    notice = None
    if ctx.images:
        if takes_images(settings):
            for img in ctx.images:
                parts.append({"type": "image_url", "image_url": {"url": f"data:{img.mime_type};base64,{img.data}"}})
        else:
            parts.append({"type": "text", "text": IMAGES_LEFT_OUT.format(n=len(ctx.images), model=settings.model, setting=settings.images)})
            notice = (
                f"{len(ctx.images)} image(s) not sent: the model {settings.model!r} is not known to take images. "
                "Set `codeloop.images` to \"on\" if it does."
            )
    return parts, notice


class _Slot:
    """A session plus its running turn."""

    def __init__(self, session: AgentSession) -> None:
        self.session = session
        self.turn_id = ""
        self.task: asyncio.Task[Any] | None = None

    @property
    def running(self) -> bool:
        return self.task is not None and not self.task.done()


class SessionService:
    def __init__(
        self,
        root: Path,
        settings: Settings,
        documents: Documents,
        proposals: ProposalService,
        client: ClientPort,
        diagnostics: DiagnosticsSource | None = None,
        trust: ProjectTrust | None = None,
        mcp: WorkspaceMcp | None = None,
    ) -> None:
        self.root = root
        self.settings = settings
        self.documents = documents
        self.proposals = proposals
        self.client = client
        self.diagnostics = diagnostics
        # One project trust and one set of MCP servers per editor connection, shared by its
        # chats (runtime/mcp.py says why); the project's allow rules wait for the trust.
        self.trust = trust
        self.mcp = mcp
        self.policy = PermissionPolicy(root, mode=settings.mode, user_settings=settings.permissions, gate=trust)
        self.store = SessionStore(root, storage=settings.session_storage, secrets=settings.secrets())
        self.slots: dict[str, _Slot] = {}
        self.tasks = Tasks("turns")
        self._turns = itertools.count(1)
        # How /rewind asks and restores in this editor (set by the host: codeloop.lsp.rewind)
        self.rewind_host: Any = None
        self.last_session_id: str | None = None  # the session of the latest turn

    # -- settings --------------------------------------------------------------

    def update_settings(self, settings: Settings) -> None:
        self.settings = settings
        self.policy.mode = settings.mode
        self.policy.set_user_settings(settings.permissions)
        for slot in self.slots.values():
            slot.session.update_settings(settings)

    # -- sessions --------------------------------------------------------------

    def _new_session(self, resume: str | None = None, settings: Settings | None = None,
                     start_source: str | None = None) -> _Slot:
        holder: dict[str, _Slot] = {}

        def turn() -> str:
            return holder["slot"].turn_id if "slot" in holder else ""

        # The id is known only once the store made the session; the ports look it up late.
        ids: dict[str, str] = {}
        sid = lambda: ids.get("id", "")  # noqa: E731
        ports = Ports(
            sink=_LateSink(self.client, sid, turn),
            approver=_LateApprover(self.client, sid, turn),
            changes=_LateApplier(self.proposals, sid, turn),
            terminal=_LateTerminal(self.client, sid),
            documents=self.documents,
            diagnostics=self.diagnostics,
        )
        session = AgentSession(
            settings or self.settings, self.root, ports, policy=self.policy, store=self.store, resume=resume,
            start_source=start_source, project_trust=self.trust,
        )
        ids["id"] = session.id or ""
        if self.mcp is not None:
            self.mcp.attach(session)
        slot = _Slot(session)
        holder["slot"] = slot
        self.slots[ids["id"]] = slot
        return slot

    def new_session(self) -> str:
        return self._new_session().session.id or ""

    def get(self, session_id: str | None) -> _Slot:
        if not session_id:
            return self._new_session()
        slot = self.slots.get(session_id)
        if slot is not None:
            return slot
        try:
            return self._new_session(resume=session_id)
        except (FileNotFoundError, KeyError, ValueError) as e:
            raise UnknownSession(f"no session {session_id!r} in this workspace") from e

    async def list_sessions(self) -> list[dict[str, Any]]:
        out = []
        for info in await asyncio.to_thread(self.store.list):
            out.append(
                {
                    "id": info.id,
                    "title": info.title,
                    "created": info.created,
                    "updated": info.updated,
                    "messageCount": info.message_count,
                    "model": info.model,
                    "running": info.id in self.slots and self.slots[info.id].running,
                }
            )
        return out

    def open(self, session_id: str) -> dict[str, Any]:
        slot = self.get(session_id)
        return {
            "sessionId": slot.session.id,
            "messages": slot.session.messages,
            "warnings": slot.session.load_warnings,
            "todos": [t.to_json() for t in slot.session.todos.items],
            "subagents": slot.session.subagent_log,
        }

    async def command_table(self) -> list[dict[str, str]]:
        """The slash commands of this workspace for the editor (completion, help): the
        built-in ones, then the custom ones as the files say now."""
        return list(describe(_SlotHost.name, await for_workspace(self.root).get()))

    def transcript(self, session_id: str) -> dict[str, Any]:
        if session_id in self.slots:
            session = self.slots[session_id].session
            return {"sessionId": session_id, "messages": session.messages, "subagents": session.subagent_log}
        try:
            loaded = self.store.load(session_id)
        except (FileNotFoundError, KeyError, ValueError) as e:
            raise UnknownSession(f"no session {session_id!r} in this workspace") from e
        return {"sessionId": session_id, "messages": loaded.messages, "warnings": loaded.warnings,
                "subagents": loaded.subagents}

    # -- turns -----------------------------------------------------------------

    def start_turn(self, session_id: str | None, text: str, context: TurnContext | None = None,
                   on_done: Callable[[TurnEnd | None], None] | None = None) -> tuple[str, str]:
        slot = self.get(session_id)
        if slot.running:
            raise TurnBusy("a turn is already running in this session; cancel it or wait")
        slot.turn_id = f"t-{next(self._turns)}"
        self.last_session_id = slot.session.id
        slot.session.editor_context = self._editor_context(context)
        slot.task = self.tasks.spawn(self._run(slot, text, on_done, context), f"turn {slot.turn_id}")
        return slot.session.id or "", slot.turn_id

    async def _run(self, slot: _Slot, text: str, on_done: Callable[[TurnEnd | None], None] | None,
                   context: TurnContext | None = None) -> TurnEnd | None:
        session = slot.session
        end: TurnEnd | None = None
        try:
            reply = await dispatch(text, _SlotHost(self, slot))
            if reply is not None and reply.send is None:
                session.ports.sink.emit(Notice(reply.text, "info" if reply.level == "info" else "warning"))
                end = TurnEnd("done", "")
                session.ports.sink.emit(end)
            else:
                asked = reply.send if reply is not None and reply.send else text
                content, notice = user_content(asked, context, session.settings)
                if notice:
                    session.ports.sink.emit(Notice(notice, "warning"))
                end = await session.send(content)
        except asyncio.CancelledError:
            end = None
        except Exception as e:  # never let a turn die silently
            log.exception("turn failed")
            end = TurnEnd("error", f"internal error: {e}")
            session.ports.sink.emit(end)
        finally:
            if on_done is not None:
                try:
                    on_done(end)
                except Exception:
                    log.exception("on_done failed")
        return end

    def cancel(self, session_id: str | None, turn_id: str | None = None) -> bool:
        slots = [self.slots[session_id]] if session_id in self.slots else ([] if session_id else list(self.slots.values()))
        hit = False
        for slot in slots:
            if slot.running and (turn_id is None or slot.turn_id == turn_id):
                assert slot.task is not None
                slot.task.cancel()
                hit = True
        return hit

    def running_turns(self) -> list[asyncio.Task[Any]]:
        return [s.task for s in self.slots.values() if s.task is not None and not s.task.done()]

    def _editor_context(self, ctx: TurnContext | None) -> EditorContext:
        open_files = [self.root_rel(d.path) for d in self.documents.open_documents()]
        return EditorContext(
            open_files=open_files,
            active_file=self._rel_of(ctx.active_file) if ctx and ctx.active_file else None,
            selection=ctx.selection if ctx else None,
            selection_path=ctx.selection_path if ctx else None,
            diagnostics_summary=None,
        )

    def _rel_of(self, path_or_uri: str) -> str:
        text = path_or_uri
        if text.startswith("file://"):
            from urllib.parse import unquote, urlparse  # noqa: PLC0415 - stdlib, cheap

            text = unquote(urlparse(text).path)
        return self.root_rel(Path(text)) if Path(text).is_absolute() else text

    def root_rel(self, path: Path) -> str:
        try:
            return path.relative_to(self.root).as_posix()
        except ValueError:
            return str(path)

    # -- processes ---------------------------------------------------------------

    def processes(self) -> list[dict[str, Any]]:
        out = []
        for sid, slot in self.slots.items():
            for rec in slot.session.processes.background():
                out.append(
                    {
                        "id": rec.id,
                        "command": rec.command,
                        "cwd": rec.cwd,
                        "running": rec.running,
                        "exitCode": rec.exit_code,
                        "status": rec.status(),
                        "sessionId": sid,
                    }
                )
        return out

    async def kill_process(self, process_id: str) -> bool:
        for slot in self.slots.values():
            rec = slot.session.processes.get(process_id)
            if rec is not None and rec.background:
                await slot.session.processes.kill(process_id)
                return True
        return False

    async def shutdown(self) -> None:
        await self.tasks.cancel_all()
        for slot in list(self.slots.values()):
            try:
                await slot.session.close()
            except Exception:
                log.exception("closing a session failed")


class _SlotHost:
    """The command layer's view of one chat in the editor."""

    name = "lsp"

    def __init__(self, service: SessionService, slot: _Slot) -> None:
        self.service = service
        self.slot = slot

    @property
    def session(self) -> AgentSession:
        return self.slot.session

    @property
    def mcp(self) -> WorkspaceMcp | None:
        return self.service.mcp

    async def new_session(self) -> AgentSession:
        # A /model chosen in this chat holds in the new conversation (the mode is the
        # workspace's: the policy is shared).
        settings = self.service.settings.model_copy(update={"model": self.slot.session.settings.model})
        return self.service._new_session(settings=settings, start_source="clear").session

    async def resume(self, session_id: str) -> AgentSession:
        try:
            return self.service.get(session_id).session
        except UnknownSession as e:
            raise LookupError(str(e)) from e

    def rewind_ui(self) -> Any:
        host = self.service.rewind_host
        return host.ui() if host is not None else None

    def rewind_port(self) -> Any:
        host = self.service.rewind_host
        return host.port() if host is not None else None


class _LateSink:
    def __init__(self, client: ClientPort, sid: Callable[[], str], turn: Callable[[], str]) -> None:
        self.client, self.sid, self.turn = client, sid, turn

    def emit(self, event: Event) -> None:
        self.client.event(self.sid(), self.turn(), event)


class _LateTerminal:
    def __init__(self, client: ClientPort, sid: Callable[[], str]) -> None:
        self.client, self.sid = client, sid

    def started(self, terminal_id: str, command: str, cwd: str, background: bool) -> None:
        self.client.terminal_started(self.sid(), terminal_id, command, cwd, background)

    def output(self, terminal_id: str, chunk: str) -> None:
        self.client.terminal_output(terminal_id, chunk)

    def exited(self, terminal_id: str, exit_code: int | None) -> None:
        self.client.terminal_exited(terminal_id, exit_code)

    async def drain(self) -> None:
        await self.client.drain()


class _LateApprover:
    def __init__(self, client: ClientPort, sid: Callable[[], str], turn: Callable[[], str]) -> None:
        self.client, self.sid, self.turn = client, sid, turn

    async def approve(self, request: ApprovalRequest) -> ApprovalDecision:
        return await self.client.approve(self.sid(), self.turn(), request)


class _LateApplier:
    def __init__(self, proposals: ProposalService, sid: Callable[[], str], turn: Callable[[], str]) -> None:
        self.proposals, self.sid, self.turn = proposals, sid, turn

    async def apply(self, changes: Any) -> Any:
        return await self.proposals.propose(self.sid(), self.turn(), changes)
