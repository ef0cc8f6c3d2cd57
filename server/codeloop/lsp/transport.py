"""The stdio transport: LSP base-protocol framing that survives anything the client sends,
and the lifecycle rules pygls leaves out.

Framing (``FrameReader``): ``Content-Length: N\\r\\n…\\r\\n\\r\\n`` then N bytes of JSON. What
cannot be read is skipped, logged, and the reader resyncs on the next header:

- a header block that is not found within ``MAX_HEADER`` bytes (a 2 MB header line, 20 MB of
  JSON without headers, random bytes) is dropped, keeping only a tail that may hold the start
  of a real header;
- a header block without a valid ``Content-Length`` is dropped;
- a body is checked against the declared length. Raw ``\\r\\n`` can never occur inside a JSON
  string, so a ``Content-Length: N\\r\\n`` line inside a pending body means the declared length
  was too large: the bytes before it are the body. A body that does not parse is retried with
  the bytes that follow it (the declared length was too small). A body still incomplete when
  the client goes quiet for ``STALL`` seconds is taken as it is, if it parses.

Dispatch (``Dispatcher``): every request gets an answer, a result or a JSON-RPC error:

- a body that is not JSON: ``-32700`` (id null); not an object, or a request whose id or
  method is malformed: ``-32600``;
- params that do not match the method's type (pygls raises while structuring them, and would
  answer nothing): ``-32602`` with what was wrong;
- any request before ``initialize``: ``-32002`` (ServerNotInitialized); notifications before
  it are dropped (``exit`` excepted); requests after ``shutdown``: ``-32600``;
- a malformed response to one of the server's own requests fails that request's future,
  so nothing waits forever on it.
"""

from __future__ import annotations

import asyncio
import io
import json
import logging
import os
import re
import stat
import sys
import threading
from collections.abc import Awaitable, Callable
from typing import Any, cast

import cattrs
from lsprotocol import types as lsp
from pygls.exceptions import JsonRpcException, JsonRpcInvalidParams
from pygls.lsp.server import LanguageServer

log = logging.getLogger("codeloop.lsp.transport")

#: A header block longer than this is junk (real ones are ~60 bytes).
MAX_HEADER = 64 * 1024
#: Bodies above this are skipped, not buffered.
MAX_BODY = 512 * 1024 * 1024
#: Seconds of silence after which an incomplete body is tried as it is.
STALL = 0.3
CHUNK = 64 * 1024

SERVER_NOT_INITIALIZED = -32002
INVALID_REQUEST = -32600
PARSE_ERROR = -32700

_LENGTH = re.compile(rb"content-length[ \t]*:[ \t]*(\d+)[ \t\r]*$", re.IGNORECASE | re.MULTILINE)
# A header line inside a body: impossible in valid JSON (raw CR/LF never occur in strings).
_HEADER_IN_BODY = re.compile(rb"Content-Length[ \t]*:[ \t]*\d+[ \t]*\r\n", re.IGNORECASE)
_WS = b" \t\r\n"


NOT_JSON = object()  # what ``FrameReader.next_message`` gives for a body that does not parse


class FrameReader:
    """Yields the messages on a byte stream, resyncing after junk.

    ``read`` returns up to ``CHUNK`` bytes, ``b""`` at end of stream.
    """

    def __init__(self, read: Callable[[], Awaitable[bytes]], stall: float = STALL) -> None:
        self._read = read
        self._buf = bytearray()
        self._eof = False
        self.stall = stall
        self.skipped = 0  # bytes dropped as unreadable (for tests and logs)
        self._pending: asyncio.Future[bytes] | None = None

    async def _more(self, timeout: float | None = None) -> bool:
        """Reads one chunk into the buffer. False at end of stream or after ``timeout``.

        A read still pending at the timeout is kept for the next call, never cancelled: a
        read in a worker thread (files, terminals) cannot be cancelled without losing its bytes."""
        if self._eof:
            return False
        if self._pending is None:
            self._pending = asyncio.ensure_future(self._read())
        if timeout is not None:
            done, _ = await asyncio.wait({self._pending}, timeout=timeout)
            if not done:
                return False
        chunk = await self._pending
        self._pending = None
        if not chunk:
            self._eof = True
            return False
        self._buf += chunk
        return True

    def _skip(self, n: int, why: str) -> None:
        if n <= 0:
            return
        self.skipped += n
        log.warning("skipped %d unreadable byte(s) from the client: %s", n, why)
        del self._buf[:n]

    async def next_message(self) -> tuple[Any, bytes] | None:
        """The next frame as (parsed JSON or ``NOT_JSON``, raw body); None at end of stream."""
        scanned = 0
        while True:
            end = self._buf.find(b"\r\n\r\n", max(0, scanned - 3))
            if end < 0:
                scanned = len(self._buf)
                if len(self._buf) > MAX_HEADER:
                    self._drop_junk()
                    scanned = 0
                if not await self._more():
                    if self._buf.strip(_WS):
                        self._skip(len(self._buf), "the stream ended inside a header")
                    return None
                continue
            scanned = 0
            header = bytes(self._buf[:end])
            matches = list(_LENGTH.finditer(header))
            if not matches:
                self._skip(end + 4, "a header block without a valid Content-Length")
                continue
            m = matches[-1]
            line_start = header.rfind(b"\n", 0, m.start()) + 1
            if line_start > 0:
                self._skip(line_start, "junk before a header")
                end -= line_start
            del self._buf[: end + 4]
            length = int(m.group(1))
            if length > MAX_BODY:
                await self._discard(length)
                continue
            got = await self._body(length)
            if got is None:
                return None
            if got[1]:
                return got

    def _drop_junk(self) -> None:
        """No header end within MAX_HEADER bytes: keep only what may start a real header."""
        at = self._buf.rfind(b"Content-Length")
        if at < 0:
            at = max(0, len(self._buf) - 32)
        self._skip(at, f"no header end within {MAX_HEADER} bytes")

    async def _discard(self, length: int) -> None:
        log.warning("skipping a %d-byte message (over %d)", length, MAX_BODY)
        while length > 0:
            if not self._buf and not await self._more():
                return
            n = min(length, len(self._buf))
            self.skipped += n
            del self._buf[:n]
            length -= n

    def _header_before(self, limit: int, start: int = 0) -> int | None:
        """Where a header line starts in the buffer, if one starts before ``limit``."""
        m = _HEADER_IN_BODY.search(self._buf, start)
        if m is None or m.start() >= limit:
            return None
        return m.start()

    async def _body(self, length: int) -> tuple[Any, bytes] | None:
        scanned = 0
        while True:
            cut = self._header_before(length, max(0, scanned - 40))
            if cut is not None:  # the declared length was too large: a new frame starts here
                return self._take(cut, "the Content-Length was larger than the body")
            if len(self._buf) >= length:
                break
            scanned = len(self._buf)
            if not await self._more(self.stall):
                if self._eof and not self._buf.strip(_WS):
                    return None
                value = _loads(self._buf)
                if value is not NOT_JSON:  # the client went quiet (or left): take the body as it is
                    return self._take(len(self._buf), "the Content-Length was larger than the body")
                if self._eof:
                    self._skip(len(self._buf), "the stream ended inside a body")
                    return None
        value = _loads(self._buf[:length])
        if value is not NOT_JSON:
            body = bytes(self._buf[:length])
            del self._buf[:length]
            return value, body
        # Maybe the declared length was too small: the body goes on up to the next header.
        if self._buf[:length].lstrip(_WS).startswith(b"{"):
            while True:
                cut = self._header_before(len(self._buf), length)
                stop = cut if cut is not None else len(self._buf)
                if _loads(self._buf[:stop]) is not NOT_JSON:
                    return self._take(stop, "the Content-Length was smaller than the body")
                if cut is not None or not await self._more(self.stall):
                    break
        # Not JSON either way: hand the declared body over as junk (answered with a parse error).
        body = bytes(self._buf[:length])
        del self._buf[:length]
        return NOT_JSON, body

    def _take(self, n: int, why: str) -> tuple[Any, bytes]:
        if n:
            log.warning("framing error from the client: %s; resynced", why)
        body = bytes(self._buf[:n]).strip(_WS)
        del self._buf[:n]
        return _loads(body) if body else NOT_JSON, body


def _loads(data: bytes | bytearray) -> Any:
    text = bytes(data).strip(_WS)
    if not text.startswith((b"{", b"[")):
        return NOT_JSON
    try:
        return json.loads(text)
    except (ValueError, UnicodeDecodeError, RecursionError):
        return NOT_JSON


# A method's raw params trimmed before pygls turns them into objects (a request's params
# dict, changed in place): what its handler would ignore anyway, dropped unparsed.
Trim = Callable[[dict[str, Any]], None]


class Dispatcher:
    """Hands parsed messages to pygls, answering what pygls would leave unanswered."""

    def __init__(self, server: LanguageServer, trims: dict[str, Trim] | None = None) -> None:
        self.server = server
        self.protocol = server.protocol
        self.initialized = False
        self.trims = dict(trims or {})

    def _error(self, msg_id: Any, code: int, message: str) -> None:
        if msg_id is None:  # JSON-RPC wants "id": null, which lsprotocol's converter would drop
            self.protocol._send_data({"jsonrpc": "2.0", "id": None, "error": {"code": code, "message": message}})
        else:
            self.protocol._send_response(msg_id, error=lsp.ResponseError(code=code, message=message))

    def handle_body(self, value: Any, body: bytes) -> None:
        if value is NOT_JSON:
            try:
                value = json.loads(body)
            except (ValueError, UnicodeDecodeError, RecursionError) as e:
                log.warning("a message from the client is not JSON (%s); answered with a parse error", e)
                self._error(None, PARSE_ERROR, f"Parse error: the message is not JSON ({type(e).__name__})")
                return
        self.handle(value)

    def handle(self, data: Any) -> None:
        if not isinstance(data, dict):
            log.warning("a message from the client is not a JSON object")
            self._error(None, INVALID_REQUEST, "Invalid Request: a message must be a JSON object (batches are not supported)")
            return
        has_id = "id" in data
        method = data.get("method")
        msg_id = data.get("id")
        if has_id and "method" in data:  # a request
            if isinstance(msg_id, bool) or not isinstance(msg_id, (int, str)):
                self._error(None, INVALID_REQUEST, "Invalid Request: the id must be a number or a string")
                return
            if not isinstance(method, str) or data.get("jsonrpc") != "2.0":
                self._error(msg_id, INVALID_REQUEST, "Invalid Request: needs \"jsonrpc\": \"2.0\" and a string method")
                return
            if not self.initialized and method != lsp.INITIALIZE:
                self._error(msg_id, SERVER_NOT_INITIALIZED, f"the server is not initialized: send initialize before {method}")
                return
            if self.initialized and method == lsp.INITIALIZE:
                self._error(msg_id, INVALID_REQUEST, "Invalid Request: the server is already initialized")
                return
            if self.protocol._shutdown:
                self._error(msg_id, INVALID_REQUEST, f"Invalid Request: the server is shutting down ({method})")
                return
        elif not has_id:  # a notification
            if not isinstance(method, str) or data.get("jsonrpc") != "2.0":
                log.warning("dropped a message without id, method or jsonrpc 2.0")
                return
            if not self.initialized and method != lsp.EXIT:
                log.info("dropped %r: the server is not initialized yet", method)
                return
        trim = self.trims.get(method) if isinstance(method, str) else None
        if trim is not None and isinstance(data.get("params"), dict):
            try:
                trim(data["params"])
            except Exception:  # malformed params: pygls reports them as it would have
                log.debug("trimming %s params failed", method, exc_info=True)
        try:
            message = self.protocol.structure_message(data)
        except JsonRpcException as e:
            self._unreadable(data, e)
            return
        self.protocol.handle_message(message)
        if has_id and method == lsp.INITIALIZE:
            self.initialized = True

    def _unreadable(self, data: dict[str, Any], exc: JsonRpcException) -> None:
        detail = _describe(exc)
        method = data.get("method")
        msg_id = data.get("id")
        if "id" in data and method is not None:
            log.warning("request %r has invalid params: %s", method, detail)
            self._error(msg_id, JsonRpcInvalidParams.CODE, f"Invalid params for {method}: {detail}")
        elif "id" in data:  # a response to one of our requests
            log.warning("the client's response to %r is malformed: %s", msg_id, detail)
            future = self.protocol._request_futures.pop(data["id"], None)
            if future is not None and not future.done():
                future.set_exception(JsonRpcInvalidParams(f"the editor's response is malformed: {detail}"))
        else:
            log.warning("dropped notification %r with invalid params: %s", method, detail)


def _describe(exc: BaseException) -> str:
    cause = exc.__cause__
    if isinstance(cause, cattrs.errors.BaseValidationError):
        try:
            lines = cattrs.transform_error(cause)
        except Exception:  # pragma: no cover - a cattrs edge case
            lines = [str(cause)]
        lines = [ln.replace("$.params", "params") for ln in lines]
        return "; ".join(lines[:5])
    return str(cause or exc) or type(exc).__name__


# -- serving -------------------------------------------------------------------------------

# Bytes buffered for the editor above which bulk output waits (the pipe itself holds
# another 64 KiB): an answer to the editor queues behind at most this much.
WRITE_HIGH_WATER = 32 * 1024


def is_pipe_or_socket(stream: Any) -> bool:
    try:
        mode = os.fstat(stream.fileno()).st_mode
    except (OSError, ValueError, AttributeError):
        return False
    return stat.S_ISFIFO(mode) or stat.S_ISSOCK(mode)


class _FlowControl(asyncio.Protocol):
    """Tracks the write transport's high/low water marks."""

    def __init__(self) -> None:
        self._resumed: asyncio.Future[None] | None = None

    def pause_writing(self) -> None:
        if self._resumed is None:
            self._resumed = asyncio.get_running_loop().create_future()

    def resume_writing(self) -> None:
        self._wake()

    def connection_lost(self, exc: Exception | None) -> None:
        self._wake()

    def _wake(self) -> None:
        if self._resumed is not None and not self._resumed.done():
            self._resumed.set_result(None)
        self._resumed = None

    async def drain(self) -> None:
        if self._resumed is not None:
            await asyncio.shield(self._resumed)


class PipeWriter:
    """pygls' writer over a non-blocking asyncio pipe transport: a write never blocks the
    event loop, even when the editor is slow to read. Bulk senders (terminal output) call
    ``drain()`` so the buffer stays small and an answer never queues behind megabytes."""

    def __init__(self, transport: asyncio.WriteTransport, flow: _FlowControl) -> None:
        self.transport = transport
        self.flow = flow

    async def drain(self) -> None:
        await self.flow.drain()

    def write(self, data: bytes) -> None:
        if self.transport.is_closing():
            raise BrokenPipeError("the editor closed the connection")
        self.transport.write(data)

    def close(self) -> None:
        self.transport.close()


class _StdoutWriter:
    def __init__(self, stream: Any) -> None:
        self.stream = stream

    def write(self, data: bytes) -> None:
        self.stream.write(data)
        self.stream.flush()

    def close(self) -> None:
        self.stream.close()


async def pump(reader: FrameReader, dispatcher: Dispatcher, stop: threading.Event) -> None:
    """Reads frames and dispatches them until end of stream or ``stop``."""
    while not stop.is_set():
        got = await reader.next_message()
        if got is None:
            return
        try:
            dispatcher.handle_body(*got)
        except Exception:  # never let one message end the connection
            log.exception("handling a message failed")


def serve_stdio(server: LanguageServer, trims: dict[str, Trim] | None = None) -> None:
    """Serve JSON-RPC on stdin/stdout.

    Pipes and sockets use asyncio's own transports: pygls' ``start_io`` reads stdin in a
    worker thread, one executor round trip per header line and per body, and under load
    (a streamed completion) an editor's request took 100-300 ms to be read. Reading on the
    event loop, the bytes are there at the loop's next turn; writes go through a buffered
    non-blocking transport, so a full pipe never blocks the loop either. Files and
    terminals (and Windows) are read in a worker thread."""

    async def serve() -> None:
        loop = asyncio.get_running_loop()
        transport = None
        if os.name == "posix" and is_pipe_or_socket(sys.stdin) and is_pipe_or_socket(sys.stdout):
            stream = asyncio.StreamReader()
            await loop.connect_read_pipe(lambda: asyncio.StreamReaderProtocol(stream), sys.stdin.buffer)
            transport, flow = await loop.connect_write_pipe(_FlowControl, sys.stdout.buffer)
            transport.set_write_buffer_limits(high=WRITE_HIGH_WATER)
            server.protocol.set_writer(PipeWriter(transport, flow))
            read: Callable[[], Awaitable[bytes]] = lambda: stream.read(CHUNK)  # noqa: E731
        else:
            stdin = cast(io.BufferedReader, sys.stdin.buffer)  # (typeshed: BinaryIO, which has no read1)
            server.protocol.set_writer(_StdoutWriter(sys.stdout.buffer))
            read = lambda: loop.run_in_executor(None, stdin.read1, CHUNK)  # noqa: E731
        try:
            await pump(FrameReader(read), Dispatcher(server, trims), stop)
            # The client went away (end of stream): requests already read still get answered.
            # (pygls types them as concurrent futures; the ones of its asyncio loop are asyncio's)
            pending: list[object] = list(server.protocol._request_futures.values())
            inflight = [f for f in pending if isinstance(f, asyncio.Future) and not f.done()]
            if inflight:
                await asyncio.wait(inflight, timeout=5)
        finally:
            # Let what is buffered reach the editor (the response to shutdown, say).
            for _ in range(100):
                if transport is None or transport.is_closing() or not transport.get_write_buffer_size():
                    break
                await asyncio.sleep(0.01)

    stop = threading.Event()
    server._stop_event = stop  # shutdown()/exit set it, as with start_io
    try:
        asyncio.run(serve())
    except BrokenPipeError:
        log.error("Connection to the client is lost! Shutting down the server.")
    except (KeyboardInterrupt, SystemExit):
        pass
    finally:
        server.shutdown()
