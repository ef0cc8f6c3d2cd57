"""Commands in the client's terminal: a ``core.ports.CommandRunner`` over ``terminal/*``.

When the client offers terminals, the process manager hands it every foreground
command (background processes stay here). The command runs in the workspace through
bash, with the environment codeloop gives its own commands (no pager, no password
prompts); the terminal is embedded in the tool call (``terminal`` content), so the
user watches it live. Its output, once it exits, is the tool's result, paged later
like any command's. A command that outlives its timeout, or whose turn is cancelled,
is killed (``terminal/kill``); every terminal is released (``terminal/release``).
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


__all__ = ["ClientTerminalRunner"]
