"""Prompt tokens and prompt-cache hits, counted the way providers bill them.

Every chat request is rendered in a canonical form, as a list of *segments*:

1. the tool schemas, as one JSON text (keys sorted, no spaces), when the request has tools;
2. then each message in order, as one JSON object with ``role`` first and its other keys
   sorted (no spaces, non-ASCII kept).

Tools come first, then the messages, as the providers render a prompt (Anthropic documents
the order tools → system → messages; OpenAI caches "messages, tools, images" as one prefix).

``prompt_tokens`` is the sum of ``codeloop.context.tokens.count_tokens`` (o200k_base) over
the segments. The *shared prefix* of a request is the longest run it has in common with any
earlier request of the same server run: whole segments, then the common leading characters
of the first segment that differs (so a message re-rendered in the middle of the history
breaks the cache from there on, as it does at a real provider). Its tokens are the tokens of
those whole segments plus ``count_tokens`` of the common part of the next one.

The cached tokens reported follow each provider's documented rule:

- OpenAI (``openai_cached``): nothing under 1,024 shared tokens; from there, in 128-token
  steps: ``1024 + 128 * floor((shared - 1024) / 128)``.
- DeepSeek (``deepseek_cached``): 64-token storage units, nothing under 64:
  ``64 * floor(shared / 64)``.

Both are capped at ``prompt_tokens``. Without codeloop importable (this package is otherwise
stdlib only), tokens are estimated as ``ceil(chars / 4)``.
"""

from __future__ import annotations

import json
import math
import threading
from collections.abc import Mapping
from typing import Any

try:
    from codeloop.context.tokens import count_tokens as _count_tokens
except Exception:  # pragma: no cover - used outside this repository

    def _count_tokens(text: str) -> int:
        return math.ceil(len(text) / 4)


__all__ = ["PrefixCache", "segments", "prompt_tokens", "openai_cached", "deepseek_cached"]

OPENAI_MIN = 1024
OPENAI_STEP = 128
DEEPSEEK_UNIT = 64
# Candidates compared character by character for the partial segment (the latest ones).
_PARTIAL_CANDIDATES = 16


def _dumps(obj: Any) -> str:
    return json.dumps(obj, ensure_ascii=False, separators=(",", ":"), sort_keys=True)


def segments(body: Mapping[str, Any]) -> list[str]:
    """The canonical rendering of a request body (see the module docstring)."""
    out: list[str] = []
    tools = body.get("tools")
    if tools:
        out.append(_dumps(tools))
    msgs = body.get("messages")
    for m in msgs if isinstance(msgs, list) else []:
        if isinstance(m, Mapping):
            ordered = {"role": m.get("role")}
            for k in sorted(m):
                if k != "role":
                    ordered[k] = m[k]
            out.append(json.dumps(ordered, ensure_ascii=False, separators=(",", ":")))
        else:
            out.append(_dumps(m))
    return out


def prompt_tokens(body: Mapping[str, Any]) -> int:
    """Tokens of the canonical rendering: what ``usage.prompt_tokens`` reports."""
    return sum(_count_tokens(s) for s in segments(body))


def openai_cached(shared: int) -> int:
    if shared < OPENAI_MIN:
        return 0
    return OPENAI_MIN + OPENAI_STEP * ((shared - OPENAI_MIN) // OPENAI_STEP)


def deepseek_cached(shared: int) -> int:
    return DEEPSEEK_UNIT * (shared // DEEPSEEK_UNIT)


def _common_prefix_len(a: str, b: str) -> int:
    """Length of the common prefix, by bisection on slice equality (C-speed compares)."""
    lo, hi = 0, min(len(a), len(b))
    while lo < hi:
        mid = (lo + hi + 1) // 2
        if a[:mid] == b[:mid]:
            lo = mid
        else:
            hi = mid - 1
    return lo


class PrefixCache:
    """The prompts one server run has seen, to tell each new one how much of it is shared.

    Stored: for each prefix of whole segments seen (by a chain of hashes), the distinct
    segments that followed it. Append-only histories therefore cost about the size of their
    distinct content, not of everything sent.
    """

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._next: dict[int, dict[int, str]] = {}  # chain hash -> {hash(segment): segment}

    def observe(self, body: Mapping[str, Any]) -> tuple[int, int]:
        """``(prompt_tokens, shared_tokens)`` for this request; then remember it."""
        segs = segments(body)
        counts = [_count_tokens(s) for s in segs]
        with self._lock:
            chain = 0
            shared = 0
            matched = True
            for i, seg in enumerate(segs):
                followers = self._next.get(chain)
                key = hash(seg)
                if matched:
                    if followers is not None and followers.get(key) == seg:
                        shared += counts[i]
                    else:
                        matched = False
                        if followers:
                            best = max(
                                (_common_prefix_len(seg, c) for c in list(followers.values())[-_PARTIAL_CANDIDATES:]),
                                default=0,
                            )
                            if best:
                                shared += _count_tokens(seg[:best])
                self._next.setdefault(chain, {})[key] = seg
                chain = hash((chain, key))
        return sum(counts), shared
