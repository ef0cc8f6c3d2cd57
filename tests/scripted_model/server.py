"""A real OpenAI-compatible HTTP server that answers from a scenario (stdlib only).

    with ScriptedModel(Script([Text("hi")])) as model:
        client = openai.OpenAI(base_url=model.base_url, api_key="x")
        ...
        assert model.chat_requests[0].last_user_text() == "hello"
"""

from __future__ import annotations

import json
import logging
import re
import socket
import struct
import threading
import time
from collections.abc import Iterator, Mapping, Sequence
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import urlsplit

from .prefix_cache import PrefixCache, deepseek_cached, openai_cached
from .providers import Provider, get_provider
from .scenarios import (
    ChatRequest,
    CutStream,
    EndsEarly,
    Error,
    Hang,
    NoFinish,
    Scenario,
    Stream,
    StreamError,
    Text,
    ToolCalls,
    Usage,
    estimate_completion_tokens,
    estimate_prompt_tokens,
    resolve,
)

log = logging.getLogger("scripted_model")

__all__ = ["ScriptedModel", "validate_chat_body"]

CHAT_PATH = "/v1/chat/completions"
MODELS_PATH = "/v1/models"
_TOOL_NAME = re.compile(r"^[a-zA-Z0-9_-]{1,64}$")
_ROLES = ("system", "developer", "user", "assistant", "tool")


def validate_chat_body(body: Any) -> str | None:
    """The 400 message OpenAI would give for this request body, or None if it is acceptable.

    Catches what an agent loop typically gets wrong: tool results that answer no call,
    tool calls left unanswered, bad tool names, stream_options without stream.
    """
    if not isinstance(body, Mapping):
        return "Invalid body: expected a JSON object."
    if not isinstance(body.get("model"), str) or not body.get("model"):
        return "you must provide a model parameter"
    msgs = body.get("messages")
    if msgs is None:
        return "Missing required parameter: 'messages'."
    if not isinstance(msgs, list):
        return "Invalid type for 'messages': expected an array."
    if not msgs:
        return "Invalid 'messages': empty array. Expected an array with minimum length 1, but got an empty array instead."
    if body.get("stream_options") is not None and not body.get("stream"):
        return "The 'stream_options' parameter is only allowed when 'stream' is enabled."
    pending: list[str] = []  # tool_call ids still waiting for a tool message
    answerable: set[str] = set()
    for i, m in enumerate(msgs):
        if not isinstance(m, Mapping):
            return f"Invalid type for 'messages[{i}]': expected an object."
        role = m.get("role")
        if role not in _ROLES:
            return f"Invalid value: '{role}'. Supported values are: {', '.join(repr(r) for r in _ROLES)}. (messages[{i}].role)"
        content = m.get("content")
        if content is not None and not isinstance(content, (str, list)):
            return f"Invalid type for 'messages[{i}].content': expected one of a string or array of objects."
        if role == "tool":
            cid = m.get("tool_call_id")
            if not isinstance(cid, str):
                return f"Missing required parameter: 'messages[{i}].tool_call_id'."
            if cid not in answerable:
                return (
                    "Invalid parameter: messages with role 'tool' must be a response to a preceeding "
                    f"message with 'tool_calls'. (messages[{i}], tool_call_id {cid!r})"
                )
            if content is None:
                return f"Invalid value for 'messages[{i}].content': expected a string, got null."
            if cid in pending:
                pending.remove(cid)
            continue
        if pending:
            return (
                "An assistant message with 'tool_calls' must be followed by tool messages responding to "
                "each 'tool_call_id'. The following tool_call_ids did not have response messages: "
                + ", ".join(pending)
            )
        answerable = set()
        if role == "assistant":
            calls = m.get("tool_calls")
            if calls is not None:
                if not isinstance(calls, list):
                    return f"Invalid type for 'messages[{i}].tool_calls': expected an array."
                for j, c in enumerate(calls):
                    fn = c.get("function") if isinstance(c, Mapping) else None
                    if not isinstance(c, Mapping) or not isinstance(c.get("id"), str) or not isinstance(fn, Mapping):
                        return f"Invalid 'messages[{i}].tool_calls[{j}]': expected id, type and function."
                    if not isinstance(fn.get("name"), str) or not isinstance(fn.get("arguments"), str):
                        return f"Invalid 'messages[{i}].tool_calls[{j}].function': name and arguments must be strings."
                    pending.append(c["id"])
                answerable = set(pending)
            if content is None and not calls:
                return f"Invalid value for 'messages[{i}].content': expected a string, got null."
        elif content is None:
            return f"Invalid value for 'messages[{i}].content': expected a string, got null."
    if pending:
        return (
            "An assistant message with 'tool_calls' must be followed by tool messages responding to "
            "each 'tool_call_id'. The following tool_call_ids did not have response messages: " + ", ".join(pending)
        )
    tools = body.get("tools")
    if tools is not None:
        if not isinstance(tools, list):
            return "Invalid type for 'tools': expected an array."
        names = set()
        for i, t in enumerate(tools):
            fn = t.get("function") if isinstance(t, Mapping) else None
            if not isinstance(t, Mapping) or t.get("type") != "function" or not isinstance(fn, Mapping):
                return f"Invalid 'tools[{i}]': expected {{'type': 'function', 'function': {{...}}}}."
            name = fn.get("name")
            if not isinstance(name, str) or not _TOOL_NAME.match(name):
                return f"Invalid 'tools[{i}].function.name': string does not match pattern. Expected a string that matches the pattern '^[a-zA-Z0-9_-]+$'."
            if name in names:
                return f"Invalid 'tools': duplicate function name {name!r}."
            names.add(name)
            params = fn.get("parameters")
            if params is not None and (not isinstance(params, Mapping) or params.get("type", "object") != "object"):
                return f"Invalid schema for function '{name}': schema must be a JSON Schema of 'type: \"object\"'."
    return None


class _Completion:
    """A Text / ToolCalls / Stream reply made concrete for one request, for one provider."""

    def __init__(self, reply: Text | ToolCalls | Stream, req: ChatRequest, model: str, provider: Provider,
                 numbers: tuple[int, int] | None, window: int | None = None) -> None:
        self.reply = reply
        self.provider = provider
        self.model = model
        self.id = provider.completion_id(req.count)
        self.created = int(time.time())
        self.include_usage = req.include_usage
        self.calls: list[tuple[str, str, str]] = []  # (id, name, arguments)
        self.stream_reply = reply if isinstance(reply, Stream) else None
        self.chunk_size = max(1, getattr(reply, "chunk_size", 1))
        self.delay = reply.delay
        if isinstance(reply, Stream):
            self.content: str | None = None
            self.finish_reason: str | None = "stop"
            completion = reply.tokens
        elif isinstance(reply, ToolCalls):
            self.content = reply.content
            self.finish_reason = reply.finish_reason
            for i, c in enumerate(reply.calls):
                self.calls.append((c.id or provider.call_id(req.count, i), c.name, c.arguments_json()))
            completion = estimate_completion_tokens(reply.content, [(n, a) for _, n, a in self.calls])
        else:
            self.content = reply.content
            self.finish_reason = reply.finish_reason
            completion = estimate_completion_tokens(reply.content)
        override = reply.usage or Usage()
        if override.prompt_tokens is not None:
            prompt = override.prompt_tokens
            cached = override.cached_tokens or 0
        else:
            prompt, shared = numbers if numbers is not None else (estimate_prompt_tokens(req.body), 0)
            if override.cached_tokens is not None:
                cached = override.cached_tokens
            elif provider.cache == "deepseek":
                cached = deepseek_cached(shared)
            else:
                cached = openai_cached(shared)
        if window and prompt > window:
            prompt = window  # the server kept only what fits (Ollama drops the start)
        self.prompt_tokens = prompt
        self.cached_tokens = min(cached, prompt)
        self.completion_tokens = override.completion_tokens if override.completion_tokens is not None else completion
        self.usage_extra = dict(override.extra)

    @property
    def usage(self) -> dict[str, Any]:
        return self.provider.usage(self)

    @property
    def full_content(self) -> str | None:
        if isinstance(self.reply, Stream):
            return self.reply.token * self.reply.tokens
        if self.calls and not self.content:
            return None
        return self.content

    def completion(self) -> dict[str, Any]:
        return self.provider.completion(self)

    def events(self) -> Iterator[tuple[str, dict[str, Any]]]:
        """``(kind, chunk)`` for every chunk the provider would stream (without ``[DONE]``)."""
        return self.provider.events(self)

    def chunks(self) -> Iterator[dict[str, Any]]:
        for _, chunk in self.events():
            yield chunk


def cut_index(events: Sequence[tuple[str, Any]], after: int | str | None) -> int:
    """How many of ``events`` a cut stream sends. An int: that many. ``"middle"``: all but the
    second half of the last tool call's arguments when the answer has calls (the earlier calls
    arrive complete; a call sent whole, as Ollama does, is left out); otherwise half the text.
    Never the chunk with the ``finish_reason``."""
    kinds = [k for k, _ in events]
    finish_at = next((i for i, k in enumerate(kinds) if "finish" in k), len(kinds))
    if isinstance(after, int):
        return max(0, min(after, len(kinds)))
    calls = [i for i in range(finish_at) if kinds[i].startswith("call")]
    if calls:
        last_args = [i for i in range(calls[-1] + 1, finish_at) if kinds[i].startswith("args")]
        return last_args[len(last_args) // 2] if last_args else calls[-1]
    texts = [i for i in range(finish_at) if kinds[i].startswith("text")]
    if texts:
        return texts[len(texts) // 2]
    return min(1, finish_at)


class _Abort(Exception):
    """Drop the connection without finishing the response."""

    def __init__(self, reset: bool = False) -> None:
        self.reset = reset


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    server_version = "scripted-model/1.0"
    sys_version = ""
    server: "_Server"

    def log_message(self, format: str, *args: Any) -> None:  # noqa: A002 - stdlib signature
        log.debug("%s - %s", self.address_string(), format % args)

    def do_GET(self) -> None:
        self._dispatch()

    do_POST = do_PUT = do_DELETE = do_PATCH = do_GET

    # ---- plumbing ---------------------------------------------------------------------
    def _dispatch(self) -> None:
        owner = self.server.owner
        self._streaming = False
        self._chunked = True
        try:
            self._handle(owner)
        except _Abort as abort:
            self._abort(abort.reset)
        except (BrokenPipeError, ConnectionResetError, ConnectionAbortedError):
            self.close_connection = True
        except Exception as exc:  # a scenario raised: fail loudly, don't retry
            log.exception("scripted model: scenario failed")
            owner._note_failure(f"scenario raised {type(exc).__name__}: {exc}")
            if self._streaming:
                self._abort(False)
            else:
                try:
                    self._send_error(
                        Error(
                            500,
                            f"scripted model scenario raised {type(exc).__name__}: {exc}",
                            headers={"x-should-retry": "false"},
                            type="scripted_model_error",
                        )
                    )
                except OSError:
                    self.close_connection = True

    def _read_body(self) -> bytes:
        length = int(self.headers.get("content-length") or 0)
        return self.rfile.read(length) if length > 0 else b""

    def _send_json(self, status: int, obj: Any, headers: Mapping[str, str] | None = None) -> None:
        data = json.dumps(obj).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        self.send_header("x-request-id", self._request_id)
        for k, v in (headers or {}).items():
            self.send_header(k, v)
        self.end_headers()
        self.wfile.write(data)

    def _send_error(self, err: Error) -> None:
        self._send_json(err.status, err.payload(), err.headers)

    def _start_stream(self, framing: str = "chunked") -> None:
        self.send_response(200)
        self.send_header("Content-Type", "text/event-stream; charset=utf-8")
        self.send_header("Cache-Control", "no-cache")
        self._chunked = framing == "chunked"
        if self._chunked:
            self.send_header("Transfer-Encoding", "chunked")
        else:
            # No length and no chunking: the body ends when the server closes the connection.
            self.send_header("Connection", "close")
        self.send_header("x-request-id", self._request_id)
        self.end_headers()
        self._streaming = True

    def _write_chunk(self, data: bytes) -> None:
        if self._chunked:
            self.wfile.write(b"%X\r\n%s\r\n" % (len(data), data))
        else:
            self.wfile.write(data)

    def _send_event(self, obj: Any) -> None:
        payload = obj if isinstance(obj, str) else json.dumps(obj)
        self._write_chunk(b"data: " + payload.encode() + b"\n\n")
        self.wfile.flush()

    def _end_body(self) -> None:
        """End the body properly at the HTTP level, whatever was sent in it."""
        if self._chunked:
            self.wfile.write(b"0\r\n\r\n")
            self.wfile.flush()
        else:
            self.wfile.flush()
            self._abort(False)
        self._streaming = False

    def _end_stream(self) -> None:
        self._send_event("[DONE]")
        self._end_body()

    def _abort(self, reset: bool) -> None:
        self.close_connection = True
        try:
            if reset:
                self.connection.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
                self.connection.close()
            else:
                self.connection.shutdown(socket.SHUT_RDWR)
        except OSError:
            pass

    def _sleep(self, seconds: float) -> None:
        if seconds > 0:
            self.server.owner._stopping.wait(seconds)

    # ---- requests ---------------------------------------------------------------------
    def _handle(self, owner: "ScriptedModel") -> None:
        path = urlsplit(self.path).path.rstrip("/") or "/"
        raw = self._read_body()
        headers = {k.lower(): v for k, v in self.headers.items()}
        body: Any = {}
        bad_json = None
        if raw:
            try:
                body = json.loads(raw)
            except ValueError as exc:
                bad_json = str(exc)
                body = {"_raw": raw.decode("utf-8", "replace")}
        is_chat = self.command == "POST" and path == CHAT_PATH
        req = owner._record(
            ChatRequest(body=body if isinstance(body, dict) else {"_json": body}, headers=headers, path=path,
                        method=self.command, time=time.time()),
            is_chat,
        )
        self._request_id = f"req_scripted_{req.count if is_chat else 'x'}_{int(time.time() * 1000) % 100000}"

        if owner.api_key is not None and headers.get("authorization") != f"Bearer {owner.api_key}":
            return self._send_error(
                Error(401, "Incorrect API key provided.", type="invalid_request_error", code="invalid_api_key")
            )
        if self.command == "GET" and path == MODELS_PATH:
            return self._send_json(
                200, {"object": "list", "data": [_model_obj(m) for m in owner.models]}
            )
        if self.command == "GET" and path.startswith(MODELS_PATH + "/"):
            name = path[len(MODELS_PATH) + 1 :]
            if name in owner.models:
                return self._send_json(200, _model_obj(name))
            return self._send_error(
                Error(404, f"The model '{name}' does not exist", type="invalid_request_error", code="model_not_found")
            )
        if not is_chat:
            return self._send_error(
                Error(404, f"Invalid URL ({self.command} {self.path})", type="invalid_request_error", code="unknown_url")
            )
        if bad_json is not None:
            return self._send_error(Error(400, f"We could not parse the JSON body of your request. ({bad_json})"))
        if owner.validate:
            problem = validate_chat_body(body)
            if problem:
                owner._note_failure(f"invalid request #{req.count}: {problem}")
                return self._send_error(Error(400, problem, type="invalid_request_error"))

        rejected = owner.provider.reject(req)
        if rejected is not None:
            return self._send_error(rejected)
        reply = resolve(owner.scenario, req)
        numbers = None if isinstance(reply, Error) else owner._prefix.observe(req.body)
        self._reply(reply, req, numbers)

    def _completion(self, reply: Any, req: ChatRequest, numbers: tuple[int, int] | None, default: str) -> _Completion:
        owner = self.server.owner
        model = req.model or (owner.models[0] if owner.models else "scripted-model")
        return _Completion(reply or Text(default), req, model, owner.provider, numbers, owner.context_window)

    def _send_events(self, comp: _Completion, events: Sequence[tuple[str, dict[str, Any]]] | Iterator[tuple[str, dict[str, Any]]]) -> None:
        for _, chunk in events:
            self._send_event(chunk)
            self._sleep(comp.delay)

    def _reply(self, reply: Any, req: ChatRequest, numbers: tuple[int, int] | None = None) -> None:
        if isinstance(reply, Error):
            if reply.type == "scripted_model_error":
                self.server.owner._note_failure(reply.message)
            return self._send_error(reply)
        if isinstance(reply, (Text, ToolCalls, Stream)):
            comp = self._completion(reply, req, numbers, "")
            if not req.stream:
                return self._send_json(200, comp.completion())
            self._start_stream()
            self._send_events(comp, comp.events())
            return self._end_stream()
        if isinstance(reply, NoFinish):
            comp = self._completion(reply.reply, req, numbers, "")
            if not req.stream:
                body = comp.completion()
                body["choices"][0]["finish_reason"] = None
                return self._send_json(200, body)
            self._start_stream()
            for kind, chunk in comp.events():
                if kind == "finish":
                    continue
                for choice in chunk.get("choices") or []:
                    choice["finish_reason"] = None
                self._send_event(chunk)
                self._sleep(comp.delay)
            return self._end_stream()
        if isinstance(reply, (CutStream, EndsEarly)):
            comp = self._completion(reply.reply, req, numbers, "This reply is cut off partway through.")
            if not req.stream:
                data = json.dumps(comp.completion()).encode()
                self.send_response(200)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data[: len(data) // 2])
                raise _Abort(getattr(reply, "reset", False))
            events = list(comp.events())
            n = cut_index(events, reply.after_chunks)
            if isinstance(reply, EndsEarly):
                self._start_stream(reply.framing)
                self._send_events(comp, events[:n])
                return self._end_body()  # a clean end: no finish_reason, no [DONE]
            self._start_stream()
            self._send_events(comp, events[:n])
            raise _Abort(reply.reset)
        if isinstance(reply, StreamError):
            comp = self._completion(reply.reply, req, numbers, "This reply fails partway through.")
            if not req.stream:
                return self._send_error(Error(500, reply.message, type=reply.type))
            self._start_stream()
            for n, (_, chunk) in enumerate(comp.events()):
                if n >= reply.after_chunks:
                    break
                self._send_event(chunk)
            self._send_event({"error": {"message": reply.message, "type": reply.type, "param": None, "code": None}})
            return self._end_stream()
        if isinstance(reply, Hang):
            if reply.after_chunks is not None and req.stream:
                comp = self._completion(reply.reply, req, numbers, "This reply stalls partway through.")
                events = list(comp.events())
                self._start_stream()
                for _, chunk in events[: cut_index(events, reply.after_chunks)]:
                    self._send_event(chunk)
            self._sleep(reply.seconds)
            if reply.then is not None and not self._streaming and not self.server.owner._stopping.is_set():
                return self._reply(resolve(reply.then, req), req, numbers)
            raise _Abort(False)
        raise TypeError(f"unknown reply {reply!r}")


def _model_obj(name: str) -> dict[str, Any]:
    return {"id": name, "object": "model", "created": 1700000000, "owned_by": "scripted-model"}


class _Server(ThreadingHTTPServer):
    daemon_threads = True
    allow_reuse_address = True
    owner: "ScriptedModel"

    def handle_error(self, request: Any, client_address: Any) -> None:
        log.debug("scripted model: connection error from %s", client_address, exc_info=True)


class ScriptedModel:
    """An OpenAI-compatible server on 127.0.0.1 that answers chat completions from ``scenario``.

    ``requests`` holds every request received (chat, models, unknown paths); ``chat_requests``
    only the chat completions. ``failures`` lists what went wrong on the server side (invalid
    requests, scenario exceptions, Script overruns via the error reply).
    """

    def __init__(
        self,
        scenario: Scenario,
        *,
        host: str = "127.0.0.1",
        port: int = 0,
        models: Sequence[str] | None = None,
        api_key: str | None = None,
        validate: bool = True,
        record: str | None = None,
        provider: str | None = None,
        context_window: int | None = None,
    ) -> None:
        self._scenario = scenario
        # Which server's wire to speak (see ``providers``): the argument, else the
        # scenario's ``provider`` attribute, else OpenAI's.
        self.provider = get_provider(provider or getattr(scenario, "provider", None))
        # Count at most this many prompt tokens, as a server whose window is this small
        # (Ollama's num_ctx) does after dropping the start of the prompt.
        self.context_window = context_window
        self._prefix = PrefixCache()
        self.host = host
        self.port = port
        self.models = list(models or getattr(scenario, "models", None) or ["scripted-model"])
        self.api_key = api_key
        self.validate = validate
        self.record = record
        self._lock = threading.Lock()
        self._cond = threading.Condition(self._lock)
        self._requests: list[ChatRequest] = []
        self._failures: list[str] = []
        self._chat_count = 0
        self._stopping = threading.Event()
        self._server: _Server | None = None
        self._thread: threading.Thread | None = None

    # ---- lifecycle --------------------------------------------------------------------
    def start(self) -> "ScriptedModel":
        if self._server is not None:
            return self
        self._stopping.clear()
        self._server = _Server((self.host, self.port), _Handler)
        self._server.owner = self
        self.port = self._server.server_address[1]
        self._thread = threading.Thread(
            target=self._server.serve_forever, kwargs={"poll_interval": 0.05}, name="scripted-model", daemon=True
        )
        self._thread.start()
        log.info("scripted model listening on %s", self.base_url)
        return self

    def stop(self) -> None:
        server, self._server = self._server, None
        if server is None:
            return
        self._stopping.set()  # releases Hang and delays
        server.shutdown()
        server.server_close()
        if self._thread is not None:
            self._thread.join(timeout=5)
            self._thread = None

    def __enter__(self) -> "ScriptedModel":
        return self.start()

    def __exit__(self, *exc: Any) -> None:
        self.stop()

    @property
    def base_url(self) -> str:
        return f"http://{self.host}:{self.port}/v1"

    def env(self, model: str | None = None) -> dict[str, str]:
        """Environment variables that point codeloop (or any openai client) here."""
        return {
            "OPENAI_BASE_URL": self.base_url,
            "OPENAI_API_KEY": self.api_key or "sk-scripted-model",
            "CODELOOP_MODEL": model or self.models[0],
        }

    # ---- scenario and records ---------------------------------------------------------
    @property
    def scenario(self) -> Scenario:
        return self._scenario

    @scenario.setter
    def scenario(self, scenario: Scenario) -> None:
        """Swap the scenario; ``ChatRequest.count`` starts again from 0."""
        with self._lock:
            self._scenario = scenario
            self._chat_count = 0

    @property
    def requests(self) -> list[ChatRequest]:
        with self._lock:
            return list(self._requests)

    @property
    def chat_requests(self) -> list[ChatRequest]:
        with self._lock:
            return [r for r in self._requests if r.method == "POST" and r.path == CHAT_PATH]

    @property
    def failures(self) -> list[str]:
        with self._lock:
            return list(self._failures)

    def wait_for_requests(self, n: int, timeout: float = 5.0) -> list[ChatRequest]:
        """Block until at least ``n`` chat requests arrived; returns them (TimeoutError if not)."""
        deadline = time.monotonic() + timeout
        with self._cond:
            while True:
                chats = [r for r in self._requests if r.method == "POST" and r.path == CHAT_PATH]
                if len(chats) >= n:
                    return chats
                left = deadline - time.monotonic()
                if left <= 0:
                    raise TimeoutError(f"scripted model got {len(chats)} chat requests, wanted {n}")
                self._cond.wait(left)

    def _record(self, req: ChatRequest, is_chat: bool) -> ChatRequest:
        with self._cond:
            if is_chat:
                req.count = self._chat_count
                self._chat_count += 1
            self._requests.append(req)
            if self.record:
                with open(self.record, "a", encoding="utf-8") as f:
                    f.write(json.dumps(req.to_json()) + "\n")
            self._cond.notify_all()
        return req

    def _note_failure(self, message: str) -> None:
        with self._lock:
            self._failures.append(message)
        log.warning("scripted model: %s", message)

