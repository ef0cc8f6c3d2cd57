"""End to end: a ``codeloop chat`` killed with SIGKILL mid-turn resumes with every
completed message, through ``--continue`` and ``--resume <id>``; and a resumed session
continues as if it had never been closed."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import time
from pathlib import Path

from conftest import CODELOOP, cli_env, processes_matching, unique_marker
from scripted_model import Call, ChatRequest, Keyed, Script, Text, ToolCalls

MARKER = unique_marker("41.2718281")  # a sleep only this test runs


def session_files(root: Path) -> list[Path]:
    return sorted((root / ".codeloop" / "sessions").glob("*.jsonl"))


def records(path: Path) -> list[dict]:
    out = []
    for line in path.read_text().splitlines():
        try:
            out.append(json.loads(line))
        except ValueError:
            pass
    return out


def saved_messages(path: Path) -> list[dict]:
    return [r["message"] for r in records(path) if r["type"] == "message"]


def wait_until(cond, timeout: float, what: str):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = cond()
        if value:
            return value
        time.sleep(0.05)
    raise AssertionError(f"timed out waiting for {what}")


def conversation(req: ChatRequest) -> list[dict]:
    return [m for m in req.messages if m.get("role") != "system"]


def test_sigkill_mid_turn_then_continue_and_resume(model_server, run_cli, tmp_path):
    (tmp_path / "notes.txt").write_text("alpha\nbeta\n")
    seen: dict[str, ChatRequest] = {}

    def remember(key: str, reply):
        def answer(req: ChatRequest):
            seen[key] = req
            return reply

        return answer

    scenario = Keyed(
        {
            "first task": Script(
                [ToolCalls([Call("read_file", {"path": "notes.txt"})]), Text("The notes say alpha and beta.")]
            ),
            "second task": Script([ToolCalls([Call("run_command", {"command": f"sleep {MARKER}"})])]),
            "third task": Script([remember("third", Text("Third answer, after the crash."))]),
            "fourth task": Script([remember("fourth", Text("Fourth answer."))]),
        }
    )
    server = model_server(scenario)
    proc = subprocess.Popen(
        CODELOOP + ["chat", "--cwd", str(tmp_path), "--yes"],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env=cli_env(server.base_url),
    )
    try:
        proc.stdin.write("first task: what do the notes say?\n")
        proc.stdin.flush()
        path = wait_until(lambda: (session_files(tmp_path) or [None])[0], 30, "the session file")
        wait_until(
            lambda: any(m.get("content") == "The notes say alpha and beta." for m in saved_messages(path)),
            30,
            "the first turn's answer on disk",
        )
        completed = saved_messages(path)
        proc.stdin.write("second task: run the long command\n")
        proc.stdin.flush()
        wait_until(lambda: processes_matching(MARKER), 30, "the long command to start")
        in_flight = saved_messages(path)
        proc.send_signal(signal.SIGKILL)
        proc.wait(10)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait(10)
        for pid in processes_matching(MARKER):  # the orphaned sleep of the killed process
            try:
                os.kill(pid, signal.SIGKILL)
            except ProcessLookupError:
                pass
        proc.stdout.close()
        proc.stderr.close()
        proc.stdin.close()
    assert proc.returncode == -signal.SIGKILL
    # The first turn is complete on disk: request, tool call, tool result, answer.
    assert [m["role"] for m in completed] == ["user", "assistant", "tool", "assistant"]
    assert "alpha" in completed[2]["content"]
    # The second turn got as far as the model's tool call.
    assert in_flight[:4] == completed
    assert in_flight[4] == {"role": "user", "content": "second task: run the long command"}
    assert in_flight[5]["tool_calls"][0]["function"]["name"] == "run_command"
    sid = path.stem

    # --continue: the latest session, every completed message, and the interrupted call answered.
    result = run_cli(["chat", "--cwd", str(tmp_path), "--yes", "--continue"], server.base_url,
                     stdin="third task: go on\n")
    assert result.code == 0, result.both
    assert f"Resumed session {sid}" in result.out
    assert "Third answer, after the crash." in result.out
    assert not server.failures, server.failures
    third = conversation(seen["third"])
    assert third[:6] == in_flight
    interrupted = third[6]
    assert interrupted["role"] == "tool" and interrupted["tool_call_id"] == in_flight[5]["tool_calls"][0]["id"]
    assert "interrupted" in interrupted["content"]
    assert third[7:] == [{"role": "user", "content": "third task: go on"}]
    assert len(session_files(tmp_path)) == 1, "resuming appends to the same session"

    # --resume <id>: the same again, now with the third turn too; nothing is duplicated.
    result = run_cli(["chat", "--cwd", str(tmp_path), "--yes", "--resume", sid], server.base_url,
                     stdin="fourth task: and again\n")
    assert result.code == 0, result.both
    assert "Fourth answer." in result.out
    fourth = conversation(seen["fourth"])
    assert fourth[:8] == third
    assert fourth[8:] == [
        {"role": "assistant", "content": "Third answer, after the crash."},
        {"role": "user", "content": "fourth task: and again"},
    ]
    # The file reloads to exactly that conversation plus the last answer.
    assert saved_messages(path) == fourth + [{"role": "assistant", "content": "Fourth answer."}]


def test_a_record_cut_by_a_crash_is_dropped_and_reported(model_server, run_cli, tmp_path):
    server = model_server(Keyed({"hello": Text("Hello back."), "more": Text("More.")}))
    result = run_cli(["chat", "--cwd", str(tmp_path), "--yes"], server.base_url, stdin="hello\n")
    assert result.code == 0, result.both
    [path] = session_files(tmp_path)
    with path.open("a") as f:
        f.write('{"type":"message","message":{"role":"user","content":"half writ')  # no newline: cut
    result = run_cli(["chat", "--cwd", str(tmp_path), "--yes", "--continue"], server.base_url, stdin="more\n")
    assert result.code == 0, result.both
    assert "dropped an incomplete last record" in result.out
    last = server.chat_requests[-1]
    assert conversation(last) == [
        {"role": "user", "content": "hello"},
        {"role": "assistant", "content": "Hello back."},
        {"role": "user", "content": "more"},
    ]
    # The file is whole again: every line parses.
    for line in path.read_text().splitlines():
        json.loads(line)
