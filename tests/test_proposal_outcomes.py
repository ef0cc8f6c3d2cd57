"""The pure parts of landing a proposal (``services/hunks.py``) and of a code action's range
(``services/quickfix.py``): what lands for hunk ticks and the user's edits, whether an edit
reached the document, what the model is told."""

from __future__ import annotations

from hypothesis import given, settings
from hypothesis import strategies as st

from codeloop.edits.diff import apply_hunks, compute_hunks
from codeloop.services.hunks import change_present, describe_landed, map_line, plan_file
from codeloop.services.quickfix import Span, enclosing_block, focus_span

OLD = "".join(f"line {i}\n" for i in range(1, 31))
NEW = OLD.replace("line 3\n", "line THREE\n").replace("line 15\n", "").replace("line 27\n", "line 27\nline 27b\n")
HUNKS = compute_hunks(OLD, NEW)


def test_three_hunks():
    assert len(HUNKS) == 3


def test_ticks_alone_apply_the_ticked_hunks():
    for ticked in ({0}, {1}, {2}, {0, 2}, set()):
        plan = plan_file(OLD, NEW, HUNKS, ticked, None)
        assert plan.target == apply_hunks(OLD, HUNKS, ticked)
        assert plan.accepted == sorted(ticked) and plan.rejected == sorted({0, 1, 2} - ticked)
        assert not plan.user_edited


def test_an_edit_without_unticked_hunks_lands_as_edited():
    edited = NEW.replace("line 20\n", "line twenty\n")
    plan = plan_file(OLD, NEW, HUNKS, None, edited)
    assert plan.target == edited and plan.user_edited and plan.rejected == []


def test_ticks_win_for_unticked_hunks_and_other_user_edits_stay():
    edited = NEW.replace("line THREE\n", "line THREE!\n").replace("line 20\n", "line twenty\n")
    plan = plan_file(OLD, NEW, HUNKS, {1, 2}, edited)
    expected = apply_hunks(OLD, HUNKS, {1, 2}).replace("line 20\n", "line twenty\n")
    assert plan.target == expected  # hunk 0 (line 3) is the original, the edit inside it went with it
    assert plan.dropped_edits == [0] and plan.user_edited


@settings(max_examples=150, deadline=None)
@given(ticked=st.sets(st.sampled_from([0, 1, 2])), edit_line=st.integers(0, 31), text=st.sampled_from(["x\n", "", "y\ny\n"]))
def test_unticked_hunks_never_land_whatever_the_user_edited(ticked, edit_line, text):
    lines = NEW.splitlines(keepends=True)
    at = min(edit_line, len(lines))
    edited = "".join(lines[:at] + [text] + lines[at + (1 if text == "" and at < len(lines) else 0):])
    plan = plan_file(OLD, NEW, HUNKS, ticked, edited)
    for h in HUNKS:
        if h.id in ticked:
            continue
        # The hunk's proposed lines are not in the result where it would have put them.
        if h.new_lines and h.new_lines != h.old_lines:
            assert "".join(h.new_lines) not in plan.target or "".join(h.new_lines) in OLD
        # Its original lines are there (an unticked deletion is not applied).
        if h.old_lines:
            assert "".join(h.old_lines) in plan.target


def test_change_present_sees_a_dropped_edit():
    before = OLD
    final = NEW
    assert change_present(before, final, final)
    assert change_present(before, final, "typed\n" + final)  # applied, then the user typed
    assert change_present(before, final, final + "typed\n")
    assert not change_present(before, final, before)  # dropped
    assert not change_present(before, final, "typed\n" + before)  # dropped while the user typed
    assert change_present(before, before, before)  # nothing to apply is trivially there


@settings(max_examples=150, deadline=None)
@given(typed_at=st.integers(0, 30), typed=st.text("abc", min_size=1, max_size=5))
def test_change_present_property(typed_at, typed):
    """The user's typing on a line the change did not touch never hides the change, and never
    makes a dropped change look applied."""
    before = OLD
    final = OLD.replace("line 15\n", "line FIFTEEN\n")
    if typed_at in (13, 14, 15):  # next to or on the changed line: ambiguous, skip
        return
    def insert(text: str) -> str:
        lines = text.splitlines(keepends=True)
        return "".join(lines[:typed_at] + [typed + "\n"] + lines[typed_at:])
    assert change_present(before, final, insert(final))
    assert not change_present(before, final, insert(before))


def test_map_line_follows_insertions_and_deletions():
    a = "a\nb\nc\nd\n"
    b = "top\na\nc\nd\n"
    assert map_line(a, b, 0) == 1 and map_line(a, b, 2) == 2 and map_line(a, b, 3) == 3


def test_the_model_is_told_which_hunks_by_line_with_the_rejected_text():
    plan = plan_file(OLD, NEW, HUNKS, {0, 2}, None)
    text = describe_landed("f.txt", OLD, HUNKS, plan, plan.target)
    assert "accepted 2 of 3 hunks" in text
    assert "accepted: hunk 1 of 3, now line 3 of the file" in text
    assert "REJECTED: hunk 2 of 3, line 15 of the file" in text and "-line 15" in text
    assert "accepted: hunk 3 of 3, now line 28 of the file" in text  # an inserted line
    # After a rebase onto two lines the user typed at the top, the ranges follow.
    final = "u1\nu2\n" + plan.target
    text = describe_landed("f.txt", OLD, HUNKS, plan, final, "rebased")
    assert "now line 5 of the file" in text and "line 17 of the file" in text and "(+2 -1)" in text


CODE = '''import os


class Shape:
    @property
    def area(self):
        return 1

    def name(self):
        return "shape"


def main():
    s = Shape()
    print(s.area)
'''


def test_a_cursor_means_the_enclosing_definition_or_the_line():
    assert enclosing_block(CODE, 6) == (4, 7)  # in area(): the decorator belongs to it
    assert enclosing_block(CODE, 9) == (8, 10)
    assert enclosing_block(CODE, 14) == (12, 15)
    assert enclosing_block(CODE, 0) is None
    span, scope = focus_span(CODE, Span(0, 3, 0, 3))
    assert scope == "line" and (span.start_line, span.end_line, span.end_character) == (0, 0, len("import os"))
    span, scope = focus_span(CODE, Span(13, 2, 13, 2))
    assert scope == "function" and (span.start_line, span.end_line) == (12, 15)
    sel = Span(1, 0, 2, 0)
    assert focus_span(CODE, sel) == (sel, "selection")
