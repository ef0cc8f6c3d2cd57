"""A real ACP client for the tests, on the ``agent-client-protocol`` SDK's client side.

``AcpClient`` implements the client's methods for real: ``fs/*`` over the disk with
"open buffers" that override it (as an editor's unsaved buffers do), ``terminal/*``
with real subprocesses, and ``session/request_permission`` answered by a policy the
test sets (or held until the test answers). Everything the agent sends is recorded.

    async with acp_agent(base_url, tmp_path, client) as conn:
        await conn.initialize(protocol_version=1, client_capabilities=client.capabilities())
        ...
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import sys
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from acp import RequestError, spawn_agent_process
from acp.schema import (
    AllowedOutcome,
    ClientCapabilities,
    CreateTerminalResponse,
    DeniedOutcome,
    FileSystemCapabilities,
    KillTerminalResponse,
    ReadTextFileResponse,
    ReleaseTerminalResponse,
    RequestPermissionResponse,
    TerminalExitStatus,
    TerminalOutputResponse,
    WaitForTerminalExitResponse,
    WriteTextFileResponse,
)
from conftest import cli_env

# How a test answers a permission request: (tool_call, options) -> an option id, or
# None to answer "cancelled".
Answer = Callable[[Any, list[Any]], "str | None"]


@dataclass
class _Term:
    proc: asyncio.subprocess.Process
    output: bytearray = field(default_factory=bytearray)
    reader: asyncio.Task[None] | None = None
    released: bool = False
    killed: bool = False


class AcpClient:
    def __init__(self, *, fs: bool = True, terminal: bool = True, answer: Answer | None = None) -> None:
        self.fs = fs
        self.terminal = terminal
        self.answer: Answer = answer or (lambda call, options: "allow_once")
        self.buffers: dict[str, str] = {}  # path -> unsaved text (overrides the disk for reads)
        self.updates: list[tuple[str, Any]] = []
        self.permissions: list[Any] = []  # the tool calls asked about
        self.reads: list[str] = []
        self.writes: list[tuple[str, str]] = []
        self.terminals: dict[str, _Term] = {}
        self.created: list[Any] = []  # the terminal/create requests
        self.killed: list[str] = []
        self.hold: asyncio.Future[str | None] | None = None  # set: the next permission waits for it
        self.asked = asyncio.Event()

    def capabilities(self) -> ClientCapabilities:
        return ClientCapabilities(fs=FileSystemCapabilities(read_text_file=self.fs, write_text_file=self.fs),
                                  terminal=self.terminal)

    # -- what the agent sent --------------------------------------------------------------

    def of(self, kind: str) -> list[Any]:
        return [u for _, u in self.updates if getattr(u, "session_update", None) == kind]

    def text(self) -> str:
        return "".join(u.content.text for u in self.of("agent_message_chunk") if hasattr(u.content, "text"))

    def tool_updates(self, call_id: str) -> list[Any]:
        return [u for _, u in self.updates if getattr(u, "tool_call_id", None) == call_id]

    # -- the client's methods -----------------------------------------------------------

    async def session_update(self, session_id: str, update: Any, **kwargs: Any) -> None:
        self.updates.append((session_id, update))

    async def request_permission(self, session_id: str, tool_call: Any, options: list[Any], **kwargs: Any) -> Any:
        self.permissions.append(tool_call)
        self.asked.set()
        if self.hold is not None:
            held, self.hold = self.hold, None
            choice = await held
        else:
            choice = self.answer(tool_call, options)
        if choice is None:
            return RequestPermissionResponse(outcome=DeniedOutcome(outcome="cancelled"))
        return RequestPermissionResponse(outcome=AllowedOutcome(outcome="selected", option_id=choice))

    async def read_text_file(self, session_id: str, path: str, line: int | None = None, limit: int | None = None,
                             **kwargs: Any) -> ReadTextFileResponse:
        self.reads.append(path)
        if path in self.buffers:
            text = self.buffers[path]
        else:
            try:
                text = Path(path).read_text(encoding="utf-8")
            except FileNotFoundError:
                raise RequestError.resource_not_found(path) from None
        if line is not None or limit is not None:
            lines = text.splitlines(keepends=True)
            start = max(0, (line or 1) - 1)
            text = "".join(lines[start: start + limit if limit else None])
        return ReadTextFileResponse(content=text)

    async def write_text_file(self, session_id: str, path: str, content: str, **kwargs: Any) -> WriteTextFileResponse:
        self.writes.append((path, content))
        Path(path).parent.mkdir(parents=True, exist_ok=True)
        Path(path).write_text(content, encoding="utf-8")
        self.buffers.pop(path, None)
        return WriteTextFileResponse()

    async def create_terminal(self, session_id: str, command: str, args: list[str] | None = None,
                              env: list[Any] | None = None, cwd: str | None = None,
                              output_byte_limit: int | None = None, **kwargs: Any) -> CreateTerminalResponse:
        self.created.append({"command": command, "args": args, "cwd": cwd, "env": env})
        environ = {**os.environ, **{e.name: e.value for e in env or []}}
        proc = await asyncio.create_subprocess_exec(
            command, *(args or []), cwd=cwd, env=environ, stdout=asyncio.subprocess.PIPE,
            stderr=asyncio.subprocess.STDOUT, stdin=asyncio.subprocess.DEVNULL, start_new_session=True)
        tid = f"term-{len(self.terminals) + 1}"
        term = _Term(proc)

        async def read() -> None:
            assert proc.stdout is not None
            while chunk := await proc.stdout.read(65536):
                term.output += chunk

        term.reader = asyncio.get_running_loop().create_task(read())
        self.terminals[tid] = term
        return CreateTerminalResponse(terminal_id=tid)

    def _status(self, term: _Term) -> TerminalExitStatus | None:
        code = term.proc.returncode
        if code is None:
            return None
        return TerminalExitStatus(exit_code=code, signal=None) if code >= 0 else TerminalExitStatus(
            exit_code=None, signal=f"SIG{__import__('signal').Signals(-code).name.removeprefix('SIG')}")

    async def terminal_output(self, session_id: str, terminal_id: str, **kwargs: Any) -> TerminalOutputResponse:
        term = self.terminals[terminal_id]
        if term.proc.returncode is not None and term.reader is not None:
            await term.reader
        return TerminalOutputResponse(output=term.output.decode("utf-8", "replace"), truncated=False,
                                      exit_status=self._status(term))

    async def wait_for_terminal_exit(self, session_id: str, terminal_id: str, **kwargs: Any) -> WaitForTerminalExitResponse:
        term = self.terminals[terminal_id]
        await term.proc.wait()
        if term.reader is not None:
            await term.reader
        status = self._status(term)
        assert status is not None
        return WaitForTerminalExitResponse(exit_code=status.exit_code, signal=status.signal)

    async def kill_terminal(self, session_id: str, terminal_id: str, **kwargs: Any) -> KillTerminalResponse:
        term = self.terminals[terminal_id]
        self.killed.append(terminal_id)
        term.killed = True
        if term.proc.returncode is None:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(term.proc.pid, 9)
        return KillTerminalResponse()

    async def release_terminal(self, session_id: str, terminal_id: str, **kwargs: Any) -> ReleaseTerminalResponse:
        term = self.terminals[terminal_id]
        term.released = True
        if term.proc.returncode is None:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(term.proc.pid, 9)
        return ReleaseTerminalResponse()

    async def ext_method(self, method: str, params: dict[str, Any]) -> dict[str, Any]:
        raise RequestError.method_not_found(method)

    async def ext_notification(self, method: str, params: dict[str, Any]) -> None:
        return None


@contextlib.asynccontextmanager
async def acp_agent(base_url: str, config_home: Path, client: AcpClient, *args: str,
                    **env: str) -> AsyncIterator[Any]:
    """``codeloop acp`` in a subprocess, connected to ``client``; yields the connection."""
    # Answers to the project's trust are kept in the user's data folder outside git: this run's own.
    env.setdefault("XDG_DATA_HOME", str(config_home.parent / "xdg-data"))
    environ = cli_env(base_url, XDG_CONFIG_HOME=str(config_home), **env)
    async with spawn_agent_process(client, sys.executable, "-m", "codeloop", "acp", *args, env=environ) as (conn, proc):
        try:
            yield conn
        finally:
            if proc.returncode is None:
                with contextlib.suppress(ProcessLookupError):
                    proc.terminate()


# -- what the tests share ------------------------------------------------------------------


async def until(cond, timeout: float = 30.0) -> None:
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout
    while not cond():
        if loop.time() > deadline:
            raise AssertionError("timed out waiting")
        await asyncio.sleep(0.05)


def config(tmp_path: Path, **settings: object) -> Path:
    """The user's settings. No OS sandbox unless a test asks for one: with one, commands run
    here in it, never in the client's (unconfined) terminal (test_acp_features.py)."""
    home = tmp_path / "xdg"
    (home / "codeloop").mkdir(parents=True, exist_ok=True)
    (home / "codeloop" / "settings.json").write_text(json.dumps({"sandbox": "off", **settings}))
    return home


def workspace(tmp_path: Path, **files: str) -> Path:
    ws = tmp_path / "ws"
    ws.mkdir(exist_ok=True)
    for name, text in files.items():
        (ws / name).write_text(text)
    return ws


async def start(conn, client: AcpClient, ws: Path, **kw):
    init = await conn.initialize(protocol_version=1, client_capabilities=client.capabilities())
    new = await conn.new_session(cwd=str(ws), mcp_servers=kw.get("mcp_servers", []))
    return init, new
