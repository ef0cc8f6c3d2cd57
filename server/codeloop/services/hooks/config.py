"""Hook definitions: where they come from and what they select.

Hooks live under ``"hooks"`` in the settings files, in Claude Code's shape::

    {"hooks": {"PreToolUse": [{"matcher": "Bash|Edit",
                               "hooks": [{"type": "command", "command": "…", "timeout": 30}]}]}}

Files, in the order their hooks are kept (that order breaks ties when several hooks
rewrite the same tool input: later wins, so the more specific file does):

- user: ``<config home>/settings.json`` (``~/.config/codeloop``), then Claude Code's
  ``~/.claude/settings.json`` (or ``$CLAUDE_CONFIG_DIR/settings.json``);
- project: ``.codeloop/settings.json``, ``.codeloop/settings.local.json``,
  ``.claude/settings.json``, ``.claude/settings.local.json``.

Every hook from a file inside the workspace is a PROJECT hook (a cloned repository's
hooks run commands: they need consent); the others are USER hooks.

A broken file, event or entry is a :class:`Problem` naming the file and the entry; the
rest of that file and the other files still load. ``"disableAllHooks": true`` in a user
file turns every hook off; in a project file it turns off that project's hooks only (a
repository cannot switch off the user's own hooks).
"""

from __future__ import annotations

import json
import math
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

from codeloop.policy.sources import default_claude_home  # noqa: F401 - part of this package's API

Scope = Literal["user", "project"]
# Which payload shape a hook is sent: Claude Code's tool names and input fields, or codeloop's.
Dialect = Literal["claude", "codeloop"]

EVENTS: tuple[str, ...] = (
    "PreToolUse",
    "PostToolUse",
    "UserPromptSubmit",
    "Stop",
    "SubagentStop",
    "PreCompact",
    "SessionStart",
    "SessionEnd",
    "Notification",
)
TOOL_EVENTS = frozenset({"PreToolUse", "PostToolUse"})
# The payload field a matcher is tested against, per event; the other events have no matcher.
MATCHER_FIELD: dict[str, str] = {
    "PreToolUse": "tool_name",
    "PostToolUse": "tool_name",
    "SessionStart": "source",  # startup | resume | clear | compact
    "PreCompact": "trigger",  # manual | auto
    "SessionEnd": "reason",
    "Notification": "notification_type",
}
# Events Claude Code has that codeloop does not run (yet): named in the problem, not "unknown".
KNOWN_UNSUPPORTED = frozenset({
    "PostToolUseFailure", "PermissionRequest", "PermissionDenied", "SubagentStart", "PostCompact",
    "StopFailure", "Setup", "ConfigChange", "WorktreeCreate", "WorktreeRemove",
})

DEFAULT_TIMEOUT = 60.0
MAX_SETTINGS_BYTES = 2 * 1024 * 1024
_SIMPLE_MATCHER = re.compile(r"^[A-Za-z0-9_|]+$")


@dataclass(frozen=True, slots=True)
class Problem:
    """Something wrong in a settings file; ``where`` names the file (and entry)."""

    where: str
    message: str
    path: Path | None = None

    def __str__(self) -> str:
        return f"{self.where}: {self.message}"


@dataclass(frozen=True, slots=True)
class SettingsFile:
    path: Path
    scope: Scope
    dialect: Dialect


def settings_files(root: Path, config_home: Path | None, claude_home: Path | None) -> list[SettingsFile]:
    """The settings files hooks are read from, in order (user files only when their home is given)."""
    files: list[SettingsFile] = []
    if config_home is not None:
        files.append(SettingsFile(config_home / "settings.json", "user", "codeloop"))
    if claude_home is not None:
        files.append(SettingsFile(claude_home / "settings.json", "user", "claude"))
    files += [
        SettingsFile(root / ".codeloop" / "settings.json", "project", "codeloop"),
        SettingsFile(root / ".codeloop" / "settings.local.json", "project", "codeloop"),
        SettingsFile(root / ".claude" / "settings.json", "project", "claude"),
        SettingsFile(root / ".claude" / "settings.local.json", "project", "claude"),
    ]
    return files


@dataclass(frozen=True, slots=True)
class Matcher:
    """A hook matcher, with Claude Code's semantics.

    Empty or ``*``: everything. Only letters, digits, ``_`` and ``|``: exact names
    (``Edit|Write``; ``Edit`` does not select ``MultiEdit``). Anything else: a regular
    expression searched in the name (``mcp__github__.*``, ``Notebook.*``). Case counts.
    """

    text: str
    names: frozenset[str] | None = None  # the exact names, for the simple form
    regex: re.Pattern[str] | None = None

    @classmethod
    def parse(cls, text: str) -> "Matcher":
        """Raises re.error for a bad regular expression."""
        t = text.strip()
        if t in ("", "*"):
            return cls(t)
        if _SIMPLE_MATCHER.match(t):
            return cls(t, names=frozenset(n for n in t.split("|") if n))
        return cls(t, regex=re.compile(t))

    @property
    def matches_all(self) -> bool:
        return self.names is None and self.regex is None

    def test(self, name: str) -> bool:
        if self.matches_all:
            return True
        if self.names is not None:
            return name in self.names
        assert self.regex is not None
        return self.regex.search(name) is not None


@dataclass(frozen=True, slots=True)
class HookConfig:
    """One hook command, with where it came from."""

    event: str
    matcher: Matcher
    command: str
    timeout: float
    source: Path  # the settings file
    scope: Scope  # "project": from the workspace's files (needs consent); "user": the user's own
    dialect: Dialect  # the payload it is sent (Claude Code's names, or codeloop's)
    where: str  # "<file>: hooks.PreToolUse[0].hooks[1]"

    @property
    def is_project(self) -> bool:
        return self.scope == "project"

    def selects(self, target: str | None, aliases: tuple[str, ...] = ()) -> bool:
        """Whether this hook runs for ``target`` (a tool name, a SessionStart source, …).

        A tool is tried under every name it has: ``aliases`` are its other names (the
        tool's Claude Code names, ``BaseTool.claude_names``), so ``Bash`` selects the shell
        tools. Events without a matcher field (UserPromptSubmit, Stop, SubagentStop)
        ignore the matcher.
        """
        if self.event not in MATCHER_FIELD or self.matcher.matches_all:
            return True
        if target is None:
            return False
        candidates = (target, *aliases) if self.event in TOOL_EVENTS else (target,)
        return any(self.matcher.test(c) for c in candidates)

    def label(self, root: Path | None = None) -> str:
        """A short name for the UI: the command's first line, cut, and its file."""
        cmd = self.command.strip().splitlines()[0] if self.command.strip() else self.command
        if len(cmd) > 60:
            cmd = cmd[:57] + "…"
        src = str(self.source)
        if root is not None:
            try:
                src = self.source.relative_to(root).as_posix()
            except ValueError:
                pass
        return f"{cmd} ({src})"


@dataclass
class _FileResult:
    hooks: list[HookConfig] = field(default_factory=list)
    problems: list[Problem] = field(default_factory=list)
    disable_all: bool = False


def _line_of(text: str, needle: str) -> int | None:
    idx = text.find(needle)
    return None if idx < 0 else text.count("\n", 0, idx) + 1


def parse_hooks(data: Any, sf: SettingsFile, text: str = "") -> _FileResult:
    """The hooks of one parsed settings object (see the module docstring)."""
    res = _FileResult()
    label = str(sf.path)

    def where(path: str, needle: str | None = None) -> str:
        line = _line_of(text, needle) if (needle and text) else None
        return f"{label}:{line}: {path}" if line else f"{label}: {path}"

    def problem(path: str, msg: str, needle: str | None = None) -> None:
        res.problems.append(Problem(where(path, needle), msg, sf.path))

    if not isinstance(data, dict):
        res.problems.append(Problem(label, f"settings must be a JSON object, not {type(data).__name__}; no hooks loaded from it", sf.path))
        return res
    if data.get("disableAllHooks") is True:
        res.disable_all = True
    hooks = data.get("hooks")
    if hooks is None:
        return res
    if not isinstance(hooks, dict):
        problem("hooks", f'"hooks" must be an object mapping event names to lists, not {type(hooks).__name__}', '"hooks"')
        return res
    for event, groups in hooks.items():
        epath = f"hooks.{event}"
        if event not in EVENTS:
            why = ("is a Claude Code event codeloop does not run" if event in KNOWN_UNSUPPORTED
                   else "is not a hook event")
            problem(epath, f"{event!r} {why}; its hooks are ignored (events: {', '.join(EVENTS)})", json.dumps(event))
            continue
        if not isinstance(groups, list):
            problem(epath, f"must be a list of {{\"matcher\", \"hooks\"}} objects, not {type(groups).__name__}", json.dumps(event))
            continue
        for gi, group in enumerate(groups):
            gpath = f"{epath}[{gi}]"
            if not isinstance(group, dict):
                problem(gpath, f"must be an object with \"matcher\" and \"hooks\", not {type(group).__name__}", json.dumps(event))
                continue
            raw_matcher = group.get("matcher", "")
            if raw_matcher is None:
                raw_matcher = ""
            if not isinstance(raw_matcher, str):
                problem(f"{gpath}.matcher", "must be a string (a tool name or a regular expression), not "
                        f"{type(raw_matcher).__name__}; this group is skipped", json.dumps(event))
                continue
            try:
                matcher = Matcher.parse(raw_matcher)
            except re.error as e:
                problem(f"{gpath}.matcher", f"{raw_matcher!r} is not a valid regular expression ({e}); "
                        "this group is skipped", json.dumps(raw_matcher))
                continue
            entries = group.get("hooks")
            if not isinstance(entries, list):
                got = type(entries).__name__ if entries is not None else "missing"
                problem(f"{gpath}.hooks", f"must be a list of hook objects, not {got}", json.dumps(event))
                continue
            for hi, entry in enumerate(entries):
                hpath = f"{gpath}.hooks[{hi}]"
                hook = _parse_entry(entry, event, matcher, sf, hpath, problem)
                if hook is not None:
                    res.hooks.append(HookConfig(
                        event=event, matcher=matcher, command=hook[0], timeout=hook[1], source=sf.path,
                        scope=sf.scope, dialect=hook[2], where=where(hpath, json.dumps(hook[0])),
                    ))
    return res


def _parse_entry(entry: Any, event: str, matcher: Matcher, sf: SettingsFile, hpath: str,
                 problem) -> tuple[str, float, Dialect] | None:
    if not isinstance(entry, dict):
        problem(hpath, f'must be an object like {{"type": "command", "command": "…"}}, not {type(entry).__name__}')
        return None
    kind = entry.get("type", "command")
    if kind != "command":
        problem(f"{hpath}.type", f"hooks of type {kind!r} are not supported (only \"command\"); this hook is skipped")
        return None
    command = entry.get("command")
    if not isinstance(command, str) or not command.strip():
        problem(f"{hpath}.command", "must be a non-empty string (the shell command to run); this hook is skipped")
        return None
    timeout = entry.get("timeout", DEFAULT_TIMEOUT)
    if timeout is None:
        timeout = DEFAULT_TIMEOUT
    if isinstance(timeout, bool) or not isinstance(timeout, (int, float)) or not math.isfinite(timeout) or not timeout > 0:
        problem(f"{hpath}.timeout", f"must be a positive number of seconds, not {timeout!r}; this hook is skipped",
                json.dumps(command))
        return None
    dialect: Dialect = sf.dialect
    payload = entry.get("payload")
    if payload is not None:
        if payload not in ("claude", "codeloop"):
            problem(f"{hpath}.payload", f'must be "claude" or "codeloop", not {payload!r}; this hook is skipped',
                    json.dumps(command))
            return None
        dialect = payload
    return command, float(timeout), dialect


def load_file(sf: SettingsFile) -> _FileResult | None:
    """The hooks of one settings file; None when the file does not exist (blocking)."""
    label = str(sf.path)
    try:
        if not sf.path.is_file():
            return None
        if sf.path.stat().st_size > MAX_SETTINGS_BYTES:
            return _FileResult(problems=[Problem(label, "the file is too large to be a settings file; no hooks loaded from it", sf.path)])
        text = sf.path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as e:
        return _FileResult(problems=[Problem(label, f"cannot be read ({e}); no hooks loaded from it", sf.path)])
    if not text.strip():
        return _FileResult()
    try:
        data = json.loads(text)
    except json.JSONDecodeError as e:
        return _FileResult(problems=[Problem(f"{label}:{e.lineno}",
                                             f"invalid JSON ({e.msg}, column {e.colno}); no hooks loaded from it", sf.path)])
    return parse_hooks(data, sf, text)


def load_hooks(root: Path, config_home: Path | None = None, claude_home: Path | None = None, *,
               files: list[SettingsFile] | None = None) -> tuple[list[HookConfig], list[Problem]]:
    """Every hook of the settings files for the workspace ``root`` (blocking: call it in a thread).

    ``config_home`` is codeloop's user folder (``codeloop.policy.sources.default_config_home()``)
    and ``claude_home`` Claude Code's (:func:`default_claude_home`); ``None`` leaves that
    user file out (tests, or a host that wants project hooks only). ``files`` replaces
    the list altogether.
    """
    hooks: list[HookConfig] = []
    problems: list[Problem] = []
    disable_user = disable_project = False
    for sf in files if files is not None else settings_files(root, config_home, claude_home):
        res = load_file(sf)
        if res is None:
            continue
        problems += res.problems
        hooks += res.hooks
        if res.disable_all:
            if sf.scope == "user":
                disable_user = True
            else:
                disable_project = True
    if disable_user:
        return [], problems
    if disable_project:
        hooks = [h for h in hooks if not h.is_project]
    return hooks, problems
