"""The language server survives anything its client sends.

The framing reader alone (in process, fast), then the real ``codeloop lsp`` over pipes:
hostile framing (a 2 MB header line, 20 MB of JSON without headers, random bytes, wrong
Content-Length), mistyped params, requests before ``initialize`` and after ``shutdown``;
every request gets a response and the server keeps serving. Hypothesis drives the last part.
"""

from __future__ import annotations

import asyncio
import json
import queue
import re
import subprocess
import threading
import time
from pathlib import Path
from typing import Any

import pytest
from conftest import CODELOOP, cli_env
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from codeloop.lsp.transport import MAX_HEADER, NOT_JSON, FrameReader


def frame(payload: Any, length: int | None = None) -> bytes:
    body = payload if isinstance(payload, bytes) else json.dumps(payload).encode()
    return b"Content-Length: %d\r\n\r\n" % (len(body) if length is None else length) + body


def request(msg_id: Any, method: str, params: Any = None) -> dict[str, Any]:
    out: dict[str, Any] = {"jsonrpc": "2.0", "id": msg_id, "method": method}
    if params is not None:
        out["params"] = params
    return out


# -- the framing reader alone ------------------------------------------------------------


def read_all(data: bytes, chunk: int = 4096, stall: float = 0.05) -> list[Any]:
    pieces = [data[i : i + chunk] for i in range(0, len(data), chunk)]

    async def read() -> bytes:
        return pieces.pop(0) if pieces else b""

    async def main() -> list[Any]:
        reader = FrameReader(read, stall=stall)
        out = []
        while (got := await reader.next_message()) is not None:
            out.append(got[0] if got[0] is not NOT_JSON else ("junk", got[1]))
        return out

    return asyncio.run(main())


def test_reader_reads_frames_split_anywhere() -> None:
    data = b"".join(frame({"n": i, "text": "é" * i}) for i in range(50))
    for chunk in (1, 7, 4096):
        assert read_all(data, chunk) == [{"n": i, "text": "é" * i} for i in range(50)]


def test_reader_skips_huge_headers_and_headerless_json() -> None:
    junk_header = b"X-Junk: " + b"a" * 2_000_000 + b"\r\n"
    headerless = json.dumps({"jsonrpc": "2.0", "id": 9, "method": "x", "params": {"blob": "b" * 20_000_000}}).encode()
    data = junk_header + frame({"ok": 1}) + headerless + frame({"ok": 2}) + b"\x00\xff" * 5000 + frame({"ok": 3})
    assert read_all(data, 65536) == [{"ok": 1}, {"ok": 2}, {"ok": 3}]


def test_reader_recovers_from_wrong_lengths() -> None:
    good = {"jsonrpc": "2.0", "id": 1, "method": "m"}
    body = json.dumps(good).encode()
    too_long = frame(good, len(body) + 500) + frame({"next": True})
    assert read_all(too_long) == [good, {"next": True}]
    too_short = frame(good, len(body) - 10) + frame({"next": True})
    assert read_all(too_short) == [good, {"next": True}]
    # The client waits for an answer after a too-long frame: taken when it goes quiet.
    assert read_all(frame(good, len(body) + 100)) == [good]
    # Not JSON at all: handed over as junk (answered with a parse error), then resync.
    assert read_all(frame(b"not json!!") + frame({"next": True})) == [("junk", b"not json!!"), {"next": True}]


def test_reader_memory_stays_bounded_on_junk() -> None:
    pieces = [b"z" * 65536] * 400  # 26 MB without a header end

    async def main() -> int:
        it = iter(pieces)

        async def read() -> bytes:
            return next(it, b"")

        reader = FrameReader(read)
        assert await reader.next_message() is None
        return reader.skipped

    assert asyncio.run(main()) == 400 * 65536
    assert MAX_HEADER <= 128 * 1024


# -- the real server over pipes ------------------------------------------------------------


class Wire:
    """A raw JSON-RPC peer over the server's stdin/stdout; a thread collects what it says."""

    def __init__(self, root: Path) -> None:
        self.proc = subprocess.Popen(
            CODELOOP + ["lsp"], stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL,
            env=cli_env("http://127.0.0.1:9/v1"), cwd=root,
        )
        self.root = root
        self.messages: queue.Queue[dict[str, Any]] = queue.Queue()
        self.by_id: dict[Any, dict[str, Any]] = {}
        self.null_errors: list[dict[str, Any]] = []
        threading.Thread(target=self._pump, daemon=True).start()

    def _pump(self) -> None:
        out = self.proc.stdout
        assert out is not None
        while True:
            length = 0
            while True:
                line = out.readline()
                if not line:
                    return
                if line.lower().startswith(b"content-length:"):
                    length = int(line.split(b":")[1])
                elif line == b"\r\n":
                    break
            msg = json.loads(out.read(length))
            self.messages.put(msg)

    def send(self, data: bytes) -> None:
        assert self.proc.stdin is not None
        self.proc.stdin.write(data)
        self.proc.stdin.flush()

    def answer(self, msg_id: Any, timeout: float = 30) -> dict[str, Any]:
        deadline = time.monotonic() + timeout
        while msg_id not in self.by_id:
            left = deadline - time.monotonic()
            if left <= 0:
                raise AssertionError(f"no answer to {msg_id!r}")
            try:
                msg = self.messages.get(timeout=left)
            except queue.Empty:
                continue
            if "id" in msg and ("result" in msg or "error" in msg):
                if msg["id"] is None:
                    self.null_errors.append(msg)
                else:
                    self.by_id[msg["id"]] = msg
            elif "id" in msg and "method" in msg:  # a request from the server: answer it empty
                self.send(frame({"jsonrpc": "2.0", "id": msg["id"], "result": None}))
        return self.by_id[msg_id]

    def initialize(self) -> None:
        self.send(frame(request(0, "initialize", {
            "processId": None, "rootUri": self.root.as_uri(), "capabilities": {},
            "initializationOptions": {"settings": {"maxRetries": 0}},
        })))
        assert self.answer(0)["result"]["serverInfo"]["name"] == "codeloop"
        self.send(frame({"jsonrpc": "2.0", "method": "initialized", "params": {}}))

    def alive(self, tag: str) -> None:
        self.send(frame(request(tag, "codeloop/session/list", {})))
        assert self.answer(tag)["result"] == {"sessions": []}

    def close(self) -> None:
        if self.proc.poll() is None:
            self.proc.kill()
        self.proc.wait()


@pytest.fixture
def wire(tmp_path: Path):
    w = Wire(tmp_path)
    yield w
    w.close()


def test_requests_before_initialize_get_server_not_initialized(wire: Wire) -> None:
    wire.send(frame(request(1, "codeloop/session/list", {})))
    wire.send(frame(request(2, "textDocument/hover", {"textDocument": {"uri": "file:///x.py"}, "position": {"line": 0, "character": 0}})))
    wire.send(frame({"jsonrpc": "2.0", "method": "textDocument/didOpen", "params": {}}))  # dropped, not fatal
    assert wire.answer(1)["error"]["code"] == -32002
    assert wire.answer(2)["error"]["code"] == -32002
    wire.initialize()
    wire.alive("after-init")
    wire.send(frame(request(3, "initialize", {"capabilities": {}})))
    assert wire.answer(3)["error"]["code"] == -32600


def test_mistyped_params_are_answered_with_invalid_params(wire: Wire, tmp_path: Path) -> None:
    wire.initialize()
    bad = [
        ("textDocument/codeAction", {"textDocument": 5, "range": "x", "context": {}}),
        ("textDocument/hover", {"textDocument": {"uri": "file:///x.py"}, "position": {"line": "zero"}}),
        ("textDocument/hover", [1, 2, 3]),
        ("codeloop/chat/start", {"text": 42}),
        ("codeloop/session/open", {"sessionId": ["a"]}),
        ("codeloop/process/kill", "nope"),
        ("workspace/executeCommand", {"command": "codeloop.fixDiagnostic", "arguments": [{"uri": 1}]}),
        ("workspace/executeCommand", {"command": "codeloop.explain", "arguments": [{"uri": "file:///x.py", "range": {"start": 0}}]}),
    ]
    for i, (method, params) in enumerate(bad):
        wire.send(frame(request(100 + i, method, params)))
    for i, (method, _params) in enumerate(bad):
        err = wire.answer(100 + i)["error"]
        assert err["code"] == -32602, (method, err)
        assert err["message"]
    detail = wire.answer(100)["error"]["message"]
    assert "textDocument" in detail or "range" in detail
    wire.alive("still")


def test_hostile_framing_then_the_server_keeps_serving(wire: Wire) -> None:
    wire.initialize()
    wire.send(b"X-Junk: " + b"a" * 2_000_000 + b"\r\n")  # a 2 MB header line
    wire.alive("after-huge-header")
    wire.send(json.dumps({"blob": "b" * 20_000_000}).encode())  # 20 MB of JSON without headers
    wire.alive("after-headerless")
    wire.send(bytes(range(256)) * 400)  # random bytes
    wire.alive("after-random")
    body = json.dumps(request("long", "codeloop/session/list", {})).encode()
    wire.send(b"Content-Length: %d\r\n\r\n" % (len(body) + 300) + body)  # declared too long
    assert wire.answer("long")["result"] == {"sessions": []}
    body = json.dumps(request("short", "codeloop/session/list", {})).encode()
    wire.send(b"Content-Length: %d\r\n\r\n" % (len(body) - 8) + body)  # declared too short
    assert wire.answer("short")["result"] == {"sessions": []}
    wire.alive("after-wrong-lengths")
    wire.send(frame(b"{not json"))
    wire.alive("after-bad-json")
    assert any(e["error"]["code"] == -32700 for e in wire.null_errors)
    wire.send(frame([request("batch", "codeloop/session/list", {})]))  # batches are not LSP
    wire.alive("after-batch")
    assert wire.proc.poll() is None


def test_requests_after_shutdown_are_refused_and_exit_ends(wire: Wire) -> None:
    wire.initialize()
    wire.send(frame(request("s", "shutdown")))
    assert wire.answer("s")["result"] is None
    wire.send(frame(request("late", "codeloop/session/list", {})))
    assert wire.answer("late")["error"]["code"] == -32600
    wire.send(frame({"jsonrpc": "2.0", "method": "exit"}))
    assert wire.proc.wait(timeout=20) == 0


# -- property: whatever comes, every well-framed request is answered ----------------------------

METHODS = [
    "textDocument/codeAction", "textDocument/hover", "codeloop/session/open", "codeloop/session/transcript",
    "codeloop/chat/start", "codeloop/process/kill", "codeloop/context", "workspace/executeCommand",
    "codeloop/no/such/method", "textDocument/definition",
]
json_values = st.recursive(
    st.none() | st.booleans() | st.integers(-5, 5) | st.text(max_size=8),
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.sampled_from(["uri", "text", "range", "textDocument", "sessionId", "command", "arguments", "position", "line", "x"]), inner, max_size=4),
    max_leaves=12,
)
junk = st.one_of(
    st.binary(max_size=3000),
    st.builds(lambda n: b"X-Header: " + b"h" * n, st.integers(MAX_HEADER, 3 * MAX_HEADER)),
    st.builds(lambda v: json.dumps(v).encode(), json_values),  # JSON without a header
    st.builds(lambda v: b"Content-Length: 7\r\n\r\n" + json.dumps(v).encode()[:7], json_values),
)


@settings(max_examples=60, deadline=None, suppress_health_check=list(HealthCheck), derandomize=True)
@given(data=st.data())
def _property(data: st.DataObject, wire: Wire, counter: list[int]) -> None:
    sent: list[Any] = []
    for _ in range(data.draw(st.integers(1, 4))):
        if data.draw(st.booleans()):
            wire.send(data.draw(junk))
            wire.send(b"\r\n\r\n")  # whatever the junk left open ends here
        else:
            counter[0] += 1
            msg_id = f"r{counter[0]}"
            method = data.draw(st.sampled_from(METHODS))
            params = data.draw(json_values)
            wire.send(frame(request(msg_id, method, params)))
            sent.append(msg_id)
    counter[0] += 1
    sentinel = f"alive{counter[0]}"
    wire.send(frame(request(sentinel, "codeloop/session/list", {})))
    for msg_id in sent:
        reply = wire.answer(msg_id)
        assert "result" in reply or ("error" in reply and isinstance(reply["error"]["code"], int)), reply
    assert "result" in wire.answer(sentinel)
    assert wire.proc.poll() is None


def test_property_every_request_is_answered_and_the_server_keeps_serving(wire: Wire) -> None:
    wire.initialize()
    _property(wire=wire, counter=[0])
    wire.alive("at-the-end")


def test_stdin_from_a_file_is_read_in_a_thread_with_the_same_rules(tmp_path: Path) -> None:
    """stdin that is not a pipe (a file, a terminal) takes the worker-thread path."""
    script = tmp_path / "in.jsonrpc"
    script.write_bytes(
        frame(request(1, "initialize", {"processId": None, "rootUri": tmp_path.as_uri(), "capabilities": {}}))
        + frame({"jsonrpc": "2.0", "method": "initialized", "params": {}})
        + b"junk junk junk\r\n\r\n"
        + frame(request(2, "codeloop/session/list", {}))
        + frame(request(3, "textDocument/hover", {"textDocument": 1}))
    )  # then the end of the file: the requests read before it are still answered
    with script.open("rb") as stdin:
        proc = subprocess.run(CODELOOP + ["lsp"], stdin=stdin, capture_output=True, env=cli_env("http://127.0.0.1:9/v1"),
                              cwd=tmp_path, timeout=60)
    out = proc.stdout
    answers = {}
    while out:
        head, _, rest = out.partition(b"\r\n\r\n")
        length = int(re.search(rb"Content-Length: (\d+)", head).group(1))
        msg = json.loads(rest[:length])
        out = rest[length:]
        if "id" in msg:
            answers[msg["id"]] = msg
    assert answers[2]["result"] == {"sessions": []}
    assert answers[3]["error"]["code"] == -32602
    assert proc.returncode == 0
