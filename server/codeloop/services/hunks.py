"""What a review answer means for one file, and how to tell the model what happened.

Pure text: no editor, no disk. ``plan_file`` turns a review's choices (hunk ticks, the
user's own edits to the proposed side) into the text to land; ``change_present`` checks
that an edit the client said it applied really reached its copy of the document;
``describe_landed`` writes the model's account of a landed file: which hunks were
accepted and rejected, at which lines of the file, the rejected text, the user's own
edits as a diff, and whether the change was rebased onto the user's typing.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from codeloop.edits.diff import Hunk, apply_hunks, compute_hunks, diff_stats, split_lines, unified_diff

#: Rejected hunks whose text is quoted in full; the rest are named by line range only.
QUOTE_LIMIT = 40


@dataclass(slots=True)
class FilePlan:
    """What the user accepted of one file of a proposal, on the proposal's base text."""

    target: str  # the text to land (before any rebase onto the user's typing)
    accepted: list[int]
    rejected: list[int]
    ticks_only: str  # the proposal with only the ticked hunks: what the user's edits are against
    user_edited: bool = False  # the user edited the proposed side in the review
    dropped_edits: list[int] = field(default_factory=list)  # rejected hunks whose user edits were dropped with them


def _overlap(a0: int, a1: int, b0: int, b1: int) -> bool:
    """Whether line ranges [a0, a1) and [b0, b1) overlap; an empty range is the point
    between two lines, inside a non-empty range only strictly within it."""
    if a0 == a1 and b0 == b1:
        return a0 == b0
    if a0 == a1:
        return b0 < a0 < b1
    if b0 == b1:
        return a0 < b0 < a1
    return a0 < b1 and b0 < a1


def plan_file(old: str, new: str, hunks: list[Hunk], accepted: set[int] | None, edited: str | None) -> FilePlan:
    """The text to land for one file.

    ``accepted``: the ticked hunk ids (None: all). ``edited``: the user's version of the
    proposed side (None: not edited). Both together: the edited text with every unticked
    hunk reverted to the original; the ticks win for unticked hunks, so an edit the user
    made inside an unticked hunk goes with it (``dropped_edits``).
    """
    ids = [h.id for h in hunks]
    acc = set(ids) if accepted is None else set(accepted) & set(ids)
    rejected = [i for i in ids if i not in acc]
    ticks_only = apply_hunks(old, hunks, acc)
    if edited is None or edited == new:
        return FilePlan(ticks_only, sorted(acc), rejected, ticks_only)
    if not rejected:
        return FilePlan(edited, sorted(acc), [], ticks_only, user_edited=edited != ticks_only)
    # Walk the proposed text: unticked hunks go back to the original, the user's edits
    # that do not touch an unticked hunk are kept.
    unticked = [h for h in hunks if h.id in rejected]
    user = compute_hunks(new, edited)
    kept: list[Hunk] = []
    dropped: set[int] = set()
    for u in user:
        hit = [r for r in unticked if _overlap(u.old_start, u.old_end, r.new_start, r.new_end)]
        if hit:
            dropped.update(r.id for r in hit)
        else:
            kept.append(u)
    # (start in the proposed text, order, lines to put there, lines of it replaced)
    pieces = [(r.new_start, 1, r.old_lines, r.new_end) for r in unticked]
    pieces += [(u.old_start, 0, u.new_lines, u.old_end) for u in kept]
    lines = split_lines(new)
    out: list[str] = []
    pos = 0
    for start, _order, put, end in sorted(pieces, key=lambda p: (p[0], p[1])):
        out.extend(lines[pos:start])
        out.extend(put)
        pos = max(pos, end)
    out.extend(lines[pos:])
    target = "".join(out)
    return FilePlan(target, sorted(acc), rejected, ticks_only, user_edited=target != ticks_only, dropped_edits=sorted(dropped))


def change_present(before: str, final: str, now: str) -> bool:
    """Whether ``now`` holds the change ``before -> final`` (possibly with other edits around
    it): no difference between ``final`` and ``now`` touches a line the change made."""
    if now == final:
        return True
    if now == before:
        return before == final
    made = compute_hunks(before, final)
    since = compute_hunks(final, now)
    return not any(_overlap(d.old_start, d.old_end, h.new_start, h.new_end) for d in since for h in made)


def map_line(a: str, b: str, line: int) -> int:
    """Where 0-based line ``line`` of ``a`` is in ``b`` (a changed line: where its hunk starts)."""
    offset = 0
    for h in compute_hunks(a, b):
        if h.old_end <= line:  # before the line (an insertion right before it included)
            offset += len(h.new_lines) - len(h.old_lines)
        elif h.old_start <= line:
            return h.new_start
        else:
            break
    return line + offset


def _label(start: int, count: int) -> str:
    """0-based start and a line count, as the model reads them (1-based, inclusive)."""
    if count <= 0:
        return f"after line {start}" if start else "at the top"
    if count == 1:
        return f"line {start + 1}"
    return f"lines {start + 1}-{start + count}"


def _positions(hunks: list[Hunk], accepted: set[int]) -> dict[int, int]:
    """0-based start of each hunk in ``apply_hunks(old, hunks, accepted)``: an accepted hunk
    where its new lines are, a rejected one where its original lines stayed."""
    out: dict[int, int] = {}
    shift = 0
    for h in sorted(hunks, key=lambda h: h.old_start):
        out[h.id] = h.old_start + shift
        if h.id in accepted:
            shift += len(h.new_lines) - len(h.old_lines)
    return out


def _quote(h: Hunk) -> str:
    lines = [f"-{x}" for x in h.old_lines] + [f"+{x}" for x in h.new_lines]
    if len(lines) > QUOTE_LIMIT:
        lines = lines[:QUOTE_LIMIT] + [f"… ({len(lines) - QUOTE_LIMIT} more lines)\n"]
    return "".join(x if x.endswith("\n") else x + "\n" for x in lines).rstrip("\n")


def describe_landed(
    rel: str,
    old: str | None,
    hunks: list[Hunk],
    plan: FilePlan,
    final: str,
    rebase_note: str = "",
) -> str:
    """The model's account of a file whose change landed; ``final`` is what the document holds."""
    verb = "created" if old is None else "changed"
    added, removed = diff_stats(old, plan.target)  # the change as accepted, not the user's typing
    n = len(hunks)
    pos = _positions(hunks, set(plan.accepted))
    where = {i: map_line(plan.ticks_only, final, p) for i, p in pos.items()}
    by_id = {h.id: h for h in hunks}
    parts: list[str] = []
    if plan.rejected:
        parts.append(
            f"{rel}: the user accepted {len(plan.accepted)} of {n} hunks of your change and rejected "
            f"{len(plan.rejected)}; {verb} (+{added} -{removed})."
        )
        for i in plan.accepted:
            h = by_id[i]
            parts.append(f"  accepted: hunk {i + 1} of {n}, now {_label(where[i], len(h.new_lines))} of the file")
        for i in plan.rejected:
            h = by_id[i]
            kept = "the original text is unchanged there" if h.old_lines else "nothing was inserted"
            parts.append(
                f"  REJECTED: hunk {i + 1} of {n}, {_label(where[i], len(h.old_lines))} of the file ({kept}); "
                f"it would have changed:\n{_indent(_quote(h))}"
            )
    elif plan.user_edited:
        parts.append(f"{rel}: the user edited your proposal before accepting it; {verb} (+{added} -{removed}).")
    else:
        parts.append(f"{rel}: the user accepted your change; {verb} (+{added} -{removed}).")
    if plan.user_edited:
        mine = unified_diff(plan.ticks_only, plan.target, rel)
        parts.append(
            "  The user's own edits to your proposal (from your version to what they accepted):\n" + _indent(mine.rstrip("\n"))
        )
    if plan.dropped_edits:
        parts.append(
            "  The user also edited inside rejected hunk(s) "
            + ", ".join(str(i + 1) for i in plan.dropped_edits)
            + "; those edits were dropped with the hunk."
        )
    if rebase_note:
        parts.append(f"  {rebase_note}")
    return "\n".join(parts)


def _indent(text: str, pad: str = "    ") -> str:
    return "\n".join(pad + line for line in text.splitlines())
