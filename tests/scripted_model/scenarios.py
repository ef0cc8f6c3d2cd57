"""What the scripted model says: the request a scenario sees, and the replies it can give.

A *scenario* is any callable ``(ChatRequest) -> Reply``. A reply is one of the dataclasses
below, a plain ``str`` (shorthand for ``Text(str)``), or another callable, which is called
with the same request (so ``Script`` and ``Keyed`` nest freely).

    def scenario(req: ChatRequest) -> Reply:
        if req.turn_index == 0:
            return ToolCalls([Call("read_file", {"path": "a.py"})])
        return Text(f"The file says: {req.last_tool_results()[0]}")

Multi-turn chats (``codeloop chat``) branch on the last user message with ``Keyed``:

    Keyed({
        "fix the bug": Script([ToolCalls([Call("read_file", {"path": "a.py"})]), Text("Fixed.")]),
        "thanks": Text("You're welcome."),
    })

After a tool call the last *user* message is unchanged (tool results are ``tool`` messages),
so a ``Script`` under a key sees every request of that user turn, in order.
"""

from __future__ import annotations

import inspect
import json
import math
import threading
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any, Union

__all__ = [
    "FAULTS",
    "Call",
    "ChatRequest",
    "CutStream",
    "EndsEarly",
    "Error",
    "Faulty",
    "Hang",
    "Keyed",
    "NoFinish",
    "Reply",
    "Scenario",
    "Script",
    "Stream",
    "StreamError",
    "Text",
    "ToolCalls",
    "Usage",
    "echo",
    "fixed",
    "content_text",
    "resolve",
]


def content_text(content: Any) -> str:
    """The text of a message ``content``: a string, None, or a list of content parts."""
    if content is None:
        return ""
    if isinstance(content, str):
        return content
    if isinstance(content, list):
        out = []
        for part in content:
            if isinstance(part, str):
                out.append(part)
            elif isinstance(part, Mapping):
                text = part.get("text")
                if isinstance(text, str):
                    out.append(text)
        return "".join(out)
    return str(content)


@dataclass
class ChatRequest:
    """One HTTP request the server received (chat completions, models, or anything else)."""

    body: dict[str, Any]
    headers: dict[str, str]  # lower-cased names
    path: str = "/v1/chat/completions"
    method: str = "POST"
    count: int = 0  # 0-based index of this chat request on this server (since the scenario was set)
    time: float = 0.0

    # ---- fields of the body -------------------------------------------------------------
    @property
    def messages(self) -> list[dict[str, Any]]:
        msgs = self.body.get("messages")
        return msgs if isinstance(msgs, list) else []

    @property
    def tools(self) -> list[dict[str, Any]]:
        tools = self.body.get("tools")
        return tools if isinstance(tools, list) else []

    @property
    def model(self) -> str:
        return str(self.body.get("model", ""))

    @property
    def stream(self) -> bool:
        return bool(self.body.get("stream"))

    @property
    def include_usage(self) -> bool:
        opts = self.body.get("stream_options")
        return isinstance(opts, Mapping) and bool(opts.get("include_usage"))

    @property
    def turn_index(self) -> int:
        """How many assistant messages the conversation already holds."""
        return sum(1 for m in self.messages if isinstance(m, Mapping) and m.get("role") == "assistant")

    # ---- helpers ------------------------------------------------------------------------
    def tool_names(self) -> list[str]:
        out = []
        for t in self.tools:
            fn = t.get("function") if isinstance(t, Mapping) else None
            if isinstance(fn, Mapping) and isinstance(fn.get("name"), str):
                out.append(fn["name"])
        return out

    def system_text(self) -> str:
        """All system (and developer) messages, joined by blank lines."""
        parts = [
            content_text(m.get("content"))
            for m in self.messages
            if isinstance(m, Mapping) and m.get("role") in ("system", "developer")
        ]
        return "\n\n".join(parts)

    def last_user_text(self) -> str:
        for m in reversed(self.messages):
            if isinstance(m, Mapping) and m.get("role") == "user":
                return content_text(m.get("content"))
        return ""

    def user_texts(self) -> list[str]:
        return [
            content_text(m.get("content"))
            for m in self.messages
            if isinstance(m, Mapping) and m.get("role") == "user"
        ]

    def last_assistant(self) -> dict[str, Any] | None:
        for m in reversed(self.messages):
            if isinstance(m, Mapping) and m.get("role") == "assistant":
                return dict(m)
        return None

    def last_tool_results(self) -> list[str]:
        """Contents of the tool messages after the last assistant message, in order."""
        out: list[str] = []
        for m in reversed(self.messages):
            if not isinstance(m, Mapping):
                continue
            if m.get("role") == "assistant":
                break
            if m.get("role") == "tool":
                out.append(content_text(m.get("content")))
        out.reverse()
        return out

    def tool_result(self, call_id: str) -> str | None:
        """Content of the (latest) tool message answering ``call_id``, or None."""
        for m in reversed(self.messages):
            if isinstance(m, Mapping) and m.get("role") == "tool" and m.get("tool_call_id") == call_id:
                return content_text(m.get("content"))
        return None

    def to_json(self) -> dict[str, Any]:
        return {
            "time": self.time,
            "count": self.count,
            "method": self.method,
            "path": self.path,
            "headers": self.headers,
            "body": self.body,
        }


# ---- replies ------------------------------------------------------------------------------


@dataclass
class Usage:
    """Override some usage numbers; None means "compute it".

    ``cached_tokens`` is computed from the prompts seen before (see ``prefix_cache``) unless
    given, or unless ``prompt_tokens`` is given (then it is 0: a made-up prompt size has no
    cache to share). ``extra`` fields are added to ``usage`` as they are (e.g. another
    provider's cache fields).
    """

    prompt_tokens: int | None = None
    completion_tokens: int | None = None
    cached_tokens: int | None = None
    extra: dict[str, Any] = field(default_factory=dict)


@dataclass
class Text:
    """An assistant text message, streamed in ``chunk_size``-character deltas."""

    content: str
    chunk_size: int = 4
    delay: float = 0.0  # seconds between chunks
    finish_reason: str = "stop"
    usage: Usage | None = None


@dataclass
class Call:
    """One tool call. ``arguments`` as a str is sent verbatim (malformed JSON on purpose)."""

    name: str
    arguments: dict[str, Any] | str = field(default_factory=dict)
    id: str | None = None  # default: call_<count>_<index>

    def arguments_json(self) -> str:
        if isinstance(self.arguments, str):
            return self.arguments
        return json.dumps(self.arguments)


@dataclass
class ToolCalls:
    """An assistant message with tool calls (optionally some text first)."""

    calls: list[Call]
    content: str = ""
    chunk_size: int = 8  # characters of arguments (and content) per delta
    delay: float = 0.0
    usage: Usage | None = None
    finish_reason: str = "tool_calls"  # e.g. "length": the output limit hit mid-call


_DEFAULT_ERROR_TYPES = {
    400: "invalid_request_error",
    401: "invalid_request_error",
    403: "permission_error",
    404: "not_found_error",
    409: "conflict_error",
    422: "invalid_request_error",
    429: "rate_limit_error",
}


@dataclass
class Error:
    """An HTTP error in OpenAI's shape: ``{"error": {"message", "type", "code", "param"}}``."""

    status: int
    message: str
    headers: dict[str, str] = field(default_factory=dict)
    type: str | None = None  # default by status (e.g. rate_limit_error, server_error)
    code: str | None = None
    param: str | None = None

    def error_type(self) -> str:
        if self.type:
            return self.type
        return _DEFAULT_ERROR_TYPES.get(self.status, "server_error" if self.status >= 500 else "invalid_request_error")

    def payload(self) -> dict[str, Any]:
        return {"error": {"message": self.message, "type": self.error_type(), "param": self.param, "code": self.code}}


@dataclass
class CutStream:
    """Send the first ``after_chunks`` chunks of ``reply`` then drop the connection mid-body.

    Streaming: the response is chunked; the terminating chunk and ``[DONE]`` are never sent,
    so the client sees an incomplete body. ``reset=True`` closes with a TCP RST instead of FIN.
    Non-streaming: a Content-Length is promised and only half the body is sent.
    ``after_chunks="middle"``: cut where ``EndsEarly`` would.
    """

    after_chunks: int | str = 2
    reply: Text | ToolCalls | Stream | None = None  # default: a short Text
    reset: bool = False


@dataclass
class EndsEarly:
    """A stream that ends cleanly at the HTTP level before the answer is complete: the body
    is properly terminated (``framing="chunked"``: the last chunk is sent; ``"close"``: no
    length or chunking, the server closes the connection, as HTTP/1.0 bodies end), but
    neither ``finish_reason`` nor ``[DONE]`` is ever sent.

    ``after_chunks="middle"`` (the default) cuts in the middle of the last tool call's
    arguments when there are calls (the earlier calls arrive complete), else in the middle
    of the text; an int sends that many chunks. Non-streaming: like ``CutStream``.
    """

    reply: Text | ToolCalls | Stream | None = None  # default: a short Text
    after_chunks: int | str = "middle"
    framing: str = "chunked"


@dataclass
class NoFinish:
    """The whole answer and ``[DONE]``, but no ``finish_reason`` in any chunk (some proxies
    do this; LiteLLM-proxy#19)."""

    reply: Text | ToolCalls | Stream


@dataclass
class Hang:
    """Accept the request and say nothing for ``seconds`` (for timeout tests).

    ``after_chunks``: for a streaming request, first send that many chunks of ``reply`` then
    stall (a read timeout mid-stream). After the wait, ``then`` is sent if given (it may find
    the client gone); otherwise the connection is closed.
    """

    seconds: float
    after_chunks: int | str | None = None  # "middle": where EndsEarly would cut
    reply: Text | ToolCalls | Stream | None = None
    then: Any = None


@dataclass
class Stream:
    """Benchmark reply: ``tokens`` one-token deltas (each ``token``) as fast as possible."""

    tokens: int
    token: str = " tok"
    delay: float = 0.0
    usage: Usage | None = None


@dataclass
class StreamError:
    """Stream some chunks then an in-band ``data: {"error": ...}`` event (as OpenAI does)."""

    message: str
    after_chunks: int = 1
    type: str = "server_error"
    reply: Text | ToolCalls | Stream | None = None


Reply = Union[Text, ToolCalls, Error, CutStream, EndsEarly, NoFinish, Hang, Stream, StreamError, str]
Scenario = Callable[[ChatRequest], Any]

REPLY_TYPES = (Text, ToolCalls, Error, CutStream, EndsEarly, NoFinish, Hang, Stream, StreamError)


def resolve(reply: Any, req: ChatRequest) -> Any:
    """Call callables until a concrete reply comes out; ``str`` becomes ``Text``."""
    for _ in range(100):
        if isinstance(reply, REPLY_TYPES):
            return reply
        if isinstance(reply, str):
            return Text(reply)
        if callable(reply):
            reply = reply(req)
            continue
        raise TypeError(f"scenario returned {type(reply).__name__}, not a reply: {reply!r}")
    raise RuntimeError("scenario callables nest too deep")


def _overrun(message: str) -> Error:
    # x-should-retry: false makes the openai client raise at once instead of retrying.
    return Error(500, message, headers={"x-should-retry": "false"}, type="scripted_model_error")


class Script:
    """The i-th step answers the i-th request this Script sees (its own counter).

    Each step is a reply or a callable ``(ChatRequest) -> reply``. A request past the end gets
    a 500 ``scripted_model_error`` (not retried) naming the problem, and is noted in
    ``Script.overruns``.
    """

    def __init__(self, steps: list[Any], name: str = "Script") -> None:
        self.steps = list(steps)
        self.name = name
        self.used = 0
        self.overruns: list[str] = []
        self._lock = threading.Lock()

    @property
    def done(self) -> bool:
        return self.used >= len(self.steps)

    def __call__(self, req: ChatRequest) -> Any:
        with self._lock:
            i = self.used
            self.used += 1
        if i >= len(self.steps):
            msg = (
                f"{self.name} has {len(self.steps)} steps but got request #{i + 1} "
                f"(last user message: {req.last_user_text()[:200]!r}, "
                f"last tool results: {[r[:100] for r in req.last_tool_results()]!r})"
            )
            self.overruns.append(msg)
            return _overrun(msg)
        return self.steps[i]


class Keyed:
    """Branch on the last user message: the first key contained in it picks the reply.

    Keys are substrings (case-sensitive) tried in order. Values are replies or callables
    (typically a ``Script`` for that user turn). No match: ``default`` if given, else a 500
    ``scripted_model_error`` naming the message.
    """

    def __init__(self, branches: Mapping[str, Any], default: Any = None) -> None:
        self.branches = dict(branches)
        self.default = default

    def __call__(self, req: ChatRequest) -> Any:
        text = req.last_user_text()
        for key, value in self.branches.items():
            if key in text:
                return value
        if self.default is not None:
            return self.default
        return _overrun(f"Keyed: no branch for user message {text[:200]!r}; keys: {list(self.branches)!r}")


FAULTS = ("eof", "eof-close", "cut", "reset", "429", "500", "stall", "hang", "no-finish")


class Faulty:
    """Wrap a scenario so that each distinct request first gets a fault, ``times`` times
    (``None``: always), then the scenario's own reply. Retries of a request (the same
    messages and tools) see the same inner reply: the inner scenario (a ``Script``) is
    asked once per distinct request, so its steps are not used up by the retries.

    Faults: ``eof`` (``EndsEarly``: the body ends cleanly mid-answer), ``eof-close`` (the
    same, delimited by closing the connection), ``cut`` (``CutStream`` in the middle of the
    answer, a chunked body left unfinished), ``reset`` (the same with a TCP RST), ``429``
    (with ``retry-after: 0``), ``500``, ``stall`` (``Hang`` mid-stream for ``seconds``),
    ``hang`` (no answer at all for ``seconds``), ``no-finish`` (``NoFinish``: complete, with
    ``[DONE]``, but no ``finish_reason``; not a failure).
    """

    def __init__(self, scenario: Any, fault: str = "eof", times: int | None = 1, seconds: float = 30.0) -> None:
        if fault not in FAULTS:
            raise ValueError(f"unknown fault {fault!r}; known: {', '.join(FAULTS)}")
        self.scenario = scenario
        self.fault = fault
        self.times = times
        self.seconds = seconds
        self.models = getattr(scenario, "models", None)
        self.provider = getattr(scenario, "provider", None)
        self.faults_served = 0
        self._seen: dict[str, list[Any]] = {}
        self._lock = threading.Lock()

    def _key(self, req: ChatRequest) -> str:
        import hashlib

        raw = json.dumps([req.messages, req.tools], sort_keys=True, default=str)
        return hashlib.sha1(raw.encode()).hexdigest()

    def __call__(self, req: ChatRequest) -> Any:
        key = self._key(req)
        with self._lock:  # one request at a time: the inner scenario is asked once per key
            state = self._seen.get(key)
            if state is None:
                state = self._seen[key] = [resolve(self.scenario, req), 0]
            state[1] += 1
            reply, n = state
            if (self.times is not None and n > self.times) or not isinstance(reply, (Text, ToolCalls, Stream)):
                return reply
            self.faults_served += 1
        return self.apply(reply)

    def apply(self, reply: Text | ToolCalls | Stream) -> Any:
        f = self.fault
        if f in ("eof", "eof-close"):
            return EndsEarly(reply, framing="close" if f == "eof-close" else "chunked")
        if f in ("cut", "reset"):
            return CutStream(after_chunks="middle", reply=reply, reset=f == "reset")
        if f == "429":
            return Error(429, "Rate limit reached for requests. Please try again in 0s.", headers={"retry-after": "0"})
        if f == "500":
            return Error(500, "The server had an error while processing your request. Sorry about that!")
        if f == "stall":
            return Hang(self.seconds, after_chunks="middle", reply=reply)
        if f == "hang":
            return Hang(self.seconds)
        return NoFinish(reply)


def echo(req: ChatRequest) -> Reply:
    """Built-in scenario: answers ``echo: <last user message>``."""
    return Text(f"echo: {req.last_user_text()}")


def fixed(text: str = "ok", tokens: str | None = None) -> Scenario:
    """Built-in factory (for ``--scenario scripted_model.scenarios:fixed --arg text=hi``):
    every request gets ``Text(text)``, or ``Stream(tokens=int(tokens))`` if ``tokens`` is set."""
    if tokens is not None:
        n = int(tokens)
        return lambda req: Stream(tokens=n)
    return lambda req: Text(text)


# ---- usage estimates ---------------------------------------------------------------------


def estimate_prompt_tokens(body: Mapping[str, Any]) -> int:
    """``usage.prompt_tokens`` for a request body: tokens (o200k_base) of its canonical
    rendering, tools then messages (see ``prefix_cache``)."""
    from .prefix_cache import prompt_tokens

    return prompt_tokens(body)


def estimate_completion_tokens(content: str, calls: list[tuple[str, str]] = ()) -> int:
    chars = len(content) + sum(len(name) + len(args) for name, args in calls)
    return math.ceil(chars / 4)


def load_scenario(spec: str, kwargs: Mapping[str, str] | None = None) -> Scenario:
    """``"pkg.module:attr"`` → a scenario. A callable that binds with no positional
    arguments (plus ``kwargs``) is a factory and is called; anything else is the scenario."""
    import importlib

    mod_name, _, attr = spec.partition(":")
    if not attr:
        raise ValueError(f"scenario must look like 'module:function', got {spec!r}")
    obj: Any = importlib.import_module(mod_name)
    for part in attr.split("."):
        obj = getattr(obj, part)
    kwargs = dict(kwargs or {})
    if inspect.isclass(obj):
        return obj(**kwargs)
    if inspect.isfunction(obj) or inspect.ismethod(obj):
        try:
            inspect.signature(obj).bind(**kwargs)
        except TypeError:
            if kwargs:
                raise
            return obj  # a function of the request: the scenario itself
        return obj(**kwargs)
    if kwargs:
        raise ValueError(f"{spec} is not a factory; cannot pass {kwargs!r}")
    return obj
