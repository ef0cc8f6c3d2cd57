"""Proposals: every change the agent wants becomes a reviewed, versioned edit.

The service implements the ``ChangeApplier`` port for editor sessions. It computes the
diff, asks the editor to review it, applies what was accepted through the editor (so it
lands in buffers and on the undo stack), rebases over whatever the user typed meanwhile,
and makes sure the result reaches the disk without ever writing a file that holds the
user's unsaved edits.

It trusts nothing the client says about an edit. Before sending one it lets a debounced
``didChange`` arrive (``EditorPort.change_settle``; Neovim sends them 150 ms late); after the
client answers ``applied: true`` it waits for the ``didChange`` that follows and checks the
change is in the server's copy of the document. A dropped edit (Neovim answers
``applied: true`` to a stale version and applies nothing) is rebased onto what the user has
now and sent again, or reported to the model as not applied, with the current text.

It speaks plain data; ``codeloop.lsp`` converts to and from LSP.
"""

from __future__ import annotations

import asyncio
import itertools
import logging
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Literal, Protocol, TypeVar

from codeloop.core.ports import Documents
from codeloop.edits.change import ChangeOutcome, ChangeSet, FileChange, FileOutcome, OutcomeStatus
from codeloop.edits.disk import write_atomic
from codeloop.edits.diff import Hunk, compute_hunks, hunk_diffs, unified_diff
from codeloop.edits.rebase import excerpt, rebase
from codeloop.edits.textedits import Encoding, TextEdit, minimal_text_edits
from codeloop.services.hunks import FilePlan, change_present, describe_landed, plan_file
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
    """A review's outcome. ``hunks`` (the ticked ids per file) and ``edited`` (the user's
    version of the proposed side per file) may both be given, whatever the decision
    (except reject): the ticks win for unticked hunks (see ``services.hunks.plan_file``)."""

    decision: Decision
    feedback: str = ""
    hunks: dict[Path, set[int]] = field(default_factory=dict)  # accepted ids per file
    edited: dict[Path, str] = field(default_factory=dict)  # the user's text per file


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

    @property
    def change_settle(self) -> float:
        """Seconds a keystroke's didChange may lag behind it in this client (its debounce)."""
        ...

    async def review(self, proposal: Proposal) -> ReviewAnswer: ...

    async def apply(self, ops: list[FileOp], label: str) -> ApplyResult: ...

    async def save(self, paths: list[Path]) -> list[Path]: ...

    def resolved(self, proposal: Proposal, status: str, message: str, reviewed: bool) -> None: ...


S = TypeVar("S")  # what an EditChecker's snapshot holds


class EditChecker(Protocol[S]):
    """Diagnostics before and after an edit lands (``codeloop.services.diagnostics.DiagnosticsService``)."""

    def has_source(self, paths: list[Path]) -> bool: ...

    async def snapshot(self, texts: dict[Path, str]) -> S: ...

    async def report(self, before: S, after_texts: dict[Path, str], rel: Callable[[Path], str]) -> str: ...


class DiskState(Protocol):
    """Knows whether an open document holds unsaved user edits."""

    async def ready(self, path: Path | None = None) -> None:
        """Returns once the disk state of ``path`` is known."""
        ...

    def is_dirty(self, path: Path) -> bool: ...

    def mark_saved(self, path: Path, text: str) -> None: ...


class ChangeWatch(Protocol):
    """Sees the client's didChange notifications."""

    async def changed_since(self, path: Path, version: int | None, timeout: float) -> bool:
        """Waits until the open document's version moves past ``version``; False on timeout."""
        ...

    async def quiet(self, path: Path, seconds: float, at_most: float = 2.0) -> None:
        """Waits until ``seconds`` pass without a didChange of ``path``."""
        ...


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


#: How long the didChange that follows an applied edit may take (a debouncing client
#: under load); past it the edit is taken as not applied.
CONFIRM_SECONDS = 3.0
#: Rounds of rebase-and-apply before the model is told an edit did not land.
MAX_ATTEMPTS = 3


@dataclass(slots=True)
class _Staged:
    """One file of an edit about to be sent (or sent) to the editor."""

    f: FileProposal
    plan: FilePlan
    final: str  # what the document should hold once the edit lands
    before: str | None  # what it held when the edit was computed
    version: int | None
    is_open: bool
    was_dirty: bool
    rebase_note: str = ""
    now: str | None = None  # what the document held once the edit was confirmed (the user may type on)


class ProposalService:
    """Owns pending proposals for every session of one editor connection."""

    def __init__(
        self,
        workspace: Workspace,
        documents: Documents,
        disk: DiskState,
        editor: EditorPort,
        auto_accept: Callable[[], bool] = lambda: False,
        diagnostics: EditChecker[Any] | None = None,
        watch: ChangeWatch | None = None,
    ) -> None:
        self.workspace = workspace
        self.documents = documents
        self.disk = disk
        self.editor = editor
        self.auto_accept = auto_accept
        # After an edit lands, new errors in the changed lines are appended to the outcome.
        self.diagnostics = diagnostics
        self.watch = watch
        self.pending: dict[str, Proposal] = {}
        self.encoding: Encoding = "utf-16"  # the negotiated LSP position encoding
        self.confirm_seconds = CONFIRM_SECONDS

    async def _current(self, path: Path) -> tuple[str | None, int | None, bool]:
        """(text, version, open) of what the user has now."""
        doc = self.documents.get(path)
        if doc is not None:
            return doc.text, doc.version, True
        try:
            return await asyncio.to_thread(path.read_text, encoding="utf-8"), None, False
        except (FileNotFoundError, NotADirectoryError):
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

    # -- landing ---------------------------------------------------------------------

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
        plans: list[tuple[FileProposal, FilePlan]] = []
        for f in proposal.files:
            ticks = answer.hunks.get(f.path) if (answer.hunks and f.path in answer.hunks) else None
            if answer.decision == "partial" and ticks is None:
                ticks = set()  # a partial answer that names no hunk of this file accepts none
            plan = plan_file(f.old_text, f.new_text, f.hunks, ticks, answer.edited.get(f.path))
            if f.hunks and not plan.accepted:
                outcomes.append(FileOutcome(f.path, "rejected", [], plan.rejected))
                notes.append(f"{f.rel}: the user rejected all {len(f.hunks)} hunk(s) of your change; nothing changed there.")
                continue
            plans.append((f, plan))

        landed = await self._apply(proposal, plans, outcomes, notes)
        for s in landed:
            status: OutcomeStatus = "edited" if s.plan.user_edited else ("partial" if s.plan.rejected else "applied")
            outcomes.append(FileOutcome(s.f.path, status, s.plan.accepted, s.plan.rejected, s.final))
        statuses = {o.status for o in outcomes}
        overall: OutcomeStatus
        if statuses <= {"applied"} and statuses:
            overall = "applied"
        elif "edited" in statuses:
            overall = "edited"
        elif statuses & {"applied", "partial"}:
            overall = "partial"
        elif "stale" in statuses:
            overall = "stale"
        else:
            overall = "rejected"
        if answer.feedback:
            notes.append(f"The user's note: {answer.feedback}")
        return ChangeOutcome(overall, "\n".join(notes), outcomes)

    async def _apply(
        self, proposal: Proposal, plans: list[tuple[FileProposal, FilePlan]], outcomes: list[FileOutcome], notes: list[str]
    ) -> list[_Staged]:
        """Rebase, apply, confirm; up to MAX_ATTEMPTS rounds. Returns the files that landed."""
        landed: list[_Staged] = []
        todo = list(plans)
        snapshot = None
        reason = ""
        for attempt in range(MAX_ATTEMPTS):
            await self._settle([f.path for f, _ in todo])
            staged: list[_Staged] = []
            ops: list[CreateOp | EditOp] = []
            for f, plan in todo:
                s = await self._stage(f, plan, outcomes, notes)
                if s is None:
                    continue
                if s.final == s.before:  # nothing left to do (the user made the same change)
                    landed.append(s)
                    continue
                staged.append(s)
                if s.before is None:
                    ops.append(CreateOp(f.path))
                    ops.append(EditOp(f.path, None, minimal_text_edits("", s.final, self.encoding)))
                elif s.is_open or self.editor.can_save:
                    ops.append(EditOp(f.path, s.version, minimal_text_edits(s.before, s.final, self.encoding)))
            if not staged:
                break
            if snapshot is None and self.diagnostics is not None:
                befores = {s.f.path: s.before or "" for s in staged}
                if self.diagnostics.has_source(list(befores)):
                    snapshot = (await self.diagnostics.snapshot(befores), befores)
            if not ops:  # files not open in a client that cannot save: written to disk below
                landed += staged
                break
            label = f"codeloop: {proposal.tool}" + (f" (retry {attempt})" if attempt else "")
            result = await self.editor.apply(ops, label)
            if not result.applied:
                reason = result.reason or "the editor refused the edit"
                todo = [(s.f, s.plan) for s in staged]  # the version moved under us: rebase again
                continue
            dropped = []
            for s in staged:
                if await self._confirmed(s):
                    landed.append(s)
                else:
                    dropped.append(s)
            if not dropped:
                break
            reason = "the editor said it applied the edit, but its copy of the document did not change"
            todo = [(s.f, s.plan) for s in dropped]
        else:
            for f, _plan in todo:
                current, _, _ = await self._current(f.path)
                outcomes.append(FileOutcome(f.path, "stale", final_text=current))
                notes.append(self._not_applied(f, reason, current))

        await self._reach_disk(landed, notes)
        if snapshot is not None and self.diagnostics is not None:
            after: dict[Path, str] = {}
            for s in landed:
                doc = self.documents.get(s.f.path)
                after[s.f.path] = doc.text if doc is not None else s.final
            found = await self.diagnostics.report(snapshot[0], after, self.workspace.relative)
            if found:
                notes.append(found)
        for s in reversed(landed):
            notes.insert(0, describe_landed(s.f.rel, None if s.f.is_new else s.f.old_text, s.f.hunks, s.plan,
                                            s.now or s.final, s.rebase_note))
        return landed

    async def _settle(self, paths: list[Path]) -> None:
        """Let the disk reads finish and a debounced didChange arrive before reading buffers."""
        await asyncio.gather(*(self.disk.ready(p) for p in paths))
        settle = self.editor.change_settle
        if self.watch is not None and settle > 0:
            open_paths = [p for p in paths if self.documents.get(p) is not None]
            await asyncio.gather(*(self.watch.quiet(p, settle) for p in open_paths))

    async def _stage(self, f: FileProposal, plan: FilePlan, outcomes: list[FileOutcome], notes: list[str]) -> _Staged | None:
        """The edit for one file against what the user has now (rebased if they typed), or None
        (with the outcome and the model's note) when it cannot land."""
        current, version, is_open = await self._current(f.path)
        base = None if f.is_new else f.old_text
        final, note = plan.target, ""
        if current != base:
            if base is None or current is None:
                outcomes.append(FileOutcome(f.path, "stale", final_text=current))
                state = "now exists" if current is not None else "was deleted"
                notes.append(f"{f.rel}: NOT applied: the file {state} since the proposal was made. Read it again before proposing an edit.")
                return None
            rb = rebase(base, plan.target, current, None)
            if not rb.ok or rb.text is None:
                outcomes.append(FileOutcome(f.path, "stale", final_text=current))
                notes.append(
                    f"{f.rel}: NOT applied: {rb.message}\nThe user's text is intact. Read the file again before "
                    "proposing a new edit."
                )
                return None
            final = rb.text
            note = (
                "The user had edited the file meanwhile, so your change was rebased onto their text "
                "(the line numbers above are in the file as it is now, with their edits)."
            )
        was_dirty = is_open and self.disk.is_dirty(f.path)
        return _Staged(f, plan, final, current, version, is_open, was_dirty, note)

    async def _confirmed(self, s: _Staged) -> bool:
        """The edit reached the server's copy of the document (the didChange that follows)."""
        if not s.is_open or s.version is None or self.watch is None or s.before is None:
            return True  # nothing to see it by (not open, or a new file): the client's word stands
        await self.watch.changed_since(s.f.path, s.version, self.confirm_seconds)
        doc = self.documents.get(s.f.path)
        if doc is None:
            return False
        if change_present(s.before, s.final, doc.text):
            s.now = doc.text
            return True
        log.warning("%s: the editor answered applied: true, but the edit is not in the document", s.f.rel)
        return False

    def _not_applied(self, f: FileProposal, reason: str, current: str | None) -> str:
        if current is None:
            return f"{f.rel}: NOT applied ({reason}); the file does not exist now."
        first = min((h.old_start for h in f.hunks), default=0)
        last = max((h.old_end for h in f.hunks), default=first + 1)
        lo = min(first, len(current.splitlines()))
        return (
            f"{f.rel}: NOT applied: {reason}. The file changed since your proposal (the user is editing it); "
            f"the current text around your change:\n{excerpt(current, lo, max(last, lo + 1))}\n"
            "Read the file again before proposing a new edit."
        )

    async def _reach_disk(self, landed: list[_Staged], notes: list[str]) -> None:
        """The accepted text must be on disk before the agent's next command runs."""
        to_save: list[Path] = []
        for s in landed:
            if s.was_dirty:
                notes.append(
                    f"{s.f.rel}: applied in the editor, but NOT saved: the file has the user's unsaved "
                    "edits, so commands run now see the old content on disk."
                )
                continue
            if self.editor.can_save:
                to_save.append(s.f.path)
            else:
                await asyncio.to_thread(write_atomic, s.f.path, s.final)
                self.disk.mark_saved(s.f.path, s.final)
        if to_save:
            saved = set(await self.editor.save(to_save))
            for s in landed:
                if s.f.path in to_save and s.f.path not in saved:
                    # The editor could not save it (e.g. the file was not open): write it.
                    await asyncio.to_thread(write_atomic, s.f.path, s.final)
                if s.f.path in to_save:
                    self.disk.mark_saved(s.f.path, s.final)
