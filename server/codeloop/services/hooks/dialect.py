"""What a hook written for Claude Code sees of a codeloop tool call, and back.

A hook from a ``.claude/`` settings file (or one marked ``"payload": "claude"``) is sent
Claude Code's tool name and input field names, so scripts that test
``tool_name == "Bash"`` and read ``tool_input.command`` or ``tool_input.file_path`` work
unchanged. The input it returns as ``updatedInput`` is mapped back to codeloop's fields.

Per tool (codeloop → Claude Code):

- ``run_command`` → ``Bash``: ``command``; ``timeout`` seconds → milliseconds; ``cwd`` kept.
- ``start_process`` → ``Bash`` with ``run_in_background: true``.
- ``read_command_output``, ``read_process_logs`` → ``BashOutput``: ``id`` → ``bash_id``.
- ``kill_process`` → ``KillShell``: ``id`` → ``shell_id``.
- ``read_file`` → ``Read``, ``write_file`` → ``Write``, ``edit_file`` → ``Edit``:
  ``path`` → ``file_path`` (absolute, as Claude Code sends it); the other fields
  (``content``, ``old_string``, ``new_string``, ``replace_all``, ``offset``, ``limit``)
  have the same names.
- ``apply_patch`` → ``Edit`` with ``patch`` and ``file_paths`` (every file the patch
  touches, absolute) and ``file_path`` when it touches exactly one file.
- ``grep`` → ``Grep``: ``case_insensitive`` → ``-i``, ``context`` → ``-C``, ``path`` absolute;
  ``glob`` → ``Glob`` and ``list_dir`` → ``LS`` with ``path`` absolute.
- ``task`` → ``Task``, ``todo_write`` → ``TodoWrite``, ``web_fetch`` → ``WebFetch``: same fields.

Fields without a counterpart pass through under their own name both ways. Tools without
a Claude Code name (MCP tools, ``get_diagnostics``) are sent as they are.
"""

from __future__ import annotations

import os
import re
from pathlib import Path
from typing import Any

from codeloop.context.tool_names import claude_name

# codeloop field -> (Claude Code field, kind); kind: "same", "path" (absolute there), "ms".
_FIELDS: dict[str, dict[str, tuple[str, str]]] = {
    "run_command": {"timeout": ("timeout", "ms")},
    "start_process": {},
    "read_command_output": {"id": ("bash_id", "same")},
    "read_process_logs": {"id": ("bash_id", "same")},
    "kill_process": {"id": ("shell_id", "same")},
    "read_file": {"path": ("file_path", "path")},
    "write_file": {"path": ("file_path", "path")},
    "edit_file": {"path": ("file_path", "path")},
    "grep": {"path": ("path", "path"), "case_insensitive": ("-i", "same"), "context": ("-C", "same")},
    "glob": {"path": ("path", "path")},
    "list_dir": {"path": ("path", "path")},
}
# Fields added on the way out that the codeloop tool does not take.
_ADDED: dict[str, dict[str, Any]] = {"start_process": {"run_in_background": True}}
_DROPPED_BACK: dict[str, frozenset[str]] = {
    "start_process": frozenset({"run_in_background"}),
    "run_command": frozenset({"run_in_background"}),
    "apply_patch": frozenset({"file_path", "file_paths"}),
}

MODE_TO_CLAUDE = {"ask": "default", "acceptEdits": "acceptEdits", "plan": "plan", "bypass": "bypassPermissions"}


def _abs(value: Any, root: Path) -> Any:
    if not isinstance(value, str):
        return value
    p = value if os.path.isabs(value) else os.path.join(str(root), value)
    return os.path.normpath(p)


def _rel(value: Any, root: Path) -> Any:
    if not isinstance(value, str) or not os.path.isabs(value):
        return value
    base = os.path.normpath(str(root))
    p = os.path.normpath(value)
    if p == base:
        return "."
    if p.startswith(base + os.sep):
        return Path(os.path.relpath(p, base)).as_posix()
    return value  # outside the workspace: the tool refuses it with its own clear error


_PATCH_FILE = re.compile(r"^(\+\+\+|---) (.+?)(\t.*)?$")


def patch_files(patch: str, root: Path) -> list[str]:
    """The files a unified diff touches, absolute, in order (``/dev/null`` left out)."""
    out: list[str] = []
    old: str | None = None
    for line in patch.splitlines():
        m = _PATCH_FILE.match(line)
        if not m:
            continue
        name = m.group(2).strip()
        if name.startswith('"') and name.endswith('"'):
            name = name[1:-1]
        if m.group(1) == "---":
            old = name
            continue
        target = name if name != "/dev/null" else old
        old = None
        if not target or target == "/dev/null":
            continue
        if target.startswith(("a/", "b/")):
            target = target[2:]
        p = _abs(target, root)
        if p not in out:
            out.append(p)
    return out


def to_claude(tool: str, tool_input: dict[str, Any], root: Path) -> tuple[str, dict[str, Any]]:
    """Claude Code's name and input for a codeloop call (the tool's own when it has none)."""
    name = claude_name(tool)
    if name is None:
        return tool, dict(tool_input)
    if tool == "apply_patch":
        out = dict(tool_input)
        files = patch_files(str(tool_input.get("patch", "")), root)
        out["file_paths"] = files
        if len(files) == 1:
            out["file_path"] = files[0]
        return name, out
    spec = _FIELDS.get(tool, {})
    out: dict[str, Any] = {}
    for key, value in tool_input.items():
        if key in spec:
            ckey, kind = spec[key]
            if kind == "path":
                value = _abs(value, root)
            elif kind == "ms" and isinstance(value, (int, float)) and not isinstance(value, bool):
                ms = value * 1000
                value = int(ms) if float(ms).is_integer() else ms
            out[ckey] = value
        else:
            out[key] = value
    out.update(_ADDED.get(tool, {}))
    return name, out


def from_claude(tool: str, claude_input: dict[str, Any], root: Path) -> dict[str, Any]:
    """codeloop's input for ``tool`` from an input in Claude Code's field names."""
    if claude_name(tool) is None:
        return dict(claude_input)
    back = {ckey: (key, kind) for key, (ckey, kind) in _FIELDS.get(tool, {}).items()}
    dropped = _DROPPED_BACK.get(tool, frozenset())
    out: dict[str, Any] = {}
    for ckey, value in claude_input.items():
        if ckey in dropped:
            continue
        if ckey in back:
            key, kind = back[ckey]
            if kind == "path":
                value = _rel(value, root)
            elif kind == "ms" and isinstance(value, (int, float)) and not isinstance(value, bool):
                value = value / 1000
            out[key] = value
        else:
            out[ckey] = value
    return out


_MISSING = object()


def _path_fields(tool: str) -> set[str]:
    return {key for key, (_, kind) in _FIELDS.get(tool, {}).items() if kind == "path"}


def input_changes(tool: str, original: dict[str, Any], updated: dict[str, Any], dialect: str,
                  root: Path) -> dict[str, Any]:
    """The codeloop fields a hook's ``updatedInput`` changes.

    ``updated`` is merged over the input the hook was sent (so a hook may return only
    the fields it changes, or the whole input), mapped back to codeloop's names when the
    hook speaks Claude Code's, and compared with ``original``: only real changes are
    returned (a path given back in another spelling of the same file is no change).
    """
    if dialect == "claude":
        _, sent = to_claude(tool, original, root)
        new = from_claude(tool, {**sent, **updated}, root)
    else:
        new = {**original, **updated}
    paths = _path_fields(tool)
    changes: dict[str, Any] = {}
    for key, value in new.items():
        old = original.get(key, _MISSING)
        if old is not _MISSING:
            if old == value:
                continue
            if key in paths and isinstance(old, str) and isinstance(value, str) and _abs(old, root) == _abs(value, root):
                continue
        changes[key] = value
    return changes
