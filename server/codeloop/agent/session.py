"""A session: one conversation with everything it needs wired together.

Both hosts (the headless CLI and the language server) build sessions here, so
they run exactly the same agent: same tools, policy, prompt, budgets,
compaction, persistence and cost accounting. Hosts differ only in the ports
they pass in.
"""

from __future__ import annotations

import asyncio
import logging
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from codeloop.agent.events import Notice, TurnEnd
from codeloop.agent.loop import Agent, AgentHooks
from codeloop.agent.model import ModelClient
from codeloop.agent.ports import (
    Approver,
    ChangeApplier,
    DiagnosticsSource,
    Documents,
    EventSink,
    NoDocuments,
    NullTerminal,
    Terminal,
)
from codeloop.config import Settings
from codeloop.context import compaction, elision
from codeloop.context.budget import OutputBudget, cut
from codeloop.context.cost import CostTracker
from codeloop.context.memo import FileReadMemo
from codeloop.context.prompt import EditorContext, PromptBuilder
from codeloop.context.sessions import SessionStore, SessionWriter, answer_unresolved
from codeloop.context.tokens import count_messages, count_tokens, count_tools
from codeloop.policy import PermissionPolicy
from codeloop.policy.types import MODES
from codeloop.tools import default_tools, is_read_only
from codeloop.tools.again import elided_note
from codeloop.tools.base import ToolContext, ToolInput, ToolRegistry
from codeloop.tools.processes import ProcessManager
from codeloop.tools.workspace import Workspace

log = logging.getLogger(__name__)

# The tool results of one model step get at most this share of the context window
# (settings.step_output_share, and at least MIN_STEP_TOKENS each).
MIN_STEP_TOKENS = 150
# Older tool results sent verbatim hold at most this share of the window
# (see codeloop.context.elision).
KEEP_OUTPUT_SHARE = 0.25


@dataclass
class Ports:
    sink: EventSink
    approver: Approver
    changes: ChangeApplier
    terminal: Terminal = field(default_factory=NullTerminal)
    documents: Documents = field(default_factory=NoDocuments)
    diagnostics: DiagnosticsSource | None = None


class AgentSession:
    def __init__(
        self,
        settings: Settings,
        root: Path,
        ports: Ports,
        *,
        policy: PermissionPolicy | None = None,
        store: SessionStore | None = None,
        resume: str | None = None,
        persist: bool = True,
    ) -> None:
        self.settings = settings
        self.root = Path(root).resolve()
        self.ports = ports
        self.workspace = Workspace(self.root)
        self.policy = policy or PermissionPolicy(self.root, mode=settings.mode, user_settings=settings.permissions)
        self.processes = ProcessManager(ports.terminal)
        self.memo = FileReadMemo()
        self.budget = OutputBudget()
        self.cost = CostTracker(settings.prices)
        self.prompt = PromptBuilder(self.root)
        self.editor_context: EditorContext | None = None
        self.model = ModelClient(settings)
        self.store = store if store is not None else (
            SessionStore(self.root, storage=settings.session_storage, secrets=_secrets(settings)) if persist else None
        )
        self.ctx = ToolContext(
            workspace=self.workspace,
            changes=_TouchingApplier(ports.changes, self),
            processes=self.processes,
            documents=ports.documents,
            terminal=ports.terminal,
            diagnostics=ports.diagnostics,
            read_memo=self.memo,
        )
        messages: list[dict[str, Any]] = []
        self.writer: SessionWriter | None = None
        self.load_warnings: list[str] = []
        if self.store is not None:
            if resume:
                loaded = self.store.load(resume)
                messages = loaded.messages
                self.load_warnings = list(loaded.warnings)
                for record in loaded.usage:  # the session's cost so far, as if never closed
                    self.cost.add(record, str(record.get("model") or settings.model))
                self.cost.new_turn()
                for rel in loaded.touched:
                    self.prompt.touch(self.root / rel / "_")  # (touch() takes a file; its folder counts)
                self.writer = self.store.open_for_append(resume)
                repaired, added = answer_unresolved(messages)
                if added:
                    # Cut off mid-turn: answer the calls that never finished, on disk too.
                    if repaired[: len(messages)] == messages:
                        for m in repaired[len(messages) :]:
                            self.writer.append(m)
                    else:
                        self.writer.append_compaction(repaired)
                    messages = repaired
                    self.load_warnings.append(
                        f"{added} tool call(s) were interrupted when the session stopped; they are marked as such."
                    )
            else:
                self.writer = self.store.create(settings.model)
        self.agent = Agent(
            model=self.model,
            tools=ToolRegistry(default_tools()),
            context=self.ctx,
            sink=ports.sink,
            approver=ports.approver,
            policy=self.policy,
            max_turns=settings.max_turns,
            log_messages=self.writer,
            hooks=AgentHooks(
                system_prompt=self._system_prompt,
                before_model_call=self._maybe_compact,
                fit_tool_result=self._fit,
                price=self._price,
                view=self._view,
            ),
            messages=messages,
        )
        self.turn_lock = asyncio.Lock()
        self._prompt_generation = 0
        self._prompt_cache: tuple[Any, str] | None = None
        self._step_tokens = 0  # tokens of tool output since the last model call
        self._elided: set[str] = set()  # tool call ids whose results requests no longer carry

    @property
    def id(self) -> str | None:
        return self.writer.id if self.writer is not None else None

    @property
    def messages(self) -> list[dict[str, Any]]:
        return self.agent.messages

    # -- running -------------------------------------------------------------

    async def send(self, text: str | list[dict[str, Any]]) -> TurnEnd:
        async with self.turn_lock:
            self._prompt_generation += 1
            self.budget.new_turn()
            self.cost.new_turn()
            return await self.agent.send(text)

    async def close(self) -> None:
        await self.processes.shutdown()
        await self.model.close()

    def update_settings(self, settings: Settings) -> None:
        """New settings apply from the next model call on."""
        old = self.settings
        self.settings = settings
        self.agent.max_turns = settings.max_turns
        self.policy.mode = settings.mode
        self.cost.set_prices(settings.prices)
        if (old.base_url, old.api_key, old.request_timeout, old.max_retries) != (
            settings.base_url,
            settings.api_key,
            settings.request_timeout,
            settings.max_retries,
        ) or old.model != settings.model:
            previous = self.model
            self.model = ModelClient(settings)
            self.agent.model = self.model
            asyncio.ensure_future(previous.close())

    async def slash(self, cmd: Any) -> str:
        """The session's own slash commands. Hosts handle /clear, /resume and /help."""
        name, arg = cmd.name, (cmd.arg or "").strip()
        if name == "compact":
            if not self.agent.messages:
                return "Nothing to compact yet."
            result = await self.compact(arg or None)
            if result.ok:
                return f"Compacted: {result.tokens_before:,} → {result.tokens_after:,} tokens ({result.removed_count} messages summarised)."
            return f"Compaction failed; the conversation is unchanged: {result.error}"
        if name == "context":
            assembled = await self.assembled_prompt()
            return assembled.render_report() + "\n\n" + self.conversation_report()
        if name == "cost":
            return self.cost.render()
        if name == "model":
            if not arg:
                return f"Model: {self.settings.model} at {self.settings.base_url}"
            self.update_settings(self.settings.model_copy(update={"model": arg}))
            return f"Model set to {arg} for this session."
        if name == "mode":
            if not arg:
                return f"Mode: {self.policy.mode}. Modes: ask, acceptEdits, plan, bypass."
            if arg not in MODES:
                return f"Unknown mode {arg!r}. Modes: {', '.join(MODES)}."
            self.settings = self.settings.model_copy(update={"mode": arg})
            self.policy.mode = arg  # type: ignore[assignment]
            if arg == "bypass":
                return "Mode: bypass. Edits and commands run without asking; catastrophic commands are still refused."
            return f"Mode: {arg}."
        return f"Unknown command /{name}. Try /help."

    # -- hooks ---------------------------------------------------------------

    async def _system_prompt(self) -> str:
        # Built at most once per step, and only rebuilt (git status etc.) when something it
        # shows may have changed: a new turn, a mutating tool call, a newly touched folder,
        # the mode or the editor context.
        mode_note = self.policy.describe_mode()
        key = (self._prompt_generation, mode_note, id(self.editor_context), len(self.prompt.touched_dirs))
        if self._prompt_cache is not None and self._prompt_cache[0] == key:
            return self._prompt_cache[1]
        assembled = await self.prompt.build(self.editor_context, mode_note=mode_note)
        self._prompt_cache = (key, assembled.text)
        return assembled.text

    async def assembled_prompt(self) -> Any:
        return await self.prompt.build(self.editor_context, mode_note=self.policy.describe_mode())

    # -- what requests carry ----------------------------------------------------

    def view_of(self, messages: list[dict[str, Any]]) -> elision.View:
        """``messages`` as a request carries them (no side effects)."""
        window = compaction.context_window(self.settings.model, self.settings.context_window)
        return elision.elide(
            messages,
            lambda tool, args, text: elided_note(tool, args, text, self.processes),
            allowance=self.settings.keep_tool_output,
            cap=int(window * KEEP_OUTPUT_SHARE),
            already=self._elided,
        )

    def conversation_report(self) -> str:
        """What the next request carries besides the system prompt, for ``/context``."""
        view = self.view_of(self.agent.messages)
        sent = count_messages(view.messages)
        full = count_messages(self.agent.messages)
        schemas = self.agent.tool_schemas()
        window = compaction.context_window(self.settings.model, self.settings.context_window)
        results = sum(1 for e in view.elided if not e.arguments)
        lines = [
            f"conversation  {sent:>7}  tokens as sent ({len(view.messages)} messages)",
            f"tool schemas  {count_tools(schemas):>7}  tokens ({len(schemas)} tools)",
        ]
        if view.elided:
            lines.append(
                f"elided        {full - sent:>7}  tokens of old tool output ({results} results, "
                f"{len(view.elided) - results} call arguments), each replaced by a note saying how to get it again"
            )
        lines.append(
            f"window: {window:,} tokens ({self.settings.model}); compaction at "
            f"{self.settings.compact_threshold:.0%}; old results stay for keepToolOutput={self.settings.keep_tool_output:,} "
            "tokens x steps"
        )
        return "\n".join(lines)

    def _view(self, messages: list[dict[str, Any]]) -> list[dict[str, Any]]:
        view = self.view_of(messages)
        for e in view.elided:
            key = elision.key_of(e.call_id, e.arguments)
            if key in self._elided:
                continue
            self._elided.add(key)
            if not e.arguments and e.tool == "read_file" and isinstance(e.args.get("path"), str):
                # The model no longer holds that read: a re-read must not answer
                # "unchanged, see above" or send a diff against it.
                try:
                    self.memo.forget(self.workspace.resolve(e.args["path"]))
                except ValueError:
                    pass
        return view.messages

    async def _maybe_compact(self, agent: Agent) -> None:
        self._step_tokens = 0  # a new model step: its tool results start from nothing
        system = await self._system_prompt()
        if not compaction.should_compact(
            self.view_of(agent.messages).messages,
            agent.tool_schemas(),
            self.settings.model,
            self.settings.compact_threshold,
            self.settings.context_window,
            extra_tokens=count_tokens(system),
        ):
            return
        await self.compact(None, auto=True)

    async def compact(self, focus: str | None, *, auto: bool = False) -> compaction.CompactionResult:
        result = await compaction.compact(
            self.agent.messages, self._summarize, focus=focus, view=self.view_of(self.agent.messages).messages
        )
        if result.ok:
            self.agent.messages[:] = result.messages
            self.memo.forget_all()
            if self.writer is not None:
                self.writer.append_compaction(result.messages, result.summary)
            self.ports.sink.emit(
                Notice(f"Compacted the conversation: {result.tokens_before} → {result.tokens_after} tokens.")
            )
        elif auto and (result.error or "").startswith("nothing to compact"):
            log.info("auto-compaction: %s", result.error)  # not worth a warning before every call
        else:
            self.ports.sink.emit(Notice(f"Compaction failed, the conversation is unchanged: {result.error}", "warning"))
        return result

    async def _summarize(self, messages: list[dict[str, Any]], instructions: str) -> str:
        # ``messages`` come from the view (old large outputs elided), so the request fits.
        request = [{"role": "system", "content": instructions}, *messages]
        request.append({"role": "user", "content": instructions})
        completion = await self.model.complete(request, None)
        if completion.usage:
            self._price(completion.usage, self.model.model)  # counted and persisted like any call
        return completion.content

    def touch(self, path: Path) -> None:
        """A file the agent read or changed: its folders' memory files join the prompt,
        from now on and after a resume (the folder is recorded in the session)."""
        before = len(self.prompt.touched_dirs)
        self.prompt.touch(path)
        if self.writer is not None and len(self.prompt.touched_dirs) > before:
            rel = self.prompt.touched_dirs[-1].relative_to(self.root).as_posix()
            try:
                self.writer.append_meta(touched=rel)
            except Exception:
                log.exception("could not persist a touched folder")

    def _fit(self, tool: str, text: str, args: ToolInput | None) -> str:
        if not is_read_only(tool):
            self._prompt_generation += 1  # git status and the like may have changed
        path_arg = getattr(args, "path", None)
        if tool == "read_file" and path_arg:
            try:
                self.touch(self.workspace.resolve(path_arg))
            except ValueError:
                pass
        if tool == "read_file":
            path = getattr(args, "path", "")
            hint = f"call read_file with path={path!r} and a later offset (or a smaller limit)"
            fitted = self._fit_step(self.budget.fit(text, how_to_get_more=hint), hint)
            if fitted != text and path_arg:
                # The model did not see the whole range: the next read must not say "unchanged".
                try:
                    self.memo.forget(self.workspace.resolve(path_arg))
                except ValueError:
                    pass
            return fitted
        elif tool in ("run_command", "read_command_output", "read_process_logs"):
            hint = "call read_command_output with the output id and an offset"
        else:
            hint = "narrow the query (a more specific pattern, a path or a glob)"
        return self._fit_step(self.budget.fit(text, how_to_get_more=hint), hint)

    def _fit_step(self, text: str, hint: str) -> str:
        """Hold the tool results of one model step to a share of the context window, so
        the step that compaction must keep verbatim always fits (small windows, parallel reads)."""
        window = compaction.context_window(self.settings.model, self.settings.context_window)
        allowed = max(MIN_STEP_TOKENS, int(window * self.settings.step_output_share) - self._step_tokens)
        tokens = count_tokens(text)
        if tokens > allowed:
            chars = int(len(text) * allowed / tokens * 0.95)
            text = cut(text, chars, hint, "the step's share of the context window was used up")
            tokens = count_tokens(text)
        self._step_tokens += tokens
        return text

    def _price(self, usage: dict[str, int], model: str) -> float | None:
        delta = self.cost.add(usage, model)
        if self.writer is not None:
            try:
                self.writer.append_usage(usage, model)
            except Exception:
                log.exception("could not persist usage")
        return getattr(delta, "cost", None)


def _secrets(settings: Settings) -> list[str]:
    key = settings.api_key.get_secret_value() if settings.api_key else ""
    return [key] if key else []


class _TouchingApplier:
    """Records the files a change touches (for nested AGENTS.md) and forwards."""

    def __init__(self, inner: ChangeApplier, session: AgentSession) -> None:
        self.inner = inner
        self.session = session

    async def apply(self, changes: Any) -> Any:
        for c in changes.changes:
            self.session.touch(c.path)
        # The memo keeps the text the model last read, so a re-read after this
        # change sends only what changed.
        return await self.inner.apply(changes)
