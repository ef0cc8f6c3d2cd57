"""Compaction: older turns summarised by the model, recent ones kept verbatim.

Automatic near a fraction (default 0.8) of the model's context window, or by
hand with ``/compact [focus]``. The summary replaces the older messages as one
user message, clearly marked; an assistant acknowledgement follows only when the
next kept message is also from the user. An assistant message with tool calls is
never separated from its tool results, and unresolved tool calls stay verbatim.
A failed compaction leaves the conversation as it was and says why.
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any

from codeloop.context.tokens import count_message, count_messages

log = logging.getLogger(__name__)

DEFAULT_WINDOW = 32_768
DEFAULT_THRESHOLD = 0.8
# When the kept turns alone hold more than this share of the conversation,
# compaction cuts inside them (at a step boundary) so that it frees something.
MAX_TAIL_SHARE = 0.5

# Known context windows (tokens), matched by the longest prefix of the model name
# (lower-cased, without a "provider/" prefix; Ollama tags like ":7b" are fine).
CONTEXT_WINDOWS: dict[str, int] = {
    "gpt-3.5-turbo": 16_385,
    "gpt-4": 8_192,
    "gpt-4-32k": 32_768,
    "gpt-4-turbo": 128_000,
    "gpt-4o": 128_000,
    "gpt-4o-mini": 128_000,
    "gpt-4.1": 1_047_576,
    "gpt-4.5": 128_000,
    "gpt-5": 400_000,
    "gpt-5-chat": 128_000,
    "gpt-oss": 131_072,
    "o1": 200_000,
    "o1-mini": 128_000,
    "o3": 200_000,
    "o3-mini": 200_000,
    "o4-mini": 200_000,
    "claude": 200_000,
    "deepseek-chat": 128_000,
    "deepseek-reasoner": 128_000,
    "deepseek-coder": 128_000,
    "deepseek-v3": 128_000,
    "deepseek-r1": 128_000,
    "qwen2.5-coder": 32_768,
    "qwen2.5": 32_768,
    "qwen3": 40_960,
    "qwen3-coder": 262_144,
    "qwq": 131_072,
    "llama3": 8_192,
    "llama-3": 8_192,
    "llama3.1": 131_072,
    "llama-3.1": 131_072,
    "llama3.2": 131_072,
    "llama-3.2": 131_072,
    "llama3.3": 131_072,
    "llama-3.3": 131_072,
    "llama4": 1_048_576,
    "mistral": 32_768,
    "mistral-small": 131_072,
    "mistral-medium": 131_072,
    "mistral-large": 131_072,
    "mixtral": 32_768,
    "codestral": 256_000,
    "devstral": 131_072,
    "gemini": 1_048_576,
    "gemma3": 131_072,
    "phi4": 16_384,
}

SUMMARY_PREFIX = "[Summary of the earlier conversation]"
SUMMARY_INTRO = (
    SUMMARY_PREFIX + "\nThe messages before this point were replaced by this summary to save context "
    "(it was written by the assistant). Treat it as what happened so far.\n\n"
)
CURRENT_REQUEST_HEADING = "\n\nThe user's current request (verbatim):\n"
ACK_TEXT = "Understood. I have the summary of our earlier conversation and will continue from there."

SUMMARY_INSTRUCTIONS = """\
Write a summary of the conversation so far, for yourself. It will replace these messages: \
whatever you leave out is lost. Do not call tools; answer with the summary only, in plain text, \
under these headings:

1. User's instructions: every explicit instruction, constraint and preference the user gave \
(in their words where it matters), and the task they asked for.
2. State: what is done, what is in progress, and what was being done right before this summary.
3. Files touched: every file read, created or changed, by exact path, with what changed and why.
4. Decisions: what was decided and why; approaches tried that failed, and why they failed.
5. Commands and results: the commands that matter (tests, builds) and their latest outcome, \
with the exact errors still open.
6. Open TODOs: what remains to do, in order.

If the conversation starts with an earlier summary, carry its content over. Be concise but \
specific: exact names, paths, identifiers, error messages and numbers."""

Summarize = Callable[[list[dict[str, Any]], str], Awaitable[str]]


def _norm(model: str) -> str:
    name = model.strip().lower()
    if "/" in name:
        name = name.rsplit("/", 1)[1]
    return name


def context_window(model: str, override: int | None = None) -> int:
    """The model's context window in tokens: the override, else the table, else 32k."""
    if override:
        return override
    name = _norm(model)
    keys = [k for k in CONTEXT_WINDOWS if name.startswith(k)]
    return CONTEXT_WINDOWS[max(keys, key=len)] if keys else DEFAULT_WINDOW


def should_compact(
    messages: list[dict[str, Any]],
    tools: list[dict[str, Any]] | None,
    model: str,
    threshold: float = DEFAULT_THRESHOLD,
    window_override: int | None = None,
    extra_tokens: int = 0,
) -> bool:
    """True when the request (plus ``extra_tokens``, e.g. the system prompt if it is
    not among ``messages``) reaches ``threshold`` of the context window."""
    limit = threshold * context_window(model, window_override)
    return count_messages(messages, tools) + extra_tokens >= limit


def is_summary(message: dict[str, Any]) -> bool:
    content = message.get("content")
    return message.get("role") == "user" and isinstance(content, str) and content.startswith(SUMMARY_PREFIX)


@dataclass(slots=True)
class CompactionResult:
    ok: bool
    messages: list[dict[str, Any]]
    summary: str = ""
    removed_count: int = 0
    tokens_before: int = 0
    tokens_after: int = 0
    error: str | None = None
    notes: list[str] = field(default_factory=list)


def instructions_for(focus: str | None) -> str:
    if focus and focus.strip():
        return (
            SUMMARY_INSTRUCTIONS
            + f"\n\nThe user asked this summary to focus on: {focus.strip()}\nKeep everything about that in detail."
        )
    return SUMMARY_INSTRUCTIONS


def _boundaries(messages: list[dict[str, Any]], start: int) -> list[int]:
    """Indices where the conversation may be cut: a user or assistant message that
    does not sit between an assistant's tool calls and their results."""
    out = []
    open_calls: set[str] = set()
    for i in range(start, len(messages)):
        m = messages[i]
        role = m.get("role")
        if role == "tool":
            open_calls.discard(str(m.get("tool_call_id", "")))
            continue
        if role in ("user", "assistant") and not open_calls:
            out.append(i)
        if role == "assistant":
            open_calls = {str(c.get("id", "")) for c in (m.get("tool_calls") or []) if isinstance(c, dict)}
    return out


def _first_unresolved(messages: list[dict[str, Any]], start: int) -> int | None:
    """The first assistant message whose tool calls do not all have results."""
    answered = {str(m.get("tool_call_id", "")) for m in messages if m.get("role") == "tool"}
    for i in range(start, len(messages)):
        m = messages[i]
        if m.get("role") == "assistant":
            ids = {str(c.get("id", "")) for c in (m.get("tool_calls") or []) if isinstance(c, dict)}
            if ids - answered:
                return i
    return None


def choose_cut(messages: list[dict[str, Any]], keep_recent_turns: int = 2) -> tuple[int, int, list[str]]:
    """(start, cut, notes): messages[start:cut] get summarised; [:start] (leading
    system messages) and [cut:] are kept. cut == start means nothing to compact."""
    notes: list[str] = []
    start = 0
    while start < len(messages) and messages[start].get("role") == "system":
        start += 1
    bounds = _boundaries(messages, start)
    user_starts = [i for i in bounds if messages[i].get("role") == "user" and not is_summary(messages[i])]
    keep = max(1, keep_recent_turns)
    cut = user_starts[-keep] if len(user_starts) >= keep else start
    if cut <= start and len(user_starts) >= 2:
        cut = user_starts[-1]
        notes.append("kept only the last turn verbatim (there were too few turns)")
    # If the kept turns hold most of the conversation, cut inside them at a step.
    total = sum(count_message(m) for m in messages[start:])
    tail = sum(count_message(m) for m in messages[cut:])
    if total and tail > MAX_TAIL_SHARE * total:
        later = [b for b in bounds if b > cut]
        for b in later[:-1]:  # always keep at least the last step
            tail -= sum(count_message(m) for m in messages[cut:b])
            cut = b
            if tail <= MAX_TAIL_SHARE * total:
                break
        if cut > (user_starts[-keep] if len(user_starts) >= keep else start):
            notes.append("the recent turns were too large to keep whole; older steps of them were summarised")
    unresolved = _first_unresolved(messages, start)
    if unresolved is not None and unresolved < cut:
        cut = unresolved
        notes.append("kept unresolved tool calls verbatim")
    return start, cut, notes


async def compact(
    messages: list[dict[str, Any]],
    summarize: Summarize,
    focus: str | None = None,
    keep_recent_turns: int = 2,
    view: list[dict[str, Any]] | None = None,
) -> CompactionResult:
    """Summarise older turns with the model; never raises, never mutates ``messages``.

    ``view``: the messages as requests carry them (``codeloop.context.elision``:
    same length, old large results shortened). The cut, the summary's input and the
    token counts use it; the kept messages are the real ones."""
    seen = view if view is not None and len(view) == len(messages) else messages
    tokens_before = count_messages(seen)
    start, cut, notes = choose_cut(seen, keep_recent_turns)

    def unchanged(error: str) -> CompactionResult:
        return CompactionResult(False, list(messages), tokens_before=tokens_before, tokens_after=tokens_before,
                                error=error, notes=notes)

    if cut <= start:
        return unchanged("nothing to compact yet: the conversation is all recent turns")
    head = seen[start:cut]
    if all(is_summary(m) or m == {"role": "assistant", "content": ACK_TEXT} for m in head):
        return unchanged("nothing to compact yet: only the earlier summary is before the recent turns")
    try:
        summary = await summarize([dict(m) for m in head], instructions_for(focus))
    except Exception as e:  # the model call failed: report, keep everything
        log.warning("compaction failed: %s", e)
        return unchanged(f"the summary request failed: {type(e).__name__}: {e}")
    if not isinstance(summary, str) or not summary.strip():
        return unchanged("the model returned an empty summary")

    body = SUMMARY_INTRO + summary.strip()
    # When the cut falls inside a turn, that turn's request is in the head: repeat it verbatim.
    tail = messages[cut:]
    if tail and tail[0].get("role") != "user":
        request = next((m for m in reversed(head) if m.get("role") == "user"), None)
        text: str | None = None
        if request is not None and is_summary(request):
            # An earlier compaction inside this same turn quoted the request: carry it over.
            earlier = request.get("content") or ""
            at = earlier.find(CURRENT_REQUEST_HEADING)
            if at >= 0:
                text = earlier[at + len(CURRENT_REQUEST_HEADING) :]
        elif request is not None:
            content = request.get("content")
            text = content if isinstance(content, str) else "\n".join(
                str(p.get("text", "")) for p in (content or []) if isinstance(p, dict) and p.get("type") == "text"
            )
        if text is not None:
            body += CURRENT_REQUEST_HEADING + text
    new: list[dict[str, Any]] = list(messages[:start])
    new.append({"role": "user", "content": body})
    if not tail or tail[0].get("role") == "user":
        new.append({"role": "assistant", "content": ACK_TEXT})
    added = new[start:]
    new.extend(tail)
    return CompactionResult(
        ok=True,
        messages=new,
        summary=summary.strip(),
        removed_count=len(head),
        tokens_before=tokens_before,
        tokens_after=count_messages([*seen[:start], *added, *seen[cut:]]),
        notes=notes,
    )
