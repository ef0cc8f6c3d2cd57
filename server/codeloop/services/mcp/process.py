"""A stdio MCP server process: its own process group, stdin/stdout pipes, stderr to a file.

The process is started with ``start_new_session=True``, so its pid is its process group
id and everything it starts (``npx`` → ``node`` → workers) is in that group unless it
leaves on purpose. :meth:`StdioProcess.stop` follows the MCP shutdown sequence (close
stdin, wait, SIGTERM, wait, SIGKILL) against the whole group, and also when the leader
exited on its own but left members behind. Nothing here knows the MCP SDK: it moves
lines of bytes.
"""

from __future__ import annotations

import asyncio
import errno
import logging
import os
import signal
from collections.abc import AsyncIterator, Callable
from pathlib import Path
from typing import Any

log = logging.getLogger(__name__)

READ_CHUNK = 65536
# The longest line (one JSON-RPC message) kept; an image result is base64 in one line.
MAX_LINE = 64 * 1024 * 1024
STDIN_GRACE = 2.0  # after stdin closes, before SIGTERM
TERM_GRACE = 2.0  # after SIGTERM, before SIGKILL
_POLL = 0.02


def group_alive(pgid: int) -> bool:
    """Whether any process of the group is left (zombies count until reaped)."""
    try:
        os.killpg(pgid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def signal_group(pgid: int, sig: int) -> bool:
    """Send ``sig`` to the group; False when the group is gone."""
    try:
        os.killpg(pgid, sig)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


class _Protocol(asyncio.subprocess.SubprocessStreamProtocol):
    """The stream protocol, plus a future resolved as soon as the process exits (not when
    every holder of its pipes has closed them, which is what ``Process.wait`` waits for)."""

    def __init__(self, loop: asyncio.AbstractEventLoop) -> None:
        super().__init__(limit=READ_CHUNK, loop=loop)
        self.exited: asyncio.Future[None] = loop.create_future()

    def process_exited(self) -> None:
        super().process_exited()
        if not self.exited.done():
            self.exited.set_result(None)


class StdioProcess:
    """One server process. ``start``, then ``lines()`` / ``write()``, then ``stop()``."""

    def __init__(self, argv: list[str], *, env: dict[str, str], cwd: Path, stderr_path: Path,
                 sandbox: Any = None) -> None:
        self.argv = argv
        self.env = env
        self.cwd = cwd
        self.stderr_path = stderr_path
        self.sandbox = sandbox  # a CommandSandbox (setting sandbox.mcp), or None
        self._plan: Any = None
        self.pid: int | None = None
        self._proc: asyncio.subprocess.Process | None = None
        self._protocol: _Protocol | None = None
        self._group_done = False

    @property
    def returncode(self) -> int | None:
        return self._proc.returncode if self._proc is not None else None

    @property
    def running(self) -> bool:
        return self._proc is not None and self._proc.returncode is None

    @property
    def finished(self) -> bool:
        """The process and its whole group are gone (nothing left to kill)."""
        return self._proc is None or self._group_done

    async def start(self) -> None:
        """Spawn the process. Raises OSError (command not found, not executable)."""
        loop = asyncio.get_running_loop()
        self.stderr_path.parent.mkdir(parents=True, exist_ok=True)
        argv, env, cwd, fds = self.argv, self.env, str(self.cwd), ()
        if self.sandbox is not None:  # SandboxRefused ("on" and no sandbox) reaches the caller
            self._plan = await asyncio.to_thread(self.sandbox.prepare, self.argv, self.cwd, self.env)
            argv, env, cwd, fds = self._plan.argv, self._plan.env, self._plan.cwd, self._plan.pass_fds
        fd = os.open(self.stderr_path, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o600)
        try:
            transport, protocol = await loop.subprocess_exec(
                lambda: _Protocol(loop),
                *argv,
                stdin=asyncio.subprocess.PIPE,
                stdout=asyncio.subprocess.PIPE,
                stderr=fd,
                cwd=cwd,
                env=env,
                pass_fds=fds,
                start_new_session=True,
            )
        except BaseException:
            self._release()
            raise
        finally:
            os.close(fd)
        self._protocol = protocol
        self._proc = asyncio.subprocess.Process(transport, protocol, loop)
        self.pid = self._proc.pid

    async def lines(self, on_overlong: Callable[[int], None] | None = None) -> AsyncIterator[bytes]:
        """The lines the process writes to stdout, without their newline, until EOF.
        A line longer than MAX_LINE is dropped (``on_overlong(size)`` is told)."""
        assert self._proc is not None and self._proc.stdout is not None
        stdout = self._proc.stdout
        buf = bytearray()
        skipping = 0  # bytes of an overlong line dropped so far
        while True:
            chunk = await stdout.read(READ_CHUNK)
            if not chunk:
                break
            start = 0
            while True:
                nl = chunk.find(b"\n", start)
                if nl < 0:
                    rest = chunk[start:]
                    if skipping:
                        skipping += len(rest)
                    elif len(buf) + len(rest) > MAX_LINE:
                        skipping = len(buf) + len(rest)
                        buf.clear()
                    else:
                        buf += rest
                    break
                piece = chunk[start:nl]
                start = nl + 1
                if skipping:
                    if on_overlong is not None:
                        on_overlong(skipping + len(piece))
                    skipping = 0
                    continue
                if len(buf) + len(piece) > MAX_LINE:
                    size = len(buf) + len(piece)
                    buf.clear()
                    if on_overlong is not None:
                        on_overlong(size)
                    continue
                buf += piece
                line = bytes(buf)
                buf.clear()
                yield line
        if buf and not skipping:
            yield bytes(buf)

    async def write(self, data: bytes) -> None:
        """Write to stdin. Raises ConnectionError / BrokenPipeError when the process is gone."""
        assert self._proc is not None and self._proc.stdin is not None
        stdin = self._proc.stdin
        if stdin.is_closing():
            raise BrokenPipeError(errno.EPIPE, "the server's stdin is closed")
        stdin.write(data)
        await stdin.drain()

    async def wait_exit(self, timeout: float | None = None) -> bool:
        """Wait until the leader exits; False on timeout."""
        if self._protocol is None:
            return True
        try:
            await asyncio.wait_for(asyncio.shield(self._protocol.exited), timeout)
        except TimeoutError:
            return False
        return True

    async def stop(self, stdin_grace: float = STDIN_GRACE, term_grace: float = TERM_GRACE) -> None:
        """Close stdin, give the server ``stdin_grace`` to exit, then SIGTERM the whole
        group, then SIGKILL what is left after ``term_grace``. Also kills what the leader
        left behind when it exited by itself. Safe to call more than once."""
        if self._proc is None or self._group_done:
            return
        pgid = self.pid
        assert pgid is not None
        try:
            if self._proc.stdin is not None and not self._proc.stdin.is_closing():
                self._proc.stdin.close()
            exited = await self.wait_exit(stdin_grace)
            if exited and not group_alive(pgid):
                return
            if not signal_group(pgid, signal.SIGTERM):
                return
            loop = asyncio.get_running_loop()
            deadline = loop.time() + term_grace
            while loop.time() < deadline:
                await asyncio.sleep(_POLL)
                if not group_alive(pgid):
                    return
            signal_group(pgid, signal.SIGKILL)
            await self.wait_exit(2.0)
        finally:
            self._close_transport()
            self._group_done = self._proc.returncode is not None and not group_alive(pgid)
            if self._group_done:
                self._release()

    def _release(self) -> None:
        """The sandbox's plan, once the group has ended (quick file work)."""
        plan, self._plan = self._plan, None
        if plan is not None:
            try:
                plan.cleanup()
            except Exception:
                log.exception("cleaning up a sandboxed MCP server failed")

    def kill_now(self) -> None:
        """SIGKILL the whole group at once (synchronous: usable from anywhere, even while
        cancelled). The last resort when ``stop`` could not run."""
        if self._proc is None or self._group_done or self.pid is None:
            return
        if self._proc.returncode is None or group_alive(self.pid):
            signal_group(self.pid, signal.SIGKILL)
        self._close_transport()
        self._group_done = True
        self._release()

    def _close_transport(self) -> None:
        proc = self._proc
        transport = getattr(proc, "_transport", None)
        if transport is not None:
            try:
                transport.close()
            except (PermissionError, ProcessLookupError):
                pass
