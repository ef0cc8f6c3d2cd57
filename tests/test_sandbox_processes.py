"""The process manager with the real sandbox (bubblewrap, else Landlock): commands run inside
it, every plan is cleaned up (a finished command, a failed spawn, a command stopped while it
starts), nothing is left running, and a sandbox that refuses ("on", no backend) starts nothing
and asks nothing."""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest
from conftest import processes_matching, unique_marker

from codeloop.core.ports import SandboxRefused
from codeloop.runtime.sandboxing import WorkspaceSandbox
from codeloop.services.sandbox import Sandbox, SandboxSettings
from codeloop.tools.processes import ProcessManager
from codeloop.tools.shell import RunCommand
from test_tools_common import call, make_ctx


class Counting:
    """The real sandbox, counting the plans it made and the ones cleaned up."""

    def __init__(self, sandbox: Sandbox) -> None:
        self.sandbox = sandbox
        self.made = 0
        self.cleaned = 0

    @property
    def auto_allow(self) -> bool:
        return self.sandbox.auto_allow

    def prepare(self, argv, cwd, env=None, **kw):  # type: ignore[no-untyped-def]
        plan = self.sandbox.prepare(argv, cwd, env, **kw)
        self.made += 1
        inner = plan.cleanup

        def cleanup() -> None:
            if not plan._done:
                self.cleaned += 1
            inner()

        plan.cleanup = cleanup  # type: ignore[method-assign]
        return plan


@pytest.fixture
def box(tmp_path: Path):  # type: ignore[no-untyped-def]
    sb = Sandbox.probe("auto", tmp_path, temp_dir=tmp_path.parent, state_dir=tmp_path.parent / f"{tmp_path.name}-st")
    if not sb.active:
        pytest.skip(f"no sandbox here: {sb.describe()}")
    yield sb
    sb.close()


async def wait_for(cond, timeout: float = 10.0) -> bool:  # type: ignore[no-untyped-def]
    for _ in range(int(timeout / 0.05)):
        if cond():
            return True
        await asyncio.sleep(0.05)
    return bool(cond())


async def test_commands_run_inside_and_every_plan_is_cleaned_up(box: Sandbox, tmp_path: Path) -> None:
    counting = Counting(box)
    pm = ProcessManager(sandbox=counting)
    try:
        rec = await pm.run("echo $CODELOOP_SANDBOX; touch inside.txt; touch /var/tmp/codeloop-pm-escape 2>&1; true",
                           tmp_path, 30)
        assert rec.exit_code == 0 and rec.sandboxed
        assert rec.text().splitlines()[0] == box.backend
        assert (tmp_path / "inside.txt").exists() and not Path("/var/tmp/codeloop-pm-escape").exists()
        bg = await pm.start("sleep 0.2; echo done", tmp_path)
        assert await pm.wait(bg, 30) and "done" in bg.text()
        assert await wait_for(lambda: counting.cleaned == counting.made == 2)
        assert pm.contained is box.auto_allow
    finally:
        await pm.shutdown()


async def test_a_command_stopped_while_it_starts_leaves_nothing_running_sandboxed(box: Sandbox, tmp_path: Path) -> None:
    """As tests/test_tools_shell.py's test, with the sandbox's plan made in a thread first:
    cancelled at many points of the start, nothing is left running and every plan is released."""
    counting = Counting(box)
    pm = ProcessManager(sandbox=counting)
    marker = unique_marker("23.1406926")
    try:
        for i in range(0, 60, 3):
            task = asyncio.ensure_future(pm.run(f"sleep {marker} & sleep {marker}; wait", tmp_path, 60))
            for _ in range(i):
                await asyncio.sleep(0)
            task.cancel()
            with pytest.raises(asyncio.CancelledError):
                await task
        assert await wait_for(lambda: not processes_matching(marker), 20), processes_matching(marker)
        assert await wait_for(lambda: counting.cleaned == counting.made, 20), (counting.made, counting.cleaned)
    finally:
        await pm.shutdown()


async def test_a_refusing_sandbox_starts_nothing_and_asks_nothing(tmp_path: Path) -> None:
    box = WorkspaceSandbox(SandboxSettings(mode="on"), tmp_path, backends=())  # no backend to try: none works
    await box.start()
    assert box.refusal() is not None and "not run" in box.refusal()
    pm = ProcessManager(sandbox=box)
    ctx = make_ctx(tmp_path, processes=pm)
    try:
        assert RunCommand().permission(RunCommand.Input(command="touch x"), ctx) is None  # nothing to ask
        r = await call(ctx, "run_command", command="touch x")
        assert not r.ok and 'The sandbox is on (setting "sandbox": "on")' in r.text and not (tmp_path / "x").exists()
        r = await call(ctx, "run_command", command="touch y", background=True)
        assert not r.ok and "not run" in r.text and not (tmp_path / "y").exists()
        with pytest.raises(SandboxRefused):
            await pm.run("touch z", tmp_path, 10)
        assert not (tmp_path / "z").exists()
    finally:
        await pm.shutdown()
        box.close()


async def test_the_permission_request_says_whether_the_command_is_contained(box: Sandbox, tmp_path: Path) -> None:
    plain = make_ctx(tmp_path, processes=ProcessManager())
    boxed = make_ctx(tmp_path, processes=ProcessManager(sandbox=box))
    args = RunCommand.Input(command="make")
    assert RunCommand().permission(args, plain).sandboxed is False
    assert RunCommand().permission(args, boxed).sandboxed is box.auto_allow
    not_yet = WorkspaceSandbox(SandboxSettings(), tmp_path)  # not probed: nothing is contained yet
    assert RunCommand().permission(args, make_ctx(tmp_path, processes=ProcessManager(sandbox=not_yet))).sandboxed is False
