"""Where rules come from: the editor's settings, the user config file, and the
project's ``.codeloop/settings.json`` and ``.codeloop/settings.local.json``.

A malformed source (bad JSON, wrong shape, a rule that does not parse) is reported
with its path and line. Failing closed: its *allow* rules are all ignored, while the
deny and ask rules that do parse still hold (dropping a deny rule because a
neighbouring rule has a typo would make the policy more permissive, not less).
"""

from __future__ import annotations

import json
import logging
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from codeloop.edits.disk import ensure_codeloop_gitignore, write_atomic
from codeloop.policy.rules import RuleError, RuleSet, parse_rule
from codeloop.policy.types import ProjectRuleGate

log = logging.getLogger(__name__)

CLASSES = ("allow", "ask", "deny")
MAX_SETTINGS_BYTES = 2 * 1024 * 1024


@dataclass
class Source:
    label: str
    path: Path | None
    rules: RuleSet = field(default_factory=RuleSet)
    problems: list[str] = field(default_factory=list)

    @property
    def malformed(self) -> bool:
        return bool(self.problems)


def default_config_home() -> Path:
    xdg = os.environ.get("XDG_CONFIG_HOME")
    base = Path(xdg) if xdg else Path.home() / ".config"
    return base / "codeloop"


def default_claude_home() -> Path:
    """Claude Code's user folder: ``$CLAUDE_CONFIG_DIR`` or ``~/.claude``."""
    env = os.environ.get("CLAUDE_CONFIG_DIR")
    return Path(env) if env else Path.home() / ".claude"


def _line_of(text: str | None, needle: str, start: int = 0) -> int | None:
    if not text:
        return None
    idx = text.find(needle, start)
    if idx < 0:
        return None
    return text.count("\n", 0, idx) + 1


def _where(label: str, line: int | None) -> str:
    return f"{label}:{line}" if line else label


def load_permissions(data: Any, label: str, home: Path, text: str | None = None,
                     path: Path | None = None) -> Source:
    """Rules from a settings object: ``{"permissions": {"allow": [...], ...}}``.

    A bare ``{"allow": [...], "ask": [...], "deny": [...]}`` is accepted too (the
    editor's ``codeloop.permissions`` setting has that shape).
    """
    src = Source(label, path)
    if data is None:
        return src
    if not isinstance(data, dict):
        src.problems.append(f"{_where(label, 1)}: settings must be a JSON object, not {type(data).__name__}; its rules are ignored")
        return src
    if "permissions" in data:
        perms = data["permissions"]
        if perms is None:
            return src
        if not isinstance(perms, dict):
            line = _line_of(text, '"permissions"')
            src.problems.append(f"{_where(label, line)}: \"permissions\" must be an object with allow/ask/deny lists, "
                                f"not {type(perms).__name__}; its rules are ignored")
            return src
    elif any(k in data for k in CLASSES):
        perms = data
    else:
        return src
    allow_ok = True
    for cls in CLASSES:
        if cls not in perms or perms[cls] is None:
            continue
        items = perms[cls]
        key_line = _line_of(text, f'"{cls}"')
        if not isinstance(items, list):
            src.problems.append(f"{_where(label, key_line)}: \"{cls}\" must be a list of rule strings, "
                                f"not {type(items).__name__}")
            allow_ok = False
            continue
        search_from = 0
        if text and key_line:
            search_from = text.find(f'"{cls}"')
        for item in items:
            line = None
            if isinstance(item, str) and text:
                encoded = json.dumps(item)
                line = _line_of(text, encoded, max(search_from, 0)) or _line_of(text, encoded)
            try:
                rule = parse_rule(item, home=home, source=label)
            except RuleError as e:
                src.problems.append(f"{_where(label, line or key_line)}: {e}")
                allow_ok = False
                continue
            if rule is not None:
                src.rules.of(cls).append(rule)  # type: ignore[arg-type]
    if not allow_ok:
        if src.rules.allow:
            src.problems.append(f"{label}: because of the problem(s) above, its allow rules are ignored "
                                f"(its deny and ask rules still apply)")
        src.rules.allow.clear()
    return src


def load_file(path: Path, home: Path) -> Source | None:
    """The rules of one settings file, or None if it does not exist."""
    label = str(path)
    try:
        if not path.is_file():
            return None
        if path.stat().st_size > MAX_SETTINGS_BYTES:
            return Source(label, path, problems=[f"{label}: the file is too large to be a settings file; its rules are ignored"])
        text = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as e:
        return Source(label, path, problems=[f"{label}: cannot be read ({e}); its rules are ignored"])
    if not text.strip():
        return Source(label, path)
    try:
        data = json.loads(text)
    except json.JSONDecodeError as e:
        return Source(label, path, problems=[f"{label}:{e.lineno}: invalid JSON ({e.msg}, column {e.colno}); its rules are ignored"])
    return load_permissions(data, label, home, text, path)


def file_stamp(path: Path) -> tuple[int, int] | None:
    try:
        st = path.stat()
    except OSError:
        return None
    return (st.st_mtime_ns, st.st_size)


def gate_allow_rules(sources: list[Source], project_files: set[Path], gate: ProjectRuleGate) -> list[tuple[Path, str]]:
    """Remove from ``sources`` the allow rules of ``project_files`` that ``gate`` does not
    admit; returns them as (file, rule). A failing gate admits none (fail closed)."""
    mine = [(src, src.path, r) for src in sources if src.path is not None and src.path in project_files
            for r in src.rules.allow]
    if not mine:
        return []
    try:
        verdicts = list(gate.admit([(path, r.text) for _, path, r in mine]))
    except Exception:
        log.exception("the project rule gate failed; the project's allow rules are not applied")
        verdicts = []
    held: list[tuple[Path, str]] = []
    for i, (src, path, r) in enumerate(mine):
        if not (i < len(verdicts) and verdicts[i]):
            src.rules.allow.remove(r)
            held.append((path, r.text))
    return held


def append_allow_rules(path: Path, root: Path, rules: list[str]) -> list[str]:
    """Add ``rules`` to the allow list of the settings file ``path`` (the workspace's
    settings.local.json, kept out of git), atomically; returns them. ValueError when the file
    is not a JSON object of the expected shape: nothing is written."""
    path.parent.mkdir(parents=True, exist_ok=True)
    ensure_codeloop_gitignore(root)
    data: dict = {}
    if path.exists():
        try:
            text = path.read_text(encoding="utf-8")
            data = json.loads(text) if text.strip() else {}
        except (OSError, UnicodeDecodeError, json.JSONDecodeError) as e:
            raise ValueError(f"{path} is not valid JSON ({e}); fix it before adding rules") from None
        if not isinstance(data, dict):
            raise ValueError(f"{path} must hold a JSON object; fix it before adding rules")
    perms = data.get("permissions")
    if perms is None:
        perms = {}
        data["permissions"] = perms
    if not isinstance(perms, dict):
        raise ValueError(f"\"permissions\" in {path} must be an object; fix it before adding rules")
    allow = perms.get("allow")
    if allow is None:
        allow = []
        perms["allow"] = allow
    if not isinstance(allow, list):
        raise ValueError(f"\"permissions.allow\" in {path} must be a list; fix it before adding rules")
    written: list[str] = []
    for rule in rules:
        if rule not in allow:
            allow.append(rule)
        written.append(rule)
    write_atomic(path, json.dumps(data, indent=2, ensure_ascii=False) + "\n")
    return written
