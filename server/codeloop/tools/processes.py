"""The ProcessManager: every process the agent starts, foreground or background.

Each command runs in its own session (``start_new_session=True``), so its pid is
also the id of a process group holding everything it spawned; stopping a command
means signalling that whole group (SIGTERM, then SIGKILL after a grace period).

The manager keeps the output of recent commands (bounded) so the model can page
through output that was cut from a tool result, and it owns the foreground
commands too, so the host can stop them when a turn is cancelled.

With a ``CommandSandbox`` (the runtime injects the OS sandbox), every command is
prepared by it (in a thread, one plan per spawn) and spawned as it says; the plan
is cleaned up once the command's group has ended. A sandbox that refuses (mode
``on``, no backend) raises ``SandboxRefused``: nothing is started.
"""

from __future__ import annotations

import asyncio
import atexit
import logging
import os
import signal
import time
import weakref
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Callable, Iterable

from codeloop.core.ports import CommandObserver, CommandRunner, CommandSandbox, Draining, NullTerminal, SpawnPlan, Terminal
from codeloop.core.tasks import Tasks
from codeloop.tools.command_record import MAX_RECORD_CHARS, CommandRecord, group_alive, signal_group
from codeloop.tools.text import numbered

log = logging.getLogger(__name__)

MAX_RECORDS = 20  # finished commands whose output we keep
KILL_GRACE = 2.0  # seconds between SIGTERM and SIGKILL
LEFTOVER_GRACE = 1.0  # after a foreground shell exits, how long children may hold its output
READ_CHUNK = 65536

SHELL = "/bin/bash" if os.path.exists("/bin/bash") else "/bin/sh"

# Keep commands from waiting on a pager or a password prompt, and make Python flush.
EXTRA_ENV = {
    "PAGER": "cat",
    "GIT_PAGER": "cat",
    "GIT_TERMINAL_PROMPT": "0",
    "PYTHONUNBUFFERED": "1",
}


class _ExitAwareProtocol(asyncio.subprocess.SubprocessStreamProtocol):
    """The stream protocol, plus a future resolved as soon as the shell exits."""

    def __init__(self, loop: asyncio.AbstractEventLoop) -> None:
        super().__init__(limit=2**16, loop=loop)
        self.exited: asyncio.Future[None] = loop.create_future()

    def process_exited(self) -> None:
        super().process_exited()
        if not self.exited.done():
            self.exited.set_result(None)


async def _stop_started(spawning: asyncio.Task[tuple[asyncio.SubprocessTransport, _ExitAwareProtocol]],
                        plan: SpawnPlan | None = None) -> None:
    """Kill the process group of a spawn whose caller was cancelled (uncancellable)."""
    try:
        while not spawning.done():
            try:
                await asyncio.shield(spawning)
            except asyncio.CancelledError:
                continue
            except BaseException:
                return
        if spawning.cancelled() or spawning.exception() is not None:
            return
        transport, _ = spawning.result()
        pid = transport.get_pid()
        if pid:
            signal_group(pid, signal.SIGKILL)
        transport.close()
    finally:
        _cleanup(plan)


def _cleanup(plan: SpawnPlan | None) -> None:
    if plan is None:
        return
    try:
        plan.cleanup()
    except Exception:
        log.exception("cleaning up a sandboxed command failed")


async def _prepared(sandbox: CommandSandbox, argv: list[str], cwd: Path, env: dict[str, str]) -> SpawnPlan:
    """``sandbox.prepare`` in a thread. Cancelled meanwhile: the plan it makes is cleaned up."""
    task = asyncio.ensure_future(asyncio.to_thread(sandbox.prepare, argv, cwd, env))
    try:
        return await asyncio.shield(task)
    except asyncio.CancelledError:
        def done(t: asyncio.Future[SpawnPlan]) -> None:
            if not t.cancelled() and t.exception() is None:
                _cleanup(t.result())

        task.add_done_callback(done)
        raise


def _finish_future(fut: asyncio.Future[None]) -> None:
    if not fut.done():
        fut.set_result(None)


class ProcessManager:
    """Runs shell commands in their own process groups and keeps their output."""

    def __init__(
        self,
        terminal: Terminal | None = None,
        *,
        max_records: int = MAX_RECORDS,
        max_record_chars: int = MAX_RECORD_CHARS,
        kill_grace: float = KILL_GRACE,
        leftover_grace: float = LEFTOVER_GRACE,
        start_wait: float = 1.0,
        runner: CommandRunner | None = None,
        observer: CommandObserver | None = None,
        sandbox: CommandSandbox | None = None,
    ) -> None:
        self.terminal = terminal
        # Foreground commands run there instead of here when a host gives one (the ACP
        # client's terminal); background processes always run here.
        self.runner = runner
        self.observer = observer  # sees each command (checkpoints), set by the session
        self.sandbox = sandbox  # None: commands run as they are
        self.max_records = max_records
        self.max_record_chars = max_record_chars
        self.kill_grace = kill_grace
        self.leftover_grace = leftover_grace
        self.start_wait = start_wait  # how long a background start shows output before returning
        self._records: dict[str, CommandRecord] = {}
        self._counters: dict[str, int] = {"cmd": 0, "bg": 0}
        self._tasks = Tasks("processes")
        self._closed = False
        _MANAGERS.add(self)

    # -- lookup

    def get(self, record_id: str) -> CommandRecord | None:
        return self._records.get(record_id.strip())

    def records(self) -> list[CommandRecord]:
        return list(self._records.values())

    def background(self) -> list[CommandRecord]:
        return [r for r in self._records.values() if r.background]

    def foreground_running(self) -> list[CommandRecord]:
        return [r for r in self._records.values() if not r.background and r.running]

    # -- the sandbox

    @property
    def contained(self) -> bool:
        """Commands run in a sandbox that fully contains them (the policy's autoAllow)."""
        if self.sandbox is None:
            return False
        try:
            return bool(self.sandbox.auto_allow)
        except Exception:
            log.exception("the sandbox could not say whether it contains commands")
            return False

    def _sandboxing(self) -> bool:
        """Commands must run here, in the sandbox (or be refused by it), never in a host's
        runner (the ACP client's terminal runs them unconfined)."""
        if self.sandbox is None:
            return False
        try:
            return bool(getattr(self.sandbox, "active", False)) or self.refusal() is not None
        except Exception:
            log.exception("the sandbox could not say whether it is active")
            return True  # fail closed: run here, where the sandbox decides

    def refusal(self) -> str | None:
        """Why every command is refused right now (the sandbox is on and unavailable), or None."""
        why: Callable[[], str | None] | None = getattr(self.sandbox, "refusal", None)
        if not callable(why):
            return None
        try:
            return why()
        except Exception:
            log.exception("the sandbox could not say whether it refuses commands")
            return None

    # -- starting

    async def _spawn(
        self, command: str, cwd: Path, *, background: bool, terminal: Terminal | None
    ) -> CommandRecord:
        if self._closed:
            raise RuntimeError("the process manager has been shut down")
        prefix = "bg" if background else "cmd"
        self._counters[prefix] += 1
        rec = CommandRecord(
            id=f"{prefix}-{self._counters[prefix]}",
            command=command,
            cwd=str(cwd),
            background=background,
            max_chars=self.max_record_chars,
        )
        term = terminal or self.terminal or NullTerminal()
        env = {**os.environ, **EXTRA_ENV}
        argv = [SHELL, "-c", command]
        plan: SpawnPlan | None = None
        if self.sandbox is not None:
            plan = await _prepared(self.sandbox, argv, cwd, env)  # SandboxRefused: nothing starts
            argv, env = list(plan.argv), dict(plan.env)
        loop = asyncio.get_running_loop()
        spawning = loop.create_task(
            loop.subprocess_exec(
                lambda: _ExitAwareProtocol(loop),
                *argv,
                cwd=plan.cwd if plan is not None else str(cwd),
                stdin=asyncio.subprocess.DEVNULL,
                stdout=asyncio.subprocess.PIPE,
                stderr=asyncio.subprocess.STDOUT,
                start_new_session=True,
                pass_fds=plan.pass_fds if plan is not None else (),
                env=env,
            )
        )
        try:
            transport, protocol = await asyncio.shield(spawning)
        except asyncio.CancelledError:
            # Stopped while the process was being started: it may be running already,
            # with children of its own. asyncio would only kill the shell and leave them:
            # wait for the start to finish, then stop the whole group.
            await _stop_started(spawning, plan)
            raise
        except BaseException:
            _cleanup(plan)
            raise
        proc = asyncio.subprocess.Process(transport, protocol, loop)
        rec.pid = proc.pid
        rec._process = proc
        rec._plan = plan
        rec.sandboxed = plan is not None and getattr(plan, "sandboxed", True)
        rec._finished = asyncio.get_running_loop().create_future()
        self._records[rec.id] = rec
        self._prune()
        _safe(term.started, rec.id, command, str(cwd), background)
        self._tasks.spawn(self._supervise(rec, proc, protocol, term), f"supervise {rec.id}")
        return rec

    async def _supervise(
        self,
        rec: CommandRecord,
        proc: asyncio.subprocess.Process,
        protocol: _ExitAwareProtocol,
        term: Terminal,
    ) -> None:
        assert proc.stdout is not None
        reader = asyncio.create_task(self._read(rec, proc.stdout, term))
        try:
            # Not proc.wait(): on 3.11 it also waits until every holder of the
            # output pipe (a backgrounded grandchild) has closed it.
            await protocol.exited
            rec.exit_code = proc.returncode
            if rec.background:
                await reader
            else:
                try:
                    await asyncio.wait_for(asyncio.shield(reader), self.leftover_grace)
                except TimeoutError:
                    # The shell is gone but something it started still holds the
                    # output pipe (`cmd &`). Foreground commands leave nothing behind.
                    rec.leftovers_killed = True
                    await self._kill_group(rec)
                    try:
                        await asyncio.wait_for(asyncio.shield(reader), 5)
                    except TimeoutError:
                        reader.cancel()
        except asyncio.CancelledError:
            reader.cancel()
            raise
        finally:
            rec.close_output()
            if rec.ended_at is None:
                rec.ended_at = time.time()
            if rec.exit_code is None and proc.returncode is not None:
                rec.exit_code = proc.returncode
            plan, rec._plan = rec._plan, None
            if plan is not None:
                if self._closed:
                    _cleanup(plan)  # quick file work; the tasks are being cancelled
                else:
                    self._tasks.spawn(asyncio.to_thread(_cleanup, plan), f"clean up {rec.id}")
            _safe(term.exited, rec.id, rec.exit_code)
            if rec._finished is not None:
                _finish_future(rec._finished)
            self._prune()

    async def _read(self, rec: CommandRecord, stream: asyncio.StreamReader, term: Terminal) -> None:
        while True:
            data = await stream.read(READ_CHUNK)
            if not data:
                break
            text = rec.feed_bytes(data)
            if text:
                _safe(term.output, rec.id, text)
                if isinstance(term, Draining):
                    try:
                        await term.drain()
                    except Exception:
                        log.exception("terminal drain failed")

    def _prune(self) -> None:
        finished = [r for r in self._records.values() if not r.running]
        excess = len(finished) - self.max_records
        for rec in finished[: max(0, excess)]:
            del self._records[rec.id]

    # -- foreground

    async def run(
        self,
        command: str,
        cwd: Path,
        timeout: float,
        terminal: Terminal | None = None,
        call_id: str = "",
    ) -> CommandRecord:
        """Run ``command`` to completion (or timeout). Cancelling the caller kills it."""
        async with self._observed(command, cwd, background=False):
            if self.runner is not None and not self._sandboxing():
                return await self._run_elsewhere(self.runner, command, cwd, timeout, call_id)
            rec = await self._spawn(command, cwd, background=False, terminal=terminal)
            assert rec._finished is not None
            try:
                await asyncio.wait_for(asyncio.shield(rec._finished), timeout)
            except TimeoutError:
                rec.timed_out = True
                await self._kill_group(rec)
                try:
                    await asyncio.wait_for(asyncio.shield(rec._finished), 10)
                except TimeoutError:
                    log.warning("command %s did not finish after being killed", rec.id)
            except asyncio.CancelledError:
                rec.cancelled = True
                self.kill_soon(rec)
                raise
        return rec

    async def _run_elsewhere(self, runner: CommandRunner, command: str, cwd: Path, timeout: float,
                             call_id: str) -> CommandRecord:
        """The record of a command the runner runs: its output is kept and paged as if it ran here."""
        if self._closed:
            raise RuntimeError("the process manager has been shut down")
        self._counters["cmd"] += 1
        rec = CommandRecord(id=f"cmd-{self._counters['cmd']}", command=command, cwd=str(cwd), background=False,
                            max_chars=self.max_record_chars)
        self._records[rec.id] = rec
        try:
            done = await runner.run(command, cwd, timeout, call_id)
        except asyncio.CancelledError:
            rec.cancelled = True
            raise
        finally:
            rec.ended_at = time.time()
            self._prune()
        rec.feed(done.output)
        rec.close_output()
        rec.timed_out = done.timed_out
        rec.exit_code = done.exit_code
        if done.exit_code is None and done.signal:
            number = getattr(signal, done.signal if done.signal.startswith("SIG") else f"SIG{done.signal}", None)
            rec.exit_code = -int(number) if number is not None else None
        return rec

    @asynccontextmanager
    async def _observed(self, command: str, cwd: Path, background: bool) -> AsyncIterator[None]:
        """The observer's ``around`` the command; its failures are logged, never raised."""
        cm = None
        if self.observer is not None:
            try:
                cm = self.observer.around(command, cwd, background)
                await cm.__aenter__()
            except Exception:
                log.exception("the command observer failed before %r", command)
                cm = None
        try:
            yield
        except BaseException as e:
            if cm is not None:
                try:
                    await cm.__aexit__(type(e), e, e.__traceback__)
                except Exception:
                    log.exception("the command observer failed after %r", command)
            raise
        if cm is not None:
            try:
                await cm.__aexit__(None, None, None)
            except Exception:
                log.exception("the command observer failed after %r", command)

    async def kill_all_foreground(self) -> None:
        """Stop every running foreground command (a cancelled turn)."""
        recs = self.foreground_running()
        for rec in recs:
            rec.killed = True
        await asyncio.gather(*(self._kill_group(r) for r in recs), return_exceptions=True)

    # -- background

    async def start(
        self, command: str, cwd: Path, terminal: Terminal | None = None
    ) -> CommandRecord:
        async with self._observed(command, cwd, background=True):
            return await self._spawn(command, cwd, background=True, terminal=terminal)

    async def wait(self, rec: CommandRecord, timeout: float | None) -> bool:
        """Wait until ``rec`` has ended; False when the timeout came first."""
        if rec._finished is None:
            return True
        try:
            await asyncio.wait_for(asyncio.shield(rec._finished), timeout)
            return True
        except TimeoutError:
            return False

    async def kill(self, record_id: str) -> CommandRecord | None:
        rec = self.get(record_id)
        if rec is None:
            return None
        if rec.running:
            rec.killed = True
            await self._kill_group(rec)
            await self.wait(rec, 5)
        return rec

    # -- stopping

    async def _kill_group(self, rec: CommandRecord) -> None:
        pgid = rec.pgid
        if pgid <= 0:
            return
        if not signal_group(pgid, signal.SIGTERM):
            return
        loop = asyncio.get_running_loop()
        deadline = loop.time() + self.kill_grace
        while loop.time() < deadline:
            await asyncio.sleep(0.05)
            if not group_alive(pgid):
                return
        signal_group(pgid, signal.SIGKILL)

    def kill_soon(self, rec: CommandRecord) -> None:
        """SIGTERM the group now and escalate in the background (usable while cancelled)."""
        if rec.pgid <= 0:
            return
        self._tasks.spawn(self._kill_group(rec), f"kill {rec.id}")

    async def shutdown(self) -> None:
        """Kill every process (foreground and background) and stop reading them."""
        self._closed = True
        running = [r for r in self._records.values() if r.running]
        for rec in running:
            rec.killed = True
        await asyncio.gather(*(self._kill_group(r) for r in running), return_exceptions=True)
        waits = [r._finished for r in running if r._finished is not None]
        if waits:
            await asyncio.wait(waits, timeout=5)
        await self._tasks.cancel_all()
        _MANAGERS.discard(self)

    def kill_all_sync(self) -> None:
        """Last resort (interpreter exit): SIGKILL every group still running."""
        for rec in self._records.values():
            if rec.running and rec.pgid > 0:
                signal_group(rec.pgid, signal.SIGKILL)


def _safe(fn: Callable[..., object], *args: object) -> None:
    try:
        fn(*args)
    except Exception:  # a broken terminal adapter must not stop a command
        log.exception("terminal callback %s failed", getattr(fn, "__name__", fn))


_MANAGERS: "weakref.WeakSet[ProcessManager]" = weakref.WeakSet()


@atexit.register
def _kill_leftovers() -> None:
    for manager in list(_MANAGERS):
        try:
            manager.kill_all_sync()
        except Exception:
            pass


def number_lines(lines: Iterable[str], start: int) -> str:
    """Numbered lines, as read_file shows them."""
    return "\n".join(numbered(n, line) for n, line in enumerate(lines, start))
