"""Elision: what each request sends of old, large tool output.

The conversation (and the session file) keeps every tool result whole. What the
model is sent is a view of it:

- the results of the last two model steps (the model acts on a result, then
  checks what it did), and every small result, go verbatim;
- an older large result goes verbatim while its size times its age (in model
  steps) is within ``allowance``: with 12,000, a 500-token result stays for 24
  steps, a 3,000-token one for 4. Keeping a result costs its size on every
  request, getting it again costs its size once, so big results go first;
- and while all the old results sent verbatim fit in ``cap`` tokens (newest first);
- everything else is replaced by a one-line note that says what the result was and
  exactly how to get it again (``Stub``, supplied by the caller, who knows the
  tools). Large arguments of old write calls (a whole file's new content; each
  tool names them) are shortened the same way.

A result, once elided, stays elided (``already``), so a request's prefix changes
only where something new was elided, which keeps providers' prompt caches useful.
The view depends only on the messages, the numbers and ``already``.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Callable, Collection
from dataclasses import dataclass
from typing import Any

from codeloop.context.tokens import count_tokens

# Results (and arguments) shorter than this always go verbatim: a note would save
# next to nothing.
MIN_ELIDE_CHARS = 1_000
# Items of the latest KEEP_STEPS model steps always go verbatim.
KEEP_STEPS = 2
# What an image part costs, in tokens, for the size x age rule (providers bill roughly
# 85-1,500 per image, by size and detail).
IMAGE_TOKENS = 1_000
IMAGE_NOTE = "[an image was shown here; it was elided from this old message to keep the context small]"


@dataclass(frozen=True)
class Elided:
    """A tool result (or a call's arguments) left out of the view."""

    call_id: str
    tool: str
    args: dict[str, Any]
    text: str
    arguments: bool = False  # the call's large arguments, not its result


# (tool name, parsed arguments, the result's text) -> the note sent instead
Stub = Callable[[str, dict[str, Any], str], str]
# tool name -> the arguments of its calls that may be large and can be read back from
# the files (each tool says: ``BaseTool.large_arguments``)
LargeArguments = Callable[[str], tuple[str, ...]]


@dataclass
class View:
    messages: list[dict[str, Any]]
    elided: list[Elided]
    verbatim_old: int = 0  # tokens of the old (elidable) results the view sends verbatim


def elide(
    messages: list[dict[str, Any]],
    stub: Stub,
    *,
    allowance: int,
    cap: int,
    already: Collection[str] = (),
    min_chars: int = MIN_ELIDE_CHARS,
    count: Callable[[str], int] = count_tokens,
    large_arguments: LargeArguments = lambda _name: (),
    batch: int = 0,
    headroom: float = 1.0,
) -> View:
    """The view of ``messages`` to send (the list itself is not changed).

    ``already``: keys of items elided by earlier views (``key_of``).

    ``batch``: elide in batches, for providers' prompt caches. Each new elision rewrites
    the history from that message on, and a provider's cache then misses from there:
    so nothing new is elided until the results that are due (by the size x age rule)
    add up to ``batch`` tokens, or the old results sent verbatim pass ``cap``. Then all
    of them go in one rewrite, with the rule tightened to ``headroom`` x ``allowance``
    so that the next batch is some steps away. Between batches a request's history is
    the previous one plus what is new: the cache serves all of it."""
    view = _elide(messages, stub, allowance, cap, already, min_chars, count, large_arguments)
    new = [e for e in view.elided if key_of(e.call_id, e.arguments) not in already]
    if not new or batch <= 0:
        return view
    due = sum(IMAGE_TOKENS if e.call_id.startswith("img:") else count(e.text) for e in new)
    held = _elide(messages, stub, allowance, 1 << 62, already, min_chars, count, large_arguments, hold=True)
    if due < batch and held.verbatim_old <= cap:
        return held  # not yet: this request's history only grows
    return _elide(messages, stub, int(allowance * headroom), int(cap * headroom), already, min_chars, count,
                  large_arguments)


def _elide(
    messages: list[dict[str, Any]],
    stub: Stub,
    allowance: int,
    cap: int,
    already: Collection[str],
    min_chars: int,
    count: Callable[[str], int],
    large_arguments: LargeArguments,
    hold: bool = False,
) -> View:
    """One view: the size x age rule (``hold``: nothing new is elided)."""
    # call id -> (tool name, raw arguments); the arguments are parsed only for what is elided
    calls: dict[str, tuple[str, Any]] = {}
    for m in messages:
        for c in m.get("tool_calls") or []:
            fn = c.get("function") or {}
            calls[c.get("id", "")] = (fn.get("name", ""), fn.get("arguments"))

    out = list(messages)
    elided: list[Elided] = []
    used = 0
    steps = 0  # assistant messages with tool calls seen so far (walking back)

    def keep(key: str, text: str, age: int, tokens: int | None = None) -> bool:
        """``age``: 1 for the latest step's items, 2 for the step before, ..."""
        nonlocal used
        if (tokens is None and len(text) < min_chars) or age <= KEEP_STEPS:
            return True
        if key in already:
            return False
        tokens = count(text) if tokens is None else tokens
        if hold or (tokens * age <= allowance and used + tokens <= cap):
            used += tokens
            return True
        return False

    for i in range(len(messages) - 1, -1, -1):
        m = messages[i]
        role = m.get("role")
        if role == "tool":
            text = m.get("content")
            call_id = m.get("tool_call_id", "")
            # A result follows its call: it belongs to the next step back.
            if not isinstance(text, str) or keep(call_id, text, steps + 1):
                continue
            name, raw_args = calls.get(call_id, ("", None))
            args = _args(raw_args)
            out[i] = {**m, "content": stub(name, args, text)}
            elided.append(Elided(call_id, name, args, text))
        elif role == "user" and isinstance(m.get("content"), list):
            parts, changed = [], False
            for part in m["content"]:
                url = (part.get("image_url") or {}).get("url") if isinstance(part, dict) else None
                if isinstance(url, str):
                    key = "img:" + hashlib.sha1(url.encode("ascii", "replace")).hexdigest()[:16]
                    if not keep(key, url, steps + 1, IMAGE_TOKENS):
                        parts.append({"type": "text", "text": IMAGE_NOTE})
                        elided.append(Elided(key, "", {}, url))
                        changed = True
                        continue
                parts.append(part)
            if changed:
                out[i] = {**m, "content": parts}
        elif role == "assistant" and m.get("tool_calls"):
            steps += 1
            new_calls, changed = [], False
            for c in m["tool_calls"]:
                fn = c.get("function") or {}
                raw = fn.get("arguments") or ""
                keys = large_arguments(fn.get("name", ""))
                call_id = c.get("id", "")
                if keys and isinstance(raw, str) and not keep(key_of(call_id, True), raw, steps):
                    shrunk = _shrink_arguments(raw, keys, min_chars)
                    if shrunk is not None:
                        c = {**c, "function": {**fn, "arguments": shrunk}}
                        changed = True
                        elided.append(Elided(call_id, fn.get("name", ""), _args(raw), raw, arguments=True))
                new_calls.append(c)
            if changed:
                out[i] = {**m, "tool_calls": new_calls}
    elided.reverse()
    return View(out, elided, used)


def key_of(call_id: str, arguments: bool = False) -> str:
    return f"{call_id}#args" if arguments else call_id


def _args(raw: Any) -> dict[str, Any]:
    if isinstance(raw, dict):
        return raw
    try:
        value = json.loads(raw or "{}")
    except (TypeError, ValueError):
        return {}
    return value if isinstance(value, dict) else {}


def _shrink_arguments(raw: str, keys: tuple[str, ...], min_chars: int) -> str | None:
    """The arguments with their large strings replaced by a note; still valid JSON
    (some servers parse the arguments of earlier calls). None when not JSON."""
    try:
        args = json.loads(raw)
    except ValueError:
        return None
    if not isinstance(args, dict):
        return None
    changed = False
    for key in keys:
        value = args.get(key)
        if isinstance(value, str) and len(value) >= min_chars // 2:
            lines = value.count("\n") + 1
            where = args["path"] if isinstance(args.get("path"), str) else "the files it changed"
            args[key] = (
                f"[{len(value):,} characters ({lines:,} lines) elided from this old call to keep the context "
                f"small; read {where} to see the current text]"
            )
            changed = True
    return json.dumps(args, ensure_ascii=False) if changed else None


__all__ = ["Elided", "View", "elide", "key_of", "MIN_ELIDE_CHARS"]
