import json
import time

from codeloop.context import tokens
from codeloop.context.tokens import (
    TOKENIZER_NAME,
    count_messages,
    count_tokens,
    estimate_tokens,
)

CODE = '''def fibonacci(n: int) -> int:
    """Return the n-th Fibonacci number."""
    a, b = 0, 1
    for _ in range(n):
        a, b = b, a + b
    return a
'''
PROSE = (
    "The quick brown fox jumps over the lazy dog. Long sessions are where agents fall over: "
    "they blow the context window, cost too much and forget the project's rules."
)


def test_real_tokenizer_is_used_offline():
    # toktok-rs is a declared dependency; its vocabulary is compiled in.
    assert TOKENIZER_NAME.startswith("o200k_base")
    assert count_tokens("hello world") == 2  # o200k_base: "hello", " world"


def test_counts_are_deterministic_and_sane():
    assert count_tokens("") == 0
    for text in (CODE, PROSE, json.dumps({"a": [1, 2, 3], "name": "x" * 10})):
        n = count_tokens(text)
        assert n == count_tokens(text)
        assert 2.0 <= len(text) / n <= 6.0, (len(text), n)


def test_estimate_tracks_the_tokenizer():
    for text in (CODE * 20, PROSE * 20):
        real = count_tokens(text)
        est = estimate_tokens(text)
        assert abs(est - real) / real < 0.3, (est, real)


def test_messages_add_overhead_and_tool_calls():
    msgs = [
        {"role": "system", "content": "be brief"},
        {"role": "user", "content": PROSE},
    ]
    base = count_messages(msgs)
    assert base > count_tokens("be brief") + count_tokens(PROSE)
    with_call = msgs + [
        {
            "role": "assistant",
            "content": None,
            "tool_calls": [
                {"id": "c1", "type": "function", "function": {"name": "read_file", "arguments": '{"path": "a.py"}'}}
            ],
        },
        {"role": "tool", "tool_call_id": "c1", "content": CODE},
    ]
    assert count_messages(with_call) > base + count_tokens(CODE)
    tools = [{"type": "function", "function": {"name": "read_file", "description": "Read a file", "parameters": {}}}]
    assert count_messages(msgs, tools) > base


def test_multipart_content_is_counted():
    msg = {"role": "user", "content": [{"type": "text", "text": PROSE}, {"type": "image_url", "image_url": {"url": "x"}}]}
    assert count_messages([msg]) >= count_tokens(PROSE) + tokens.IMAGE_TOKENS


def test_huge_strings_are_fast():
    text = CODE * 50_000  # ~9 MB, past HUGE_CHARS
    t0 = time.perf_counter()
    n = count_tokens(text)
    assert time.perf_counter() - t0 < 2.0
    per_copy = count_tokens(CODE)
    assert abs(n - per_copy * 50_000) / (per_copy * 50_000) < 0.05
