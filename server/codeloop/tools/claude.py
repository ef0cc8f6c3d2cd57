"""Claude Code's dialect of a tool call: its field names and units (pure, stdlib only).

A tool says how Claude Code spells it (``BaseTool.claude_names``, ``claude_fields``);
these helpers do the mapping both ways for ``BaseTool.claude_input``
and ``BaseTool.from_claude_input``. Hooks written for Claude Code then see
``tool_name == "Bash"`` and ``tool_input.file_path`` and work unchanged.

A field spec is ``{codeloop field: (Claude Code field, how)}`` with ``how``:

- ``"same"``: only the name differs;
- ``"path"``: a workspace-relative path here, an absolute one there;
- ``"ms"``: seconds here, milliseconds there.

Fields without a spec keep their name both ways.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from pathlib import Path
from typing import Any

FieldSpec = Mapping[str, tuple[str, str]]


def absolute(value: Any, root: Path) -> Any:
    """A path as Claude Code sends it: absolute (relative ones taken from ``root``)."""
    if not isinstance(value, str):
        return value
    p = value if os.path.isabs(value) else os.path.join(str(root), value)
    return os.path.normpath(p)


def relative(value: Any, root: Path) -> Any:
    """A path as codeloop's tools take it: relative to ``root`` when it is inside."""
    if not isinstance(value, str) or not os.path.isabs(value):
        return value
    base = os.path.normpath(str(root))
    p = os.path.normpath(value)
    if p == base:
        return "."
    if p.startswith(base + os.sep):
        return Path(os.path.relpath(p, base)).as_posix()
    return value  # outside the workspace: the tool refuses it with its own clear error


def _is_number(value: Any) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool)


def to_claude(args: Mapping[str, Any], spec: FieldSpec, root: Path) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for key, value in args.items():
        if key not in spec:
            out[key] = value
            continue
        ckey, how = spec[key]
        if how == "path":
            value = absolute(value, root)
        elif how == "ms" and _is_number(value):
            ms = value * 1000
            value = int(ms) if float(ms).is_integer() else ms
        out[ckey] = value
    return out


def from_claude(data: Mapping[str, Any], spec: FieldSpec, root: Path) -> dict[str, Any]:
    back = {ckey: (key, how) for key, (ckey, how) in spec.items()}
    out: dict[str, Any] = {}
    for ckey, value in data.items():
        if ckey not in back:
            out[ckey] = value
            continue
        key, how = back[ckey]
        if how == "path":
            value = relative(value, root)
        elif how == "ms" and _is_number(value):
            value = value / 1000
        out[key] = value
    return out


__all__ = ["FieldSpec", "absolute", "from_claude", "relative", "to_claude"]
