"""The session's todo list (the todo tool, ``tools/todo.py``): shown live, kept in the
session file, and put back in the context after a compaction summary."""

from __future__ import annotations

import logging
from collections.abc import Callable, Sequence
from typing import Any

from codeloop.context.todos import Todo, context_note, describe_changes, from_session, to_session
from codeloop.core.events import TodosChanged
from codeloop.core.ports import EventSink

log = logging.getLogger(__name__)


class SessionTodos:
    """Implements ``tools.base.TodoStore``: every change is an event and a session record."""

    def __init__(self, sink: EventSink, persist: Callable[[list[dict[str, str]]], None] | None = None,
                 tool: str = "the todo tool") -> None:
        self.sink = sink
        self.persist = persist
        self.tool = tool  # the tool's name, for the note after a summary
        self.items: list[Todo] = []

    def current(self) -> Sequence[Todo]:
        return list(self.items)

    def replace(self, todos: Sequence[Todo]) -> None:
        old, self.items = self.items, list(todos)
        if self.persist is not None:
            try:
                self.persist(to_session(self.items))
            except Exception:  # persistence must never break a turn
                log.exception("could not persist the todo list")
        self.sink.emit(self.event(describe_changes(old, self.items)))

    def restore(self, saved: Any) -> list[str]:
        """The list from a resumed session file; returns the problems (items dropped)."""
        self.items, problems = from_session(saved)
        return problems

    def event(self, changes: Sequence[str] = ()) -> TodosChanged:
        return TodosChanged(tuple(t.to_json() for t in self.items), tuple(changes))

    def note(self) -> str | None:
        """The list as it stands in the context after a compaction summary (None: empty)."""
        return context_note(self.items, self.tool)


__all__ = ["SessionTodos"]
