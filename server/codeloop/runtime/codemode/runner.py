"""Running one code-mode program: a ``python -I`` subprocess in the sandbox, its tool calls
served over two inherited pipes, its output kept (head and tail), its limits enforced.

Limits: ``timeout`` seconds of the program's own time (the time its tool calls take on the
host, waiting for the user included, is not counted; an RLIMIT_CPU a little above it backs it
up), ``memory`` bytes of address space, ``max_calls`` tool calls (the next one raises
ToolCallLimit in the program and the run ends as "limit"). The workspace is read-only to the
program (its changes are tool calls, reviewed like any other); under the sandbox it has no
network and only a private temp dir to write.
"""

from __future__ import annotations

import asyncio
import codecs
import json
import logging
import math
import os
import signal
import sys
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from codeloop.core.ports import CommandSandbox, SandboxRefused, SpawnPlan
from codeloop.runtime.codemode.stubs import MODULE

log = logging.getLogger(__name__)

CHILD = Path(__file__).with_name("child.py")
HEAD_CHARS = 6_000
TAIL_CHARS = 6_000
MAX_REQUEST = 64 * 1024 * 1024  # one tool call's JSON (a whole file's new content)
DEFAULT_MEMORY = 2 << 30
EXIT_GRACE = 5.0  # seconds for the program to exit once it said it is done
PASS_ENV = ("PATH", "HOME", "LANG", "LC_ALL", "LC_CTYPE", "TERM", "TZ", "TMPDIR")

# (tool name, arguments, call number) -> (status, text, one-line summary)
Caller = Callable[[str, dict[str, Any], int], Awaitable[tuple[str, str, str]]]


class Capture:
    """A stream's first and last characters, and how much there was."""

    def __init__(self, head: int = HEAD_CHARS, tail: int = TAIL_CHARS) -> None:
        self.head_max, self.tail_max = head, tail
        self.head = ""
        self.tail = ""
        self.total = 0

    def add(self, text: str) -> None:
        self.total += len(text)
        room = self.head_max - len(self.head)
        if room > 0:
            self.head += text[:room]
            text = text[room:]
        if text:
            self.tail = (self.tail + text)[-self.tail_max:]

    @property
    def cut(self) -> int:
        return self.total - len(self.head) - len(self.tail)

    def text(self) -> str:
        if not self.cut:
            return self.head + self.tail
        return f"{self.head}\n[... {self.cut:,} characters cut ...]\n{self.tail}"


@dataclass
class CallRecord:
    n: int
    tool: str
    args: dict[str, Any]
    status: str  # ok, error, denied, limit, cancelled
    summary: str


@dataclass
class CodeRun:
    ending: str  # ok, error, timeout, limit, refused, cancelled
    why: str = ""  # one line on how it ended
    stdout: Capture = field(default_factory=Capture)
    stderr: Capture = field(default_factory=Capture)
    value_json: str | None = None
    value_type: str = ""
    value_exact: bool = True
    value_cut: int = 0
    error: str = ""
    traceback: str = ""
    calls: list[CallRecord] = field(default_factory=list)
    seconds: float = 0.0  # the program's own time
    wall: float = 0.0
    exit_code: int | None = None
    sandboxed: bool = False
    finished: bool = False  # the program said how it ended


def _env() -> dict[str, str]:
    return {k: os.environ[k] for k in PASS_ENV if k in os.environ} | {"PYTHONIOENCODING": "utf-8"}


def _kill(pid: int) -> None:
    try:
        os.killpg(pid, signal.SIGKILL)
    except OSError:
        pass


async def _pipe_streams(read_fd: int, write_fd: int) -> tuple[asyncio.StreamReader, asyncio.StreamWriter]:
    loop = asyncio.get_running_loop()
    reader = asyncio.StreamReader(limit=MAX_REQUEST)
    await loop.connect_read_pipe(lambda: asyncio.StreamReaderProtocol(reader), os.fdopen(read_fd, "rb", 0))
    transport, protocol = await loop.connect_write_pipe(asyncio.streams.FlowControlMixin, os.fdopen(write_fd, "wb", 0))
    return reader, asyncio.StreamWriter(transport, protocol, None, loop)


async def _prepare(sandbox: CommandSandbox, argv: list[str], cwd: Path, fds: tuple[int, ...],
                   limits: dict[str, int]) -> SpawnPlan:
    task = asyncio.ensure_future(asyncio.to_thread(
        sandbox.prepare, argv, cwd, _env(), pass_fds=fds, rlimits=limits, workspace_writable=False, network=False))
    try:
        return await asyncio.shield(task)
    except asyncio.CancelledError:
        task.add_done_callback(lambda t: None if t.cancelled() or t.exception() else t.result().cleanup())
        raise


async def run_program(program: str, module: str, *, sandbox: CommandSandbox, cwd: Path, timeout: float,
                      max_calls: int, call: Caller, memory: int = DEFAULT_MEMORY) -> CodeRun:
    """Run ``program`` with ``module`` as ``codeloop_tools``; every tool call goes to ``call``.
    Never raises (but CancelledError, after killing the program): every ending is a CodeRun."""
    run = CodeRun("error")
    loop = asyncio.get_running_loop()
    started = loop.time()
    req_r, req_w = os.pipe()  # the program's requests
    rsp_r, rsp_w = os.pipe()  # the host's answers
    child_fds: tuple[int, ...] = (req_w, rsp_r)
    argv = [_python(), "-I", "-u", "-c", CHILD.read_text(encoding="utf-8"), str(req_w), str(rsp_r)]
    limits = {"cpu": math.ceil(timeout) + 2, "as": int(memory)}
    plan: SpawnPlan | None = None
    proc: asyncio.subprocess.Process | None = None
    try:
        try:
            plan = await _prepare(sandbox, argv, cwd, child_fds, limits)
        except SandboxRefused as e:
            run.ending, run.why = "refused", str(e)
            return run
        run.sandboxed = bool(getattr(plan, "sandboxed", False))
        try:
            proc = await asyncio.create_subprocess_exec(
                *plan.argv, cwd=plan.cwd, env=plan.env, pass_fds=plan.pass_fds, start_new_session=True,
                stdin=asyncio.subprocess.DEVNULL, stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE)
        except OSError as e:
            run.why = f"the program could not start: {e.strerror or e}"
            return run
        finally:
            for fd in child_fds:
                os.close(fd)
            child_fds = ()
        reader, writer = await _pipe_streams(req_r, rsp_w)
        req_r = rsp_w = -1
        outputs = [asyncio.ensure_future(_drain(proc.stdout, run.stdout)),
                   asyncio.ensure_future(_drain(proc.stderr, run.stderr))]
        try:
            writer.write((json.dumps({"moduleName": MODULE, "module": module, "program": program}) + "\n").encode())
            await _serve(run, reader, writer, proc, timeout, max_calls, call)
            if run.ending == "timeout":
                _kill(proc.pid)
            try:
                await asyncio.wait_for(proc.wait(), EXIT_GRACE)
            except TimeoutError:
                _kill(proc.pid)
                await proc.wait()
            run.exit_code = proc.returncode
            _kill(proc.pid)  # what the program left running in its group
            await asyncio.wait(outputs, timeout=2.0)
        finally:
            for t in outputs:
                t.cancel()
            writer.close()
        _ending_from_exit(run, timeout)
        return run
    except asyncio.CancelledError:
        if proc is not None:
            _kill(proc.pid)
        run.ending = "cancelled"
        raise
    finally:
        for fd in (*child_fds, req_r, rsp_w):
            if fd >= 0:
                try:
                    os.close(fd)
                except OSError:
                    pass
        if plan is not None:
            try:
                await asyncio.shield(asyncio.to_thread(plan.cleanup))
            except asyncio.CancelledError:
                pass
        run.wall = round(loop.time() - started, 3)


async def _serve(run: CodeRun, reader: asyncio.StreamReader, writer: asyncio.StreamWriter,
                 proc: asyncio.subprocess.Process, timeout: float, max_calls: int, call: Caller) -> None:
    """Answer the program's calls until it says it is done, ends, or runs out of time."""
    loop = asyncio.get_running_loop()
    t0 = loop.time()
    in_calls = 0.0
    limit_hit = False
    final: dict[str, Any] | None = None
    while True:
        own = loop.time() - t0 - in_calls
        try:
            line = await asyncio.wait_for(reader.readline(), max(0.0, timeout - own))
        except TimeoutError:
            run.ending, run.why = "timeout", f"the program ran for its limit of {timeout:g} s and was killed"
            break
        except (ValueError, asyncio.LimitOverrunError):
            run.ending, run.why = "error", f"a tool call was larger than {MAX_REQUEST // (1024 * 1024)} MB"
            _kill(proc.pid)
            break
        if not line:
            break
        try:
            msg = json.loads(line)
            if not isinstance(msg, dict):
                raise ValueError("not an object")
        except ValueError:
            run.ending, run.why = "error", "the program wrote something that is not a tool call on the tools' channel"
            _kill(proc.pid)
            break
        if "done" in msg:  # the bootstrap's last word: the program has finished
            final = msg["done"] if isinstance(msg["done"], dict) else {}
            run.finished = True
            break
        n = len(run.calls) + 1
        name = str(msg.get("tool", ""))
        raw_args = msg.get("args")
        args: dict[str, Any] = raw_args if isinstance(raw_args, dict) else {}
        if n > max_calls:
            limit_hit = True
            status, text, summary = "limit", f"the program may make at most {max_calls} tool calls", "not run: limit"
        else:
            started = loop.time()
            status, text, summary = await call(name, args, n)
            in_calls += loop.time() - started
        run.calls.append(CallRecord(n, name, args, status, summary))
        writer.write((json.dumps({"id": msg.get("id"), "status": status, "text": text}) + "\n").encode())
        try:
            await writer.drain()
        except (ConnectionError, BrokenPipeError):
            break
    run.seconds = round(loop.time() - t0 - in_calls, 3)
    if run.ending == "timeout" or run.why:
        return
    if final is not None:
        run.ending = str(final.get("status") or "error")
        run.error = str(final.get("error") or "")
        run.traceback = str(final.get("traceback") or "")
        if "valueJson" in final:
            run.value_json = str(final["valueJson"])
            run.value_type = str(final.get("valueType") or "")
            run.value_exact = bool(final.get("valueExact", True))
            run.value_cut = int(final.get("valueCut") or 0)
    if limit_hit:
        run.ending = "limit"
        run.why = f"the program tried more than {max_calls} tool calls (the limit); it was stopped at the first one over"


def _ending_from_exit(run: CodeRun, timeout: float) -> None:
    """How a program that did not say how it ended ended (killed, crashed)."""
    if run.why or run.finished:
        return
    code = run.exit_code
    sig = -code if code is not None and code < 0 else code - 128 if code is not None and code > 128 else 0
    if sig == signal.SIGXCPU:
        run.ending = "timeout"
        run.why = f"the program used its {math.ceil(timeout) + 2} s of CPU time and was killed"
    elif sig:
        name = signal.Signals(sig).name if sig in {s.value for s in signal.Signals} else f"signal {sig}"
        run.ending = "error"
        run.why = f"the program was killed ({name})" + ("; out of memory?" if sig == signal.SIGKILL else "")
    else:
        run.ending = "error"
        run.why = f"the program exited with code {code} before it finished" if code else \
            "the program ended without saying how"


async def _drain(stream: asyncio.StreamReader | None, into: Capture) -> None:
    if stream is None:
        return
    decoder = codecs.getincrementaldecoder("utf-8")("replace")
    while True:
        data = await stream.read(65536)
        if not data:
            into.add(decoder.decode(b"", True))
            return
        into.add(decoder.decode(data))


def _python() -> str:
    """The interpreter running codeloop runs the programs (in isolated mode: no site, no env)."""
    return os.path.realpath(sys.executable)


__all__ = ["CallRecord", "Capture", "CodeRun", "run_program"]
