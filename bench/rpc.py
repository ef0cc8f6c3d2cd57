"""A minimal LSP client over stdio for the benchmarks: framing, requests, notifications.

Lighter than the tests' pytest-lsp editor on purpose: it only decodes JSON, so under a
flood of notifications the round trips it measures are the server's, not a Python
client's deserialisation (a real editor's client is fast native or JS code).
"""

from __future__ import annotations

import asyncio
import itertools
import json
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

VSCODE_LIKE = {"events": True, "proposalReview": True, "approvals": True, "diagnostics": True, "save": True}


class RpcClient:
    def __init__(self, proc: asyncio.subprocess.Process) -> None:
        self.proc = proc
        self._ids = itertools.count(1)
        self._pending: dict[int, asyncio.Future[Any]] = {}
        self.notifications: list[tuple[str, Any]] = []
        self.on_notify: Callable[[str, Any], None] | None = None
        self.on_request: Callable[[str, Any], Any] = lambda method, params: None
        self._reader = asyncio.create_task(self._read())
        self._changed = asyncio.Event()

    @property
    def pid(self) -> int:
        return self.proc.pid

    @classmethod
    async def start(cls, root: Path, env: dict[str, str], settings: dict[str, Any] | None = None,
                    codeloop: dict[str, bool] | None = None) -> "RpcClient":
        proc = await asyncio.create_subprocess_exec(
            sys.executable, "-m", "codeloop", "lsp",
            stdin=asyncio.subprocess.PIPE, stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.DEVNULL,
            env=env, cwd=str(root), limit=64 * 1024 * 1024,
        )
        client = cls(proc)
        uri = root.resolve().as_uri()
        await client.request("initialize", {
            "processId": None,
            "rootUri": uri,
            "workspaceFolders": [{"uri": uri, "name": "ws"}],
            "capabilities": {
                "workspace": {"applyEdit": True, "workspaceEdit": {"documentChanges": True}},
                "window": {"workDoneProgress": True},
                "experimental": {"codeloop": codeloop if codeloop is not None else VSCODE_LIKE},
            },
            "initializationOptions": {"settings": settings or {}},
        })
        client.notify("initialized", {})
        return client

    # -- wire --------------------------------------------------------------------------

    def _send(self, obj: dict[str, Any]) -> None:
        body = json.dumps(obj).encode()
        assert self.proc.stdin is not None
        self.proc.stdin.write(b"Content-Length: %d\r\n\r\n%s" % (len(body), body))

    async def _read(self) -> None:
        out = self.proc.stdout
        assert out is not None
        try:
            while True:
                length = 0
                while True:
                    line = await out.readline()
                    if not line:
                        return
                    line = line.strip()
                    if not line:
                        break
                    name, _, value = line.partition(b":")
                    if name.lower() == b"content-length":
                        length = int(value)
                msg = json.loads(await out.readexactly(length))
                self._dispatch(msg)
        except (asyncio.IncompleteReadError, ConnectionError):
            return

    def _dispatch(self, msg: dict[str, Any]) -> None:
        if "id" in msg and "method" not in msg:
            fut = self._pending.pop(msg["id"], None)
            if fut is not None and not fut.done():
                if "error" in msg:
                    fut.set_exception(RuntimeError(msg["error"].get("message", "error")))
                else:
                    fut.set_result(msg.get("result"))
            return
        if "id" in msg:  # a request from the server
            try:
                res = self.on_request(msg["method"], msg.get("params"))
            except Exception as e:  # pragma: no cover - benchmark plumbing
                self._send({"jsonrpc": "2.0", "id": msg["id"], "error": {"code": -32603, "message": str(e)}})
                return
            self._send({"jsonrpc": "2.0", "id": msg["id"], "result": res})
            return
        params = msg.get("params")
        if msg["method"] == "codeloop/terminal/output" and isinstance(params, dict):
            params = {**params, "data": None, "bytes": len(params.get("data") or "")}  # don't hoard 20 MB
        self.notifications.append((msg["method"], params))
        if self.on_notify is not None:
            self.on_notify(msg["method"], params)
        self._changed.set()

    async def request(self, method: str, params: Any) -> Any:
        i = next(self._ids)
        fut: asyncio.Future[Any] = asyncio.get_running_loop().create_future()
        self._pending[i] = fut
        self._send({"jsonrpc": "2.0", "id": i, "method": method, "params": params})
        return await fut

    def notify(self, method: str, params: Any) -> None:
        self._send({"jsonrpc": "2.0", "method": method, "params": params})

    async def wait_for(self, predicate: Callable[[], Any], timeout: float = 120.0) -> Any:
        loop = asyncio.get_running_loop()
        deadline = loop.time() + timeout
        while True:
            value = predicate()
            if value:
                return value
            left = deadline - loop.time()
            if left <= 0:
                raise TimeoutError("timed out waiting for the language server")
            self._changed.clear()
            try:
                await asyncio.wait_for(self._changed.wait(), min(left, 0.2))
            except TimeoutError:
                pass

    # -- conveniences ------------------------------------------------------------------

    def open(self, path: Path, language: str = "python") -> str:
        uri = path.resolve().as_uri()
        self.notify("textDocument/didOpen", {"textDocument": {"uri": uri, "languageId": language, "version": 1,
                                                                "text": path.read_text()}})
        return uri

    def turn_events(self, turn_id: str) -> list[dict[str, Any]]:
        return [p["event"] for m, p in self.notifications if m == "codeloop/event" and p.get("turnId") == turn_id]

    async def turn_end(self, turn_id: str, timeout: float = 300.0) -> dict[str, Any]:
        return await self.wait_for(
            lambda: next((e for e in self.turn_events(turn_id) if e["type"] == "turnEnd"), None), timeout
        )

    async def stop(self) -> None:
        try:
            await asyncio.wait_for(self.request("shutdown", None), 15)
            self.notify("exit", None)
            await asyncio.wait_for(self.proc.wait(), 10)
        except (TimeoutError, RuntimeError, ConnectionError):
            if self.proc.returncode is None:
                self.proc.kill()
                await self.proc.wait()
        self._reader.cancel()
