"""Line-level diffs: hunks the user accepts one by one, and unified diffs for display.

Pure text in, pure data out: no I/O, no editor types.

Lines are split the way LSP does (a line ends at ``\\n``, ``\\r\\n`` or a lone
``\\r``), keeping their endings, so ``"".join(lines) == text`` always holds and
hunk line indices are LSP line numbers.
"""

from __future__ import annotations

import difflib
import re
from bisect import bisect_left
from collections import Counter
from dataclasses import dataclass, field, replace

__all__ = [
    "Hunk",
    "split_lines",
    "compute_hunks",
    "unified_diff",
    "hunk_diffs",
    "apply_hunks",
    "diff_stats",
]

_LINE_RE = re.compile(r"[^\r\n]*(?:\r\n|\r|\n)|[^\r\n]+\Z")
_CONTEXT = 3


def split_lines(text: str) -> list[str]:
    """Split ``text`` into lines keeping their endings (``\\n``, ``\\r\\n`` or ``\\r``).

    ``"".join(split_lines(t)) == t``; an empty text has no lines; a trailing line
    without an ending is kept as is.
    """
    if not text:
        return []
    if "\r" not in text:
        parts = text.split("\n")
        lines = [p + "\n" for p in parts[:-1]]
        if parts[-1]:
            lines.append(parts[-1])
        return lines
    return _LINE_RE.findall(text)


def _has_eol(line: str) -> bool:
    return line.endswith(("\n", "\r"))


def _range(start: int, length: int) -> str:
    """A unified-diff range: 1-based start, omitted length when 1, start-1 when empty."""
    beginning = start + 1
    if length == 1:
        return f"{beginning}"
    if length == 0:
        beginning -= 1
    return f"{beginning},{length}"


def _header(old_start: int, old_len: int, new_start: int, new_len: int) -> str:
    return f"@@ -{_range(old_start, old_len)} +{_range(new_start, new_len)} @@"


@dataclass(frozen=True)
class Hunk:
    """A contiguous replacement of ``old[old_start:old_start+len(old_lines)]`` by ``new_lines``.

    ``old_lines``/``new_lines`` are the replaced lines only (no context), each
    keeping its line ending. ``new_start`` is the index of the first new line in
    the full new text. ``header`` is the zero-context ``@@ -a,b +c,d @@`` header
    of this hunk; ``context_before``/``context_after`` are up to 3 unchanged old
    lines around it, for display.
    """

    id: int
    old_start: int
    old_lines: list[str]
    new_start: int
    new_lines: list[str]
    header: str
    context_before: list[str] = field(default_factory=list)
    context_after: list[str] = field(default_factory=list)

    @property
    def old_end(self) -> int:
        """Index one past the last replaced old line (== old_start for a pure insertion)."""
        return self.old_start + len(self.old_lines)

    @property
    def new_end(self) -> int:
        return self.new_start + len(self.new_lines)


def _lis(seq: list[int]) -> list[int]:
    """Indices into ``seq`` of a longest strictly increasing subsequence."""
    if all(x < y for x, y in zip(seq, seq[1:])):
        return list(range(len(seq)))
    tails: list[int] = []  # values
    tails_idx: list[int] = []  # index in seq of each tail
    prev = [-1] * len(seq)
    for k, x in enumerate(seq):
        t = bisect_left(tails, x)
        if t == len(tails):
            tails.append(x)
            tails_idx.append(k)
        else:
            tails[t] = x
            tails_idx[t] = k
        prev[k] = tails_idx[t - 1] if t else -1
    out = []
    k = tails_idx[-1] if tails_idx else -1
    while k != -1:
        out.append(k)
        k = prev[k]
    out.reverse()
    return out


_SMALL = 200  # below this many lines on one side, difflib alone is fast enough
_MAX_DEPTH = 4
_MYERS_BUDGET = 2_000_000  # inner-loop steps before giving up on a minimal diff of one gap
_SM_MAX_CELLS = 4_000_000  # difflib fallback only for gaps up to ~2000x2000 lines


def _myers(
    a: list[str], alo: int, ahi: int, b: list[str], blo: int, bhi: int, budget: int
) -> list[tuple[int, int, int]] | None:
    """Matching blocks of a minimal line diff (Myers' greedy O(ND) algorithm), or None over budget.

    Fast when the two sides differ in few lines, however repetitive they are
    (where ``SequenceMatcher`` degrades to quadratic time).
    """
    n, m = ahi - alo, bhi - blo
    size = n + m
    v = [0] * (2 * size + 3)
    off = size + 1
    trace: list[list[int]] = []
    steps = 0
    found = False
    for d in range(size + 1):
        trace.append(v[off - d - 1 : off + d + 2])  # v[k] for k in [-d-1, d+1], before step d
        for k in range(-d, d + 1, 2):
            if k == -d or (k != d and v[off + k - 1] < v[off + k + 1]):
                x = v[off + k + 1]
            else:
                x = v[off + k - 1] + 1
            y = x - k
            x0 = x
            while x < n and y < m and a[alo + x] == b[blo + y]:
                x += 1
                y += 1
            steps += x - x0 + 1
            v[off + k] = x
            if x >= n and y >= m:
                found = True
                break
        if found:
            break
        if steps > budget:
            return None
    # Walk back through the trace collecting the diagonal (matching) moves.
    matches: list[tuple[int, int]] = []
    x, y = n, m
    for d in range(len(trace) - 1, -1, -1):
        snap = trace[d]
        k = x - y

        def at(kk: int) -> int:
            return snap[kk + d + 1]  # noqa: B023 - used within this iteration only

        if k == -d or (k != d and at(k - 1) < at(k + 1)):
            pk = k + 1
        else:
            pk = k - 1
        px = at(pk)
        py = px - pk
        if d == 0:
            px, py = 0, 0
        while x > px and y > py:
            x -= 1
            y -= 1
            matches.append((x, y))
        x, y = px, py
    matches.reverse()
    blocks: list[tuple[int, int, int]] = []
    for x, y in matches:
        if blocks and blocks[-1][0] + blocks[-1][2] == alo + x and blocks[-1][1] + blocks[-1][2] == blo + y:
            i, j, sz = blocks[-1]
            blocks[-1] = (i, j, sz + 1)
        else:
            blocks.append((alo + x, blo + y, 1))
    return blocks


def _match(
    a: list[str], alo: int, ahi: int, b: list[str], blo: int, bhi: int,
    out: list[tuple[int, int, int]], depth: int = 0,
) -> None:
    """Append matching blocks (i, j, size) of a[alo:ahi] vs b[blo:bhi], in order.

    Common leading/trailing lines are matched first; large middles are cut at
    lines unique on both sides (patience-style anchors, longest increasing run)
    and each gap is diffed with ``difflib.SequenceMatcher(autojunk=False)``.
    Large gaps without anchors (repetitive text) use Myers' O(ND) diff instead,
    and as a last resort stay one coarse replacement. This keeps a few
    scattered edits in a 20k-line file in the milliseconds.
    """
    pre = 0
    limit = min(ahi - alo, bhi - blo)
    while pre < limit and a[alo + pre] == b[blo + pre]:
        pre += 1
    suf = 0
    limit -= pre
    while suf < limit and a[ahi - 1 - suf] == b[bhi - 1 - suf]:
        suf += 1
    if pre:
        out.append((alo, blo, pre))
    i1, i2, j1, j2 = alo + pre, ahi - suf, blo + pre, bhi - suf
    if i1 < i2 and j1 < j2:
        large = min(i2 - i1, j2 - j1) > _SMALL
        anchors: list[tuple[int, int]] = []
        if large and depth < _MAX_DEPTH:
            a_mid, b_mid = a[i1:i2], b[j1:j2]
            ca, cb = Counter(a_mid), Counter(b_mid)
            pos_b = {line: j for j, line in enumerate(b_mid) if cb[line] == 1 and ca[line] == 1}
            pairs = [(i, pos_b[line]) for i, line in enumerate(a_mid) if line in pos_b]
            keep = _lis([j for _, j in pairs])
            anchors = [(pairs[k][0] + i1, pairs[k][1] + j1) for k in keep]
        if anchors:
            pi, pj = i1 - 1, j1 - 1
            for qi, qj in anchors:
                if qi - pi == qj - pj:
                    if qi - pi > 1:
                        if a[pi + 1 : qi] == b[pj + 1 : qj]:
                            out.append((pi + 1, pj + 1, qi - pi - 1))
                        else:
                            _match(a, pi + 1, qi, b, pj + 1, qj, out, depth + 1)
                else:
                    _match(a, pi + 1, qi, b, pj + 1, qj, out, depth + 1)
                out.append((qi, qj, 1))
                pi, pj = qi, qj
            if i2 - pi > 1 or j2 - pj > 1:
                _match(a, pi + 1, i2, b, pj + 1, j2, out, depth + 1)
        else:
            blocks = _myers(a, i1, i2, b, j1, j2, _MYERS_BUDGET) if large else None
            if blocks is None and (not large or (i2 - i1) * (j2 - j1) <= _SM_MAX_CELLS):
                sm = difflib.SequenceMatcher(None, a[i1:i2], b[j1:j2], autojunk=False)
                blocks = [(i + i1, j + j1, size) for i, j, size in sm.get_matching_blocks() if size]
            out.extend(blocks or ())  # None: keep the whole gap as one replacement
    if suf:
        out.append((ahi - suf, bhi - suf, suf))


def _spans(a: list[str], b: list[str]) -> list[tuple[int, int, int, int]]:
    """The changed regions (i1, i2, j1, j2): a[i1:i2] becomes b[j1:j2], with equal lines between."""
    blocks: list[tuple[int, int, int]] = []
    _match(a, 0, len(a), b, 0, len(b), blocks)
    blocks.append((len(a), len(b), 0))
    spans = []
    i = j = 0
    for bi, bj, size in blocks:
        if bi > i or bj > j:
            spans.append((i, bi, j, bj))
        i, j = bi + size, bj + size
    return spans


def _hunks_from_lines(a: list[str], b: list[str]) -> list[Hunk]:
    hunks = []
    for k, (i1, i2, j1, j2) in enumerate(_spans(a, b)):
        hunks.append(
            Hunk(
                id=k,
                old_start=i1,
                old_lines=a[i1:i2],
                new_start=j1,
                new_lines=b[j1:j2],
                header=_header(i1, i2 - i1, j1, j2 - j1),
                context_before=a[max(0, i1 - _CONTEXT) : i1],
                context_after=a[i2 : i2 + _CONTEXT],
            )
        )
    return hunks


def compute_hunks(old: str, new: str) -> list[Hunk]:
    """The line-level hunks turning ``old`` into ``new``, ids 0.. in file order.

    Hunks are separated by at least one unchanged line, so any subset of them can
    be applied independently (see ``apply_hunks``).
    """
    return _hunks_from_lines(split_lines(old), split_lines(new))


def apply_hunks(old: str, hunks: list[Hunk], accepted: set[int] | None = None) -> str:
    """Apply the hunks whose id is in ``accepted`` (None: all) to ``old``.

    ``hunks`` must come from ``compute_hunks(old, ...)``. Raises ValueError when a
    hunk does not match ``old``.
    """
    a = split_lines(old)
    out: list[str] = []
    pos = 0
    for h in sorted(hunks, key=lambda h: (h.old_start, h.id)):
        if h.old_start < pos or h.old_end > len(a) or a[h.old_start : h.old_end] != h.old_lines:
            raise ValueError(f"hunk {h.id} ({h.header}) does not apply to this text")
        if accepted is not None and h.id not in accepted:
            continue
        out.extend(a[pos : h.old_start])
        out.extend(h.new_lines)
        pos = h.old_end
    out.extend(a[pos:])
    return "".join(out)


def diff_stats(old: str | None, new: str) -> tuple[int, int]:
    """(lines added, lines removed) between ``old`` (None: empty) and ``new``."""
    added = removed = 0
    for h in compute_hunks(old or "", new):
        added += len(h.new_lines)
        removed += len(h.old_lines)
    return added, removed


# ---------------------------------------------------------------- unified diffs


def _emit(out: list[str], prefix: str, line: str) -> None:
    if _has_eol(line):
        out.append(prefix + line)
    else:
        out.append(prefix + line + "\n")
        out.append("\\ No newline at end of file\n")


def _format_group(a: list[str], group: list[Hunk], context: int) -> list[str]:
    first, last = group[0], group[-1]
    lead = min(context, first.old_start)
    i1 = first.old_start - lead
    j1 = first.new_start - lead
    i2 = min(len(a), last.old_end + context)
    trail = i2 - last.old_end
    j2 = last.new_end + trail
    out = [_header(i1, i2 - i1, j1, j2 - j1) + "\n"]
    pos = i1
    for h in group:
        for line in a[pos : h.old_start]:
            _emit(out, " ", line)
        for line in h.old_lines:
            _emit(out, "-", line)
        for line in h.new_lines:
            _emit(out, "+", line)
        pos = h.old_end
    for line in a[pos:i2]:
        _emit(out, " ", line)
    return out


def _file_header(old: str | None, path: str) -> list[str]:
    path = path.replace("\\", "/").lstrip("/")
    src = "/dev/null" if old is None else f"a/{path}"
    return [f"--- {src}\n", f"+++ b/{path}\n"]


def _groups(hunks: list[Hunk], context: int) -> list[list[Hunk]]:
    groups: list[list[Hunk]] = []
    for h in hunks:
        if groups and h.old_start - groups[-1][-1].old_end <= 2 * context:
            groups[-1].append(h)
        else:
            groups.append([h])
    return groups


def unified_diff(old: str | None, new: str, path: str, context: int = 3) -> str:
    """A standard unified diff of ``path`` from ``old`` (None: a new file) to ``new``.

    Empty string when nothing changes. Hunks closer than ``2*context`` lines are
    grouped into one ``@@`` hunk, like diff(1). A last line without an ending is
    followed by ``\\ No newline at end of file``.
    """
    if old is not None and old == new:
        return ""
    a, b = split_lines(old or ""), split_lines(new)
    hunks = _hunks_from_lines(a, b)
    out = _file_header(old, path)
    for group in _groups(hunks, max(0, context)):
        out.extend(_format_group(a, group, max(0, context)))
    return "".join(out)


def hunk_diffs(old: str | None, new: str, path: str, context: int = 3) -> list[tuple[int, str]]:
    """One small standalone unified diff (with file headers) per hunk id, for per-hunk display.

    Each diff is the change made by that hunk alone: from ``old`` to
    ``apply_hunks(old, hunks, {id})``, so its context and line numbers come from
    ``old`` and it applies to ``old`` on its own.
    """
    a = split_lines(old or "")
    header = "".join(_file_header(old, path))
    out = []
    for h in _hunks_from_lines(a, split_lines(new)):
        alone = replace(h, new_start=h.old_start)
        out.append((h.id, header + "".join(_format_group(a, [alone], max(0, context)))))
    return out
