"""Custom slash commands: Markdown prompt files (pure: stdlib and PyYAML).

``/name args`` sends the file's body with ``$ARGUMENTS`` replaced by ``args`` and ``$1``,
``$2``… by its words (shell-like quoting: ``/fix "two words" 3``). When the body has no
placeholder and arguments were given, they are appended as ``ARGUMENTS: …`` (as Claude
Code does). Optional front matter::

    ---
    description: Fix a GitHub issue          # shown in /help and completion (default: the body's first line)
    argument-hint: [issue-number] [priority]
    model: some-model                        # kept for the caller
    allowed-tools: Bash(gh issue view:*), Read   # kept as written, for the caller
    ---

Where (the first file of a qualified name wins; later ones are *shadowed*):

1. ``<project>/.codeloop/commands/``   2. ``<project>/.claude/commands/``
3. ``<codeloop config home>/commands/``  4. ``<claude home>/commands/``

Subfolders namespace a command as Claude Code does: ``.claude/commands/frontend/component.md``
is ``/component``, labelled ``(project:frontend)`` in help. Its qualified name
``frontend:component`` (or ``frontend/component``) always reaches it; the bare name does
when only one command has it, or a top-level file of that name exists — otherwise the
lookup says it is ambiguous and lists the qualified names. Built-in commands are the
command layer's business: it should try them before these.
"""

from __future__ import annotations

import re
import shlex
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

from codeloop.context.front_matter import FrontMatterError, parse_document, read_capped, split_list

Scope = Literal["project", "user"]
Origin = Literal["codeloop", "claude"]
NAME_RE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]*$")
KNOWN_KEYS = frozenset({"description", "argument-hint", "model", "allowed-tools"})
MAX_FILES_PER_DIR = 1000
MAX_DEPTH = 4
_PLACEHOLDER = re.compile(r"\$(ARGUMENTS|[1-9][0-9]*)")


@dataclass(frozen=True, slots=True)
class CommandProblem:
    path: Path
    message: str
    fatal: bool = True

    def __str__(self) -> str:
        return f"{self.path}: {self.message}"


def split_arguments(args: str) -> list[str]:
    """The words of ``args``: shell-like quoting, or plain whitespace when the quotes do not balance."""
    try:
        return shlex.split(args)
    except ValueError:
        return args.split()


@dataclass(frozen=True, slots=True)
class CustomCommand:
    name: str  # what follows the slash: the file name without .md
    namespace: str  # the subfolder path ("frontend", "git/flow"), "" at the top
    description: str
    body: str
    path: Path
    scope: Scope
    origin: Origin
    argument_hint: str | None = None
    model: str | None = None
    allowed_tools: tuple[str, ...] | None = None
    extra: dict[str, Any] = field(default_factory=dict)

    @property
    def qualified(self) -> str:
        """``frontend:component`` (just ``component`` at the top)."""
        return ":".join([*self.namespace.split("/"), self.name]) if self.namespace else self.name

    @property
    def label(self) -> str:
        """``(project)``, ``(user:git)`` — where it comes from, as Claude Code shows it."""
        return f"({self.scope}:{self.namespace.replace('/', ':')})" if self.namespace else f"({self.scope})"

    def expand(self, args: str | None) -> str:
        """The prompt to send for ``/name args``."""
        text = (args or "").strip()
        words = split_arguments(text) if text else []
        found = False

        def sub(m: re.Match[str]) -> str:
            nonlocal found
            found = True
            key = m.group(1)
            if key == "ARGUMENTS":
                return text
            i = int(key) - 1
            return words[i] if i < len(words) else ""

        out = _PLACEHOLDER.sub(sub, self.body)
        if not found and text:
            out = out.rstrip("\n") + f"\n\nARGUMENTS: {text}"
        return out.strip("\n")

    def help_line(self) -> str:
        syn = f" {self.argument_hint}" if self.argument_hint else ""
        return f"/{self.name}{syn} — {self.description} {self.label}"


@dataclass
class CustomCommands:
    commands: list[CustomCommand] = field(default_factory=list)  # in precedence order
    problems: list[CommandProblem] = field(default_factory=list)
    shadowed: list[CustomCommand] = field(default_factory=list)

    def lookup(self, word: str) -> tuple[CustomCommand | None, str | None]:
        """The command ``/word`` means, or (None, why not) — None, None when it is not one of these."""
        w = word.strip().lstrip("/")
        if ":" in w or "/" in w:
            q = w.replace("/", ":")
            for c in self.commands:
                if c.qualified == q:
                    return c, None
            return None, None
        same = [c for c in self.commands if c.name == w]
        if not same:
            return None, None
        top = [c for c in same if not c.namespace]
        if top:
            return top[0], None
        if len(same) == 1:
            return same[0], None
        options = ", ".join(f"/{c.qualified} {c.label}" for c in same)
        return None, f"/{w} is ambiguous: use one of {options}"

    def help_lines(self) -> list[str]:
        return [c.help_line() for c in self.commands]

    def completions(self) -> list[tuple[str, str]]:
        """(what to insert after the slash, description) for a completion list."""
        names = [c.name for c in self.commands]
        out = []
        for c in self.commands:
            insert = c.name if names.count(c.name) == 1 or not c.namespace else c.qualified
            hint = f" {c.argument_hint}" if c.argument_hint else ""
            out.append((insert, f"{c.description}{hint} {c.label}"))
        return out


def command_dirs(root: Path, config_home: Path | None = None,
                 claude_home: Path | None = None) -> list[tuple[Path, Scope, Origin]]:
    dirs: list[tuple[Path, Scope, Origin]] = [
        (root / ".codeloop" / "commands", "project", "codeloop"),
        (root / ".claude" / "commands", "project", "claude"),
    ]
    if config_home is not None:
        dirs.append((config_home / "commands", "user", "codeloop"))
    if claude_home is not None:
        dirs.append((claude_home / "commands", "user", "claude"))
    return dirs


def _first_line(body: str) -> str:
    for line in body.split("\n"):
        t = line.strip().lstrip("#").strip()
        if t:
            return t if len(t) <= 100 else t[:99] + "…"
    return ""


def parse_command(text: str, path: Path, name: str, namespace: str = "", scope: Scope = "project",
                  origin: Origin = "codeloop") -> tuple[CustomCommand, str | None]:
    """One command from its file text; returns it and a non-fatal note. Raises FrontMatterError."""
    doc = parse_document(text)
    meta = doc.meta
    body = doc.body.strip("\n")
    if not body.strip():
        raise FrontMatterError("has no prompt: the text after the front matter is empty")
    desc = meta.get("description")
    if desc is not None and not isinstance(desc, str):
        raise FrontMatterError(f"description must be text, not {type(desc).__name__}")
    hint = meta.get("argument-hint")
    if hint is not None:
        if isinstance(hint, list):  # `argument-hint: [issue] [priority]` is YAML for a list
            hint = " ".join(f"[{h}]" if not isinstance(h, list) else " ".join(f"[{x}]" for x in h) for h in hint)
        elif not isinstance(hint, (str, int, float)):
            raise FrontMatterError(f"argument-hint must be text, not {type(hint).__name__}")
        hint = str(hint).strip() or None
    model = meta.get("model")
    if model is not None and (not isinstance(model, str) or not model.strip()):
        raise FrontMatterError(f"model must be a model name, not {model!r}")
    tools = None if meta.get("allowed-tools") is None else split_list(meta["allowed-tools"], "allowed-tools")
    extra = {k: v for k, v in meta.items() if k not in KNOWN_KEYS}
    return CustomCommand(
        name=name, namespace=namespace, description=(desc or "").strip() or _first_line(body), body=body,
        path=path, scope=scope, origin=origin, argument_hint=hint, model=model.strip() if model else None,
        allowed_tools=tools, extra=extra,
    ), (None if set(doc.raw_keys) <= {"argument-hint"} else doc.note)


def _walk(folder: Path, out: CustomCommands) -> list[tuple[Path, str]]:
    """(file, namespace) under ``folder``, sorted, hidden entries and bad names left out."""
    found: list[tuple[Path, str]] = []

    def visit(d: Path, parts: list[str]) -> None:
        try:
            entries = sorted(d.iterdir())
        except OSError as e:
            out.problems.append(CommandProblem(d, f"cannot be listed ({e})"))
            return
        for p in entries:
            if p.name.startswith("."):
                continue
            if p.is_dir():
                if len(parts) >= MAX_DEPTH:
                    out.problems.append(CommandProblem(p, f"is nested deeper than {MAX_DEPTH} folders; not read", fatal=False))
                elif not NAME_RE.match(p.name):
                    out.problems.append(CommandProblem(p, f"folder name {p.name!r} cannot be a namespace "
                                                          "(letters, digits, '-', '_', '.'); not read"))
                else:
                    visit(p, [*parts, p.name])
            elif p.suffix == ".md" and p.is_file():
                found.append((p, "/".join(parts)))
            if len(found) > MAX_FILES_PER_DIR:
                return

    visit(folder, [])
    if len(found) > MAX_FILES_PER_DIR:
        out.problems.append(CommandProblem(folder, f"holds more than {MAX_FILES_PER_DIR} command files; "
                                                   "only the first are read", fatal=False))
        found = found[:MAX_FILES_PER_DIR]
    return found


def load_custom_commands(root: Path, config_home: Path | None = None, claude_home: Path | None = None, *,
                         dirs: list[tuple[Path, Scope, Origin]] | None = None) -> CustomCommands:
    """Every custom command (blocking: call it in a thread). Pass the homes to include the user's."""
    out = CustomCommands()
    seen: dict[str, CustomCommand] = {}
    for folder, scope, origin in dirs if dirs is not None else command_dirs(root, config_home, claude_home):
        if not folder.is_dir():
            continue
        for path, namespace in _walk(folder, out):
            name = path.stem
            if not NAME_RE.match(name):
                out.problems.append(CommandProblem(path, f"{name!r} cannot be a command name "
                                                         "(letters, digits, '-', '_', '.'); skipped"))
                continue
            try:
                cmd, note = parse_command(read_capped(path), path, name, namespace, scope, origin)
            except (OSError, UnicodeDecodeError) as e:
                out.problems.append(CommandProblem(path, f"cannot be read ({e}); skipped"))
                continue
            except FrontMatterError as e:
                out.problems.append(CommandProblem(path, f"{e}; skipped"))
                continue
            if note:
                out.problems.append(CommandProblem(path, note, fatal=False))
            if cmd.qualified in seen:
                out.shadowed.append(cmd)
                continue
            seen[cmd.qualified] = cmd
            out.commands.append(cmd)
    return out
