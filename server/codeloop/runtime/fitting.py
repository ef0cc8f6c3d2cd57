"""How what a session sends fits the context window.

:class:`RequestView`: the conversation as a request carries it. Old large tool results and call
arguments are elided in batches (``codeloop.context.elision``), each replaced by its tool's
note; a tool is told once when one of its results is dropped.

:class:`ResultFitter`: a fresh tool result as the model sees it, held to the tool's, the
turn's and the step's budgets; the memory files of the folders it touched, and what the tool
sources have to say, go with it.
"""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any, Callable

from codeloop.config import Settings
from codeloop.context import compaction, elision
from codeloop.context.budget import OutputBudget, cut
from codeloop.context.prompt import MEMORY_MARK
from codeloop.context.tokens import count_tokens
from codeloop.tools.base import BaseTool, ToolContext, elided_head
from codeloop.tools.registry import ToolRegistry

log = logging.getLogger(__name__)

# The tool results of one model step get at most this share of the context window
# (settings.step_output_share, and at least MIN_STEP_TOKENS each).
MIN_STEP_TOKENS = 150
# Older tool results sent verbatim hold at most this share of the window
# (see codeloop.context.elision).
KEEP_OUTPUT_SHARE = 0.25
# Elision in batches, for providers' prompt caches (codeloop.context.elision.elide):
# nothing new is elided until this many tokens are due, then every old large result goes
# in one rewrite (headroom 0: down to the last steps). Chosen from bench/bench_tokens.py's
# sweep of batch sizes, headrooms and keepToolOutput values (bench/README.md).
ELIDE_BATCH = 6_000
ELIDE_HEADROOM = 0.0


class RequestView:
    """The session's messages as requests carry them."""

    def __init__(self, settings: Callable[[], Settings], tools: ToolRegistry, ctx: ToolContext) -> None:
        self.settings = settings
        self.tools = tools
        self.ctx = ctx
        self.elided: set[str] = set()  # tool call ids whose results requests no longer carry
        self.batch = ELIDE_BATCH
        self.headroom = ELIDE_HEADROOM

    def of(self, messages: list[dict[str, Any]]) -> elision.View:
        """``messages`` as a request carries them (no side effects)."""
        settings = self.settings()
        window = compaction.context_window(settings.model, settings.context_window)
        return elision.elide(
            messages,
            self._elided_note,
            allowance=settings.keep_tool_output,
            cap=int(window * KEEP_OUTPUT_SHARE),
            already=self.elided,
            large_arguments=self._large_arguments,
            batch=self.batch,
            headroom=self.headroom,
        )

    def apply(self, messages: list[dict[str, Any]]) -> list[dict[str, Any]]:
        """The messages of the next request; what is newly elided stays elided, and each tool
        whose result is dropped is told (``BaseTool.dropped``)."""
        view = self.of(messages)
        for e in view.elided:
            key = elision.key_of(e.call_id, e.arguments)
            if key in self.elided:
                continue
            self.elided.add(key)
            tool = self.tools.get(e.tool)
            if not e.arguments and tool is not None:
                try:
                    tool.dropped(e.args, self.ctx)
                except Exception:
                    log.exception("%s.dropped failed", e.tool)
        return view.messages

    def _elided_note(self, name: str, args: dict[str, Any], text: str) -> str:
        tool = self.tools.get(name)
        if tool is None:  # a tool that has gone (an MCP server stopped)
            note = f"{elided_head(text)} It was {name or 'a tool'}; call it again to see it.]"
        else:
            note = tool.elided_note(args, text, self.ctx)
        # Project memory shown with this result stays: the model has no other copy of it.
        at = text.rfind("\n\n" + MEMORY_MARK)
        return note + text[at:] if at >= 0 else note

    def _large_arguments(self, name: str) -> tuple[str, ...]:
        tool = self.tools.get(name)
        return tool.large_arguments if tool is not None else ()


class ResultFitter:
    """Fits each tool result; ``touch`` records a file the agent read or changed (its folders'
    memory files are queued in ``pending_memory``)."""

    def __init__(self, settings: Callable[[], Settings], tools: ToolRegistry, ctx: ToolContext,
                 budget: OutputBudget, touch: Callable[[Path], None]) -> None:
        self.settings = settings
        self.tools = tools
        self.ctx = ctx
        self.budget = budget
        self.touch = touch
        self.pending_memory: list[str] = []  # memory files to show with the next tool result
        self.step_tokens = 0  # tokens of tool output since the last model call

    def fit(self, tool: BaseTool, args: Any, text: str) -> str:
        try:
            for path in tool.touched(args, self.ctx):
                self.touch(path)
        except Exception:
            log.exception("%s.touched failed", tool.name)
        hint = tool.more_hint(args)
        fitted = self._fit_step(self.budget.fit(text, how_to_get_more=hint), hint)
        try:
            tool.fitted(args, text, fitted, self.ctx)
        except Exception:
            log.exception("%s.fitted failed", tool.name)
        if self.pending_memory:
            fitted += "\n\n" + "".join(self.pending_memory)
            self.pending_memory.clear()
        notes = self.source_notes()
        if notes:
            fitted += "\n\n" + "\n".join(f"[{n}]" for n in notes)
        return fitted

    def source_notes(self) -> list[str]:
        """What tool sources have to tell the model (an MCP server connected mid-session):
        it goes with the next user message or tool result, never into the system prompt."""
        notes: list[str] = []
        for source in self.tools.sources:
            take = getattr(source, "take_notes", None)
            if take is None:
                continue
            try:
                notes += take()
            except Exception:
                log.exception("tool source %s: take_notes failed", source.name)
        return notes

    def fit_nested(self, tool: BaseTool, args: Any, text: str) -> str:
        """A call a program made (code mode): its result goes to the program, so only the
        per-call cut applies (the turn's and the step's budgets are the model's; the program's
        own result is fitted when it returns). Memory files of the folders it touched wait for
        the next result the model sees."""
        try:
            for path in tool.touched(args, self.ctx):
                self.touch(path)
        except Exception:
            log.exception("%s.touched failed", tool.name)
        return cut(text, self.budget.per_call_chars, tool.more_hint(args), "the output was too long")

    def _fit_step(self, text: str, hint: str) -> str:
        """Hold the tool results of one model step to a share of the context window, so
        the step that compaction must keep verbatim always fits (small windows, parallel reads)."""
        settings = self.settings()
        window = compaction.context_window(settings.model, settings.context_window)
        allowed = max(MIN_STEP_TOKENS, int(window * settings.step_output_share) - self.step_tokens)
        tokens = count_tokens(text)
        if tokens > allowed:
            chars = int(len(text) * allowed / tokens * 0.95)
            text = cut(text, chars, hint, "the step's share of the context window was used up")
            tokens = count_tokens(text)
        self.step_tokens += tokens
        return text
