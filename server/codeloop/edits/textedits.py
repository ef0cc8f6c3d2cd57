"""Minimal LSP-style text edits between two texts, and their application.

Positions follow LSP: a zero-based line index (lines end at ``\\n``, ``\\r\\n`` or
``\\r``) and a character offset counted in code units of the negotiated
position encoding (UTF-16 by default: a character outside the BMP counts 2).
Offsets (``offset_at``/``position_at``) are Python string indices (code points).

No editor types here: ``Pos``/``TextEdit`` are plain dataclasses the protocol
layer converts.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

from codeloop.edits.diff import compute_hunks, split_lines

__all__ = [
    "Encoding",
    "Pos",
    "TextEdit",
    "minimal_text_edits",
    "apply_text_edits",
    "ENCODINGS",
    "as_encoding",
    "offset_at",
    "position_at",
    "whole_document_range",
]

Encoding = Literal["utf-16", "utf-8", "utf-32"]
ENCODINGS: tuple[Encoding, ...] = ("utf-16", "utf-8", "utf-32")


def as_encoding(value: object) -> Encoding:
    """A negotiated position encoding (a string or an enum's value) as an Encoding; LSP's
    default, utf-16, for anything else."""
    value = getattr(value, "value", value)
    return next((e for e in ENCODINGS if e == value), "utf-16")


@dataclass(frozen=True, order=True)
class Pos:
    line: int
    character: int


@dataclass(frozen=True)
class TextEdit:
    start: Pos
    end: Pos
    new_text: str


def _units(s: str, encoding: Encoding) -> int:
    """Length of ``s`` in code units of ``encoding``."""
    if encoding == "utf-32" or s.isascii():
        return len(s)
    if encoding == "utf-16":
        return len(s.encode("utf-16-le", "surrogatepass")) // 2
    if encoding == "utf-8":
        return len(s.encode("utf-8", "surrogatepass"))
    raise ValueError(f"unknown position encoding {encoding!r}")


def _content_len(line: str) -> int:
    """Length of ``line`` without its line ending."""
    if line.endswith("\r\n"):
        return len(line) - 2
    if line.endswith(("\n", "\r")):
        return len(line) - 1
    return len(line)


def _char_index(content: str, character: int, encoding: Encoding) -> int:
    """Code-point index in ``content`` of a code-unit offset (clamped; mid-character rounds down)."""
    if character <= 0:
        return 0
    if encoding == "utf-32" or content.isascii():
        return min(character, len(content))
    units = 0
    for k, ch in enumerate(content):
        o = ord(ch)
        if encoding == "utf-16":
            w = 2 if o > 0xFFFF else 1
        else:
            w = 1 if o < 0x80 else 2 if o < 0x800 else 3 if o < 0x10000 else 4
        if units + w > character:
            return k
        units += w
    return len(content)


def _line_starts(lines: list[str]) -> list[int]:
    starts = [0]
    total = 0
    for line in lines:
        total += len(line)
        starts.append(total)
    return starts


def _offset(lines: list[str], starts: list[int], pos: Pos, encoding: Encoding) -> int:
    if pos.line < 0:
        return 0
    if pos.line >= len(lines):
        return starts[-1]
    line = lines[pos.line]
    content = line[: _content_len(line)]
    return starts[pos.line] + _char_index(content, pos.character, encoding)


def offset_at(text: str, pos: Pos, encoding: Encoding = "utf-16") -> int:
    """The string index of an LSP position in ``text``.

    Per LSP, a character past the end of its line means the end of the line
    (before its ending); a line past the end of the text means the end of text.
    """
    lines = split_lines(text)
    return _offset(lines, _line_starts(lines), pos, encoding)


def position_at(text: str, offset: int, encoding: Encoding = "utf-16") -> Pos:
    """The LSP position of string index ``offset`` in ``text`` (clamped to the text).

    An offset between the ``\\r`` and ``\\n`` of a CRLF maps to the end of that line.
    """
    offset = max(0, min(offset, len(text)))
    lines = split_lines(text)
    line_no, col = _locate(lines, offset)
    if line_no == len(lines):
        return Pos(line_no, 0)
    line = lines[line_no]
    col = min(col, _content_len(line))
    return Pos(line_no, _units(line[:col], encoding))


def _locate(lines: list[str], offset: int) -> tuple[int, int]:
    starts = _line_starts(lines)
    # Binary search: the last line whose start <= offset.
    lo, hi = 0, len(lines)
    while lo < hi:
        mid = (lo + hi + 1) // 2
        if starts[mid] <= offset:
            lo = mid
        else:
            hi = mid - 1
    if lo == len(lines) and lines and not lines[-1].endswith(("\n", "\r")):
        # End of a text whose last line has no ending: that line's end.
        lo -= 1
    return lo, offset - starts[lo]


def whole_document_range(text: str, encoding: Encoding = "utf-16") -> tuple[Pos, Pos]:
    """The (start, end) range covering all of ``text``."""
    return Pos(0, 0), position_at(text, len(text), encoding)


# ------------------------------------------------------------ minimal edits


def _common_prefix(a: str, b: str) -> int:
    n = min(len(a), len(b))
    if a[:n] == b[:n]:
        return n
    lo, hi = 0, n  # a[:lo] == b[:lo], a[:hi] != b[:hi]
    while hi - lo > 1:
        mid = (lo + hi) // 2
        if a[lo:mid] == b[lo:mid]:
            lo = mid
        else:
            hi = mid
    return lo


def _common_suffix(a: str, b: str, limit: int) -> int:
    n = min(len(a), len(b), limit)
    if n <= 0:
        return 0
    if a[len(a) - n :] == b[len(b) - n :]:
        return n
    lo, hi = 0, n  # suffixes of length lo match, of length hi do not
    while hi - lo > 1:
        mid = (lo + hi) // 2
        if a[len(a) - mid : len(a) - lo] == b[len(b) - mid : len(b) - lo]:
            lo = mid
        else:
            hi = mid
    return lo


def _trim(old: str, new: str) -> tuple[int, int]:
    """(prefix, suffix) lengths common to ``old``/``new``, never splitting a CRLF of ``old``."""
    p = _common_prefix(old, new)
    if 0 < p < len(old) and old[p - 1] == "\r" and old[p] == "\n":
        p -= 1
    s = _common_suffix(old, new, min(len(old), len(new)) - p)
    e = len(old) - s
    if 0 < e < len(old) and old[e - 1] == "\r" and old[e] == "\n":
        s -= 1
    return p, s


def _pos_in(lines: list[str], first_line: int, off: int, encoding: Encoding) -> Pos:
    """Position of offset ``off`` inside the concatenation of ``lines`` (starting at ``first_line``)."""
    for k, line in enumerate(lines):
        n = len(line)
        if off < n or (off == n and not line.endswith(("\n", "\r"))):
            return Pos(first_line + k, _units(line[:off], encoding))
        off -= n
    return Pos(first_line + len(lines), 0)


def minimal_text_edits(old: str, new: str, encoding: Encoding = "utf-16") -> list[TextEdit]:
    """Sorted, non-overlapping, non-touching edits turning ``old`` into ``new``.

    Starts from the line hunks of ``compute_hunks``; a hunk replacing as many
    lines as it adds is refined line by line, and each changed region is trimmed
    of its common character prefix/suffix, so renaming one identifier gives a
    one-word edit. Never a whole-document replace unless everything changed.
    """
    if old == new:
        return []
    raw: list[tuple[Pos, Pos, str]] = []
    for h in compute_hunks(old, new):
        if h.old_lines and len(h.old_lines) == len(h.new_lines):
            pairs = [
                ([o], h.old_start + k, n)
                for k, (o, n) in enumerate(zip(h.old_lines, h.new_lines))
                if o != n
            ]
        else:
            pairs = [(h.old_lines, h.old_start, "".join(h.new_lines))]
        for olines, first, ntext in pairs:
            otext = "".join(olines)
            p, s = _trim(otext, ntext)
            raw.append(
                (
                    _pos_in(olines, first, p, encoding),
                    _pos_in(olines, first, len(otext) - s, encoding),
                    ntext[p : len(ntext) - s],
                )
            )
    # Merge edits that touch (one ends where the next starts) into one.
    edits: list[TextEdit] = []
    for start, end, text in raw:
        if edits and edits[-1].end == start:
            last = edits.pop()
            edits.append(TextEdit(last.start, end, last.new_text + text))
        else:
            edits.append(TextEdit(start, end, text))
    return edits


def apply_text_edits(text: str, edits: list[TextEdit], encoding: Encoding = "utf-16") -> str:
    """Apply LSP text edits, all relative to ``text``.

    Edits are applied in position order (inserts at the same position keep their
    list order). Raises ValueError when two edits overlap.
    """
    if not edits:
        return text
    lines = split_lines(text)
    starts = _line_starts(lines)
    spans = []
    for k, e in enumerate(edits):
        a = _offset(lines, starts, e.start, encoding)
        b = _offset(lines, starts, e.end, encoding)
        if b < a:
            raise ValueError(f"edit {k} ends before it starts: {e}")
        spans.append((a, b, k, e.new_text))
    spans.sort()
    out: list[str] = []
    pos = 0
    for a, b, k, new_text in spans:
        if a < pos:
            raise ValueError(f"edit {k} overlaps a previous edit")
        out.append(text[pos:a])
        out.append(new_text)
        pos = b
    out.append(text[pos:])
    return "".join(out)
