"""Proposals: every change the agent wants becomes a reviewed, versioned edit.

The service implements the ``ChangeApplier`` port for editor sessions. It
computes the diff, asks the editor to review it, applies what was accepted
through the editor (so it lands in buffers and on the undo stack), rebases over
whatever the user typed meanwhile, and makes sure the result reaches the disk
without ever writing a file that holds the user's unsaved edits.

It speaks plain data; ``codeloop.lsp`` converts to and from LSP.
"""

from __future__ import annotations

import asyncio
import itertools
import logging
from dataclasses import dataclass, field
from pathlib import Path
from typing import Literal, Protocol

from codeloop.core.ports import Documents
from codeloop.edits.change import ChangeOutcome, ChangeSet, FileChange, FileOutcome
from codeloop.edits.disk import write_atomic
from codeloop.edits.diff import Hunk, apply_hunks, compute_hunks, diff_stats, hunk_diffs, unified_diff
from codeloop.edits.rebase import excerpt, rebase
from codeloop.edits.textedits import TextEdit, minimal_text_edits
from codeloop.tools.workspace import Workspace

log = logging.getLogger(__name__)


@dataclass(slots=True)
class HunkView:
    id: int
    header: str
    diff: str
    old_start: int
    old_lines: int
    new_start: int
    new_lines: int


@dataclass(slots=True)
class FileProposal:
    path: Path
    rel: str
    version: int | None  # the document version the proposal was computed against
    is_new: bool
    old_text: str  # "" for a new file
    new_text: str
    diff: str
    hunks: list[Hunk]
    hunk_views: list[HunkView]
    edits: list[TextEdit]


@dataclass(slots=True)
class Proposal:
    id: str
    session_id: str
    turn_id: str
    call_id: str
    tool: str
    files: list[FileProposal]


Decision = Literal["accept", "reject", "partial", "edited"]


@dataclass(slots=True)
class ReviewAnswer:
    decision: Decision
    feedback: str = ""
    hunks: dict[Path, set[int]] = field(default_factory=dict)  # partial: accepted ids per file
    edited: dict[Path, str] = field(default_factory=dict)  # edited: the user's text per file


@dataclass(slots=True)
class CreateOp:
    path: Path


@dataclass(slots=True)
class EditOp:
    path: Path
    version: int | None
    edits: list[TextEdit]


FileOp = CreateOp | EditOp


@dataclass(slots=True)
class ApplyResult:
    applied: bool
    reason: str = ""


class EditorPort(Protocol):
    """What the proposal service needs from the editor (implemented in codeloop.lsp)."""

    @property
    def can_apply(self) -> bool: ...

    @property
    def can_save(self) -> bool: ...

    async def review(self, proposal: Proposal) -> ReviewAnswer: ...

    async def apply(self, ops: list[FileOp], label: str) -> ApplyResult: ...

    async def save(self, paths: list[Path]) -> list[Path]: ...

    def resolved(self, proposal: Proposal, status: str, message: str, reviewed: bool) -> None: ...


class EditChecker(Protocol):
    """Diagnostics before and after an edit lands (``codeloop.services.diagnostics.DiagnosticsService``)."""

    def has_source(self, paths: list[Path]) -> bool: ...

    async def snapshot(self, texts: dict[Path, str]) -> object: ...

    async def report(self, before: object, after_texts: dict[Path, str], rel: "callable[[Path], str]") -> str: ...  # type: ignore[valid-type]


class DiskState(Protocol):
    """Knows whether an open document holds unsaved user edits."""

    def is_dirty(self, path: Path) -> bool: ...

    def mark_saved(self, path: Path, text: str) -> None: ...


_ids = itertools.count(1)


def build_file_proposal(ws: Workspace, change: FileChange, encoding: str = "utf-16") -> FileProposal:
    old = change.old_text or ""
    rel = ws.relative(change.path)
    hunks = compute_hunks(old, change.new_text)
    per_hunk = dict(hunk_diffs(change.old_text, change.new_text, rel))
    views = [
        HunkView(h.id, h.header, per_hunk.get(h.id, ""), h.old_start, len(h.old_lines), h.new_start, len(h.new_lines))
        for h in hunks
    ]
    return FileProposal(
        path=change.path,
        rel=rel,
        version=change.base_version,
        is_new=change.old_text is None,
        old_text=old,
        new_text=change.new_text,
        diff=unified_diff(change.old_text, change.new_text, rel),
        hunks=hunks,
        hunk_views=views,
        edits=minimal_text_edits(old, change.new_text, encoding),  # type: ignore[arg-type]
    )


class ProposalService:
    """Owns pending proposals for every session of one editor connection."""

    def __init__(
        self,
        workspace: Workspace,
        documents: Documents,
        disk: DiskState,
        editor: EditorPort,
        auto_accept: "callable[[], bool]" = lambda: False,  # type: ignore[valid-type]
        diagnostics: EditChecker | None = None,
    ) -> None:
        self.workspace = workspace
        self.documents = documents
        self.disk = disk
        self.editor = editor
        self.auto_accept = auto_accept
        # After an edit lands, new errors in the changed lines are appended to the outcome.
        self.diagnostics = diagnostics
        self.pending: dict[str, Proposal] = {}
        self.encoding = "utf-16"  # the negotiated LSP position encoding

    def _current(self, path: Path) -> tuple[str | None, int | None, bool]:
        """(text, version, open) of what the user has now."""
        doc = self.documents.get(path)
        if doc is not None:
            return doc.text, doc.version, True
        try:
            return path.read_text(encoding="utf-8"), None, False
        except FileNotFoundError:
            return None, None, False

    async def propose(self, session_id: str, turn_id: str, changes: ChangeSet) -> ChangeOutcome:
        if not self.editor.can_apply:
            return ChangeOutcome(
                "error",
                "The editor cannot apply edits: the client did not announce the "
                "workspace.applyEdit capability, so nothing was changed. Tell the user to use an "
                "editor that supports it, or to run codeloop headless (codeloop run).",
            )
        files = [build_file_proposal(self.workspace, c, self.encoding) for c in changes.changes]
        proposal = Proposal(f"p-{next(_ids)}", session_id, turn_id, changes.call_id, changes.tool, files)
        reviewed = changes.review and not self.auto_accept()
        if reviewed:
            self.pending[proposal.id] = proposal
            try:
                answer = await self.editor.review(proposal)
            finally:
                self.pending.pop(proposal.id, None)
        else:
            answer = ReviewAnswer("accept")
        outcome = await self._land(proposal, answer)
        self.editor.resolved(proposal, outcome.status, outcome.message, reviewed)
        return outcome

    async def _land(self, proposal: Proposal, answer: ReviewAnswer) -> ChangeOutcome:
        if answer.decision == "reject":
            names = ", ".join(f.rel for f in proposal.files)
            msg = f"The user rejected the change to {names}. Nothing was changed."
            if answer.feedback:
                msg += f" The user's feedback: {answer.feedback}"
            return ChangeOutcome(
                "rejected", msg, [FileOutcome(f.path, "rejected", [], [h.id for h in f.hunks]) for f in proposal.files]
            )
        outcomes: list[FileOutcome] = []
        notes: list[str] = []
        targets: dict[Path, tuple[FileProposal, str, set[int] | None]] = {}
        for f in proposal.files:
            if answer.decision == "edited" and f.path in answer.edited:
                targets[f.path] = (f, answer.edited[f.path], None)
            elif answer.decision == "partial":
                accepted = answer.hunks.get(f.path, set()) & {h.id for h in f.hunks}
                if not accepted and f.hunks:
                    outcomes.append(FileOutcome(f.path, "rejected", [], [h.id for h in f.hunks]))
                    notes.append(f"{f.rel}: the user rejected all {len(f.hunks)} hunks; nothing changed.")
                    continue
                targets[f.path] = (f, apply_hunks(f.old_text, f.hunks, accepted), accepted)
            else:
                targets[f.path] = (f, f.new_text, None)

        # Rebase each target onto what the user has now, then apply in one edit.
        ops: list[FileOp] = []
        planned: list[tuple[FileProposal, str, set[int] | None, bool, bool]] = []
        befores: dict[Path, str] = {}  # what each planned file holds just before the edit
        for f, target, accepted in targets.values():
            current, version, is_open = self._current(f.path)
            base = None if f.is_new else f.old_text
            if current != base:
                if base is None or current is None:
                    outcomes.append(FileOutcome(f.path, "stale"))
                    state = "now exists" if current is not None else "was deleted"
                    notes.append(f"{f.rel}: not applied: the file {state} since the proposal was made.")
                    continue
                rb = rebase(base, target, current, None)
                if not rb.ok or rb.text is None:
                    outcomes.append(FileOutcome(f.path, "stale", final_text=current))
                    first = min((h.old_start for h in rb.conflicts), default=0)
                    last = max((h.old_start + len(h.old_lines) for h in rb.conflicts), default=first + 1)
                    notes.append(
                        f"{f.rel}: NOT applied: the user edited this file while the proposal was pending "
                        f"and their changes overlap yours ({rb.message}). Their text is intact. "
                        f"The current text around it:\n{excerpt(current, first, last)}\n"
                        "Read the file again before proposing a new edit."
                    )
                    continue
                target = rb.text
                notes.append(f"{f.rel}: the user had edited the file meanwhile; your change was rebased onto their text.")
            was_dirty = is_open and self.disk.is_dirty(f.path)
            planned.append((f, target, accepted, is_open, was_dirty))
            befores[f.path] = current or ""
            if current is None:
                ops.append(CreateOp(f.path))
                ops.append(EditOp(f.path, None, minimal_text_edits("", target, self.encoding)))
            elif is_open or self.editor.can_save:
                ops.append(EditOp(f.path, version, minimal_text_edits(current, target, self.encoding)))

        snapshot = None
        if self.diagnostics is not None and planned and self.diagnostics.has_source(list(befores)):
            snapshot = await self.diagnostics.snapshot(befores)
        if ops:
            result = await self.editor.apply(ops, f"codeloop: {proposal.tool}")
            if not result.applied:
                # The version moved under us (the user typed): one more rebase round.
                retry = await self._retry_stale(planned, result.reason)
                if retry is None:
                    for f, *_ in planned:
                        current, _, _ = self._current(f.path)
                        outcomes.append(FileOutcome(f.path, "stale", final_text=current))
                    notes.append(
                        "Not applied: the editor refused the edit"
                        + (f" ({result.reason})" if result.reason else "")
                        + ". The user's text is unchanged; read the files again and retry."
                    )
                    return ChangeOutcome("stale", "\n".join(notes), outcomes)
                planned = retry

        await self._reach_disk(planned, notes)
        if snapshot is not None and self.diagnostics is not None:
            after: dict[Path, str] = {}
            for f, target, *_ in planned:
                doc = self.documents.get(f.path)
                after[f.path] = doc.text if doc is not None else target
            found = await self.diagnostics.report(snapshot, after, self.workspace.relative)
            if found:
                notes.append(found)
        for f, target, accepted, _is_open, _dirty in planned:
            all_ids = [h.id for h in f.hunks]
            acc = sorted(accepted) if accepted is not None else all_ids
            rej = [i for i in all_ids if i not in acc]
            status = "edited" if answer.decision == "edited" else ("partial" if rej else "applied")
            outcomes.append(FileOutcome(f.path, status, acc, rej, target))
            notes.insert(0, self._describe(f, target, acc, rej, answer))
        statuses = {o.status for o in outcomes}
        if statuses <= {"applied"}:
            overall = "applied"
        elif "edited" in statuses:
            overall = "edited"
        elif statuses & {"applied", "partial"}:
            overall = "partial"
        elif "stale" in statuses:
            overall = "stale"
        else:
            overall = "rejected"
        if answer.feedback and answer.decision != "reject":
            notes.append(f"The user's note: {answer.feedback}")
        return ChangeOutcome(overall, "\n".join(notes), outcomes)

    async def _retry_stale(self, planned, reason: str):
        ops: list[FileOp] = []
        again = []
        for f, target, accepted, is_open, was_dirty in planned:
            current, version, now_open = self._current(f.path)
            base = f.old_text
            if current is None:
                return None
            if current != base:
                rb = rebase(base, target, current, None)
                if not rb.ok or rb.text is None:
                    return None
                target = rb.text
            ops.append(EditOp(f.path, version, minimal_text_edits(current, target, self.encoding)))
            again.append((f, target, accepted, now_open, was_dirty))
        result = await self.editor.apply(ops, f"codeloop: retry after {reason or 'a version change'}")
        return again if result.applied else None

    async def _reach_disk(self, planned, notes: list[str]) -> None:
        """The accepted text must be on disk before the agent's next command runs."""
        to_save: list[Path] = []
        for f, target, _acc, is_open, was_dirty in planned:
            if was_dirty:
                notes.append(
                    f"{f.rel}: applied in the editor, but NOT saved: the file has the user's unsaved "
                    "edits, so commands run now see the old content on disk."
                )
                continue
            if self.editor.can_save:
                to_save.append(f.path)
            else:
                await asyncio.to_thread(write_atomic, f.path, target)
                self.disk.mark_saved(f.path, target)
        if to_save:
            saved = set(await self.editor.save(to_save))
            for f, target, *_ in planned:
                if f.path in to_save and f.path not in saved:
                    # The editor could not save it (e.g. the file was not open): write it.
                    await asyncio.to_thread(write_atomic, f.path, target)
                if f.path in to_save:
                    self.disk.mark_saved(f.path, target)

    def _describe(self, f: FileProposal, target: str, acc: list[int], rej: list[int], answer: ReviewAnswer) -> str:
        added, removed = diff_stats(f.old_text if not f.is_new else None, target)
        verb = "created" if f.is_new else "changed"
        if answer.decision == "edited":
            mine = unified_diff(f.new_text, target, f.rel)
            return (
                f"{f.rel}: the user edited your proposal before accepting it; {verb} (+{added} -{removed}). "
                f"How the user's version differs from yours:\n{mine}"
            )
        if rej:
            rejected = "\n".join(v.diff for v in f.hunk_views if v.id in rej)
            return (
                f"{f.rel}: the user applied hunk(s) {', '.join(str(i + 1) for i in acc)} of {len(f.hunks)} "
                f"and rejected hunk(s) {', '.join(str(i + 1) for i in rej)}. The rejected hunks, not applied:\n{rejected}"
            )
        return f"{f.rel}: the user accepted the change; {verb} (+{added} -{removed})."
