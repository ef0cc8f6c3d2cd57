"""The user's hooks in a session: ``codeloop.services.hooks`` behind the loop's port.

``SessionHooks`` owns one session's ``HookEngine``: it (re)loads the hooks in a worker
thread whenever a settings file changed (a cheap stat check before each event), turns
every hook run into a ``HookRan`` event, shows what hooks say to the user (warnings,
``systemMessage``, project hooks skipped for want of consent), and answers the
session's own events (UserPromptSubmit, SessionStart, SessionEnd, PreCompact,
Notification). ``HookPort`` is the loop's ``ToolHooks`` for one agent (the parent's
runs Stop hooks, a sub-agent's SubagentStop ones; each sends its events to its own sink,
so a sub-agent's hook runs show nested under its card).

Project hooks (from the workspace's files) run only with the user's consent, asked by
the host through a ``ProjectTrust``; ``NoConsent`` (the default until the consent
module lands) never gives it, so project hooks are skipped and the user is told once.
User hooks (the user's own config folders) need no consent.
"""

from __future__ import annotations

import asyncio
import contextvars
import logging
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from codeloop.core.events import HookRan, Notice
from codeloop.core.ports import AfterTool, BeforeTool, EventSink, StopVerdict
from codeloop.core.tasks import Tasks
from codeloop.policy.sources import default_claude_home, default_config_home
from codeloop.services.hooks import (
    HookEngine,
    HookResult,
    HookRun,
    ProjectTrust,
    aload_hooks,
    describe_run,
    settings_stamp,
)
from codeloop.services.hooks.dialect import ToolLookup

log = logging.getLogger(__name__)

# SessionEnd hooks get at most this long (the session is closing).
SESSION_END_SECONDS = 10.0


class NoConsent:
    """Nobody has been asked whether this project's hooks may run: they do not."""

    def is_trusted(self) -> bool | None:
        return None


@dataclass
class SessionInfo:
    """What every hook's input says about the session, read when a hook runs."""

    session_id: Callable[[], str]
    transcript_path: Callable[[], str]
    permission_mode: Callable[[], str]


class SessionHooks:
    def __init__(self, root: Path, sink: EventSink, tools: ToolLookup, info: SessionInfo, tasks: Tasks, *,
                 trust: ProjectTrust | None = None, config_home: Path | None = None,
                 claude_home: Path | None = None) -> None:
        self.root = root
        self.sink = sink
        self.info = info
        self.tasks = tasks
        self.config_home = config_home if config_home is not None else default_config_home()
        self.claude_home = claude_home if claude_home is not None else default_claude_home()
        self.engine = HookEngine([], root, trust or NoConsent(), on_run=self._on_run, tools=tools)
        self._stamp: Any = None
        self._lock = asyncio.Lock()
        self._shown: set[str] = set()  # problems and skip notices already told
        # Where this run's HookRan events go, and the tool call they run for.
        self._run_sink: contextvars.ContextVar[EventSink | None] = contextvars.ContextVar("hook_sink", default=None)
        self._run_call: contextvars.ContextVar[str] = contextvars.ContextVar("hook_call", default="")

    # -- loading -------------------------------------------------------------------

    async def refresh(self) -> None:
        """Reload the hooks when a settings file changed (stat in a thread; cheap)."""
        async with self._lock:
            stamp = await asyncio.to_thread(settings_stamp, self.root, self.config_home, self.claude_home)
            if stamp == self._stamp:
                return
            hooks, problems = await aload_hooks(self.root, self.config_home, self.claude_home)
            self.engine = self.engine.with_configs(hooks, problems)
            self._stamp = stamp
        for p in problems:
            self._tell(f"Hooks: {p}", "warning")
        skipped = [h for h in self.engine.project_hooks()] if not self.engine.trusted() else []
        if skipped:
            labels = "; ".join(f"{h.event} {h.label(self.root)}" for h in skipped[:6])
            more = f" and {len(skipped) - 6} more" if len(skipped) > 6 else ""
            self._tell(f"Skipped {len(skipped)} hook(s) from this project's settings: {labels}{more}. A "
                       "project's hooks run commands on your machine, so they run only once you trust the "
                       "project; your own hooks (in your user settings) run as usual.", "warning",
                       key=f"skipped:{self.engine.project_fingerprint()}")

    def _tell(self, message: str, level: str = "info", key: str | None = None) -> None:
        key = key or message
        if key in self._shown:
            return
        self._shown.add(key)
        self.sink.emit(Notice(message, level))  # type: ignore[arg-type]

    # -- running -------------------------------------------------------------------

    async def run(self, event: str, payload: dict[str, Any], sink: EventSink | None = None,
                  call_id: str = "") -> HookResult:
        """Run ``event``'s hooks; never raises (except CancelledError)."""
        sink = sink or self.sink
        try:
            await self.refresh()
            s = self.engine.session
            s.session_id, s.transcript_path, s.permission_mode = (
                self.info.session_id(), self.info.transcript_path(), self.info.permission_mode())
            if not self.engine.configs:
                return HookResult(event=event)
            sink_token, call_token = self._run_sink.set(sink), self._run_call.set(call_id)
            try:
                result = await self.engine.run(event, payload)
            finally:
                self._run_sink.reset(sink_token)
                self._run_call.reset(call_token)
        except asyncio.CancelledError:
            raise
        except Exception as e:  # the hooks must never break a turn
            log.exception("running %s hooks failed", event)
            sink.emit(Notice(f"{event} hooks could not run: {e}", "warning"))
            return HookResult(event=event)
        for m in result.system_messages:
            sink.emit(Notice(m))
        for w in result.warnings:
            sink.emit(Notice(w, "warning"))
        return result

    def _on_run(self, run: HookRun) -> None:
        sink = self._run_sink.get() or self.sink
        o = run.outcome
        sink.emit(HookRan(
            run_id=run.run_id, hook_event=run.event, phase=run.phase,
            status="running" if run.phase == "start" or o is None else o.status,
            label=run.hook.label(self.root), line=describe_run(run, self.root, limit=300), target=run.target,
            call_id=self._run_call.get(), scope=run.hook.scope, duration=o.duration if o is not None else None,
        ))

    # -- the session's own events ----------------------------------------------------

    async def user_prompt(self, prompt: str, sink: EventSink | None = None) -> tuple[str | None, str | None]:
        """UserPromptSubmit: (why the prompt is dropped, or None; context to add, or None)."""
        r = await self.run("UserPromptSubmit", {"prompt": prompt}, sink)
        if r.stop:
            return r.stop_reason or "a UserPromptSubmit hook stopped the prompt", None
        if r.blocked:
            return r.reason or "a UserPromptSubmit hook blocked the prompt", None
        return None, r.additional_context

    async def session_start(self, source: str) -> str | None:
        """SessionStart (``startup``, ``resume``, ``clear``, ``compact``): context to add."""
        return (await self.run("SessionStart", {"source": source})).additional_context

    async def pre_compact(self, trigger: str, instructions: str | None) -> str | None:
        """PreCompact (``manual``, ``auto``): why the compaction must not happen, or None."""
        r = await self.run("PreCompact", {"trigger": trigger, "custom_instructions": instructions or ""})
        if r.blocked or r.stop:
            return r.reason or r.stop_reason or "a PreCompact hook blocked it"
        return None

    async def session_end(self, reason: str) -> None:
        try:
            await asyncio.wait_for(self.run("SessionEnd", {"reason": reason}), SESSION_END_SECONDS)
        except TimeoutError:
            log.warning("SessionEnd hooks took longer than %ss; they were stopped", SESSION_END_SECONDS)

    def notify(self, message: str, kind: str) -> None:
        """Notification (an approval or a review waiting), in the background: the
        question is asked at once, whatever the hook does."""
        self.tasks.spawn(self.run("Notification", {"message": message, "notification_type": kind}),
                         f"Notification hooks ({kind})")


class HookPort:
    """The loop's ``ToolHooks`` for one agent: PreToolUse, PostToolUse, and Stop (or
    SubagentStop for a sub-agent), with their runs shown on ``sink``."""

    def __init__(self, hooks: SessionHooks, sink: EventSink, stop_event: str = "Stop") -> None:
        self.hooks = hooks
        self.sink = sink
        self.stop_event = stop_event

    async def before_tool(self, name: str, arguments: dict[str, Any], call_id: str) -> BeforeTool:
        r = await self.hooks.run("PreToolUse", {"tool_name": name, "tool_input": arguments, "tool_use_id": call_id},
                                 self.sink, call_id)
        return BeforeTool(
            blocked=r.blocked, reason=r.reason, permission=r.permission, permission_reason=r.permission_reason,
            updated_input=dict(r.updated_input) if r.updated_input is not None else None,
            context=r.additional_context, stop=r.stop, stop_reason=r.stop_reason,
        )

    async def after_tool(self, name: str, arguments: dict[str, Any], call_id: str, result: str,
                         ok: bool) -> AfterTool:
        r = await self.hooks.run("PostToolUse", {"tool_name": name, "tool_input": arguments, "tool_use_id": call_id,
                                                 "tool_response": result}, self.sink, call_id)
        parts = [p for p in (r.reason if r.blocked else None, r.additional_context) if p]
        return AfterTool(feedback="\n".join(parts) or None, stop=r.stop, stop_reason=r.stop_reason)

    async def on_stop(self, active: bool, answer: str) -> StopVerdict:
        r = await self.hooks.run(self.stop_event, {"stop_hook_active": active}, self.sink)
        if r.stop and r.stop_reason:
            self.sink.emit(Notice(f"A {self.stop_event} hook ended the turn: {r.stop_reason}"))
        return StopVerdict(go_on=r.reason if r.blocked and not r.stop else None)


__all__ = ["HookPort", "NoConsent", "SESSION_END_SECONDS", "SessionHooks", "SessionInfo"]
