"""Line hunks, partial application and unified diffs (codeloop.edits.diff)."""

from __future__ import annotations

import difflib
import itertools
import logging
import random
import shutil
import subprocess
import time
from unittest import mock

import pytest
import unidiff
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import codeloop.edits.diff as diff_module
from codeloop.edits.diff import (
    apply_hunks,
    compute_hunks,
    diff_stats,
    hunk_diffs,
    split_lines,
    unified_diff,
)

log = logging.getLogger(__name__)

CONTENTS = st.sampled_from(["", "a", "b", "foo", "bar baz", "😀", "x😀y", "é", "  indent", "}"])


@st.composite
def texts(draw, eols=("\n", "\r\n")):
    lines = draw(st.lists(CONTENTS, max_size=12))
    text = "".join(line + draw(st.sampled_from(eols)) for line in lines)
    if text and draw(st.booleans()):  # drop the final line ending
        text = _drop_eol(text)
    return text


def _drop_eol(text: str) -> str:
    if text.endswith("\r\n"):
        return text[:-2]
    if text.endswith(("\n", "\r")):
        return text[:-1]
    return text


@st.composite
def text_pairs(draw, eols=("\n", "\r\n")):
    old = draw(texts(eols))
    if draw(st.integers(0, 3)) == 0:
        return old, draw(texts(eols))
    lines = split_lines(old)
    for _ in range(draw(st.integers(0, 5))):
        op = draw(st.sampled_from(["replace", "insert", "delete"]))
        i = draw(st.integers(0, len(lines)))
        new_line = draw(CONTENTS) + draw(st.sampled_from(eols))
        if op == "insert" or not lines:
            lines.insert(i, new_line)
        elif op == "replace":
            lines[min(i, len(lines) - 1)] = new_line
        else:
            del lines[min(i, len(lines) - 1)]
    new = "".join(lines)
    if new and draw(st.booleans()):
        new = _drop_eol(new)
    return old, new


# ------------------------------------------------------------------ split_lines


def test_split_lines_follows_lsp_line_endings():
    assert split_lines("") == []
    assert split_lines("a") == ["a"]
    assert split_lines("a\n") == ["a\n"]
    assert split_lines("a\r\nb\rc\nd") == ["a\r\n", "b\r", "c\n", "d"]
    assert split_lines("\n\n") == ["\n", "\n"]
    # Only \n, \r\n and \r end lines (unlike str.splitlines).
    assert split_lines("a\x0bb\u2028c\n") == ["a\x0bb\u2028c\n"]


@given(texts(eols=("\n", "\r\n", "\r")))
def test_split_lines_roundtrip(text):
    lines = split_lines(text)
    assert "".join(lines) == text
    for line in lines[:-1]:
        assert line.endswith(("\n", "\r"))


# ------------------------------------------------------------------ hunks


@settings(max_examples=300)
@given(text_pairs(eols=("\n", "\r\n", "\r")))
def test_hunks_apply_all_none_and_every_subset(pair):
    old, new = pair
    hunks = compute_hunks(old, new)
    assert apply_hunks(old, hunks, None) == new
    assert apply_hunks(old, hunks, set(range(len(hunks)))) == new
    assert apply_hunks(old, hunks, set()) == old
    assert (hunks == []) == (old == new)

    a, b = split_lines(old), split_lines(new)
    assert [h.id for h in hunks] == list(range(len(hunks)))
    for h, nxt in zip(hunks, hunks[1:]):
        # Separated by at least one unchanged line: individually acceptable.
        assert nxt.old_start > h.old_end
        assert nxt.new_start > h.new_end
        assert a[h.old_end : nxt.old_start] == b[h.new_end : nxt.new_start]
    for h in hunks:
        assert h.old_lines or h.new_lines
        assert a[h.old_start : h.old_end] == h.old_lines
        assert b[h.new_start : h.new_end] == h.new_lines
        assert h.context_before == a[max(0, h.old_start - 3) : h.old_start]
        assert h.context_after == a[h.old_end : h.old_end + 3]

    ids = [h.id for h in hunks][:6]
    for r in range(len(ids) + 1):
        for subset in itertools.combinations(ids, r):
            accepted = set(subset)
            result = apply_hunks(old, hunks, accepted)
            # Rebuild the expected text line by line.
            expected: list[str] = []
            pos = 0
            for h in hunks:
                expected += a[pos : h.old_start]
                expected += h.new_lines if h.id in accepted else h.old_lines
                pos = h.old_end
            expected += a[pos:]
            assert result == "".join(expected)
            for h in hunks:
                if h.id in accepted:
                    assert "".join(h.new_lines) in result


def test_hunk_fields_and_header():
    old = "one\ntwo\nthree\nfour\nfive\nsix\nseven\neight\nnine\nten\n"
    new = "one\nTWO\nthree\nfour\nfive\nsix\nseven\neight\nnine\nten\neleven\n"
    hunks = compute_hunks(old, new)
    assert len(hunks) == 2
    h0, h1 = hunks
    assert (h0.id, h0.old_start, h0.old_lines, h0.new_start, h0.new_lines) == (0, 1, ["two\n"], 1, ["TWO\n"])
    assert h0.header == "@@ -2 +2 @@"
    assert h0.context_before == ["one\n"]
    assert h0.context_after == ["three\n", "four\n", "five\n"]
    assert (h1.old_start, h1.old_lines, h1.new_start, h1.new_lines) == (10, [], 10, ["eleven\n"])
    assert h1.header == "@@ -10,0 +11 @@"
    assert apply_hunks(old, hunks, {1}) == old + "eleven\n"
    assert apply_hunks(old, hunks, {0}) == old.replace("two", "TWO")


def test_adjacent_changes_form_one_hunk():
    hunks = compute_hunks("a\nb\nc\n", "a\nB\nx\nc\n")
    assert len(hunks) == 1
    assert hunks[0].old_lines == ["b\n"] and hunks[0].new_lines == ["B\n", "x\n"]


def test_apply_hunks_rejects_foreign_hunks():
    hunks = compute_hunks("a\nb\n", "a\nc\n")
    with pytest.raises(ValueError):
        apply_hunks("x\ny\n", hunks, None)


def test_diff_stats():
    assert diff_stats("a\nb\n", "a\nc\nd\n") == (2, 1)
    assert diff_stats(None, "x\ny") == (2, 0)
    assert diff_stats("same", "same") == (0, 0)
    assert diff_stats("a", "a\n") == (1, 1)  # the last line gains a newline


# ------------------------------------------------------------------ unified diffs


def _check_patch(patch_text: str, old: str, new: str, path: str):
    patch = unidiff.PatchSet(patch_text)
    assert len(patch) == 1
    pf = patch[0]
    assert pf.target_file == f"b/{path}"
    added, removed = diff_stats(old, new)
    assert (pf.added, pf.removed) == (added, removed)
    a, b = split_lines(old), split_lines(new)
    for hunk in pf:
        src = [line for line in hunk if line.line_type in (" ", "-")]
        tgt = [line for line in hunk if line.line_type in (" ", "+")]
        assert len(src) == hunk.source_length and len(tgt) == hunk.target_length
        # Each line's text (newline normalised by the parser) matches the files.
        for line in src:
            assert line.value.rstrip("\r\n") == a[line.source_line_no - 1].rstrip("\r\n")
        for line in tgt:
            assert line.value.rstrip("\r\n") == b[line.target_line_no - 1].rstrip("\r\n")
    return patch


@settings(max_examples=300)
@given(text_pairs(), st.integers(0, 4))
def test_unified_diff_parses_and_counts_match(pair, context):
    old, new = pair
    text = unified_diff(old, new, "src/m.py", context=context)
    if old == new:
        assert text == ""
        return
    assert text.startswith("--- a/src/m.py\n+++ b/src/m.py\n@@ ")
    _check_patch(text, old, new, "src/m.py")
    # The marker follows exactly the shown lines that lack an ending.
    lines = text.split("\n")
    for k, line in enumerate(lines):
        if line == "\\ No newline at end of file":
            shown = lines[k - 1][1:]
            assert shown in (split_lines(old) or [""])[-1:] + (split_lines(new) or [""])[-1:]
            assert not shown.endswith("\r")


@given(texts())
def test_unified_diff_new_file(new):
    text = unified_diff(None, new, "pkg/new.txt")
    assert text.startswith("--- /dev/null\n+++ b/pkg/new.txt\n")
    patch = unidiff.PatchSet(text)
    assert patch[0].is_added_file
    assert patch[0].added == len(split_lines(new))
    assert patch[0].removed == 0


def test_unified_diff_exact_output():
    old = "a\nb\nc"
    new = "a\nB\nc\nd\n"
    assert unified_diff(old, new, "f.txt") == (
        "--- a/f.txt\n+++ b/f.txt\n@@ -1,3 +1,4 @@\n a\n-b\n-c\n\\ No newline at end of file\n+B\n+c\n+d\n"
    )
    assert unified_diff(None, "x\n", "n.txt") == "--- /dev/null\n+++ b/n.txt\n@@ -0,0 +1 @@\n+x\n"


def test_unified_diff_groups_close_hunks():
    old = "".join(f"line {i}\n" for i in range(40))
    new = old.replace("line 5\n", "LINE 5\n").replace("line 9\n", "LINE 9\n").replace("line 30\n", "X\n")
    assert len(compute_hunks(old, new)) == 3
    patch = unidiff.PatchSet(unified_diff(old, new, "f"))
    assert len(patch[0]) == 2  # 5 and 9 are within 2*3 lines: one @@ hunk
    assert len(unidiff.PatchSet(unified_diff(old, new, "f", context=1))[0]) == 3


@settings(max_examples=150)
@given(text_pairs())
def test_hunk_diffs_one_per_hunk(pair):
    old, new = pair
    hunks = compute_hunks(old, new)
    diffs = hunk_diffs(old, new, "f.py")
    assert [i for i, _ in diffs] == [h.id for h in hunks]
    for (i, text), h in zip(diffs, hunks):
        patch = unidiff.PatchSet(text)
        assert len(patch[0]) == 1
        assert (patch[0].added, patch[0].removed) == (len(h.new_lines), len(h.old_lines))
        added = [line.value.rstrip("\r\n") for line in patch[0][0] if line.is_added]
        assert added == [line.rstrip("\r\n") for line in h.new_lines]
        # It describes exactly "old with only this hunk applied".
        _check_patch(text, old, apply_hunks(old, hunks, {i}), "f.py")


@pytest.mark.skipif(shutil.which("patch") is None, reason="GNU patch not installed")
@settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(text_pairs())
def test_unified_diff_applies_with_gnu_patch(tmp_path, pair):
    old, new = pair
    if old == new:
        return
    target = tmp_path / "f.txt"
    target.write_bytes(old.encode())
    diff = unified_diff(old, new, "f.txt")
    proc = subprocess.run(
        ["patch", "--binary", "-s", "-p1", "-d", str(tmp_path), "--no-backup-if-mismatch"],
        input=diff.encode(),
        capture_output=True,
        timeout=10,
    )
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert target.read_bytes().decode() == new


# ------------------------------------------------------------------ speed


def test_large_file_scattered_edits_are_fast():
    rnd = random.Random(7)
    words = ["def", "return", "self", "x", "", "}", "if", "for", "value", "#"]
    lines = [" ".join(rnd.choice(words) for _ in range(rnd.randint(0, 6))) + "\n" for _ in range(20000)]
    old = "".join(lines)
    for i in rnd.sample(range(20000), 10):
        lines[i] = f"edited line {i}\n"
    new = "".join(lines)
    t = time.perf_counter()
    hunks = compute_hunks(old, new)
    elapsed = time.perf_counter() - t
    log.info("compute_hunks, 20k lines, 10 edits: %.1f ms", elapsed * 1000)
    assert apply_hunks(old, hunks) == new
    assert sum(len(h.new_lines) for h in hunks) <= 20  # local hunks, not a rewrite
    assert 1 <= len(hunks) <= 10


@settings(max_examples=300)
@given(text_pairs(eols=("\n", "\r\n", "\r")))
def test_anchored_matching_is_a_valid_diff(pair):
    """With the anchor threshold at 0 the patience-style path runs on small inputs too."""
    old, new = pair
    with mock.patch.object(diff_module, "_SMALL", 0):
        hunks = compute_hunks(old, new)
    assert apply_hunks(old, hunks) == new
    assert apply_hunks(old, hunks, set()) == old
    a, b = split_lines(old), split_lines(new)
    for h, nxt in zip(hunks, hunks[1:]):
        assert nxt.old_start > h.old_end
        assert a[h.old_end : nxt.old_start] == b[h.new_end : nxt.new_start]


def test_moved_block_still_diffs_correctly():
    block = [f"unique {i}\n" for i in range(300)]
    other = [f"other {i}\n" for i in range(300)]
    old = "".join(block + other)
    new = "".join(other + block)  # swapped: anchors must stay increasing
    hunks = compute_hunks(old, new)
    assert apply_hunks(old, hunks) == new
    assert sum(len(h.old_lines) for h in hunks) == 300  # one block kept, the other moved


@settings(max_examples=200)
@given(text_pairs(eols=("\n", "\r\n", "\r")), st.sampled_from(["myers", "difflib", "coarse"]))
def test_every_fallback_path_is_a_valid_diff(pair, path):
    """Large gaps without anchors: Myers, then difflib over budget, then one coarse replacement."""
    old, new = pair
    patches = {"_SMALL": 0, "_MAX_DEPTH": 0}
    if path != "myers":
        patches["_MYERS_BUDGET"] = -1
    if path == "coarse":
        patches["_SM_MAX_CELLS"] = -1
    with mock.patch.multiple(diff_module, **patches):
        hunks = compute_hunks(old, new)
    assert apply_hunks(old, hunks) == new
    assert apply_hunks(old, hunks, set()) == old
    a, b = split_lines(old), split_lines(new)
    for h, nxt in zip(hunks, hunks[1:]):
        assert nxt.old_start > h.old_end
        assert a[h.old_end : nxt.old_start] == b[h.new_end : nxt.new_start]
    if path == "myers":
        # Myers finds a minimal line diff: never more changed lines than difflib's.
        sm = difflib.SequenceMatcher(None, a, b, autojunk=False)
        matched = sum(size for _, _, size in sm.get_matching_blocks())
        assert sum(len(h.old_lines) for h in hunks) <= len(a) - matched


def test_repetitive_large_file_stays_fast_and_local():
    rnd = random.Random(5)
    lines = [rnd.choice("abcdefghij") + "\n" for _ in range(20000)]
    old = "".join(lines)
    for i in rnd.sample(range(20000), 10):
        lines[i] = "zz\n"
    new = "".join(lines)
    t = time.perf_counter()
    hunks = compute_hunks(old, new)
    log.info("repetitive 20k lines, 10 edits: %.1f ms", (time.perf_counter() - t) * 1000)
    assert apply_hunks(old, hunks) == new
    assert sum(len(h.old_lines) for h in hunks) == 10  # minimal: just the 10 replaced lines
