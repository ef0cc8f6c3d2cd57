"""The permission contract between the loop and the policy engine."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Literal, Protocol

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


class ProjectRuleGate(Protocol):
    """Which *allow* rules of the project's own files (``.codeloop/settings.json``,
    ``.codeloop/settings.local.json``) apply. A cloned repository's ``"allow": ["Bash"]``
    must not apply before the user trusts the project; the user's own "Always allow"
    answers in settings.local.json must. (Deny and ask rules always apply.)"""

    @property
    def version(self) -> int:
        """Changes whenever ``admit`` may answer differently (the user answered)."""
        ...

    def admit(self, rules: Sequence[tuple[Path, str]]) -> list[bool]:
        """For each (file, rule text): whether it applies."""
        ...

    def remembered(self, rules: Sequence[str]) -> None:
        """"Always allow" just wrote these rules to settings.local.json: the user's own."""
        ...
