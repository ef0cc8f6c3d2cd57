"""The hooks engine: which hooks run for an event, running them, and what they decided.

``await engine.run("PreToolUse", {"tool_name": tool.name, "tool_input": {...}})``
runs every matching hook at once and folds their outcomes into one :class:`HookResult`.

What a hook's exit says (Claude Code's rules):

- exit 0: stdout is read as JSON when it is a JSON object (``continue``, ``stopReason``,
  ``suppressOutput``, ``systemMessage``, ``decision``/``reason``, ``hookSpecificOutput``
  with ``permissionDecision``, ``permissionDecisionReason``, ``updatedInput``,
  ``additionalContext``). Plain stdout of a ``UserPromptSubmit`` or ``SessionStart`` hook
  is added to the model's context; for other events it is only shown.
- exit 2: blocks — the tool call (PreToolUse), the prompt (UserPromptSubmit), the stop
  (Stop, SubagentStop: the agent goes on working), the compaction (PreCompact); after a
  tool ran (PostToolUse) stderr is fed back to the model. stdout is ignored. Events that
  cannot be blocked (SessionStart, SessionEnd, Notification) turn it into a warning.
- any other exit, a timeout, a hook that cannot start: a warning for the user; nothing is
  blocked.

A hook's ``allow`` is a *request*: the policy may grant it (skip the question) but never
over a deny or ask rule, nor for the catastrophic class; a ``deny`` is final.
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import inspect
import itertools
import json
import logging
import os
import time
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any, Literal, Protocol

from codeloop.services.hooks.config import EVENTS, MATCHER_FIELD, TOOL_EVENTS, HookConfig, Problem
from codeloop.services.hooks.dialect import MODE_TO_CLAUDE, ToolLookup, input_changes, to_claude
from codeloop.services.hooks.runner import RawRun, run_hook_command
from codeloop.tools.base import BaseTool

log = logging.getLogger(__name__)

Permission = Literal["allow", "ask", "deny"]
_RANK = {"allow": 1, "ask": 2, "deny": 3}
BLOCKABLE = frozenset({"PreToolUse", "PostToolUse", "UserPromptSubmit", "Stop", "SubagentStop", "PreCompact"})
# Who reads a blocking hook's reason.
REASON_FOR: dict[str, Literal["model", "user"]] = {
    "PreToolUse": "model",
    "PostToolUse": "model",
    "Stop": "model",
    "SubagentStop": "model",
    "UserPromptSubmit": "user",
    "PreCompact": "user",
}
PLAIN_STDOUT_IS_CONTEXT = frozenset({"UserPromptSubmit", "SessionStart"})
CONTEXT_EVENTS = frozenset({"PreToolUse", "PostToolUse", "UserPromptSubmit", "SessionStart"})
EXCERPT_CHARS = 400


class ProjectTrust(Protocol):
    """Whether the user consented to run this project's own hooks.

    ``True``: run them; ``False``: refused; ``None``: not asked yet (they are skipped,
    and the result says how many, so the host can ask).
    """

    def is_trusted(self) -> bool | None: ...


@dataclass
class HookSession:
    """The common payload fields; update them as the session goes (``engine.session``)."""

    session_id: str = ""
    transcript_path: str = ""  # the session file
    permission_mode: str = "ask"  # codeloop's mode; Claude Code's name is sent to its hooks


@dataclass(frozen=True, slots=True)
class HookOutcome:
    """What one hook run said."""

    hook: HookConfig
    run_id: str
    exit_code: int | None
    duration: float
    stdout: str = ""
    stderr: str = ""
    timed_out: bool = False
    error: str | None = None  # could not start, or the engine failed around it
    output: Mapping[str, Any] | None = None  # its JSON output, when it printed one
    blocked: bool = False
    permission: Permission | None = None
    reason: str | None = None  # why it blocked / its permissionDecisionReason
    additional_context: str | None = None
    updated_input: Mapping[str, Any] | None = None  # codeloop fields it changed
    stop: bool = False  # "continue": false
    stop_reason: str | None = None
    system_message: str | None = None
    suppress_output: bool = False
    warnings: tuple[str, ...] = ()

    @property
    def status(self) -> Literal["ok", "blocked", "denied", "warning", "timeout", "error"]:
        if self.error:
            return "error"
        if self.timed_out:
            return "timeout"
        if self.blocked:
            return "denied" if self.permission == "deny" else "blocked"
        if self.exit_code not in (0, None) or self.warnings:
            return "warning"
        return "ok"

    def excerpt(self, limit: int = EXCERPT_CHARS) -> str:
        """A short piece of what it printed (stderr first), for a card or a log line."""
        text = (self.error or self.stderr.strip() or self.stdout.strip())
        return text if len(text) <= limit else text[: limit - 1] + "…"


@dataclass(frozen=True, slots=True)
class HookRun:
    """A report for the host: a hook started (``outcome`` None) or ended."""

    phase: Literal["start", "end"]
    run_id: str
    event: str
    hook: HookConfig
    target: str | None  # the tool name, SessionStart source, … it was selected by
    started_at: float  # time.time()
    outcome: HookOutcome | None = None


@dataclass(frozen=True, slots=True)
class HookResult:
    """Every matching hook's outcome for one event, folded into one answer.

    - ``blocked``: PreToolUse: do not run the tool (``permission`` is then "deny");
      UserPromptSubmit: drop the prompt; Stop/SubagentStop: do not stop, go on working
      with ``reason`` as the instruction; PreCompact: do not compact; PostToolUse: the tool
      ran, tell the model ``reason``. ``reason_for`` says who reads ``reason``.
    - ``permission``: PreToolUse only, a REQUEST to the policy, not a decision — deny beats
      ask beats allow. "deny" is final; "ask" asks even where the policy would allow;
      "allow" may skip the question but never overrides a deny or ask rule or the
      catastrophic class. None: the hooks expressed no opinion. ``permission_reason``
      goes with it: for "deny" it is also ``reason`` (the model reads it); for "ask" show it
      in the question, for "allow" to the user only (as Claude Code does).
    - ``updated_input``: PreToolUse: the complete codeloop input to run instead (None: run
      it as it is); never set when the call is denied.
    - ``additional_context``: text for the model's context (joined, in config order).
    - ``stop``: a hook said ``"continue": false``: end the turn now (a PreToolUse call is
      not run either); ``stop_reason`` is for the user (not the model). It wins over a
      Stop hook's block.
    - ``system_messages``, ``warnings``: for the user (warnings: hooks that failed, timed
      out or printed nonsense; nothing was blocked by those).
    - ``skipped``: project hooks that matched but did not run, the project not being
      trusted (ask for consent when this is not empty and trust is undecided).
    """

    event: str
    outcomes: tuple[HookOutcome, ...] = ()
    blocked: bool = False
    reason: str | None = None
    permission: Permission | None = None
    permission_reason: str | None = None
    updated_input: Mapping[str, Any] | None = None
    additional_context: str | None = None
    stop: bool = False
    stop_reason: str | None = None
    system_messages: tuple[str, ...] = ()
    warnings: tuple[str, ...] = ()
    suppress_output: bool = False
    skipped: tuple[HookConfig, ...] = ()

    @property
    def reason_for(self) -> Literal["model", "user"]:
        return REASON_FOR.get(self.event, "user")

    @property
    def ran(self) -> int:
        return len(self.outcomes)


OnRun = Callable[[HookRun], Any]


def describe_run(run: HookRun, root: Path | None = None, limit: int | None = None) -> str:
    """One plain line for a CLI or a log: what ran and how it ended."""
    head = f"hook {run.event} {run.hook.label(root)}"
    o = run.outcome
    if run.phase == "start" or o is None:
        return f"{head}: running"
    took = f"{o.duration:.2f}s"
    status = o.status
    if status == "error":
        text = f"could not run ({o.error})"
    elif status == "timeout":
        text = f"timed out after {o.hook.timeout:g}s and was killed"
    elif status in ("blocked", "denied"):
        what = "denied the call" if status == "denied" else "blocked"
        why = f": {o.reason}" if o.reason else ""
        text = f"{what} (exit {o.exit_code}, {took}){why}"
    elif status == "warning":
        text = f"exit {o.exit_code}, {took}" + (f": {o.warnings[0]}" if o.warnings and o.exit_code == 0 else "")
        if o.exit_code not in (0, None) and o.excerpt():
            text += f": {o.excerpt()}"
    else:
        text = f"ok ({took})"
        if o.permission:
            text += f", asks to {o.permission}"
        if o.updated_input:
            text += ", rewrote the input"
        if o.additional_context:
            text += ", added context"
    line = f"{head}: {text}".replace("\n", " ")
    return line if limit is None or len(line) <= limit else line[: limit - 1] + "…"


def _str(value: Any) -> str | None:
    return value if isinstance(value, str) and value.strip() else None


def _cut(text: str, limit: int = EXCERPT_CHARS) -> str:
    text = text.strip()
    return text if len(text) <= limit else text[: limit - 1] + "…"


def interpret(event: str, hook: HookConfig, run_id: str, raw: RawRun, *, tool: str | None = None,
              tool_input: Mapping[str, Any] | None = None, root: Path | None = None,
              label: str | None = None, tool_obj: BaseTool | None = None) -> HookOutcome:
    """What one hook's exit code and output mean for ``event`` (see the module docstring)."""
    name = label or hook.label(root)
    base = HookOutcome(hook, run_id, raw.exit_code, raw.duration, stdout=raw.stdout, stderr=raw.stderr,
                       timed_out=raw.timed_out, error=raw.error)
    warnings: list[str] = []
    if raw.leftovers_killed:
        warnings.append(f"{event} hook {name} left processes running that kept its output open; they were stopped")
    if raw.error:
        return replace(base, warnings=(f"{event} hook {name} {raw.error}", *warnings))
    if raw.timed_out:
        return replace(base, warnings=(
            f"{event} hook {name} timed out after {hook.timeout:g}s and was killed; nothing was blocked", *warnings))
    if raw.exit_code == 2:
        text = raw.stderr.strip()
        if event in BLOCKABLE:
            reason = text or f"{event} hook {name} exited with code 2 (blocked) without saying why"
            if event == "PreToolUse":
                return replace(base, blocked=True, permission="deny", reason=reason, warnings=tuple(warnings))
            return replace(base, blocked=True, reason=reason, warnings=tuple(warnings))
        warnings.append(f"{event} hook {name} exited with code 2, but {event} cannot be blocked"
                        + (f": {_cut(text)}" if text else ""))
        return replace(base, warnings=tuple(warnings))
    if raw.exit_code != 0:
        text = _cut(raw.stderr) or _cut(raw.stdout)
        warnings.append(f"{event} hook {name} failed with exit code {raw.exit_code}; nothing was blocked"
                        + (f": {text}" if text else ""))
        return replace(base, warnings=tuple(warnings))

    # exit 0
    out = raw.stdout.strip()
    data: Any = None
    if out.startswith("{"):
        try:
            data = json.loads(out)
        except json.JSONDecodeError as e:
            warnings.append(f"{event} hook {name} printed output that looks like JSON but is not ({e.msg}); "
                            "it is taken as plain text")
    if not isinstance(data, dict):
        ctx = out if (event in PLAIN_STDOUT_IS_CONTEXT and out) else None
        return replace(base, additional_context=ctx, warnings=tuple(warnings))

    stop = data.get("continue") is False
    stop_reason = _str(data.get("stopReason")) if stop else None
    system_message = data["systemMessage"].strip() if _str(data.get("systemMessage")) else None
    suppress_output = data.get("suppressOutput") is True
    permission: Permission | None = None
    why: str | None = None  # the outcome's reason
    blocked = False
    updated_input: dict[str, Any] | None = None
    additional_context: str | None = None

    decision = data.get("decision")
    stated = _str(data.get("reason"))  # the hook's own words
    if decision is not None and decision not in ("block", "approve", "allow", "deny"):
        warnings.append(f"{event} hook {name}: unknown \"decision\" {decision!r} ignored (use \"block\")")
    if event == "PreToolUse":  # Claude Code's older form; hookSpecificOutput wins below
        if decision in ("approve", "allow"):
            permission = "allow"
            why = stated
        elif decision in ("block", "deny"):
            permission = "deny"
            why = stated or f"blocked by PreToolUse hook {name}"
    elif decision == "block" and event in BLOCKABLE:
        blocked = True
        if stated is None and event in ("Stop", "SubagentStop"):
            warnings.append(f"{event} hook {name} blocked the stop without a \"reason\" to tell the model")
        why = stated or f"blocked by {event} hook {name}"

    hso = data.get("hookSpecificOutput")
    if hso is not None:
        hname = hso.get("hookEventName") if isinstance(hso, dict) else None
        if not isinstance(hso, dict):
            warnings.append(f"{event} hook {name}: \"hookSpecificOutput\" must be an object; ignored")
        elif hname is not None and hname != event:
            warnings.append(f"{event} hook {name}: hookSpecificOutput is for {hname!r}, not {event!r}; ignored")
        else:
            if event == "PreToolUse":
                pd = hso.get("permissionDecision")
                if pd in ("allow", "ask", "deny"):
                    permission = pd
                    why = _str(hso.get("permissionDecisionReason"))
                    if pd == "deny" and why is None:
                        why = f"denied by PreToolUse hook {name}"
                elif pd not in (None, "defer"):
                    warnings.append(f"{event} hook {name}: unknown permissionDecision {pd!r} ignored "
                                    "(allow, deny or ask)")
                upd = hso.get("updatedInput")
                if upd is not None:
                    if not isinstance(upd, dict):
                        warnings.append(f"{event} hook {name}: \"updatedInput\" must be an object; ignored")
                    elif tool is not None:
                        changes = input_changes(tool_obj, tool, dict(tool_input or {}), upd, hook.dialect,
                                                root or Path("."))
                        if changes:
                            updated_input = changes
            if event in CONTEXT_EVENTS and _str(hso.get("additionalContext")):
                additional_context = hso["additionalContext"].strip()
    if permission == "deny":
        blocked = True
        updated_input = None
    return replace(base, output=data, stop=stop, stop_reason=stop_reason, system_message=system_message,
                   suppress_output=suppress_output, permission=permission, reason=why, blocked=blocked,
                   updated_input=updated_input, additional_context=additional_context, warnings=tuple(warnings))


def aggregate(event: str, outcomes: Iterable[HookOutcome], skipped: Iterable[HookConfig] = (),
              tool_input: Mapping[str, Any] | None = None) -> HookResult:
    """Fold several hooks' outcomes (in config order) into one :class:`HookResult`."""
    outs = tuple(outcomes)
    warnings = [w for o in outs for w in o.warnings]
    blocked = any(o.blocked for o in outs)
    reason = "\n".join(o.reason for o in outs if o.blocked and o.reason) or None
    permission: Permission | None = None
    for o in outs:
        if o.permission and (permission is None or _RANK[o.permission] > _RANK[permission]):
            permission = o.permission
    if event == "PreToolUse" and blocked:
        permission = "deny"
    permission_reason = "\n".join(o.reason for o in outs if o.permission == permission and o.reason) or None
    updated: dict[str, Any] | None = None
    if event == "PreToolUse" and not blocked:
        changes: dict[str, Any] = {}
        setter: dict[str, HookOutcome] = {}
        for o in outs:
            for k, v in (o.updated_input or {}).items():
                if k in changes and changes[k] != v:
                    warnings.append(f"PreToolUse hooks {setter[k].hook.label()} and {o.hook.label()} both rewrote "
                                    f"{k!r}; the latter's value is used")
                changes[k] = v
                setter[k] = o
        if changes:
            updated = {**dict(tool_input or {}), **changes}
    stop = any(o.stop for o in outs)
    if stop and event in ("Stop", "SubagentStop"):
        blocked = False  # "continue": false wins over a block: the agent stops
    return HookResult(
        event=event,
        outcomes=outs,
        blocked=blocked,
        reason=reason if blocked else None,
        permission=permission if event == "PreToolUse" else None,
        permission_reason=permission_reason if event == "PreToolUse" else None,
        updated_input=updated,
        additional_context="\n\n".join(o.additional_context for o in outs if o.additional_context) or None,
        stop=stop,
        stop_reason="\n".join(o.stop_reason for o in outs if o.stop_reason) or None,
        system_messages=tuple(o.system_message for o in outs if o.system_message),
        warnings=tuple(warnings),
        suppress_output=any(o.suppress_output for o in outs),
        skipped=tuple(skipped),
    )


class HookEngine:
    """Runs the configured hooks for session events.

    ``configs`` come from :func:`codeloop.services.hooks.load_hooks`; ``trust`` answers
    whether the project's own hooks may run (without it they never do); ``on_run`` is
    called with a :class:`HookRun` when each hook starts and ends (it may return an
    awaitable; its errors are logged, never raised). ``tools`` finds the tool a call names
    (the session's registry): what it knows of itself (its Claude Code names and fields)
    is what matchers select and what hooks written for Claude Code are sent; without it,
    the built-in tools.
    """

    def __init__(self, configs: Iterable[HookConfig], project_dir: Path, trust: ProjectTrust | None = None,
                 on_run: OnRun | None = None, *, session: HookSession | None = None,
                 problems: Iterable[Problem] = (), env: Mapping[str, str] | None = None,
                 tools: ToolLookup | None = None) -> None:
        self.configs: tuple[HookConfig, ...] = tuple(configs)
        self.project_dir = Path(project_dir)
        self.trust = trust
        self.on_run = on_run
        self.session = session or HookSession()
        self.problems: tuple[Problem, ...] = tuple(problems)
        self._env = dict(env) if env is not None else None
        self._ids = itertools.count(1)
        self.tools: ToolLookup = tools if tools is not None else _builtin_lookup()

    # -- what runs ---------------------------------------------------------------

    def trusted(self) -> bool:
        if self.trust is None:
            return False
        try:
            return self.trust.is_trusted() is True
        except Exception:
            log.exception("asking whether the project is trusted failed; its hooks are skipped")
            return False

    def project_hooks(self) -> list[HookConfig]:
        return [h for h in self.configs if h.is_project]

    def project_fingerprint(self) -> str:
        """A digest of the project's hooks (event, matcher, command, file): consent can be
        bound to it, so a changed set of hooks is asked about again."""
        h = hashlib.sha256()
        for c in self.project_hooks():
            h.update(json.dumps([c.event, c.matcher.text, c.command, str(c.source)]).encode())
        return h.hexdigest()

    def matching(self, event: str, target: str | None = None, *, include_untrusted: bool = False) -> list[HookConfig]:
        """The hooks ``event`` runs for ``target`` (a tool name, a SessionStart source…),
        in config order, identical commands once. Project hooks only when trusted (or asked for)."""
        if event not in EVENTS:
            raise ValueError(f"unknown hook event {event!r}; events: {', '.join(EVENTS)}")
        ok_project = include_untrusted or self.trusted()
        aliases = self._aliases(target) if event in TOOL_EVENTS else ()
        seen: set[str] = set()
        out: list[HookConfig] = []
        for h in self.configs:
            if h.event != event or not h.selects(target, aliases) or (h.is_project and not ok_project):
                continue
            if h.command in seen:
                continue  # Claude Code runs identical commands once
            seen.add(h.command)
            out.append(h)
        return out

    # -- running -----------------------------------------------------------------

    def _tool(self, name: str | None) -> BaseTool | None:
        if name is None:
            return None
        try:
            return self.tools(name)
        except Exception:  # a lookup bug must not break the hooks
            log.exception("looking up tool %r for the hooks failed", name)
            return None

    def _aliases(self, name: str | None) -> tuple[str, ...]:
        tool = self._tool(name)
        return tool.names() if tool is not None else ()

    def _environment(self) -> dict[str, str]:
        env = dict(self._env) if self._env is not None else dict(os.environ)
        env["CODELOOP_PROJECT_DIR"] = str(self.project_dir)
        env["CLAUDE_PROJECT_DIR"] = str(self.project_dir)
        return env

    def payload_for(self, event: str, payload: Mapping[str, Any], dialect: str) -> dict[str, Any]:
        """The JSON a hook of ``dialect`` gets on stdin for ``event``."""
        s = self.session
        out: dict[str, Any] = {
            "session_id": s.session_id,
            "transcript_path": s.transcript_path,
            "cwd": str(self.project_dir),
            "permission_mode": MODE_TO_CLAUDE.get(s.permission_mode, s.permission_mode) if dialect == "claude" else s.permission_mode,
            "hook_event_name": event,
        }
        out.update(payload)
        out["hook_event_name"] = event
        if event in TOOL_EVENTS and dialect == "claude" and isinstance(payload.get("tool_name"), str):
            tool = payload["tool_name"]
            given = payload.get("tool_input")
            tool_input = given if isinstance(given, dict) else {}
            name, cinput = to_claude(self._tool(tool), tool, tool_input, self.project_dir)
            out["tool_name"] = name
            out["tool_input"] = cinput
            out["codeloop_tool_name"] = tool
            out["codeloop_tool_input"] = tool_input
        return out

    async def _notify(self, run: HookRun) -> None:
        if self.on_run is None:
            return
        try:
            res = self.on_run(run)
            if inspect.isawaitable(res):
                await res
        except Exception:
            log.exception("the hook run callback failed")

    async def _run_one(self, hook: HookConfig, event: str, target: str | None, data: bytes, env: dict[str, str],
                       tool: str | None, tool_input: Mapping[str, Any] | None) -> HookOutcome:
        run_id = f"hook-{next(self._ids)}"
        started = time.time()
        await self._notify(HookRun("start", run_id, event, hook, target, started))
        try:
            raw = await run_hook_command(hook.command, data, self.project_dir, env, hook.timeout)
            outcome = interpret(event, hook, run_id, raw, tool=tool, tool_input=tool_input, root=self.project_dir,
                                label=hook.label(self.project_dir), tool_obj=self._tool(tool))
        except asyncio.CancelledError:
            end = HookRun("end", run_id, event, hook, target, started,
                          HookOutcome(hook, run_id, None, time.time() - started, error="cancelled"))
            with contextlib.suppress(BaseException):
                await asyncio.shield(self._notify(end))
            raise
        except Exception as e:  # never let one hook break the turn
            log.exception("running hook %s failed", hook.where)
            outcome = HookOutcome(hook, run_id, None, time.time() - started, error=f"failed in codeloop: {e}",
                                  warnings=(f"{event} hook {hook.label(self.project_dir)} could not run: {e}",))
        await self._notify(HookRun("end", run_id, event, hook, target, started, outcome))
        return outcome

    async def run(self, event: str, payload: Mapping[str, Any] | None = None) -> HookResult:
        """Run every hook that matches ``event`` (at once) and fold their outcomes.

        ``payload`` has the event's own fields in codeloop's terms: ``tool_name`` (the
        codeloop tool), ``tool_input`` (its arguments), ``tool_use_id``, ``tool_response``;
        ``prompt``; ``source``; ``stop_hook_active``; ``trigger``/``custom_instructions``;
        ``reason``; ``message``/``notification_type``. The common fields come from
        ``self.session``. Cancelling the call kills the hooks still running.
        """
        if event not in EVENTS:
            raise ValueError(f"unknown hook event {event!r}; events: {', '.join(EVENTS)}")
        payload = dict(payload or {})
        key = MATCHER_FIELD.get(event)
        target = payload.get(key) if key else None
        target = target if isinstance(target, str) else None
        hooks = self.matching(event, target, include_untrusted=True)
        ok_project = self.trusted()
        skipped = tuple(h for h in hooks if h.is_project and not ok_project)
        hooks = [h for h in hooks if not (h.is_project and not ok_project)]
        tool = target if event in TOOL_EVENTS else None
        tool_input = payload.get("tool_input") if isinstance(payload.get("tool_input"), dict) else None
        if not hooks:
            return HookResult(event=event, skipped=skipped)
        env = self._environment()
        data: dict[str, bytes] = {}
        for h in hooks:
            if h.dialect not in data:
                data[h.dialect] = json.dumps(self.payload_for(event, payload, h.dialect), default=str).encode()
        outcomes = await asyncio.gather(*(
            self._run_one(h, event, target, data[h.dialect], env, tool, tool_input) for h in hooks
        ))
        return aggregate(event, outcomes, skipped, tool_input)

    def with_configs(self, configs: Iterable[HookConfig], problems: Iterable[Problem] = ()) -> "HookEngine":
        """The same engine (session, trust, callback) over reloaded hooks."""
        new = HookEngine(configs, self.project_dir, self.trust, self.on_run, session=self.session,
                         problems=problems, env=self._env, tools=self.tools)
        new._ids = self._ids
        return new


def _builtin_lookup() -> ToolLookup:
    from codeloop.tools.builtin import BuiltinTools  # noqa: PLC0415 - only engines built without a registry

    by_name = {t.name: t for t in BuiltinTools().tools()}
    return by_name.get


__all__ = [
    "describe_run", "HookEngine", "HookOutcome", "HookResult", "HookRun", "HookSession", "Permission", "ProjectTrust",
    "aggregate", "interpret",
]
