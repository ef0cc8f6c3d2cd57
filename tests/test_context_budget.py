import pytest

from codeloop.context.budget import MIN_CHARS, OutputBudget

TEXT = "".join(f"line {i}: some output here\n" for i in range(1, 2001))
HINT = 'call read_command_output with id="c1" and an offset'


def test_small_results_pass_untouched_and_are_accounted():
    b = OutputBudget(per_call_chars=1000, per_turn_chars=5000)
    assert b.fit("short", how_to_get_more=HINT) == "short"
    assert b.used == 5
    assert b.remaining == 4995


def test_long_result_keeps_head_and_tail_with_exact_hint():
    b = OutputBudget(per_call_chars=2000, per_turn_chars=100_000)
    out = b.fit(TEXT, how_to_get_more=HINT)
    assert len(out) <= 2000
    assert out.startswith("line 1: ")
    assert out.rstrip().endswith("line 2000: some output here")
    assert "To get more: " + HINT in out
    assert f"of {len(TEXT)} characters left out" in out
    # the note names the omitted lines, and they really are omitted
    import re

    m = re.search(r"lines (\d+)-(\d+) of 2000", out)
    assert m
    first, last = int(m.group(1)), int(m.group(2))
    assert f"line {first - 1}: " in out and f"\nline {first}: " not in out
    assert f"line {last + 1}: " in out and f"\nline {last}: " not in out
    assert b.truncations == 1


def test_turn_budget_shrinks_later_results_and_resets():
    b = OutputBudget(per_call_chars=3000, per_turn_chars=4000)
    first = b.fit(TEXT, how_to_get_more=HINT)
    assert len(first) <= 3000
    second = b.fit(TEXT, how_to_get_more=HINT)
    assert len(second) <= max(MIN_CHARS, 4000 - len(first))
    assert "output budget is nearly spent" in second
    b.new_turn()
    assert b.used == 0
    assert len(b.fit(TEXT, how_to_get_more=HINT)) > len(second)


def test_invalid_budget():
    with pytest.raises(ValueError):
        OutputBudget(0, 10)
