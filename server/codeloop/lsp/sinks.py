"""What the user sees of a turn: its events and its commands' output (the ``EventSink`` and
``Terminal`` ports), in two strategies.

- ``CapableSink``: a codeloop-aware client (VS Code) gets ``codeloop/event`` (streamed text
  coalesced to one notification per frame) and ``codeloop/terminal/*``.
- ``PlainSink``: any LSP client gets ``$/progress`` reports, the transcript with
  ``window/logMessage``, and what it must not miss (the answer, errors, warnings) with
  ``window/showMessage``, which is shown whatever the client's log level.
"""

from __future__ import annotations

import asyncio

from lsprotocol import types as lsp

from codeloop.context.todos import from_session, progress_message, render_checklist
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
    TurnEnd,
)
from codeloop.lsp import methods as M
from codeloop.lsp import wire
from codeloop.lsp.connection import Connection
from codeloop.lsp.progress import TurnProgress

TEXT_FLUSH_SECONDS = 0.016
SHOW_LIMIT = 4000  # characters of a final answer shown with window/showMessage


class CapableSink:
    def __init__(self, conn: Connection, progress: TurnProgress) -> None:
        self.conn = conn
        self.progress = progress
        self._text: dict[tuple[str, str], list[str]] = {}
        self._timers: dict[tuple[str, str], asyncio.TimerHandle] = {}

    def event(self, session_id: str, turn_id: str, event: Event) -> None:
        key = (session_id, turn_id)
        if isinstance(event, TextDelta):
            # One notification per frame, not one per token: a fast stream never crowds
            # out the editor's own requests.
            self._text.setdefault(key, []).append(event.text)
            if key not in self._timers:
                self._timers[key] = asyncio.get_running_loop().call_later(TEXT_FLUSH_SECONDS, self._flush, key)
            return
        self._flush(key)  # keep the order: text before whatever follows it
        self.conn.notify(M.EVENT, wire.EventParams(session_id=session_id, turn_id=turn_id, event=event.to_dict()))
        if isinstance(event, ToolCallStarted):  # a code action's turn also shows $/progress
            self.progress.report(session_id, turn_id, f"{event.name} {event.summary}".strip())
        elif isinstance(event, TodosChanged):
            self.progress.report(session_id, turn_id, todo_progress(event))
        elif isinstance(event, TurnEnd):
            self.progress.end(session_id, turn_id, event.status)

    def _flush(self, key: tuple[str, str]) -> None:
        timer = self._timers.pop(key, None)
        if timer is not None:
            timer.cancel()
        parts = self._text.pop(key, None)
        if parts:
            event = TextDelta("".join(parts)).to_dict()
            self.conn.notify(M.EVENT, wire.EventParams(session_id=key[0], turn_id=key[1], event=event))

    def terminal_started(self, session_id: str, terminal_id: str, command: str, cwd: str, background: bool) -> None:
        self.conn.notify(
            M.TERMINAL_STARTED,
            wire.TerminalStartedParams(terminal_id=terminal_id, session_id=session_id, command=command, cwd=cwd, background=background),
        )

    def terminal_output(self, terminal_id: str, chunk: str) -> None:
        self.conn.notify(M.TERMINAL_OUTPUT, wire.TerminalOutputParams(terminal_id=terminal_id, data=chunk))

    def terminal_exited(self, terminal_id: str, exit_code: int | None) -> None:
        self.conn.notify(M.TERMINAL_EXITED, wire.TerminalExitedParams(terminal_id=terminal_id, exit_code=exit_code))


class PlainSink:
    def __init__(self, conn: Connection, progress: TurnProgress) -> None:
        self.conn = conn
        self.progress = progress
        self._answers: dict[tuple[str, str], list[str]] = {}  # the text streamed since the last tool call

    def event(self, session_id: str, turn_id: str, event: Event) -> None:
        key = (session_id, turn_id)
        if isinstance(event, (HookRan, TodosChanged, SubagentEvent)):
            self._extension_event(session_id, turn_id, event)
        elif isinstance(event, TextDelta):
            self._answers.setdefault(key, []).append(event.text)
        elif isinstance(event, Retry):
            self._answers.pop(key, None)  # the text streamed since the last tool call is discarded
        elif isinstance(event, ToolCallStarted):
            said = "".join(self._answers.pop(key, [])).strip()
            if said:
                self.conn.log(f"[codeloop] {said}", lsp.MessageType.Info)
            self.progress.report(session_id, turn_id, f"{event.name} {event.summary}".strip())
            self.conn.log(f"[codeloop] ● {event.name}({event.summary})")
        elif isinstance(event, ToolCallFinished):
            self.conn.log(f"[codeloop]   ⎿ {event.summary}")
        elif isinstance(event, ErrorEvent):
            self.conn.show(f"codeloop: {event.message}", lsp.MessageType.Error)
        elif isinstance(event, Notice):
            if event.level == "warning":  # e.g. a broken settings file, bypass turned on
                self.conn.show(f"codeloop: {event.message}", lsp.MessageType.Warning)
            self.conn.log(f"[codeloop] {event.message}", lsp.MessageType.Info)
        elif isinstance(event, TurnEnd):
            answer = "".join(self._answers.pop(key, [])).strip()
            if answer:
                self.conn.log(f"[codeloop] {answer}", lsp.MessageType.Info)
                # The answer itself (an explanation, what a fix changed) is what the user
                # asked for: show it, not only in the log.
                if len(answer) > SHOW_LIMIT:
                    answer = answer[:SHOW_LIMIT].rstrip() + "… (the full answer is in the log)"
                self.conn.show(f"codeloop: {answer}", lsp.MessageType.Info)
            elif event.status not in ("done", "cancelled") and event.message:
                self.conn.show(f"codeloop: the turn ended ({event.status}): {event.message}", lsp.MessageType.Warning)
            self.progress.end(session_id, turn_id, event.status)

    def _extension_event(self, session_id: str, turn_id: str, event: Event) -> None:
        """Hooks, the todo list and sub-agents: the log, and the turn's ``$/progress`` for
        the todo list and a sub-agent's steps."""
        if isinstance(event, HookRan):
            if event.phase == "end":
                self.conn.log(f"[codeloop] ⚙ {event.line}")
        elif isinstance(event, TodosChanged):
            self.progress.report(session_id, turn_id, todo_progress(event))
            todos, _ = from_session(list(event.todos))
            self.conn.log("[codeloop] todos:\n" + render_checklist(todos, unicode=False), lsp.MessageType.Info)
        elif isinstance(event, SubagentEvent):
            inner = event.event
            if isinstance(inner, ToolCallStarted):
                self.progress.report(session_id, turn_id, f"{event.agent}: {inner.name} {inner.summary}".strip())
                self.conn.log(f"[codeloop]   │ {event.agent}: ● {inner.name}({inner.summary})")
            elif isinstance(inner, ToolCallFinished):
                self.conn.log(f"[codeloop]   │ {event.agent}:   ⎿ {inner.summary}")
            elif isinstance(inner, TextDelta) and inner.text.strip():
                self.conn.log(f"[codeloop]   │ {event.agent}: {inner.text.strip()}")
            elif isinstance(inner, HookRan) and inner.phase == "end":
                self.conn.log(f"[codeloop]   │ {event.agent}: ⚙ {inner.line}")

    def terminal_started(self, session_id: str, terminal_id: str, command: str, cwd: str, background: bool) -> None:
        self.conn.log(f"[codeloop] $ {command}")

    def terminal_output(self, terminal_id: str, chunk: str) -> None:
        pass  # the command's result reaches the log through its tool call

    def terminal_exited(self, terminal_id: str, exit_code: int | None) -> None:
        self.conn.log(f"[codeloop] exit code {exit_code}")


def todo_progress(event: TodosChanged) -> str:
    todos, _ = from_session(list(event.todos))
    return "todos: " + progress_message(todos)
