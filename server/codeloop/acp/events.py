"""The loop's events as ``session/update`` notifications (the session's ``EventSink``).

- ``TextDelta`` → ``agent_message_chunk``;
- ``ToolCallStarted`` → ``tool_call`` (kind from the tool, title from its summary, the
  path it names as a location, the arguments as ``rawInput``);
- ``ToolCallFinished`` → ``tool_call_update``: completed or failed, its content what the
  call showed (``link.CallView``: the diffs of an edit, the client's terminal of a
  command, a sub-agent's steps, the hooks that ran for it) and then the result text;
- ``TodosChanged`` (the todo list) → ``plan``, the whole list each time;
- ``HookRan`` (a hook ended): for a tool call's hook (PreToolUse, PostToolUse), a line in
  that call's content (a hook that blocks the call says so there); else a thought;
- ``SubagentEvent`` (a sub-agent's event, the task tool): a step in the task call's
  content (``steps.py``); the sub-agent's calls that change something are tool calls of
  their own too, titled with the agent's name (their diffs, terminals and permission
  requests need one);
- notices, retries and errors → a thought (information) or a message chunk (warnings
  and errors, which the user must see).

``TurnEnd`` and ``Usage`` send nothing: the answer to ``session/prompt`` carries the end.
"""

from __future__ import annotations

import logging
from typing import Any

from acp.schema import AgentMessageChunk, AgentThoughtChunk, TextContentBlock, ToolCallProgress

from codeloop.acp.convert import plan_update, text_content, tool_kind, tool_start
from codeloop.acp.link import CallView, SessionLink
from codeloop.acp.steps import Step, said
from codeloop.core.events import (
    ErrorEvent,
    Event,
    HookRan,
    Notice,
    Retry,
    SubagentEvent,
    TextDelta,
    TodosChanged,
    ToolCallFinished,
    ToolCallStarted,
)

log = logging.getLogger(__name__)


def message(text: str) -> AgentMessageChunk:
    return AgentMessageChunk(session_update="agent_message_chunk", content=TextContentBlock(type="text", text=text))


def thought(text: str) -> AgentThoughtChunk:
    return AgentThoughtChunk(session_update="agent_thought_chunk", content=TextContentBlock(type="text", text=text))


class AcpSink:
    def __init__(self, link: SessionLink) -> None:
        self.link = link

    def emit(self, event: Event) -> None:
        try:
            updates = self._updates(event)
        except Exception:  # a conversion bug must not break the turn
            log.exception("could not convert %s for the ACP client", event.type)
            return
        for update in updates:
            self.link.outbox.put(update)

    def _updates(self, event: Event) -> list[Any]:
        link = self.link
        if isinstance(event, TextDelta):
            return [message(event.text)]
        if isinstance(event, ToolCallStarted):
            tool = link.tool(event.name)
            link.calls[event.call_id] = CallView(tool, tool_kind(tool), command=_command(event.arguments))
            return [tool_start(event.call_id, event.name, event.summary, event.arguments, tool, link.root)]
        if isinstance(event, ToolCallFinished):
            view = link.calls.pop(event.call_id, None)
            return [finished(event, view)] if view is None or view.shown else []
        if isinstance(event, TodosChanged):
            return [plan_update(event.todos)]
        if isinstance(event, HookRan):
            return self._hook(event)
        if isinstance(event, SubagentEvent):
            return self._subagent(event)
        if isinstance(event, Notice):
            return [thought(event.message) if event.level == "info" else message(f"\n\n> {event.message}\n\n")]
        if isinstance(event, Retry):
            return [thought(f"The model's server failed ({event.reason}); retry {event.attempt} of "
                            f"{event.max_attempts} in {event.delay:.0f} s.")]
        if isinstance(event, ErrorEvent):
            return [message(f"\n\nError: {event.message}\n")]
        return []

    def _hook(self, event: HookRan) -> list[Any]:
        if event.phase != "end":
            return []
        view = self.link.calls.get(event.call_id) if event.call_id else None
        if view is None:
            return [thought(f"⚙ {event.line}")]
        view.hooks.append(f"⚙ {event.line}")
        self.link.show(event.call_id)
        if view.parent:  # a sub-agent's call: its task call lists the hook too
            self._step(view.parent, Step("", f"⚙ {event.line}"))
        return []

    def _subagent(self, event: SubagentEvent) -> list[Any]:
        link, inner, agent = self.link, event.event, event.agent
        parent = event.parent_call_id
        if isinstance(inner, ToolCallStarted):
            tool = link.tool(inner.name)
            # Its own tool call when it may change something: its diffs, terminal and permission
            # requests need a call the client knows. Read-only steps are listed only.
            own = tool is None or not tool.read_only
            link.calls[inner.call_id] = CallView(tool, tool_kind(tool), parent=parent, shown=own,
                                                 command=_command(inner.arguments))
            self._step(parent, Step(agent, f"{inner.name} {inner.summary}".strip(), inner.call_id))
            if own:
                title = f"{agent}: {inner.summary or inner.name}"
                return [tool_start(inner.call_id, inner.name, title, inner.arguments, tool, link.root)]
            return []
        if isinstance(inner, ToolCallFinished):
            view = link.calls.pop(inner.call_id, None)
            task = link.calls.get(parent)
            for s in task.steps if task is not None else []:
                if s.call_id == inner.call_id:
                    s.ok, s.outcome = inner.ok, inner.summary
            link.show(parent)
            return [finished(inner, view)] if view is not None and view.shown else []
        if isinstance(inner, HookRan):
            if inner.phase == "end" and inner.call_id in link.calls:
                return self._hook(inner)  # (it lists the step too)
            if inner.phase == "end":
                self._step(parent, Step(agent, f"⚙ {inner.line}"))
            return []
        if isinstance(inner, TextDelta):
            if inner.text.strip():
                self._step(parent, Step(agent, f"says: {said(inner.text)}"))
        elif isinstance(inner, (Notice, ErrorEvent)):
            self._step(parent, Step(agent, said(inner.message)))
        elif isinstance(inner, Retry):
            self._step(parent, Step(agent, f"the model's server failed ({said(inner.reason)}); retrying"))
        return []

    def _step(self, parent: str, step: Step) -> None:
        view = self.link.calls.get(parent)
        if view is None:
            return
        if not step.agent and view.steps:
            step.agent = view.steps[-1].agent
        view.steps.append(step)
        self.link.show(parent)


def _command(arguments: dict[str, Any]) -> str:
    command = arguments.get("command")
    return command if isinstance(command, str) else ""


def finished(event: ToolCallFinished, view: CallView | None) -> ToolCallProgress:
    text = event.result or event.summary
    content = view.content(text) if view is not None else [text_content(text)] if text else []
    return ToolCallProgress(
        session_update="tool_call_update",
        tool_call_id=event.call_id,
        status="completed" if event.ok else "failed",
        content=content or None,
        raw_output={"summary": event.summary, "status": event.status},
    )


__all__ = ["AcpSink", "finished", "message", "thought"]
