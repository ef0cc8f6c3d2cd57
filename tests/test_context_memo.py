import re
from pathlib import Path

from codeloop.context.memo import FileReadMemo
from codeloop.core.ports import ReadMemo

ROOT = Path("/ws")
P = ROOT / "src" / "app.py"
TEXT = "".join(f"value_{i} = {i}\n" for i in range(1, 201))


def test_implements_the_port():
    memo: ReadMemo = FileReadMemo()
    assert memo.recall(P, TEXT, 1, 0) is None


def test_unchanged_reread_is_a_short_note_with_how_to_get_it_again():
    memo = FileReadMemo(root=ROOT)
    assert memo.recall(P, TEXT, 1, 100) is None  # first read: send in full
    memo.remember(P, TEXT, 1, 100)
    note = memo.recall(P, TEXT, 1, 100, 'call read_file with "fresh": true')
    assert note is not None and len(note) < 400
    assert "unchanged since your read at step 1" in note
    assert "lines 1-100 of src/app.py" in note
    assert 'call read_file with "fresh": true' in note, "the reading tool's own words say how to get it again"
    # a sub-range of what was read is also unchanged
    assert "lines 10-20" in memo.recall(P, TEXT, 10, 11)
    # lines never read are sent in full
    assert memo.recall(P, TEXT, 90, 20) is None


def test_reread_after_small_edit_is_a_diff_with_line_numbers():
    memo = FileReadMemo(root=ROOT)
    memo.remember(P, TEXT, 1, 0)
    edited = TEXT.replace("value_50 = 50\n", "value_50 = 5000\nextra = True\n")
    out = memo.recall(P, edited, 1, 0)
    assert out is not None
    assert "changed since your read at step 1" in out
    assert "@@ -48,5 +48,6 @@" in out
    assert "-value_50 = 50" in out and "+value_50 = 5000" in out and "+extra = True" in out
    assert len(out) < len(edited) / 5
    # the diff brought the model up to date: the next re-read is unchanged
    assert "unchanged since your read" in memo.recall(P, edited, 1, 0)


def test_big_change_is_sent_in_full():
    memo = FileReadMemo()
    memo.remember(P, TEXT, 1, 0)
    rewritten = "".join(f"other_{i} = {i * 2}\n" for i in range(1, 201))
    assert memo.recall(P, rewritten, 1, 0) is None


def test_edit_above_a_range_reports_the_move():
    memo = FileReadMemo(root=ROOT)
    memo.remember(P, TEXT, 100, 20)
    shifted = "import os\n" + TEXT
    note = memo.recall(P, shifted, 101, 20)
    assert note and "unchanged" in note and "as lines 100-119" in note and "+1 lines" in note


def test_forget_and_forget_all():
    memo = FileReadMemo()
    other = ROOT / "b.py"
    memo.remember(P, TEXT, 1, 0)
    memo.remember(other, TEXT, 1, 0)
    memo.forget(P)
    assert memo.recall(P, TEXT, 1, 0) is None
    assert memo.recall(other, TEXT, 1, 0) is not None
    memo.forget_all()
    assert memo.recall(other, TEXT, 1, 0) is None


def test_steps_come_from_the_clock():
    step = {"n": 7}
    memo = FileReadMemo(clock=lambda: step["n"])
    memo.remember(P, TEXT, 1, 0)
    assert re.search(r"step 7\b", memo.recall(P, TEXT, 1, 0))
