"""The permission contract between the loop and the policy engine."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Literal

Mode = Literal["ask", "acceptEdits", "plan", "bypass"]
MODES: tuple[Mode, ...] = ("ask", "acceptEdits", "plan", "bypass")

# "Tool": a call of a tool with no finer kind (an MCP server's tools); rules name it
# (``mcp__server__tool``, ``mcp__server``).
Kind = Literal["Bash", "Read", "Edit", "Write", "Tool"]
Action = Literal["allow", "ask", "deny"]


@dataclass(frozen=True, slots=True)
class PermissionRequest:
    kind: Kind
    target: str  # the command line (Bash) or the path as the model gave it
    cwd: Path  # the workspace root or the command's working directory
    path: Path | None = None  # the resolved absolute path, for file kinds
    # Bash: the command will run in an OS sandbox that fully contains it (the process
    # manager says so, never the model): see ``sandbox.autoAllow`` in policy/engine.py.
    sandboxed: bool = False


@dataclass(frozen=True, slots=True)
class Decision:
    action: Action
    reason: str
    rule: str | None = None  # the rule that decided, if any
    suggested_rule: str | None = None  # a precise rule "always allow" would add
    catastrophic: bool = False  # refused in every mode, whatever the rules say
    # The user must see and answer this one call, in every mode (the agent's own
    # permission and configuration files): no "apply without asking" may stand in.
    confirm: bool = False
