"""A decision in the making: each part of a command (or a path) gets a :class:`Verdict`; the
worst of them, with the rules that "always allow" would add, is the :class:`Evaluation` that
becomes the :class:`~codeloop.policy.types.Decision`."""

from __future__ import annotations

from dataclasses import dataclass, field

from codeloop.policy.types import Action, Decision

SANDBOX_ALLOWED = "no rule allows it, but it runs in the sandbox, which contains it (sandbox.autoAllow)"

_RANK = {"allow": 0, "ask": 1, "deny": 2}


@dataclass
class Verdict:
    action: Action
    reason: str
    rule: str | None = None
    suggestions: list[str] = field(default_factory=list)  # rules "always allow" would add
    confirm: bool = False  # the user must answer this very call, in every mode
    unknown: bool = False  # asked only because no rule allows it (nothing risky found)


@dataclass
class Evaluation:
    action: Action
    reason: str
    rule: str | None = None
    suggestions: list[str] = field(default_factory=list)
    catastrophic: bool = False
    confirm: bool = False

    def decision(self) -> Decision:
        sugg = ", ".join(dict.fromkeys(self.suggestions)) if self.action == "ask" and self.suggestions else None
        return Decision(self.action, self.reason, self.rule, sugg, self.catastrophic, self.action == "ask" and self.confirm)


def combine(verdicts: list[Verdict], default_reason: str) -> Evaluation:
    if not verdicts:
        return Evaluation("allow", default_reason)
    worst = max(_RANK[v.action] for v in verdicts)
    chosen = [v for v in verdicts if _RANK[v.action] == worst]
    action = chosen[0].action
    if action == "allow":
        rules = list(dict.fromkeys(v.rule for v in chosen if v.rule))
        reason = chosen[0].reason if len(chosen) == 1 else "every part of the command is allowed"
        if len(chosen) > 1 and any(v.reason == SANDBOX_ALLOWED for v in chosen):
            reason += " (the parts no rule allows run in the sandbox, which contains them: sandbox.autoAllow)"
        return Evaluation("allow", reason, ", ".join(rules) or None)
    reasons = list(dict.fromkeys(v.reason for v in chosen))
    reason = reasons[0] if len(reasons) == 1 else "; ".join(reasons[:4]) + (" ..." if len(reasons) > 4 else "")
    rule = next((v.rule for v in chosen if v.rule), None)
    suggestions: list[str] = []
    if action == "ask":
        for v in verdicts:
            if v.action == "ask":
                suggestions.extend(v.suggestions)
    confirm = any(v.confirm for v in chosen)
    return Evaluation(action, reason, rule, list(dict.fromkeys(suggestions)), confirm=confirm)
