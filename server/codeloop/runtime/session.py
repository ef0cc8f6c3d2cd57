"""A session: one conversation with everything it needs wired together.

Every host (the headless CLI, the language server, later ACP) builds sessions
here, so they run exactly the same agent: same tools, policy, prompt, budgets,
compaction, persistence and cost accounting. Hosts differ only in the ports they
pass in, and in the extra tool sources they add (MCP servers, ...).
"""

from __future__ import annotations

import asyncio
import logging
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from codeloop.core.events import Notice, TurnEnd
from codeloop.core.tasks import Tasks
from codeloop.agent.loop import Agent, AgentHooks
from codeloop.agent.model import ModelClient
from codeloop.core.ports import (
    ApprovalDecision,
    ApprovalRequest,
    Approver,
    ChangeApplier,
    CommandRunner,
    DiagnosticsSource,
    Documents,
    EventSink,
    NoDocuments,
    NullTerminal,
    Terminal,
)
from codeloop.config import Settings, takes_images
from codeloop.context import compaction, elision
from codeloop.context.budget import OutputBudget
from codeloop.context.cost import CostTracker
from codeloop.context.memo import FileReadMemo
from codeloop.context.prompt import TURN_CONTEXT_CLOSE, TURN_CONTEXT_OPEN, EditorContext, PromptBuilder
from codeloop.context.store import SessionStore, SessionWriter, answer_unresolved
from codeloop.context.tokens import count_messages, count_tokens, count_tools
from codeloop.policy import PermissionPolicy
from codeloop.policy.types import Mode
from codeloop.runtime.hooks import HookPort, SessionHooks, SessionInfo
from codeloop.runtime.subagents import SubagentSource
from codeloop.runtime.todos import SessionTodos
from codeloop.runtime.trust import ProjectTrust as WorkspaceTrust
from codeloop.services.hooks import ProjectTrust
from codeloop.runtime.checkpoints import SessionCheckpoints
from codeloop.runtime.rewind import SessionRewind
from codeloop.runtime.codemode import CodeModeSettings, CodeModeSource
from codeloop.runtime.fitting import RequestView, ResultFitter
from codeloop.runtime.sandboxing import WorkspaceSandbox, sandbox_for
from codeloop.tools.base import ToolContext
from codeloop.tools.builtin import BuiltinTools
from codeloop.tools.todo import TodoWrite
from codeloop.tools.processes import ProcessManager
from codeloop.tools.registry import ToolRegistry, ToolSource
from codeloop.tools.workspace import Workspace

log = logging.getLogger(__name__)

@dataclass
class Ports:
    sink: EventSink
    approver: Approver
    changes: ChangeApplier
    terminal: Terminal = field(default_factory=NullTerminal)
    documents: Documents = field(default_factory=NoDocuments)
    diagnostics: DiagnosticsSource | None = None
    runner: CommandRunner | None = None  # runs foreground commands elsewhere (the ACP client's terminal)


class AgentSession:
    hooks: SessionHooks  # (named by the trust gate's fingerprint before it is made)

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
        sources: list[ToolSource] | None = None,
        trust: ProjectTrust | None = None,
        project_trust: WorkspaceTrust | None = None,
        start_source: str | None = None,
        sandbox: WorkspaceSandbox | None = None,
    ) -> None:
        self.settings = settings
        self.root = Path(root).resolve()
        self.ports = ports
        self.workspace = Workspace(self.root)
        self.policy = policy or PermissionPolicy(self.root, mode=settings.mode, user_settings=settings.permissions)
        self.tasks = Tasks("session")
        # The OS sandbox commands and code mode's programs run in (shared by the process's
        # sessions in this workspace; probed once: ``await session.start()``).
        self.sandbox = sandbox or sandbox_for(settings, self.root)
        self.processes = ProcessManager(ports.terminal, runner=ports.runner, sandbox=self.sandbox)
        self.memo = FileReadMemo(self.root)
        self.budget = OutputBudget()
        self.cost = CostTracker(settings.prices)
        self.sink = ports.sink
        self.code_mode = CodeModeSource(agent=lambda: getattr(self, "agent", None), sandbox=lambda: self.sandbox,
                                        settings=self._code_settings)
        self.subagents = SubagentSource(self)
        assembled: list[ToolSource] = [BuiltinTools(), self.subagents, *(sources or []), self.code_mode]
        self.tools = ToolRegistry(assembled)
        # Hooks (the user's commands at points of the agent's life); a project's own hooks
        # run only once the user consented: the workspace's trust, asked once for the hooks as
        # they are now (their fingerprint), or ``trust`` given directly.
        if project_trust is not None:
            trust = project_trust.hooks_gate(lambda: self.hooks.engine.project_fingerprint())
        self.hooks = SessionHooks(self.root, ports.sink, self.tools.get, SessionInfo(
            session_id=lambda: self.id or "", transcript_path=lambda: str(self.writer.path) if self.writer else "",
            permission_mode=lambda: str(self.policy.mode)), self.tasks, trust=trust)
        self.approver: Approver = _NotifyingApprover(ports.approver, self.hooks)
        self.todos = SessionTodos(ports.sink, self._persist_todos, TodoWrite.name)
        self.subagent_log: dict[str, dict[str, Any]] = {}  # the sub-agents' messages, by the parent's call
        self._start_source = start_source or ("resume" if resume else "startup")
        self._start_context: str | None = None
        self._started = False
        self._turn_number = 0
        self._compact_blocked_told = -1
        self.prompt = PromptBuilder(self.root, guidance=[t.guidance for t in self.tools.all() if t.guidance])
        self.editor_context: EditorContext | None = None
        self.model = ModelClient(settings)
        self.store = store if store is not None else (
            SessionStore(self.root, storage=settings.session_storage, secrets=settings.secrets()) if persist else None
        )
        self.ctx = ToolContext(
            workspace=self.workspace,
            changes=_TouchingApplier(ports.changes, self),
            processes=self.processes,
            documents=ports.documents,
            terminal=ports.terminal,
            diagnostics=ports.diagnostics,
            read_memo=self.memo,
            command_timeout=settings.command_timeout,
            images=takes_images(settings),
            todos=self.todos,
        )
        # What requests carry of the conversation, and how each tool result fits the window.
        self.view = RequestView(lambda: self.settings, self.tools, self.ctx)
        self.fitter = ResultFitter(lambda: self.settings, self.tools, self.ctx, self.budget, self.touch)
        messages: list[dict[str, Any]] = []
        # The system prompt, frozen for the session between rewrite points (compaction):
        # it must stay byte for byte the same for providers' prompt caches to hold.
        self._system_text: str | None = None
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
                # The same system prompt as before the session closed (prompt caches), and
                # the memory files it or the history already showed are not shown again.
                self._system_text = loaded.system
                self.prompt.mark_memory_shown()
                self.load_warnings += self.todos.restore(loaded.todos)
                self.subagent_log = loaded.subagents
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
        # Checkpoints (for /rewind): a turn before each user message, a step before each
        # model step that may change something, every edit landed and every command run.
        self.checkpoints = SessionCheckpoints(self.root, self.id, settings.checkpoints, sink=ports.sink, tasks=self.tasks)
        if self.store is not None and resume:
            self.checkpoints.load_marks(loaded.messages, loaded.marks)
            self.checkpoints.notes = list(loaded.notes)
        self.processes.observer = self.checkpoints
        self.ctx.changes = _TouchingApplier(self.checkpoints.applier(ports.changes, ports.documents), self)
        self.rewind = SessionRewind(self)
        self.agent = Agent(
            model=self.model,
            tools=self.tools,
            context=self.ctx,
            sink=ports.sink,
            approver=self.approver,
            policy=self.policy,
            max_turns=settings.max_turns,
            log_messages=self.checkpoints.message_log(self.writer),
            hooks=AgentHooks(
                system_prompt=self._system_prompt,
                before_model_call=self._maybe_compact,
                fit_tool_result=self.fitter.fit,
                fit_nested_result=self.fitter.fit_nested,
                price=self._price,
                view=self.view.apply,
                before_tools=self._before_tools,
            ),
            messages=messages,
            tool_hooks=HookPort(self.hooks, ports.sink),
        )
        self.turn_lock = asyncio.Lock()

    @property
    def id(self) -> str | None:
        return self.writer.id if self.writer is not None else None

    @property
    def messages(self) -> list[dict[str, Any]]:
        return self.agent.messages

    # -- running -------------------------------------------------------------

    async def start(self) -> str:
        """Probe the sandbox (once per process and workspace); the line that says which one
        runs the commands. When none does although one could, a warning says so (once)."""
        await self.sandbox.start()
        warning = self.sandbox.warning()
        if warning:
            self.ports.sink.emit(Notice(warning, "warning"))
        return self.sandbox.describe()

    def _code_settings(self) -> CodeModeSettings:
        s = self.settings
        return CodeModeSettings(enabled=s.code_mode, timeout=s.code_timeout, max_calls=s.code_max_calls)

    async def send(self, text: str | list[dict[str, Any]]) -> TurnEnd:
        """Run a turn. The user's message carries a context block with what changed since
        the last one (git status, the editor, the mode), so the system prompt never has to."""
        looping = False
        try:
            if not self.sandbox.ready:
                await self.start()
            async with self.turn_lock:
                self._turn_number += 1
                self.budget.new_turn()
                self.cost.new_turn()
                await self.subagents.refresh()
                prompt = await self._hooked_prompt(text)
                if prompt is None:  # a UserPromptSubmit hook dropped it (the user was told why)
                    end = TurnEnd("done", "The prompt was not sent: a hook blocked it.")
                    self.ports.sink.emit(end)
                    return end
                block = await self.prompt.turn_context(self.editor_context, mode_note=self.policy.describe_mode())
                notes = self.fitter.source_notes() + [f"Rewind: {n}" for n in self.checkpoints.pending_notes()]
                content = with_context(prompt, with_notes(block, notes))
                await self.checkpoints.begin_turn(content, len(self.agent.messages), _label(text))
                looping = True  # from here the loop ends the turn itself, cancelled or not
                return await self.agent.send(content)
        except asyncio.CancelledError:
            if not looping:  # stopped before the loop started: the turn still ends, visibly
                self.ports.sink.emit(TurnEnd("cancelled", "Cancelled by the user."))
            raise

    async def close(self, reason: str = "other") -> None:
        """End the session (``reason`` for SessionEnd hooks: clear, prompt_input_exit, other)."""
        if self._started:
            await self.hooks.session_end(reason)
        await self.processes.shutdown()
        await self.model.close()
        await self.checkpoints.close()
        await self.tasks.wait()

    # -- the user's hooks around a prompt --------------------------------------------

    async def _hooked_prompt(self, text: str | list[dict[str, Any]]) -> str | list[dict[str, Any]] | None:
        """SessionStart (first turn) and UserPromptSubmit: the prompt with their context,
        or None when a hook blocks it (it is not sent, and not kept). A prompt with parts
        (images, @-mentions) shows the hooks its text."""
        if not self._started:
            self._started = True
            self._start_context = await self.hooks.session_start(self._start_source)
        words = text if isinstance(text, str) else "\n".join(
            str(p.get("text")) for p in text if isinstance(p, dict) and p.get("type") == "text"
        )
        blocked, context = await self.hooks.user_prompt(words)
        if blocked is not None:
            self.ports.sink.emit(Notice(f"Your prompt was not sent: {blocked}", "warning"))
            return None
        extra = [c for c in (self._start_context, context) if c]
        self._start_context = None
        if not extra:
            return text
        added = "".join(f"\n\n[context from a hook]\n{c}" for c in extra)
        if isinstance(text, str):
            return text + added
        return [*text, {"type": "text", "text": added.lstrip("\n")}]

    def _persist_todos(self, todos: list[dict[str, str]]) -> None:
        if self.writer is not None:
            self.writer.append_meta(todos=todos)

    def record_subagent(self, call_id: str, agent: str, message: dict[str, Any]) -> None:
        """A sub-agent's message: kept with the session (a resume shows it)."""
        self.subagent_log.setdefault(call_id, {"agent": agent, "messages": []})["messages"].append(message)
        if self.writer is not None:
            try:
                self.writer.append_subagent(call_id, agent, message)
            except Exception:  # persistence must never break a turn
                log.exception("could not persist a sub-agent message")

    def price(self, usage: dict[str, int], model: str) -> float | None:
        return self._price(usage, model)

    def workspace_changed(self) -> None:
        """Something changed the workspace outside the loop's own calls (a sub-agent). Nothing
        to do: the system prompt never shows what changes (the git status goes with the next
        user message's context block)."""
    async def _before_tools(self, requests: list[Any]) -> None:
        names = [r.name for r in requests]
        may_change = any((t := self.tools.get(n)) is None or not t.read_only for n in names)
        await self.checkpoints.before_tools(names, may_change)

    def rewound(self, keep: int | None, checkpoint: str, summary: str, note: str) -> None:
        """A rewind to ``checkpoint`` was done: the conversation is cut to its first
        ``keep`` messages (None: it stays), and ``note`` goes to the model with the next
        user message; both persisted, so a resume does the same. After a cut, what the
        model was shown since is forgotten: the memo of file reads, the context block's
        and the memory files' "already said" (the next block is whole; the memory files
        of the folders touched go in the system prompt, as after a resume)."""
        if note:
            self.checkpoints.notes.append(note)
        if self.writer is not None:
            self.writer.append_rewind(keep, checkpoint, summary, note)
        if keep is None:
            return
        del self.agent.messages[keep:]
        self.memo.forget_all()
        touched = list(self.prompt.touched_dirs)
        self.prompt = PromptBuilder(self.root, guidance=[t.guidance for t in self.tools.all() if t.guidance])
        for folder in touched:
            self.prompt.touch(folder / "_")  # (touch() takes a file; its folder counts)
        self._system_text = None
        self.fitter.pending_memory.clear()

    def set_mode(self, mode: Mode) -> None:
        """The permission mode, from the next tool call on."""
        self.settings = self.settings.model_copy(update={"mode": mode})
        self.policy.mode = mode

    def update_settings(self, settings: Settings) -> None:
        """New settings apply from the next model call on."""
        old = self.settings
        self.settings = settings
        self.agent.max_turns = settings.max_turns
        self.policy.mode = settings.mode
        self.cost.set_prices(settings.prices)
        self.ctx.command_timeout = settings.command_timeout
        self.ctx.images = takes_images(settings)
        if old.sandbox != settings.sandbox:  # from the next command on
            self.sandbox = sandbox_for(settings, self.root)
            self.processes.sandbox = self.sandbox
        if (old.base_url, old.api_key, old.request_timeout, old.max_retries) != (
            settings.base_url,
            settings.api_key,
            settings.request_timeout,
            settings.max_retries,
        ) or old.model != settings.model:
            previous = self.model
            self.model = ModelClient(settings)
            self.agent.model = self.model
            self.tasks.spawn(previous.close(), "close the previous model client")

    # -- hooks ---------------------------------------------------------------

    async def _system_prompt(self) -> str:
        if self._system_text is None:
            self._system_text = (await self.prompt.system()).text
            if self.writer is not None:
                try:
                    self.writer.append_meta(system=self._system_text)
                except Exception:
                    log.exception("could not persist the system prompt")
        return self._system_text

    async def assembled_prompt(self) -> Any:
        return await self.prompt.build(self.editor_context, mode_note=self.policy.describe_mode())

    # -- what requests carry ----------------------------------------------------

    def view_of(self, messages: list[dict[str, Any]]) -> elision.View:
        """``messages`` as a request carries them (no side effects)."""
        return self.view.of(messages)

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
        lines.append(self.sandbox.describe())
        lines.append(
            f"window: {window:,} tokens ({self.settings.model}); compaction at "
            f"{self.settings.compact_threshold:.0%}; old results stay for keepToolOutput={self.settings.keep_tool_output:,} "
            "tokens x steps"
        )
        return "\n".join(lines)

    async def _maybe_compact(self, agent: Agent) -> None:
        self.fitter.step_tokens = 0  # a new model step: its tool results start from nothing
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
        blocked = await self.hooks.pre_compact("auto" if auto else "manual", focus)
        if blocked is not None:
            if not auto or self._turn_number != self._compact_blocked_told:  # auto: once a turn
                self._compact_blocked_told = self._turn_number
                self.ports.sink.emit(Notice(f"A PreCompact hook blocked the compaction: {blocked}", "warning"))
            return compaction.CompactionResult(False, list(self.agent.messages),
                                               error=f"a PreCompact hook blocked it: {blocked}")
        result = await compaction.compact(
            self.agent.messages, self._summarize, focus=focus, view=self.view_of(self.agent.messages).messages
        )
        if result.ok:
            await self._after_summary(result.messages)
            self.agent.messages[:] = result.messages
            self.memo.forget_all()
            # A deliberate rewrite point: the system prompt is rebuilt with every memory
            # file in scope (the results that carried them are summarised away).
            self._system_text = None
            self.fitter.pending_memory.clear()
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

    async def _after_summary(self, messages: list[dict[str, Any]]) -> None:
        """What must stand in the context after a summary: the todo list as it is now, and
        what SessionStart hooks (source "compact") add. Joined to the summary message."""
        extra = [n for n in (self.todos.note(), await self.hooks.session_start("compact")) if n]
        at = next((i for i, m in enumerate(messages) if compaction.is_summary(m)), None)
        if extra and at is not None:
            messages[at] = {**messages[at], "content": messages[at]["content"] + "".join(f"\n\n{e}" for e in extra)}

    async def _summarize(self, messages: list[dict[str, Any]], instructions: str) -> str:
        # ``messages`` come from the view (old large outputs elided), so the request fits.
        request = [{"role": "system", "content": instructions}, *messages]
        request.append({"role": "user", "content": instructions})
        completion = await self.model.complete(request, None)
        if completion.usage:
            self._price(completion.usage, self.model.model)  # counted and persisted like any call
        return completion.content

    def touch(self, path: Path) -> None:
        """A file the agent read or changed: the memory files of its folders that the model
        has not seen go with the next tool result; the folder is recorded in the session
        (after a resume, and after a compaction, they are in the system prompt)."""
        before = len(self.prompt.touched_dirs)
        memory = self.prompt.new_memory(path)
        if memory:
            self.fitter.pending_memory.append(memory)
        if self.writer is not None and len(self.prompt.touched_dirs) > before:
            rel = self.prompt.touched_dirs[-1].relative_to(self.root).as_posix()
            try:
                self.writer.append_meta(touched=rel)
            except Exception:
                log.exception("could not persist a touched folder")

    def _price(self, usage: dict[str, int], model: str) -> float | None:
        delta = self.cost.add(usage, model)
        if self.writer is not None:
            try:
                self.writer.append_usage(usage, model)
            except Exception:
                log.exception("could not persist usage")
        return getattr(delta, "cost", None)


def _label(text: str | list[dict[str, Any]]) -> str:
    if isinstance(text, str):
        return " ".join(text.split())
    return " ".join(str(p.get("text", "")) for p in text if isinstance(p, dict) and p.get("type") == "text").strip()


def with_context(text: str | list[dict[str, Any]], block: str | None) -> str | list[dict[str, Any]]:
    """The user's message with the turn's context block after it."""
    if not block:
        return text
    if isinstance(text, str):
        return f"{text}\n\n{block}"
    return [*text, {"type": "text", "text": block}]


def with_notes(block: str | None, notes: list[str]) -> str | None:
    """The turn's context block with the tool sources' notes in it."""
    if not notes:
        return block
    text = "\n".join(notes) + "\n"
    if block is None:
        return f"{TURN_CONTEXT_OPEN}\n{text}{TURN_CONTEXT_CLOSE}"
    head, sep, tail = block.rpartition(TURN_CONTEXT_CLOSE)
    return head + text + sep + tail if sep else block + "\n" + text


class _TouchingApplier:
    """Records the files a change touches (for nested AGENTS.md) and forwards."""

    def __init__(self, inner: ChangeApplier, session: AgentSession) -> None:
        self.inner = inner
        self.session = session

    async def apply(self, changes: Any) -> Any:
        for c in changes.changes:
            self.session.touch(c.path)
        if changes.review:
            names = ", ".join(c.path.name for c in changes.changes)
            self.session.hooks.notify(f"codeloop proposes a change to {names} for your review", "review_prompt")
        # The memo keeps the text the model last read, so a re-read after this
        # change sends only what changed.
        return await self.inner.apply(changes)


class _NotifyingApprover:
    """Runs the Notification hooks (in the background) when the user is asked."""

    def __init__(self, inner: Approver, hooks: SessionHooks) -> None:
        self.inner = inner
        self.hooks = hooks

    async def approve(self, request: ApprovalRequest) -> ApprovalDecision:
        self.hooks.notify(f"codeloop needs your permission: {request.kind} {request.target}", "permission_prompt")
        return await self.inner.approve(request)
