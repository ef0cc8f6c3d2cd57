"""Approvals and edits, reviewed through ``session/request_permission``.

The policy decides first, exactly as in the other hosts (the loop asks it); what it
leaves to the user comes here:

- ``AcpApprover`` (``core.ports.Approver``): a command, an MCP tool, a read outside
  the workspace... one permission request with allow once / allow always / reject.
- ``AcpChangeApplier`` (``core.ports.ChangeApplier``): a mutating tool's ``ChangeSet``.
  The diffs go into the tool call first (``tool_call_update`` with ``diff`` content).
  When the change is reviewed, each file is one permission request (ACP has no
  per-hunk answer; per-hunk review is the language server's). Accepted files are
  written through ``fs/write_text_file`` when the client offers it, else to disk
  (``edits/disk.py``); before anything is written, every accepted file must still
  hold the text the tool based its change on (no clobbering: the outcome is "stale").
  A rejection is told to the model and the turn goes on.

A permission request the client answers "cancelled" (it cancelled the turn) stops
the turn here: nothing is applied. So does a turn cancelled while a request waits.
"""

from __future__ import annotations

import asyncio
import itertools
import logging
from collections.abc import Callable, Sequence
from pathlib import Path

from acp.schema import FileEditToolCallContent, PermissionOption, ToolCallLocation, ToolCallUpdate

from codeloop.acp.convert import request_kind, text_content
from codeloop.acp.files import ClientDocuments, disk_text, normalized
from codeloop.acp.link import CallView, SessionLink
from codeloop.core.ports import ApprovalDecision, ApprovalRequest
from codeloop.edits.change import ChangeOutcome, ChangeSet, FileChange, FileOutcome
from codeloop.edits.diff import diff_stats
from codeloop.edits.disk import DiskChangeApplier

log = logging.getLogger(__name__)

ALLOW_ONCE, ALLOW_ALWAYS, REJECT = "allow_once", "allow_always", "reject_once"
_VERBS = {"Bash": "Run", "Read": "Read", "Edit": "Edit", "Write": "Write", "Tool": "Use", "Trust": "Trust"}


def options(always: str = "Always allow") -> list[PermissionOption]:
    return [
        PermissionOption(option_id=ALLOW_ONCE, name="Allow once", kind="allow_once"),
        PermissionOption(option_id=ALLOW_ALWAYS, name=always, kind="allow_always"),
        PermissionOption(option_id=REJECT, name="Reject", kind="reject_once"),
    ]


async def ask(link: SessionLink, tool_call: ToolCallUpdate, choices: list[PermissionOption]) -> str:
    """The option the user chose. Raises ``CancelledError`` when the client cancelled the
    turn (the turn task is cancelled too), ``ConnectionError``/``RequestError`` when it
    could not be asked."""
    await link.outbox.flush()  # the client must know the tool call first
    answer = await link.conn.request_permission(session_id=link.session_id, tool_call=tool_call, options=choices)
    outcome = answer.outcome
    if getattr(outcome, "outcome", None) == "selected":
        return str(outcome.option_id)
    link.cancel_turn()
    await asyncio.sleep(0)  # the cancellation lands here
    raise asyncio.CancelledError()


class AcpApprover:
    def __init__(self, link: SessionLink) -> None:
        self.link = link
        self._ids = itertools.count(1)

    async def approve(self, request: ApprovalRequest) -> ApprovalDecision:
        call_id = request.call_id or f"ask-{next(self._ids)}"
        verb = _VERBS.get(request.kind, "Use")
        why = f"{verb} {request.target} (in {request.cwd}): {request.reason}."
        tool_call = ToolCallUpdate(
            tool_call_id=call_id, title=f"{verb} {request.target}", kind=request_kind(request.kind),
            status="pending", content=[text_content(why)],
            raw_input={"kind": request.kind, "target": request.target, "cwd": request.cwd, "reason": request.reason},
        )
        always = f"Always allow ({request.suggested_rule})" if request.suggested_rule else "Always allow"
        try:
            choice = await ask(self.link, tool_call, options(always))
        except asyncio.CancelledError:
            raise
        except Exception as e:
            log.warning("session/request_permission failed: %s", e)
            return ApprovalDecision("deny", f"the editor could not be asked ({e})")
        if choice == ALLOW_ONCE:
            return ApprovalDecision("allow_once")
        if choice == ALLOW_ALWAYS:
            return ApprovalDecision("allow_always")
        return ApprovalDecision("deny")


def _uses_crlf(path: Path) -> bool:
    try:
        raw = path.read_bytes()
    except OSError:
        return False
    return b"\r\n" in raw and raw.count(b"\r\n") >= raw.count(b"\n") - raw.count(b"\r\n")


def _names(paths: Sequence[str]) -> str:
    return paths[0] if len(paths) == 1 else ", ".join(paths[:-1]) + " and " + paths[-1]


class AcpChangeApplier:
    """``documents``: the client's files when it reads them (the no-clobber check then
    compares with what the client holds); ``write``: land files with fs/write_text_file."""

    def __init__(self, link: SessionLink, *, documents: ClientDocuments | None, write: bool,
                 remember: Callable[[Path], list[str]] | None = None) -> None:
        self.link = link
        self.documents = documents
        self.write = write
        self.remember = remember  # "always allow" for a file: the policy's precise rule
        self.disk = DiskChangeApplier(None, root=link.root)

    def display(self, path: Path) -> str:
        return self.disk.display(path)

    async def apply(self, changes: ChangeSet) -> ChangeOutcome:
        if not changes.changes:
            return ChangeOutcome("error", "Nothing to apply: the change set is empty.")
        stale = await self._stale(changes.changes)
        if stale is not None:
            return stale
        diffs = [FileEditToolCallContent(type="diff", path=str(c.path), old_text=c.old_text, new_text=c.new_text)
                 for c in changes.changes]
        view = self.link.calls.setdefault(changes.call_id, CallView(None, "edit"))
        view.diffs = diffs
        if changes.call_id:
            self.link.show(changes.call_id, locations=[ToolCallLocation(path=str(c.path)) for c in changes.changes])
        accepted: list[FileChange] = list(changes.changes)
        rejected: list[FileChange] = []
        notes: list[str] = []
        if changes.review:
            accepted = []
            for change, diff in zip(changes.changes, diffs):
                choice = await self._ask(changes.call_id, change, diff)
                if choice in (ALLOW_ONCE, ALLOW_ALWAYS):
                    accepted.append(change)
                    if choice == ALLOW_ALWAYS and self.remember is not None:
                        notes += self._always(change.path)
                else:
                    rejected.append(change)
            if changes.call_id:
                self.link.show(changes.call_id, status="in_progress")
        if not accepted:
            what = "change to" if len(rejected) == 1 else "changes to"
            return ChangeOutcome("rejected", f"The user rejected the {what} {_names([self.display(c.path) for c in rejected])}; "
                                 "nothing was written.", [FileOutcome(c.path, "rejected") for c in rejected])
        subset = ChangeSet(changes.tool, tuple(accepted), review=False, call_id=changes.call_id)
        try:
            outcome = await (self._write_via_client(subset) if self.write else self.disk.apply(subset))
        finally:
            if self.documents is not None:
                for c in accepted:
                    self.documents.forget(c.path)
        if notes:
            outcome.message += " " + " ".join(notes)
        if rejected and outcome.status == "applied":
            names = _names([self.display(c.path) for c in rejected])
            outcome = ChangeOutcome(
                "partial",
                f"{outcome.message} The user rejected the change{'s' if len(rejected) > 1 else ''} to {names}; "
                "nothing was written there.",
                [*outcome.files, *(FileOutcome(c.path, "rejected") for c in rejected)],
            )
        return outcome

    def _always(self, path: Path) -> list[str]:
        assert self.remember is not None
        try:
            rules = self.remember(path)
        except Exception as e:
            return [f"(The user chose to always allow edits of {self.display(path)}, but the rule could not be saved: {e}.)"]
        return [f"(Edits of {self.display(path)} are allowed from now on: {', '.join(rules)}.)"] if rules else []

    async def _ask(self, call_id: str, change: FileChange, diff: FileEditToolCallContent) -> str:
        name = self.display(change.path)
        tool_call = ToolCallUpdate(
            tool_call_id=call_id or f"edit-{name}", title=f"{'Create' if change.is_new else 'Edit'} {name}", kind="edit",
            status="pending", content=[diff], locations=[ToolCallLocation(path=str(change.path))],
        )
        try:
            return await ask(self.link, tool_call, options(f"Always allow edits of {name}"))
        except asyncio.CancelledError:
            raise
        except Exception as e:
            log.warning("session/request_permission failed: %s", e)
            return REJECT

    # -- what the files hold now --------------------------------------------------------------

    async def _current(self, path: Path) -> tuple[bool, str | None]:
        """(exists, text) of ``path`` as the client holds it (when it reads files) or the disk."""
        exists, disk = await asyncio.to_thread(disk_text, path)
        if self.documents is None:
            return exists, disk
        text = await self.documents.read(path)
        if text is None:  # the client cannot give it: what the disk holds decides
            return exists, disk
        return True, text

    async def _stale(self, changes: Sequence[FileChange]) -> ChangeOutcome | None:
        problems: list[str] = []
        for c in changes:
            name = self.display(c.path)
            if await asyncio.to_thread(c.path.is_dir):
                return ChangeOutcome("error", f"{name} is a directory; nothing was written.")
            exists, current = await self._current(c.path)
            if exists and current is None:
                problems.append(f"{name} is no longer UTF-8 text")
            elif c.old_text is None and exists:
                problems.append(f"{name} now exists (it did not when the change was made)")
            elif c.old_text is not None and not exists:
                problems.append(f"{name} has been deleted")
            elif c.old_text is not None and current != normalized(c.old_text):
                where = "in the editor" if self.documents is not None else "on disk"
                problems.append(f"{name} has changed {where} since it was read")
        if not problems:
            return None
        return ChangeOutcome("stale", "Nothing was written: " + "; ".join(problems)
                             + ". Read the file(s) again and redo the change.",
                             [FileOutcome(c.path, "stale") for c in changes])

    async def _write_via_client(self, changes: ChangeSet) -> ChangeOutcome:
        stale = await self._stale(changes.changes)  # again: the user may have taken a while
        if stale is not None:
            return stale
        parts: list[str] = []
        files: list[FileOutcome] = []
        for c in changes.changes:
            name = self.display(c.path)
            content = c.new_text
            if "\r\n" not in content and await asyncio.to_thread(_uses_crlf, c.path):
                content = content.replace("\n", "\r\n")  # the file's line endings stay as they were
            try:
                await self.link.conn.write_text_file(session_id=self.link.session_id, path=str(c.path), content=content)
            except asyncio.CancelledError:
                raise
            except Exception as e:
                done = f" ({'; '.join(parts)} before it)" if parts else ""
                return ChangeOutcome("error" if not parts else "partial",
                                     f"The editor could not write {name} ({e}); it is unchanged{done}.",
                                     [*files, FileOutcome(c.path, "error")])
            added, removed = diff_stats(c.old_text, c.new_text)
            parts.append(f"created {name} (+{added} lines)" if c.old_text is None else f"wrote {name} (+{added} -{removed} lines)")
            files.append(FileOutcome(c.path, "applied", final_text=c.new_text))
        return ChangeOutcome("applied", "Applied: " + ", ".join(parts) + ".", files)


__all__ = ["ALLOW_ALWAYS", "ALLOW_ONCE", "AcpApprover", "AcpChangeApplier", "REJECT", "ask", "options"]
