"""Scripted-model scenarios for the benchmarks (factories: keyword arguments arrive as strings)."""

from __future__ import annotations

import sys
from typing import Any

from scripted_model import Call, ChatRequest, Stream, Text, ToolCalls


def steps_this_turn(req: ChatRequest) -> int:
    """Assistant messages since the last user message (model calls already made this turn)."""
    n = 0
    for m in reversed(req.messages):
        role = m.get("role")
        if role == "user":
            break
        if role == "assistant":
            n += 1
    return n


MIXED = [
    lambda path, k: Call("list_dir", {"path": path}),
    lambda path, k: Call("read_file", {"path": f"{path}/mod{k % 6}.py", "fresh": True}),
    lambda path, k: Call("grep", {"pattern": "return", "path": path}),
    lambda path, k: Call("glob", {"pattern": "*.py", "path": path}),
]


def tool_loop(steps: str = "500", tool: str = "list_dir", path: str = "small") -> Any:
    """Each user turn: ``steps`` calls to a cheap read-only tool (``mixed``: list_dir,
    read_file, grep and glob in turn), then a short answer.
    A request without tools (a compaction summary) gets a short summary."""
    n_steps = int(steps)

    def scenario(req: ChatRequest) -> Any:
        if not req.tools:
            return Text("Summary: the benchmark listed a directory many times.")
        k = steps_this_turn(req)
        if k < n_steps:
            if tool == "mixed":
                return ToolCalls([MIXED[k % len(MIXED)](path, k)], chunk_size=64)
            return ToolCalls([Call(tool, {"path": path})], chunk_size=64)
        return Text("done")

    return scenario


def editor_load(tokens: str = "5000", command_mb: str = "20") -> Any:
    """For the responsiveness benchmark. "stream ..." turns: ``tokens`` one-token deltas as fast
    as possible. "command ..." turns: one run_command printing ``command_mb`` MB, then "ok"."""
    n_tokens = int(tokens)
    size = int(float(command_mb) * 1024 * 1024)
    line = "x" * 99
    count = size // 100
    command = f"{sys.executable} -c \"import sys; sys.stdout.write(('{line}' + chr(10)) * {count})\""

    def scenario(req: ChatRequest) -> Any:
        text = req.last_user_text()
        if "command" in text and steps_this_turn(req) == 0:
            return ToolCalls([Call("run_command", {"command": command})])
        if "stream" in text:
            return Stream(tokens=n_tokens)
        return Text("ok")

    return scenario
