"""The todo list of the todo tool (Claude Code's ``TodoWrite``), in its schema (pure functions).

``{"todos": [{"content": "Run the tests", "activeForm": "Running the tests",
"status": "pending" | "in_progress" | "completed"}]}`` — each call replaces the whole list.

- :func:`parse_todo_write` validates a call's arguments (every problem in one clear error);
- :func:`tool_result` / :func:`render_for_model` are what the model reads, compact;
- :func:`render_checklist` is the CLI's checklist, :func:`progress_message` the one line
  of a ``$/progress`` report, :func:`describe_changes` what changed between two lists;
- :func:`to_session` / :func:`from_session` keep the list in the session file (resume),
  and :func:`context_note` puts it back in the context after a compaction summary.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Literal

Status = Literal["pending", "in_progress", "completed"]
STATUSES: tuple[Status, ...] = ("pending", "in_progress", "completed")
MAX_TODOS = 100
MAX_TEXT = 500
SESSION_KEY = "todos"

TODO_WRITE_SCHEMA: dict[str, Any] = {
    "type": "object",
    "properties": {
        "todos": {
            "type": "array",
            "description": "The whole list (it replaces the last one).",
            "items": {
                "type": "object",
                "properties": {
                    "content": {"type": "string", "minLength": 1,
                                "description": "\"Run the tests\""},
                    "activeForm": {"type": "string", "minLength": 1,
                                   "description": "\"Running the tests\""},
                    "status": {"type": "string", "enum": list(STATUSES)},
                },
                "required": ["content", "activeForm", "status"],
            },
        }
    },
    "required": ["todos"],
}


class TodoError(ValueError):
    """A todo tool call that cannot be taken; the message lists every problem."""


@dataclass(frozen=True, slots=True)
class Todo:
    content: str
    active_form: str
    status: Status

    def to_json(self) -> dict[str, str]:
        return {"content": self.content, "activeForm": self.active_form, "status": self.status}


_SYNONYMS = {"done": "completed", "complete": "completed", "in-progress": "in_progress", "in progress": "in_progress",
             "inprogress": "in_progress", "todo": "pending", "open": "pending"}


def _check_item(i: int, item: Any, errors: list[str]) -> Todo | None:
    where = f"todos[{i}]"
    if not isinstance(item, Mapping):
        errors.append(f"{where} must be an object with content, activeForm and status, not {type(item).__name__}")
        return None
    ok = True
    texts: dict[str, str] = {}
    for key in ("content", "activeForm"):
        v = item.get(key)
        if v is None:
            errors.append(f"{where}.{key} is missing" + (
                ' (the task as it is being done, e.g. "Running the tests")' if key == "activeForm" else ""))
            ok = False
        elif not isinstance(v, str) or not v.strip():
            errors.append(f"{where}.{key} must be non-empty text")
            ok = False
        elif len(v) > MAX_TEXT:
            errors.append(f"{where}.{key} is {len(v)} characters long; keep it under {MAX_TEXT}")
            ok = False
        else:
            texts[key] = " ".join(v.split())
    status = item.get("status")
    known = next((st for st in STATUSES if st == status), None)
    if known is None:
        hint = _SYNONYMS.get(str(status).strip().lower()) if isinstance(status, str) else None
        errors.append(f"{where}.status {status!r} is not one of {', '.join(STATUSES)}"
                      + (f" (did you mean {hint!r}?)" if hint else ""))
        ok = False
    if not ok or known is None:
        return None
    return Todo(texts["content"], texts["activeForm"], known)


def parse_todo_write(args: Any) -> list[Todo]:
    """The new list from a todo tool call's arguments. Raises TodoError.

    Accepts the list given as a JSON string too (``{"todos": "[...]"}``), which some
    models send. Unknown item fields (Claude Code's older ``id``, ``priority``) are ignored.
    """
    if isinstance(args, str):
        try:
            args = json.loads(args)
        except json.JSONDecodeError as e:
            raise TodoError(f"the arguments are not JSON ({e.msg}); send {{\"todos\": [...]}}") from None
    if not isinstance(args, Mapping) or "todos" not in args:
        raise TodoError('send {"todos": [{"content": …, "activeForm": …, "status": "pending"}, …]}: '
                        "the complete list, which replaces the previous one")
    todos = args["todos"]
    if isinstance(todos, str):
        try:
            todos = json.loads(todos)
        except json.JSONDecodeError:
            raise TodoError("todos must be a list of objects, not text") from None
    if not isinstance(todos, list):
        raise TodoError(f"todos must be a list of objects, not {type(todos).__name__}")
    if len(todos) > MAX_TODOS:
        raise TodoError(f"todos holds {len(todos)} items; keep the list under {MAX_TODOS}")
    errors: list[str] = []
    out = [t for i, item in enumerate(todos) if (t := _check_item(i, item, errors)) is not None]
    if errors:
        raise TodoError("the todo list was not changed: " + "; ".join(errors))
    return out


def counts(todos: Sequence[Todo]) -> dict[str, int]:
    c: dict[str, int] = {s: 0 for s in STATUSES}
    for t in todos:
        c[t.status] += 1
    return c


_MODEL_MARK = {"completed": "[x]", "in_progress": "[>]", "pending": "[ ]"}
_ASCII_MARK = _MODEL_MARK
_UNICODE_MARK = {"completed": "☒", "in_progress": "◼", "pending": "☐"}


def render_for_model(todos: Sequence[Todo]) -> str:
    """The list as the model reads it: one line a task, status first."""
    if not todos:
        return "The todo list is empty."
    c = counts(todos)
    lines = [f"Todo list ({c['completed']}/{len(todos)} completed):"]
    lines += [f"{_MODEL_MARK[t.status]} {t.content}" for t in todos]
    return "\n".join(lines)


def tool_result(todos: Sequence[Todo]) -> str:
    """What the todo tool answers: the list it now holds, and a nudge when it looks off."""
    text = "Todo list updated.\n" + render_for_model(todos)
    busy = counts(todos)["in_progress"]
    if busy > 1:
        text += f"\nNote: {busy} tasks are in progress; keep one in progress at a time."
    return text


def render_checklist(todos: Sequence[Todo], *, unicode: bool = True) -> str:
    """The CLI's checklist: a task in progress shows its activeForm."""
    marks = _UNICODE_MARK if unicode else _ASCII_MARK
    return "\n".join(
        f"{marks[t.status]} {t.active_form if t.status == 'in_progress' else t.content}" for t in todos
    )


def progress_message(todos: Sequence[Todo]) -> str:
    """One line for a ``$/progress`` report: ``2/5 done · Running the tests``."""
    if not todos:
        return "no todos"
    c = counts(todos)
    head = f"{c['completed']}/{len(todos)} done"
    current = next((t for t in todos if t.status == "in_progress"), None)
    if current is not None:
        return f"{head} · {current.active_form}"
    upcoming = next((t for t in todos if t.status == "pending"), None)
    return f"{head} · next: {upcoming.content}" if upcoming else head


def progress_percentage(todos: Sequence[Todo]) -> int | None:
    """0–100 for a ``$/progress`` report's percentage; None for an empty list."""
    if not todos:
        return None
    return round(100 * counts(todos)["completed"] / len(todos))


def describe_changes(old: Sequence[Todo], new: Sequence[Todo]) -> list[str]:
    """What one call changed, by task: ``started: …``, ``completed: …``, ``added: …``, ``removed: …``."""
    before = {t.content: t for t in old}
    after = {t.content for t in new}
    out: list[str] = []
    for t in new:
        prev = before.get(t.content)
        if prev is None:
            out.append(f"added: {t.content}")
        elif prev.status != t.status:
            verb = {"completed": "completed", "in_progress": "started", "pending": "reopened"}[t.status]
            out.append(f"{verb}: {t.content}")
    out += [f"removed: {t.content}" for t in old if t.content not in after]
    return out


def to_session(todos: Iterable[Todo]) -> list[dict[str, str]]:
    """The list for the session file (Claude Code's field names)."""
    return [t.to_json() for t in todos]


def from_session(data: Any) -> tuple[list[Todo], list[str]]:
    """The list back from the session file; unreadable items are left out and named."""
    if data is None:
        return [], []
    if isinstance(data, Mapping) and SESSION_KEY in data:
        data = data[SESSION_KEY]
    if not isinstance(data, list):
        return [], [f"the saved todo list is not a list ({type(data).__name__}); it was dropped"]
    out: list[Todo] = []
    problems: list[str] = []
    for i, item in enumerate(data):
        errs: list[str] = []
        t = _check_item(i, item, errs)
        if t is None:
            problems.append(f"saved todo {i} was dropped: {'; '.join(errs)}")
        else:
            out.append(t)
    return out, problems


def context_note(todos: Sequence[Todo], tool: str = "the todo tool") -> str | None:
    """The list as it must stand in the context after a compaction summary (None: empty);
    ``tool`` is the name the model updates it with."""
    if not todos:
        return None
    return (f"Your current todo list (kept across the summary; update it with {tool} as you go):\n"
            + render_for_model(todos))
