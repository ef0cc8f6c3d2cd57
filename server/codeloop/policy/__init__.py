"""Permissions: modes, user-controlled rules and command safety.

Decisions are made in code from rules the user controls; model output never
changes them. See ``engine.PermissionPolicy``.
"""

from codeloop.policy.engine import PLAN_NOTE, PermissionPolicy
from codeloop.policy.rules import Rule, RuleError, RuleSet, parse_rule
from codeloop.policy.shell import Finding, ParsedCommand, Part, analyze, classify, parse_command
from codeloop.policy.types import MODES, Decision, Mode, PermissionRequest

__all__ = [
    "MODES", "PLAN_NOTE", "Decision", "Finding", "Mode", "ParsedCommand", "Part", "PermissionPolicy",
    "PermissionRequest", "Rule", "RuleError", "RuleSet", "analyze", "classify", "parse_command", "parse_rule",
]
