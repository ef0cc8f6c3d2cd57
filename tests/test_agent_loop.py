"""The agent loop in-process, against the scripted model over real HTTP."""

from __future__ import annotations

import asyncio
import json
from pathlib import Path
from typing import ClassVar

import pytest
from conftest import processes_matching, unique_marker
from pydantic import Field
from scripted_model import Call, CutStream, Error, Script, Text, ToolCalls

from codeloop.core.events import Event, Retry, TextDelta, ToolCallFinished, ToolCallStarted, TurnEnd
from codeloop.agent.loop import Agent
from codeloop.agent.model import ModelClient
from codeloop.core.ports import DenyAll
from codeloop.config import Settings
from codeloop.edits.disk import DiskChangeApplier
from codeloop.policy import PermissionPolicy
from codeloop.tools.builtin import BuiltinTools
from codeloop.tools.base import Tool, ToolContext, ToolInput
from codeloop.tools.registry import ToolRegistry
from codeloop.tools.processes import ProcessManager
from codeloop.tools.workspace import Workspace


class Recorder:
    def __init__(self) -> None:
        self.events: list[Event] = []

    def emit(self, event: Event) -> None:
        self.events.append(event)

    def of(self, kind):
        return [e for e in self.events if isinstance(e, kind)]


class SlowIn(ToolInput):
    name: str = Field(description="a label")


class SlowRead(Tool[SlowIn]):
    """A read-only tool that takes a while, to see concurrency."""

    name: ClassVar[str] = "slow_read"
    description: ClassVar[str] = "waits, then returns its label"
    Input = SlowIn
    read_only = True
    log: ClassVar[list[str]] = []

    async def run(self, args: SlowIn, ctx: ToolContext) -> str:
        SlowRead.log.append(f"start {args.name}")
        await asyncio.sleep(0.2)
        SlowRead.log.append(f"end {args.name}")
        return f"label {args.name}"


def make_agent(server, root: Path, *, extra_tools=(), mode="bypass", **settings) -> tuple[Agent, Recorder, ProcessManager]:
    s = Settings(model="scripted-model", base_url=server.base_url, api_key="sk-x", retry_base_delay=0.01, **settings)
    sink = Recorder()
    procs = ProcessManager()
    ctx = ToolContext(workspace=Workspace(root), changes=DiskChangeApplier(None), processes=procs)
    agent = Agent(
        model=ModelClient(s),
        tools=ToolRegistry([BuiltinTools(), *extra_tools]),
        context=ctx,
        sink=sink,
        approver=DenyAll("no one to ask"),
        policy=PermissionPolicy(root, mode=mode),
        max_turns=s.max_turns,
    )
    return agent, sink, procs


async def test_read_only_calls_run_concurrently_and_results_keep_call_order(model_server, tmp_path):
    SlowRead.log.clear()

    def check(req):
        tool_msgs = [m for m in req.messages if m["role"] == "tool"]
        assert [m["content"] for m in tool_msgs] == ["label a", "label b", "label c"]
        assert [m["tool_call_id"] for m in tool_msgs] == ["c1", "c2", "c3"]
        return Text("done")

    server = model_server(
        Script(
            [
                ToolCalls([Call("slow_read", {"name": n}, id=f"c{i}") for i, n in enumerate("abc", 1)]),
                check,
            ]
        )
    )
    agent, sink, procs = make_agent(server, tmp_path, extra_tools=[SlowRead()])
    end = await agent.send("go")
    assert end.status == "done", sink.events
    # All three started before any finished: they ran at the same time.
    assert SlowRead.log[:3] == ["start a", "start b", "start c"]
    await procs.shutdown()


async def test_mixed_calls_run_in_order(model_server, tmp_path):
    SlowRead.log.clear()
    server = model_server(
        Script(
            [
                ToolCalls(
                    [
                        Call("slow_read", {"name": "a"}),
                        Call("write_file", {"path": "x.txt", "content": "x"}),
                        Call("slow_read", {"name": "b"}),
                    ]
                ),
                Text("done"),
            ]
        )
    )
    agent, sink, procs = make_agent(server, tmp_path, extra_tools=[SlowRead()])
    assert (await agent.send("go")).status == "done"
    assert SlowRead.log == ["start a", "end a", "start b", "end b"]
    assert (tmp_path / "x.txt").read_text() == "x"
    await procs.shutdown()


async def test_cut_stream_is_retried_and_partial_text_discarded(model_server, tmp_path):
    server = model_server(Script([CutStream(after_chunks=3, reply=Text("partial answer that is cut")), Text("whole answer")]))
    agent, sink, procs = make_agent(server, tmp_path)
    end = await agent.send("hi")
    assert end.status == "done"
    retries = sink.of(Retry)
    assert len(retries) == 1 and "cut" in retries[0].reason
    assert agent.messages[-1] == {"role": "assistant", "content": "whole answer"}
    await procs.shutdown()


async def test_five_server_errors_give_up_with_a_clear_error(model_server, tmp_path):
    server = model_server(lambda req: Error(500, "overloaded"))
    agent, sink, procs = make_agent(server, tmp_path, max_retries=4)
    end = await agent.send("hi")
    assert end.status == "error"
    assert "after 5 attempts" in end.message and "overloaded" in end.message
    assert len(server.requests) == 5
    assert [r.attempt for r in sink.of(Retry)] == [1, 2, 3, 4]
    # The failed turn did not poison the history: the user message was not kept.
    assert agent.messages == []
    await procs.shutdown()


async def test_cancel_mid_command_kills_the_group_and_the_session_continues(model_server, tmp_path):
    marker = unique_marker("41.421356")

    def follow_up(req):
        # The history the model gets after a cancellation is valid: every call has a result.
        tool_msgs = [m for m in req.messages if m["role"] == "tool"]
        assert len(tool_msgs) == 1 and "Cancelled" in tool_msgs[0]["content"]
        return Text("continuing after the cancel")

    server = model_server(
        Script([ToolCalls([Call("run_command", {"command": f"sleep {marker} & sleep {marker}; echo never"})]), follow_up])
    )
    agent, sink, procs = make_agent(server, tmp_path)
    task = asyncio.ensure_future(agent.send("run it"))
    for _ in range(100):
        await asyncio.sleep(0.05)
        if processes_matching(marker):
            break
    assert processes_matching(marker), "the command did not start"
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    # The group got SIGTERM when the turn was cancelled; on a loaded machine the
    # processes take a moment to be gone from /proc.
    for _ in range(100):
        if not processes_matching(marker):
            break
        await asyncio.sleep(0.05)
    left = processes_matching(marker)
    assert left == [], [(r.id, r.running, r.cancelled, r.pid, r.exit_code) for r in procs.records()]
    assert sink.of(TurnEnd)[-1].status == "cancelled"
    end = await agent.send("what now?")
    assert end.status == "done"
    assert agent.messages[-1]["content"] == "continuing after the cancel"
    await procs.shutdown()


async def test_conversation_persists_across_sends_and_streams_text(model_server, tmp_path):
    def second(req):
        assert [m["content"] for m in req.messages if m["role"] == "user"] == ["first", "second"]
        return Text("two")

    server = model_server(Script([Text("one, streamed in small pieces", chunk_size=3), second]))
    agent, sink, procs = make_agent(server, tmp_path)
    await agent.send("first")
    deltas = sink.of(TextDelta)
    assert len(deltas) > 3 and "".join(d.text for d in deltas) == "one, streamed in small pieces"
    await agent.send("second")
    assert [m["role"] for m in agent.messages] == ["user", "assistant", "user", "assistant"]
    await procs.shutdown()


async def test_tool_events_carry_ids_and_short_results(model_server, tmp_path):
    (tmp_path / "a.txt").write_text("alpha\nbeta\n")
    server = model_server(Script([ToolCalls([Call("read_file", {"path": "a.txt"}, id="r1")]), Text("ok")]))
    agent, sink, procs = make_agent(server, tmp_path)
    await agent.send("read")
    started, finished = sink.of(ToolCallStarted)[0], sink.of(ToolCallFinished)[0]
    assert (started.call_id, started.name, started.summary) == ("r1", "read_file", "a.txt")
    assert finished.ok and "alpha" in finished.result
    assert json.dumps(started.to_dict())  # serialisable for the wire
    await procs.shutdown()
