"""Permission rules in Claude Code's syntax, and how they match.

``Tool`` or ``Tool(spec)``:

* ``Bash`` / ``Bash(*)``: every command.
* ``Bash(git status)``: exactly that command (compared word by word after shell
  unquoting, so spacing and quoting style do not matter).
* ``Bash(npm run test:*)``: a prefix on *whole words*: matches ``npm run test`` and
  ``npm run test -- -k x`` but not ``npm run test-e2e``.
* ``Bash(git * main)``: ``*`` inside the spec is a wildcard over the command's words
  joined by single spaces.
* ``Read(path)``, ``Edit(path)``, ``Write(path)``: gitignore-style globs relative to
  the workspace root (``src/**``, ``**/*.lock``, ``.env``; a pattern without a slash
  matches at any depth, ``./x`` anchors to the root); ``/abs/...`` and ``~/...`` are
  absolute (``//abs`` too, as in Claude Code). ``Edit`` and ``Write`` rules both cover
  both kinds: each changes a file.
* ``mcp__server`` or ``mcp__server__*``: every tool of that MCP server;
  ``mcp__server__tool``: one tool. They decide calls of kind "Tool".

A rule applies to a *part* of a command (one simple command), never to the whole
string, so ``Bash(npm test:*)`` does not allow ``npm test && rm -rf x``.
"""

from __future__ import annotations

import os
import re
import shlex
from dataclasses import dataclass, field
from pathlib import Path
from typing import Iterable, Literal

import pathspec

from codeloop.policy.shell import BENIGN_WRAPPERS, Part, base_name, unwrap, unwrap_one

KNOWN_TOOLS = ("Bash", "Read", "Edit", "Write")
MCP_PREFIX = "mcp__"
# Other agents' tool names that may sit in a shared settings file: inert, not errors.
FOREIGN_TOOLS = {"WebFetch", "WebSearch", "Grep", "Glob", "LS", "NotebookEdit", "NotebookRead", "MultiEdit",
                 "Task", "TodoWrite", "Agent", "KillShell", "BashOutput", "SlashCommand", "Skill"}

RuleClass = Literal["allow", "ask", "deny"]

_RULE_RE = re.compile(r"^\s*([A-Za-z_][A-Za-z0-9_-]*\*?)\s*(?:\((.*)\))?\s*$", re.DOTALL)


class RuleError(ValueError):
    pass


@dataclass(frozen=True)
class Rule:
    text: str  # as written
    tool: str
    spec: str | None  # None: the whole tool
    source: str = ""
    # Bash
    words: tuple[str, ...] = ()
    prefix: bool = False
    pattern: re.Pattern[str] | None = field(default=None, compare=False, hash=False)
    # paths
    spec_obj: pathspec.PathSpec | None = field(default=None, compare=False, hash=False)
    absolute: bool = False
    anchored: bool = False

    @property
    def whole_tool(self) -> bool:
        return self.spec is None

    @property
    def broad(self) -> bool:
        """A rule that names nothing in particular (``Bash``, ``Bash(*)``, ``Read(**)``)."""
        return self.spec is None or self.spec.strip() in ("*", "**", ":*", "/**", "~/**")

    @property
    def explicit(self) -> bool:
        """Names a command precisely enough to allow a risky one.

        Not ``Bash``/``Bash(*)`` and not a one-word prefix (``Bash(git:*)`` does not
        allow ``git push --force``; ``Bash(git push:*)`` does).
        """
        if self.broad:
            return False
        if self.tool != "Bash":
            return True
        if self.prefix:
            return len(self.words) >= 2
        if self.pattern is not None:
            return not (self.spec or "").strip().startswith("*") and len(self.words) >= 2
        return True

    def __str__(self) -> str:
        return self.text


def parse_rule(text: object, home: Path | None = None, source: str = "") -> Rule | None:
    """Parse one rule. Returns None for an inert foreign tool (``WebFetch(...)``).

    Raises RuleError with a message when the rule is malformed.
    """
    if not isinstance(text, str):
        raise RuleError(f"a rule must be a string, not {type(text).__name__} ({text!r})")
    m = _RULE_RE.match(text)
    if not m:
        raise RuleError(f"cannot parse rule {text!r}: expected Tool or Tool(pattern)")
    tool, spec = m.group(1), m.group(2)
    if tool.startswith(MCP_PREFIX):
        if spec is not None and spec.strip() not in ("*", ""):
            raise RuleError(f"rule {text!r}: MCP rules take no pattern; write mcp__server or mcp__server__tool")
        if tool.rstrip("_") == "mcp" or tool.startswith(MCP_PREFIX + "_"):
            raise RuleError(f"rule {text!r} names no MCP server; write mcp__server or mcp__server__tool")
        return Rule(text, "Tool", tool, source)
    if tool not in KNOWN_TOOLS:
        if tool in FOREIGN_TOOLS:
            return None
        close = [k for k in KNOWN_TOOLS if k.lower() == tool.lower()]
        hint = f" (did you mean {close[0]}?)" if close else f" (known tools: {', '.join(KNOWN_TOOLS)})"
        raise RuleError(f"unknown tool {tool!r} in rule {text!r}{hint}")
    if spec is not None:
        if spec.strip() == "":
            raise RuleError(f"empty pattern in rule {text!r}; write {tool} to match everything")
        if spec.count("(") != spec.count(")") and tool != "Bash":
            raise RuleError(f"unbalanced parentheses in rule {text!r}")
    if tool == "Bash":
        return _bash_rule(text, spec, source)
    return _path_rule(text, tool, spec, home or Path.home(), source)


def _bash_rule(text: str, spec: str | None, source: str) -> Rule:
    if spec is None or spec.strip() in ("*", ":*"):
        return Rule(text, "Bash", None if spec is None else spec, source)
    s = spec.strip()
    prefix = False
    if s.endswith(":*"):
        prefix = True
        s = s[:-2].rstrip()
        if not s:
            raise RuleError(f"empty prefix in rule {text!r}")
    try:
        words = tuple(shlex.split(s))
    except ValueError as e:
        raise RuleError(f"cannot split the command in rule {text!r}: {e}") from None
    if not words:
        raise RuleError(f"empty command in rule {text!r}")
    pattern = None
    if not prefix and "*" in s:
        # a wildcard spec: `*` matches any run of characters over the joined words;
        # a trailing ` *` also matches nothing (`npm run *` matches `npm run`)
        joined = " ".join(words)
        tail = ""
        if joined.endswith(" *"):
            joined, tail = joined[:-2], "(?: .*)?"
        rx = ".*".join(re.escape(p) for p in joined.split("*")) + tail
        pattern = re.compile(rx, re.DOTALL)
    return Rule(text, "Bash", spec, source, words=words, prefix=prefix, pattern=pattern)


def escape_glob(path: str) -> str:
    """Escape a literal path for a rule (used by remember())."""
    out = re.sub(r"([*?\[\]\\!#])", r"\\\1", path)
    return out


def _path_rule(text: str, tool: str, spec: str | None, home: Path, source: str) -> Rule:
    if spec is None:
        return Rule(text, tool, None, source)
    s = spec.strip()
    absolute = False
    anchored = False
    if s.startswith("~"):
        if s == "~" or s.startswith("~/"):
            s = str(home) + s[1:]
            absolute = True
        else:
            raise RuleError(f"cannot expand {s.split('/')[0]!r} in rule {text!r}; use ~/ or an absolute path")
    elif s.startswith("//"):
        s = "/" + s.lstrip("/")
        absolute = True
    elif s.startswith("/"):
        absolute = True
    elif s.startswith("./"):
        s = "/" + s[2:]
        anchored = True
    if s.startswith("!"):
        raise RuleError(f"negated patterns are not supported in rule {text!r}")
    if absolute and s == "/":
        s = "/**"
    if not absolute and not anchored:
        anchored = "/" in s.rstrip("/")
    try:
        compiled = pathspec.PathSpec.from_lines("gitignore", [s])
    except Exception as e:
        raise RuleError(f"bad path pattern in rule {text!r}: {e}") from None
    return Rule(text, tool, spec, source, spec_obj=compiled, absolute=absolute, anchored=anchored)


# ---------------------------------------------------------------------------
# matching
# ---------------------------------------------------------------------------


def match_command(rule: Rule, words: list[str], open_args: bool = False) -> bool:
    """Does a Bash rule match one simple command's words?

    ``open_args``: the command gets more arguments at run time (``xargs grep x``):
    only a prefix or whole-tool rule can cover it.
    """
    if rule.tool != "Bash":
        return False
    if rule.broad:
        return True
    if rule.prefix:
        n = len(rule.words)
        return len(words) >= n and tuple(words[:n]) == rule.words
    if rule.pattern is not None:
        return bool(rule.pattern.fullmatch(" ".join(words)))
    return not open_args and tuple(words) == rule.words


def match_path(rule: Rule, path: Path, root: Path) -> bool:
    """Does a Read/Edit/Write rule match ``path`` (absolute, normalised)?"""
    if rule.spec_obj is None:
        return rule.spec is None
    abs_text = os.path.normpath(str(path)).lstrip("/")
    if rule.absolute:
        return bool(rule.spec_obj.match_file(abs_text))
    try:
        rel = Path(os.path.normpath(str(path))).relative_to(root).as_posix()
    except ValueError:
        rel = None
    if rel is not None and rel != ".":
        return bool(rule.spec_obj.match_file(rel))
    if rel is None and not rule.anchored:
        # `*.pem`, `.env`: unanchored patterns match outside the workspace too
        return bool(rule.spec_obj.match_file(abs_text))
    return False


def match_tool(rule: Rule, name: str) -> bool:
    """Does a tool rule (``mcp__server``, ``mcp__server__*``, ``mcp__server__tool``) match a tool name?"""
    if rule.tool != "Tool" or rule.spec is None:
        return False
    spec = rule.spec
    if spec.endswith("__*"):
        return name.startswith(spec[:-1])
    if spec.count("__") == 1:  # mcp__server: the whole server
        return name.startswith(spec + "__")
    return name == spec


def kind_covers(rule_tool: str, kind: str) -> bool:
    if rule_tool == kind:
        return True
    return rule_tool in ("Edit", "Write") and kind in ("Edit", "Write")


@dataclass
class RuleSet:
    allow: list[Rule] = field(default_factory=list)
    ask: list[Rule] = field(default_factory=list)
    deny: list[Rule] = field(default_factory=list)

    def extend(self, other: "RuleSet") -> None:
        self.allow.extend(other.allow)
        self.ask.extend(other.ask)
        self.deny.extend(other.deny)

    def of(self, cls: RuleClass) -> list[Rule]:
        return getattr(self, cls)

    def all(self) -> Iterable[tuple[RuleClass, Rule]]:
        for cls in ("deny", "ask", "allow"):
            for r in self.of(cls):
                yield cls, r

    def first_command(self, cls: RuleClass, forms: list[list[str]], open_args: bool = False,
                      explicit: bool = False) -> Rule | None:
        for r in self.of(cls):
            if r.tool != "Bash" or (explicit and not r.explicit):
                continue
            if any(match_command(r, f, open_args) for f in forms):
                return r
        return None

    def first_tool(self, cls: RuleClass, name: str) -> Rule | None:
        return next((r for r in self.of(cls) if match_tool(r, name)), None)

    def first_path(self, cls: RuleClass, kind: str, paths: list[Path], root: Path,
                   explicit: bool = False) -> Rule | None:
        for r in self.of(cls):
            if not kind_covers(r.tool, kind) or (explicit and not r.explicit):
                continue
            if any(match_path(r, p, root) for p in paths):
                return r
        return None


def command_rule_text(words: list[str]) -> str:
    """The precise rule for one command: ``Bash(npm run test -- -k foo)``."""
    return "Bash(" + " ".join(_quote(w) for w in words) + ")"


def _quote(word: str) -> str:
    if word and re.fullmatch(r"[A-Za-z0-9_@%+=:,./~^-]+", word) and not word.endswith(":*"):
        return word
    return shlex.quote(word)


# -- what a rule is matched against, and the rules "always allow" writes ----------


def rule_forms(part: Part) -> tuple[list[list[str]], list[list[str]]]:
    """Word lists a rule may match: (for deny/ask rules, for allow rules).

    Allow rules see the command as written, and through benign wrappers
    (``timeout 60 npm test`` matches ``Bash(npm test)``). Deny and ask rules see
    through every wrapper (``sudo rm x``, ``env X=1 rm x`` match ``Bash(rm:*)``).
    """
    full = part.full_words
    argv = part.argv
    allow_forms = [full]
    words = list(part.words)
    for _ in range(8):
        step = unwrap_one(words)
        if step is None or step[1] not in BENIGN_WRAPPERS:
            break
        words = step[0]
        allow_forms.append(part.assignments + [w.text for w in words])
    eff, _ = unwrap(part.words)
    deny_forms = [full, argv, [w.text for w in eff]] + allow_forms
    # basename of the command: `/bin/rm -rf x` is matched by Bash(rm:*) deny rules
    more = []
    for f in deny_forms:
        if f and "/" in f[0]:
            more.append([base_name(f[0])] + f[1:])
    deny_forms += more
    uniq: list[list[str]] = []
    for f in deny_forms:
        if f and f not in uniq:
            uniq.append(f)
    return uniq, [f for f in allow_forms if f]


def part_rule_text(part: Part) -> str:
    """The rule "always allow" writes for one part of a command."""
    text = command_rule_text(part.full_words)
    if part.open_args:
        text = text[:-1] + ":*)"
    return text


def whole_command_rule_text(cmd: str) -> str:
    """The rule naming this whole command string (the only kind that allows `curl ... | sh`)."""
    return "Bash(" + " ".join(cmd.split()) + ")"


__all__ = [
    "KNOWN_TOOLS", "Rule", "RuleError", "RuleSet", "command_rule_text", "escape_glob", "kind_covers",
    "match_command", "match_path", "match_tool", "parse_rule", "part_rule_text", "rule_forms",
    "whole_command_rule_text",
]
