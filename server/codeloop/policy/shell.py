"""Shell command analysis for the permission policy.

A command line is parsed with a real bash parser (``bashlex``) into *parts*: every
simple command it would run, including those inside pipelines, lists, subshells,
``{ }`` groups, function bodies, loops, ``$(...)``, backticks, process
substitutions, ``bash -c '...'``/``sh -c``/``eval``/``watch`` strings,
``xargs CMD`` and ``find ... -exec CMD``. Each part keeps its redirections and the
working directory it would run in (``cd`` is followed through a list).

``classify`` then reports *findings* on the parts: the catastrophic class (refused
in every mode), risky commands (always asked unless a rule names them), and file
paths the command writes or reads (so path rules and the workspace boundary apply
to shell commands too). The decision itself is made by ``engine.PermissionPolicy``.

Nothing here executes anything, and nothing raises on user input: a command that
cannot be parsed is reported (``ParsedCommand.error``) and still scanned with a
coarse tokenizer so that a catastrophic command cannot hide behind a parse error.
"""

from __future__ import annotations

import logging
import os
import re
import shlex
from dataclasses import dataclass, field
from pathlib import Path
from typing import Iterator, Literal

import bashlex
import bashlex.ast

log = logging.getLogger(__name__)

MAX_DEPTH = 6  # nested bash -c / eval strings
MAX_COMMAND_CHARS = 50_000

# ---------------------------------------------------------------------------
# data
# ---------------------------------------------------------------------------


@dataclass
class Word:
    """One shell word, unquoted the way bash would (``r""m`` -> ``rm``)."""

    text: str
    params: tuple[str, ...] = ()  # parameter expansions it contains ($X, ${X})
    subst: bool = False  # contains $(...), `...`, <(...) or >(...)
    tilde: bool = False  # starts with an unquoted ~

    @property
    def static(self) -> bool:
        return not self.params and not self.subst and not self.tilde


@dataclass
class Redirect:
    op: str  # '>', '>>', '>|', '&>', '<', '<<', '<>', '>&', ...
    fd: int | None
    target: Word | None  # None for a file-descriptor duplication (2>&1)
    heredoc: str | None = None

    @property
    def writes(self) -> bool:
        return self.target is not None and self.op in (">", ">>", ">|", "&>", "&>>", "<>", ">&")

    @property
    def reads(self) -> bool:
        return self.target is not None and self.op in ("<", "<>")


@dataclass
class Part:
    """One simple command that would run."""

    words: list[Word]  # argv, without leading assignments
    assignments: list[str] = field(default_factory=list)
    redirects: list[Redirect] = field(default_factory=list)
    text: str = ""
    cwd: Path | None = None  # None: not known statically (after `cd $X`)
    env: dict[str, str] = field(default_factory=dict)  # statically known variables
    origin: str = "command"  # command, substitution, bash -c, eval, xargs, find -exec, unparsed...
    depth: int = 0
    open_args: bool = False  # more arguments are appended at run time (xargs, find -exec)
    transparent: bool = False  # only runs its inner parts (bash -c 'static', eval, xargs)
    pipeline: int | None = None  # parts of one pipeline share an id
    stage: int = 0  # position in the pipeline
    reads_stdin_code: bool = False  # a shell/interpreter executing its standard input
    dynamic_code: bool = False  # runs a code string we could not resolve
    error: str | None = None  # an inner string that did not parse

    @property
    def argv(self) -> list[str]:
        return [w.text for w in self.words]

    @property
    def full_words(self) -> list[str]:
        return self.assignments + self.argv

    def __repr__(self) -> str:  # pragma: no cover - debugging aid
        return f"Part({self.full_words!r}, origin={self.origin!r}, cwd={self.cwd})"


@dataclass
class ParsedCommand:
    source: str
    parts: list[Part] = field(default_factory=list)
    error: str | None = None  # the top level (or an inner string) did not parse
    fork_bombs: list[str] = field(default_factory=list)  # names of self-spawning functions

    @property
    def ok(self) -> bool:
        return self.error is None


Level = Literal["catastrophic", "risky", "write", "read"]


@dataclass(frozen=True)
class Finding:
    """Something the policy must weigh.

    level:
      catastrophic  refused in every mode, whatever the rules say.
      risky         asked in every mode but bypass unless an allow rule names the part.
      write         the command writes ``path`` (redirection, cp/mv/tee/rm/...):
                    ``code`` is inside | outside | rc | protected | unknown.
      read          the command reads the secret file ``path``.
    """

    level: Level
    code: str
    message: str
    part: int | None = None  # index into ParsedCommand.parts
    path: Path | None = None


@dataclass
class Analysis:
    parsed: ParsedCommand
    findings: list[Finding]
    read_only: list[bool]  # per part, for plan mode


# ---------------------------------------------------------------------------
# parsing
# ---------------------------------------------------------------------------

_SHELLS = {"sh", "bash", "zsh", "dash", "ksh", "mksh", "ash", "fish", "busybox"}
_INTERPRETERS = _SHELLS | {
    "python", "python2", "python3", "perl", "ruby", "node", "nodejs", "php", "pwsh",
    "powershell", "lua", "tclsh", "deno", "bun", "osascript", "source", ".",
}
_DOWNLOADERS = {"curl", "wget", "fetch", "aria2c", "http", "https", "xh", "lwp-request", "GET"}


@dataclass
class _Scope:
    cwd: Path | None
    env: dict[str, str]

    def copy(self) -> "_Scope":
        return _Scope(self.cwd, dict(self.env))


class _Ctx:
    def __init__(self, root: Path, home: Path) -> None:
        self.root = root
        self.home = home
        self.pipeline_ids = 0


def _iter_children(node: object) -> Iterator[object]:
    for attr in ("parts", "list"):
        for child in getattr(node, attr, None) or ():
            yield child
    for attr in ("command", "output", "heredoc"):
        child = getattr(node, attr, None)
        if isinstance(child, bashlex.ast.node):
            yield child


def _walk_all(node: object) -> Iterator[object]:
    yield node
    for child in _iter_children(node):
        yield from _walk_all(child)


def _substitutions(node: object) -> Iterator[object]:
    """Command and process substitutions directly inside a word (not nested deeper)."""
    for child in getattr(node, "parts", None) or ():
        kind = getattr(child, "kind", "")
        if kind in ("commandsubstitution", "processsubstitution"):
            yield child
        else:
            yield from _substitutions(child)


def _make_word(node: object) -> Word:
    params: list[str] = []
    subst = False
    tilde = False
    for sub in _walk_all(node):
        if sub is node:
            continue
        kind = getattr(sub, "kind", "")
        if kind == "parameter":
            params.append(str(getattr(sub, "value", "") or ""))
        elif kind in ("commandsubstitution", "processsubstitution"):
            subst = True
        elif kind == "tilde" and getattr(sub, "pos", (1,))[0] == getattr(node, "pos", (0,))[0]:
            tilde = True
    return Word(str(getattr(node, "word", "")), tuple(params), subst, tilde)


_TIME_RE = re.compile(r"(^|[;&|(\n]\s*|\b(?:then|do|else)\s+)(time(?:\s+-p)?)(?=\s)")
_ARITH_RE = re.compile(r"\$\(\(([^()$`]*)\)\)")
_DBRACKET_OPEN = re.compile(r"(^|[\s;&|(!])\[\[(?=\s)")
_DBRACKET_CLOSE = re.compile(r"(?<=\s)\]\]($|[\s;&|)])")


def _bashlex_parse(text: str) -> list[object]:
    """bashlex with two repairs for constructs it does not implement.

    ``time`` (a keyword) and arithmetic expansion raise NotImplementedError; they are
    blanked out to the same length (positions stay valid) and parsing is retried.
    """
    try:
        return bashlex.parse(text)
    except Exception:
        repaired = _TIME_RE.sub(lambda m: m.group(1) + " " * len(m.group(2)), text)
        repaired = _ARITH_RE.sub(lambda m: "0" * len(m.group(0)), repaired)
        # `[[ ... ]]` -> `[  ...  ]`: a test command; operators inside it may then be
        # read as redirections or lists, which only makes the analysis stricter
        repaired = _DBRACKET_OPEN.sub(lambda m: m.group(1) + "[ ", repaired)
        repaired = _DBRACKET_CLOSE.sub(lambda m: " ]" + m.group(1), repaired)
        if repaired == text:
            raise
        return bashlex.parse(repaired)


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
        if isinstance(output, bashlex.ast.node):
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
                assigns.append(str(p.word))  # type: ignore[attr-defined]
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
        args = eff[1:]
        inner_scope = _Scope(part.cwd, dict(part.env))
        depth = part.depth + 1
        if name in _SHELLS:
            code = _shell_c_string(args)
            if code is not None:
                self.run_string(part, code, inner_scope, f"{name} -c", depth)
            elif not _has_script_operand(args):
                docs = [r for r in part.redirects if r.heredoc is not None]
                here = [r for r in part.redirects if r.op == "<" and r.target is not None]
                if docs:
                    body = docs[0].heredoc or ""
                    delim = docs[0].target.text if docs[0].target else ""
                    quoted = "'" in (part.text or "") or '"' in (part.text or "") or "\\" in delim
                    if ("$" in body or "`" in body) and not quoted:
                        part.dynamic_code = True
                    body = body.rsplit("\n", 1)[0] if body.rstrip().endswith(delim) else body
                    if self.parse_string(body, inner_scope, f"{name} heredoc", depth):
                        part.transparent = not part.dynamic_code
                elif here:
                    part.reads_stdin_code = True  # sh < script: runs a file we do not read
                else:
                    part.reads_stdin_code = True
        elif name in _INTERPRETERS - _SHELLS:
            if not _has_script_operand(args, interpreter=True):
                part.reads_stdin_code = True
        elif name == "eval":
            self.run_string(part, Word(" ".join(w.text for w in args),
                                       tuple(p for w in args for p in w.params),
                                       any(w.subst for w in args), False), inner_scope, "eval", depth)
        elif name == "su":
            for i, w in enumerate(args):
                if w.text in ("-c", "--command") and i + 1 < len(args):
                    self.run_string(part, args[i + 1], inner_scope, "su -c", depth)
                    break
                if w.text.startswith("--command="):
                    self.run_string(part, Word(w.text.split("=", 1)[1], w.params, w.subst), inner_scope, "su -c", depth)
                    break
        elif name == "watch":
            rest = _skip_options(args, {"-n", "--interval", "-d", "-q", "--equexit"}, {"-n", "--interval", "-q", "--equexit"})
            if rest:
                if any(w.text in ("-x", "--exec") for w in args):
                    self.add_inner(part, rest, inner_scope, "watch", depth, open_args=False)
                else:
                    self.run_string(part, Word(" ".join(w.text for w in rest),
                                               tuple(p for w in rest for p in w.params),
                                               any(w.subst for w in rest)), inner_scope, "watch", depth)
        elif name == "xargs":
            inner = _xargs_command(args)
            if not inner:
                inner = [Word("echo")]
            # `find X | xargs rm -rf`: the arguments are what find prints
            extra: list[Word] = []
            prev = self._previous_stage(part)
            if prev is not None:
                peff, _ = unwrap(prev.words)
                if peff and base_name(peff[0].text) == "find":
                    starts, narrowed, _actions = _find_info(peff[1:])
                    if not narrowed:
                        extra = starts or [Word(".")]
                elif peff and base_name(peff[0].text) in ("echo", "printf") and not prev.redirects:
                    # `echo / | xargs rm -rf`: the arguments are what echo prints
                    extra = [w for w in peff[1:] if not w.text.startswith("-")]
            self.add_inner(part, inner + extra, inner_scope, "xargs", depth, open_args=True)
            part.transparent = True
        elif name == "find":
            starts, narrowed, actions = _find_info(args)
            for cmd in actions:
                words = []
                for w in cmd:
                    if "{}" in w.text:
                        if not narrowed and starts:
                            words.append(starts[0] if w.text == "{}" else Word(w.text.replace("{}", starts[0].text), starts[0].params, starts[0].subst, starts[0].tilde))
                        else:
                            words.append(w)  # `{}`: a path find found (narrowed by a test)
                    else:
                        words.append(w)
                self.add_inner(part, words, inner_scope, "find -exec", depth, open_args=True)
        elif name == "env":
            for i, w in enumerate(args):
                if w.text in ("-S", "--split-string") and i + 1 < len(args):
                    self.run_string(part, args[i + 1], inner_scope, "env -S", depth)
                    break
                if w.text.startswith("--split-string="):
                    self.run_string(part, Word(w.text.split("=", 1)[1], w.params, w.subst), inner_scope, "env -S", depth)
                    break

    def _previous_stage(self, part: Part) -> Part | None:
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


def _slice(src: str, n: object) -> str:
    pos = getattr(n, "pos", None)
    if not pos:
        return ""
    return src[pos[0]:pos[1]]


def _fallback_parts(text: str, scope: _Scope, depth: int) -> list[Part]:
    """A coarse split of an unparsable command, for the catastrophic scan only."""
    try:
        lex = shlex.shlex(text, posix=True, punctuation_chars=";&|()<>")
        lex.whitespace_split = True
        lex.commenters = ""
        tokens = list(lex)
    except ValueError:
        tokens = re.split(r"\s+|(?=[;&|()])|(?<=[;&|()])", text)
    parts: list[Part] = []
    current: list[str] = []
    redirects: list[Redirect] = []
    pending: str | None = None

    def flush() -> None:
        nonlocal current, redirects
        if current or redirects:
            words = [_guess_word(t) for t in current]
            parts.append(Part(words, [], redirects, " ".join(current), scope.cwd, dict(scope.env),
                              "unparsed", depth))
        current, redirects = [], []

    for tok in tokens:
        if not tok:
            continue
        if pending is not None:
            redirects.append(Redirect(pending, None, _guess_word(tok)))
            pending = None
            continue
        if set(tok) <= set(";&|()") :
            flush()
            continue
        if set(tok) <= set("<>&|") or re.fullmatch(r"\d*(>>?|<)", tok):
            pending = tok.lstrip("0123456789") or ">"
            continue
        current.append(tok)
    flush()
    # drop shell keywords (`do rm x`, `then ...`) and leading assignments (`a=1 cmd`)
    for p in parts:
        while p.words and (p.words[0].text in _KEYWORDS or re.match(r"^[A-Za-z_][A-Za-z0-9_]*=", p.words[0].text)):
            w = p.words.pop(0)
            if w.text not in _KEYWORDS:
                p.assignments.append(w.text)
    return parts


_KEYWORDS = {"do", "then", "else", "elif", "if", "while", "until", "!", "{", "}", "done", "fi", "esac",
             "time", "coproc", "function"}


def _guess_word(tok: str) -> Word:
    params = tuple(m.group(1) or m.group(2) for m in re.finditer(r"\$\{([A-Za-z_][A-Za-z0-9_]*)\}|\$([A-Za-z_][A-Za-z0-9_]*)", tok))
    subst = "$(" in tok or "`" in tok
    return Word(tok, params, subst, tok.startswith("~"))


# ---------------------------------------------------------------------------
# words and wrappers
# ---------------------------------------------------------------------------

_PARAM_RE = re.compile(r"\$\{([A-Za-z_][A-Za-z0-9_]*)\}|\$([A-Za-z_][A-Za-z0-9_]*)")


def expand_text(text: str, params: tuple[str, ...], tilde: bool, env: dict[str, str], home: Path) -> str | None:
    """The static value of a word, or None when it depends on run-time state."""
    if tilde:
        if text == "~" or text.startswith("~/"):
            text = str(home) + text[1:]
        else:
            return None  # ~user
    if params:
        found = list(_PARAM_RE.finditer(text))
        if not found:
            return None  # ${x:-y}, $'..' and other forms we do not evaluate
        for m in found:
            name = m.group(1) or m.group(2)
            if name not in env or not env[name]:
                return None
        text = _PARAM_RE.sub(lambda m: env[m.group(1) or m.group(2)], text)
        if "$" in text and re.search(r"\$[{A-Za-z_(]", text):
            return None
    return text


def expand_word(w: Word, env: dict[str, str], home: Path) -> str | None:
    if w.subst:
        return None
    return expand_text(w.text, w.params, w.tilde, env, home)


def base_name(cmd: str) -> str:
    return cmd.rsplit("/", 1)[-1] if "/" in cmd and not cmd.endswith("/") else cmd


# wrapper -> (options that take a value, does a positional come before the command)
_WRAPPERS: dict[str, tuple[set[str], int]] = {
    "sudo": ({"-u", "-g", "-h", "-p", "-C", "-D", "-r", "-t", "-U", "-T", "--user", "--group", "--host",
              "--prompt", "--close-from", "--chdir", "--role", "--type", "--other-user", "--command-timeout"}, 0),
    "doas": ({"-u", "-C"}, 0),
    "run0": ({"-u", "--user", "-g", "--group", "-D", "--chdir"}, 0),
    "pkexec": ({"--user"}, 0),
    "nice": ({"-n", "--adjustment"}, 0),
    "nohup": (set(), 0),
    "timeout": ({"-s", "--signal", "-k", "--kill-after"}, 1),
    "time": ({"-f", "--format", "-o", "--output"}, 0),
    "stdbuf": ({"-i", "-o", "-e", "--input", "--output", "--error"}, 0),
    "ionice": ({"-c", "--class", "-n", "--classdata", "-p", "--pid", "-P", "--pgid", "-u", "--uid"}, 0),
    "command": (set(), 0),
    "builtin": (set(), 0),
    "exec": ({"-a"}, 0),
    "env": ({"-u", "--unset", "-C", "--chdir", "-S", "--split-string"}, 0),
    "caffeinate": ({"-t", "-w"}, 0),
    "chronic": (set(), 0),
    "unbuffer": (set(), 0),
    "npx": ({"-p", "--package", "-c", "--call"}, 0),
    "pnpx": (set(), 0),
    "bunx": (set(), 0),
}
PRIVILEGE_WRAPPERS = {"sudo", "doas", "run0", "pkexec", "su"}
BENIGN_WRAPPERS = {"nice", "nohup", "timeout", "time", "stdbuf", "ionice", "command", "builtin", "chronic", "unbuffer", "caffeinate"}


def unwrap_one(words: list[Word]) -> tuple[list[Word], str] | None:
    """Strip one wrapper (``sudo -u x``, ``timeout 10``, ``env A=1``...): (rest, its name)."""
    if not words:
        return None
    name = base_name(words[0].text)
    if name not in _WRAPPERS:
        return None
    if name == "command" and any(x.text in ("-v", "-V") for x in words[1:2]):
        return None  # command -v X only prints
    with_value, positionals = _WRAPPERS[name]
    w = words
    i = 1
    while i < len(w):
        t = w[i].text
        if t == "--":
            i += 1
            break
        if name == "env" and re.match(r"^[A-Za-z_][A-Za-z0-9_]*=", t):
            i += 1
            continue
        if t.startswith("-") and t != "-":
            if name == "nice" and re.fullmatch(r"-\d+", t):
                i += 1
                continue
            opt = t.split("=", 1)[0]
            i += 1
            if opt in with_value and "=" not in t:
                i += 1
            continue
        if name == "env" and t == "-":
            i += 1
            continue
        break
    i += positionals
    rest = w[i:]
    if not rest:
        return None
    return rest, name


def unwrap(words: list[Word]) -> tuple[list[Word], list[str]]:
    """Strip wrappers (sudo, env, nice, nohup, timeout N, time, command, exec...).

    Returns the words of the command that really runs and the wrappers' names.
    ``command -v X`` is not a wrapper (it only prints), nor is ``env`` alone.
    """
    wrappers: list[str] = []
    w = list(words)
    for _ in range(16):
        step = unwrap_one(w)
        if step is None:
            break
        w, name = step
        wrappers.append(name)
    return w, wrappers


def _skip_options(args: list[Word], flags: set[str], with_value: set[str]) -> list[Word]:
    i = 0
    while i < len(args):
        t = args[i].text
        if t == "--":
            return args[i + 1:]
        if not t.startswith("-"):
            break
        i += 2 if t in with_value else 1
    return args[i:]


def _shell_c_string(args: list[Word]) -> Word | None:
    """The code string of ``sh -c 'code'`` (also ``-lc``, ``-ec``, ``-o x -c``)."""
    i = 0
    seen_c = False
    while i < len(args):
        t = args[i].text
        if t == "--":
            i += 1
            break
        if t in ("-o", "+o", "-O", "+O", "--rcfile", "--init-file"):
            i += 2
            continue
        if t.startswith("--"):
            i += 1
            continue
        if t.startswith(("-", "+")) and len(t) > 1:
            if "c" in t[1:]:
                seen_c = True
            i += 1
            continue
        break
    if seen_c and i < len(args):
        return args[i]
    return None


def _has_script_operand(args: list[Word], interpreter: bool = False) -> bool:
    """Does the shell/interpreter get a script (a file, -c, -e, -m) rather than stdin?"""
    i = 0
    while i < len(args):
        t = args[i].text
        if t == "-" or t == "-s":
            return False
        if t in ("-c", "-e", "-E", "-m", "-r", "--eval", "--print", "-p") and interpreter:
            return True
        if t in ("-o", "+o", "-O", "+O", "-W", "-X", "-I", "--rcfile", "--init-file", "--require", "-r"):
            i += 2
            continue
        if t.startswith(("-", "+")):
            if not interpreter and "c" in t[1:] and not t.startswith("--"):
                return True
            i += 1
            continue
        return True
    return False


_XARGS_VALUE = {"-a", "-d", "-E", "-I", "-L", "-n", "-P", "-s", "--arg-file", "--delimiter", "--eof",
                "--replace", "--max-lines", "--max-args", "--max-procs", "--max-chars", "--process-slot-var"}


def _xargs_command(args: list[Word]) -> list[Word]:
    i = 0
    while i < len(args):
        t = args[i].text
        if t == "--":
            return args[i + 1:]
        if not t.startswith("-") or t == "-":
            return args[i:]
        opt = t.split("=", 1)[0]
        if opt in _XARGS_VALUE and "=" not in t:
            i += 2
        else:
            i += 1
    return []


_FIND_NARROWING = {
    "-name", "-iname", "-path", "-ipath", "-wholename", "-iwholename", "-regex", "-iregex",
    "-newer", "-anewer", "-cnewer", "-mtime", "-mmin", "-atime", "-amin", "-ctime", "-cmin",
    "-size", "-empty", "-user", "-group", "-perm", "-inum", "-links", "-samefile", "-lname", "-ilname",
    "-uid", "-gid", "-nouser", "-nogroup", "-used", "-newerXY", "-context",
}
_FIND_EXEC = {"-exec", "-execdir", "-ok", "-okdir"}


def _find_info(args: list[Word]) -> tuple[list[Word], bool, list[list[Word]]]:
    """(start paths, has a narrowing test, commands run by -exec/-ok)."""
    starts: list[Word] = []
    i = 0
    while i < len(args) and args[i].text in ("-H", "-L", "-P", "-O0", "-O1", "-O2", "-O3", "-D"):
        i += 2 if args[i].text == "-D" else 1
    while i < len(args) and not args[i].text.startswith(("-", "(", "!")) and args[i].text not in ("(", "!"):
        starts.append(args[i])
        i += 1
    narrowed = False
    actions: list[list[Word]] = []
    while i < len(args):
        t = args[i].text
        if t in _FIND_NARROWING or t.startswith("-newer"):
            narrowed = True
        if t in _FIND_EXEC:
            cmd: list[Word] = []
            i += 1
            while i < len(args) and args[i].text not in (";", "+"):
                cmd.append(args[i])
                i += 1
            if cmd:
                actions.append(cmd)
        i += 1
    if not starts:
        starts = [Word(".")]
    return starts, narrowed, actions


# ---------------------------------------------------------------------------
# public: parse
# ---------------------------------------------------------------------------


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


# ---------------------------------------------------------------------------
# classification
# ---------------------------------------------------------------------------

SYSTEM_DIRS = {
    "bin", "boot", "dev", "etc", "home", "lib", "lib32", "lib64", "libx32", "opt", "proc", "root",
    "sbin", "srv", "sys", "usr", "var", "Users", "System", "Library", "Applications", "Volumes",
    "private", "snap", "nix",
}
SHELL_RC = {
    ".bashrc", ".bash_profile", ".bash_login", ".bash_logout", ".profile", ".zshrc", ".zprofile",
    ".zshenv", ".zlogin", ".zlogout", ".cshrc", ".tcshrc", ".kshrc", ".mkshrc", ".inputrc",
}
SHELL_RC_PATHS = {".config/fish/config.fish"}
SYSTEM_RC = {"/etc/profile", "/etc/bash.bashrc", "/etc/bashrc", "/etc/zshrc", "/etc/zsh/zshrc", "/etc/environment"}
BLOCK_DEVICE_RE = re.compile(
    r"^/dev/(sd[a-z]|hd[a-z]|vd[a-z]|xvd[a-z]|nvme\d|mmcblk\d|disk\d|rdisk\d|dm-\d|md\d|loop\d|mapper/|"
    r"mem$|kmem$|port$|sr\d|nbd\d|zd\d|root$|block/)"
)
HARMLESS_DEVICES = {"/dev/null", "/dev/zero", "/dev/stdout", "/dev/stderr", "/dev/stdin", "/dev/tty", "/dev/full", "/dev/random", "/dev/urandom"}
POWER_COMMANDS = {"shutdown", "reboot", "halt", "poweroff"}

# Reading these asks by default (the "secrets default").
SECRET_NAMES = {"id_rsa", "id_dsa", "id_ecdsa", "id_ed25519", "id_ecdsa_sk", "id_ed25519_sk",
                ".netrc", "_netrc", ".pgpass", "credentials", ".git-credentials", ".npmrc", ".pypirc"}
SECRET_SUFFIXES = (".pem", ".key", ".p12", ".pfx", ".jks", ".keystore", ".ppk", ".asc", ".gpg")
SECRET_HOME_DIRS = (".ssh", ".aws", ".gnupg", ".config/gcloud", ".azure", ".kube", ".docker", ".password-store")
ENV_TEMPLATES = {".example", ".sample", ".template", ".dist", ".defaults"}


def is_secret_path(path: Path, home: Path) -> bool:
    name = path.name
    if name == ".env" or (name.startswith(".env.") and "." + name.rsplit(".", 1)[-1] not in ENV_TEMPLATES):
        return True
    if name in SECRET_NAMES and name != "credentials":
        return True
    if name.endswith(SECRET_SUFFIXES) and not name.endswith(".pub"):
        return True
    for d in SECRET_HOME_DIRS:
        base = home / d
        if path == base or base in path.parents:
            return True
    return False


def is_shell_rc(path: Path, home: Path) -> bool:
    if str(path) in SYSTEM_RC:
        return True
    if path.parent == home and path.name in SHELL_RC:
        return True
    try:
        rel = path.relative_to(home).as_posix()
    except ValueError:
        return False
    return rel in SHELL_RC_PATHS


def _has_glob(text: str) -> bool:
    return any(c in text for c in "*?[")


def target_class(value: str, cwd: Path | None, root: Path, home: Path) -> tuple[str, Path | None]:
    """Classify a path a command deletes/overwrites.

    Returns (class, path): root | home | above | workspace | system (catastrophic
    targets), inside | outside, or unknown (a relative path with an unknown cwd).
    A trailing ``*``/``.*`` component means "everything in the directory".
    """
    text = value
    if not text:
        return "unknown", None
    comps = text.split("/")
    glob_all = False
    if _has_glob(text):
        # keep the static prefix; a bare `*`, `.*`, `**` component means "everything"
        static: list[str] = []
        for c in comps:
            if _has_glob(c):
                glob_all = c in ("*", ".*", "**", ".[!.]*", "*.*", "{*,.*}")
                break
            static.append(c)
        text = "/".join(static) if static else ""
        if text == "" and comps and comps[0] == "":
            text = "/"
        if text == "":
            text = "."
    if text.startswith("/"):
        path = Path(os.path.normpath(text))
        if text.startswith("//"):
            path = Path("/" + str(path).lstrip("/"))
    else:
        if cwd is None:
            return "unknown", None
        path = Path(os.path.normpath(os.path.join(cwd, text)))
    specific_glob = _has_glob(value) and not glob_all
    cls = _dir_class(path, root, home)
    if specific_glob and cls in ("root", "home", "above", "workspace", "system"):
        # `rm -rf /*.log`, `rm -rf ~/tmp*`: not everything, but not inside either
        return ("inside" if cls == "workspace" else "outside"), path
    return cls, path


def _dir_class(path: Path, root: Path, home: Path) -> str:
    if path == Path("/"):
        return "root"
    if path == home or path in home.parents:
        return "home"
    if path == root:
        return "workspace"
    if path in root.parents:
        return "above"
    if root in path.parents:
        return "inside"
    parts = path.parts
    if len(parts) == 2 and parts[1] in SYSTEM_DIRS:
        return "system"
    if len(parts) == 3 and parts[1] == "usr":
        return "system"
    return "outside"


CATASTROPHIC_CLASSES = {"root", "home", "above", "workspace", "system"}
_CLASS_TEXT = {
    "root": "the whole filesystem",
    "home": "the home directory",
    "above": "a directory above the workspace",
    "workspace": "the workspace root",
    "system": "a system directory",
}

_PUBLISH = {
    ("npm", "publish"), ("npm", "unpublish"), ("yarn", "publish"), ("yarn", "npm"), ("pnpm", "publish"),
    ("bun", "publish"), ("twine", "upload"), ("cargo", "publish"), ("cargo", "yank"), ("poetry", "publish"),
    ("gem", "push"), ("gem", "yank"), ("docker", "push"), ("podman", "push"), ("buildah", "push"),
    ("flit", "publish"), ("hatch", "publish"), ("uv", "publish"), ("pdm", "publish"), ("vsce", "publish"),
    ("ovsx", "publish"), ("helm", "push"), ("mvn", "deploy"), ("gradle", "publish"), ("dotnet", "nuget"),
    ("nuget", "push"), ("pod", "trunk"), ("swift", "package-registry"), ("gh", "release"), ("jsr", "publish"),
    ("deno", "publish"), ("mix", "hex.publish"), ("lein", "deploy"), ("conda", "upload"), ("anaconda", "upload"),
}

_GIT_GLOBAL_VALUE = {"-C", "-c", "--git-dir", "--work-tree", "--namespace", "--exec-path", "--config-env", "--super-prefix"}


def git_subcommand(args: list[str]) -> tuple[str | None, list[str], list[str]]:
    """(subcommand, its arguments, the global options before it)."""
    i = 0
    globals_: list[str] = []
    while i < len(args):
        t = args[i]
        if t.startswith("-"):
            opt = t.split("=", 1)[0]
            globals_.append(t)
            if opt in _GIT_GLOBAL_VALUE and "=" not in t:
                if i + 1 < len(args):
                    globals_.append(args[i + 1])
                i += 2
            else:
                i += 1
            continue
        return t, args[i + 1:], globals_
    return None, [], globals_


def _short_flags(args: list[str]) -> tuple[set[str], list[str]]:
    """(flags, operands) for a GNU-style command; after `--` everything is an operand."""
    flags: set[str] = set()
    operands: list[str] = []
    done = False
    for a in args:
        if done:
            operands.append(a)
        elif a == "--":
            done = True
        elif a.startswith("--"):
            flags.add(a.split("=", 1)[0])
        elif a.startswith("-") and len(a) > 1:
            for ch in a[1:]:
                flags.add("-" + ch)
        else:
            operands.append(a)
    return flags, operands


def _operand_words(words: list[Word]) -> list[Word]:
    out: list[Word] = []
    done = False
    for w in words:
        if done:
            out.append(w)
        elif w.text == "--":
            done = True
        elif w.text.startswith("-") and len(w.text) > 1:
            continue
        else:
            out.append(w)
    return out


class _Classifier:
    def __init__(self, parsed: ParsedCommand, root: Path, home: Path) -> None:
        self.parsed = parsed
        self.root = root
        self.home = home
        self.findings: list[Finding] = []
        self.read_only: list[bool] = []

    def add(self, level: Level, code: str, message: str, part: int | None, path: Path | None = None) -> None:
        self.findings.append(Finding(level, code, message, part, path))

    def run(self) -> Analysis:
        parsed = self.parsed
        for name in parsed.fork_bombs:
            self.add("catastrophic", "fork-bomb",
                     f"defines a fork bomb (the function {name!r} spawns copies of itself)", None)
        if parsed.error is not None:
            self.add("risky", "parse-error",
                     f"the command could not be analysed ({parsed.error}), so it needs approval", None)
        for i, part in enumerate(parsed.parts):
            self.read_only.append(self.part(i, part))
        return Analysis(parsed, self.findings, self.read_only)

    # -- one part ----------------------------------------------------------

    def value(self, w: Word, part: Part) -> str | None:
        return expand_word(w, part.env, self.home)

    def part(self, i: int, part: Part) -> bool:
        """Add the findings of one part; return whether it is read-only."""
        read_only = True
        for r in part.redirects:
            if r.writes and not self.write_target(i, part, r.target, "redirection", is_redirect=True):
                read_only = False
            elif r.reads and r.target is not None:
                self.read_target(i, part, r.target)
        eff, wrappers = unwrap(part.words)
        if any(w in PRIVILEGE_WRAPPERS for w in wrappers):
            self.add("risky", "sudo", f"runs with elevated privileges ({', '.join(sorted(set(wrappers) & PRIVILEGE_WRAPPERS))})", i)
            read_only = False
        if part.dynamic_code:
            self.add("risky", "dynamic-code",
                     "runs code that cannot be resolved before it runs (a variable or substitution in the script)", i)
            read_only = False
        if part.reads_stdin_code:
            read_only = False
            if self._fed_by_download(part):
                self.add("risky", "download-exec", "pipes a download into a shell or interpreter", i)
        if not eff:
            return read_only
        if part.assignments and not all(_harmless_assignment(a) for a in part.assignments):
            read_only = False
        if "env" in wrappers and any(re.match(r"^[A-Za-z_][A-Za-z0-9_]*=", w.text) for w in part.words):
            read_only = False
        cmd_word = eff[0]
        if not cmd_word.static and not (cmd_word.tilde and not cmd_word.params and not cmd_word.subst):
            resolved = self.value(cmd_word, part)
            if resolved is None:
                resolved = _echo_substitution(cmd_word.text)
            if resolved is None:
                self.add("risky", "dynamic-command",
                         f"the command name {cmd_word.text!r} is only known when it runs", i)
                self.dynamic_catastrophe(i, part, eff)
                return False
            eff = [Word(resolved)] + eff[1:]
        name = base_name(eff[0].text)
        args = eff[1:]
        argv = [w.text for w in args]
        if part.transparent:
            self.interpreter_download(i, part, name, args)
            return read_only
        ro = self.command(i, part, name, args, argv)
        self.interpreter_download(i, part, name, args)
        self.secret_reads(i, part, name, args)
        return read_only and ro

    def _fed_by_download(self, part: Part) -> bool:
        if part.pipeline is None:
            return False
        for p in self.parsed.parts:
            if p.pipeline == part.pipeline and p.stage < part.stage:
                eff, _ = unwrap(p.words)
                if eff and base_name(eff[0].text) in _DOWNLOADERS:
                    return True
        return False

    def interpreter_download(self, i: int, part: Part, name: str, args: list[Word]) -> None:
        """`bash <(curl ...)`, `sh -c "$(curl ...)"`, `eval "$(wget -O- ...)"`, `. <(curl ...)`."""
        if name not in _INTERPRETERS and name not in ("eval",):
            return
        if not any(w.subst for w in args):
            return
        for w in args:
            if w.subst and re.search(r"(^|[\s(`|;&])(" + "|".join(map(re.escape, _DOWNLOADERS)) + r")\s", w.text + " "):
                self.add("risky", "download-exec", f"runs code downloaded by {w.text!r}", i)
                return

    def dynamic_catastrophe(self, i: int, part: Part, eff: list[Word]) -> None:
        """`$(x) -rf /`: the name is unknown, but if the arguments would be catastrophic for
        rm/chmod/dd, refuse."""
        args = eff[1:]
        argv = [w.text for w in args]
        flags, _ = _short_flags(argv)
        if flags & {"-r", "-R", "--recursive"}:
            for w in _operand_words(args):
                cls, path = self.classify_target(w, part)
                if cls in CATASTROPHIC_CLASSES:
                    self.add("catastrophic", "dynamic-rm",
                             f"runs an unknown command with recursive flags on {_CLASS_TEXT[cls]} ({w.text})", i, path)
                    return
        for a in argv:
            if a.startswith("of=") and BLOCK_DEVICE_RE.match(a[3:]):
                self.add("catastrophic", "device-write", f"writes to the device {a[3:]}", i, Path(a[3:]))
                return

    def classify_target(self, w: Word, part: Part) -> tuple[str, Path | None]:
        value = self.value(w, part)
        if value is None:
            # `$UNSET/`, `$X/*`: expands to `/` or `/*` when X is empty
            if re.fullmatch(r"\$\{?[A-Za-z_][A-Za-z0-9_]*\}?/\*?", w.text) or w.subst and w.text.endswith("/*"):
                return "unresolved-root", None
            return "dynamic", None
        return target_class(value, part.cwd, self.root, self.home)

    # -- the command table -------------------------------------------------

    def command(self, i: int, part: Part, name: str, args: list[Word], argv: list[str]) -> bool:
        flags, operands = _short_flags(argv)
        if name in ("rm", "rimraf", "del-cli", "trash", "rmdir", "unlink", "shred"):
            recursive = name == "rimraf" or bool(flags & {"-r", "-R", "--recursive"}) or name == "del-cli"
            for w in _operand_words(args):
                cls, path = self.classify_target(w, part)
                if recursive and cls in CATASTROPHIC_CLASSES:
                    self.add("catastrophic", "rm-root", f"recursively deletes {_CLASS_TEXT[cls]} ({w.text})", i, path)
                elif recursive and cls == "unresolved-root":
                    self.add("risky", "rm-unresolved",
                             f"recursively deletes {w.text!r}, which is `/` if the variable is empty", i)
                elif cls == "dynamic" and recursive:
                    self.add("risky", "rm-dynamic", f"recursively deletes {w.text!r}, only known when it runs", i)
                else:
                    self.write_target(i, part, w, "delete")
            return False
        self.output_options(i, part, name, args, argv)
        if name == "find":
            starts, narrowed, actions = _find_info(args)
            deletes = "-delete" in argv
            writes = any(a in argv for a in ("-fprint", "-fprint0", "-fprintf", "-fls"))
            for j, a in enumerate(argv):
                if a in ("-fprint", "-fprint0", "-fprintf", "-fls") and j + 1 < len(args):
                    self.write_target(i, part, args[j + 1], f"find {a}")
            if deletes:
                for w in starts:
                    cls, path = self.classify_target(w, part)
                    if cls in CATASTROPHIC_CLASSES and not narrowed:
                        self.add("catastrophic", "find-delete", f"deletes everything under {_CLASS_TEXT[cls]} ({w.text})", i, path)
                    elif cls in CATASTROPHIC_CLASSES - {"workspace"} or cls in ("outside", "dynamic", "unresolved-root", "unknown"):
                        self.add("risky", "find-delete-outside", f"deletes files under {w.text}, outside the workspace", i, path)
            return not deletes and not writes
        if name in ("chmod", "chown", "chgrp", "chattr", "setfacl"):
            recursive = bool(flags & {"-R", "--recursive"}) or (name == "setfacl" and "-R" in flags)
            ops = _operand_words(args)[1:] if name != "chattr" else _operand_words(args)
            for w in ops:
                cls, path = self.classify_target(w, part)
                if recursive and cls in CATASTROPHIC_CLASSES:
                    self.add("catastrophic", "chmod-root", f"recursively changes permissions/ownership of {_CLASS_TEXT[cls]} ({w.text})", i, path)
                else:
                    self.write_target(i, part, w, "change")
            return False
        if name.startswith("mkfs") or name in ("mke2fs", "mkswap", "wipefs", "mkdosfs", "mkntfs", "newfs"):
            self.add("catastrophic", "mkfs", f"formats a filesystem ({name})", i)
            return False
        if name in ("fdisk", "sfdisk", "parted", "gdisk", "sgdisk", "cfdisk", "blkdiscard"):
            self.add("risky", "partition", f"changes disk partitions ({name})", i)
            return False
        if name == "dd":
            for a in args:
                if a.text.startswith("of="):
                    self.write_target(i, part, Word(a.text[3:], a.params, a.subst, a.text[3:].startswith("~")), "dd")
            return False
        if name in POWER_COMMANDS:
            self.add("catastrophic", "power", f"stops or restarts the machine ({name})", i)
            return False
        if name in ("init", "telinit") and any(a in ("0", "6") for a in argv):
            self.add("catastrophic", "power", f"stops or restarts the machine ({name} {' '.join(argv)})", i)
            return False
        if name == "systemctl" and any(a in ("poweroff", "reboot", "halt", "kexec", "emergency", "rescue", "soft-reboot") for a in operands):
            self.add("catastrophic", "power", "stops or restarts the machine (systemctl)", i)
            return False
        if name in ("kill", "pkill", "killall") and ("1" in operands or "-1" in argv):
            self.add("catastrophic", "kill-all", "kills init or every process", i)
            return False
        if name in ("su",):
            self.add("risky", "sudo", "runs as another user (su)", i)
            return False
        if name == "git":
            return self.git(i, part, argv)
        for a, b in _PUBLISH:
            if name == a and operands[:1] == [b]:
                self.add("risky", "publish", f"publishes a package or image ({name} {b})", i)
                return False
        if name in ("python", "python3", "python2") and len(argv) >= 3 and argv[0] == "-m" and argv[1] == "twine" and argv[2] == "upload":
            self.add("risky", "publish", "publishes a package (twine upload)", i)
            return False
        # writers
        if name == "tee":
            for w in _operand_words(args):
                self.write_target(i, part, w, "tee")
            return False
        if name in ("cp", "mv", "install", "ln", "rsync", "scp"):
            ops = _operand_words(args)
            target_dir = None
            for j, a in enumerate(argv):
                if a in ("-t", "--target-directory") and j + 1 < len(args):
                    target_dir = args[j + 1]
                elif a.startswith("--target-directory="):
                    target_dir = Word(a.split("=", 1)[1])
            dests = [target_dir] if target_dir is not None else ops[-1:] if len(ops) >= 2 else []
            for w in dests:
                if name in ("rsync", "scp") and ":" in w.text:
                    continue
                self.write_target(i, part, w, name)
            if name == "mv":
                for w in (ops if target_dir is not None else ops[:-1]):
                    cls, path = self.classify_target(w, part)
                    if cls in CATASTROPHIC_CLASSES:
                        self.add("catastrophic", "mv-root", f"moves {_CLASS_TEXT[cls]} away ({w.text})", i, path)
                    else:
                        self.write_target(i, part, w, "move")
            if name in ("cp", "rsync", "scp"):
                for w in ops[:-1] if target_dir is None else ops:
                    self.read_target(i, part, w)
            return False
        if name in ("sed", "perl", "ruby") and any(a == "-i" or a.startswith("-i") or a.startswith("--in-place") for a in argv if not a.startswith("--") or a.startswith("--in-place")):
            ops = _operand_words(args)
            script_given = any(a in ("-e", "--expression", "-f", "--file") for a in argv)
            files = ops if script_given else ops[1:]
            for w in files:
                self.write_target(i, part, w, f"{name} -i")
            return False
        if name in ("truncate", "touch", "mkdir", "mkfifo", "mknod"):
            for w in _operand_words(args):
                if name == "truncate" and w.text.isdigit():
                    continue
                self.write_target(i, part, w, name)
            return False
        if name in ("time", "curl", "wget"):
            return False
        return is_read_only_command(name, argv) and not self._has_output_option(name, argv)

    def _has_output_option(self, name: str, argv: list[str]) -> bool:
        return any(a.split("=", 1)[0] in _OUTPUT_LONG for a in argv) or (
            name in _DASH_O_WRITERS and any(a == "-o" or a.startswith("-o") and name != "curl" and len(a) > 2 for a in argv))

    def output_options(self, i: int, part: Part, name: str, args: list[Word], argv: list[str]) -> None:
        """Files named by output options: `--output=f`, `sort -o f`, `curl -o f`, `gcc -o f`..."""
        for j, a in enumerate(argv):
            opt, eq, value = a.partition("=")
            target: Word | None = None
            if opt in _OUTPUT_LONG:
                if eq:
                    target = Word(value, args[j].params, args[j].subst, value.startswith("~"))
                elif j + 1 < len(args):
                    target = args[j + 1]
            elif name in _DASH_O_WRITERS and (a == "-o" or (name in ("wget",) and a == "-O")):
                if j + 1 < len(args):
                    target = args[j + 1]
            elif name in _DASH_O_WRITERS and a.startswith("-o") and len(a) > 2 and name not in ("curl", "wget"):
                target = Word(a[2:])
            if target is not None and target.text != "-":
                self.write_target(i, part, target, f"{name} {opt}")

    def git(self, i: int, part: Part, argv: list[str]) -> bool:
        sub, rest, globals_ = git_subcommand(argv)
        flags, operands = _short_flags(rest)
        if sub == "push":
            if flags & {"-f", "--force", "--force-with-lease", "--force-if-includes", "--mirror", "--delete", "-d"} or any(o.startswith("+") for o in operands) or any(o.startswith(":") and len(o) > 1 for o in operands):
                self.add("risky", "force-push", "force-pushes (or deletes) remote history", i)
            return False
        if sub == "reset" and "--hard" in flags:
            self.add("risky", "reset-hard", "git reset --hard discards uncommitted work", i)
            return False
        if sub == "clean" and (flags & {"-f", "--force"}):
            self.add("risky", "git-clean", "git clean -f deletes untracked files", i)
            return False
        if sub in ("checkout", "restore") and ("." in operands or "--" in rest and rest[-1:] == ["."]) and sub == "checkout" and "--" in rest:
            self.add("risky", "discard", "discards uncommitted changes", i)
            return False
        for j, g in enumerate(globals_):
            if g == "-c" and j + 1 < len(globals_):
                key = globals_[j + 1].split("=", 1)[0].lower()
                if _GIT_EXEC_CONFIG.search(key):
                    self.add("risky", "git-config-exec", f"sets git config {key!r}, which runs a command", i)
        if "-c" in globals_ or "--exec-path" in [g.split("=")[0] for g in globals_] or "--config-env" in [g.split("=")[0] for g in globals_]:
            return False
        return _git_read_only(sub, rest)

    # -- paths -------------------------------------------------------------

    def write_target(self, i: int, part: Part, w: Word | None, how: str, is_redirect: bool = False) -> bool:
        """Record a write; return True if it is harmless (for plan mode: /dev/null...)."""
        if w is None:
            return True
        value = self.value(w, part)
        if value is None:
            self.add("write", "unknown", f"{how} writes to {w.text!r}, which is only known when it runs", i)
            return False
        if value.startswith("/dev/") or value in HARMLESS_DEVICES:
            norm = os.path.normpath(value)
            if norm in HARMLESS_DEVICES or norm.startswith("/dev/fd/") or norm.startswith("/dev/pts/"):
                return True
            if BLOCK_DEVICE_RE.match(norm):
                self.add("catastrophic", "device-write", f"{how} overwrites the device {norm}", i, Path(norm))
                return False
            self.add("write", "outside", f"{how} writes to the device {norm}", i, Path(norm))
            return False
        if _has_glob(value) and not is_redirect:
            cls, path = target_class(value, part.cwd, self.root, self.home)
            if path is None:
                self.add("write", "unknown", f"{how} writes to {w.text!r}, relative to an unknown directory", i)
                return False
            self.add("write", "inside" if cls == "inside" or cls == "workspace" else "outside",
                     f"{how} writes to {value}", i, path)
            return False
        if value.startswith("/"):
            path = Path(os.path.normpath(value))
        elif part.cwd is None:
            self.add("write", "unknown", f"{how} writes to {w.text!r}, relative to an unknown directory", i)
            return False
        else:
            path = Path(os.path.normpath(os.path.join(part.cwd, value)))
        if is_shell_rc(path, self.home):
            self.add("write", "rc", f"{how} writes to the shell startup file {path}", i, path)
        elif path == self.root or self.root in path.parents:
            self.add("write", "inside", f"{how} writes to {path}", i, path)
        else:
            self.add("write", "outside", f"{how} writes to {path}, outside the workspace", i, path)
        return False

    def read_target(self, i: int, part: Part, w: Word) -> None:
        value = self.value(w, part)
        if value is None:
            return
        if value.startswith("/"):
            path = Path(os.path.normpath(value))
        elif part.cwd is None:
            path = Path(os.path.normpath(os.path.join(self.root, value)))
        else:
            path = Path(os.path.normpath(os.path.join(part.cwd, value)))
        if is_secret_path(path, self.home):
            self.add("read", "secret", f"reads {value!r}, which may hold secrets", i, path)

    def secret_reads(self, i: int, part: Part, name: str, args: list[Word]) -> None:
        if name in _NON_READERS:
            return
        for w in args:
            text = w.text
            if text.startswith("-") and "=" in text:
                w = Word(text.split("=", 1)[1], w.params, w.subst, text.split("=", 1)[1].startswith("~"))
            elif text.startswith("-"):
                continue
            elif text.startswith("@"):
                w = Word(text[1:], w.params, w.subst)
            self.read_target(i, part, w)


_OUTPUT_LONG = {"--output", "--output-file", "--output-document", "--log-file", "--outfile", "--out-file"}
_DASH_O_WRITERS = {"sort", "gcc", "g++", "cc", "c++", "clang", "clang++", "curl", "wget", "tree", "base64",
                   "pandoc", "ld", "rustc", "go", "nvcc", "gfortran", "zig", "as", "objcopy", "uniq"}
_GIT_EXEC_CONFIG = re.compile(
    r"^(core\.(pager|sshcommand|editor|fsmonitor|hookspath|askpass|gitproxy)|alias\.|pager\.|diff\.external|"
    r"sequence\.editor|credential\.|gpg\.|.*\.(command|textconv|clean|smudge|process|cmd|tool|helper)$|"
    r"uploadpack\.|receive\.|remote\..*\.(uploadpack|receivepack)|protocol\.)"
)

_NON_READERS = {"echo", "printf", "ls", "rm", "rmdir", "touch", "mkdir", "test", "[", "[[", "stat", "chmod",
                "chown", "chgrp", "cd", "which", "type", "basename", "dirname", "realpath", "readlink", "true",
                "false", "unlink", "shred", "du", "file"}

_HARMLESS_ENV = re.compile(r"^(LC_[A-Z]+|LANG|LANGUAGE|TZ|NO_COLOR|FORCE_COLOR|CLICOLOR|TERM|COLUMNS|LINES)=")


def _harmless_assignment(a: str) -> bool:
    return bool(_HARMLESS_ENV.match(a))


def _echo_substitution(text: str) -> str | None:
    """`$(echo rm)`, `` `printf rm` ``: the static value of a trivial substitution."""
    m = re.fullmatch(r"\$\(\s*(?:echo|printf)\s+(?:-n\s+|-e\s+)?['\"]?([\w./-]+)['\"]?\s*\)|`\s*(?:echo|printf)\s+(?:-n\s+)?['\"]?([\w./-]+)['\"]?\s*`", text)
    if m:
        return m.group(1) or m.group(2)
    return None


_READ_ONLY = {
    "ls", "cat", "head", "tail", "wc", "grep", "egrep", "fgrep", "rg", "ag", "ack", "pwd", "echo", "printf",
    "which", "type", "whereis", "file", "stat", "du", "df", "tree", "less", "more", "bat", "cut", "tr", "diff",
    "cmp", "comm", "basename", "dirname", "realpath", "readlink", "whoami", "id", "uname", "printenv",
    "true", "false", "test", "[", "[[", "nl", "od", "hexdump", "strings", "sha1sum", "sha256sum", "sha512sum",
    "md5sum", "md5", "shasum", "cksum", "b2sum", "jq", "cd", "pushd", "popd", "dirs", "column", "fold", "rev",
    "tac", "paste", "expand", "unexpand", "seq", "sleep", "uptime", "free", "ps", "groups", "locale", "tty",
    "lsb_release", "nproc", "arch", "look", "fmt", "zcat", "zgrep", "xzcat", "bzcat", "lscpu", "lsblk",
    "getconf", "cal", "env", "sort", "uniq", "xxd", "date", "hostname", "command", "man", "info", "help",
    "wait", "fd", "fdfind", "dust", "exa", "eza", "jobs", "history", "yq", "tldr", "dig", "nslookup",
    "host", "ping", "sha224sum", "sha384sum", "base64", "numfmt", "join", "csplit", "split", "find",
}


def is_read_only_command(name: str, argv: list[str]) -> bool:
    """The built-in read-only classifier used by plan mode (after unwrapping)."""
    if name not in _READ_ONLY:
        return False
    flags, operands = _short_flags(argv)
    if name == "sort" and ("-o" in flags or "--output" in flags):
        return False
    if name == "uniq" and len(operands) > 1:
        return False
    if name == "tree" and ("-o" in flags):
        return False
    if name == "xxd" and ("-r" in flags or len(operands) > 1):
        return False
    if name == "date" and ("-s" in flags or "--set" in flags):
        return False
    if name == "hostname" and operands:
        return False
    if name == "env" and operands:
        return False  # env CMD: unwrap() handles the command; env alone prints
    if name == "command" and not ({"-v", "-V"} & flags):
        return False
    if name in ("rg",) and ("--pre" in flags):
        return False
    if name == "yq" and ("-i" in flags or "--inplace" in flags):
        return False
    if name in ("split", "csplit"):
        return False
    if name == "base64" and ("-o" in flags or "--output" in flags):
        return False
    if name == "find":
        return not any(a in argv for a in ("-delete", "-fprint", "-fprint0", "-fprintf", "-fls"))
    return True


_GIT_RO = {
    "status", "log", "diff", "show", "rev-parse", "ls-files", "ls-tree", "blame", "grep", "shortlog",
    "describe", "cat-file", "show-ref", "merge-base", "rev-list", "count-objects", "name-rev", "whatchanged",
    "version", "help", "ls-remote", "annotate", "show-branch", "cherry", "check-ignore", "var", "diff-tree",
    "diff-files", "diff-index", "for-each-ref", "verify-commit", "verify-tag", "range-diff",
}


def _git_read_only(sub: str | None, rest: list[str]) -> bool:
    if sub is None:
        return True
    flags, operands = _short_flags(rest)
    if any(r.startswith("--output") for r in rest) or "--ext-diff" in rest:
        return False
    if sub in _GIT_RO:
        return True
    if sub == "branch":
        if flags & {"-d", "-D", "-m", "-M", "-c", "-C", "-f", "--delete", "--move", "--copy", "--force",
                    "--set-upstream-to", "-u", "--unset-upstream", "--edit-description", "--track", "-t"}:
            return False
        listing = flags & {"-l", "--list", "-a", "--all", "-r", "--remotes", "--contains", "--no-contains",
                           "--merged", "--no-merged", "--points-at"}
        return not operands or bool(listing)
    if sub == "tag":
        if flags & {"-d", "--delete", "-a", "-s", "-f", "-m", "-F", "-u", "--annotate", "--sign", "--force"}:
            return False
        return not operands or bool(flags & {"-l", "--list"})
    if sub == "remote":
        return not operands or operands[0] in ("show", "get-url") or (flags <= {"-v", "--verbose"} and not operands)
    if sub == "config":
        return bool(flags & {"--get", "--get-all", "--list", "-l", "--get-regexp", "--show-origin"}) or operands[:1] in (["get"], ["list"])
    if sub == "stash":
        return operands[:1] in (["list"], ["show"])
    if sub == "reflog":
        return not operands or operands[0] in ("show",)
    if sub == "worktree":
        return operands[:1] == ["list"]
    if sub == "submodule":
        return operands[:1] == ["status"] or not operands
    return False


def analyze(cmd: str, cwd: Path, root: Path, home: Path) -> Analysis:
    """Parse and classify ``cmd``. Never raises."""
    root = Path(root)
    home = Path(home)
    parsed = parse_command(cmd, cwd=cwd, home=home, root=root)
    try:
        return _Classifier(parsed, root, home).run()
    except Exception as e:
        log.exception("shell classification failed on %r", cmd)
        parsed.error = parsed.error or f"classification failed: {type(e).__name__}"
        finding = Finding("risky", "parse-error", "the command could not be analysed, so it needs approval", None)
        return Analysis(parsed, [finding], [False] * len(parsed.parts))


def classify(cmd: str, cwd: Path, root: Path, home: Path) -> list[Finding]:
    """The findings for ``cmd`` run in ``cwd`` inside the workspace ``root``."""
    return analyze(cmd, cwd, root, home).findings


__all__ = [
    "Analysis", "Finding", "ParsedCommand", "Part", "Redirect", "Word", "analyze", "classify",
    "is_read_only_command", "is_secret_path", "is_shell_rc", "parse_command", "target_class", "unwrap", "unwrap_one",
]
