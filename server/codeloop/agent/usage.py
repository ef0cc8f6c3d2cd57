"""Usage as providers report it, read into one shape."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any


def _num(obj: Any, key: str) -> int:
    if obj is None:
        return 0
    value = obj.get(key) if isinstance(obj, Mapping) else getattr(obj, key, None)
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        return 0
    return max(0, int(value))


def _usage_dict(u: Any) -> dict[str, int]:
    """Usage as providers bill it: ``prompt_tokens`` (all of the prompt), ``cached_tokens``
    (the part of it served from the provider's cache), ``completion_tokens``, and
    ``cache_write_tokens`` when the provider reports cache writes.

    Cached tokens come from OpenAI's ``prompt_tokens_details.cached_tokens``, DeepSeek's
    ``prompt_cache_hit_tokens`` (with ``prompt_cache_miss_tokens``, the rest), or
    ``cache_read_input_tokens`` (Anthropic-compatible gateways, with
    ``cache_creation_input_tokens`` for writes). The SDK keeps fields it does not know as
    attributes (pydantic extras), so all are read the same way. OpenAI-compatible
    ``prompt_tokens`` include the cached tokens; Anthropic's own ``input_tokens`` do not, so
    when only ``input_tokens`` is given (or ``prompt_tokens`` is smaller than the cache
    counts, which cannot be if it includes them) the cache counts are added to it.
    """
    prompt = _num(u, "prompt_tokens")
    exclusive = False
    if not prompt and _num(u, "input_tokens"):
        prompt, exclusive = _num(u, "input_tokens"), True
    completion = _num(u, "completion_tokens") or _num(u, "output_tokens")
    details = u.get("prompt_tokens_details") if isinstance(u, Mapping) else getattr(u, "prompt_tokens_details", None)
    cached = (
        _num(details, "cached_tokens")
        or _num(u, "prompt_cache_hit_tokens")
        or _num(u, "cache_read_input_tokens")
        or _num(u, "cached_tokens")
    )
    written = _num(u, "cache_creation_input_tokens")
    if not prompt:
        prompt = _num(u, "prompt_cache_hit_tokens") + _num(u, "prompt_cache_miss_tokens")
    if exclusive or prompt < cached + written:
        prompt += cached + written
    out = {"prompt_tokens": prompt, "completion_tokens": completion, "cached_tokens": min(cached, prompt)}
    if written:
        out["cache_write_tokens"] = written
    return out
