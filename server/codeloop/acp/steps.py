"""A sub-agent's steps as the text of its task call (pure; ACP has no nested tool calls).

The task tool's call shows, as it goes, what its sub-agent does: each of its tool calls
(and how it ended), what it said between them, the hooks that ran, its warnings. The
latest ``SHOWN`` steps are listed; earlier ones are counted. The sub-agent's calls that
change something also appear as tool calls of their own (their diffs, terminals and
permissions need one): see ``events.py``.
"""

from __future__ import annotations

from dataclasses import dataclass

SHOWN = 30  # the steps listed (the latest); the earlier ones are counted
TEXT_CHARS = 300  # of what the sub-agent says, per step


@dataclass
class Step:
    agent: str
    text: str  # the call (its name and summary), "says: ...", a hook's line
    call_id: str = ""  # a tool call's step: updated when it ends
    outcome: str = ""
    ok: bool | None = None  # None: running (or not a call)


def said(text: str) -> str:
    """What a sub-agent said in one step, on one line."""
    line = " ".join(text.split())
    return line if len(line) <= TEXT_CHARS else line[: TEXT_CHARS - 1].rstrip() + "…"


def render(steps: list[Step]) -> str:
    agents = list(dict.fromkeys(s.agent for s in steps))
    calls = sum(1 for s in steps if s.call_id)
    head = (f"Sub-agent {', '.join(agents)}: {calls} tool call{'s' if calls != 1 else ''}"
            + ("" if all(s.ok is not None for s in steps if s.call_id) else ", working"))
    lines = [head, ""]  # a Markdown list: clients render text content as Markdown
    if len(steps) > SHOWN:
        lines.append(f"- … {len(steps) - SHOWN} earlier steps")
    for s in steps[-SHOWN:]:
        mark = "·" if not s.call_id else "…" if s.ok is None else "✓" if s.ok else "✗"
        tail = f" → {s.outcome}" if s.outcome else ""
        lines.append(f"- {mark} {s.text}{tail}")
    return "\n".join(lines)


__all__ = ["SHOWN", "Step", "render", "said"]
