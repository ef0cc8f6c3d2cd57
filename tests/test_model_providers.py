"""The model client against the scripted server in each provider mode and fault mode.

Real HTTP, the real openai client, the real agent loop with the real tools on real files.
Each test either completes a real task, or fails with a clear message having run nothing
from the unfinished answer (no file written, no command run, the history untouched).
"""

from __future__ import annotations

import asyncio
import json
import sys
from pathlib import Path

import pytest
from openai.types import CompletionUsage
from scripted_model import (
    PROVIDERS,
    Call,
    ChatRequest,
    EndsEarly,
    Faulty,
    NoFinish,
    Script,
    ScriptedModel,
    Text,
    ToolCalls,
)
from scripted_model.prefix_cache import deepseek_cached, openai_cached
from test_agent_loop import make_agent

from codeloop.core.events import ErrorEvent, Notice, Retry, TextDelta, ToolCallStarted, Usage
from codeloop.agent.completion import _Calls, _text_tool_calls
from codeloop.agent.usage import _usage_dict

STREAMING = [p for p in sorted(PROVIDERS) if p != "nostream"]
TEXT_CALLS = {"vllm-noparser", "ollama-text"}
A_PY = "print('alpha')\n"
B_PY = "print('beta')\n"


def two_files_task() -> Script:
    """Two calls in one answer (the case Ollama's index 0 and llama.cpp's repeated names
    break), then a command that needs both files, then the answer."""

    def after_writes(req: ChatRequest):
        results = req.last_tool_results()
        assert len(results) == 2 and "a.py" in results[0] and "b.py" in results[1], results
        return ToolCalls([Call("run_command", {"command": f"{sys.executable} a.py && {sys.executable} b.py"})])

    def after_run(req: ChatRequest):
        out = req.last_tool_results()[0]
        assert "alpha" in out and "beta" in out and "exit code: 0" in out, out
        return Text("Both files are written and run.", chunk_size=3)

    return Script(
        [
            ToolCalls(
                [Call("write_file", {"path": "a.py", "content": A_PY}), Call("write_file", {"path": "b.py", "content": B_PY})],
                chunk_size=5,
            ),
            after_writes,
            after_run,
        ]
    )


def assert_nothing_ran(root: Path, agent, sink) -> None:
    assert sorted(p.name for p in root.iterdir()) == [], "a tool call from an unfinished answer ran"
    assert sink.of(ToolCallStarted) == []
    assert agent.messages == [], "the failed turn must leave the history as it was"


@pytest.mark.parametrize("provider", sorted(PROVIDERS))
async def test_a_real_task_completes_in_every_provider_mode(model_server, tmp_path, provider):
    server = model_server(two_files_task(), provider=provider)
    agent, sink, procs = make_agent(server, tmp_path)
    end = await agent.send("write a.py and b.py, then run them")
    await procs.shutdown()
    assert end.status == "done", [e.to_dict() for e in sink.events if e.type in ("error", "retry")]
    assert (tmp_path / "a.py").read_text() == A_PY and (tmp_path / "b.py").read_text() == B_PY
    assert not server.failures, server.failures
    # The two calls came out as two calls with their own ids (no "write_filewrite_file").
    first = agent.messages[1]
    names = [c["function"]["name"] for c in first["tool_calls"]]
    ids = [c["id"] for c in first["tool_calls"]]
    assert names == ["write_file", "write_file"] and len(set(ids)) == 2
    assert [json.loads(c["function"]["arguments"])["path"] for c in first["tool_calls"]] == ["a.py", "b.py"]
    assert [e.name for e in sink.of(ToolCallStarted)] == ["write_file", "write_file", "run_command"]
    assert agent.messages[-1] == {"role": "assistant", "content": "Both files are written and run."}
    notices = [n.message for n in sink.of(Notice)]
    if provider in TEXT_CALLS:
        # Said once, not on every call; and the call's text was never shown as an answer.
        assert len([n for n in notices if "as text" in n]) == 1, notices
        assert "--tool-call-parser hermes" in notices[0]
        assert not any("write_file" in d.text for d in sink.of(TextDelta))
    elif provider == "nostream":
        assert len(notices) == 1 and "does not stream" in notices[0], notices
        chats = server.chat_requests
        assert [r.stream for r in chats] == [True, False, False, False]  # remembered after the first 400
    else:
        assert notices == []
    usage = sink.of(Usage)
    if provider == "lmstudio":
        assert usage == []  # LM Studio sends no usage when streaming
    else:
        assert len(usage) == 3 and all(u.prompt_tokens > 0 for u in usage)


@pytest.mark.parametrize("fault", ["eof", "eof-close", "cut", "reset", "429", "500", "no-finish"])
async def test_a_fault_once_is_retried_and_the_task_completes(model_server, tmp_path, fault):
    faulty = Faulty(two_files_task(), fault, times=1)
    server = model_server(faulty)
    agent, sink, procs = make_agent(server, tmp_path)
    end = await agent.send("write a.py and b.py, then run them")
    await procs.shutdown()
    assert end.status == "done", [e.to_dict() for e in sink.events if e.type in ("error", "retry")]
    assert (tmp_path / "a.py").read_text() == A_PY and (tmp_path / "b.py").read_text() == B_PY
    # Each tool ran once: nothing ran from the faulty attempts.
    assert [e.name for e in sink.of(ToolCallStarted)] == ["write_file", "write_file", "run_command"]
    if fault == "no-finish":
        assert sink.of(Retry) == [] and len(server.chat_requests) == 3  # [DONE] ends an answer too
    else:
        assert len(sink.of(Retry)) == 3 and len(server.chat_requests) == 6
    assert agent.messages[-1]["content"] == "Both files are written and run."


@pytest.mark.parametrize("fault", ["stall", "hang"])
async def test_a_stall_or_a_hang_once_times_out_and_is_retried(model_server, tmp_path, fault):
    server = model_server(Faulty(Script([Text("A whole answer, after a wait.", chunk_size=4)]), fault, times=1, seconds=20))
    agent, sink, procs = make_agent(server, tmp_path, request_timeout=0.5)
    end = await agent.send("hi")
    await procs.shutdown()
    assert end.status == "done"
    (retry,) = sink.of(Retry)
    assert ("stalled" if fault == "stall" else "timed out") in retry.reason
    assert agent.messages[-1] == {"role": "assistant", "content": "A whole answer, after a wait."}


@pytest.mark.parametrize("provider", STREAMING)
@pytest.mark.parametrize("fault", ["eof", "eof-close", "cut"])
async def test_a_stream_cut_mid_arguments_every_time_runs_nothing(model_server, tmp_path, provider, fault):
    # The first call is complete when the cut comes (in the second call's arguments): it must
    # not run either. A cut "rm -rf build/tmp" must never become "rm -rf build".
    server = model_server(Faulty(two_files_task(), fault, times=None), provider=provider)
    agent, sink, procs = make_agent(server, tmp_path, max_retries=1)
    end = await agent.send("write a.py and b.py, then run them")
    await procs.shutdown()
    assert end.status == "error"
    assert "failed after 2 attempts" in end.message
    assert ("ended before the answer was complete" if fault.startswith("eof") else "was cut") in end.message
    assert_nothing_ran(tmp_path, agent, sink)
    assert [e.message for e in sink.of(ErrorEvent)] == [end.message]


@pytest.mark.parametrize("provider", ["openai", "ollama", "vllm"])
async def test_a_stream_cut_mid_text_is_never_the_answer(model_server, tmp_path, provider):
    answer = "Run the tests, check what it prints, and then fix the failing import."
    server = model_server(Script([EndsEarly(Text(answer, chunk_size=5)), Text(answer, chunk_size=5)]), provider=provider)
    agent, sink, procs = make_agent(server, tmp_path)
    end = await agent.send("what now?")
    assert end.status == "done"
    (retry,) = sink.of(Retry)
    assert "characters of text" in retry.reason
    # Part of the text had streamed before the cut; the Retry told the host to drop it.
    kinds = [e.type for e in sink.events]
    assert "textDelta" in kinds[: kinds.index("retry")]
    assert agent.messages[-1] == {"role": "assistant", "content": answer}

    # Cut every time: the turn fails, and the partial text is not kept as an answer.
    server.scenario = Faulty(Script([Text(answer, chunk_size=5)]), "eof", times=None)
    agent2, sink2, _ = make_agent(server, tmp_path, max_retries=1)
    end2 = await agent2.send("what now?")
    await procs.shutdown()
    assert end2.status == "error" and "ended before the answer was complete" in end2.message
    assert agent2.messages == []


async def test_tool_calls_cut_by_the_output_limit_do_not_run(model_server, tmp_path):
    calls = [Call("write_file", {"path": "a.py", "content": A_PY}), Call("run_command", {"command": "touch ran.txt"})]
    server = model_server(Script([ToolCalls(calls, finish_reason="length")]))
    agent, sink, procs = make_agent(server, tmp_path)
    end = await agent.send("go")
    await procs.shutdown()
    assert end.status == "error"
    assert "finish_reason 'length'" in end.message and "nothing was run" in end.message
    assert "output token limit" in end.message
    assert_nothing_ran(tmp_path, agent, sink)


@pytest.mark.parametrize("provider", ["openai", "ollama", "vllm-noparser"])
async def test_done_without_finish_reason_is_a_complete_answer(model_server, tmp_path, provider):
    server = model_server(
        Script([NoFinish(ToolCalls([Call("write_file", {"path": "a.py", "content": A_PY})])), NoFinish(Text("ok"))]),
        provider=provider,
    )
    agent, sink, procs = make_agent(server, tmp_path)
    end = await agent.send("go")
    await procs.shutdown()
    assert end.status == "done" and sink.of(Retry) == []
    assert (tmp_path / "a.py").read_text() == A_PY


async def test_cached_tokens_rise_across_an_append_only_session(model_server, tmp_path):
    (tmp_path / "notes.txt").write_text("".join(f"note {i}: remember the milk\n" for i in range(200)))
    steps = [ToolCalls([Call("read_file", {"path": "notes.txt"})])]
    steps += [ToolCalls([Call("grep", {"pattern": f"note {i}:"})]) for i in range(4)]
    steps.append(Text("Done reading."))
    for provider, rule in (("openai", openai_cached), ("deepseek", deepseek_cached)):
        server = model_server(Script(list(steps)), provider=provider)
        agent, sink, procs = make_agent(server, tmp_path)
        end = await agent.send("read my notes")
        await procs.shutdown()
        assert end.status == "done"
        usage = sink.of(Usage)
        assert len(usage) == 6
        prompts = [u.prompt_tokens for u in usage]
        cached = [u.cached_tokens for u in usage]
        assert cached[0] == 0  # nothing was sent before
        # Append-only: each request holds all of the one before, so that much is a cache hit,
        # in the provider's units (OpenAI: 1,024 then 128-token steps; DeepSeek: 64).
        assert cached[1:] == [rule(p) for p in prompts[:-1]], (provider, prompts, cached)
        assert all(a <= b for a, b in zip(cached[1:], cached[2:])) and cached[-1] > cached[1] > 1024
        assert all(c < p for c, p in zip(cached, prompts))
        # The turn's totals carry them (the cost line's hit rate comes from these).
        assert end.cached_tokens == sum(cached) and end.prompt_tokens == sum(prompts)


async def test_a_server_that_cut_the_prompt_is_reported_once(model_server, tmp_path):
    # Ollama with a 4,096-token window: it counts only what it kept. The file read makes the
    # prompt about 3 times that; the request before it (the tool schemas and the task) fits.
    (tmp_path / "big.txt").write_text("".join(f"line {i}: some words to fill the window up\n" for i in range(1000)))
    read = Call("read_file", {"path": "big.txt", "limit": 1000})  # a range asked for: up to 24,000 characters
    steps = [ToolCalls([read]), ToolCalls([Call("list_dir", {"path": "."})]), Text("ok")]
    server = model_server(Script(steps), provider="ollama", context_window=4096)
    agent, sink, procs = make_agent(server, tmp_path)
    assert (await agent.send("look around")).status == "done"
    notices = [n for n in sink.of(Notice) if "context window" in n.message]
    assert len(notices) == 1 and notices[0].level == "warning"
    text = notices[0].message
    assert "counted 4,096 prompt tokens" in text and "OLLAMA_CONTEXT_LENGTH" in text and "num_ctx" in text
    assert "contextWindow" in text
    # The same server with room for the prompt: no warning.
    server2 = model_server(Script(list(steps)), provider="ollama")
    agent2, sink2, _ = make_agent(server2, tmp_path)
    assert (await agent2.send("look around")).status == "done"
    await procs.shutdown()
    assert not [n for n in sink2.of(Notice) if "context window" in n.message]


async def test_a_400_that_is_not_about_streaming_is_reported_not_retried_without_stream(model_server, tmp_path):
    from scripted_model import Error

    server = model_server(lambda req: Error(400, "This model's maximum context length is 8192 tokens."))
    agent, sink, procs = make_agent(server, tmp_path)
    end = await agent.send("hi")
    await procs.shutdown()
    assert end.status == "error" and "maximum context length" in end.message
    assert [r.stream for r in server.chat_requests] == [True]
    assert agent.model.streaming


def test_usage_fields_of_each_provider_as_the_sdk_parses_them():
    def usage(raw: dict) -> dict[str, int]:
        return _usage_dict(CompletionUsage.model_validate(raw))

    # OpenAI
    assert usage({"prompt_tokens": 5000, "completion_tokens": 10, "total_tokens": 5010,
                  "prompt_tokens_details": {"cached_tokens": 4096}}) == {
        "prompt_tokens": 5000, "completion_tokens": 10, "cached_tokens": 4096}
    # DeepSeek (fields the SDK does not know: kept as extras)
    assert usage({"prompt_tokens": 5000, "completion_tokens": 10, "total_tokens": 5010,
                  "prompt_cache_hit_tokens": 3968, "prompt_cache_miss_tokens": 1032}) == {
        "prompt_tokens": 5000, "completion_tokens": 10, "cached_tokens": 3968}
    # Anthropic-compatible gateways: prompt_tokens include the cache; writes reported apart.
    assert usage({"prompt_tokens": 5000, "completion_tokens": 10, "total_tokens": 5010,
                  "cache_read_input_tokens": 3000, "cache_creation_input_tokens": 1500}) == {
        "prompt_tokens": 5000, "completion_tokens": 10, "cached_tokens": 3000, "cache_write_tokens": 1500}
    # A gateway passing Anthropic's own numbers (input_tokens exclude the cache).
    assert _usage_dict({"input_tokens": 500, "output_tokens": 10, "cache_read_input_tokens": 3000,
                        "cache_creation_input_tokens": 1500}) == {
        "prompt_tokens": 5000, "completion_tokens": 10, "cached_tokens": 3000, "cache_write_tokens": 1500}
    # Ollama: no cache fields at all.
    assert usage({"prompt_tokens": 50, "completion_tokens": 5, "total_tokens": 55}) == {
        "prompt_tokens": 50, "completion_tokens": 5, "cached_tokens": 0}


def test_tool_call_deltas_from_non_conforming_servers():
    names = frozenset({"write_file", "read_file", "readread"})

    def assemble(deltas):
        calls = _Calls(names)
        for d in deltas:
            calls.add(*d)
        return [(c["id"], c["name"], "".join(c["arguments"])) for c in calls.calls]

    # Ollama: index 0 for every call, each whole with its own id.
    assert assemble([(0, "call_a", "write_file", '{"path":"a"}'), (0, "call_b", "write_file", '{"path":"b"}')]) == [
        ("call_a", "write_file", '{"path":"a"}'), ("call_b", "write_file", '{"path":"b"}')]
    # sglang/LiteLLM: continuation deltas repeat the id.
    assert assemble([(0, "0", "read_file", ""), (0, "0", None, '{"pa'), (0, "0", None, 'th":"x"}'),
                     (0, "1", "read_file", ""), (0, "1", None, "{}")]) == [
        ("0", "read_file", '{"path":"x"}'), ("1", "read_file", "{}")]
    # Older llama.cpp: the whole name in every delta.
    assert assemble([(0, None, "write_file", '{"pa'), (0, None, "write_file", 'th":'), (0, None, "write_file", '"a"}')]) == [
        ("", "write_file", '{"path":"a"}')]
    # ...and the same tool twice at index 0 without ids: a name after complete arguments.
    assert assemble([(0, None, "read_file", '{"path":"a"}'), (0, None, "read_file", '{"path":"b"}')]) == [
        ("", "read_file", '{"path":"a"}'), ("", "read_file", '{"path":"b"}')]
    # A name sent in pieces is still joined (and a tool whose name is a doubled word too).
    assert assemble([(0, "c1", "write", None), (0, None, "_file", None), (0, None, None, "{}")]) == [("c1", "write_file", "{}")]
    assert assemble([(0, "c1", "read", None), (0, None, "read", None), (0, None, None, "{}")]) == [("c1", "readread", "{}")]
    # vLLM's final delta may repeat id and name with the remaining arguments.
    assert assemble([(0, "t1", "read_file", None), (0, None, None, '{"path":'), (0, "t1", "read_file", '"z"}')]) == [
        ("t1", "read_file", '{"path":"z"}')]
    # LM Studio: empty name and id on continuation deltas.
    assert assemble([(0, "c9", "read_file", ""), (0, "", "", '{"path":"q"}')]) == [("c9", "read_file", '{"path":"q"}')]


def test_tool_calls_written_as_text():
    names = frozenset({"read_file", "run_command"})
    hermes = '<tool_call>\n{"name": "read_file", "arguments": {"path": "a.py"}}\n</tool_call>'
    assert _text_tool_calls(hermes, names) == [("read_file", '{"path": "a.py"}')]
    two = hermes + '\n<tool_call>\n{"name": "run_command", "arguments": {"command": "ls"}}\n</tool_call>\n'
    assert [n for n, _ in _text_tool_calls(two, names)] == ["read_file", "run_command"]
    assert _text_tool_calls('{"name": "run_command", "parameters": {"command": "ls"}}', names) == [
        ("run_command", '{"command": "ls"}')]
    assert _text_tool_calls('```json\n{"name": "read_file", "arguments": "{\\"path\\": \\"b\\"}"}\n```', names) == [
        ("read_file", '{"path": "b"}')]
    # Not exactly calls to known tools: an answer, left alone.
    assert _text_tool_calls("I will call it: " + hermes, names) is None
    assert _text_tool_calls('{"name": "delete_everything", "arguments": {}}', names) is None
    assert _text_tool_calls('{"name": "read_file", "arguments": {"path": "a"}, "why": "x"}', names) is None
    assert _text_tool_calls('{"answer": 42}', names) is None
    assert _text_tool_calls(hermes[:-5], names) is None  # an unclosed block
    assert _text_tool_calls(hermes, frozenset()) is None  # no tools offered


async def test_an_answer_that_looks_like_json_is_still_streamed_when_it_is_not_a_call(model_server, tmp_path):
    reply = '{"answer": 42, "note": "plain JSON, not a tool call"}'
    server = model_server(Script([Text(reply, chunk_size=4)]), provider="vllm-noparser")
    agent, sink, procs = make_agent(server, tmp_path)
    end = await agent.send("answer in JSON")
    await procs.shutdown()
    assert end.status == "done" and sink.of(ToolCallStarted) == []
    assert "".join(d.text for d in sink.of(TextDelta)) == reply
    assert agent.messages[-1] == {"role": "assistant", "content": reply}


def test_the_standalone_server_takes_a_provider_and_a_fault(tmp_path):
    import os
    import signal
    import subprocess

    import openai

    env = {**os.environ, "PYTHONPATH": str(Path(__file__).parent), "SCRIPTED_MODEL_PROVIDER": "ollama"}
    proc = subprocess.Popen(
        [sys.executable, "-m", "scripted_model", "--scenario", "scripted_model.scenarios:fixed", "--arg", "text=hello there",
         "--fault", "eof", "--fault-times", "1"],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env,
    )
    try:
        base_url = proc.stdout.readline().split()[1]
        client = openai.OpenAI(base_url=base_url, api_key="k", max_retries=0, timeout=10)
        messages = [{"role": "user", "content": "hi"}]
        first = list(client.chat.completions.create(model="m", messages=messages, stream=True))
        assert all(c.choices[0].finish_reason is None for c in first if c.choices)  # cut: no finish
        second = list(client.chat.completions.create(model="m", messages=messages, stream=True))
        assert second[-1].choices[0].finish_reason == "stop"
        assert second[0].system_fingerprint == "fp_ollama"
        assert "".join(c.choices[0].delta.content or "" for c in second if c.choices) == "hello there"
    finally:
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(timeout=10) == 0, proc.stderr.read()


def test_a_provider_mode_can_be_the_scenarios_own():
    class Scenario:
        provider = "llamacpp"

        def __call__(self, req):
            return Text("hi")

    with ScriptedModel(Scenario()) as model:
        assert model.provider.name == "llamacpp"
    with pytest.raises(ValueError, match="unknown provider mode"):
        ScriptedModel(Text, provider="nonesuch")


async def test_concurrent_cut_streams_do_not_leak_between_sessions(model_server, tmp_path):
    # Two sessions on one server, one always cut, one fine: each gets its own outcome.
    bad = model_server(Faulty(Script([ToolCalls([Call("write_file", {"path": "bad.py", "content": "x"})])]), "eof", None))
    good = model_server(Script([ToolCalls([Call("write_file", {"path": "good.py", "content": "y"})]), Text("ok")]))
    a, sa, pa = make_agent(bad, tmp_path, max_retries=1)
    b, sb, pb = make_agent(good, tmp_path)
    ea, eb = await asyncio.gather(a.send("bad"), b.send("good"))
    await pa.shutdown()
    await pb.shutdown()
    assert ea.status == "error" and eb.status == "done"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["good.py"]


@pytest.mark.parametrize("times", [1, None])
async def test_a_cut_non_streamed_answer_is_retried_and_never_runs(model_server, tmp_path, times):
    # The non-streaming server: a body shorter than its Content-Length is a cut answer too.
    server = model_server(Faulty(two_files_task(), "cut", times=times), provider="nostream")
    agent, sink, procs = make_agent(server, tmp_path, max_retries=1)
    end = await agent.send("write a.py and b.py, then run them")
    await procs.shutdown()
    if times == 1:
        assert end.status == "done", [e.to_dict() for e in sink.events if e.type in ("error", "retry")]
        assert [e.name for e in sink.of(ToolCallStarted)] == ["write_file", "write_file", "run_command"]
        assert all("was cut" in r.reason for r in sink.of(Retry))
    else:
        assert end.status == "error" and "failed after 2 attempts" in end.message and "was cut" in end.message
        assert_nothing_ran(tmp_path, agent, sink)
