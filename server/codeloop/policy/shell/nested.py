"""Commands that run other commands: ``bash -c``, ``eval``, ``su -c``, ``watch``,
``xargs``, ``find -exec``, ``env -S``, and shells or interpreters reading their
standard input.

``NESTED`` maps a command name (after unwrapping sudo, env, timeout...) to the
function that adds the parts it runs. To teach the parser a new one: write a
function with the ``Nested`` signature and add one entry to the table.
"""

from __future__ import annotations

from typing import Callable, Protocol

from codeloop.policy.shell.model import Part, Word, _Scope
from codeloop.policy.shell.words import (
    _INTERPRETERS,
    _SHELLS,
    _find_info,
    _has_script_operand,
    _shell_c_string,
    _skip_options,
    _xargs_command,
    base_name,
    unwrap,
)


class Runner(Protocol):
    """What a handler may ask of the parser (``parser._Parser``)."""

    def parse_string(self, text: str, scope: _Scope, origin: str, depth: int) -> bool: ...

    def run_string(self, part: Part, code: Word, scope: _Scope, origin: str, depth: int) -> None: ...

    def add_inner(self, outer: Part, words: list[Word], scope: _Scope, origin: str, depth: int,
                  open_args: bool) -> None: ...

    def previous_stage(self, part: Part) -> Part | None: ...


# (parser, the part, its command name, its arguments, the scope its inner parts run in, their depth)
Nested = Callable[[Runner, Part, str, list[Word], _Scope, int], None]


def _shell(p: Runner, part: Part, name: str, args: list[Word], scope: _Scope, depth: int) -> None:
    code = _shell_c_string(args)
    if code is not None:
        p.run_string(part, code, scope, f"{name} -c", depth)
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
            if p.parse_string(body, scope, f"{name} heredoc", depth):
                part.transparent = not part.dynamic_code
        elif here:
            part.reads_stdin_code = True  # sh < script: runs a file we do not read
        else:
            part.reads_stdin_code = True


def _interpreter(p: Runner, part: Part, name: str, args: list[Word], scope: _Scope, depth: int) -> None:
    if not _has_script_operand(args, interpreter=True):
        part.reads_stdin_code = True


def _eval(p: Runner, part: Part, name: str, args: list[Word], scope: _Scope, depth: int) -> None:
    p.run_string(part, Word(" ".join(w.text for w in args),
                            tuple(x for w in args for x in w.params),
                            any(w.subst for w in args), False), scope, "eval", depth)


def _su(p: Runner, part: Part, name: str, args: list[Word], scope: _Scope, depth: int) -> None:
    for i, w in enumerate(args):
        if w.text in ("-c", "--command") and i + 1 < len(args):
            p.run_string(part, args[i + 1], scope, "su -c", depth)
            break
        if w.text.startswith("--command="):
            p.run_string(part, Word(w.text.split("=", 1)[1], w.params, w.subst), scope, "su -c", depth)
            break


def _watch(p: Runner, part: Part, name: str, args: list[Word], scope: _Scope, depth: int) -> None:
    rest = _skip_options(args, {"-n", "--interval", "-d", "-q", "--equexit"}, {"-n", "--interval", "-q", "--equexit"})
    if rest:
        if any(w.text in ("-x", "--exec") for w in args):
            p.add_inner(part, rest, scope, "watch", depth, open_args=False)
        else:
            p.run_string(part, Word(" ".join(w.text for w in rest),
                                    tuple(x for w in rest for x in w.params),
                                    any(w.subst for w in rest)), scope, "watch", depth)


def _xargs(p: Runner, part: Part, name: str, args: list[Word], scope: _Scope, depth: int) -> None:
    inner = _xargs_command(args)
    if not inner:
        inner = [Word("echo")]
    # `find X | xargs rm -rf`: the arguments are what find prints
    extra: list[Word] = []
    prev = p.previous_stage(part)
    if prev is not None:
        peff, _ = unwrap(prev.words)
        if peff and base_name(peff[0].text) == "find":
            starts, narrowed, _actions = _find_info(peff[1:])
            if not narrowed:
                extra = starts or [Word(".")]
        elif peff and base_name(peff[0].text) in ("echo", "printf") and not prev.redirects:
            # `echo / | xargs rm -rf`: the arguments are what echo prints
            extra = [w for w in peff[1:] if not w.text.startswith("-")]
    p.add_inner(part, inner + extra, scope, "xargs", depth, open_args=True)
    part.transparent = True


def _find(p: Runner, part: Part, name: str, args: list[Word], scope: _Scope, depth: int) -> None:
    starts, narrowed, actions = _find_info(args)
    for cmd in actions:
        words = []
        for w in cmd:
            if "{}" in w.text:
                if not narrowed and starts:
                    first = starts[0]
                    words.append(first if w.text == "{}" else
                                 Word(w.text.replace("{}", first.text), first.params, first.subst, first.tilde))
                else:
                    words.append(w)  # `{}`: a path find found (narrowed by a test)
            else:
                words.append(w)
        p.add_inner(part, words, scope, "find -exec", depth, open_args=True)


def _env(p: Runner, part: Part, name: str, args: list[Word], scope: _Scope, depth: int) -> None:
    for i, w in enumerate(args):
        if w.text in ("-S", "--split-string") and i + 1 < len(args):
            p.run_string(part, args[i + 1], scope, "env -S", depth)
            break
        if w.text.startswith("--split-string="):
            p.run_string(part, Word(w.text.split("=", 1)[1], w.params, w.subst), scope, "env -S", depth)
            break


NESTED: dict[str, Nested] = {
    **dict.fromkeys(sorted(_SHELLS), _shell),
    **dict.fromkeys(sorted(_INTERPRETERS - _SHELLS), _interpreter),
    "eval": _eval,
    "su": _su,
    "watch": _watch,
    "xargs": _xargs,
    "find": _find,
    "env": _env,
}
