"""The terminal side of the headless host: the events as they happen, and the
questions (approve a command, apply an edit) asked at the prompt."""

from __future__ import annotations

import asyncio
import os
import sys
from collections.abc import Awaitable, Callable, Sequence
from pathlib import Path
from typing import Any, TextIO

from codeloop.context.todos import from_session, render_checklist
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
from codeloop.core.ports import ApprovalDecision, ApprovalRequest
from codeloop.edits.change import ChangeSet
from codeloop.edits.diff import unified_diff


class Style:
    def __init__(self, stream: TextIO) -> None:
        self.on = stream.isatty() and os.environ.get("NO_COLOR") is None

    def __call__(self, code: str, text: str) -> str:
        return f"\x1b[{code}m{text}\x1b[0m" if self.on else text


NESTED = "  │ "  # the calls a program makes (code mode), under its card


class ConsoleSink:
    """Prints the loop's events as they happen."""

    def __init__(self, out: TextIO = sys.stdout, err: TextIO = sys.stderr) -> None:
        self.out = out
        self.err = err
        self.style = Style(out)
        self.at_line_start = True
        self.last_end: TurnEnd | None = None
        self.unicode = (getattr(out, "encoding", "") or "").lower().replace("-", "") in ("utf8", "utf16")

    def _nested(self, nested: SubagentEvent) -> None:
        """A sub-agent's events, indented under the task call that runs it."""
        s, event = self.style, nested.event
        bar = s("2", f"  │ {nested.agent}:")
        if isinstance(event, TextDelta):
            for row in event.text.strip().splitlines():
                self.line(f"{bar} {row}")
        elif isinstance(event, ToolCallStarted):
            self.line(f"{bar} " + s("36", f"● {event.name}") + (f"({event.summary})" if event.summary else ""))
        elif isinstance(event, ToolCallFinished):
            mark = "⎿" if event.ok else "⎿ ■" if event.status == "cancelled" else "⎿ ✗"
            self.line(f"{bar}   {mark} {event.summary}")
        elif isinstance(event, HookRan):
            if event.phase == "end":
                self.line(f"{bar} " + s("2", f"⚙ {event.line}"))
        elif isinstance(event, (Notice, ErrorEvent)):
            self.line(f"{bar} " + s("33", f"ℹ {event.message}"))
        elif isinstance(event, Retry):
            self.line(f"{bar} " + s("33", f"↻ retry {event.attempt}/{event.max_attempts}: {event.reason}"))
        elif isinstance(event, TurnEnd) and event.status != "done":
            self.line(f"{bar} " + s("33", f"stopped ({event.status}): {event.message}"))

    def line(self, text: str) -> None:
        if not self.at_line_start:
            self.out.write("\n")
        self.out.write(text + "\n")
        self.out.flush()
        self.at_line_start = True

    def highlight(self, code: str, language: str) -> str:
        """``code`` in terminal colours (plain without colours)."""
        if not self.style.on:
            return code
        try:
            from pygments import highlight  # noqa: PLC0415 - only when a program is shown
            from pygments.formatters import TerminalFormatter  # noqa: PLC0415
            from pygments.lexers import get_lexer_by_name  # noqa: PLC0415

            return highlight(code, get_lexer_by_name(language or "text"), TerminalFormatter()).rstrip("\n")
        except Exception:  # an unknown language: as it is
            return code

    def emit(self, event: Event) -> None:
        s = self.style
        if isinstance(event, SubagentEvent):
            self._nested(event)
        elif isinstance(event, HookRan):
            if event.phase == "end":
                self.line(s("33" if event.status in ("blocked", "denied", "warning", "timeout", "error") else "2",
                            f"  ⚙ {event.line}"))
        elif isinstance(event, TodosChanged):
            todos, _ = from_session(list(event.todos))
            done = sum(1 for t in todos if t.status == "completed")
            self.line(s("1", f"  ☰ Todos ({done}/{len(todos)} done)"))
            for row in render_checklist(todos, unicode=self.unicode).splitlines():
                self.line(f"    {row}")
        elif isinstance(event, TextDelta):
            self.out.write(event.text)
            self.out.flush()
            self.at_line_start = event.text.endswith("\n")
        elif isinstance(event, ToolCallStarted):
            origin = s("2", f" [{event.origin}]") if event.origin else ""
            pad = NESTED if event.parent else ""
            self.line(pad + s("36", f"● {event.name}") + (f"({event.summary})" if event.summary else "") + origin)
            if event.code:
                for line in self.highlight(event.code.strip("\n"), event.code_language).splitlines():
                    self.line(f"{pad}  {s('2', '│')} {line}")
        elif isinstance(event, ToolCallFinished):
            mark = s("32", "⎿") if event.ok else s("33", "⎿ ■") if event.status == "cancelled" else s("31", "⎿ ✗")
            self.line(f"{NESTED if event.parent else ''}  {mark} {event.summary}")
        elif isinstance(event, Retry):
            self.line(s("33", f"  ↻ retry {event.attempt}/{event.max_attempts} in {event.delay:.1f}s: {event.reason}"))
        elif isinstance(event, Notice):
            self.line(s("33" if event.level == "warning" else "2", f"  ℹ {event.message}"))
        elif isinstance(event, ErrorEvent):
            if not self.at_line_start:
                self.out.write("\n")
                self.at_line_start = True
            self.err.write(s("31", f"error: {event.message}") + "\n")
            self.err.flush()
        elif isinstance(event, TurnEnd):
            self.last_end = event
            if not self.at_line_start:
                self.line("")
            if event.status in ("max_turns", "cancelled"):
                self.line(s("33", event.message))
            tokens = f"{event.prompt_tokens:,} in / {event.completion_tokens:,} out"
            if event.cached_tokens:
                rate = f", {event.cached_tokens / event.prompt_tokens:.0%} hit rate" if event.prompt_tokens else ""
                tokens += f" ({event.cached_tokens:,} cached{rate})"
            cost = f", ${event.cost:.4f}" if event.cost is not None else ""
            if event.prompt_tokens or event.completion_tokens:
                self.line(s("2", f"[{tokens}{cost}]"))


async def ask_line(prompt: str) -> str | None:
    try:
        return await asyncio.to_thread(input, prompt)
    except EOFError:
        return None


class TerminalApprover:
    """Asks at the terminal before a command runs (or a secret is read). ``lock`` keeps
    questions asked at once (concurrent read-only calls, consent) one after the other."""

    def __init__(self, sink: ConsoleSink, lock: asyncio.Lock | None = None) -> None:
        self.sink = sink
        self.lock = lock or asyncio.Lock()

    async def approve(self, request: ApprovalRequest) -> ApprovalDecision:
        async with self.lock:
            return await self._approve(request)

    async def _approve(self, request: ApprovalRequest) -> ApprovalDecision:
        what = {"Bash": "Run", "Read": "Read", "Edit": "Edit", "Write": "Write", "Tool": "Call",
                "Trust": "Trust"}.get(request.kind, request.kind)
        self.sink.line(self.sink.style("1", f"? {what}: {request.target}") + f"  (in {request.cwd}; {request.reason})")
        choices = "[y]es / [a]lways / [n]o, or type a reason to deny: "
        answer = await ask_line(choices)
        if answer is None:
            return ApprovalDecision("deny", "no answer (end of input)")
        a = answer.strip()
        if a.lower() in ("y", "yes", ""):
            return ApprovalDecision("allow_once")
        if a.lower() in ("a", "always"):
            return ApprovalDecision("allow_always")
        if a.lower() in ("n", "no"):
            return ApprovalDecision("deny")
        return ApprovalDecision("deny", a)


class TerminalConsent:
    """Asks at the terminal whether a project's MCP server, hooks or allow rules may run
    (a ``ConsentAsker``): True and False are remembered; no answer (Enter, end of input)
    leaves it off for this run and asks again next time."""

    def __init__(self, sink: ConsoleSink, lock: asyncio.Lock) -> None:
        self.sink = sink
        self.lock = lock

    async def __call__(self, request: Any) -> bool | None:
        async with self.lock:
            self.sink.line(self.sink.style("1", f"? Trust {request.subject}: ") + request.prompt())
            while True:
                answer = await ask_line("[y]es (remembered) / [n]o (remembered) / Enter: not now: ")
                if answer is None or not answer.strip():
                    return None
                a = answer.strip().lower()
                if a in ("y", "yes"):
                    return True
                if a in ("n", "no"):
                    return False


def terminal_confirm(sink: ConsoleSink) -> Callable[[ChangeSet], Awaitable[bool | str]]:
    async def confirm(changes: ChangeSet) -> bool | str:
        for c in changes.changes:
            rel = c.path.name
            try:
                rel = str(c.path.relative_to(Path.cwd()))
            except ValueError:
                rel = str(c.path)
            diff = unified_diff(c.old_text, c.new_text, rel)
            for line in diff.splitlines():
                color = "32" if line.startswith("+") else "31" if line.startswith("-") else "36" if line.startswith("@@") else "0"
                sink.line(sink.style(color, line))
        answer = await ask_line("Apply this change? [y]es / [n]o, or type feedback to reject: ")
        if answer is None:
            return "no answer (end of input)"
        a = answer.strip()
        if a.lower() in ("y", "yes", ""):
            return True
        if a.lower() in ("n", "no"):
            return False
        return a

    return confirm


class TerminalChoices:
    """The command layer's ``RewindUI`` at the terminal: numbered options, a diff in
    colour. An empty answer (or end of input) is no choice."""

    def __init__(self, sink: ConsoleSink) -> None:
        self.sink = sink

    async def choose(self, question: str, options: Sequence[str]) -> str | None:
        self.sink.line(self.sink.style("1", f"? {question}"))
        for i, option in enumerate(options, 1):
            self.sink.line(f"  {i}) {option}")
        answer = await ask_line(f"[1-{len(options)}]: ")
        if answer is None:
            return None
        a = answer.strip().lower()
        if a.isdigit() and 1 <= int(a) <= len(options):
            return options[int(a) - 1]
        hits = [o for o in options if a and o.lower().startswith(a)]
        return hits[0] if len(hits) == 1 else None

    def show(self, text: str) -> None:
        for line in text.splitlines():
            color = ("32" if line.startswith("+") and not line.startswith("+++") else
                     "31" if line.startswith("-") and not line.startswith("---") else
                     "36" if line.startswith("@@") else "0")
            self.sink.line(self.sink.style(color, line) if color != "0" else line)
