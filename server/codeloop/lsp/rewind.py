"""Rewind in the editor: the port restores go through, how ``/rewind`` asks, and the
protocol (docs/protocol.md, "Rewind").

* ``EditorRewindPort``: an open buffer is read as the user has it (unsaved edits
  included) and restored with ``workspace/applyEdit`` (minimal edits, so its undo stack
  and cursor stay right), then saved as proposals are (never when it held unsaved edits);
  a file that is not open is written atomically on disk.
* ``LspRewindUI``: ``window/showMessageRequest`` for the questions; the preview goes to
  the log and, when the client can show documents, to a file it opens.
* ``codeloop/rewind/list``, ``/preview``, ``/apply`` for the VS Code panel's timeline;
  the ``codeloop.rewind`` command for any client.
"""

from __future__ import annotations

import asyncio
import itertools
import logging
from collections import OrderedDict
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from lsprotocol import types as lsp
from pygls.exceptions import JsonRpcException, JsonRpcInvalidParams
from pygls.lsp.server import LanguageServer

from codeloop.commands import rewind as rewind_cmd
from codeloop.core.tasks import Tasks
from codeloop.edits.disk import write_atomic
from codeloop.edits.textedits import as_encoding, minimal_text_edits
from codeloop.lsp import methods as M
from codeloop.lsp import wire
from codeloop.lsp.documents import path_to_uri
from codeloop.lsp.state import Host, Services
from codeloop.runtime.rewind import RewindError, RewindPreview, RewindTarget
from codeloop.services.checkpoints import DiskPort
from codeloop.services.checkpoints.store import default_store_dir
from codeloop.services.proposals import EditOp

log = logging.getLogger(__name__)

MAX_PREVIEWS = 16  # kept per connection for /apply
MAX_ACTIONS = 8  # messages offered by showMessageRequest


class EditorRewindPort:
    """``RewindPort`` over the editor (the connection's services)."""

    def __init__(self, server: LanguageServer, services: Services) -> None:
        self.server = server
        self.services = services
        self.disk = DiskPort()

    def _doc(self, path: Path) -> Any:
        return self.services.documents.get(path)

    async def read(self, path: Path) -> bytes | None:
        doc = self._doc(path)
        if doc is not None:
            return doc.text.encode("utf-8")
        return await self.disk.read(path)

    async def write(self, path: Path, content: str | bytes, mode: int | None = None) -> None:
        doc = self._doc(path)
        client = self.services.client
        if doc is None or not isinstance(content, str) or not client.can_apply:
            await self.disk.write(path, content, mode)
            return
        was_dirty = doc.dirty
        encoding = as_encoding(getattr(self.services.proposals, "encoding", "utf-16"))
        edits = minimal_text_edits(doc.text, content, encoding)
        if edits:
            result = await client.apply([EditOp(path, doc.version, edits)], "codeloop: rewind")
            if not result.applied:
                raise RuntimeError(f"the editor did not apply the restore ({result.reason or 'it refused'})")
        if was_dirty:
            return  # the user's unsaved edits are in the buffer: never saved for them
        saved = set(await client.save([path])) if client.can_save else set()
        if path not in saved:
            await asyncio.to_thread(write_atomic, path, content)
        self.services.documents.mark_saved(path, content)

    async def delete(self, path: Path) -> None:
        if self._doc(path) is not None and _can_delete(self.server):
            edit = lsp.WorkspaceEdit(document_changes=[
                lsp.DeleteFile(uri=path_to_uri(path), options=lsp.DeleteFileOptions(ignore_if_not_exists=True))])
            try:
                await self.server.workspace_apply_edit_async(lsp.ApplyWorkspaceEditParams(edit=edit, label="codeloop: rewind"))
            except Exception:
                log.warning("the editor could not delete %s; deleting it on disk", path, exc_info=True)
        await self.disk.delete(path)  # (the editor may keep it in its trash, or not have done it)


def _can_delete(server: LanguageServer) -> bool:
    caps = getattr(server, "client_capabilities", None)
    we = caps.workspace.workspace_edit if caps is not None and caps.workspace is not None else None
    return we is not None and lsp.ResourceOperationKind.Delete in (we.resource_operations or [])


def _can_show_document(server: LanguageServer) -> bool:
    caps = getattr(server, "client_capabilities", None)
    win = caps.window if caps is not None else None
    return win is not None and win.show_document is not None and bool(win.show_document.support)


class LspRewindUI:
    """The command layer's ``RewindUI`` over standard LSP."""

    def __init__(self, server: LanguageServer, root: Path, tasks: Tasks) -> None:
        self.root = root
        self.tasks = tasks
        self.server = server
        self._head = ""
        self._where = ""

    async def choose(self, question: str, options: Sequence[str]) -> str | None:
        head = f"{self._head}. " if self._head else ""
        where = f" (the preview is {self._where})" if self._where else ""
        item = await self.server.window_show_message_request_async(lsp.ShowMessageRequestParams(
            type=lsp.MessageType.Info, message=f"codeloop: {head}{question}{where}",
            actions=[lsp.MessageActionItem(title=o) for o in options]))
        title = getattr(item, "title", None) if item is not None else None
        if title is None and isinstance(item, dict):
            title = item.get("title")
        return title if title in options else None

    def show(self, text: str) -> None:
        self._head = text.split("\n", 1)[0][:200]
        self.server.window_log_message(lsp.LogMessageParams(type=lsp.MessageType.Info, message=f"[codeloop] {text}"))
        self._where = "in the log"
        if _can_show_document(self.server):
            path = default_store_dir(self.root) / "previews" / "rewind.diff"
            try:
                write_atomic(path, text + "\n", durable=False)
            except OSError:
                log.warning("could not write the rewind preview", exc_info=True)
                return
            self._where = f"in {path.name}, opened"
            self.tasks.spawn(self._open(path), "show the rewind preview")

    async def _open(self, path: Path) -> None:
        try:
            await self.server.window_show_document_async(lsp.ShowDocumentParams(uri=path.as_uri(), take_focus=False))
        except Exception:
            log.warning("the editor could not show the rewind preview", exc_info=True)


class LspRewindHost:
    """What ``SessionService.rewind_host`` holds in the editor: the UI, the port, and the
    previews the panel applies later."""

    def __init__(self, server: LanguageServer, services: Services) -> None:
        self.server = server
        self.services = services
        self.previews: OrderedDict[str, tuple[str, RewindPreview]] = OrderedDict()
        self._ids = itertools.count(1)
        self.tasks = Tasks("rewind")

    def ui(self) -> LspRewindUI:
        return LspRewindUI(self.server, self.services.root, self.tasks)

    def port(self) -> EditorRewindPort:
        return EditorRewindPort(self.server, self.services)

    def keep(self, session_id: str, preview: RewindPreview) -> str:
        pid = f"rw-{next(self._ids)}"
        self.previews[pid] = (session_id, preview)
        while len(self.previews) > MAX_PREVIEWS:
            self.previews.popitem(last=False)
        return pid


# -- the protocol ----------------------------------------------------------------------


def target_wire(t: RewindTarget) -> wire.RewindTarget:
    return wire.RewindTarget(checkpoint_id=t.id, kind=t.kind, number=t.number, index=t.index, text=t.text,
                             words=t.words, ts=t.ts, files=t.files)


def preview_wire(pid: str, session_id: str, p: RewindPreview) -> wire.RewindPreviewResult:
    return wire.RewindPreviewResult(
        preview_id=pid,
        session_id=session_id,
        target=target_wire(p.target),
        files=[wire.RewindFile(path=f.path, action=f.action, user_changed=f.user_changed, choices=list(f.choices),
                               default=f.default, reason=f.reason, diff=f.diff, user_diff=f.user_diff,
                               rebase_diff=f.rebase_diff, binary=f.binary) for f in p.plan.files],
        outside=[wire.RewindOutside(path=path, label=label) for path, label in p.plan.outside],
        conversation=wire.RewindConversation(removes=p.removes, note=p.conversation),
        text=p.text(),
    )


def register(server: LanguageServer, app: Host) -> None:
    def services() -> Services:
        if app.services is None:
            raise JsonRpcException("the server is not initialized")
        return app.services

    def host() -> LspRewindHost:
        sessions = services().sessions
        if sessions.rewind_host is None:
            sessions.rewind_host = LspRewindHost(server, services())
        return sessions.rewind_host

    def slot_of(session_id: str) -> Any:
        if not session_id:
            raise JsonRpcInvalidParams("'sessionId' (a string) is required")
        host()
        try:
            return services().sessions.get(session_id)
        except Exception as e:  # UnknownSession
            raise JsonRpcInvalidParams(str(e)) from e

    def idle(slot: Any) -> None:
        if slot.running:
            raise JsonRpcException("a turn is running in this session: stop it (or wait) before rewinding")

    @server.feature(M.REWIND_LIST)
    async def rewind_list(params: Any) -> dict[str, Any]:
        slot = slot_of(wire.parse(wire.SessionIdParams, params).session_id)
        sid = slot.session.id or ""
        try:
            targets = await slot.session.rewind.targets()
        except RewindError as e:
            return wire.dump(wire.RewindListResult(session_id=sid, targets=[], unavailable=str(e)))
        return wire.dump(wire.RewindListResult(session_id=sid, targets=[target_wire(t) for t in targets]))

    @server.feature(M.REWIND_PREVIEW)
    async def rewind_preview(params: Any) -> dict[str, Any]:
        p = wire.parse(wire.RewindPreviewParams, params)
        slot = slot_of(p.session_id)
        if not p.checkpoint_id:
            raise JsonRpcInvalidParams("'checkpointId' (a string) is required")
        try:
            target = await slot.session.rewind.resolve(p.checkpoint_id)
            preview = await slot.session.rewind.preview(target, host().port())
        except RewindError as e:
            raise JsonRpcInvalidParams(str(e)) from e
        sid = slot.session.id or ""
        return wire.dump(preview_wire(host().keep(sid, preview), sid, preview))

    @server.feature(M.REWIND_APPLY)
    async def rewind_apply(params: Any) -> dict[str, Any]:
        p = wire.parse(wire.RewindApplyParams, params)
        slot = slot_of(p.session_id)
        idle(slot)
        kept = host().previews.get(p.preview_id)
        if kept is None or kept[0] != slot.session.id:
            raise JsonRpcInvalidParams("unknown 'previewId': preview the rewind again")
        try:
            out = await slot.session.rewind.apply(kept[1], dict(p.choices), changed_since=p.changed_since, code=p.code,
                                                  conversation=p.conversation, port=host().port())
        except RewindError as e:
            raise JsonRpcInvalidParams(str(e)) from e
        host().previews.pop(p.preview_id, None)
        return wire.dump(wire.RewindApplyResult(
            session_id=slot.session.id or "",
            summary=out.summary,
            files=[wire.RewindFileResult(path=f.path, status=f.status, message=f.message)
                   for f in (out.code.files if out.code else [])],
            undo_checkpoint=out.code.undo_checkpoint.id if out.code and out.code.undo_checkpoint else None,
            removed=out.removed,
            message=out.message,
            messages=slot.session.messages,
        ))

    @server.command(M.CMD_REWIND)
    async def cmd_rewind(*args: Any) -> Any:
        """``codeloop.rewind [sessionId?, target?]``: asks which message (when not given),
        shows the preview, asks what to rewind and about files changed since."""
        sid = args[0] if args and isinstance(args[0], str) and args[0] else None
        target = args[1] if len(args) > 1 and isinstance(args[1], str) else None
        h = host()
        if sid is None:
            sid = services().sessions.last_session_id
            if sid is None:
                latest = await asyncio.to_thread(services().sessions.store.latest)
                sid = latest.id if latest is not None else None
        if sid is None:
            _show(server, "there is no session to rewind in this workspace.", lsp.MessageType.Warning)
            return {"summary": ""}
        slot = slot_of(sid)
        idle(slot)
        ui = h.ui()
        try:
            if target is None:
                targets = [t for t in await slot.session.rewind.targets() if t.kind == "message"][-MAX_ACTIONS:]
                if not targets:
                    _show(server, "there is nothing to rewind to yet in this session.", lsp.MessageType.Info)
                    return {"summary": ""}
                labels = [f"{t.number}: {t.text[:60]}" for t in targets]
                picked = await ui.choose("Rewind to before which message?", labels)
                if picked is None:
                    return {"summary": ""}
                target = str(targets[labels.index(picked)].number)
            level, text = await rewind_cmd.run(slot.session.rewind, ui, rewind_cmd.RewindArgs(target=target), h.port())
        except ValueError as e:  # RewindError and the command layer's own
            _show(server, str(e), lsp.MessageType.Warning)
            return {"summary": "", "error": str(e)}
        _show(server, text, lsp.MessageType.Info)
        return {"summary": text, "sessionId": slot.session.id}


def _show(server: LanguageServer, text: str, kind: lsp.MessageType) -> None:
    server.window_show_message(lsp.ShowMessageParams(type=kind, message=f"codeloop: {text}"))
