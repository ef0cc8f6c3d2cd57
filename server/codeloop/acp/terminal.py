"""Commands and the client's terminal.

``ClientTerminalRunner`` (a ``core.ports.CommandRunner`` over ``terminal/*``): when the
client offers terminals and no OS sandbox is active, the process manager hands it every
foreground command (background processes stay here; with a sandbox every command runs
here, in it: the client's terminal is not confined). The command runs in the workspace
through bash, with the environment codeloop gives its own commands (no pager, no
password prompts); the terminal is embedded in the tool call (``terminal`` content), so
the user watches it live. Its output, once it exits, is the tool's result, paged later
like any command's. A command that outlives its timeout, or whose turn is cancelled,
is killed (``terminal/kill``); every terminal is released (``terminal/release``).

``LiveOutput`` (the ``Terminal`` port): a foreground command that runs here (in the
sandbox, or for a client without terminals) shows its output in its tool call as it
comes, the last ``LIVE_LINES`` lines at most every ``LIVE_EVERY`` seconds; when the call
ends its content is the command's result.
"""

from __future__ import annotations

import asyncio
import logging
from pathlib import Path

from acp.schema import EnvVariable

from codeloop.acp.link import SessionLink
from codeloop.core.ports import CommandRun
from codeloop.tools.processes import EXTRA_ENV, SHELL

log = logging.getLogger(__name__)

OUTPUT_LIMIT = 4 * 1024 * 1024  # bytes the client keeps (it drops the oldest beyond this)
KILL_WAIT = 10.0  # seconds a killed command has to exit before its output is read anyway
LIVE_LINES = 40  # lines of a command's output shown in its tool call while it runs here
LIVE_EVERY = 0.25  # seconds between two updates of it


class ClientTerminalRunner:
    def __init__(self, link: SessionLink, *, output_limit: int = OUTPUT_LIMIT) -> None:
        self.link = link
        self.output_limit = output_limit

    async def run(self, command: str, cwd: Path, timeout: float, call_id: str = "") -> CommandRun:
        link = self.link
        await link.outbox.flush()  # the tool call first, then its terminal
        try:
            created = await link.conn.create_terminal(
                session_id=link.session_id, command=SHELL or "bash", args=["-c", command], cwd=str(cwd),
                env=[EnvVariable(name=k, value=v) for k, v in EXTRA_ENV.items()], output_byte_limit=self.output_limit,
            )
        except asyncio.CancelledError:
            raise
        except Exception as e:
            raise OSError(f"the editor's terminal could not start it ({e})") from e
        tid = created.terminal_id
        view = link.calls.get(call_id)
        if view is not None:
            view.terminal_id = tid
            link.show(call_id)
        try:
            timed_out = False
            try:
                exit_status = await asyncio.wait_for(self._wait(tid), timeout)
            except TimeoutError:
                timed_out = True
                await self._kill(tid)
                try:
                    exit_status = await asyncio.wait_for(self._wait(tid), KILL_WAIT)
                except TimeoutError:
                    exit_status = None
            out = await link.conn.terminal_output(session_id=link.session_id, terminal_id=tid)
        except asyncio.CancelledError:
            # Stopped mid-command: kill it there and let go of the terminal, whatever happens to us.
            link.tasks.spawn(self._stop(tid), f"stop terminal {tid}")
            raise
        except Exception as e:
            link.tasks.spawn(self._stop(tid), f"stop terminal {tid}")
            raise OSError(f"the editor's terminal failed ({e})") from e
        link.tasks.spawn(self._release(tid), f"release terminal {tid}")
        status = out.exit_status or exit_status
        output = out.output
        if out.truncated:
            output = f"[... the editor's terminal kept only the last {self.output_limit // 1024:,} KB of the output]\n" + output
        return CommandRun(
            output=output,
            exit_code=getattr(status, "exit_code", None),
            signal=getattr(status, "signal", None),
            timed_out=timed_out,
            truncated=bool(out.truncated),
        )

    async def _wait(self, tid: str) -> object:
        return await self.link.conn.wait_for_terminal_exit(session_id=self.link.session_id, terminal_id=tid)

    async def _kill(self, tid: str) -> None:
        try:
            await self.link.conn.kill_terminal(session_id=self.link.session_id, terminal_id=tid)
        except Exception as e:
            log.warning("terminal/kill %s failed: %s", tid, e)

    async def _release(self, tid: str) -> None:
        try:
            await self.link.conn.release_terminal(session_id=self.link.session_id, terminal_id=tid)
        except Exception as e:
            log.info("terminal/release %s failed: %s", tid, e)

    async def _stop(self, tid: str) -> None:
        await self._kill(tid)
        await self._release(tid)


class LiveOutput:
    def __init__(self, link: SessionLink, *, lines: int = LIVE_LINES, every: float = LIVE_EVERY) -> None:
        self.link = link
        self.lines = lines
        self.every = every
        self._calls: dict[str, str] = {}  # the process manager's terminal id -> the tool call
        self._timers: dict[str, asyncio.TimerHandle] = {}

    def started(self, terminal_id: str, command: str, cwd: str, background: bool) -> None:
        if background:
            return
        taken = set(self._calls.values())
        # The call that runs this command (the latest; foreground commands run one at a time).
        for call_id, view in reversed(self.link.calls.items()):
            if view.command == command and view.shown and view.terminal_id is None and call_id not in taken:
                self._calls[terminal_id] = call_id
                return

    def output(self, terminal_id: str, chunk: str) -> None:
        call_id = self._calls.get(terminal_id)
        view = self.link.calls.get(call_id) if call_id is not None else None
        if call_id is None or view is None:
            return
        text = view.live + chunk
        if text.count("\n") > self.lines:
            text = "\n".join(text.split("\n")[-self.lines - 1:])
        view.live = text
        if call_id not in self._timers:
            self._timers[call_id] = asyncio.get_running_loop().call_later(self.every, self._show, call_id)

    def exited(self, terminal_id: str, exit_code: int | None) -> None:
        call_id = self._calls.pop(terminal_id, None)
        timer = self._timers.pop(call_id, None) if call_id is not None else None
        if timer is not None:
            timer.cancel()  # the call's end shows the whole result

    def _show(self, call_id: str) -> None:
        self._timers.pop(call_id, None)
        self.link.show(call_id)


__all__ = ["ClientTerminalRunner", "LiveOutput"]
