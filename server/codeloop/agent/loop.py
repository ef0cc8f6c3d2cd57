"""The agent loop: stream a completion, run its tool calls, feed the results back,
until the model answers without tools (or a guard stops it)."""

from __future__ import annotations

import asyncio
import json
import logging
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, replace
from typing import Any, Protocol

from codeloop.core.events import (
    ErrorEvent,
    Event,
    Notice,
    TextDelta,
    ToolCallFinished,
    ToolCallStarted,
    TurnEnd,
    Usage,
)
from codeloop.agent.completion import Completion, ToolCallRequest
from codeloop.agent.model import ModelClient, ModelError
from codeloop.core.ports import ApprovalRequest, Approver, BeforeTool, EventSink, MessageLog, ToolHooks
from codeloop.policy.types import Decision, Kind, PermissionRequest
from codeloop.tools.base import ArgumentsError, BaseTool, ToolContext, ToolResult, first_line
from codeloop.tools.registry import ToolRegistry

log = logging.getLogger(__name__)

CANCELLED_RESULT = "Cancelled: the user stopped this turn before the tool finished."
# How a refused call's result begins (the policy, the user, the mode): run_tool_call's "denied".
DENIED_PREFIXES = ("Permission denied:", "The user denied permission")
_NOT_AVAILABLE = "is not available in the current mode"
CANCELLED_SUMMARY = "stopped by you"
IMAGES_NOTE = "The images the tool calls above returned:"
# A Stop hook may send the agent back to work at most this many times in one turn.
MAX_STOP_CONTINUATIONS = 3
STOP_HOOK_PREFIX = "[A Stop hook asks you to continue]\n"


class Policy(Protocol):
    """What the loop needs from the permission engine (codeloop.policy)."""

    def decide(self, req: PermissionRequest) -> Decision: ...

    def remember(self, req: PermissionRequest) -> list[str]: ...

    def tool_visible(self, kind: Kind | None, read_only: bool) -> bool: ...

    def describe_mode(self) -> str | None: ...


@dataclass
class AgentHooks:
    """Optional collaborators, wired by the host."""

    # The system prompt, assembled each model call (static part first).
    system_prompt: Callable[[], Awaitable[str]] | None = None
    # Called before each model call; may compact ``agent.messages`` in place.
    before_model_call: Callable[["Agent"], Awaitable[None]] | None = None
    # Called after each successful tool result: may shrink it to the output budget.
    fit_tool_result: Callable[[BaseTool, Any, str], str] | None = None
    # The same for a call a program made (run_tool_call with a parent: code mode), whose result
    # goes to the program, not the model's context. None: fit_tool_result.
    fit_nested_result: Callable[[BaseTool, Any, str], str] | None = None
    # Prices the usage of each request; returns USD or None.
    price: Callable[[dict[str, int], str], float | None] | None = None
    # What each request sends of the history (e.g. old large tool results elided);
    # ``agent.messages`` itself keeps everything.
    view: Callable[[list[dict[str, Any]]], list[dict[str, Any]]] | None = None
    # Called before the tool calls of each model step run (a checkpoint to rewind to);
    # its failure is reported as a notice and the tools run anyway.
    before_tools: Callable[[list[ToolCallRequest]], Awaitable[None]] | None = None


@dataclass
class TurnTotals:
    prompt_tokens: int = 0
    completion_tokens: int = 0
    cached_tokens: int = 0
    cost: float | None = None
    steps: int = 0

    def add(self, usage: dict[str, int], cost: float | None) -> None:
        self.prompt_tokens += usage.get("prompt_tokens", 0)
        self.completion_tokens += usage.get("completion_tokens", 0)
        self.cached_tokens += usage.get("cached_tokens", 0)
        if cost is not None:
            self.cost = (self.cost or 0.0) + cost


@dataclass(frozen=True, slots=True)
class CallOutcome:
    """What ``Agent.run_tool_call`` did: the result (after the output budget), the card's
    one-line summary, and ``status``: "ok", "error", "denied" (the policy, the user or the
    mode refused it) or "cancelled"."""

    result: ToolResult
    summary: str
    status: str


@dataclass
class _Call:
    request: ToolCallRequest
    tool: BaseTool | None = None
    args: Any = None
    early: ToolResult | None = None  # an error found while parsing
    result: ToolResult | None = None
    arguments: dict[str, Any] | None = None  # the JSON object the model sent
    ran: dict[str, Any] | None = None  # the arguments it ran with (None: it did not run)
    before: BeforeTool | None = None  # what the PreToolUse hooks said


class Agent:
    """One conversation. ``send()`` runs a turn; the history persists across turns."""

    def __init__(
        self,
        *,
        model: ModelClient,
        tools: ToolRegistry,
        context: ToolContext,
        sink: EventSink,
        approver: Approver,
        policy: Policy | None = None,
        max_turns: int = 50,
        log_messages: MessageLog | None = None,
        hooks: AgentHooks | None = None,
        messages: list[dict[str, Any]] | None = None,
        tool_hooks: ToolHooks | None = None,
    ) -> None:
        self.model = model
        self.tools = tools
        self.context = context
        self.sink = sink
        self.approver = approver
        self.policy = policy
        self.max_turns = max_turns
        self.log = log_messages
        self.hooks = hooks or AgentHooks()
        self.messages: list[dict[str, Any]] = list(messages or [])
        self.last_prompt_tokens = 0
        self.tool_hooks = tool_hooks
        self._totals: TurnTotals | None = None  # the running turn's
        self._halt: str | None = None  # a hook ended the turn: what to tell the user

    # -- history -------------------------------------------------------------

    def _commit(self, message: dict[str, Any]) -> None:
        self.messages.append(message)
        if self.log is not None:
            try:
                self.log.append(message)
            except Exception:  # persistence must never break a turn
                log.exception("could not persist a message")

    def emit(self, event: Event) -> None:
        try:
            self.sink.emit(event)
        except Exception:
            log.exception("event sink failed on %s", event.type)

    def visible(self, tool: BaseTool) -> bool:
        return self.policy is None or self.policy.tool_visible(tool.kind, tool.read_only)

    def tool_schemas(self) -> list[dict[str, Any]]:
        return self.tools.schemas(self.visible)

    async def request_messages(self, pending: list[dict[str, Any]] | None = None) -> list[dict[str, Any]]:
        system = await self.hooks.system_prompt() if self.hooks.system_prompt else None
        head = [{"role": "system", "content": system}] if system else []
        history = self.messages + (pending or [])
        if self.hooks.view is not None:
            history = self.hooks.view(history)
        return head + history

    # -- a turn --------------------------------------------------------------

    async def send(self, text: str | list[dict[str, Any]]) -> TurnEnd:
        """Run one user turn to its end. Cancelling the awaiting task cancels the turn:
        the stream stops, running commands are killed, every tool call gets a result,
        and CancelledError propagates after a TurnEnd("cancelled") event."""
        user = {"role": "user", "content": text}
        # The user's message joins the history once the model has answered it, so a
        # turn that fails on an API error does not leave the history half-done.
        pending: list[dict[str, Any]] | None = [user]
        totals = self._totals = TurnTotals()
        self._halt = None
        continued = 0  # times a Stop hook sent the agent back to work this turn
        try:
            for _step in range(self.max_turns):
                if self.hooks.before_model_call is not None:
                    await self._before_call(pending)
                messages = await self.request_messages(pending)
                streamed: list[str] = []

                def on_text(delta: str) -> None:
                    streamed.append(delta)  # noqa: B023 - called within this step only
                    self.emit(TextDelta(delta))

                def on_retry(event: Any) -> None:
                    streamed.clear()  # noqa: B023 - called within this step only
                    self.emit(event)

                try:
                    completion = await self.model.complete(
                        messages, self.tool_schemas(), on_text=on_text, on_retry=on_retry
                    )
                except asyncio.CancelledError:
                    if pending is None and streamed:
                        self._commit({"role": "assistant", "content": "".join(streamed)})
                    raise
                totals.steps += 1
                for note in completion.notices:  # how the answer came (fallbacks, server trouble)
                    self.emit(Notice(note, "warning"))
                self._account(completion, totals)
                if pending is not None:
                    for m in pending:
                        self._commit(m)
                    pending = None
                self._commit(completion.as_message())
                if not completion.tool_calls:
                    go_on = await self._stop_hooks(continued, completion.content)
                    if go_on is None:
                        return self._end("done", "", totals)
                    continued += 1
                    self._commit({"role": "user", "content": STOP_HOOK_PREFIX + go_on})
                    continue
                await self._run_tools(completion.tool_calls)
                if self._halt is not None:
                    self.emit(Notice(f"A hook ended the turn: {self._halt}", "warning"))
                    return self._end("done", self._halt, totals)
            return self._end(
                "max_turns",
                f"Stopped after {self.max_turns} model calls without a final answer (the "
                "max-turns limit). The conversation is intact: send a message to continue.",
                totals,
            )
        except ModelError as e:
            self.emit(ErrorEvent(e.message, e.kind))
            return self._end("error", e.message, totals)
        except asyncio.CancelledError:
            self._end("cancelled", "Cancelled by the user.", totals)
            raise

    async def _before_call(self, pending: list[dict[str, Any]] | None) -> None:
        assert self.hooks.before_model_call is not None
        try:
            await self.hooks.before_model_call(self)
        except asyncio.CancelledError:
            raise
        except Exception as e:  # compaction trouble must not end the turn
            log.exception("before_model_call hook failed")
            self.emit(Notice(f"Context management failed: {e}", "warning"))

    def _account(self, completion: Completion, totals: TurnTotals) -> None:
        usage = completion.usage
        if not usage:
            return
        self.last_prompt_tokens = usage.get("prompt_tokens", 0)
        cost = self.hooks.price(usage, self.model.model) if self.hooks.price else None
        totals.add(usage, cost)
        self.emit(
            Usage(
                usage.get("prompt_tokens", 0),
                usage.get("completion_tokens", 0),
                usage.get("cached_tokens", 0),
                cost,
            )
        )

    def add_usage(self, usage: dict[str, int], cost: float | None) -> None:
        """Count requests made on this turn's behalf elsewhere (a sub-agent's) into its totals."""
        if self._totals is not None:
            self._totals.add(usage, cost)

    def _end(self, status: Any, message: str, totals: TurnTotals) -> TurnEnd:
        event = TurnEnd(
            status,
            message,
            totals.prompt_tokens,
            totals.completion_tokens,
            totals.cached_tokens,
            totals.cost,
        )
        self.emit(event)
        return event

    # -- tools ---------------------------------------------------------------

    async def _run_tools(self, requests: list[ToolCallRequest]) -> None:
        calls = []
        for req in requests:
            call = _Call(req)
            parsed = self.tools.parse(req.name, req.arguments)
            if isinstance(parsed, ToolResult):
                call.early = parsed
            else:
                call.tool, call.args = parsed
            calls.append(call)
        concurrent = len(calls) > 1 and all(self._concurrent(c) for c in calls)
        try:
            await self._before_tools(requests)
            if concurrent:
                await asyncio.gather(*(self._run_one(c) for c in calls))
            else:
                for c in calls:
                    await self._run_one(c)
        finally:
            # Every tool call gets a result, in the calls' order, even when cancelled.
            images: list[dict[str, Any]] = []
            for c in calls:
                result = c.result or ToolResult(False, CANCELLED_RESULT)
                self._commit({"role": "tool", "tool_call_id": c.request.id, "content": result.text})
                images += [{"type": "image_url", "image_url": {"url": i.data_url()}} for i in result.images]
            if images:
                # Tool messages carry text only (OpenAI's API): images follow as a user message.
                self._commit({"role": "user", "content": [{"type": "text", "text": IMAGES_NOTE}, *images]})

    async def _before_tools(self, requests: list[ToolCallRequest]) -> None:
        if self.hooks.before_tools is None:
            return
        try:
            await self.hooks.before_tools(requests)
        except asyncio.CancelledError:
            raise
        except Exception as e:  # a checkpoint's trouble must not stop the tools
            log.exception("before_tools hook failed")
            self.emit(Notice(f"Could not record a checkpoint before this step: {e}", "warning"))

    async def run_tool_call(self, name: str, arguments: dict[str, Any] | str, *, call_id: str,
                            parent: str = "", context: ToolContext | None = None) -> CallOutcome:
        """Run one tool call the way the model's calls run: the arguments checked against the
        tool's schema, the permission policy (and the user's answer), the tool in the
        session's context (proposals and their review, the workspace guard), the output
        budget, and the events, nested under ``parent`` (a tool call id). ``context``: the tool
        context to run in (default: the session's). Nothing joins the history: the caller (code
        mode) reports to the model. Never raises, but CancelledError."""
        raw = arguments if isinstance(arguments, str) else json.dumps(arguments, ensure_ascii=False)
        call = _Call(ToolCallRequest(call_id, name, raw))
        parsed = self.tools.parse(name, raw)
        if isinstance(parsed, ToolResult):
            call.early = parsed
        else:
            call.tool, call.args = parsed
        finished: list[ToolCallFinished] = []
        await self._run_one(call, parent=parent, seen=finished.append, base=context)
        result = call.result or ToolResult(False, CANCELLED_RESULT)
        summary = finished[-1].summary if finished else first_line(result.text)
        if result.ok:
            status = "ok"
        elif call.tool is not None and call.early is None and (
            result.text.startswith(DENIED_PREFIXES) or _NOT_AVAILABLE in (result.text.splitlines() or [""])[0]
        ):
            status = "denied"
        else:
            status = "error"
        return CallOutcome(result, summary, status)

    async def _run_one(self, call: _Call, *, parent: str = "", seen: Callable[[ToolCallFinished], None] | None = None,
                       base: ToolContext | None = None) -> None:
        req = call.request
        tool, args = call.tool, call.args
        summary = ""
        code = None
        if tool is not None and args is not None:
            try:
                summary = tool.summary(args)
                code = tool.shown_code(args)
            except Exception:  # a summary must never break a turn
                log.exception("summary of %s failed", tool.name)
        try:
            arguments = json.loads(req.arguments) if req.arguments.strip() else {}
            if not isinstance(arguments, dict):
                arguments = {"_raw": req.arguments}
        except json.JSONDecodeError:
            arguments = {"_raw": req.arguments[:500]}
        call.arguments = arguments
        self.emit(ToolCallStarted(req.id, req.name, summary, arguments, tool.origin if tool is not None else "",
                                  parent, code[1] if code else "", code[0] if code else ""))
        try:
            if call.early is not None:
                result = call.early
            else:
                assert tool is not None and args is not None
                result = await self._guarded(call, base)
            fit = (self.hooks.fit_nested_result if parent else None) or self.hooks.fit_tool_result
            if fit is not None and result.ok and tool is not None:
                result = ToolResult(result.ok, fit(tool, call.args, result.text), result.images)
            result = await self._after_tool(call, result)
        except asyncio.CancelledError:
            self.emit(ToolCallFinished(req.id, req.name, False, CANCELLED_SUMMARY, CANCELLED_RESULT, "cancelled",
                                       parent))
            raise
        call.result = result
        finished = ToolCallFinished(req.id, req.name, result.ok, self._outcome(call, result), result.text,
                                    "ok" if result.ok else "error", parent)
        if seen is not None:
            seen(finished)
        self.emit(finished)

    def _outcome(self, call: _Call, result: ToolResult) -> str:
        if call.tool is None or call.args is None:
            return first_line(result.text)
        try:
            return call.tool.outcome(call.args, result)
        except Exception:  # a summary must never break a turn
            log.exception("outcome summary of %s failed", call.tool.name)
            return first_line(result.text)

    async def _guarded(self, call: _Call, base: ToolContext | None = None) -> ToolResult:
        """Run the PreToolUse hooks, apply the permission policy, then run the tool."""
        tool, args, call_id = call.tool, call.args, call.request.id
        assert tool is not None
        ctx = replace(base or self.context, call_id=call_id, review_edits=True)
        if not self.visible(tool):
            note = (self.policy.describe_mode() if self.policy is not None else None) or ""
            return ToolResult(
                False,
                f"Error: {tool.name} is not available in the current mode. {note}".strip(),
            )
        refused = await self._before_tool(call)
        if refused is not None:
            return refused
        args = call.args
        hook = call.before.permission if call.before is not None else None
        try:
            request = tool.permission(args, ctx)
        except Exception as e:  # a tool's bug (or a path it cannot handle) refuses the call
            log.exception("permission check of %s failed", tool.name)
            return ToolResult(False, f"Error: {tool.name} could not check this call: {type(e).__name__}: {e}")
        if request is None or self.policy is None:
            if (request is not None and request.kind in ("Bash",)) or hook == "ask":
                # No policy engine: ask for every command (and what a hook wants asked).
                request = request or PermissionRequest("Tool", tool.name, ctx.workspace.root)
                denied = await self._ask(request, self._hook_question(call) if hook == "ask" else None, call_id)
                if denied is not None:
                    return denied
            return await self._run(call, ctx)
        before = list(getattr(self.policy, "problems", None) or [])
        decision = self.policy.decide(request)
        # decide() re-reads the settings files when they changed: report new problems
        # (a file broken mid-session) now, with their path and line.
        for problem in getattr(self.policy, "problems", None) or []:
            if problem not in before:
                self.emit(Notice(f"Permission settings: {problem}", "warning"))
        if decision.action == "deny":
            why = decision.reason + (f" (rule {decision.rule})" if decision.rule else "")
            return ToolResult(False, f"Permission denied: {why}. Do not retry this; choose another way or ask the user.")
        granted = hook == "allow" and _hook_may_allow(decision)
        if request.kind in ("Edit", "Write") and not decision.confirm:
            # Edits are asked by their review (the diff), not by an approval.
            ctx.review_edits = (decision.action == "ask" and not granted) or hook == "ask"
        elif decision.action == "ask" and not granted:
            # decision.confirm: the user answers this very call whatever the mode, and the
            # edit is reviewed too (no applier may land it unseen).
            denied = await self._ask(request, decision, call_id)
            if denied is not None:
                return denied
        elif decision.action == "allow" and hook == "ask":
            denied = await self._ask(request, self._hook_question(call), call_id)
            if denied is not None:
                return denied
        return await self._run(call, ctx)

    async def _run(self, call: _Call, ctx: ToolContext) -> ToolResult:
        assert call.tool is not None
        call.ran = call.arguments if call.ran is None else call.ran
        return await self.tools.run(call.tool, call.args, ctx)

    def _concurrent(self, call: _Call) -> bool:
        if call.tool is None:
            return False
        try:
            return bool(call.tool.concurrent(call.args))
        except Exception:  # a tool's bug: run it on its own
            log.exception("%s.concurrent failed", call.tool.name)
            return False

    # -- hooks (the user's commands around tool calls and the stop) ----------------------

    async def _before_tool(self, call: _Call) -> ToolResult | None:
        """PreToolUse: a refusal for the model, or None to go on (``call.args`` may now be
        the hooks' rewrite, checked by the tool)."""
        if self.tool_hooks is None or call.tool is None:
            return None
        tool = call.tool
        before = call.before = await self.tool_hooks.before_tool(tool.name, dict(call.arguments or {}), call.request.id)
        if before.stop:
            self._halt = before.stop_reason or f"a PreToolUse hook stopped before {tool.name}"
            return ToolResult(False, f"Not run: a hook ended the turn before {tool.name} ran.")
        if before.blocked or before.permission == "deny":
            why = before.reason or "no reason given"
            return ToolResult(False, f"Blocked by a PreToolUse hook: {why}")
        if before.updated_input is not None:
            try:
                call.args = tool.validate(dict(before.updated_input))
            except ArgumentsError as e:
                return ToolResult(False, f"Error: a PreToolUse hook rewrote the arguments of {tool.name}, "
                                         f"and they are not valid for it: {e}")
            except Exception as e:  # a validator bug must not kill the loop
                log.exception("validating hook arguments for %s failed", tool.name)
                return ToolResult(False, f"Error: could not check the arguments a hook gave {tool.name}: {e}")
            call.ran = dict(before.updated_input)
        return None

    def _hook_question(self, call: _Call) -> Decision:
        why = call.before.permission_reason if call.before is not None else None
        return Decision("ask", f"a PreToolUse hook asks for your answer{': ' + why if why else ''}")

    async def _after_tool(self, call: _Call, result: ToolResult) -> ToolResult:
        """PostToolUse (when the tool ran): the hooks' feedback, and PreToolUse's context,
        join the result."""
        notes = [call.before.context] if call.before is not None and call.before.context else []
        if self.tool_hooks is not None and call.tool is not None and call.ran is not None:
            after = await self.tool_hooks.after_tool(call.tool.name, dict(call.ran), call.request.id, result.text,
                                                     result.ok)
            if after.feedback:
                notes.append(after.feedback)
            if after.stop and self._halt is None:
                self._halt = after.stop_reason or f"a PostToolUse hook stopped after {call.tool.name}"
        if not notes:
            return result
        text = result.text + "".join(f"\n\n[hook] {n}" for n in notes)
        return ToolResult(result.ok, text, result.images)

    async def _stop_hooks(self, continued: int, answer: str) -> str | None:
        """Stop (SubagentStop for a sub-agent): the instruction to go on with, or None."""
        if self.tool_hooks is None:
            return None
        verdict = await self.tool_hooks.on_stop(continued > 0, answer)
        if verdict.go_on is None:
            return None
        if continued >= MAX_STOP_CONTINUATIONS:
            self.emit(Notice(f"A Stop hook asked to go on again; the turn ends here (at most "
                             f"{MAX_STOP_CONTINUATIONS} continuations a turn). It said: {verdict.go_on}", "warning"))
            return None
        return verdict.go_on

    async def _ask(self, request: PermissionRequest, decision: Decision | None, call_id: str) -> ToolResult | None:
        answer = await self.approver.approve(
            ApprovalRequest(
                kind=request.kind,
                target=request.target,
                cwd=str(request.cwd),
                reason=decision.reason if decision else "commands need approval",
                suggested_rule=decision.suggested_rule if decision else None,
                call_id=call_id,
            )
        )
        if answer.answer == "deny":
            extra = f" The user said: {answer.message}" if answer.message else ""
            return ToolResult(False, f"The user denied permission to run this ({request.kind}: {request.target}).{extra}")
        if answer.answer == "allow_always" and self.policy is not None:
            try:
                rules = self.policy.remember(request)
                if rules:
                    self.emit(Notice("Always allowed from now on: " + ", ".join(rules)))
            except Exception as e:
                self.emit(Notice(f"Could not save the rule: {e}", "warning"))
        return None


def _hook_may_allow(decision: Decision) -> bool:
    """A hook's "allow" skips only the question the policy asks by default: never a deny
    or an ask rule, the catastrophic class, or a change to the agent's own configuration."""
    return decision.action == "ask" and decision.rule is None and not decision.catastrophic and not decision.confirm


__all__ = ["Agent", "AgentHooks", "CallOutcome", "MAX_STOP_CONTINUATIONS", "Policy", "TurnTotals"]
