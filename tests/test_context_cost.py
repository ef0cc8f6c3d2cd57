from types import SimpleNamespace

import pytest

from codeloop.config import Price
from codeloop.context.cost import CostTracker, parse_usage, price_for


def test_prefix_matching_prefers_the_longest():
    assert price_for("gpt-4o-mini-2024-07-18").input == 0.15
    assert price_for("gpt-4o-2024-08-06").input == 2.50
    assert price_for("openai/gpt-4.1-mini").output == 1.60
    assert price_for("qwen2.5-coder:7b") is None


def test_cost_math_with_cached_tokens():
    t = CostTracker()
    d = t.add({"prompt_tokens": 10_000, "completion_tokens": 1_000, "prompt_tokens_details": {"cached_tokens": 4_000}}, "gpt-4o")
    # 6000 fresh * 2.50 + 4000 cached * 1.25 + 1000 out * 10.00, per million
    assert d.cost == pytest.approx((6000 * 2.50 + 4000 * 1.25 + 1000 * 10.0) / 1e6)
    assert d.cached_tokens == 4000


def test_overrides_win_and_extend():
    t = CostTracker({"gpt-4o": Price(input=1.0, output=2.0), "my-local": {"input": 0.5, "output": 0.5, "cached_input": 0.1}})
    d = t.add({"prompt_tokens": 1_000_000, "completion_tokens": 1_000_000}, "gpt-4o-2024-11-20")
    assert d.cost == pytest.approx(3.0)  # cached price falls back to input
    d2 = t.add({"prompt_tokens": 1_000_000, "completion_tokens": 0, "cached_tokens": 500_000}, "my-local-7b")
    assert d2.cost == pytest.approx(0.5 * 0.5 + 0.5 * 0.1)


def test_turn_and_session_totals_and_unknown_models():
    t = CostTracker()
    t.add({"prompt_tokens": 100, "completion_tokens": 10}, "gpt-4o-mini")
    t.add(SimpleNamespace(prompt_tokens=50, completion_tokens=5, prompt_tokens_details=None), "llama3.1:8b")
    assert t.turn.requests == 2 and t.turn.prompt_tokens == 150
    assert t.session.unpriced_requests == 1
    cost1 = t.session_cost()
    assert cost1 == pytest.approx((100 * 0.15 + 10 * 0.60) / 1e6)
    t.new_turn()
    assert t.turn.requests == 0 and t.session.requests == 2
    report = t.render()
    assert "This turn" in report and "This session" in report
    assert "llama3.1:8b: no price known" in report


def test_parse_usage_shapes():
    assert parse_usage({"prompt_tokens": 10, "completion_tokens": 2, "prompt_cache_hit_tokens": 4}) == (10, 2, 4, 0)
    assert parse_usage({"prompt_tokens": 10, "completion_tokens": 2, "completion_tokens_details": {"reasoning_tokens": 1}}) == (10, 2, 0, 1)
    assert parse_usage(None) == (0, 0, 0, 0)


def test_cached_tokens_priced_at_the_cached_rate_and_the_hit_rate_shown():
    t = CostTracker()
    # DeepSeek's fields: hits at $0.028/M, misses at $0.28/M.
    d = t.add({"prompt_tokens": 10_000, "completion_tokens": 0, "prompt_cache_hit_tokens": 9_000,
               "prompt_cache_miss_tokens": 1_000}, "deepseek-chat")
    assert d.cached_tokens == 9_000
    assert d.cost == pytest.approx((1_000 * 0.28 + 9_000 * 0.028) / 1e6)
    t.add({"prompt_tokens": 10_000, "completion_tokens": 0}, "deepseek-chat")
    assert t.session.cache_hit_rate == pytest.approx(0.45)
    assert "20,000 in (9,000 cached, 45% hit rate)" in t.render_short()
    report = t.render()
    assert "This session: 2 requests, 20,000 in (9,000 cached, 45% hit rate)" in report
    assert "Prompt cache: 9,000 of 20,000 prompt tokens this session came from the provider's cache (45% hit rate)" in report
    # Nothing cached: no cache clause at all (unknown is not 0%).
    fresh = CostTracker()
    fresh.add({"prompt_tokens": 100, "completion_tokens": 1}, "gpt-4o")
    assert "cached" not in fresh.render_short() and "Prompt cache" not in fresh.render()


def test_anthropic_style_input_tokens_exclude_the_cache():
    # Anthropic's own usage: input_tokens is only the uncached part.
    assert parse_usage({"input_tokens": 200, "output_tokens": 5, "cache_read_input_tokens": 3_000,
                        "cache_creation_input_tokens": 800}) == (4_000, 5, 3_000, 0)
    # OpenAI-compatible gateways: prompt_tokens already include it.
    assert parse_usage({"prompt_tokens": 4_000, "completion_tokens": 5, "cache_read_input_tokens": 3_000}) == (4_000, 5, 3_000, 0)
