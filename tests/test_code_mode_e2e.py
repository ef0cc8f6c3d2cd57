"""Code mode end to end: the real CLI and language server, the scripted model, real bubblewrap,
and a real MCP server from PyPI.

- a program reads 30 files, greps them and edits 10: ten proposals, reviewed in the test's
  editor like any other (some accepted, some rejected), and the model is told which;
- a program calls a tool a deny rule forbids: ToolDenied inside the program;
- an infinite loop is killed at the time limit, with its output so far;
- a program cannot write outside the workspace (nor inside: its changes are tool calls);
- a program calls an MCP server's tool (mcp-server-time) like any other function.
"""

from __future__ import annotations

import asyncio
import json
import tempfile
import time
from pathlib import Path
from typing import Any

from conftest import cli_env
from lsp_harness import start_editor, stop_editor
from mcp_helpers import BIN, wait_for
from scripted_model import Call, ChatRequest, Script, ScriptedModel, Text, ToolCalls

from codeloop.config import Settings
from codeloop.core.events import Event, ToolCallFinished, ToolCallStarted
from codeloop.core.ports import DenyAll
from codeloop.edits.disk import DiskChangeApplier
from codeloop.runtime.session import AgentSession, Ports
from codeloop.services.mcp import McpManager, ServerConfig
from codeloop.tools.base import SchemaTool, ToolContext
from codeloop.tools.registry import ToolSource


def config_home(tmp_path: Path, settings: dict | None = None) -> dict[str, str]:
    cfg = tmp_path.parent / (tmp_path.name + "-xdg")
    (cfg / "codeloop").mkdir(parents=True, exist_ok=True)
    (cfg / "codeloop" / "settings.json").write_text(json.dumps(settings or {}))
    return {"XDG_CONFIG_HOME": str(cfg)}


def program_result(req: ChatRequest) -> str:
    (result,) = req.last_tool_results()
    return result


def echo_result(req: ChatRequest) -> Text:
    return Text("PROGRAM RESULT:\n" + program_result(req))


def run_code(program: str, **extra: Any) -> ToolCalls:
    return ToolCalls([Call("run_code", {"program": program, **extra})])


# -- 30 reads, a grep, 10 edits reviewed in the editor ---------------------------------------------

EDIT_PROGRAM = '''
from codeloop_tools import read_file, grep, edit_file
sizes = {}
for i in range(30):
    path = f"pkg/m{i:02}.py"
    sizes[path] = len(read_file(path=path).splitlines())
hits = grep(pattern="old_name", path="pkg")
files = sorted({line.split(":")[0] for line in hits.splitlines() if line.startswith("pkg/")})
print("to edit:", len(files))
outcomes = {}
for f in files:
    outcomes[f] = edit_file(path=f, old_string="old_name()", new_string="new_name()").splitlines()[0]
{"read": len(sizes), "edited": files}
'''


async def test_a_program_reads_30_files_greps_and_edits_10_reviewed_in_the_editor(bubblewrap, model_server, tmp_path):
    pkg = tmp_path / "pkg"
    pkg.mkdir()
    uses = {f"pkg/m{i:02}.py" for i in range(0, 30, 3)}  # 10 files call old_name()
    for i in range(30):
        rel = f"pkg/m{i:02}.py"
        body = f"def f{i}():\n    return old_name()\n" if rel in uses else f"def f{i}():\n    return {i}\n"
        (tmp_path / rel).write_text(body)
    server = model_server(Script([run_code(EDIT_PROGRAM), echo_result]))
    editor = await start_editor(tmp_path, cli_env(server.base_url, **config_home(tmp_path)))
    accepted = {f"pkg/m{i:02}.py" for i in range(0, 30, 6)}  # every other one of the 10

    def review(params: dict) -> dict:
        (f,) = params["files"]
        return {"decision": "accept" if f["path"] in accepted else "reject"}

    editor.on_review = review
    try:
        started = await editor.chat("rename old_name in pkg")
        end = await editor.turn_end(started["turnId"], timeout=120)
        assert end["status"] == "done", editor.turn_events(started["turnId"])
        assert sorted(r["files"][0]["path"] for r in editor.reviews) == sorted(uses)  # ten proposals
        assert editor.approvals == []  # sandboxed: the program itself needs no approval
        result = program_result(server.chat_requests[-1])
        assert result.startswith("Program ended: ok") and "41 tool calls (41 ok)" in result, result
        assert '"read": 30' in result and "to edit: 10" in result
        lines = {ln.split("(path=")[1].split('"')[1]: ln for ln in result.splitlines() if ln[:3].strip(". ").isdigit()
                 and " edit_file(" in ln}
        assert set(lines) == uses
        for rel, line in lines.items():  # the model is told which were accepted
            if rel in accepted:
                assert "the user accepted your change" in line, line
            else:
                assert "The user rejected the change" in line, line
        await editor.wait_for(lambda: all("new_name()" in (tmp_path / r).read_text() for r in accepted), 30,
                              "the accepted edits on disk")
        for rel in uses - accepted:
            assert "old_name()" in (tmp_path / rel).read_text()
        # The panel's events: the program (with its code), and its 41 calls nested under its card.
        events = editor.turn_events(started["turnId"])
        (card,) = [e for e in events if e["type"] == "toolCallStarted" and e["name"] == "run_code"]
        assert card["code"] == EDIT_PROGRAM and card["codeLanguage"] == "python" and card["parent"] == ""
        nested = [e for e in events if e["type"] == "toolCallStarted" and e["parent"] == card["callId"]]
        assert [e["name"] for e in nested] == ["read_file"] * 30 + ["grep"] + ["edit_file"] * 10
        done = [e for e in events if e["type"] == "toolCallFinished" and e["parent"] == card["callId"]]
        assert len(done) == 41 and all(e["ok"] for e in done)
    finally:
        await stop_editor(editor)


# -- a denied tool, an infinite loop, writes outside (the CLI) ----------------------------------------


def test_a_program_that_calls_a_denied_tool_gets_an_exception(bubblewrap, model_server, run_cli, tmp_path):
    (tmp_path / ".codeloop").mkdir()
    (tmp_path / ".codeloop" / "settings.json").write_text(json.dumps({"permissions": {"deny": ["Bash(rm:*)"]}}))
    (tmp_path / "keep.txt").write_text("keep\n")
    program = (
        "from codeloop_tools import run_command, ToolDenied\n"
        "try:\n"
        "    run_command(command='rm -f keep.txt')\n"
        "    print('removed')\n"
        "except ToolDenied as e:\n"
        "    print('refused:', e.text)\n"
        "run_command(command='rm keep.txt')\n"  # not caught: the program ends with the error
    )
    server = model_server(Script([run_code(program), echo_result]))
    result = run_cli(["run", "clean up", "--cwd", str(tmp_path), "--yes"], server.base_url, **config_home(tmp_path))
    assert result.code == 0, result.both
    text = program_result(server.chat_requests[-1])
    assert text.startswith("Program ended: error") and "2 tool calls (2 denied)" in text, text
    assert "refused: Permission denied: `rm -f keep.txt` is denied by a rule" in text
    assert "error: ToolDenied: run_command: Permission denied" in text and 'line 7, in <module>' in text
    assert '1. run_command(command="rm -f keep.txt") → denied' in text
    assert (tmp_path / "keep.txt").exists()
    assert "● run_code(" in result.out and "  │ ● run_command(rm -f keep.txt)" in result.out  # nested in the CLI


def test_an_infinite_loop_is_killed_at_the_limit(bubblewrap, model_server, run_cli, tmp_path):
    program = "print('looping', flush=True)\nwhile True:\n    pass\n"
    server = model_server(Script([run_code(program, timeout=2), echo_result]))
    t0 = time.monotonic()
    result = run_cli(["run", "loop", "--cwd", str(tmp_path), "--yes"], server.base_url, **config_home(tmp_path))
    assert result.code == 0, result.both
    assert time.monotonic() - t0 < 60
    text = program_result(server.chat_requests[-1])
    assert text.startswith("Program ended: timeout") and "limit of 2 s" in text and "looping" in text, text

    # The tool's timeout cannot go past the setting (codeTimeout).
    server = model_server(Script([run_code(program, timeout=300), echo_result]))
    result = run_cli(["run", "loop", "--cwd", str(tmp_path), "--yes"], server.base_url,
                     **config_home(tmp_path, {"codeTimeout": 1.5}))
    assert "limit of 1.5 s" in program_result(server.chat_requests[-1])


def test_a_program_cannot_write_outside_the_workspace(bubblewrap, model_server, run_cli, tmp_path):
    outside = Path(tempfile.mkdtemp(dir="/var/tmp"))
    program = (
        "import os\n"
        "from codeloop_tools import write_file\n"
        "tried = {}\n"
        f"for p in [{str(outside / 'x.txt')!r}, os.path.expanduser('~/.codeloop-code-x'), 'direct.txt']:\n"
        "    try:\n"
        "        open(p, 'w').write('x')\n"
        "        tried[p] = 'written'\n"
        "    except OSError as e:\n"
        "        tried[p] = e.strerror\n"
        "print(write_file(path='through_the_tool.txt', content='reviewed\\n').splitlines()[0])\n"
        "tried\n"
    )
    server = model_server(Script([run_code(program), echo_result]))
    try:
        result = run_cli(["run", "write", "--cwd", str(tmp_path), "--yes"], server.base_url, **config_home(tmp_path))
        assert result.code == 0, result.both
        text = program_result(server.chat_requests[-1])
        assert text.startswith("Program ended: ok"), text
        value = json.loads(text.split("--- return value (dict) ---\n")[1].split("\n---")[0])
        assert set(value.values()) == {"Read-only file system"}, value
        assert not (outside / "x.txt").exists() and not (tmp_path / "direct.txt").exists()
        assert not Path("~/.codeloop-code-x").expanduser().exists()
        assert (tmp_path / "through_the_tool.txt").read_text() == "reviewed\n"  # a tool call: the edit path
    finally:
        for p in outside.iterdir():
            p.unlink()
        outside.rmdir()


def test_code_mode_can_be_turned_off(model_server, run_cli, tmp_path):
    server = model_server(Text("ok"))
    result = run_cli(["run", "hi", "--cwd", str(tmp_path), "--yes"], server.base_url,
                     **config_home(tmp_path, {"codeMode": False}))
    assert result.code == 0, result.both
    assert "run_code" not in server.chat_requests[0].tool_names()
    server = model_server(Text("ok"))
    run_cli(["run", "hi", "--cwd", str(tmp_path), "--yes"], server.base_url, **config_home(tmp_path))
    assert "run_code" in server.chat_requests[0].tool_names()


# -- an MCP server's tool from a program ------------------------------------------------------------


class McpTools:
    """A tool source over the MCP manager, for this test: the MCP integration's own source is
    another branch's (h/mcp2); code mode takes whatever tools the registry has."""

    name = "mcp"

    def __init__(self, manager: McpManager) -> None:
        self.manager = manager

    def tools(self) -> list[SchemaTool]:
        out = []
        for info in self.manager.tools():
            tool = _McpTool(info.qualified_name, info.description, dict(info.input_schema), origin=info.server)
            tool.manager = self.manager
            out.append(tool)
        return out

    @property
    def version(self) -> int:
        return len(self.manager.tools())


class _McpTool(SchemaTool):
    manager: McpManager

    async def run(self, args: Any, ctx: ToolContext) -> str:
        r = await self.manager.call(self.name, args)
        if r.is_error:
            from codeloop.tools.base import ToolError

            raise ToolError(r.text)
        return r.text


class Events:
    def __init__(self) -> None:
        self.events: list[Event] = []

    def emit(self, event: Event) -> None:
        self.events.append(event)


async def test_a_program_calls_an_mcp_tool(bubblewrap, tmp_path):
    root = tmp_path / "ws"
    root.mkdir()
    server_cfg = ServerConfig(name="time", transport="stdio", source="user", origin="test",
                              command=str(BIN / "mcp-server-time"), args=["--local-timezone", "UTC"])
    manager = McpManager([server_cfg], root=root, log_dir=tmp_path / "logs")
    program = (
        "import json\n"
        "from codeloop_tools import mcp__time__get_current_time, mcp__time__convert_time\n"
        "now = json.loads(mcp__time__get_current_time(timezone='Asia/Tokyo'))\n"
        "conv = json.loads(mcp__time__convert_time(source_timezone='Europe/Paris', time='12:00', "
        "target_timezone='Asia/Tokyo'))\n"
        "{'tz': now['timezone'], 'diff': conv['time_difference']}\n"
    )
    model = ScriptedModel(Script([run_code(program), echo_result])).start()
    events = Events()
    session = None
    try:
        await manager.start()
        await wait_for(lambda: all(s.status == "ready" for s in manager.states()), 60)
        settings = Settings(base_url=model.base_url, api_key="sk-test", model="scripted-model", mode="bypass")
        source: ToolSource = McpTools(manager)
        session = AgentSession(settings, root, Ports(sink=events, approver=DenyAll("no"),
                                                     changes=DiskChangeApplier(None, root=root)),
                               persist=False, sources=[source])
        await session.start()
        end = await asyncio.wait_for(session.send("what time is it in Tokyo"), 120)
        assert end.status == "done"
        text = program_result(model.requests[-1])
        assert text.startswith("Program ended: ok") and "2 tool calls (2 ok)" in text, text
        assert '"tz": "Asia/Tokyo"' in text and '"diff": "+8.0h"' in text
        started = [e for e in events.events if isinstance(e, ToolCallStarted)]
        (card,) = [e for e in started if e.name == "run_code"]
        nested = [e for e in started if e.parent == card.call_id]
        assert [e.name for e in nested] == ["mcp__time__get_current_time", "mcp__time__convert_time"]
        assert all(e.origin == "time" for e in nested)
        finished = [e for e in events.events if isinstance(e, ToolCallFinished) and e.parent == card.call_id]
        assert len(finished) == 2 and all(e.ok for e in finished)
        # What the model was told: the function names and how to call them.
        (schema,) = [t for t in model.requests[0].body["tools"] if t["function"]["name"] == "run_code"]
        assert "from codeloop_tools import" in schema["function"]["description"]
    finally:
        if session is not None:
            await session.close()
        await manager.close()
        model.stop()


def test_a_programs_reads_are_its_own_not_the_models(bubblewrap, model_server, run_cli, tmp_path):
    """The turn's output budget and the read memo are about the model's context: a program that
    reads 25 files of 10,000 characters (more than a turn's budget and read_file's first look) gets
    each one whole, and the model's own read of one of them afterwards is a fresh read (not
    "unchanged since your read")."""
    for i in range(25):
        (tmp_path / f"big{i:02}.txt").write_text("".join(f"line {i}-{j} " + "x" * 80 + "\n" for j in range(110)))
    program = (
        "from codeloop_tools import read_file\n"
        "sizes = [len(read_file(path=f'big{i:02}.txt').splitlines()) for i in range(25)]\n"
        "sizes\n"
    )

    def after_program(req: ChatRequest):
        return ToolCalls([Call("read_file", {"path": "big03.txt"})])

    server = model_server(Script([run_code(program), after_program, echo_result]))
    result = run_cli(["run", "read", "--cwd", str(tmp_path), "--yes"], server.base_url, **config_home(tmp_path))
    assert result.code == 0, result.both
    program_text = program_result(server.chat_requests[1])
    value = json.loads(program_text.split("--- return value (list) ---\n")[1].split("\n---")[0])
    assert value == [110] * 25, program_text  # every read whole: no cut, no note
    model_read = program_result(server.chat_requests[2])
    # the model's own read is a read like any other (its first look), never "unchanged since your read"
    assert "line 3-0 " in model_read and "unchanged" not in model_read


# -- the README's example, as the doc shows it ------------------------------------------------------


def _readme_program() -> str:
    import re

    readme = (Path(__file__).resolve().parents[1] / "README.md").read_text(encoding="utf-8")
    (program,) = [b for b in re.findall(r"```python\n(.*?)```", readme, re.S) if "from codeloop_tools import" in b]
    return program


def test_the_readmes_code_mode_example_renames_across_files(bubblewrap, model_server, run_cli, tmp_path):
    """The program the README shows, extracted at test time, run as the model's run_code call."""
    for i in range(4):
        (tmp_path / f"m{i}.py").write_text(f"def old_name():\n    return {i}\n\nold_name()\n")
    (tmp_path / "other.py").write_text("x = 1\n")
    server = model_server(Script([run_code(_readme_program()), echo_result]))
    result = run_cli(["run", "rename it", "--cwd", str(tmp_path), "--yes"], server.base_url, **config_home(tmp_path))
    assert result.code == 0, result.both
    text = program_result(server.chat_requests[1])
    assert text.startswith("Program ended: ok"), text
    for i in range(4):
        assert (tmp_path / f"m{i}.py").read_text() == f"def new_name():\n    return {i}\n\nnew_name()\n"
    assert (tmp_path / "other.py").read_text() == "x = 1\n"
