"""todo_write: the session's todo list, in Claude Code's schema (``TodoWrite``).

Each call replaces the whole list. The list itself is the session's (``ctx.todos``):
the host shows it live, keeps it in the session file and puts it back in the context
after a compaction summary. The checks and the texts are ``codeloop.context.todos``.
"""

from __future__ import annotations

from typing import Any

from codeloop.context.todos import TODO_WRITE_SCHEMA, Todo, TodoError, parse_todo_write, tool_result
from codeloop.tools.base import ArgumentsError, BaseTool, ToolContext, ToolError, ToolResult


class TodoWrite(BaseTool):
    name = "todo_write"
    description = (
        "The task's todo list, shown to the user, for work of 3+ steps: mark one in_progress before "
        "starting it and completed when done; add what you discover."
    )
    read_only = True  # it changes the session's list, nothing in the workspace
    kind = None
    activity = "think"  # planning, for clients that show calls by kind (ACP)
    claude_names = ("TodoWrite",)
    for_subagents = False  # the list is the parent conversation's

    def parameters(self) -> dict[str, Any]:
        return TODO_WRITE_SCHEMA

    def validate(self, data: dict[str, Any]) -> list[Todo]:
        try:
            return parse_todo_write(data)
        except TodoError as e:
            raise ArgumentsError(str(e)) from None

    def concurrent(self, args: Any) -> bool:
        return False  # two lists in one step: the later one wins, in order

    def summary(self, args: list[Todo]) -> str:
        current = next((t for t in args if t.status == "in_progress"), None)
        done = sum(1 for t in args if t.status == "completed")
        head = f"{done}/{len(args)} done"
        return f"{head} · {current.active_form}" if current is not None else head

    def outcome(self, args: list[Todo], result: ToolResult) -> str:
        return self.summary(args) if result.ok else super().outcome(args, result)

    async def run(self, args: list[Todo], ctx: ToolContext) -> str:
        if ctx.todos is None:
            raise ToolError("there is no todo list here (a sub-agent reports its progress in its answer)")
        ctx.todos.replace(args)
        return tool_result(args)


__all__ = ["TodoWrite"]
