"""Reviewing a proposal (the review half of the ``EditorPort``), in two strategies.

- ``CapableReview``: ``codeloop/proposal/review`` to a client with its own review UI (VS
  Code's diff editor and per-hunk ticks); ``codeloop/proposal/resolved`` after.
- ``PlainReview``: any LSP client. The change is shown where the user looks before they are
  asked: ``window/showDocument`` of a ``.diff`` file when the client supports it, else a
  ``window/showMessage`` with the diff; the question itself (``window/showMessageRequest``,
  Accept / Reject) carries a summary and, when short, the diff. Nothing relies on a log level.
"""

from __future__ import annotations

import logging
import re
import shutil
import tempfile
from collections.abc import Callable
from pathlib import Path
from typing import Any

from lsprotocol import types as lsp
from pydantic import ValidationError

from codeloop.edits.diff import diff_stats
from codeloop.lsp import methods as M
from codeloop.lsp import wire
from codeloop.lsp.connection import Connection
from codeloop.lsp.documents import path_to_uri, uri_to_path
from codeloop.lsp.editing import workspace_edit
from codeloop.services.proposals import CreateOp, EditOp, FileOp, Proposal, ReviewAnswer

log = logging.getLogger(__name__)

#: A diff up to this many lines goes into the question itself.
INLINE_DIFF_LINES = 12
#: Characters of diff shown with window/showMessage when the client cannot show a document.
SHOW_LIMIT = 3000


def proposal_params(conn: Connection, uri_of: Callable[[Path], str], proposal: Proposal) -> wire.ProposalReviewParams:
    files = [
        wire.ProposalFile(
            uri=uri_of(f.path),
            path=f.rel,
            version=f.version,
            is_new=f.is_new,
            old_text=f.old_text,
            new_text=f.new_text,
            diff=f.diff,
            hunks=[
                wire.Hunk(
                    id=h.id, header=h.header, diff=h.diff, old_start=h.old_start, old_lines=h.old_lines,
                    new_start=h.new_start, new_lines=h.new_lines,
                )
                for h in f.hunk_views
            ],
        )
        for f in proposal.files
    ]
    ops: list[FileOp] = []
    for f in proposal.files:
        if f.is_new:
            ops.append(CreateOp(f.path))
        ops.append(EditOp(f.path, f.version, f.edits))
    return wire.ProposalReviewParams(
        proposal_id=proposal.id,
        session_id=proposal.session_id,
        turn_id=proposal.turn_id,
        call_id=proposal.call_id,
        tool=proposal.tool,
        files=files,
        edit=conn.unstructure(workspace_edit(ops, uri_of)),
    )


def parse_decision(raw: Any, proposal: Proposal, uri_of: Callable[[Path], str]) -> ReviewAnswer:
    """The client's answer as a ReviewAnswer; a malformed one is a rejection (nothing lands)."""
    try:
        result = wire.ReviewDecision.model_validate(raw if isinstance(raw, dict) else {})
    except ValidationError as e:
        log.warning("the editor's review answer is malformed: %s", wire.describe(e))
        return ReviewAnswer("reject", "(the editor's answer to the review was not understood, so nothing was applied)")
    by_uri = {uri_of(f.path): f.path for f in proposal.files}

    def path_of(uri: str) -> Path | None:
        return by_uri.get(uri) or uri_to_path(uri)

    hunks: dict[Path, set[int]] = {}
    for uri, ids in (result.hunks or {}).items():
        p = path_of(uri)
        if p is not None:
            hunks[p] = set(ids)
    edited: dict[Path, str] = {}
    for uri, text in (result.edited_text or {}).items():
        p = path_of(uri)
        if p is not None:
            edited[p] = text
    decision = result.decision
    if decision == "accept":  # an accept carries neither
        hunks, edited = {}, {}
    return ReviewAnswer(decision, result.feedback or "", hunks=hunks, edited=edited)


class CapableReview:
    def __init__(self, conn: Connection, uri_of: Callable[[Path], str]) -> None:
        self.conn = conn
        self.uri_of = uri_of

    def params(self, proposal: Proposal) -> wire.ProposalReviewParams:
        return proposal_params(self.conn, self.uri_of, proposal)

    async def review(self, proposal: Proposal) -> ReviewAnswer:
        raw = await self.conn.request(M.PROPOSAL_REVIEW, self.params(proposal))
        return parse_decision(raw, proposal, self.uri_of)

    def resolved(self, proposal: Proposal, status: str, message: str, reviewed: bool) -> None:
        # Applied without review (auto-accept): still show what changed.
        params = wire.ProposalResolvedParams(
            proposal_id=proposal.id, status=status, message=message, proposal=None if reviewed else self.params(proposal)
        )
        self.conn.notify(M.PROPOSAL_RESOLVED, params)

    def close(self) -> None:
        pass


def _summary(proposal: Proposal) -> str:
    parts = []
    for f in proposal.files:
        added, removed = diff_stats(None if f.is_new else f.old_text, f.new_text)
        where = ", ".join(f"line {h.old_start + 1}" for h in f.hunk_views[:4]) + (" …" if len(f.hunk_views) > 4 else "")
        kind = "new file" if f.is_new else f"{len(f.hunks)} hunk(s) at {where}"
        parts.append(f"{f.rel} (+{added} -{removed}, {kind})")
    return "; ".join(parts)


class PlainReview:
    def __init__(self, conn: Connection, uri_of: Callable[[Path], str], can_show_document: bool) -> None:
        self.conn = conn
        self.uri_of = uri_of
        self.can_show_document = can_show_document
        self._dir: Path | None = None

    def params(self, proposal: Proposal) -> wire.ProposalReviewParams:
        return proposal_params(self.conn, self.uri_of, proposal)

    def _write_diff(self, proposal: Proposal) -> Path:
        if self._dir is None:
            self._dir = Path(tempfile.mkdtemp(prefix="codeloop-review-"))
        name = re.sub(r"[^A-Za-z0-9._-]+", "_", "-".join(f.path.name for f in proposal.files))[:80]
        path = self._dir / f"{proposal.id}-{name}.diff"
        head = (
            f"# codeloop proposes this change ({proposal.id}, {proposal.tool}). Nothing is applied until you\n"
            "# answer Accept in the prompt; Reject leaves your files as they are.\n"
        )
        path.write_text(head + "".join(f.diff for f in proposal.files), encoding="utf-8")
        return path

    async def show(self, proposal: Proposal) -> str:
        """Shows the change; returns how the question should refer to it."""
        diff = "".join(f.diff for f in proposal.files)
        if self.can_show_document:
            try:
                path = self._write_diff(proposal)
            except OSError as e:
                log.warning("could not write the review diff: %s", e)
            else:
                if await self.conn.show_document(path_to_uri(path), take_focus=False):
                    return f"The diff is open in {path.name}."
        shown = diff if len(diff) <= SHOW_LIMIT else diff[:SHOW_LIMIT] + f"\n… ({len(diff) - SHOW_LIMIT} more characters)"
        self.conn.show(f"codeloop proposes a change ({proposal.id}):\n{shown}", lsp.MessageType.Info)
        return "The diff is in the message above."

    async def review(self, proposal: Proposal) -> ReviewAnswer:
        where = await self.show(proposal)
        diff = "".join(f.diff for f in proposal.files)
        inline = f"\n{diff.rstrip()}\n" if len(diff.splitlines()) <= INLINE_DIFF_LINES else " "
        for f in proposal.files:  # the transcript keeps it too
            self.conn.log(f"[codeloop] proposed change ({proposal.id}):\n{f.diff}")
        choice = await self.conn.ask(
            f"codeloop proposes a change to {_summary(proposal)}.{inline}{where}", ["Accept", "Reject"], lsp.MessageType.Info
        )
        if choice == "Accept":
            return ReviewAnswer("accept")
        return ReviewAnswer("reject", "" if choice else "the user dismissed the review")

    def resolved(self, proposal: Proposal, status: str, message: str, reviewed: bool) -> None:
        self.conn.log(f"[codeloop] {proposal.id} {status}: {message}")

    def close(self) -> None:
        if self._dir is not None:
            shutil.rmtree(self._dir, ignore_errors=True)
            self._dir = None
