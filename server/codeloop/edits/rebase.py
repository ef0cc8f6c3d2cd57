"""The stale-edit race: rebase accepted hunks onto a document the user edited meanwhile.

A proposal was computed against ``base``; by the time the user accepts hunks of
it the document holds ``current``. The accepted hunks of diff(base -> proposed)
land on ``current`` only when none of them overlaps or touches a change of
diff(base -> current); otherwise nothing is applied and the conflicting hunks
are reported. Nothing the user typed is ever lost.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from codeloop.edits.diff import Hunk, apply_hunks, compute_hunks, split_lines

__all__ = ["RebaseResult", "rebase", "excerpt"]

_MAX_EXCERPT_LINES = 40


@dataclass(frozen=True)
class RebaseResult:
    ok: bool
    text: str | None  # the rebased text when ok, else None
    conflicts: list[Hunk] = field(default_factory=list)  # proposal hunks that overlap the user's edits
    message: str = ""  # for the model


def _lines_label(start: int, end: int) -> str:
    """1-based label of 0-based lines [start, end)."""
    if end - start <= 1:
        return f"line {start + 1}"
    return f"lines {start + 1}-{end}"


def _describe_user(u: Hunk) -> str:
    if u.new_lines:
        return _lines_label(u.new_start, u.new_end)
    return f"deleted {len(u.old_lines)} line(s) before line {u.new_start + 1}"


def _describe_hunk(h: Hunk) -> str:
    if h.old_lines:
        return f"hunk {h.id} (proposed for {_lines_label(h.old_start, h.old_end)})"
    return f"hunk {h.id} (an insertion before line {h.old_start + 1})"


def _overlaps(h: Hunk, u: Hunk) -> bool:
    # Closed intervals on base lines: touching (adjacent, or inserting at the
    # edge of the other change) counts as overlapping.
    return h.old_start <= u.old_end and u.old_start <= h.old_end


def _ids(hunks: list[Hunk]) -> str:
    return ", ".join(str(h.id) for h in hunks) or "none"


def rebase(base: str, proposed: str, current: str, accepted: set[int] | None = None) -> RebaseResult:
    """Apply the accepted hunks of diff(base -> proposed) onto ``current``.

    ``accepted`` holds hunk ids of ``compute_hunks(base, proposed)`` (None: all;
    unknown ids are ignored). When ``current == base`` this is ``apply_hunks``.
    Otherwise every accepted hunk must be separated from every user change of
    diff(base -> current) by at least one line neither side touched; if not, the
    result is ``ok=False``, ``text=None`` and the overlapping hunks in ``conflicts``.
    """
    hunks = compute_hunks(base, proposed)
    chosen = [h for h in hunks if accepted is None or h.id in accepted]
    if current == base:
        text = apply_hunks(base, hunks, {h.id for h in chosen})
        return RebaseResult(True, text, [], f"applied hunk(s) {_ids(chosen)}")
    if not chosen:
        return RebaseResult(True, current, [], "no hunks accepted; the document is unchanged")

    user = compute_hunks(base, current)
    conflicts: list[Hunk] = []
    clashing: list[Hunk] = []
    for h in chosen:
        hit = [u for u in user if _overlaps(h, u)]
        if hit:
            conflicts.append(h)
            clashing.extend(u for u in hit if u not in clashing)
    user_desc = "; ".join(_describe_user(u) for u in user)
    if conflicts:
        clashing.sort(key=lambda u: u.new_start)
        start = clashing[0].new_start
        end = max(max(u.new_end for u in clashing), start + 1)
        end = min(end, start + _MAX_EXCERPT_LINES)
        msg = (
            f"the user edited the document meanwhile ({'; '.join(_describe_user(u) for u in clashing)} "
            f"of the current text); "
            + ", ".join(_describe_hunk(h) for h in conflicts)
            + (" overlaps" if len(conflicts) == 1 else " overlap")
            + " the user's changes, so nothing was applied. The current text there:\n"
            + excerpt(current, start, end)
        )
        return RebaseResult(False, None, conflicts, msg)

    # Non-overlapping, non-touching: apply both sets of replacements to base.
    a = split_lines(base)
    out: list[str] = []
    pos = 0
    for r in sorted(chosen + user, key=lambda r: r.old_start):
        out.extend(a[pos : r.old_start])
        out.extend(r.new_lines)
        pos = r.old_end
    out.extend(a[pos:])
    msg = (
        f"the user edited the document meanwhile ({user_desc} of the current text); "
        f"hunk(s) {_ids(chosen)} did not overlap and were applied on top of the user's text"
    )
    return RebaseResult(True, "".join(out), [], msg)


def excerpt(text: str, start_line: int, end_line: int, context: int = 3) -> str:
    """Lines [start_line, end_line) (0-based) of ``text`` with ``context`` lines around.

    Each line is shown with its 1-based number; lines inside the range are marked
    with ``>``. Line endings are dropped.
    """
    lines = split_lines(text)
    lo = max(0, min(start_line, len(lines)) - context)
    hi = min(len(lines), max(end_line, start_line) + context)
    width = len(str(max(hi, 1)))
    out = []
    for i in range(lo, hi):
        mark = ">" if start_line <= i < end_line else " "
        out.append(f"{mark}{i + 1:>{width}} | {lines[i].rstrip(chr(13) + chr(10))}")
    return "\n".join(out)
