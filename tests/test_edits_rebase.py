"""The stale-edit race: rebasing accepted hunks onto the user's newer text (codeloop.edits.rebase)."""

from __future__ import annotations

from hypothesis import given, settings
from hypothesis import strategies as st

from codeloop.edits.diff import apply_hunks, compute_hunks, split_lines
from codeloop.edits.rebase import excerpt, rebase

BASE = "".join(f"line {i}\n" for i in range(1, 31))  # "line 1" .. "line 30"


def _sub(text: str, old: str, new: str) -> str:
    assert old in text
    return text.replace(old, new, 1)


def test_current_equal_to_base_is_apply_hunks():
    proposed = _sub(_sub(BASE, "line 3\n", "THREE\n"), "line 20\n", "TWENTY\n")
    hunks = compute_hunks(BASE, proposed)
    for accepted in (None, set(), {0}, {1}, {0, 1}):
        r = rebase(BASE, proposed, BASE, accepted)
        assert r.ok and r.conflicts == []
        assert r.text == apply_hunks(BASE, hunks, accepted)


def test_user_edits_far_away_are_kept_with_the_accepted_hunks():
    proposed = _sub(_sub(BASE, "line 3\n", "THREE\n"), "line 25\n", "TWENTY-FIVE\n")
    current = _sub(BASE, "line 14\n", "line 14 typed by the user\nand another line\n")
    r = rebase(BASE, proposed, current)
    assert r.ok, r.message
    expected = _sub(_sub(current, "line 3\n", "THREE\n"), "line 25\n", "TWENTY-FIVE\n")
    assert r.text == expected
    assert "line 14 typed by the user" in r.message or "lines 14-15" in r.message
    # Only the accepted hunk lands.
    r = rebase(BASE, proposed, current, {1})
    assert r.ok and r.text == _sub(current, "line 25\n", "TWENTY-FIVE\n")
    # Nothing accepted: the user's text as is.
    r = rebase(BASE, proposed, current, set())
    assert r.ok and r.text == current


def test_overlapping_edit_is_refused_and_reported():
    proposed = _sub(BASE, "line 11\n", "ELEVEN\n")
    current = _sub(BASE, "line 11\n", "line 11 # user comment\n")
    r = rebase(BASE, proposed, current)
    assert not r.ok
    assert r.text is None
    assert [h.id for h in r.conflicts] == [0]
    assert r.conflicts[0].old_lines == ["line 11\n"]
    assert "line 11" in r.message and "hunk 0" in r.message
    assert "nothing was applied" in r.message
    assert "line 11 # user comment" in r.message  # the model sees the current text


def test_touching_and_adjacent_insertions_count_as_overlap():
    proposed = _sub(BASE, "line 11\n", "ELEVEN\n")
    # The user changed the very next line.
    assert not rebase(BASE, proposed, _sub(BASE, "line 12\n", "twelve!\n")).ok
    # The user inserted a line right after / right before the proposed hunk.
    assert not rebase(BASE, proposed, _sub(BASE, "line 12\n", "new\nline 12\n")).ok
    assert not rebase(BASE, proposed, _sub(BASE, "line 11\n", "new\nline 11\n")).ok
    # One untouched line between them is enough.
    r = rebase(BASE, proposed, _sub(BASE, "line 13\n", "thirteen!\n"))
    assert r.ok and r.text == _sub(_sub(BASE, "line 13\n", "thirteen!\n"), "line 11\n", "ELEVEN\n")
    # A proposed insertion next to a user insertion at the same place.
    ins = _sub(BASE, "line 5\n", "line 5\nagent\n")
    assert not rebase(BASE, ins, _sub(BASE, "line 5\n", "line 5\nuser\n")).ok


def test_only_accepted_hunks_are_checked_for_conflicts():
    proposed = _sub(_sub(BASE, "line 2\n", "TWO\n"), "line 20\n", "TWENTY\n")
    current = _sub(BASE, "line 20\n", "line 20 edited\n")
    r = rebase(BASE, proposed, current)
    assert not r.ok and [h.id for h in r.conflicts] == [1]
    r = rebase(BASE, proposed, current, {0})  # the user rejected the conflicting hunk
    assert r.ok and r.text == _sub(current, "line 2\n", "TWO\n")


def test_user_deleting_lines_and_file_without_trailing_newline():
    base = "a\nb\nc\nd\ne\nf\ng"
    proposed = "A\nb\nc\nd\ne\nf\ng"
    current = "a\nb\nc\nd\ne\nf\ng\nh\n"  # the user appended at the end
    r = rebase(base, proposed, current)
    assert r.ok and r.text == "A\nb\nc\nd\ne\nf\ng\nh\n"
    current = "a\nb\nc\nf\ng"  # the user deleted d, e
    r = rebase(base, proposed, current)
    assert r.ok and r.text == "A\nb\nc\nf\ng"
    # The agent adds a final line while the user edits the last line: conflict.
    assert not rebase(base, base + "\nh", "a\nb\nc\nd\ne\nf\nG").ok


# ------------------------------------------------------------------ properties

CONTENTS = st.sampled_from(["a", "b", "c", "foo", "bar", "😀", "x y", "", "}"])


@st.composite
def edited(draw, lines: list[str], tag: str):
    """Apply a few random line edits; new lines carry ``tag`` so their origin is known."""
    out = list(lines)
    for n in range(draw(st.integers(0, 3))):
        i = draw(st.integers(0, len(out)))
        op = draw(st.sampled_from(["replace", "insert", "delete"]))
        eol = draw(st.sampled_from(["\n", "\r\n"]))
        new_line = f"{tag}{n} {draw(CONTENTS)}{eol}"
        if op == "insert" or not out:
            out.insert(i, new_line)
        elif op == "replace":
            out[min(i, len(out) - 1)] = new_line
        else:
            del out[min(i, len(out) - 1)]
    return out


@st.composite
def triples(draw):
    base_lines = [f"{draw(CONTENTS)} {k}\n" for k in range(draw(st.integers(0, 25)))]
    base = "".join(base_lines)
    if base and draw(st.booleans()):
        base = base[:-1]
        base_lines = split_lines(base)
    proposed = "".join(draw(edited(base_lines, "agent")))
    current = "".join(draw(edited(base_lines, "user")))
    return base, proposed, current


@settings(max_examples=400)
@given(triples(), st.data())
def test_rebase_never_loses_user_text(triple, data):
    base, proposed, current = triple
    hunks = compute_hunks(base, proposed)
    accepted = data.draw(st.none() | st.sets(st.sampled_from([h.id for h in hunks] or [0])))
    r = rebase(base, proposed, current, accepted)
    if not r.ok:
        assert r.text is None and r.conflicts
        assert all(accepted is None or h.id in accepted for h in r.conflicts)
        return
    assert r.conflicts == []
    result_lines = split_lines(r.text)
    # Every line the user added is still there, in order.
    user_added = [line for u in compute_hunks(base, current) for line in u.new_lines]
    assert _is_subsequence([line.rstrip("\r\n") for line in user_added], [x.rstrip("\r\n") for x in result_lines])
    for u in compute_hunks(base, current):
        if u.new_lines:
            assert "".join(u.new_lines).rstrip("\r\n") in r.text
    # Every accepted hunk landed.
    for h in hunks:
        if accepted is None or h.id in accepted:
            if h.new_lines:
                assert "".join(h.new_lines).rstrip("\r\n") in r.text
    # Lines the agent wrote only appear when accepted.
    rejected_agent = {
        line for h in hunks if accepted is not None and h.id not in accepted for line in h.new_lines
    }
    for line in result_lines:
        if line.startswith("agent"):
            assert line not in rejected_agent or any(
                line in h.new_lines for h in hunks if accepted is None or h.id in accepted
            )
    if current == base:
        assert r.text == apply_hunks(base, hunks, accepted)
    if accepted is None:
        # Symmetric: the user's edits rebased onto the full proposal give the same text.
        other = rebase(base, current, proposed)
        assert other.ok and other.text == r.text


def _is_subsequence(needles: list[str], hay: list[str]) -> bool:
    it = iter(hay)
    return all(any(x == y for y in it) for x in needles)


def test_excerpt_numbers_and_marks_lines():
    text = "".join(f"l{i}\n" for i in range(1, 13))
    out = excerpt(text, 5, 7, context=2)
    assert out.splitlines() == [
        " 4 | l4",
        " 5 | l5",
        ">6 | l6",
        ">7 | l7",
        " 8 | l8",
        " 9 | l9",
    ]
    assert excerpt("a\r\nb", 0, 1, context=0) == ">1 | a"
    assert excerpt("", 0, 0) == ""
    wide = excerpt(text, 9, 10, context=1)
    assert wide.splitlines() == ["  9 | l9", ">10 | l10", " 11 | l11"]
