"""The scripted model server, driven by the real openai clients (sync and async)."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
import urllib.error
import urllib.request
from pathlib import Path

import httpx2
import openai
import pytest

from scripted_model import (
    Call,
    ChatRequest,
    CutStream,
    EndsEarly,
    Error,
    Faulty,
    Hang,
    Keyed,
    Script,
    ScriptedModel,
    Stream,
    StreamError,
    Text,
    ToolCalls,
    Usage,
    estimate_prompt_tokens,
)

USER = [{"role": "user", "content": "hello there"}]
TOOLS = [
    {
        "type": "function",
        "function": {
            "name": "read_file",
            "description": "Read a file",
            "parameters": {"type": "object", "properties": {"path": {"type": "string"}}, "required": ["path"]},
        },
    },
    {
        "type": "function",
        "function": {"name": "search", "parameters": {"type": "object", "properties": {"q": {"type": "string"}}}},
    },
]


def sync_client(model: ScriptedModel, **kw) -> openai.OpenAI:
    kw.setdefault("max_retries", 0)
    kw.setdefault("timeout", 10)
    return openai.OpenAI(base_url=model.base_url, api_key="sk-test", **kw)


def async_client(model: ScriptedModel, **kw) -> openai.AsyncOpenAI:
    kw.setdefault("max_retries", 0)
    kw.setdefault("timeout", 10)
    return openai.AsyncOpenAI(base_url=model.base_url, api_key="sk-test", **kw)


def raw_sse(model: ScriptedModel, body: dict) -> list[dict | str]:
    """POST and return the decoded SSE data payloads, exactly as sent."""
    req = urllib.request.Request(
        model.base_url + "/chat/completions",
        data=json.dumps(body).encode(),
        headers={"Content-Type": "application/json"},
    )
    out: list[dict | str] = []
    with urllib.request.urlopen(req, timeout=10) as resp:
        assert resp.headers["Content-Type"].startswith("text/event-stream")
        for line in resp.read().decode().split("\n\n"):
            if not line:
                continue
            assert line.startswith("data: ")
            data = line[len("data: ") :]
            out.append(data if data == "[DONE]" else json.loads(data))
    return out


async def test_streamed_text_reassembles_with_async_client():
    text = "The quick brown fox jumps over the lazy dog."
    with ScriptedModel(lambda req: Text(text, chunk_size=5)) as model:
        client = async_client(model)
        stream = await client.chat.completions.create(model="scripted-model", messages=USER, stream=True)
        chunks = [c async for c in stream]
        await client.close()
    assert chunks[0].choices[0].delta.role == "assistant"
    assert chunks[0].choices[0].delta.content == ""
    pieces = [c.choices[0].delta.content for c in chunks if c.choices and c.choices[0].delta.content]
    assert len(pieces) == -(-len(text) // 5)
    assert "".join(pieces) == text
    assert chunks[-1].choices[0].finish_reason == "stop"
    assert all(c.object == "chat.completion.chunk" and c.model == "scripted-model" for c in chunks)
    (req,) = model.chat_requests
    assert req.last_user_text() == "hello there"
    assert req.stream and req.count == 0
    assert req.headers["authorization"] == "Bearer sk-test"


def test_two_parallel_tool_calls_reassemble_from_deltas():
    reply = ToolCalls(
        [Call("read_file", {"path": "src/app.py"}, id="call_a"), Call("search", {"q": "def main"})],
        chunk_size=4,
    )
    with ScriptedModel(lambda req: reply) as model:
        stream = sync_client(model).chat.completions.create(
            model="m", messages=USER, tools=TOOLS, stream=True
        )
        calls: dict[int, dict] = {}
        finish = None
        for chunk in stream:
            if not chunk.choices:
                continue
            choice = chunk.choices[0]
            finish = choice.finish_reason or finish
            for tc in choice.delta.tool_calls or []:
                slot = calls.setdefault(tc.index, {"id": None, "name": "", "arguments": ""})
                if tc.id:
                    slot["id"] = tc.id
                if tc.function and tc.function.name:
                    slot["name"] += tc.function.name
                if tc.function and tc.function.arguments:
                    slot["arguments"] += tc.function.arguments
    assert finish == "tool_calls"
    assert sorted(calls) == [0, 1]
    assert calls[0]["id"] == "call_a" and calls[0]["name"] == "read_file"
    assert json.loads(calls[0]["arguments"]) == {"path": "src/app.py"}
    assert calls[1]["id"] == "call_0_1" and calls[1]["name"] == "search"
    assert json.loads(calls[1]["arguments"]) == {"q": "def main"}


def test_tool_call_chunks_have_openai_shape_and_malformed_arguments_pass_verbatim():
    bad = '{"path": "a.py", '  # truncated JSON on purpose
    with ScriptedModel(lambda req: ToolCalls([Call("read_file", bad), Call("search", {"q": "x"})], chunk_size=3)) as model:
        events = raw_sse(model, {"model": "m", "messages": USER, "tools": TOOLS, "stream": True})
    assert events[-1] == "[DONE]"
    chunks = [e for e in events if isinstance(e, dict)]
    assert chunks[0]["choices"][0]["delta"] == {"role": "assistant", "content": None, "refusal": None}
    deltas = [c["choices"][0]["delta"]["tool_calls"][0] for c in chunks if "tool_calls" in c["choices"][0]["delta"]]
    openers = [d for d in deltas if "id" in d]
    assert [o["index"] for o in openers] == [0, 1]
    assert openers[0] == {
        "index": 0, "id": "call_0_0", "type": "function", "function": {"name": "read_file", "arguments": ""}
    }
    fragments = [d for d in deltas if "id" not in d]
    assert all(set(d) == {"index", "function"} and set(d["function"]) == {"arguments"} for d in fragments)
    first = [d["function"]["arguments"] for d in fragments if d["index"] == 0]
    assert len(first) > 2 and "".join(first) == bad
    assert chunks[-1]["choices"][0]["finish_reason"] == "tool_calls"
    assert "usage" not in chunks[-1]


async def test_usage_arrives_last_with_include_usage():
    req_body = {"messages": USER, "tools": TOOLS}
    with ScriptedModel(lambda req: Text("12345678")) as model:
        client = async_client(model)
        stream = await client.chat.completions.create(
            model="m", messages=USER, tools=TOOLS, stream=True, stream_options={"include_usage": True}
        )
        chunks = [c async for c in stream]
        await client.close()
    last = chunks[-1]
    assert last.choices == []
    assert last.usage.prompt_tokens == estimate_prompt_tokens(req_body)
    assert last.usage.completion_tokens == 2
    assert last.usage.total_tokens == last.usage.prompt_tokens + 2
    assert last.usage.prompt_tokens_details.cached_tokens == 0
    assert all(c.usage is None for c in chunks[:-1])


def test_prompt_tokens_count_the_canonical_rendering_and_grow_with_the_request():
    from codeloop.context.tokens import count_tokens

    base = {"messages": [{"role": "user", "content": "x" * 40}]}
    # One segment per message: JSON with role first, other keys sorted, no spaces.
    assert estimate_prompt_tokens(base) == count_tokens('{"role":"user","content":"' + "x" * 40 + '"}')
    assert estimate_prompt_tokens(base) == estimate_prompt_tokens(json.loads(json.dumps(base)))
    with_call = {
        "messages": base["messages"]
        + [{"role": "assistant", "content": None, "tool_calls": [
            {"id": "c", "type": "function", "function": {"name": "abcd", "arguments": "1234"}}]}]
    }
    assert estimate_prompt_tokens(with_call) > estimate_prompt_tokens(base)
    assert estimate_prompt_tokens({**base, "tools": TOOLS}) == estimate_prompt_tokens(base) + count_tokens(
        json.dumps(TOOLS, separators=(",", ":"), sort_keys=True)
    )


def test_non_streaming_completion_has_usage_and_overrides_apply():
    with ScriptedModel(
        Script([Text("plain answer"), ToolCalls([Call("search", {"q": "y"})], usage=Usage(prompt_tokens=1000, cached_tokens=800))])
    ) as model:
        client = sync_client(model)
        first = client.chat.completions.create(model="m", messages=USER)
        second = client.chat.completions.create(model="m", messages=USER, tools=TOOLS)
    assert first.object == "chat.completion"
    assert first.choices[0].message.content == "plain answer"
    assert first.choices[0].finish_reason == "stop"
    assert first.usage.completion_tokens == 3
    assert first.usage.prompt_tokens == estimate_prompt_tokens({"messages": USER})
    msg = second.choices[0].message
    assert msg.content is None and msg.tool_calls[0].function.name == "search"
    assert json.loads(msg.tool_calls[0].function.arguments) == {"q": "y"}
    assert second.choices[0].finish_reason == "tool_calls"
    assert second.usage.prompt_tokens == 1000
    assert second.usage.prompt_tokens_details.cached_tokens == 800


def test_rate_limit_raises_without_retries_and_is_retried_with_retry_after():
    limited = Error(429, "rate limited", headers={"retry-after": "0"})
    with ScriptedModel(lambda req: limited) as model:
        with pytest.raises(openai.RateLimitError) as info:
            sync_client(model).chat.completions.create(model="m", messages=USER)
    assert info.value.status_code == 429
    assert info.value.body["type"] == "rate_limit_error"
    assert "rate limited" in str(info.value)

    with ScriptedModel(Script([limited, Text("after retry")])) as model:
        out = sync_client(model, max_retries=2).chat.completions.create(model="m", messages=USER)
    assert out.choices[0].message.content == "after retry"
    assert len(model.chat_requests) == 2


async def test_authentication_errors():
    with ScriptedModel(lambda req: Error(401, "Incorrect API key provided.")) as model:
        client = async_client(model)
        with pytest.raises(openai.AuthenticationError):
            await client.chat.completions.create(model="m", messages=USER)
        await client.close()
    with ScriptedModel(lambda req: Text("fine"), api_key="sk-right") as model:
        with pytest.raises(openai.AuthenticationError):
            sync_client(model).chat.completions.create(model="m", messages=USER)
        ok = openai.OpenAI(base_url=model.base_url, api_key="sk-right", max_retries=0)
        assert ok.chat.completions.create(model="m", messages=USER).choices[0].message.content == "fine"


def test_server_error_is_internal_server_error():
    with ScriptedModel(lambda req: Error(500, "upstream exploded")) as model:
        with pytest.raises(openai.InternalServerError):
            sync_client(model).chat.completions.create(model="m", messages=USER)


def test_cut_stream_raises_api_connection_error_sync():
    with ScriptedModel(lambda req: CutStream(after_chunks=3, reply=Text("abcdefghijklmnop", chunk_size=2))) as model:
        stream = sync_client(model).chat.completions.create(model="m", messages=USER, stream=True)
        got = []
        with pytest.raises(openai.APIConnectionError) as info:
            for chunk in stream:
                got.append(chunk.choices[0].delta.content)
    assert got == ["", "ab", "cd"]
    assert not isinstance(info.value, openai.APITimeoutError)
    assert isinstance(info.value.__cause__, httpx2.RemoteProtocolError)


async def test_cut_stream_raises_api_connection_error_async_also_with_reset():
    for reset in (False, True):
        with ScriptedModel(lambda req: CutStream(after_chunks=2, reset=reset)) as model:
            client = async_client(model)
            stream = await client.chat.completions.create(model="m", messages=USER, stream=True)
            with pytest.raises(openai.APIConnectionError):
                async for _ in stream:
                    pass
            await client.close()


def test_in_band_stream_error_raises_api_error():
    with ScriptedModel(lambda req: StreamError("overloaded", after_chunks=2)) as model:
        stream = sync_client(model).chat.completions.create(model="m", messages=USER, stream=True)
        with pytest.raises(openai.APIError, match="overloaded"):
            for _ in stream:
                pass


async def test_hang_trips_the_client_timeout():
    with ScriptedModel(lambda req: Hang(30)) as model:
        client = async_client(model, timeout=0.5)
        start = time.monotonic()
        with pytest.raises(openai.APITimeoutError):
            await client.chat.completions.create(model="m", messages=USER, stream=True)
        assert time.monotonic() - start < 5
        await client.close()
        t0 = time.monotonic()
    assert time.monotonic() - t0 < 3  # stop() releases the hanging handler


def test_hang_mid_stream_trips_the_read_timeout():
    with ScriptedModel(lambda req: Hang(30, after_chunks=2)) as model:
        stream = sync_client(model, timeout=0.5).chat.completions.create(model="m", messages=USER, stream=True)
        with pytest.raises(openai.APITimeoutError):
            for _ in stream:
                pass


def test_chunks_flush_as_written_with_delay():
    with ScriptedModel(lambda req: Text("a" * 12, chunk_size=2, delay=0.1)) as model:
        start = time.monotonic()
        arrivals = []
        for chunk in sync_client(model).chat.completions.create(model="m", messages=USER, stream=True):
            arrivals.append(time.monotonic() - start)
    # 8 chunks (role, 6 deltas, finish) with 0.1 s after each: the first must not wait for the rest
    assert arrivals[-1] - arrivals[0] >= 0.55


def test_stream_benchmark_reply_sends_n_token_deltas():
    with ScriptedModel(lambda req: Stream(tokens=500)) as model:
        stream = sync_client(model).chat.completions.create(
            model="m", messages=USER, stream=True, stream_options={"include_usage": True}
        )
        chunks = list(stream)
    deltas = [c.choices[0].delta.content for c in chunks if c.choices and c.choices[0].delta.content]
    assert len(deltas) == 500 and set(deltas) == {" tok"}
    assert chunks[-1].usage.completion_tokens == 500


def test_script_reacts_to_tool_results_and_overrun_fails_loudly():
    def second(req: ChatRequest):
        if "not found" in req.last_tool_results()[0]:
            return ToolCalls([Call("search", {"q": "app"})])
        return Text("read it")

    script = Script([ToolCalls([Call("read_file", {"path": "nope.py"}, id="c1")]), second, Text("found it")])
    with ScriptedModel(script) as model:
        client = sync_client(model)
        messages = list(USER)
        first = client.chat.completions.create(model="m", messages=messages, tools=TOOLS)
        call = first.choices[0].message.tool_calls[0]
        messages.append(first.choices[0].message.model_dump(exclude_none=True))
        messages.append({"role": "tool", "tool_call_id": call.id, "content": "error: file not found"})
        reply = client.chat.completions.create(model="m", messages=messages, tools=TOOLS)
        assert reply.choices[0].message.tool_calls[0].function.name == "search"
        req = model.chat_requests[1]
        assert req.tool_result("c1") == "error: file not found"
        assert req.turn_index == 1 and req.count == 1
        assert client.chat.completions.create(model="m", messages=USER).choices[0].message.content == "found it"
        with pytest.raises(openai.InternalServerError, match="3 steps but got request #4"):
            client.chat.completions.create(model="m", messages=USER)
    assert script.done and script.overruns
    assert any("3 steps" in f for f in model.failures)


def test_keyed_serves_a_multi_turn_chat():
    scenario = Keyed(
        {
            "fix": Script([ToolCalls([Call("read_file", {"path": "a.py"}, id="k1")]), Text("Fixed it.")]),
            "thanks": Text("You're welcome."),
        }
    )
    with ScriptedModel(scenario) as model:
        client = sync_client(model)
        msgs = [{"role": "system", "content": "be brief"}, {"role": "user", "content": "please fix the bug"}]
        r1 = client.chat.completions.create(model="m", messages=msgs, tools=TOOLS)
        msgs += [r1.choices[0].message.model_dump(exclude_none=True), {"role": "tool", "tool_call_id": "k1", "content": "x = 1"}]
        r2 = client.chat.completions.create(model="m", messages=msgs, tools=TOOLS)
        assert r2.choices[0].message.content == "Fixed it."
        msgs += [{"role": "assistant", "content": "Fixed it."}, {"role": "user", "content": "thanks!"}]
        assert client.chat.completions.create(model="m", messages=msgs).choices[0].message.content == "You're welcome."
        with pytest.raises(openai.InternalServerError, match="no branch"):
            client.chat.completions.create(model="m", messages=[{"role": "user", "content": "what?"}])
        assert model.chat_requests[2].system_text() == "be brief"


def test_invalid_histories_are_rejected_like_openai_does():
    with ScriptedModel(lambda req: Text("unreachable")) as model:
        client = sync_client(model)
        orphan = USER + [{"role": "tool", "tool_call_id": "zzz", "content": "result"}]
        with pytest.raises(openai.BadRequestError, match="must be a response to a preceeding"):
            client.chat.completions.create(model="m", messages=orphan)
        unanswered = USER + [
            {"role": "assistant", "content": None, "tool_calls": [
                {"id": "c9", "type": "function", "function": {"name": "search", "arguments": "{}"}}]},
            {"role": "user", "content": "never mind"},
        ]
        with pytest.raises(openai.BadRequestError, match="did not have response messages: c9"):
            client.chat.completions.create(model="m", messages=unanswered)
        with pytest.raises(openai.BadRequestError, match="only allowed when 'stream' is enabled"):
            client.chat.completions.create(model="m", messages=USER, stream_options={"include_usage": True})
    assert len(model.failures) == 3


def test_scenario_exception_is_a_500_that_is_not_retried():
    def broken(req):
        raise KeyError("oops")

    with ScriptedModel(broken) as model:
        with pytest.raises(openai.InternalServerError, match="KeyError"):
            sync_client(model, max_retries=3).chat.completions.create(model="m", messages=USER)
    assert len(model.chat_requests) == 1


def test_models_list_and_unknown_paths():
    with ScriptedModel(lambda req: Text("x"), models=["alpha", "beta"]) as model:
        client = sync_client(model)
        assert [m.id for m in client.models.list()] == ["alpha", "beta"]
        with pytest.raises(openai.NotFoundError):
            client.embeddings.create(model="alpha", input="hi")
        with pytest.raises(urllib.error.HTTPError) as info:
            urllib.request.urlopen(model.base_url.removesuffix("/v1") + "/chat/completions", data=b"{}", timeout=5)
        assert info.value.code == 404
        err = json.loads(info.value.read())["error"]
        assert set(err) >= {"message", "type", "code"} and "Invalid URL" in err["message"]
        assert [r.path for r in model.requests] == ["/v1/models", "/v1/embeddings", "/chat/completions"]


def test_scenario_swap_resets_count_and_wait_for_requests():
    with ScriptedModel(lambda req: Text(str(req.count))) as model:
        client = sync_client(model)
        assert client.chat.completions.create(model="m", messages=USER).choices[0].message.content == "0"
        assert client.chat.completions.create(model="m", messages=USER).choices[0].message.content == "1"
        model.scenario = lambda req: Text(f"new {req.count}")
        assert client.chat.completions.create(model="m", messages=USER).choices[0].message.content == "new 0"
        assert len(model.wait_for_requests(3, timeout=1)) == 3
        with pytest.raises(TimeoutError):
            model.wait_for_requests(4, timeout=0.1)


def test_standalone_process_prints_ready_serves_and_records(tmp_path: Path):
    record = tmp_path / "requests.jsonl"
    env = {**os.environ, "PYTHONPATH": str(Path(__file__).parent)}
    proc = subprocess.Popen(
        [sys.executable, "-m", "scripted_model", "--scenario", "scripted_model.scenarios:fixed",
         "--arg", "text=standalone says hi", "--port", "0", "--record", str(record)],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env,
    )
    try:
        line = proc.stdout.readline()
        assert line.startswith("READY http://127.0.0.1:") and line.rstrip().endswith("/v1")
        base_url = line.split()[1]
        client = openai.OpenAI(base_url=base_url, api_key="k", max_retries=0, timeout=10)
        out = client.chat.completions.create(model="m", messages=[{"role": "user", "content": "ping"}])
        assert out.choices[0].message.content == "standalone says hi"
        rows = [json.loads(x) for x in record.read_text().splitlines()]
        assert rows[-1]["path"] == "/v1/chat/completions"
        assert rows[-1]["body"]["messages"] == [{"role": "user", "content": "ping"}]
    finally:
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(timeout=10) == 0, proc.stderr.read()


def test_hang_then_replies_late():
    with ScriptedModel(lambda req: Hang(0.2, then=Text("late"))) as model:
        start = time.monotonic()
        out = sync_client(model).chat.completions.create(model="m", messages=USER)
    assert out.choices[0].message.content == "late"
    assert time.monotonic() - start >= 0.2


# ---- provider modes, faults and the prompt cache -----------------------------------------

TWO_CALLS = ToolCalls([Call("read_file", {"path": "a.py"}), Call("search", {"q": "main"})], chunk_size=6)


def _tool_deltas(events: list) -> list[dict]:
    return [tc for e in events if isinstance(e, dict) and e.get("choices")
            for tc in e["choices"][0]["delta"].get("tool_calls") or []]


def test_provider_modes_put_each_servers_quirks_on_the_wire():
    body = {"model": "m", "messages": USER, "tools": TOOLS, "stream": True, "stream_options": {"include_usage": True}}
    with ScriptedModel(lambda req: TWO_CALLS, provider="ollama") as model:
        events = raw_sse(model, body)
    deltas = _tool_deltas(events)
    # Ollama's legacy parser: each call whole in one delta, every one at index 0, own ids.
    assert [d["index"] for d in deltas] == [0, 0]
    assert [json.loads(d["function"]["arguments"]) for d in deltas] == [{"path": "a.py"}, {"q": "main"}]
    assert len({d["id"] for d in deltas}) == 2 and all(d["id"].startswith("call_") for d in deltas)
    chunks = [e for e in events if isinstance(e, dict)]
    assert all(c["choices"][0]["delta"]["role"] == "assistant" for c in chunks if c["choices"])
    assert chunks[-1]["choices"] == [] and "prompt_tokens_details" not in chunks[-1]["usage"]
    assert events[-1] == "[DONE]"

    with ScriptedModel(lambda req: TWO_CALLS, provider="llamacpp") as model:
        events = raw_sse(model, body)
    deltas = _tool_deltas(events)
    # Older llama-server: the whole name in every delta, the id inside "function", no type.
    first = [d for d in deltas if d["index"] == 0]
    assert len(first) > 2 and all(d["function"]["name"] == "read_file" and "id" in d["function"] for d in first)
    assert all("type" not in d and "id" not in d for d in deltas)
    last = [e for e in events if isinstance(e, dict)][-1]
    assert last["choices"][0]["finish_reason"] == "tool_calls" and last["usage"]["prompt_tokens"] > 0

    with ScriptedModel(lambda req: Text("hello world", chunk_size=3), provider="vllm") as model:
        events = raw_sse(model, body)
    chunks = [e for e in events if isinstance(e, dict) and e["choices"]]
    # vLLM: the finish_reason rides on the last delta, which carries content.
    assert chunks[-1]["choices"][0]["finish_reason"] == "stop" and chunks[-1]["choices"][0]["delta"]["content"] == "ld"

    with ScriptedModel(lambda req: TWO_CALLS, provider="lmstudio") as model:
        events = raw_sse(model, body)
    deltas = _tool_deltas(events)
    assert all(d["function"]["name"] == "" and d["id"] == "" for d in deltas if d["function"]["arguments"])
    assert not any("usage" in e for e in events if isinstance(e, dict))  # none when streaming

    with ScriptedModel(lambda req: TWO_CALLS, provider="vllm-noparser") as model:
        events = raw_sse(model, body)
    text = "".join(e["choices"][0]["delta"].get("content") or "" for e in events if isinstance(e, dict) and e["choices"])
    assert _tool_deltas(events) == []
    assert text.count("<tool_call>") == 2 and '"name": "read_file"' in text
    assert [e for e in events if isinstance(e, dict) and e["choices"]][-1]["choices"][0]["finish_reason"] == "stop"


def test_the_nostream_mode_refuses_stream_true_and_answers_without():
    script = Script([Text("plain")])
    with ScriptedModel(script, provider="nostream") as model:
        client = sync_client(model)
        with pytest.raises(openai.BadRequestError) as info:
            client.chat.completions.create(model="m", messages=USER, stream=True)
        assert info.value.body["param"] == "stream"
        assert client.chat.completions.create(model="m", messages=USER).choices[0].message.content == "plain"
    assert script.used == 1  # the refused request did not use up a step


def _raw_post(model: ScriptedModel, body: dict):
    import http.client

    conn = http.client.HTTPConnection(model.host, model.port, timeout=10)
    conn.request("POST", "/v1/chat/completions", body=json.dumps(body), headers={"Content-Type": "application/json"})
    return conn, conn.getresponse()


def test_ends_early_is_a_clean_end_of_the_body_without_finish_or_done():
    body = {"model": "m", "messages": USER, "tools": TOOLS, "stream": True}
    for framing in ("chunked", "close"):
        with ScriptedModel(lambda req: EndsEarly(TWO_CALLS, framing=framing)) as model:
            conn, resp = _raw_post(model, body)
            data = resp.read().decode()  # no IncompleteRead: the body ended properly
            conn.close()
        if framing == "chunked":
            assert resp.getheader("Transfer-Encoding") == "chunked"
        else:
            assert resp.getheader("Transfer-Encoding") is None and resp.getheader("Content-Length") is None
            assert resp.getheader("Connection") == "close"
        events = [json.loads(line[6:]) for line in data.split("\n\n") if line.startswith("data: {")]
        assert "[DONE]" not in data
        assert all(c["choices"][0]["finish_reason"] is None for c in events)
        args = {}
        for d in _tool_deltas(events):
            args[d["index"]] = args.get(d["index"], "") + d["function"]["arguments"]
        # Cut in the second call's arguments: the first is complete, the second is not.
        assert json.loads(args[0]) == {"path": "a.py"}
        assert 0 < len(args[1]) < len(json.dumps({"q": "main"}))


def test_faulty_serves_the_fault_then_the_same_step_to_the_retry():
    script = Script([Text("first answer"), Text("second answer")])
    with ScriptedModel(Faulty(script, "500", times=2)) as model:
        client = sync_client(model)
        for _ in range(2):
            with pytest.raises(openai.InternalServerError):
                client.chat.completions.create(model="m", messages=USER)
        assert client.chat.completions.create(model="m", messages=USER).choices[0].message.content == "first answer"
        other = USER + [{"role": "assistant", "content": "first answer"}, {"role": "user", "content": "more"}]
        with pytest.raises(openai.InternalServerError):
            client.chat.completions.create(model="m", messages=other)
    assert script.used == 2  # one step per distinct request, however many retries


def test_cached_tokens_are_the_shared_prefix_in_openai_and_deepseek_units():
    from scripted_model.prefix_cache import deepseek_cached, openai_cached, segments

    from codeloop.context.tokens import count_tokens

    system = {"role": "system", "content": "You are a careful assistant. " * 300}
    history = [system, {"role": "user", "content": "read it"},
               {"role": "assistant", "content": "ok " * 50}, {"role": "user", "content": "and now?"}]
    with ScriptedModel(lambda req: Text("fine")) as model:
        client = sync_client(model)

        def usage(messages):
            return client.chat.completions.create(model="m", messages=messages, tools=TOOLS).usage

        first = usage(history)
        assert first.prompt_tokens == estimate_prompt_tokens({"messages": history, "tools": TOOLS})
        assert first.prompt_tokens_details.cached_tokens == 0
        again = usage(history)  # the same prompt: all of it is shared
        assert again.prompt_tokens_details.cached_tokens == openai_cached(first.prompt_tokens)
        assert (again.prompt_tokens_details.cached_tokens - 1024) % 128 == 0
        # A message rewritten in the middle: the cache holds up to it, plus its common start.
        changed = [system, {"role": "user", "content": "read it"},
                   {"role": "assistant", "content": "ok " * 20 + "but different"}, {"role": "user", "content": "and now?"}]
        segs = segments({"messages": changed, "tools": TOOLS})
        old = segments({"messages": history, "tools": TOOLS})[3]
        common = next(i for i, (a, b) in enumerate(zip(segs[3], old)) if a != b)
        shared = sum(count_tokens(s) for s in segs[:3]) + count_tokens(segs[3][:common])
        assert usage(changed).prompt_tokens_details.cached_tokens == openai_cached(shared)
        # A short prompt never caches (under 1,024 tokens).
        assert usage(USER).prompt_tokens_details.cached_tokens == 0
        assert usage(USER).prompt_tokens_details.cached_tokens == 0

    with ScriptedModel(lambda req: Text("fine"), provider="deepseek") as model:
        client = sync_client(model)
        first = client.chat.completions.create(model="m", messages=history, tools=TOOLS).usage
        second = client.chat.completions.create(model="m", messages=history, tools=TOOLS).usage
        extra = second.model_extra
        assert extra["prompt_cache_hit_tokens"] == deepseek_cached(first.prompt_tokens)
        assert extra["prompt_cache_hit_tokens"] + extra["prompt_cache_miss_tokens"] == second.prompt_tokens
        assert second.prompt_tokens_details is None
