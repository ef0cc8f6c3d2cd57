"""The read memo: re-reads of text the model already holds cost a line, not the file.

Implements ``codeloop.core.ports.ReadMemo``. ``offset`` is the 1-based first line
(0 or less means 1) and ``limit`` the number of lines (0 or less: to the end),
as the reading tool takes them.

- A re-read of a range whose lines are the same as when the model read them gives
  a short note (with how to get the text again, in the words the tool passes as ``again``).
- A re-read after an edit gives a unified diff (with line numbers) of what changed
  in the range, when that diff is small next to the range; otherwise None, and the
  tool sends the range in full.
- ``forget_all()`` after a compaction (the model no longer holds its reads),
  ``forget(path)`` when the model's copy of one file must not be trusted.
"""

from __future__ import annotations

import difflib
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

# Files longer than this are not memoized (the bookkeeping would cost more).
MAX_LINES = 50_000
# A diff is sent instead of the range when it changes at most this share of the
# range's lines (or MIN_DIFF_LINES, for small ranges) ...
DIFF_LINE_SHARE = 0.3
MIN_DIFF_LINES = 4
# ... and its text is at most this share of the range's text.
DIFF_CHAR_SHARE = 0.5
CONTEXT_LINES = 2
# Above this (changed old lines x changed new lines) the middle is not diffed.
MAX_DIFF_WORK = 4_000_000

# How the model gets a range again in full; the tool that reads passes its own words.
AGAIN = "read it again asking for it fresh"  # how to get the text resent


@dataclass
class _FileMemo:
    lines: list[str]  # the file's lines (with their ends) as the model last saw them
    seen: dict[int, int] = field(default_factory=dict)  # 1-based line -> step it was read


class FileReadMemo:
    def __init__(self, root: Path | None = None, clock: Callable[[], int] | None = None) -> None:
        """``root``: paths are shown relative to it. ``clock``: the loop's step number,
        if it has one; otherwise each read counts as one step."""
        self.root = root
        self._clock = clock
        self._reads = 0
        self._files: dict[Path, _FileMemo] = {}

    # -- the ReadMemo protocol -------------------------------------------------

    def recall(self, path: Path, text: str, offset: int, limit: int, again: str = AGAIN) -> str | None:
        memo = self._files.get(path)
        if memo is None:
            return None
        lines = text.splitlines(keepends=True)
        first, last = _span(len(lines), offset, limit)
        if last < first:
            return None  # past the end: the tool reports it
        rng = lines[first - 1 : last]
        shown = self._show(path)

        if memo.lines == lines:
            steps = [memo.seen.get(n) for n in range(first, last + 1)]
            if any(s is None for s in steps):
                return None
            return (
                f"(unchanged since your read at {_steps(steps)}: lines {first}-{last} of {shown}, above in "
                f"this conversation. To resend: {again}.)"
            )

        opcodes = _opcodes(memo.lines, lines)
        # Every new line in the range must be either known to the model (an equal
        # line it has seen) or carried by the diff.
        old_of_new: dict[int, int] = {}
        for tag, i1, _i2, j1, j2 in opcodes:
            if tag == "equal":
                for k in range(j2 - j1):
                    old_of_new[j1 + k + 1] = i1 + k + 1
        changed_new = 0
        changed_old = 0
        steps = []
        for n in range(first, last + 1):
            old = old_of_new.get(n)
            if old is None:
                changed_new += 1
            elif old not in memo.seen:
                return None  # the model never read this line
            else:
                steps.append(memo.seen[old])
        touching = [op for op in opcodes if op[0] != "equal" and _touches(op, first, last)]
        for _, i1, i2, _, _ in touching:
            changed_old += i2 - i1

        if not touching:
            # Same text, but lines above moved it.
            olds = [old_of_new[n] for n in range(first, last + 1)]
            if olds and olds[0] == first:
                return (
                    f"(unchanged since your read at {_steps(steps)}: lines {first}-{last} of {shown}, above in "
                    f"this conversation; other parts of the file changed. To resend: {again}.)"
                )
            return (
                f"(unchanged since your read at {_steps(steps)}: lines {first}-{last} of {shown} hold the text "
                f"you read as lines {olds[0]}-{olds[-1]}; edits above it moved it by {first - olds[0]:+d} lines. "
                f"To resend: {again}.)"
            )

        budget = max(MIN_DIFF_LINES, int(DIFF_LINE_SHARE * len(rng)))
        if changed_new + changed_old > budget:
            return None
        diff = _render(memo.lines, lines, touching, opcodes, self._show(path))
        if len(diff) > DIFF_CHAR_SHARE * max(1, len("".join(rng))) and len(diff) > 200:
            return None
        # The model now holds the new text of the range (and every old line it had
        # seen that is still there), against the new version of the file.
        step = self._next_step()
        seen = {old_of_new_n: memo.seen[o] for old_of_new_n, o in old_of_new.items() if o in memo.seen}
        for n in range(first, last + 1):
            seen[n] = step
        self._files[path] = _FileMemo(lines, seen)
        return (
            f"(lines {first}-{last} of {shown} changed since your read at {_steps(steps or [step])}; "
            f"the rest of the range is as you read it. What changed:)\n{diff}\n"
            f"({again[0].upper()}{again[1:]}.)"
        )

    def remember(self, path: Path, text: str, offset: int, limit: int) -> None:
        lines = text.splitlines(keepends=True)
        if len(lines) > MAX_LINES:
            self._files.pop(path, None)
            return
        first, last = _span(len(lines), offset, limit)
        step = self._next_step()
        memo = self._files.get(path)
        if memo is None or memo.lines != lines:
            # What the model held of the old version no longer lines up; keep only
            # the lines that are unchanged, at their new numbers.
            seen: dict[int, int] = {}
            if memo is not None:
                for tag, i1, i2, j1, _ in _opcodes(memo.lines, lines):
                    if tag == "equal":
                        for k in range(i2 - i1):
                            if i1 + k + 1 in memo.seen:
                                seen[j1 + k + 1] = memo.seen[i1 + k + 1]
            memo = _FileMemo(lines, seen)
            self._files[path] = memo
        for n in range(first, last + 1):
            memo.seen[n] = step

    # -- invalidation ------------------------------------------------------------

    def forget(self, path: Path) -> None:
        self._files.pop(path, None)

    def forget_all(self) -> None:
        self._files.clear()

    def knows(self, path: Path) -> bool:
        return path in self._files

    # -- helpers -------------------------------------------------------------------

    def _next_step(self) -> int:
        self._reads += 1
        return self._clock() if self._clock is not None else self._reads

    def _show(self, path: Path) -> str:
        if self.root is not None:
            try:
                return path.relative_to(self.root).as_posix()
            except ValueError:
                pass
        return str(path)


def _opcodes(a: list[str], b: list[str]) -> list[tuple[str, int, int, int, int]]:
    """difflib opcodes for a -> b; the common head and tail are matched first, so a
    local edit in a long file costs little. A huge changed middle is one replace."""
    n = min(len(a), len(b))
    pre = 0
    while pre < n and a[pre] == b[pre]:
        pre += 1
    suf = 0
    while suf < n - pre and a[len(a) - 1 - suf] == b[len(b) - 1 - suf]:
        suf += 1
    mid_a, mid_b = a[pre : len(a) - suf], b[pre : len(b) - suf]
    ops: list[tuple[str, int, int, int, int]] = []
    if pre:
        ops.append(("equal", 0, pre, 0, pre))
    if mid_a or mid_b:
        if len(mid_a) * len(mid_b) > MAX_DIFF_WORK:
            ops.append(("replace", pre, pre + len(mid_a), pre, pre + len(mid_b)))
        else:
            matcher = difflib.SequenceMatcher(None, mid_a, mid_b, autojunk=False)
            for tag, i1, i2, j1, j2 in matcher.get_opcodes():
                ops.append((tag, i1 + pre, i2 + pre, j1 + pre, j2 + pre))
    if suf:
        ops.append(("equal", len(a) - suf, len(a), len(b) - suf, len(b)))
    # SequenceMatcher never yields an empty op list for two empty inputs; keep that shape
    return ops


def _span(n_lines: int, offset: int, limit: int) -> tuple[int, int]:
    first = max(1, offset)
    last = n_lines if limit is None or limit <= 0 else min(n_lines, first + limit - 1)
    return first, last


def _steps(steps: list[int | None]) -> str:
    uniq = sorted({s for s in steps if s is not None})
    if len(uniq) == 1:
        return f"step {uniq[0]}"
    return "steps " + ", ".join(str(s) for s in uniq)


def _touches(op: tuple[str, int, int, int, int], first: int, last: int) -> bool:
    _, _, _, j1, j2 = op
    if j2 > j1:  # new lines j1+1..j2
        return j1 + 1 <= last and j2 >= first
    # a deletion between new lines j1 and j1+1
    return first - 1 <= j1 <= last


def _render(
    old: list[str],
    new: list[str],
    touching: list[tuple[str, int, int, int, int]],
    opcodes: list[tuple[str, int, int, int, int]],
    name: str,
) -> str:
    """A unified diff of the changes from the first to the last touching one,
    with CONTEXT_LINES of context; long unchanged stretches split hunks."""
    lo = opcodes.index(touching[0])
    hi = opcodes.index(touching[-1])
    ops = opcodes[lo : hi + 1]
    before = opcodes[lo - 1] if lo > 0 else None
    after = opcodes[hi + 1] if hi + 1 < len(opcodes) else None

    hunks: list[list[tuple[str, int, int, int, int]]] = [[]]
    if before is not None:  # an equal block: keep its tail as context
        _, i1, i2, j1, j2 = before
        k = min(CONTEXT_LINES, i2 - i1)
        hunks[-1].append(("equal", i2 - k, i2, j2 - k, j2))
    for op in ops:
        tag, i1, i2, j1, j2 = op
        if tag == "equal" and i2 - i1 > 2 * CONTEXT_LINES:
            hunks[-1].append(("equal", i1, i1 + CONTEXT_LINES, j1, j1 + CONTEXT_LINES))
            hunks.append([("equal", i2 - CONTEXT_LINES, i2, j2 - CONTEXT_LINES, j2)])
        else:
            hunks[-1].append(op)
    if after is not None:
        _, i1, i2, j1, j2 = after
        k = min(CONTEXT_LINES, i2 - i1)
        hunks[-1].append(("equal", i1, i1 + k, j1, j1 + k))

    out = [f"--- {name} (as you read it)", f"+++ {name} (now)"]
    for hunk in hunks:
        body: list[str] = []
        for tag, i1, i2, j1, j2 in hunk:
            if tag == "equal":
                body.extend(" " + _strip(old[k]) for k in range(i1, i2))
            else:
                body.extend("-" + _strip(old[k]) for k in range(i1, i2))
                body.extend("+" + _strip(new[k]) for k in range(j1, j2))
        i_start, j_start = hunk[0][1], hunk[0][3]
        i_len = sum(op[2] - op[1] for op in hunk)
        j_len = sum(op[4] - op[3] for op in hunk)
        out.append(f"@@ -{i_start + 1 if i_len else i_start},{i_len} +{j_start + 1 if j_len else j_start},{j_len} @@")
        out.extend(body)
    return "\n".join(out)


def _strip(line: str) -> str:
    return line.rstrip("\r\n")
