"""Helpers for the MCP client tests: configs for the edge server, HTTP servers in
subprocesses, waiting for conditions."""

from __future__ import annotations

import asyncio
import socket
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path

from codeloop.services.mcp import ServerConfig

EDGE = str(Path(__file__).resolve().parent / "mcp_servers" / "edge_server.py")
BIN = Path(sys.executable).parent


def edge(name: str, *flags: str, source: str = "user", env: dict[str, str] | None = None,
         label: str | None = None) -> ServerConfig:
    """The edge server over stdio; ``--name`` is ``label`` (default: the server's name), which
    also marks its command line."""
    args = (EDGE, "--name", label or name, *flags)
    return ServerConfig(name=name, transport="stdio", source=source, origin="test", command=sys.executable,  # type: ignore[arg-type]
                        args=args, env=env or {}, raw={"command": "python", "args": list(args)})


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class HttpServer:
    """The edge server over Streamable HTTP (or SSE) in a subprocess."""

    def __init__(self, *flags: str, transport: str = "http", port: int | None = None) -> None:
        self.flags = flags
        self.transport = transport
        self.port = port or free_port()
        self.proc: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}/" + ("sse" if self.transport == "sse" else "mcp")

    def start(self, timeout: float = 30.0) -> "HttpServer":
        self.proc = subprocess.Popen(
            [sys.executable, EDGE, "--transport", self.transport, "--port", str(self.port), *self.flags],
            stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
        )
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(f"the HTTP edge server exited with {self.proc.returncode}")
            try:
                socket.create_connection(("127.0.0.1", self.port), 0.2).close()
                return self
            except OSError:
                time.sleep(0.05)
        raise RuntimeError("the HTTP edge server did not start")

    def stop(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait(10)
        self.proc = None


async def wait_for(cond: Callable[[], object], timeout: float = 20.0, step: float = 0.05) -> None:
    deadline = time.monotonic() + timeout
    while True:
        if cond():
            return
        if time.monotonic() > deadline:
            raise AssertionError(f"condition not met within {timeout} s")
        await asyncio.sleep(step)


# -- end to end (the CLI and the language server with real servers) ---------------------------


def edge_entry(name: str = "edge", *flags: str) -> dict:
    """A ``mcpServers`` entry (Claude Code's format) for the edge server over stdio."""
    return {"command": sys.executable, "args": [EDGE, "--name", name, *flags]}


class WaitForTools:
    """A scenario that waits for tools to appear: while a request lacks any of ``names``, it
    answers with a harmless read-only call (list_dir), as a model would look around; then
    ``then`` answers (a Script, usually), from then on. ``waited`` counts the requests that
    lacked them."""

    def __init__(self, names: list[str], then) -> None:
        self.names = names
        self.then = then
        self.waited = 0
        self.ready = False

    def __call__(self, req):
        from scripted_model import Call, ToolCalls

        self.ready = self.ready or set(self.names) <= set(req.tool_names())
        if not self.ready:
            self.waited += 1
            time.sleep(0.3)
            return ToolCalls([Call("list_dir", {"path": "."})])
        return self.then(req)
