"""The ACP host's pure parts, on the SDK's real schema types: tool kinds, the plan, the
client's MCP servers, the replay of a saved conversation, prompt content; and the process
manager's ``CommandRunner`` port with a runner that really runs the commands elsewhere."""

from __future__ import annotations

import asyncio
import signal
from pathlib import Path

from acp.schema import (
    AcpMcpServer,
    AudioContentBlock,
    EnvVariable,
    HttpHeader,
    HttpMcpServer,
    ImageContentBlock,
    McpServerStdio,
    SseMcpServer,
    TextContentBlock,
)

from codeloop.acp.convert import plan_update, prompt_parts, replay, tool_kind
from codeloop.acp.mcp import server_configs
from codeloop.core.ports import CommandRun
from codeloop.runtime.mcp_tools import McpTool
from codeloop.services.mcp import McpToolInfo
from codeloop.tools.base import ToolContext
from codeloop.tools.builtin import BuiltinTools, builtin_registry
from codeloop.tools.processes import ProcessManager
from codeloop.tools.workspace import Workspace


def test_tool_kinds_come_from_the_tools():
    kinds = {t.name: tool_kind(t) for t in BuiltinTools().tools()}
    assert kinds["read_file"] == "read" and kinds["list_dir"] == "read"
    assert kinds["grep"] == "search" and kinds["glob"] == "search"  # their activity
    assert kinds["edit_file"] == kinds["write_file"] == kinds["apply_patch"] == "edit"
    assert kinds["run_command"] == "execute"
    assert kinds["read_command_output"] == "read"  # no policy kind, read-only
    assert kinds["kill_process"] == "other"
    assert kinds["todo_write"] == "think"  # planning
    info = McpToolInfo("mcp__git__status", "git", "status", "The status", {"type": "object"},
                       annotations={"readOnlyHint": True})
    mcp = McpTool(info, servers=None)  # type: ignore[arg-type]
    assert mcp.read_only and mcp.kind == "Tool"
    assert tool_kind(mcp) == "other" and tool_kind(None) == "other"


def test_the_todo_list_as_a_plan():
    plan = plan_update([
        {"content": "Read the code", "activeForm": "Reading the code", "status": "completed"},
        {"content": "Fix the bug", "activeForm": "Fixing the bug", "status": "in_progress"},
        {"content": "Run the tests", "activeForm": "Running the tests", "status": "pending"},
    ])
    assert plan.session_update == "plan"
    assert [(e.content, e.status) for e in plan.entries] == [
        ("Read the code", "completed"), ("Fixing the bug", "in_progress"), ("Run the tests", "pending")]
    assert plan.model_dump(by_alias=True, exclude_none=True)["entries"][0]["priority"] == "medium"


def test_the_clients_mcp_servers_as_server_configs():
    configs, problems = server_configs([
        McpServerStdio(name="git", command="/usr/bin/uvx", args=["mcp-server-git"],
                       env=[EnvVariable(name="A", value="${NOT_EXPANDED}")]),
        HttpMcpServer(type="http", name="docs", url="https://example.invalid/mcp",
                      headers=[HttpHeader(name="Authorization", value="Bearer x")]),
        SseMcpServer(type="sse", name="old", url="https://example.invalid/sse", headers=[]),
        McpServerStdio(name="git", command="other", args=[], env=[]),
        AcpMcpServer(type="acp", name="inproc", server_id="s1"),
    ])
    by_name = {c.name: c for c in configs}
    assert list(by_name) == ["git", "docs", "old"]
    git = by_name["git"]
    assert (git.transport, git.command, git.args, dict(git.env)) == ("stdio", "/usr/bin/uvx", ("mcp-server-git",),
                                                                    {"A": "${NOT_EXPANDED}"})
    assert git.source == "editor" and not git.needs_consent
    assert (by_name["docs"].transport, dict(by_name["docs"].headers)) == ("http", {"Authorization": "Bearer x"})
    assert by_name["old"].transport == "sse"
    assert len(problems) == 2 and "two MCP servers 'git'" in problems[0] and "'inproc'" in problems[1]


def test_the_replay_of_a_saved_conversation(tmp_path):
    registry = builtin_registry()

    def lookup(name: str, raw: str):
        parsed = registry.parse(name, raw)
        return (parsed[0], parsed[0].summary(parsed[1])) if isinstance(parsed, tuple) else (None, "")

    messages = [
        {"role": "user", "content": "fix it\n\n<codeloop-context>\nmode: ask\n</codeloop-context>"},
        {"role": "assistant", "content": "Looking.", "tool_calls": [
            {"id": "c1", "type": "function", "function": {"name": "read_file", "arguments": '{"path": "a.py"}'}},
            {"id": "c2", "type": "function", "function": {"name": "nope", "arguments": "{bad"}}]},
        {"role": "tool", "tool_call_id": "c1", "content": "1\tx = 1"},
        {"role": "tool", "tool_call_id": "c2", "content": "Error: unknown tool 'nope'."},
        {"role": "user", "content": [{"type": "text", "text": "The images the tool calls above returned:"}]},
        {"role": "user", "content": [{"type": "text", "text": "and this"},
                                     {"type": "image_url", "image_url": {"url": "data:image/png;base64,AAAA"}}]},
        {"role": "assistant", "content": "Done."},
    ]
    updates = replay(messages, lookup, tmp_path)
    kinds = [u.session_update for u in updates]
    assert kinds == ["user_message_chunk", "agent_message_chunk", "tool_call", "tool_call", "tool_call_update",
                     "tool_call_update", "user_message_chunk", "user_message_chunk", "agent_message_chunk"]
    assert updates[0].content.text == "fix it"
    read = updates[2]
    assert (read.tool_call_id, read.kind, read.title) == ("c1", "read", "a.py")
    assert read.locations[0].path == str(tmp_path / "a.py")
    assert (updates[3].title, updates[3].kind, updates[3].raw_input) == ("nope", "other", {})
    assert updates[4].status == "completed" and updates[5].status == "failed"
    assert isinstance(updates[7].content, ImageContentBlock) and updates[7].content.mime_type == "image/png"


def test_prompt_content_that_cannot_be_sent_is_named(tmp_path):
    text, ctx = prompt_parts([
        TextContentBlock(type="text", text="see"),
        ImageContentBlock(type="image", mime_type="image/png", data="not base64!"),
        ImageContentBlock(type="image", mime_type="image/tiff", data="AAAA"),
        AudioContentBlock(type="audio", mime_type="audio/wav", data="AAAA"),
    ], tmp_path)
    assert ctx.images == []
    assert text.startswith("see\n\n")
    assert "not valid base64" in text and "image/tiff" in text and "audio" in text


class LocalRunner:
    """A CommandRunner that runs each command in a shell of its own, as a client's terminal does."""

    def __init__(self) -> None:
        self.calls: list[tuple[str, Path, float, str]] = []

    async def run(self, command: str, cwd: Path, timeout: float, call_id: str = "") -> CommandRun:
        self.calls.append((command, cwd, timeout, call_id))
        proc = await asyncio.create_subprocess_exec("bash", "-c", command, cwd=cwd, stdout=asyncio.subprocess.PIPE,
                                                    stderr=asyncio.subprocess.STDOUT)
        try:
            out, _ = await asyncio.wait_for(proc.communicate(), timeout)
        except TimeoutError:
            proc.kill()
            out, _ = await proc.communicate()
            return CommandRun(out.decode(), None, "SIGKILL", timed_out=True)
        code = proc.returncode
        assert code is not None
        if code < 0:
            return CommandRun(out.decode(), None, signal.Signals(-code).name)
        return CommandRun(out.decode(), code)


async def test_the_process_manager_hands_commands_to_a_runner(tmp_path):
    runner = LocalRunner()
    pm = ProcessManager(runner=runner)
    try:
        rec = await pm.run("seq 1 500", tmp_path, 30, call_id="call_7")
        assert runner.calls == [("seq 1 500", tmp_path, 30, "call_7")]
        assert rec.id == "cmd-1" and rec.exit_code == 0 and not rec.running and rec.line_count == 500
        assert pm.get("cmd-1") is rec  # kept, so its output can be paged
        ctx = ToolContext(workspace=Workspace(tmp_path), changes=None, processes=pm)  # type: ignore[arg-type]
        reader = next(t for t in BuiltinTools().tools() if t.name == "read_command_output")
        page = await reader.run(reader.validate({"id": "cmd-1", "offset": 498, "limit": 3}), ctx)
        assert "498" in page and "500" in page
        killed = await pm.run("kill -TERM $$", tmp_path, 30)
        assert killed.exit_code == -signal.SIGTERM  # shown as "(terminated by SIGTERM)"
        slow = await pm.run("sleep 5", tmp_path, 0.3)
        assert slow.timed_out
        task = asyncio.ensure_future(pm.run("sleep 30", tmp_path, 60))
        await asyncio.sleep(0.3)
        task.cancel()
        await asyncio.gather(task, return_exceptions=True)
        assert pm.get("cmd-4").cancelled and not pm.get("cmd-4").running
    finally:
        await pm.shutdown()


def test_a_sub_agents_steps_as_text():
    from codeloop.acp.steps import SHOWN, Step, render, said

    steps = [Step("explore", f"grep term{i}", f"c{i}", "3 matches", True) for i in range(SHOWN + 5)]
    steps.append(Step("explore", "read_file a.py", "last"))  # still running
    long = "a  long\n answer " * 40
    steps.append(Step("explore", "says: " + said(long)))
    text = render(steps)
    lines = text.split("\n")
    assert lines[0] == f"Sub-agent explore: {SHOWN + 6} tool calls, working" and lines[1] == ""
    assert lines[2] == "- … 7 earlier steps"  # the latest SHOWN are listed
    assert lines[3] == "- ✓ grep term7 → 3 matches"
    assert lines[-2] == "- … read_file a.py"
    assert lines[-1].startswith("- · says: a long answer a long") and lines[-1].endswith("…")
    assert len(lines) == 3 + SHOWN
    steps[-2].ok, steps[-2].outcome = False, "no such file"
    assert "- ✗ read_file a.py → no such file" in render(steps) and ", working" not in render(steps)
