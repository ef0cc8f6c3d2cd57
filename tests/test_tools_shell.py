"""run_command (foreground and background), read_command_output and kill_process."""

from __future__ import annotations

import asyncio
import re
import sys
import time
from pathlib import Path

import pytest

from codeloop.tools.processes import ProcessManager
from test_tools_common import call, live_members, make_ctx


class RecordingTerminal:
    def __init__(self) -> None:
        self.events: list[tuple] = []

    def started(self, terminal_id: str, command: str, cwd: str, background: bool) -> None:
        self.events.append(("started", terminal_id, command, cwd, background))

    def output(self, terminal_id: str, chunk: str) -> None:
        self.events.append(("output", terminal_id, chunk))

    def exited(self, terminal_id: str, exit_code: int | None) -> None:
        self.events.append(("exited", terminal_id, exit_code))

    def text(self, terminal_id: str) -> str:
        return "".join(e[2] for e in self.events if e[0] == "output" and e[1] == terminal_id)


async def wait_dead(pgid: int, timeout: float = 5.0) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if not live_members(pgid):
            return True
        await asyncio.sleep(0.05)
    return False


@pytest.fixture
async def pm():
    manager = ProcessManager()
    yield manager
    await manager.shutdown()


async def test_exit_codes_and_terminal_stream(tmp_path: Path, pm: ProcessManager) -> None:
    term = RecordingTerminal()
    (tmp_path / "sub").mkdir()
    ctx = make_ctx(tmp_path, processes=pm, terminal=term)
    r = await call(ctx, "run_command", command="echo out; echo err >&2; pwd; exit 3", cwd="sub")
    assert r.ok
    lines = r.text.splitlines()
    assert lines[:3] == ["out", "err", str((tmp_path / "sub").resolve())]
    assert lines[-1] == "exit code: 3"
    r = await call(ctx, "run_command", command="true")
    assert r.text == "(no output)\nexit code: 0"
    assert term.events[0] == ("started", "cmd-1", "echo out; echo err >&2; pwd; exit 3", str((tmp_path / "sub").resolve()), False)
    assert "out\nerr\n" in term.text("cmd-1")
    assert ("exited", "cmd-1", 3) in term.events and ("exited", "cmd-2", 0) in term.events


# Lines that are not "similar" to their neighbours (so none are folded): odd and even alternate.
ALTERNATING = "seq 1 {n} | awk '{{print ($1 % 2 ? \"odd \" : \"even \") $1}}'"


def alt(i: int) -> str:
    return ("odd " if i % 2 else "even ") + str(i)


async def test_output_cap_head_tail_and_paging(tmp_path: Path, pm: ProcessManager) -> None:
    ctx = make_ctx(tmp_path, processes=pm)
    r = await call(ctx, "run_command", command=ALTERNATING.format(n=1000))
    assert r.ok
    lines = r.text.splitlines()
    # The head and a longer tail (where runners print their summaries).
    assert lines[0] == alt(1) and lines[59] == alt(60)
    note = lines[60]
    assert note.startswith("[... 800 lines cut; the full output is kept")
    assert 'read_command_output(id="cmd-1", offset=61)' in note
    assert lines[61] == alt(861) and lines[-2] == alt(1000) and lines[-1] == "exit code: 0"

    r = await call(ctx, "read_command_output", id="cmd-1", offset=201, limit=3)
    assert r.ok
    out = r.text.splitlines()
    assert out[:3] == [f"201\t{alt(201)}", f"202\t{alt(202)}", f"203\t{alt(203)}"]
    assert 'offset=204' in out[3]
    r = await call(ctx, "read_command_output", id="cmd-1", offset=999)
    assert r.text.splitlines()[:2] == [f"999\t{alt(999)}", f"1000\t{alt(1000)}"]
    r = await call(ctx, "read_command_output", id="cmd-99")
    assert not r.ok and "cmd-1" in r.text


async def test_output_cap_by_characters(tmp_path: Path, pm: ProcessManager) -> None:
    ctx = make_ctx(tmp_path, processes=pm)
    cmd = f"{sys.executable} -c \"[print(('y' if i % 2 else 'z') * 1000) for i in range(100)]\""
    r = await call(ctx, "run_command", command=cmd)
    assert len(r.text) < 10_000 + 400  # MAX_RESULT_CHARS and the note
    assert "lines cut" in r.text and r.text.endswith("exit code: 0")
    head, _, tail = r.text.partition("lines cut")
    assert tail.count("y" * 1000) > head.count("y" * 1000) >= 1, "the tail gets the larger share"


async def test_runs_of_similar_lines_are_folded_and_can_be_paged(tmp_path: Path, pm: ProcessManager) -> None:
    ctx = make_ctx(tmp_path, processes=pm)
    script = "for i in $(seq 1 400); do echo \"test_$i PASSED [$((i / 4))%]\"; done; echo 'test_x FAILED'; echo end"
    r = await call(ctx, "run_command", command=script)
    lines = r.text.splitlines()
    assert lines[:2] == ["test_1 PASSED [0%]", "test_2 PASSED [0%]"]
    assert lines[2] == ("[... 397 similar lines folded (lines 3-399, differing only in their numbers); "
                        'read_command_output(id="cmd-1", offset=3) shows them]')
    assert lines[3:] == ["test_400 PASSED [100%]", "test_x FAILED", "end", "exit code: 0"], "what differs is shown"
    page = await call(ctx, "read_command_output", id="cmd-1", offset=3, limit=2)
    assert page.text.splitlines()[:2] == ["3\ttest_3 PASSED [0%]", "4\ttest_4 PASSED [1%]"]
    short = await call(ctx, "run_command", command="seq 1 7")  # a short run stays as it is
    assert short.text.splitlines()[:7] == [str(i) for i in range(1, 8)]



async def test_a_test_runners_padded_percentages_fold_into_one_run(tmp_path: Path, pm: ProcessManager) -> None:
    """pytest -v pads its progress ("[  9%]", "[ 10%]", "[100%]"): one run, not three."""
    ctx = make_ctx(tmp_path, processes=pm)
    script = ("for i in $(seq 0 199); do printf 'test_m.py::test_%d PASSED  [%3d%%]\\n' $i $((i / 2)); done; "
              "echo 'test_m.py::test_x PASSED  [100%]'")
    r = await call(ctx, "run_command", command=script)
    lines = r.text.splitlines()
    assert lines[:2] == ["test_m.py::test_0 PASSED  [  0%]", "test_m.py::test_1 PASSED  [  0%]"]
    assert lines[2].startswith("[... 197 similar lines folded (lines 3-199,")
    assert lines[3:] == ["test_m.py::test_199 PASSED  [ 99%]", "test_m.py::test_x PASSED  [100%]", "exit code: 0"]
    page = await call(ctx, "read_command_output", id="cmd-1", offset=20, limit=1)
    assert page.text.splitlines()[0] == "20\ttest_m.py::test_19 PASSED  [  9%]"
    # indentation still tells lines apart: a nested block is not folded into its parent's run
    nested = "for i in $(seq 1 10); do echo \"item $i\"; echo \"    detail $i\"; done"
    r = await call(ctx, "run_command", command=nested)
    assert "similar lines folded" not in r.text


async def test_read_command_output_without_commands(tmp_path: Path, pm: ProcessManager) -> None:
    ctx = make_ctx(tmp_path, processes=pm)
    r = await call(ctx, "read_command_output")
    assert r.ok and r.text == "No commands have run in this session."

async def test_long_uncut_output_names_its_id(tmp_path: Path, pm: ProcessManager) -> None:
    ctx = make_ctx(tmp_path, processes=pm)
    r = await call(ctx, "run_command", command=ALTERNATING.format(n=200))  # short
    assert r.text.endswith("exit code: 0")
    r = await call(ctx, "run_command", command=ALTERNATING.format(n=1000))  # cut: the note names it
    assert 'id="cmd-2"' in r.text and r.text.endswith("exit code: 0")
    r = await call(ctx, "run_command", command=ALTERNATING.format(n=190) + " | sed 's/$/ abcdefghij/'")  # long, not cut
    assert "lines cut" not in r.text and r.text.endswith("exit code: 0 (output id cmd-3)")


async def test_records_are_bounded(tmp_path: Path) -> None:
    pm = ProcessManager(max_records=3)
    ctx = make_ctx(tmp_path, processes=pm)
    for i in range(5):
        await call(ctx, "run_command", command=f"echo {i}")
    assert [r.id for r in pm.records()] == ["cmd-3", "cmd-4", "cmd-5"]
    await pm.shutdown()


async def test_timeout_kills_the_process_group(tmp_path: Path, pm: ProcessManager) -> None:
    ctx = make_ctx(tmp_path, processes=pm)
    start = time.monotonic()
    r = await call(ctx, "run_command", command="echo started; sleep 100 & sleep 100", timeout=0.5)
    assert time.monotonic() - start < 5
    assert r.ok and "timed out after 0.5s" in r.text and "started" in r.text
    assert re.search(r"exit code: -?\d+", r.text.splitlines()[-1])
    rec = pm.get("cmd-1")
    assert rec is not None and rec.timed_out
    assert await wait_dead(rec.pgid)  # the backgrounded sleep is gone too


async def test_sigterm_ignoring_children_get_sigkill(tmp_path: Path) -> None:
    pm = ProcessManager(kill_grace=0.3)
    ctx = make_ctx(tmp_path, processes=pm)
    r = await call(ctx, "run_command", command="trap '' TERM; sleep 100 & trap '' TERM; sleep 100", timeout=0.5)
    assert "timed out" in r.text
    assert await wait_dead(pm.get("cmd-1").pgid)
    await pm.shutdown()


async def test_leftover_background_children_are_stopped(tmp_path: Path, pm: ProcessManager) -> None:
    ctx = make_ctx(tmp_path, processes=pm)
    start = time.monotonic()
    r = await call(ctx, "run_command", command="echo hi; sleep 100 &")
    assert time.monotonic() - start < 5
    assert "hi" in r.text and "background=true" in r.text and r.text.endswith("exit code: 0")
    assert await wait_dead(pm.get("cmd-1").pgid)


async def test_cancellation_kills_the_group(tmp_path: Path, pm: ProcessManager) -> None:
    ctx = make_ctx(tmp_path, processes=pm)
    task = asyncio.create_task(call(ctx, "run_command", command="sleep 100 & sleep 100"))
    for _ in range(100):
        await asyncio.sleep(0.02)
        if pm.foreground_running():
            break
    rec = pm.foreground_running()[0]
    await asyncio.sleep(0.1)
    assert live_members(rec.pgid)
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    assert rec.cancelled
    assert await wait_dead(rec.pgid)


async def test_kill_all_foreground(tmp_path: Path, pm: ProcessManager) -> None:
    ctx = make_ctx(tmp_path, processes=pm)
    task = asyncio.create_task(call(ctx, "run_command", command="sleep 100"))
    while not pm.foreground_running():
        await asyncio.sleep(0.02)
    rec = pm.foreground_running()[0]
    await pm.kill_all_foreground()
    r = await asyncio.wait_for(task, 5)
    assert "killed" in r.text and "SIGTERM" in r.text
    assert await wait_dead(rec.pgid)


async def test_background_process_lifecycle(tmp_path: Path, pm: ProcessManager) -> None:
    term = RecordingTerminal()
    ctx = make_ctx(tmp_path, processes=pm, terminal=term)
    script = "import time\nfor i in range(10**6):\n    print('tick', i, flush=True)\n    time.sleep(0.05)\n"
    (tmp_path / "loop.py").write_text(script)
    r = await call(ctx, "run_command", command=f"{sys.executable} loop.py", background=True)
    assert r.ok
    assert r.text.startswith("Started bg-1 (pid ")
    assert "tick 0" in r.text and "is running" in r.text
    assert 'read_command_output(id="bg-1", offset=-50)' in r.text and 'kill_process(id="bg-1")' in r.text
    await asyncio.sleep(0.3)
    # its latest output: a negative offset counts from the end
    r = await call(ctx, "read_command_output", id="bg-1", offset=-3)
    assert r.ok and r.text.startswith("bg-1: running (pid ")
    ticks = [int(n) for n in re.findall(r"\ttick (\d+)", r.text)]
    assert len(ticks) == 3 and ticks == list(range(ticks[0], ticks[0] + 3)) and ticks[0] > 0
    # from the start, paged like a command's output
    r = await call(ctx, "read_command_output", id="bg-1", offset=1, limit=2)
    assert re.findall(r"^(\d+)\ttick (\d+)$", r.text, re.M) == [("1", "0"), ("2", "1")]
    r = await call(ctx, "read_command_output", id="bg-1", offset=0)
    assert not r.ok and "offset 0" in r.text
    # without an id: the processes and the recent commands
    await call(ctx, "run_command", command="echo listed")
    r = await call(ctx, "read_command_output")
    assert r.ok and "Background processes:" in r.text and "bg-1" in r.text and "running" in r.text
    assert "cmd-1" in r.text and "echo listed" in r.text
    rec = pm.get("bg-1")
    r = await call(ctx, "kill_process", id="bg-1")
    assert r.ok and r.text.startswith("Killed bg-1")
    assert await wait_dead(rec.pgid)
    assert not rec.running
    r = await call(ctx, "read_command_output", id="bg-1", offset=-50)
    assert "killed" in r.text
    assert ("started", "bg-1", f"{sys.executable} loop.py", str(tmp_path.resolve()), True) in term.events
    assert "tick 0" in term.text("bg-1")
    r = await call(ctx, "kill_process", id="bg-1")
    assert "was not running" in r.text
    r = await call(ctx, "kill_process", id="bg-7")
    assert not r.ok


async def test_background_process_that_exits(tmp_path: Path, pm: ProcessManager) -> None:
    ctx = make_ctx(tmp_path, processes=pm)
    r = await call(ctx, "run_command", command="echo done; exit 2", background=True)
    assert "done" in r.text and "exited with code 2" in r.text


async def test_shutdown_kills_everything(tmp_path: Path) -> None:
    pm = ProcessManager(start_wait=0.1)
    ctx = make_ctx(tmp_path, processes=pm)
    for _ in range(2):
        await call(ctx, "run_command", command="sleep 100 & sleep 100", background=True)
    fg = asyncio.create_task(call(ctx, "run_command", command="sleep 100"))
    while not pm.foreground_running():
        await asyncio.sleep(0.02)
    groups = [r.pgid for r in pm.records()]
    assert len(groups) == 3
    await pm.shutdown()
    for pgid in groups:
        assert await wait_dead(pgid)
    r = await asyncio.wait_for(fg, 5)
    assert "exit code" in r.text


async def test_bad_cwd_and_permissions(tmp_path: Path, pm: ProcessManager) -> None:
    from codeloop.tools.shell import RunCommand

    ctx = make_ctx(tmp_path, processes=pm)
    r = await call(ctx, "run_command", command="ls", cwd="../")
    assert not r.ok and "outside the workspace" in r.text
    r = await call(ctx, "run_command", command="ls", cwd="nope")
    assert not r.ok and "not a directory" in r.text
    r = await call(ctx, "run_command", command="ls", timeout=601)
    assert not r.ok and "timeout" in r.text
    (tmp_path / "d").mkdir()
    req = RunCommand().permission(RunCommand.Input(command="make test", cwd="d"), ctx)
    assert req.kind == "Bash" and req.target == "make test" and req.cwd == (tmp_path / "d").resolve()


async def test_a_command_stopped_while_it_starts_leaves_nothing_running(tmp_path: Path) -> None:
    """Stop pressed as a command starts: the shell may exist with children already, before
    the spawn has returned. Cancelled at many points of the start, nothing is left."""
    from conftest import processes_matching, unique_marker

    pm = ProcessManager()
    marker = unique_marker("17.3205080")
    try:
        for i in range(25):
            task = asyncio.ensure_future(pm.run(f"sleep {marker} & sleep {marker}; wait", tmp_path, 60))
            for _ in range(i):  # i turns of the event loop into the start
                await asyncio.sleep(0)
            task.cancel()
            with pytest.raises(asyncio.CancelledError):
                await task
        for _ in range(200):
            if not processes_matching(marker):
                break
            await asyncio.sleep(0.05)
        assert processes_matching(marker) == []
    finally:
        await pm.shutdown()
