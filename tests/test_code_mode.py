"""Code mode's parts, for real: the generated ``codeloop_tools`` module (from the built-in tools
and from a schema that arrives at run time, with names that are not Python), and the runner
(a real ``python -I`` subprocess in the real sandbox): the call channel, every ending (ok,
error, timeout, CPU, memory, the cap on calls), the output's head and tail, the read-only
workspace, and a cancelled run that leaves nothing behind."""

from __future__ import annotations

import asyncio
import inspect
import json
import os
import tempfile
import time
from pathlib import Path
from typing import Any

import pytest
from conftest import processes_matching, unique_marker

from codeloop.runtime.codemode import MODULE, CodeModeSettings, module_source, python_name, render, run_program
from codeloop.runtime.codemode.tool import describe
from codeloop.services.sandbox import Sandbox
from codeloop.tools.base import SchemaTool, ToolContext
from codeloop.tools.builtin import BuiltinTools

ODD_SCHEMA = {
    "type": "object",
    "properties": {
        "from": {"type": "string", "description": "Where to start."},
        "max-items": {"type": "integer", "default": 10},
        "mode": {"type": "string", "enum": ["fast", "slow"]},
        "tags": {"type": "array", "items": {"type": "string"}},
        "opts": {"type": "object"},
        "flag": {"type": ["boolean", "null"]},
    },
    "required": ["from"],
}


class Echo(SchemaTool):
    """A tool whose schema arrives at run time (as an MCP server's do)."""

    async def run(self, args: Any, ctx: ToolContext) -> str:
        return json.dumps(args)


def load_module(source: str, channel) -> dict[str, Any]:  # type: ignore[no-untyped-def]
    scope: dict[str, Any] = {"_channel": channel}
    exec(compile(source, f"<{MODULE}>", "exec"), scope)
    return scope


def test_names_that_are_not_python_become_identifiers() -> None:
    taken: set[str] = set()
    assert python_name("mcp__git__git-status", taken) == "mcp__git__git_status"
    assert python_name("mcp__git__git.status", taken) == "mcp__git__git_status_2"  # unique
    assert python_name("class") == "class_" and python_name("9lives") == "_9lives" and python_name("match") == "match_"
    assert python_name("call_tool") == "call_tool_"  # the module's own names are not shadowed


def test_the_module_has_a_typed_function_per_tool_and_every_call_maps_back() -> None:
    tools = [*BuiltinTools().tools(), Echo("mcp__demo__look-up", "Look things up.\nIn the demo server.", ODD_SCHEMA)]
    source, stubs = module_source(tools)
    assert [s.tool for s in stubs] == [t.name for t in tools]
    sent: list[tuple[str, dict]] = []
    replies = iter([{"status": "ok", "text": "fine"}, {"status": "denied", "text": "Permission denied: no"},
                    {"status": "error", "text": "Error: boom"}, {"status": "limit", "text": "too many"}])

    def channel(name: str, args: dict) -> dict:
        sent.append((name, args))
        return next(replies)

    mod = load_module(source, channel)
    for tool in BuiltinTools().tools():  # every built-in tool, keyword arguments from its schema
        fn = mod[python_name(tool.name)]
        params = tool.parameters()
        sig = inspect.signature(fn)
        assert set(sig.parameters) == {python_name(p) for p in params.get("properties", {})}, tool.name
        assert all(p.kind is inspect.Parameter.KEYWORD_ONLY for p in sig.parameters.values())
        for req in params.get("required", []):
            assert sig.parameters[python_name(req)].default is inspect.Parameter.empty
        assert fn.__doc__.startswith(tool.description.strip()[:40])
    look = mod["mcp__demo__look_up"]
    sig = inspect.signature(look)
    assert list(sig.parameters) == ["from_", "max_items", "mode", "tags", "opts", "flag"]
    assert sig.parameters["from_"].annotation == "str" and sig.parameters["from_"].default is inspect.Parameter.empty
    assert sig.parameters["mode"].annotation == "Literal['fast', 'slow'] | None"
    assert sig.parameters["tags"].annotation == "list[str] | None"
    assert sig.parameters["max_items"].annotation == "int | None"
    assert "Where to start." in look.__doc__ and "default 10" in look.__doc__ and "one of 'fast', 'slow'" in look.__doc__

    assert look(from_="here", tags=["a"]) == "fine"
    assert sent[-1] == ("mcp__demo__look-up", {"from": "here", "tags": ["a"]})  # original names, None left out
    with pytest.raises(mod["ToolDenied"]) as denied:
        look(from_="x")
    assert denied.value.text == "Permission denied: no" and isinstance(denied.value, mod["ToolError"])
    with pytest.raises(mod["ToolError"]) as failed:
        mod["call_tool"]("mcp__demo__look-up", **{"from": "y"})
    assert not isinstance(failed.value, mod["ToolDenied"]) and sent[-1] == ("mcp__demo__look-up", {"from": "y"})
    with pytest.raises(mod["ToolCallLimit"]):
        look(from_="z")
    assert not issubclass(mod["ToolCallLimit"], Exception)  # `except Exception` does not swallow it
    with pytest.raises(TypeError):
        look(where="nowhere")  # a wrong argument fails in Python, before any call


def test_the_description_shows_real_tools_and_the_limits() -> None:
    tools = [*BuiltinTools().tools(), Echo("mcp__demo__look-up", "Look.", ODD_SCHEMA)]
    text = describe(tools, CodeModeSettings(timeout=45, max_calls=150))
    first = next(t for t in tools if t.read_only and t.parameters().get("required"))
    assert f"from {MODULE} import {first.name}" in text
    assert "45 s" in text and "150 calls" in text and "ToolDenied" in text
    assert "many similar calls" in text.replace("\n", " ")
    assert "mcp__demo__look-up → mcp__demo__look_up" in text


# -- the runner ---------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def box(tmp_path_factory: pytest.TempPathFactory) -> Sandbox:
    ws = tmp_path_factory.mktemp("codews")
    sb = Sandbox.probe("auto", ws, temp_dir=tmp_path_factory.mktemp("sbtmp"))
    if not sb.active:
        pytest.skip(f"no sandbox here: {sb.describe()}")
    yield sb
    sb.close()


class Calls:
    """The host side of the channel: answers each call from a table (a test's own tools)."""

    def __init__(self, answers: dict[str, tuple[str, str]] | None = None, delay: float = 0.0) -> None:
        self.answers = answers or {}
        self.delay = delay
        self.seen: list[tuple[str, dict, int]] = []

    async def __call__(self, name: str, args: dict, n: int) -> tuple[str, str, str]:
        self.seen.append((name, args, n))
        if self.delay:
            await asyncio.sleep(self.delay)
        status, text = self.answers.get(name, ("ok", f"{name} got {json.dumps(args, sort_keys=True)}"))
        return status, text, f"{status} #{n}"


MODULE_SRC = module_source([Echo("echo", "Echo.", {"type": "object", "properties": {"x": {"type": "integer"}}}),
                            Echo("refuse", "Refused.", {"type": "object", "properties": {}})])[0]


async def run(box: Sandbox, program: str, calls: Calls | None = None, **kw: Any):  # type: ignore[no-untyped-def]
    kw.setdefault("timeout", 20)
    kw.setdefault("max_calls", 100)
    return await run_program(program, MODULE_SRC, sandbox=box, cwd=box.workspace, call=calls or Calls(), **kw)


async def test_calls_output_and_the_last_expression(box: Sandbox) -> None:
    calls = Calls({"refuse": ("denied", "Permission denied: a rule")})
    r = await run(box, "from codeloop_tools import echo, refuse, ToolDenied\n"
                       "import os\n"
                       "got = [echo(x=i) for i in range(3)]\n"
                       "try:\n    refuse()\nexcept ToolDenied as e:\n    print('denied:', e.text)\n"
                       "print('sandbox', os.environ.get('CODELOOP_SANDBOX'))\n"
                       "{'got': got, 'n': len(got)}\n", calls)
    assert r.ending == "ok", r
    assert [c[0] for c in calls.seen] == ["echo", "echo", "echo", "refuse"] and calls.seen[1][1] == {"x": 1}
    assert json.loads(r.value_json) == {"got": ['echo got {"x": 0}', 'echo got {"x": 1}', 'echo got {"x": 2}'], "n": 3}
    out = r.stdout.text()
    assert "denied: Permission denied: a rule" in out and f"sandbox {box.backend}" in out
    assert [c.status for c in r.calls] == ["ok", "ok", "ok", "denied"] and r.sandboxed
    text = render(r, 20)
    assert text.startswith("Program ended: ok") and "4 tool calls (3 ok, 1 denied)" in text
    assert "4. refuse() → denied: denied #4" in text and '"n": 3' in text


async def test_an_error_gives_a_short_traceback_and_the_output_so_far(box: Sandbox) -> None:
    r = await run(box, "print('before')\nresult = 1\ndef f():\n    return {}['missing']\nf()\n")
    assert r.ending == "error" and r.error == "KeyError: 'missing'"
    assert 'File "<program>", line 4, in f' in r.traceback and "bootstrap" not in r.traceback
    assert "child" not in r.traceback and r.stdout.text() == "before\n"
    text = render(r, 20)
    assert "error: KeyError: 'missing'" in text and "--- traceback ---" in text


async def test_a_result_variable_and_values_that_are_not_json(box: Sandbox) -> None:
    r = await run(box, "result = {1, 2}\n")
    assert r.ending == "ok" and not r.value_exact and json.loads(r.value_json) == "{1, 2}"
    assert "(not JSON-serializable: its repr)" in render(r, 20)


async def test_an_infinite_loop_is_killed_at_the_limit(box: Sandbox) -> None:
    t0 = time.monotonic()
    r = await run(box, "print('started', flush=True)\nwhile True:\n    pass\n", timeout=1.5)
    assert r.ending == "timeout" and "limit of 1.5 s" in r.why
    assert time.monotonic() - t0 < 15 and "started" in r.stdout.text()
    assert render(r, 1.5).startswith("Program ended: timeout")


async def test_time_in_tool_calls_is_not_the_programs(box: Sandbox) -> None:
    # Three calls of 1 s each (an approval, a review): the program's own second is not used up.
    r = await run(box, "from codeloop_tools import echo\nfor i in range(3):\n    echo(x=i)\n'done'\n",
                  Calls(delay=1.0), timeout=1.0)
    assert r.ending == "ok" and json.loads(r.value_json) == "done" and r.seconds < 1.0 < r.wall


async def test_the_cap_on_tool_calls_ends_the_program(box: Sandbox) -> None:
    calls = Calls()
    r = await run(box, "from codeloop_tools import echo\nn = 0\nwhile True:\n    try:\n        echo(x=n)\n"
                       "    except Exception:\n        pass\n    n += 1\n", calls, max_calls=5)
    assert r.ending == "limit" and len(calls.seen) == 5 and len(r.calls) == 6 and r.calls[-1].status == "limit"
    assert "ToolCallLimit" in r.error and "more than 5 tool calls" in r.why


async def test_memory_and_cpu_limits(box: Sandbox) -> None:
    r = await run(box, "x = bytearray(3 << 30)\n", memory=1 << 30)
    assert r.ending == "error" and "MemoryError" in r.error
    # A busy loop that never reaches the channel again still dies by the CPU limit's signal
    # when the wall clock is generous (the limit is the timeout + 2 s of CPU time).
    r = await run(box, "import signal\nsignal.signal(signal.SIGXCPU, signal.SIG_IGN)\nwhile True:\n    pass\n",
                  timeout=1.0)
    assert r.ending == "timeout"


async def test_big_output_keeps_its_head_and_tail(box: Sandbox) -> None:
    r = await run(box, "for i in range(100000):\n    print('line', i)\n")
    assert r.ending == "ok" and r.stdout.total > 1_000_000
    text = r.stdout.text()
    assert text.startswith("line 0\n") and text.rstrip().endswith("line 99999") and "characters cut" in text
    assert len(render(r, 20)) < 20_000


async def test_the_workspace_is_read_only_and_outside_is_out_of_reach(box: Sandbox) -> None:
    (box.workspace / "kept.txt").write_text("original\n")
    outside = Path(tempfile.mkdtemp(dir="/var/tmp"))
    try:
        r = await run(box, "import os\nout = []\n"
                           f"for p in ['kept.txt', 'new.txt', {str(outside / 'x')!r}, os.path.expanduser('~/.codeloop-x')]:\n"
                           "    try:\n        open(p, 'w').write('x')\n        out.append('wrote ' + p)\n"
                           "    except OSError as e:\n        out.append(type(e).__name__ + ' ' + str(e.errno))\n"
                           "open('/tmp/scratch', 'w').write('private tmp is fine')\n"
                           "out.append(open('/tmp/scratch').read())\nout\n")
        assert r.ending == "ok", r
        value = json.loads(r.value_json)
        assert not any(v.startswith("wrote") for v in value[:4]), value
        assert value[4] == "private tmp is fine"
        assert (box.workspace / "kept.txt").read_text() == "original\n" and not (box.workspace / "new.txt").exists()
        assert not (outside / "x").exists() and not Path(os.path.expanduser("~/.codeloop-x")).exists()
    finally:
        os.rmdir(outside)


async def test_a_cancelled_run_leaves_nothing_running(box: Sandbox) -> None:
    marker = unique_marker("31.415")
    started = asyncio.Event()

    class Slow(Calls):
        async def __call__(self, name: str, args: dict, n: int) -> tuple[str, str, str]:
            started.set()
            await asyncio.sleep(60)
            return "ok", "", ""

    program = (f"import subprocess\nsubprocess.Popen(['sleep', '{marker}'])\n"
               "from codeloop_tools import echo\necho(x=1)\n")
    task = asyncio.ensure_future(run(box, program, Slow()))
    await asyncio.wait_for(started.wait(), 30)
    for _ in range(100):  # the program's child is running (as the host sees it)
        if processes_matching(marker):
            break
        await asyncio.sleep(0.05)
    assert processes_matching(marker)
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    for _ in range(100):
        if not processes_matching(marker):
            break
        await asyncio.sleep(0.05)
    assert processes_matching(marker) == []
