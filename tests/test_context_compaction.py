import json


from codeloop.context.compaction import (
    ACK_TEXT,
    DEFAULT_WINDOW,
    SUMMARY_PREFIX,
    compact,
    context_window,
    is_summary,
    should_compact,
)


def call(cid: str, path: str) -> dict:
    return {"id": cid, "type": "function", "function": {"name": "read_file", "arguments": json.dumps({"path": path})}}


def conversation(turns: int = 5, steps: int = 2) -> list[dict]:
    msgs: list[dict] = [{"role": "system", "content": "you are a test"}]
    for t in range(turns):
        msgs.append({"role": "user", "content": f"request {t}: please work on file{t}.py"})
        for s in range(steps):
            cid = f"call_{t}_{s}"
            msgs.append({"role": "assistant", "content": None, "tool_calls": [call(cid, f"file{t}.py")]})
            msgs.append({"role": "tool", "tool_call_id": cid, "content": f"contents of file{t}.py step {s}\n" * 20})
        msgs.append({"role": "assistant", "content": f"done with request {t}"})
    return msgs


class Recorder:
    def __init__(self, answer="SUMMARY: touched file0.py and file1.py; TODO: tests"):
        self.answer = answer
        self.calls = []

    async def __call__(self, messages, instructions):
        self.calls.append((messages, instructions))
        if isinstance(self.answer, Exception):
            raise self.answer
        return self.answer


def check_pairs(msgs: list[dict]) -> None:
    """Every tool result directly follows the assistant message that called it."""
    pending: set[str] = set()
    for m in msgs:
        if m["role"] == "tool":
            assert m["tool_call_id"] in pending, m
            pending.discard(m["tool_call_id"])
        else:
            assert not pending, f"tool results missing before {m}"
            if m["role"] == "assistant":
                pending = {c["id"] for c in m.get("tool_calls") or []}


async def test_keeps_recent_turns_verbatim_and_summarises_the_rest():
    msgs = conversation(turns=5)
    before = [dict(m) for m in msgs]
    rec = Recorder()
    r = await compact(msgs, rec, keep_recent_turns=2)
    assert r.ok and r.error is None
    assert msgs == before  # the input list is not touched
    # system prompt first, then the summary, then the last two turns exactly
    assert r.messages[0] == msgs[0]
    assert is_summary(r.messages[1]) and r.messages[1]["content"].startswith(SUMMARY_PREFIX)
    assert rec.answer in r.messages[1]["content"]
    last_two = msgs[msgs.index({"role": "user", "content": "request 3: please work on file3.py"}) :]
    # the kept tail starts with a user message, so an assistant ack keeps roles alternating
    assert r.messages[2] == {"role": "assistant", "content": ACK_TEXT}
    assert r.messages[3:] == last_two
    assert r.summary == rec.answer
    assert r.removed_count == len(msgs) - 1 - len(last_two)
    assert r.tokens_after < r.tokens_before
    check_pairs(r.messages)
    # the summariser saw exactly the older messages, and the instructions ask for the essentials
    seen, instructions = rec.calls[0]
    assert seen == msgs[1 : len(msgs) - len(last_two)]
    for must in ("instructions", "Files touched", "Decisions", "Open TODOs"):
        assert must in instructions


async def test_focus_goes_into_the_instructions():
    rec = Recorder()
    await compact(conversation(), rec, focus="the database migration")
    assert "the database migration" in rec.calls[0][1]


async def test_failure_leaves_the_conversation_unchanged():
    msgs = conversation()
    snapshot = json.dumps(msgs)
    for answer in (RuntimeError("rate limited"), "", "   "):
        r = await compact(msgs, Recorder(answer))
        assert not r.ok
        assert r.messages == msgs and json.dumps(r.messages) == snapshot
        assert r.error
        assert r.tokens_after == r.tokens_before
    r = await compact(msgs, Recorder(RuntimeError("rate limited")))
    assert "rate limited" in r.error


async def test_nothing_to_compact():
    msgs = conversation(turns=1, steps=0)
    r = await compact(msgs, Recorder())
    assert not r.ok and "nothing to compact" in r.error


async def test_one_huge_turn_is_cut_between_steps_never_inside_a_pair():
    msgs = conversation(turns=1, steps=30)
    r = await compact(msgs, Recorder(), keep_recent_turns=2)
    assert r.ok
    check_pairs(r.messages)
    assert r.messages[1]["role"] == "user" and is_summary(r.messages[1])
    # the cut is inside the turn: the user's request is repeated verbatim in the summary
    assert "request 0: please work on file0.py" in r.messages[1]["content"]
    assert r.messages[2]["role"] == "assistant"  # no ack needed
    assert r.messages[-1] == msgs[-1]
    assert r.tokens_after < r.tokens_before / 1.5


async def test_unresolved_tool_calls_stay_verbatim():
    msgs = conversation(turns=4)
    msgs.append({"role": "user", "content": "one more"})
    pending = {"role": "assistant", "content": None, "tool_calls": [call("open_1", "x.py")]}
    msgs.append(pending)
    r = await compact(msgs, Recorder(), keep_recent_turns=1)
    assert r.ok
    assert r.messages[-1] == pending
    assert r.messages[-2] == {"role": "user", "content": "one more"}


def test_context_window_table_and_prefixes():
    assert context_window("gpt-4o") == 128_000
    assert context_window("gpt-4o-mini-2024-07-18") == 128_000
    assert context_window("gpt-4.1-nano") == 1_047_576
    assert context_window("gpt-5-mini") == 400_000
    assert context_window("o4-mini") == 200_000
    assert context_window("anthropic/claude-sonnet-4-5") == 200_000
    assert context_window("deepseek-reasoner") == 128_000
    assert context_window("qwen2.5-coder:7b") == 32_768
    assert context_window("llama3.1:8b") == 131_072
    assert context_window("llama3:8b") == 8_192
    assert context_window("mistral-large-latest") == 131_072
    assert context_window("some-unknown-model") == DEFAULT_WINDOW == 32_768
    assert context_window("gpt-4o", override=50_000) == 50_000


def test_should_compact_threshold():
    msgs = [{"role": "user", "content": "word " * 3000}]  # ~3000 tokens
    assert not should_compact(msgs, None, "gpt-4o", 0.8)
    assert should_compact(msgs, None, "unknown", 0.8, window_override=3500)
    assert not should_compact(msgs, None, "unknown", 0.95, window_override=3500)
    assert should_compact(msgs, None, "llama3:8b", 0.3)
