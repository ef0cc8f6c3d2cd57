"""Minimal LSP text edits and positions (codeloop.edits.textedits)."""

from __future__ import annotations

import logging
import random
import time

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from codeloop.edits.diff import split_lines
from codeloop.edits.textedits import (
    Pos,
    TextEdit,
    apply_text_edits,
    minimal_text_edits,
    offset_at,
    position_at,
    whole_document_range,
)

log = logging.getLogger(__name__)

ENCODINGS = ["utf-16", "utf-8", "utf-32"]
CONTENTS = st.sampled_from(["", "a", "b", "foo", "foo bar", "😀", "x😀y", "é", "  a", "ab😀", "\t}"])
EOLS = ("\n", "\r\n", "\r")


def _drop_eol(text: str) -> str:
    if text.endswith("\r\n"):
        return text[:-2]
    if text.endswith(("\n", "\r")):
        return text[:-1]
    return text


@st.composite
def texts(draw):
    lines = draw(st.lists(CONTENTS, max_size=10))
    text = "".join(line + draw(st.sampled_from(EOLS)) for line in lines)
    return _drop_eol(text) if draw(st.booleans()) else text


@st.composite
def text_pairs(draw):
    old = draw(texts())
    if draw(st.integers(0, 3)) == 0:
        return old, draw(texts())
    lines = split_lines(old)
    for _ in range(draw(st.integers(0, 5))):
        i = draw(st.integers(0, len(lines)))
        op = draw(st.sampled_from(["replace", "insert", "delete", "tweak"]))
        new_line = draw(CONTENTS) + draw(st.sampled_from(EOLS))
        if op == "insert" or not lines:
            lines.insert(i, new_line)
        else:
            i = min(i, len(lines) - 1)
            if op == "replace":
                lines[i] = new_line
            elif op == "delete":
                del lines[i]
            else:  # change a few characters inside a line
                line = lines[i]
                k = draw(st.integers(0, len(line)))
                lines[i] = line[:k] + draw(st.sampled_from(["Z", "😀", "", "\r", "\n"])) + line[k + 1 :]
    new = "".join(lines)
    return old, (_drop_eol(new) if draw(st.booleans()) else new)


def _units(s: str, encoding: str) -> int:
    if encoding == "utf-16":
        return len(s.encode("utf-16-le")) // 2
    if encoding == "utf-8":
        return len(s.encode("utf-8"))
    return len(s)


# ------------------------------------------------------------------ properties


@settings(max_examples=400)
@given(text_pairs())
def test_minimal_edits_roundtrip_every_encoding(pair):
    old, new = pair
    for enc in ENCODINGS:
        edits = minimal_text_edits(old, new, enc)
        assert apply_text_edits(old, edits, enc) == new
        assert (edits == []) == (old == new)
        # Sorted, non-overlapping and not even touching.
        offsets = [(offset_at(old, e.start, enc), offset_at(old, e.end, enc)) for e in edits]
        for (a1, b1), (a2, b2) in zip(offsets, offsets[1:]):
            assert a1 <= b1 < a2 <= b2
        for e, (a, b) in zip(edits, offsets):
            # Positions are exact (round-trip through offsets) and never inside a CRLF.
            assert position_at(old, a, enc) == e.start and position_at(old, b, enc) == e.end
            for off in (a, b):
                assert not (0 < off < len(old) and old[off - 1] == "\r" and old[off] == "\n")
            # Minimal-ish: no edit is a no-op or keeps a common first/last character.
            assert old[a:b] != e.new_text


@settings(max_examples=300)
@given(texts())
def test_position_offset_roundtrip(text):
    lines = split_lines(text)
    starts = [sum(len(line) for line in lines[:k]) for k in range(len(lines) + 1)]
    for enc in ENCODINGS:
        for off in range(len(text) + 1):
            pos = position_at(text, off, enc)
            inside_crlf = 0 < off < len(text) and text[off - 1] == "\r" and text[off] == "\n"
            assert offset_at(text, pos, enc) == (off - 1 if inside_crlf else off)
            # The character is the code-unit length of the line's text before the offset.
            line_start = starts[pos.line]
            content = lines[pos.line].rstrip("\r\n") if pos.line < len(lines) else ""
            assert pos.character == _units(text[line_start : min(off, line_start + len(content))], enc)


@given(texts())
def test_whole_document_range_replaces_everything(text):
    for enc in ENCODINGS:
        start, end = whole_document_range(text, enc)
        assert start == Pos(0, 0)
        assert offset_at(text, end, enc) == len(text)
        assert apply_text_edits(text, [TextEdit(start, end, "new")], enc) == "new"


# ------------------------------------------------------------------ examples


def test_one_identifier_rename_is_one_word_edit():
    old = "def f(counter):\n    return counter + 1\n"
    new = "def f(counter):\n    return total + 1\n"
    assert minimal_text_edits(old, new) == [TextEdit(Pos(1, 11), Pos(1, 18), "total")]


def test_same_line_count_hunk_is_refined_per_line():
    old = "x = counter\ny = counter\nz = counter\n"
    new = "x = total\ny = total\nz = total\n"
    edits = minimal_text_edits(old, new)
    assert edits == [TextEdit(Pos(i, 4), Pos(i, 11), "total") for i in range(3)]


def test_positions_count_code_units_of_the_encoding():
    old = "😀 é counter\n"
    new = "😀 é total\n"
    # "😀 é " is 4 code points, 5 UTF-16 units, 8 UTF-8 bytes.
    assert minimal_text_edits(old, new, "utf-16") == [TextEdit(Pos(0, 5), Pos(0, 12), "total")]
    assert minimal_text_edits(old, new, "utf-8") == [TextEdit(Pos(0, 8), Pos(0, 15), "total")]
    assert minimal_text_edits(old, new, "utf-32") == [TextEdit(Pos(0, 4), Pos(0, 11), "total")]


def test_no_trailing_newline_and_empty_files():
    assert minimal_text_edits("", "") == []
    assert minimal_text_edits("", "abc\n") == [TextEdit(Pos(0, 0), Pos(0, 0), "abc\n")]
    assert minimal_text_edits("abc", "") == [TextEdit(Pos(0, 0), Pos(0, 3), "")]
    # Adding a final newline is an insertion at the end of the last line.
    assert minimal_text_edits("a\nb", "a\nb\n") == [TextEdit(Pos(1, 1), Pos(1, 1), "\n")]
    assert minimal_text_edits("a\nb\n", "a\nb") == [TextEdit(Pos(1, 1), Pos(2, 0), "")]
    assert minimal_text_edits("a\nb\n", "a\nb\nc") == [TextEdit(Pos(2, 0), Pos(2, 0), "c")]


def test_crlf_files_keep_their_line_endings_untouched():
    old = "one\r\ntwo\r\nthree\r\n"
    new = "one\r\nTWO\r\nthree\r\n"
    assert minimal_text_edits(old, new) == [TextEdit(Pos(1, 0), Pos(1, 3), "TWO")]
    # Converting one CRLF to LF replaces the whole line ending, never half of it.
    edits = minimal_text_edits("a\r\nb\r\n", "a\nb\r\n")
    assert edits == [TextEdit(Pos(0, 1), Pos(1, 0), "\n")]
    assert apply_text_edits("a\r\nb\r\n", edits) == "a\nb\r\n"
    # Inserting text between the CR and LF can't split the old CRLF.
    edits = minimal_text_edits("a\r\n", "a\rb\r\n")
    assert apply_text_edits("a\r\n", edits) == "a\rb\r\n"
    for e in edits:
        assert e.end.line == 0 or e.end == Pos(1, 0)


def test_offset_and_position_clamp_like_lsp():
    text = "ab\r\ncd😀\nlast"
    assert offset_at(text, Pos(0, 99)) == 2  # past the end of line: before its ending
    assert offset_at(text, Pos(99, 0)) == len(text)
    assert offset_at(text, Pos(1, 3)) == 6  # in the middle of a surrogate pair: rounds down
    assert offset_at(text, Pos(1, 4)) == 7
    assert position_at(text, 3) == Pos(0, 2)  # between CR and LF
    assert position_at(text, 7) == Pos(1, 4)
    assert position_at(text, len(text)) == Pos(2, 4)
    assert position_at("a\n", 2) == Pos(1, 0)
    assert whole_document_range("") == (Pos(0, 0), Pos(0, 0))
    assert whole_document_range("x\r\ny😀") == (Pos(0, 0), Pos(1, 3))


def test_apply_text_edits_lsp_semantics():
    text = "hello world\n"
    # All edits refer to the original text, whatever their order in the list.
    edits = [TextEdit(Pos(0, 6), Pos(0, 11), "there"), TextEdit(Pos(0, 0), Pos(0, 5), "bye")]
    assert apply_text_edits(text, edits) == "bye there\n"
    # Inserts at the same position keep their list order.
    same = [TextEdit(Pos(0, 0), Pos(0, 0), "1"), TextEdit(Pos(0, 0), Pos(0, 0), "2")]
    assert apply_text_edits(text, same) == "12hello world\n"
    with pytest.raises(ValueError):
        apply_text_edits(text, [TextEdit(Pos(0, 0), Pos(0, 5), "x"), TextEdit(Pos(0, 3), Pos(0, 7), "y")])
    with pytest.raises(ValueError):
        apply_text_edits(text, [TextEdit(Pos(0, 5), Pos(0, 1), "x")])


# ------------------------------------------------------------------ size and speed


def _big_file(n: int = 20000) -> list[str]:
    rnd = random.Random(3)
    words = ["def", "return", "self", "x", "", "}", "if", "for", "value", "#", "(", ")"]
    return [
        "    " * rnd.randint(0, 3) + " ".join(rnd.choice(words) for _ in range(rnd.randint(0, 6))) + "\n"
        for _ in range(n)
    ]


def test_one_word_change_in_20k_lines_is_one_small_edit():
    lines = _big_file()
    lines[12345] = "    result = compute(counter, 3)\n"
    old = "".join(lines)
    lines[12345] = "    result = compute(total, 3)\n"
    new = "".join(lines)
    t = time.perf_counter()
    edits = minimal_text_edits(old, new)
    log.info("one word in 20k lines: %.1f ms", (time.perf_counter() - t) * 1000)
    assert edits == [TextEdit(Pos(12345, 21), Pos(12345, 28), "total")]
    assert apply_text_edits(old, edits) == new


def test_ten_scattered_edits_give_ten_small_edits():
    lines = _big_file()
    old = "".join(lines)
    rnd = random.Random(11)
    targets = sorted(rnd.sample(range(0, 20000, 7), 10))
    for i in targets:
        lines[i] = lines[i].rstrip("\n") + " # changed\n"
    new = "".join(lines)
    t = time.perf_counter()
    edits = minimal_text_edits(old, new)
    elapsed = time.perf_counter() - t
    log.info("10 scattered edits in 20k lines: %.1f ms", elapsed * 1000)
    assert len(edits) == 10
    assert [e.start.line for e in edits] == targets
    assert sum(len(e.new_text) for e in edits) <= 10 * len(" # changed")
    assert sum(len(e.new_text) for e in edits) < len(new) / 1000
    assert apply_text_edits(old, edits) == new
    start, end = whole_document_range(old)
    assert all((e.start, e.end) != (start, end) for e in edits)
