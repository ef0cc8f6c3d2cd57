"""End to end: a long session through the real CLI stays under a small context window.

40 model steps over 4 user turns, reading several 3,000-line files (one step reads three
at once) and running commands with long outputs, with ``--context-window`` set small.
Every request the scripted model receives is counted with codeloop's tokenizer; the
summarisation requests are answered with a summary; and each request after a compaction
must hold that summary plus the recent conversation, verbatim.
"""

from __future__ import annotations

import json
import sys

from scripted_model import Call, ChatRequest, Keyed, Script, Text, ToolCalls

from codeloop.context.compaction import ACK_TEXT, CURRENT_REQUEST_HEADING, SUMMARY_INSTRUCTIONS, SUMMARY_PREFIX
from codeloop.context.tokens import count_messages

WINDOW = 20_000
FILES = 4
LINES = 3000
TURNS = 4
STEPS_PER_TURN = 10  # 9 tool steps and a final answer: 40 model steps in all
TASK = "task {t}: read the big files and run the noisy commands"


def big_file(k: int) -> str:
    return "".join(f"value_{k}_{i} = compute({k}, {i}, 'file {k} line {i}')  # L{i}\n" for i in range(1, LINES + 1))


def long_output_command(k: int) -> str:
    # Neighbouring lines differ in more than their numbers, so none are folded.
    code = f"for i in range(4000): print('cmd{k} output line', i, ('x' if i % 2 else 'w') * 60)"
    return f"{sys.executable} -c \"{code}\""


def is_summary_request(req: ChatRequest) -> bool:
    msgs = req.messages
    return bool(msgs) and msgs[0].get("role") == "system" and msgs[0].get("content", "").startswith(
        SUMMARY_INSTRUCTIONS[:60]
    )


def turn_script(t: int) -> Script:
    """Nine tool steps, each checking the previous step's result reached the model, then an answer."""
    steps: list = []
    expected: list[list[str]] = []  # what the request after step i must show in its tool results
    for i in range(STEPS_PER_TURN - 1):
        k = (t + i) % FILES
        if i == 4:  # three big files at once
            files = [(k + j) % FILES for j in range(3)]
            calls = [Call("read_file", {"path": f"big_{f}.py", "offset": 1 + 7 * t}) for f in files]
            # The text, or (when the model still holds that range from an earlier read in
            # the same requests) the note saying it is unchanged, naming the file.
            expected.append([(f"value_{f}_{1 + 7 * t} =", f"of big_{f}.py, above in this conversation") for f in files])
        elif i % 2 == 0:
            offset = 1 + 100 * i + 13 * t
            calls = [Call("read_file", {"path": f"big_{k}.py", "offset": offset})]
            expected.append([f"value_{k}_{offset} ="])
        else:
            calls = [Call("run_command", {"command": long_output_command(10 * t + i)})]
            expected.append([f"cmd{10 * t + i} output line 0 ", "exit code: 0"])
        steps.append(calls)

    def step(i: int):
        def reply(req: ChatRequest):
            if i > 0:
                results = "\n".join(req.last_tool_results())
                for needle in expected[i - 1]:
                    options = needle if isinstance(needle, tuple) else (needle,)
                    assert any(n in results for n in options), f"turn {t} step {i}: {needle!r} missing from {results[:300]!r}"
            if i == STEPS_PER_TURN - 1:
                return Text(f"Turn {t} is done: read the files and ran the commands.")
            return ToolCalls(steps[i])

        return reply

    return Script([step(i) for i in range(STEPS_PER_TURN)], name=f"turn {t}")


class Summaries:
    def __init__(self) -> None:
        self.count = 0

    def __call__(self, req: ChatRequest) -> Text:
        self.count += 1
        return Text(f"SUMMARY #{self.count}: files touched big_0.py..big_3.py; decisions: none; TODO: continue.")


def test_forty_steps_stay_under_the_window_with_compaction(model_server, run_cli, tmp_path):
    for k in range(FILES):
        (tmp_path / f"big_{k}.py").write_text(big_file(k))
    summaries = Summaries()
    turns = Keyed({f"task {t}:": turn_script(t) for t in range(TURNS)})

    def scenario(req: ChatRequest):
        if is_summary_request(req):
            return summaries
        return turns

    server = model_server(scenario)
    stdin = "".join(TASK.format(t=t) + "\n" for t in range(TURNS))
    result = run_cli(["chat", "--cwd", str(tmp_path), "--yes", "--context-window", str(WINDOW)], server.base_url,
                     stdin=stdin, timeout=240)
    assert result.code == 0, result.both[-3000:]
    assert not server.failures, server.failures
    for t in range(TURNS):
        assert f"Turn {t} is done" in result.out, result.both[-3000:]

    requests = server.chat_requests
    main = [r for r in requests if not is_summary_request(r)]
    assert len(main) == TURNS * STEPS_PER_TURN

    # Every request, summarisation requests included, fits the window.
    sizes = [count_messages(r.messages, r.tools or None) for r in requests]
    assert max(sizes) < WINDOW, sizes
    assert summaries.count >= 3, f"expected several compactions, got {summaries.count}; sizes {sizes}"
    assert "Compacted the conversation" in result.out

    checked = 0
    for i, req in enumerate(requests):
        if not is_summary_request(req):
            continue
        assert req.tools == [], "a summary request offers no tools"
        head = req.messages[1:-1]
        assert req.messages[-1] == {"role": "user", "content": req.messages[0]["content"]}
        # The main request before it and the one after it.
        before = next(r for r in reversed(requests[:i]) if not is_summary_request(r))
        after = next(r for r in requests[i + 1 :] if not is_summary_request(r))
        summary_no = sum(1 for r in requests[: i + 1] if is_summary_request(r))
        assert after.messages[0]["role"] == "system"
        first = after.messages[1]
        assert first["role"] == "user" and first["content"].startswith(SUMMARY_PREFIX)
        assert f"SUMMARY #{summary_no}:" in first["content"]
        rest = after.messages[2:]
        if rest and rest[0] == {"role": "assistant", "content": ACK_TEXT}:
            rest = rest[1:]
        assert rest, "the recent turns are kept"
        # Nothing was lost: the conversation the model saw before, plus its answer and
        # tool results, is exactly what was summarised followed by what was kept verbatim.
        conversation_before = before.messages[1:]
        rebuilt = head + rest
        assert len(rebuilt) > len(conversation_before)
        assert rebuilt[: len(conversation_before)] == conversation_before
        # The kept part ends with the newest tool results (or the new user message), verbatim.
        assert rest[-1]["role"] in ("tool", "user")
        # The user's current request is there, verbatim: kept, or quoted in the summary.
        task = TASK.format(t=main.index(after) // STEPS_PER_TURN)
        assert {"role": "user", "content": task} in after.messages or first["content"].endswith(
            CURRENT_REQUEST_HEADING + task
        ), (task, first["content"][-300:])
        checked += 1
    assert checked == summaries.count

    # The session file records the compactions; loading it gives the compacted conversation.
    files = list((tmp_path / ".codeloop" / "sessions").glob("*.jsonl"))
    assert len(files) == 1
    records = [json.loads(line) for line in files[0].read_text().splitlines()]
    assert sum(1 for r in records if r["type"] == "compaction") == summaries.count
    assert sum(1 for r in records if r["type"] == "usage") == len(requests)
    print(f"{len(requests)} requests, {summaries.count} compactions, largest {max(sizes)} of {WINDOW} tokens")
