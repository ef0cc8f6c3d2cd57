"""The loop's events as ``session/update`` notifications (the session's ``EventSink``).

- ``TextDelta`` → ``agent_message_chunk``;
- ``ToolCallStarted`` → ``tool_call`` (kind from the tool, title from its summary, the
  path it names as a location, the arguments as ``rawInput``);
- ``ToolCallFinished`` → ``tool_call_update``: completed or failed, its content the
  result text after whatever the call showed already (the diffs of an edit, the
  client's terminal of a command);
- the todo list (``todosChanged``) → ``plan``;
- notices, retries and errors → a thought (information) or a message chunk (warnings
  and errors, which the user must see).

``TurnEnd`` and ``Usage`` send nothing: the answer to ``session/prompt`` carries the end.
"""

from __future__ import annotations

import logging
from typing import Any

from acp.schema import AgentMessageChunk, AgentThoughtChunk, TerminalToolCallContent, TextContentBlock, ToolCallProgress

from codeloop.acp.convert import plan_update, text_content, tool_kind, tool_start
from codeloop.acp.link import CallView, SessionLink
from codeloop.core.events import ErrorEvent, Event, Notice, Retry, TextDelta, ToolCallFinished, ToolCallStarted

log = logging.getLogger(__name__)

# The todo tool's event (``core.events.TodosChanged``, from the branch that adds the todo
# list) is recognised by its type tag and its ``todos``: nothing here has to import it.
TODOS_CHANGED = "todosChanged"


def message(text: str) -> AgentMessageChunk:
    return AgentMessageChunk(session_update="agent_message_chunk", content=TextContentBlock(type="text", text=text))


def thought(text: str) -> AgentThoughtChunk:
    return AgentThoughtChunk(session_update="agent_thought_chunk", content=TextContentBlock(type="text", text=text))


class AcpSink:
    def __init__(self, link: SessionLink) -> None:
        self.link = link

    def emit(self, event: Event) -> None:
        try:
            update = self._update(event)
        except Exception:  # a conversion bug must not break the turn
            log.exception("could not convert %s for the ACP client", event.type)
            return
        if update is not None:
            self.link.outbox.put(update)

    def _update(self, event: Event) -> Any:
        link = self.link
        if isinstance(event, TextDelta):
            return message(event.text)
        if isinstance(event, ToolCallStarted):
            tool = link.tool(event.name)
            link.calls[event.call_id] = CallView(tool, tool_kind(tool))
            return tool_start(event.call_id, event.name, event.summary, event.arguments, tool, link.root)
        if isinstance(event, ToolCallFinished):
            view = link.calls.pop(event.call_id, None)
            shown: list[Any] = []
            if view is not None:
                shown += view.diffs
                if view.terminal_id is not None:
                    shown.append(TerminalToolCallContent(type="terminal", terminal_id=view.terminal_id))
            text = event.result or event.summary
            return ToolCallProgress(
                session_update="tool_call_update",
                tool_call_id=event.call_id,
                status="completed" if event.ok else "failed",
                content=[*shown, text_content(text)] if text else shown or None,
                raw_output={"summary": event.summary, "status": event.status},
            )
        if isinstance(event, Notice):
            return thought(event.message) if event.level == "info" else message(f"\n\n> {event.message}\n\n")
        if isinstance(event, Retry):
            return thought(f"The model's server failed ({event.reason}); retry {event.attempt} of "
                           f"{event.max_attempts} in {event.delay:.0f} s.")
        if isinstance(event, ErrorEvent):
            return message(f"\n\nError: {event.message}\n")
        if event.type == TODOS_CHANGED and hasattr(event, "todos"):
            return plan_update(event.todos)
        return None


__all__ = ["AcpSink", "TODOS_CHANGED", "message", "thought"]
