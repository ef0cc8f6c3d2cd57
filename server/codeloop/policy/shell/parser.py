"""From a command line to the simple commands it would run (``Part``s).

Walks the bashlex tree (lists, pipelines, subshells, groups, functions, loops,
substitutions), follows ``cd`` through a list, keeps static variables, and adds the
parts that commands run themselves (``nested.NESTED``: ``bash -c``, ``eval``,
``xargs``, ``find -exec``...). Never raises on user input.
"""

from __future__ import annotations

import logging
import os
import re
import shlex
from pathlib import Path

from codeloop.policy.shell.model import ParsedCommand, Part, Redirect, Word, _Scope
from codeloop.policy.shell.nested import NESTED
from codeloop.policy.shell.syntax import (
    _bashlex_parse,
    _fallback_parts,
    _is_node,
    _iter_children,
    _make_word,
    _slice,
    _substitutions,
    _walk_all,
)
from codeloop.policy.shell.words import base_name, expand_text, expand_word, unwrap

log = logging.getLogger("codeloop.policy.shell")

MAX_DEPTH = 6  # nested bash -c / eval strings
MAX_COMMAND_CHARS = 50_000


class _Ctx:
    def __init__(self, root: Path, home: Path) -> None:
        self.root = root
        self.home = home
        self.pipeline_ids = 0


class _Parser:
    def __init__(self, ctx: _Ctx, out: ParsedCommand) -> None:
        self.ctx = ctx
        self.out = out

    # -- entry -------------------------------------------------------------

    def parse_string(self, text: str, scope: _Scope, origin: str, depth: int) -> bool:
        """Parse ``text`` and add its parts. False (and the fallback parts) on failure."""
        if depth > MAX_DEPTH:
            self._fail(text, scope, origin, depth, "commands nested too deeply")
            return False
        if len(text) > MAX_COMMAND_CHARS:
            self._fail(text, scope, origin, depth, "command too long to analyse")
            return False
        if not text.strip():
            return True
        try:
            trees = _bashlex_parse(text)
        except RecursionError:
            self._fail(text, scope, origin, depth, "command nested too deeply")
            return False
        except Exception as e:  # bashlex raises many types, also on valid bash
            self._fail(text, scope, origin, depth, f"{type(e).__name__}: {e}".strip())
            return False
        try:
            for tree in trees:
                self.node(tree, text, scope, origin, depth)
        except RecursionError:
            self._fail(text, scope, origin, depth, "command nested too deeply")
            return False
        return True

    def _fail(self, text: str, scope: _Scope, origin: str, depth: int, why: str) -> None:
        if self.out.error is None:
            self.out.error = why
        for part in _fallback_parts(text, scope, depth):
            part.error = why
            self.add_part(part, scope)

    # -- nodes -------------------------------------------------------------

    def node(self, n: object, src: str, scope: _Scope, origin: str, depth: int,
             pipeline: int | None = None, stage: int = 0) -> None:
        kind = getattr(n, "kind", "")
        if kind == "list":
            for child in n.parts:  # type: ignore[attr-defined]
                if getattr(child, "kind", "") in ("operator", "reservedword"):
                    continue
                self.node(child, src, scope, origin, depth)
        elif kind == "pipeline":
            self.ctx.pipeline_ids += 1
            pid = self.ctx.pipeline_ids
            i = 0
            for child in n.parts:  # type: ignore[attr-defined]
                ck = getattr(child, "kind", "")
                if ck in ("pipe", "reservedword", "operator"):
                    continue
                # every stage of a pipeline runs in a subshell
                self.node(child, src, scope.copy(), origin, depth, pid, i)
                i += 1
        elif kind == "command":
            self.command(n, src, scope, origin, depth, pipeline, stage)
        elif kind == "compound":
            items = n.list  # type: ignore[attr-defined]
            first = items[0] if items else None
            sub = scope.copy() if getattr(first, "word", "") == "(" else scope
            for child in items:
                if getattr(child, "kind", "") in ("reservedword", "operator"):
                    continue
                self.node(child, src, sub, origin, depth, pipeline, stage)
            for r in getattr(n, "redirects", None) or ():
                red = self.redirect(r, src, scope, origin, depth)
                if red is not None and red.target is not None:
                    # a redirection on a whole group: a part with no words of its own
                    self.add_part(Part([], [], [red], _slice(src, r), scope.cwd, dict(scope.env),
                                       origin, depth, pipeline=pipeline, stage=stage), scope)
        elif kind == "function":
            self.function(n, src, scope, origin, depth)
        elif kind in ("for", "while", "until", "if", "case"):
            for child in n.parts:  # type: ignore[attr-defined]
                ck = getattr(child, "kind", "")
                if ck == "reservedword" or ck == "operator":
                    continue
                if ck == "word":
                    for s in _substitutions(child):
                        self.node(s.command, src, scope.copy(), "substitution", depth)  # type: ignore[attr-defined]
                    continue
                self.node(child, src, scope, origin, depth)
        elif kind in ("commandsubstitution", "processsubstitution"):
            self.node(n.command, src, scope.copy(), "substitution", depth)  # type: ignore[attr-defined]
        elif kind in ("operator", "reservedword", "pipe"):
            return
        else:
            for child in _iter_children(n):
                self.node(child, src, scope, origin, depth)

    def function(self, n: object, src: str, scope: _Scope, origin: str, depth: int) -> None:
        parts = n.parts  # type: ignore[attr-defined]
        name = getattr(parts[0], "word", "") if parts else ""
        body = [p for p in parts[1:] if getattr(p, "kind", "") != "reservedword"]
        for b in body:
            self.node(b, src, scope.copy(), "function " + name, depth)
        # A fork bomb: the function calls itself, in a pipeline or in the background.
        calls = 0
        in_pipeline = False
        background = False
        for b in body:
            for sub in _walk_all(b):
                k = getattr(sub, "kind", "")
                if k == "command":
                    first = next((p for p in sub.parts if getattr(p, "kind", "") == "word"), None)  # type: ignore[attr-defined]
                    if first is not None and getattr(first, "word", None) == name:
                        calls += 1
                elif k == "pipeline":
                    for c in _walk_all(sub):
                        if getattr(c, "kind", "") == "command":
                            first = next((p for p in c.parts if getattr(p, "kind", "") == "word"), None)  # type: ignore[attr-defined]
                            if first is not None and getattr(first, "word", None) == name:
                                in_pipeline = True
                elif k == "operator" and getattr(sub, "op", "") == "&":
                    background = True
        if calls and (in_pipeline or background or calls > 1):
            if calls > 1 or in_pipeline:
                self.out.fork_bombs.append(name)
            elif background:
                self.out.fork_bombs.append(name)

    def redirect(self, r: object, src: str, scope: _Scope, origin: str, depth: int) -> Redirect | None:
        op = str(getattr(r, "type", ""))
        fd = getattr(r, "input", None)
        output = getattr(r, "output", None)
        heredoc = getattr(r, "heredoc", None)
        target: Word | None = None
        if _is_node(output):
            target = _make_word(output)
            for s in _substitutions(output):
                self.node(s.command, src, scope.copy(), "substitution", depth)  # type: ignore[attr-defined]
        if op == ">&" and target is not None and (target.text.isdigit() or target.text == "-"):
            target = None  # fd duplication
        doc = str(getattr(heredoc, "value", "")) if heredoc is not None else None
        return Redirect(op, fd if isinstance(fd, int) else None, target, doc)

    def command(self, n: object, src: str, scope: _Scope, origin: str, depth: int,
                pipeline: int | None, stage: int) -> None:
        words: list[Word] = []
        assigns: list[str] = []
        assign_nodes: list[object] = []
        redirects: list[Redirect] = []
        for p in n.parts:  # type: ignore[attr-defined]
            k = getattr(p, "kind", "")
            if k == "assignment" and not words:
                assigns.append(str(p.word))
                assign_nodes.append(p)
                for s in _substitutions(p):
                    self.node(s.command, src, scope.copy(), "substitution", depth)  # type: ignore[attr-defined]
            elif k in ("word", "assignment"):
                words.append(_make_word(p))
                for s in _substitutions(p):
                    self.node(s.command, src, scope.copy(), "substitution", depth)  # type: ignore[attr-defined]
            elif k == "redirect":
                red = self.redirect(p, src, scope, origin, depth)
                if red is not None:
                    redirects.append(red)
        part = Part(words, assigns, redirects, _slice(src, n), scope.cwd, dict(scope.env),
                    origin, depth, pipeline=pipeline, stage=stage)
        if not words:
            # VAR=value alone: remember static values (X=/; rm -rf $X)
            for a, node in zip(assigns, assign_nodes):
                name, _, value = a.partition("=")
                w = _make_word(node)
                if w.subst:
                    scope.env.pop(name, None)
                    continue
                val = expand_text(value, w.params, False, scope.env, self.ctx.home)
                if val is None:
                    scope.env.pop(name, None)
                else:
                    scope.env[name] = val
            if redirects:
                self.add_part(part, scope)
            return
        self.add_part(part, scope)
        self.follow_cd(part, scope)

    def follow_cd(self, part: Part, scope: _Scope) -> None:
        argv = part.argv
        if not argv or argv[0] not in ("cd", "pushd"):
            return
        args = [w for w in part.words[1:] if not w.text.startswith("-") or w.text == "-"]
        if not args:
            scope.cwd = self.ctx.home if argv[0] == "cd" else scope.cwd
            scope.env["PWD"] = str(scope.cwd) if scope.cwd else ""
            return
        value = expand_word(args[0], scope.env, self.ctx.home)
        if value is None or value == "-" or scope.cwd is None and not value.startswith("/"):
            scope.cwd = None
            scope.env.pop("PWD", None)
            return
        base = scope.cwd or Path("/")
        scope.cwd = Path(os.path.normpath(os.path.join(base, value)))
        scope.env["PWD"] = str(scope.cwd)

    # -- nested execution --------------------------------------------------

    def add_part(self, part: Part, scope: _Scope) -> None:
        if part.cwd is not None:
            part.env.setdefault("PWD", str(part.cwd))
        part.env.setdefault("HOME", str(self.ctx.home))
        self.out.parts.append(part)
        self.nested(part, scope)

    def nested(self, part: Part, scope: _Scope) -> None:
        """Parts that ``part`` runs itself: bash -c, eval, xargs, find -exec, watch..."""
        eff, _ = unwrap(part.words)
        if not eff:
            return
        name = base_name(eff[0].text)
        handler = NESTED.get(name)
        if handler is not None:
            handler(self, part, name, eff[1:], _Scope(part.cwd, dict(part.env)), part.depth + 1)

    def previous_stage(self, part: Part) -> Part | None:
        if part.pipeline is None or part.stage == 0:
            return None
        for p in reversed(self.out.parts):
            if p.pipeline == part.pipeline and p.stage == part.stage - 1:
                return p
        return None

    def add_inner(self, outer: Part, words: list[Word], scope: _Scope, origin: str, depth: int,
                  open_args: bool) -> None:
        assigns: list[str] = []
        while words and re.match(r"^[A-Za-z_][A-Za-z0-9_]*=", words[0].text):
            assigns.append(words[0].text)
            words = words[1:]
        if not words:
            return
        text = " ".join(shlex.quote(w) for w in assigns + [w.text for w in words])
        inner = Part(list(words), assigns, [], text, scope.cwd, dict(scope.env), origin, depth,
                     open_args=open_args, pipeline=outer.pipeline, stage=outer.stage)
        self.add_part(inner, scope)

    def run_string(self, part: Part, code: Word, scope: _Scope, origin: str, depth: int) -> None:
        text: str | None = code.text
        if not code.static:
            text = expand_text(code.text, code.params, code.tilde, part.env, self.ctx.home) if not code.subst else None
        if text is not None:
            if self.parse_string(text, scope, origin, depth):
                part.transparent = True
            return
        # Not resolvable statically: still parse the literal text, so that what it
        # visibly contains is decided too; the part itself is marked dynamic.
        part.dynamic_code = True
        self.parse_string(code.text, scope, origin + " (dynamic)", depth)


def parse_command(cmd: str, cwd: Path | None = None, home: Path | None = None,
                  root: Path | None = None) -> ParsedCommand:
    """Parse ``cmd`` into the simple commands it would run. Never raises."""
    home = Path(home) if home is not None else Path.home()
    cwd = Path(cwd) if cwd is not None else Path.cwd()
    ctx = _Ctx(Path(root) if root is not None else cwd, home)
    out = ParsedCommand(cmd)
    scope = _Scope(cwd, {"HOME": str(home), "PWD": str(cwd)})
    try:
        _Parser(ctx, out).parse_string(cmd, scope, "command", 0)
    except Exception as e:  # never let a parser bug become "no parts" = allow
        log.exception("shell analysis failed on %r", cmd)
        out.error = out.error or f"analysis failed: {type(e).__name__}"
        if not out.parts:
            out.parts = _fallback_parts(cmd, scope, 0)
    return out
