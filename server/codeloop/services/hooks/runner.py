"""Running one hook command: an asyncio subprocess in its own process group.

The command runs under bash (``/bin/sh`` when there is no bash) in the project folder,
with the payload JSON on stdin. It is killed with its whole process group at its timeout,
or when the run is cancelled (the turn was stopped). Processes it leaves behind that keep
its output open are stopped a moment after it exits, so a stray ``sleep 1000 &`` does not
hold the turn until the timeout. Output is kept up to a cap per stream; the rest is read
and dropped so a chatty hook cannot fill memory or block on a full pipe.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import shutil
import signal
import time
from dataclasses import dataclass
from pathlib import Path

log = logging.getLogger(__name__)

OUTPUT_CAP = 256 * 1024  # bytes kept per stream
LEFTOVER_GRACE = 0.5  # seconds the pipes may stay open after the hook exited
KILL_GRACE = 2.0  # seconds to wait for the pipes to close after SIGKILL


@dataclass(frozen=True, slots=True)
class RawRun:
    exit_code: int | None  # None: it did not start, or was killed at its timeout
    stdout: str
    stderr: str
    duration: float  # seconds
    timed_out: bool = False
    error: str | None = None  # it could not be started
    stdout_cut: bool = False
    stderr_cut: bool = False
    leftovers_killed: bool = False  # it left processes holding its output; they were stopped


def shell_argv(command: str) -> list[str]:
    bash = shutil.which("bash")
    return [bash, "-c", command] if bash else ["/bin/sh", "-c", command]


class _ExitProtocol(asyncio.subprocess.SubprocessStreamProtocol):
    """The stream protocol plus a future set when the process itself exits.

    ``Process.wait()`` on 3.11 also waits until every holder of the output pipes has
    closed them, which a backgrounded grandchild may never do.
    """

    def __init__(self, loop: asyncio.AbstractEventLoop) -> None:
        super().__init__(limit=2**16, loop=loop)
        self.exited: asyncio.Future[None] = loop.create_future()

    def process_exited(self) -> None:
        super().process_exited()
        if not self.exited.done():
            self.exited.set_result(None)


def _kill_group(proc: asyncio.subprocess.Process) -> None:
    with contextlib.suppress(ProcessLookupError, PermissionError, OSError):
        os.killpg(proc.pid, signal.SIGKILL)


async def _read_capped(stream: asyncio.StreamReader | None, cap: int) -> tuple[bytes, bool]:
    if stream is None:
        return b"", False
    kept = bytearray()
    cut = False
    while True:
        chunk = await stream.read(65536)
        if not chunk:
            break
        room = cap - len(kept)
        if room > 0:
            kept += chunk[:room]
        if len(chunk) > max(room, 0):
            cut = True
    return bytes(kept), cut


def _result(task: asyncio.Task) -> tuple[bytes, bool]:
    if not task.done() or task.cancelled():
        return b"", False
    if task.exception() is not None:
        log.warning("reading a hook's output failed: %s", task.exception())
        return b"", False
    return task.result()


async def _feed(proc: asyncio.subprocess.Process, data: bytes) -> None:
    assert proc.stdin is not None
    try:
        proc.stdin.write(data)
        await proc.stdin.drain()
    except (BrokenPipeError, ConnectionResetError):
        pass  # the hook does not read its input: fine
    finally:
        with contextlib.suppress(Exception):
            proc.stdin.close()


async def run_hook_command(command: str, stdin: bytes, cwd: Path, env: dict[str, str], timeout: float,
                           cap: int = OUTPUT_CAP) -> RawRun:
    start = time.monotonic()
    loop = asyncio.get_running_loop()
    try:
        transport, protocol = await loop.subprocess_exec(
            lambda: _ExitProtocol(loop),
            *shell_argv(command),
            stdin=asyncio.subprocess.PIPE,
            stdout=asyncio.subprocess.PIPE,
            stderr=asyncio.subprocess.PIPE,
            cwd=str(cwd),
            env=env,
            start_new_session=True,  # its own process group: killed as a whole
        )
    except (OSError, ValueError) as e:
        return RawRun(None, "", "", time.monotonic() - start, error=f"cannot start: {e}")
    proc = asyncio.subprocess.Process(transport, protocol, loop)

    feeder = asyncio.create_task(_feed(proc, stdin))
    out_task = asyncio.create_task(_read_capped(proc.stdout, cap))
    err_task = asyncio.create_task(_read_capped(proc.stderr, cap))
    timed_out = leftovers = False
    try:
        try:
            await asyncio.wait_for(asyncio.shield(protocol.exited), timeout)
        except asyncio.TimeoutError:
            timed_out = True
            _kill_group(proc)
            await protocol.exited
        # The hook is gone; its pipes close unless something it started still holds them.
        grace = KILL_GRACE if timed_out else LEFTOVER_GRACE
        done, _ = await asyncio.wait({out_task, err_task}, timeout=grace)
        if len(done) < 2:
            leftovers = not timed_out
            _kill_group(proc)
            await asyncio.wait({out_task, err_task}, timeout=KILL_GRACE)
    except asyncio.CancelledError:
        _kill_group(proc)
        for t in (feeder, out_task, err_task):
            t.cancel()
        raise
    finally:
        if not feeder.done():
            feeder.cancel()
        for t in (out_task, err_task):
            if not t.done():
                t.cancel()
        with contextlib.suppress(asyncio.CancelledError, Exception):
            await feeder
        if transport.get_returncode() is not None:
            transport.close()
    out, out_cut = _result(out_task)
    err, err_cut = _result(err_task)
    return RawRun(
        exit_code=None if timed_out else transport.get_returncode(),
        stdout=out.decode("utf-8", "replace"),
        stderr=err.decode("utf-8", "replace"),
        duration=time.monotonic() - start,
        timed_out=timed_out,
        stdout_cut=out_cut,
        stderr_cut=err_cut,
        leftovers_killed=leftovers,
    )
