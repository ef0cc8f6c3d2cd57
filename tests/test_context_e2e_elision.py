"""End to end through the real CLI: old large tool results leave the requests, each
replaced by a note saying how to get it again; following the note gets it back whole;
the session file keeps everything; a resumed session sends the same view."""

from __future__ import annotations

import json
import re
import sys
from pathlib import Path

from scripted_model import Call, ChatRequest, Keyed, Script, Text, ToolCalls

ELIDED = "[Old result elided to keep the context small"
BIG_LINES = 3000
CONTENT = "".join(f"GENERATED_{i} = {i}\n" for i in range(1200))  # ~20k characters written


def big_file() -> str:
    return "".join(f"value_{i} = compute({i}, 'line {i} of the big file')  # L{i}\n" for i in range(1, BIG_LINES + 1))


def noisy_command() -> str:
    # Neighbouring lines differ in more than their numbers, so none are folded.
    code = "for i in range(4000): print('noisy output line', i, ('y' if i % 2 else 'z') * 50)"
    return f"{sys.executable} -c \"{code}\""


def tool_messages(req: ChatRequest) -> dict[str, str]:
    return {m["tool_call_id"]: m["content"] for m in req.messages if m.get("role") == "tool"}


def call_arguments(req: ChatRequest) -> dict[str, dict]:
    return {c["id"]: json.loads(c["function"]["arguments"]) for m in req.messages for c in m.get("tool_calls") or []}


def follow_the_notes(req: ChatRequest):
    """Request 7 (the model is 6 steps on): the big read, the long output and the large
    write are elided; the last two steps are verbatim. Do what the notes say."""
    results = tool_messages(req)
    read_note, cmd_note = results["call_0_0"], results["call_1_0"]
    assert read_note.startswith(ELIDED) and "It was read_file of big.py" in read_note, read_note
    assert cmd_note.startswith(ELIDED) and "noisy output line 0 z" not in cmd_note, cmd_note
    assert "exit code: 0" in cmd_note and 'call read_command_output with id="cmd-1"' in cmd_note, cmd_note
    written = call_arguments(req)["call_2_0"]
    assert written["path"] == "gen.py" and "elided from this old call" in written["content"], written
    assert not results["call_5_0"].startswith(ELIDED) and not results["call_4_0"].startswith(ELIDED)
    args = json.loads(re.search(r"call read_file with (\{.*?\})", read_note).group(1))
    assert args == {"path": "big.py"}
    return ToolCalls([Call("read_file", args), Call("read_command_output", {"id": "cmd-1", "offset": 3990})])


def check_what_came_back(req: ChatRequest):
    read, page = req.last_tool_results()
    # Sent whole again: the model no longer held that read, so no "unchanged since your read".
    assert read.startswith("1\tvalue_1 = compute(1,"), read[:200]
    assert "unchanged" not in read and "changed since your read" not in read
    assert "3999\tnoisy output line 3998" in page and "4000\tnoisy output line 3999" in page, page[-500:]
    return Text("Got everything back.")


def first_task() -> Script:
    return Script(
        [
            ToolCalls([Call("read_file", {"path": "big.py"})]),
            ToolCalls([Call("run_command", {"command": noisy_command()})]),
            ToolCalls([Call("write_file", {"path": "gen.py", "content": CONTENT})]),
            ToolCalls([Call("list_dir", {"path": "."})]),
            ToolCalls([Call("glob", {"pattern": "*.py"})]),
            ToolCalls([Call("grep", {"pattern": "GENERATED_11\\b"})]),
            follow_the_notes,
            check_what_came_back,
        ],
        name="first task",
    )


def resumed(req: ChatRequest):
    results = tool_messages(req)
    assert results["call_0_0"].startswith(ELIDED) and results["call_1_0"].startswith(ELIDED)
    assert results["call_6_0"].startswith("1\tvalue_1"), "the latest step is still verbatim"
    assert "elided from this old call" in call_arguments(req)["call_2_0"]["content"]
    return Text("Resumed with the same view.")


def test_old_results_are_elided_and_can_be_got_back(model_server, run_cli, tmp_path: Path):
    (tmp_path / "big.py").write_text(big_file())
    server = model_server(Keyed({"first task": first_task(), "second task": Script([resumed], name="resumed")}))
    result = run_cli(["chat", "--cwd", str(tmp_path), "--yes"], server.base_url, stdin="first task\n", timeout=120)
    assert result.code == 0, result.both[-3000:]
    assert not server.failures, server.failures
    assert "Got everything back." in result.out
    assert (tmp_path / "gen.py").read_text() == CONTENT

    # The session file keeps every result whole.
    (session,) = (tmp_path / ".codeloop" / "sessions").glob("*.jsonl")
    saved = [r["message"] for r in map(json.loads, session.read_text().splitlines()) if r["type"] == "message"]
    first_read = next(m for m in saved if m.get("tool_call_id") == "call_0_0")
    assert first_read["content"].startswith("1\tvalue_1 = compute(1,") and ELIDED not in first_read["content"]
    write = next(c for m in saved for c in m.get("tool_calls") or [] if c["id"] == "call_2_0")
    assert json.loads(write["function"]["arguments"])["content"] == CONTENT

    result = run_cli(["chat", "--cwd", str(tmp_path), "--yes", "--continue"], server.base_url,
                     stdin="second task\n/context\n", timeout=120)
    assert result.code == 0, result.both[-3000:]
    assert not server.failures, server.failures
    assert "Resumed with the same view." in result.out
    # /context says what is left out.
    assert re.search(r"elided +\d+  tokens of old tool output \(2 results, 1 call arguments\)", result.out), result.out
