"""Sub-agents: the ``task`` tool, a tool source of the session.

``task`` runs a child conversation: its own fresh messages, its own system prompt, a
subset of the parent's tools, a cap on its model calls, and no ``task`` of its own (no
nesting). Only its final answer, with its token use, goes back to the parent. A child
never gets more than its parent: the same policy, approver, change applier (proposals in
the editor), workspace guard and mode; its tools are picked from the parent's.

Agents: ``explore`` (the read-only tools: search and read, answer a question),
``general`` (the parent's tools), and the definitions in ``.codeloop/agents``,
``.claude/agents`` (project) and the user's folders (``codeloop.context.agent_defs``),
listed in the tool's description so the model can choose. A definition of the same
name replaces a built-in agent.

The child's events reach the host nested (``SubagentEvent`` under the parent's call
id), its messages are kept in the session file (``subagent`` records), its requests are
priced into the session's cost and counted into the parent turn's totals. Cancelling
the parent cancels the child (it runs inside the parent's tool call).
"""

from __future__ import annotations

import asyncio
import logging
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any, Protocol

from pydantic import Field

from codeloop.agent.loop import Agent, AgentHooks
from codeloop.agent.model import ModelClient
from codeloop.config import Settings
from codeloop.context.agent_defs import AgentDefs, agent_dirs, describe_for_model, load_agent_defs
from codeloop.context.budget import OutputBudget
from codeloop.context.memo import FileReadMemo
from codeloop.core.events import Event, Notice, Retry, SubagentEvent, TextDelta, TurnEnd
from codeloop.core.ports import Approver, EventSink
from codeloop.core.tasks import Tasks
from codeloop.policy.sources import default_claude_home, default_config_home
from codeloop.runtime.hooks import HookPort, SessionHooks
from codeloop.tools.base import BaseTool, Tool, ToolContext, ToolError, ToolInput
from codeloop.tools.registry import StaticSource, ToolRegistry, select_tools

log = logging.getLogger(__name__)

DEFAULT_MAX_TURNS = 25

EXPLORE_PROMPT = (
    "You explore a code base to answer one question. You can only read: search with the "
    "search tools and read files; you cannot change anything or run commands. Look until you "
    "are sure, then answer precisely and briefly: the facts asked for, with file paths and line "
    "numbers, and what you could not find."
)
GENERAL_PROMPT = (
    "You carry out one self-contained task with the tools you have, under the user's "
    "permissions (edits are proposed and reviewed as usual). Work until the task is done or "
    "you are blocked, then report what you did, what you found and what is left."
)
CHILD_HEAD = (
    "You are the sub-agent {name!r} of a coding agent working in the workspace {root}. The "
    "agent gave you the task in the user message; it sees nothing of your work except your final "
    "message, so make that message complete and self-contained (no \"see above\").\n\n"
)


@dataclass(frozen=True, slots=True)
class Blueprint:
    """A sub-agent the task tool can run."""

    name: str
    description: str
    prompt: str
    tools: tuple[str, ...] | None  # names (codeloop's or Claude Code's); None: the parent's
    disallowed: tuple[str, ...] = ()
    model: str | None = None  # None: the parent's
    max_turns: int | None = None
    read_only: bool = False  # built in: only the read-only tools


BUILTIN = (
    Blueprint("explore", "Reads and searches the code to answer a question (read-only): broad "
              "searches whose details you do not need.",
              EXPLORE_PROMPT, None, read_only=True),
    Blueprint("general", "Does a self-contained task with your tools and permissions (edits and "
              "commands too) and reports back.", GENERAL_PROMPT, None),
)


class ParentSession(Protocol):
    """What a sub-agent takes from the parent session (``runtime.session.AgentSession``)."""

    root: Path
    settings: Settings
    tools: ToolRegistry
    ctx: ToolContext
    policy: Any
    model: ModelClient
    agent: Agent
    hooks: SessionHooks
    approver: Approver
    tasks: Tasks
    sink: EventSink

    def price(self, usage: dict[str, int], model: str) -> float | None: ...

    def workspace_changed(self) -> None: ...

    def record_subagent(self, call_id: str, agent: str, message: dict[str, Any]) -> None: ...


class SubagentSource:
    """The ``ToolSource`` offering ``task``; its version changes when the definitions do."""

    name = "subagents"

    def __init__(self, session: ParentSession, config_home: Path | None = None,
                 claude_home: Path | None = None) -> None:
        self.session = session
        self.config_home = config_home if config_home is not None else default_config_home()
        self.claude_home = claude_home if claude_home is not None else default_claude_home()
        self.defs = AgentDefs()
        self._version = 0
        self._stamp: Any = None
        self._lock = asyncio.Lock()
        self._told: set[str] = set()
        self.tool = TaskTool(self)

    def tools(self) -> list[BaseTool]:
        return [self.tool]

    @property
    def version(self) -> int:
        return self._version

    # -- definitions -------------------------------------------------------------------

    def _dirs(self) -> list[Path]:
        return [d for d, _, _ in agent_dirs(self.session.root, self.config_home, self.claude_home)]

    async def refresh(self) -> None:
        """Reload the definitions when their folders changed (a stat check, in a thread)."""
        async with self._lock:
            stamp = await asyncio.to_thread(_stamp, self._dirs())
            if stamp == self._stamp:
                return
            self.defs = await asyncio.to_thread(load_agent_defs, self.session.root, self.config_home, self.claude_home)
            self._stamp = stamp
            self._version += 1
            self.tool.description = self._describe()
        for p in self.defs.problems:
            self._tell(f"Sub-agent definitions: {p}")

    def _tell(self, message: str) -> None:
        if message not in self._told:
            self._told.add(message)
            self.session.sink.emit(Notice(message, "warning"))

    def blueprints(self) -> dict[str, Blueprint]:
        out = {b.name: b for b in BUILTIN}
        for d in self.defs.agents.values():
            out[d.name] = Blueprint(d.name, d.description, d.prompt, d.tools, d.disallowed_tools, d.model, d.max_turns)
        return out

    def _describe(self) -> str:
        agents = describe_for_model(self.blueprints())  # name: description lines
        return TaskTool.base_description + "\n\nAgents (subagent_type):\n" + agents

    # -- running -------------------------------------------------------------------------

    def pick(self, name: str | None) -> Blueprint:
        blueprints = self.blueprints()
        bp = blueprints.get(name or "general")
        if bp is None:
            raise ToolError(f"there is no sub-agent {name!r}; choose one of {', '.join(blueprints)}")
        return bp

    def tools_of(self, bp: Blueprint) -> list[BaseTool]:
        """The child's tools: picked from what the parent has now (never more)."""
        parent = [t for t in self.session.tools.all() if t.for_subagents and self.session.agent.visible(t)]
        if bp.read_only:
            return [t for t in parent if t.read_only and t.kind != "Bash"]
        tools = parent
        if bp.tools is not None:
            tools, unknown = select_tools(bp.tools, parent)
            if unknown:
                self._tell(f"Sub-agent {bp.name}: {', '.join(unknown)} name no tool it can have (not a tool, or "
                           "not one its parent has); it runs without them")
        if bp.disallowed:
            gone, _ = select_tools(bp.disallowed, tools)
            tools = [t for t in tools if t not in gone]
        return tools

    async def run(self, args: TaskTool.Input, ctx: ToolContext) -> str:
        s = self.session
        bp = self.pick(args.subagent_type)
        tools = self.tools_of(bp)
        sink = _NestedSink(s.sink, ctx.call_id, bp.name)
        own_model = bp.model is not None and bp.model != s.model.model
        model = ModelClient(s.settings.model_copy(update={"model": bp.model})) if own_model else s.model
        budget = OutputBudget()
        cap = min(bp.max_turns or DEFAULT_MAX_TURNS, s.settings.max_turns)
        prompt = CHILD_HEAD.format(name=bp.name, root=s.root) + bp.prompt

        async def system_prompt() -> str:
            return prompt

        def price(usage: dict[str, int], model_name: str) -> float | None:
            cost = s.price(usage, model_name)
            s.agent.add_usage(usage, cost)  # the parent turn's totals include its children's
            return cost

        child = Agent(
            model=model,
            tools=ToolRegistry([StaticSource(f"subagent {bp.name}", tools)]),
            # Its own read memo: what the child read, the parent's model has not seen.
            context=replace(ctx, read_memo=FileReadMemo(s.root), todos=None),
            sink=sink,
            approver=s.approver,
            policy=s.policy,
            max_turns=cap,
            log_messages=_ChildLog(s, ctx.call_id, bp.name),
            hooks=AgentHooks(
                system_prompt=system_prompt,
                fit_tool_result=lambda tool, a, text: budget.fit(text, how_to_get_more=tool.more_hint(a)),
                price=price,
            ),
            tool_hooks=HookPort(s.hooks, sink, "SubagentStop"),
        )
        try:
            end = await child.send(args.prompt)
        finally:
            sink.flush()
            if not all(t.read_only for t in tools):
                s.workspace_changed()  # its edits and commands may have changed what the prompt shows
            if own_model:
                s.tasks.spawn(model.close(), f"close the model client of sub-agent {bp.name}")
        return _answer(bp, child, end, cap)


def _answer(bp: Blueprint, child: Agent, end: TurnEnd, cap: int) -> str:
    last = child.messages[-1] if child.messages else {}
    answer = (last.get("content") or "").strip() if last.get("role") == "assistant" else ""
    steps = sum(1 for m in child.messages if m.get("role") == "assistant")
    cost = f", ${end.cost:.4f}" if end.cost is not None else ""
    usage = (f"[sub-agent {bp.name}: {steps} model call{'s' if steps != 1 else ''}, "
             f"{end.prompt_tokens:,} tokens in / {end.completion_tokens:,} out{cost}]")
    if end.status == "done":
        return f"{answer or '(the sub-agent gave no answer)'}\n\n{usage}"
    if end.status == "max_turns":
        raise ToolError(f"the sub-agent {bp.name} stopped at its limit of {cap} model calls before it finished. "
                        f"What it said last: {answer or '(nothing)'}\n\n{usage}")
    raise ToolError(f"the sub-agent {bp.name} failed: {end.message}\n\n{usage}")


class TaskTool(Tool["TaskTool.Input"]):
    name = "task"
    base_description = (
        "Run a sub-agent: a fresh conversation that does one task and returns only its final answer, "
        "for work that would fill your context. It sees nothing of this conversation: the prompt says "
        "everything. Read-only agents called in one message run at once."
    )
    description = base_description
    # It changes nothing itself: each of its child's calls is decided by the policy, and the
    # child gets only the tools the mode shows (so an explore agent works in plan mode too).
    read_only = True
    kind = None
    activity = "think"  # delegated work, for clients that show calls by kind (ACP)
    claude_names = ("Task",)
    for_subagents = False  # no nesting
    guidance = "Delegate broad searches to task with subagent_type explore."

    class Input(ToolInput):
        description: str = Field(description="The task in 3-5 words.")
        prompt: str = Field(description="The whole task: what to do or find, and what to report.")
        subagent_type: str | None = Field(None, description="The agent to run (default: general).")

    def __init__(self, source: SubagentSource) -> None:
        self.source = source

    def schema(self) -> dict[str, Any]:
        return {"type": "function",
                "function": {"name": self.name, "description": self.description, "parameters": self.parameters()}}

    def summary(self, args: Input) -> str:
        return f"{args.subagent_type or 'general'}: {args.description}"

    def concurrent(self, args: Input) -> bool:
        try:
            return all(t.read_only for t in self.source.tools_of(self.source.pick(args.subagent_type)))
        except ToolError:
            return True  # it fails at once, touching nothing

    async def run(self, args: Input, ctx: ToolContext) -> str:
        return await self.source.run(args, ctx)


class _NestedSink:
    """The child's events, nested under the parent's call; its text one delta per step."""

    def __init__(self, parent: EventSink, call_id: str, agent: str) -> None:
        self.parent, self.call_id, self.agent = parent, call_id, agent
        self._text: list[str] = []

    def emit(self, event: Event) -> None:
        if isinstance(event, TextDelta):
            self._text.append(event.text)
            return
        if isinstance(event, Retry):
            self._text.clear()  # the text streamed before a retry is discarded
        else:
            self.flush()
        self.parent.emit(SubagentEvent(self.call_id, self.agent, event))

    def flush(self) -> None:
        if self._text:
            text, self._text = "".join(self._text), []
            self.parent.emit(SubagentEvent(self.call_id, self.agent, TextDelta(text)))


class _ChildLog:
    """The child's messages, kept in the session (file and memory) under the parent's call."""

    def __init__(self, session: ParentSession, call_id: str, agent: str) -> None:
        self.session, self.call_id, self.agent = session, call_id, agent

    def append(self, message: dict[str, Any]) -> None:
        self.session.record_subagent(self.call_id, self.agent, message)


def _stamp(dirs: list[Path]) -> tuple[Any, ...]:
    out: list[Any] = []
    for d in dirs:
        try:
            out.append((str(d), d.stat().st_mtime_ns,
                        tuple(sorted((p.name, p.stat().st_mtime_ns, p.stat().st_size) for p in d.glob("*.md")))))
        except OSError:
            out.append(None)
    return tuple(out)


__all__ = ["BUILTIN", "Blueprint", "DEFAULT_MAX_TURNS", "SubagentSource", "TaskTool"]
