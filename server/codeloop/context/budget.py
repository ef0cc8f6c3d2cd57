"""Output budgets: how much tool output the model gets per call and per turn.

A tool result larger than what is left is cut to its head and tail, with a note in
the middle saying how much was left out and exactly how to get more.
"""

from __future__ import annotations

DEFAULT_PER_CALL_CHARS = 30_000
DEFAULT_PER_TURN_CHARS = 200_000
# Even with the turn's budget spent, a result keeps this much (and the note).
MIN_CHARS = 400
_HEAD_SHARE = 0.6


class OutputBudget:
    def __init__(
        self,
        per_call_chars: int = DEFAULT_PER_CALL_CHARS,
        per_turn_chars: int = DEFAULT_PER_TURN_CHARS,
    ) -> None:
        if per_call_chars < 1 or per_turn_chars < 1:
            raise ValueError("budgets must be positive")
        self.per_call_chars = per_call_chars
        self.per_turn_chars = per_turn_chars
        self.used = 0  # characters handed to the model this turn
        self.truncations = 0  # results cut this turn

    @property
    def remaining(self) -> int:
        return max(0, self.per_turn_chars - self.used)

    def new_turn(self) -> None:
        self.used = 0
        self.truncations = 0

    def allowance(self) -> int:
        """The most characters the next result may have."""
        return max(MIN_CHARS, min(self.per_call_chars, self.remaining))

    def fit(self, text: str, *, how_to_get_more: str) -> str:
        """``text`` if it fits what is left, else its head and tail with a note."""
        allowed = self.allowance()
        if len(text) <= allowed:
            self.used += len(text)
            return text
        out = _cut(text, allowed, how_to_get_more, turn_spent=self.remaining < self.per_call_chars)
        self.used += len(out)
        self.truncations += 1
        return out


def cut(text: str, allowed: int, how_to_get_more: str, why: str) -> str:
    """``text`` cut to about ``allowed`` characters (head and tail, with a note saying
    ``why`` and how to get more); ``text`` itself if it fits."""
    if len(text) <= allowed:
        return text
    return _cut(text, max(MIN_CHARS, allowed), how_to_get_more, turn_spent=False, why=why)


def _cut(text: str, allowed: int, hint: str, *, turn_spent: bool, why: str | None = None) -> str:
    total_lines = text.count("\n") + (0 if text.endswith("\n") else 1)
    if why is None:
        why = "this turn's output budget is nearly spent" if turn_spent else "the output was too long"

    def note(omitted_chars: int, first_line: int, last_line: int) -> str:
        lines = f"lines {first_line}-{last_line} of {total_lines}" if last_line >= first_line else "part of a line"
        return (
            f"\n[... {omitted_chars} of {len(text)} characters left out ({lines}) because {why}. "
            f"To get more: {hint}.]\n"
        )

    # Size the note with the widest numbers it can hold, then split what is left.
    room = max(0, allowed - len(note(len(text), total_lines, total_lines)))
    head_len = int(room * _HEAD_SHARE)
    tail_len = room - head_len
    head = text[:head_len]
    # Prefer whole lines: back the head up to its last newline, push the tail's start
    # forward past its first one, when that loses little.
    nl = head.rfind("\n")
    if nl >= head_len // 2:
        head = head[: nl + 1]
    tail_start = len(text) - tail_len
    if tail_len:
        nl = text.find("\n", tail_start)
        if nl != -1 and nl + 1 - tail_start <= tail_len // 2:
            tail_start = nl + 1
    tail = text[tail_start:] if tail_len else ""
    first_line = head.count("\n") + 1
    last_line = total_lines - tail.count("\n") - (0 if not tail or tail.endswith("\n") else 1)
    omitted = len(text) - len(head) - len(tail)
    return head + note(omitted, first_line, last_line).lstrip("\n" if head.endswith("\n") else "") + tail
