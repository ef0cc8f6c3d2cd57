"""Token usage and cost, per turn and per session.

Usage comes from each response's ``usage`` field (a dict or the openai SDK's
object). Prices are USD per million tokens. The built-in table holds list prices
as published in 2025 for common hosted models; a ``prices`` setting
(``codeloop.config.Price`` per model name) overrides or extends it. Model names
match by the longest known prefix, so ``gpt-4o-2024-08-06`` is priced as
``gpt-4o`` and ``gpt-4o-mini-…`` as ``gpt-4o-mini``. A model with no price
(e.g. a local one) is counted but not priced.

Cached prompt tokens (served from the provider's prompt cache) are priced at the
``cached_input`` rate and the rest of the prompt at ``input``; the totals show the cache
hit rate (cached / prompt tokens). Cache writes (Anthropic's ``cache_creation_input_tokens``)
are priced as plain input.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from codeloop.config import Price

# model prefix -> (input, cached input, output), USD per million tokens
BUILTIN_PRICES: dict[str, tuple[float, float, float]] = {
    "gpt-4o": (2.50, 1.25, 10.00),
    "gpt-4o-mini": (0.15, 0.075, 0.60),
    "gpt-4.1": (2.00, 0.50, 8.00),
    "gpt-4.1-mini": (0.40, 0.10, 1.60),
    "gpt-4.1-nano": (0.10, 0.025, 0.40),
    "gpt-5": (1.25, 0.125, 10.00),
    "gpt-5-mini": (0.25, 0.025, 2.00),
    "gpt-5-nano": (0.05, 0.005, 0.40),
    "o1": (15.00, 7.50, 60.00),
    "o3": (2.00, 0.50, 8.00),
    "o3-mini": (1.10, 0.55, 4.40),
    "o4-mini": (1.10, 0.275, 4.40),
    "claude-3-5-sonnet": (3.00, 0.30, 15.00),
    "claude-3-7-sonnet": (3.00, 0.30, 15.00),
    "claude-sonnet-4": (3.00, 0.30, 15.00),
    "claude-3-5-haiku": (0.80, 0.08, 4.00),
    "claude-haiku-4": (1.00, 0.10, 5.00),
    "claude-opus-4": (15.00, 1.50, 75.00),
    "claude-opus-4-5": (5.00, 0.50, 25.00),
    "deepseek-chat": (0.28, 0.028, 0.42),
    "deepseek-reasoner": (0.28, 0.028, 0.42),
}


def _norm(model: str) -> str:
    name = model.strip().lower()
    # "openai/gpt-4o", "anthropic/claude-sonnet-4" (routers)
    if "/" in name:
        name = name.rsplit("/", 1)[1]
    return name


def price_for(model: str, overrides: Mapping[str, Price | Mapping[str, Any]] | None = None) -> Price | None:
    """The price of ``model``: an override first (exact name, then longest prefix),
    then the built-in table. None when unknown."""
    name = _norm(model)
    if overrides:
        table = {_norm(k): v for k, v in overrides.items()}
        hit = table.get(name)
        if hit is None:
            keys = [k for k in table if name.startswith(k)]
            hit = table[max(keys, key=len)] if keys else None
        if hit is not None:
            return hit if isinstance(hit, Price) else Price.model_validate(hit)
    keys = [k for k in BUILTIN_PRICES if name.startswith(k)]
    if not keys:
        return None
    inp, cached, out = BUILTIN_PRICES[max(keys, key=len)]
    return Price(input=inp, cached_input=cached, output=out)


def _get(obj: Any, key: str) -> Any:
    if obj is None:
        return None
    if isinstance(obj, Mapping):
        return obj.get(key)
    return getattr(obj, key, None)


def _int(value: Any) -> int:
    try:
        return max(0, int(value or 0))
    except (TypeError, ValueError):
        return 0


@dataclass(frozen=True, slots=True)
class UsageDelta:
    """One request's usage. ``cached_tokens`` is part of ``prompt_tokens``."""

    model: str
    prompt_tokens: int
    completion_tokens: int
    cached_tokens: int = 0
    reasoning_tokens: int = 0
    cost: float | None = None

    @property
    def total_tokens(self) -> int:
        return self.prompt_tokens + self.completion_tokens


def parse_usage(usage: Any) -> tuple[int, int, int, int]:
    """(prompt, completion, cached, reasoning) from an OpenAI-style usage dict/object.

    Understands ``prompt_tokens_details.cached_tokens`` (OpenAI), a flat
    ``cached_tokens``, ``prompt_cache_hit_tokens`` (DeepSeek) and
    ``cache_read_input_tokens`` (Anthropic-compatible gateways). ``prompt`` is all of the
    prompt, cached part included: OpenAI-style ``prompt_tokens`` include it; Anthropic's
    ``input_tokens`` do not, so the cache reads and writes are added to those."""
    prompt = _int(_get(usage, "prompt_tokens"))
    exclusive = not prompt and bool(_int(_get(usage, "input_tokens")))
    prompt = prompt or _int(_get(usage, "input_tokens"))
    completion = _int(_get(usage, "completion_tokens") or _get(usage, "output_tokens"))
    cached = _int(_get(_get(usage, "prompt_tokens_details"), "cached_tokens"))
    cached = cached or _int(_get(usage, "cached_tokens"))
    cached = cached or _int(_get(usage, "prompt_cache_hit_tokens"))
    cached = cached or _int(_get(usage, "cache_read_input_tokens"))
    if exclusive:
        prompt += cached + _int(_get(usage, "cache_creation_input_tokens"))
    reasoning = _int(_get(_get(usage, "completion_tokens_details"), "reasoning_tokens"))
    return prompt, completion, min(cached, prompt), reasoning


def cost_of(prompt: int, completion: int, cached: int, price: Price | None) -> float | None:
    if price is None:
        return None
    cached_rate = price.cached_input if price.cached_input is not None else price.input
    return ((prompt - cached) * price.input + cached * cached_rate + completion * price.output) / 1_000_000


@dataclass(slots=True)
class UsageTotals:
    requests: int = 0
    prompt_tokens: int = 0
    completion_tokens: int = 0
    cached_tokens: int = 0
    reasoning_tokens: int = 0
    cost: float | None = None  # None until a priced request is added
    unpriced_requests: int = 0

    def add(self, d: UsageDelta) -> None:
        self.requests += 1
        self.prompt_tokens += d.prompt_tokens
        self.completion_tokens += d.completion_tokens
        self.cached_tokens += d.cached_tokens
        self.reasoning_tokens += d.reasoning_tokens
        if d.cost is None:
            self.unpriced_requests += 1
        else:
            self.cost = (self.cost or 0.0) + d.cost

    @property
    def cache_hit_rate(self) -> float | None:
        """The share of prompt tokens served from the provider's cache (None: no prompt yet)."""
        return self.cached_tokens / self.prompt_tokens if self.prompt_tokens else None

    def line(self) -> str:
        rate = self.cache_hit_rate
        cached = f" ({self.cached_tokens:,} cached, {rate:.0%} hit rate)" if self.cached_tokens and rate is not None else ""
        cost = _money(self.cost) if self.cost is not None else "no price known"
        if self.cost is not None and self.unpriced_requests:
            cost += f" (+{self.unpriced_requests} unpriced requests)"
        return (
            f"{self.requests} requests, {self.prompt_tokens:,} in{cached}, "
            f"{self.completion_tokens:,} out, {cost}"
        )


def _money(value: float) -> str:
    return f"${value:.4f}" if value < 1 else f"${value:.2f}"


class CostTracker:
    def __init__(self, prices: Mapping[str, Price | Mapping[str, Any]] | None = None) -> None:
        self.prices = dict(prices or {})
        self.turn = UsageTotals()
        self.session = UsageTotals()
        self.models: set[str] = set()

    def set_prices(self, prices: Mapping[str, Price | Mapping[str, Any]] | None) -> None:
        """New price overrides, for requests from now on."""
        self.prices = dict(prices or {})

    def price(self, model: str) -> Price | None:
        return price_for(model, self.prices)

    def add(self, usage: Any, model: str) -> UsageDelta:
        prompt, completion, cached, reasoning = parse_usage(usage)
        delta = UsageDelta(
            model=model,
            prompt_tokens=prompt,
            completion_tokens=completion,
            cached_tokens=cached,
            reasoning_tokens=reasoning,
            cost=cost_of(prompt, completion, cached, self.price(model)),
        )
        self.turn.add(delta)
        self.session.add(delta)
        self.models.add(model)
        return delta

    def new_turn(self) -> None:
        self.turn = UsageTotals()

    def session_cost(self) -> float | None:
        return self.session.cost

    def render_short(self) -> str:
        return f"session: {self.session.line()}"

    def render(self) -> str:
        lines = [f"This turn:    {self.turn.line()}", f"This session: {self.session.line()}"]
        if self.session.cached_tokens:
            rate = self.session.cache_hit_rate or 0.0
            lines.append(
                f"Prompt cache: {self.session.cached_tokens:,} of {self.session.prompt_tokens:,} prompt tokens "
                f"this session came from the provider's cache ({rate:.0%} hit rate), priced at the cached rate"
            )
        for model in sorted(self.models):
            p = self.price(model)
            if p is None:
                lines.append(f"{model}: no price known (set one under the `prices` setting)")
            else:
                cached = p.cached_input if p.cached_input is not None else p.input
                lines.append(
                    f"{model}: ${p.input:g} in, ${cached:g} cached in, ${p.output:g} out per million tokens"
                )
        return "\n".join(lines)
