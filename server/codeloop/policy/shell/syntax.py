"""The bashlex adapter: walking its trees, making Words, repairing what it cannot parse,
and a coarse tokenizer for commands it rejects (the catastrophic scan still sees them)."""

from __future__ import annotations

import re
import shlex
from typing import Iterator

import bashlex
import bashlex.ast

from codeloop.policy.shell.model import Part, Redirect, Word, _Scope


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


def _is_node(obj: object) -> bool:
    return isinstance(obj, bashlex.ast.node)
