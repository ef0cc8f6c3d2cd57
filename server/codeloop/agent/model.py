"""The model client: streaming chat completions with tools over any
OpenAI-compatible endpoint, with retries that honour ``retry-after``.

What it guarantees, whatever the server:

- **Nothing runs from a response that did not finish.** A response is finished when the
  server said so: a ``finish_reason`` in a chunk (every documented provider sends one in
  its last chunk: OpenAI, Ollama, vLLM, llama.cpp, LM Studio, DeepSeek) or, failing that,
  the ``data: [DONE]`` line (some proxies omit ``finish_reason`` but still end the stream
  properly). The openai SDK stops at ``[DONE]`` without saying whether it saw it, so the
  client watches the raw SSE body for that line (``_SSEEnd``, an httpx response hook). A
  stream that just stops (the connection closed, or a chunked body ended, with neither
  signal) is cut: the attempt is retried (the loop discards the partial text on the
  Retry event) and the turn fails with a clear error once retries run out. Tool calls
  whose response ended at the output limit (``finish_reason: length``) are not run either.
- **Tool-call deltas from non-conforming servers assemble right**: Ollama's legacy parser
  sends ``index: 0`` for every call (ollama#15457, #15497), so a delta with a new call id
  starts a new call; older llama.cpp and NVIDIA NIM repeat the whole name in every delta
  (llama.cpp#13774), so a name equal to the one accumulated is not appended again.
- **Servers without streaming** (a 400 on ``stream: true``) are asked without it, for the
  rest of the session, with a notice.
- **Tool calls sent as text** (a model served without a tool-call parser, e.g. Qwen or
  Hermes on vLLM without ``--tool-call-parser``: ``<tool_call>{"name": …, "arguments": …}
  </tool_call>`` or a bare JSON object) are taken as calls when the whole answer is exactly
  such calls to tools the request offered, with a notice. While an answer might still turn
  out to be one, its text is held back instead of streamed.
- **Usage as providers bill it**: cached prompt tokens from OpenAI
  (``prompt_tokens_details.cached_tokens``), DeepSeek (``prompt_cache_hit_tokens``) and
  Anthropic-compatible gateways (``cache_read_input_tokens``); and a warning, once, when the
  server counted far fewer prompt tokens than were sent (Ollama silently drops the start of
  a prompt longer than its context window).

Notices for the user travel on ``Completion.notices``.
"""

from __future__ import annotations

import asyncio
import email.utils
import functools
import importlib
import json
import logging
import random
import re
import ssl
import time
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

import openai
from openai import AsyncOpenAI

from codeloop.core.events import Retry
from codeloop.config import Settings
from codeloop.context.tokens import count_messages

log = logging.getLogger(__name__)

MAX_RETRY_DELAY = 60.0
# While a stream is consumed, the event loop (an editor's requests) gets a turn this often (s).
YIELD_EVERY = 0.001
YIELD_ROUNDS = 4

# The prompt-truncation warning: the server counted under this share of the prompt tokens
# we estimate, for a prompt of at least TRUNCATION_MIN_TOKENS (small prompts fit any window,
# and estimates of small prompts are noisy).
TRUNCATION_RATIO = 0.5
TRUNCATION_MIN_TOKENS = 2048


@functools.cache
def shared_ssl_context() -> ssl.SSLContext:
    """One TLS context for every client of the process. Building one loads the CA
    bundle (~20 ms, blocking); a new session, or a /model switch, should not stall the
    event loop for that. Hosts may warm it in a thread at startup."""
    for name in ("httpx2", "httpx"):  # whichever the openai client is built on
        try:
            return importlib.import_module(name).create_ssl_context()  # type: ignore[no-any-return]
        except (ImportError, AttributeError):
            continue
    return ssl.create_default_context()


@dataclass(slots=True)
class ToolCallRequest:
    id: str
    name: str
    arguments: str  # raw JSON text, as the model sent it


@dataclass(slots=True)
class Completion:
    content: str
    tool_calls: list[ToolCallRequest]
    finish_reason: str | None
    usage: dict[str, int] = field(default_factory=dict)
    # Things the user should know about how this answer came (a fallback, a workaround,
    # a misconfigured server). Hosts show them as warnings.
    notices: list[str] = field(default_factory=list)

    def as_message(self) -> dict[str, Any]:
        msg: dict[str, Any] = {"role": "assistant", "content": self.content or None}
        if self.tool_calls:
            msg["tool_calls"] = [
                {"id": c.id, "type": "function", "function": {"name": c.name, "arguments": c.arguments}}
                for c in self.tool_calls
            ]
        return msg


class ModelError(Exception):
    """A model call that failed for good. ``message`` is for the user."""

    def __init__(self, message: str, kind: str, status: int | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.kind = kind
        self.status = status


class _Transient(Exception):
    def __init__(self, reason: str, retry_after: float | None = None) -> None:
        super().__init__(reason)
        self.reason = reason
        self.retry_after = retry_after


def _retry_after(headers: Any) -> float | None:
    if headers is None:
        return None
    value = headers.get("retry-after-ms")
    if value:
        try:
            return float(value) / 1000.0
        except ValueError:
            pass
    value = headers.get("retry-after")
    if not value:
        return None
    try:
        return float(value)
    except ValueError:
        parsed = email.utils.parsedate_to_datetime(value)
        if parsed is None:
            return None
        return max(0.0, parsed.timestamp() - time.time())


def _provider_message(e: openai.APIStatusError) -> str:
    body = e.body
    if isinstance(body, dict):
        err = body.get("error", body)
        if isinstance(err, dict) and err.get("message"):
            return str(err["message"])
        if isinstance(err, str):
            return err
    return e.message or str(e)


def _provider_param(e: openai.APIStatusError) -> str | None:
    body = e.body
    if isinstance(body, dict):
        err = body.get("error", body)
        if isinstance(err, dict) and isinstance(err.get("param"), str):
            return str(err["param"])
    return None


# ---- the end of an SSE body -----------------------------------------------------------------

# "data: [DONE]" at the start of a line. Inside a JSON event a newline is always escaped, so
# a line that starts so is the terminator, never content that mentions it.
_DONE_LINE = re.compile(rb"[\r\n]data: ?\[DONE\]")


def _httpx_module() -> Any:
    """The httpx package the openai client is built on (``httpx2`` or ``httpx``)."""
    base = openai.DefaultAsyncHttpxClient.__mro__[1]
    return importlib.import_module(base.__module__.split(".")[0])


try:
    _AsyncByteStream: Any = _httpx_module().AsyncByteStream
except Exception:  # pragma: no cover - an SDK without it: no [DONE] detection, finish_reason only
    _AsyncByteStream = None


if _AsyncByteStream is not None:

    class _SSEEnd(_AsyncByteStream):  # type: ignore[misc, valid-type]
        """An SSE response body, passed through unchanged, noting whether ``data: [DONE]``
        went by. (A compressed SSE body is not inspected; then only ``finish_reason`` says
        that a response finished.)"""

        def __init__(self, inner: Any) -> None:
            self._inner = inner
            self.done = False
            self._tail = b"\n"  # the body starts at a line start

        async def __aiter__(self) -> Any:
            async for chunk in self._inner:
                if not self.done and chunk:
                    window = self._tail + chunk
                    if b"[DONE]" in window and _DONE_LINE.search(window):
                        self.done = True
                    self._tail = window[-16:]
                yield chunk

        async def aclose(self) -> None:
            await self._inner.aclose()


async def _watch_sse_end(response: Any) -> None:
    """httpx response hook (the body is not read yet): wrap an SSE body in ``_SSEEnd``."""
    if _AsyncByteStream is None:
        return
    try:
        if response.headers.get("content-type", "").startswith("text/event-stream") and isinstance(
            response.stream, _AsyncByteStream
        ):
            response.stream = _SSEEnd(response.stream)
    except Exception:  # pragma: no cover - never break a request over this
        log.debug("could not watch the SSE body", exc_info=True)


def _saw_done(stream: Any) -> bool:
    body = getattr(getattr(stream, "response", None), "stream", None)
    return bool(getattr(body, "done", False))


# ---- assembling an answer -------------------------------------------------------------------


def _complete_json_object(text: str) -> bool:
    try:
        return isinstance(json.loads(text), dict)
    except ValueError:
        return False


class _Calls:
    """Tool-call deltas → calls, robust to servers that get the indices or names wrong."""

    def __init__(self, names: frozenset[str]) -> None:
        self.names = names
        self.calls: list[dict[str, Any]] = []
        self._by_index: dict[int, dict[str, Any]] = {}

    def add(self, index: int, call_id: str | None, name: str | None, arguments: str | None) -> None:
        slot = self._by_index.get(index)
        if slot is None or self._starts_new(slot, call_id, name, arguments):
            slot = {"id": call_id or "", "name": name or "", "arguments": [arguments] if arguments else []}
            self.calls.append(slot)
            self._by_index[index] = slot
            return
        if call_id and not slot["id"]:
            slot["id"] = call_id
        if name and not slot["arguments"]:
            slot["name"] = self._name(slot["name"], name)
        if arguments:
            slot["arguments"].append(arguments)

    def _starts_new(self, slot: dict[str, Any], call_id: str | None, name: str | None, arguments: str | None) -> bool:
        if call_id:
            # A delta naming another call (Ollama sends index 0 for every call, each with its
            # own id); continuation deltas that repeat the id (sglang, LiteLLM) are the same call.
            return bool(slot["id"]) and call_id != slot["id"]
        if name and slot["arguments"]:
            # A name once arguments have started: another call (OpenAI sends the name first,
            # once), unless it is the same name repeated (older llama.cpp) and this call's
            # arguments are not complete yet.
            if name != slot["name"]:
                return True
            return bool(arguments) and _complete_json_object("".join(slot["arguments"]))
        return False

    def _name(self, current: str, piece: str) -> str:
        """A name sent in pieces is appended; one repeated whole is not."""
        if not current:
            return piece
        if piece == current and (not self.names or current in self.names) and current + piece not in self.names:
            return current
        return current + piece


_TEXT_CALL_STARTS = ("<tool_call>", "```json", "```{", "{", "[{")
_TOOL_CALL_BLOCK = re.compile(r"<tool_call>(.*?)</tool_call>", re.DOTALL)
_TOOL_CALL_BLOCKS = re.compile(r"(?:\s*<tool_call>.*?</tool_call>)+\s*", re.DOTALL)
_FENCED = re.compile(r"```(?:json)?\s*(.*?)\s*```", re.DOTALL)


def _might_be_text_call(head: str) -> bool:
    """Could an answer that starts with ``head`` turn out to be a tool call in text?"""
    squeezed = re.sub(r"\s+", "", head)[:12]
    if not squeezed:
        return True
    return any(s.startswith(squeezed) or squeezed.startswith(s) for s in _TEXT_CALL_STARTS)


def _call_from_json(obj: Any, names: frozenset[str]) -> tuple[str, str] | None:
    if not isinstance(obj, dict) or not set(obj) <= {"name", "arguments", "parameters", "id", "type"}:
        return None
    name = obj.get("name")
    args = obj.get("arguments", obj.get("parameters", {}))
    if not isinstance(name, str) or name not in names:
        return None
    if isinstance(args, str):
        try:
            args = json.loads(args) if args.strip() else {}
        except ValueError:
            return None
    if not isinstance(args, dict):
        return None
    return name, json.dumps(args, ensure_ascii=False)


def _text_tool_calls(text: str, names: frozenset[str]) -> list[tuple[str, str]] | None:
    """The calls, when ``text`` is exactly one or more tool calls to known tools written as
    text: ``<tool_call>{…}</tool_call>`` blocks (Hermes/Qwen templates), a fenced JSON block,
    or a bare JSON object (or list of them) with ``name`` and ``arguments`` (or
    ``parameters``, as Llama 3 writes them), several of them one after another. Anything
    else: None."""
    s = text.strip()
    if not s or not names:
        return None
    if s.startswith("<tool_call>"):
        if not _TOOL_CALL_BLOCKS.fullmatch(s):
            return None
        payloads = [m.strip() for m in _TOOL_CALL_BLOCK.findall(s)]
    else:
        fenced = _FENCED.fullmatch(s)
        payloads = [fenced.group(1) if fenced else s]
    out: list[tuple[str, str]] = []
    for payload in payloads:
        values = _json_values(payload)
        if values is None:
            return None
        for obj in values:
            for item in obj if isinstance(obj, list) and obj else [obj]:
                call = _call_from_json(item, names)
                if call is None:
                    return None
                out.append(call)
    return out or None


def _json_values(text: str) -> list[Any] | None:
    """One or more JSON values separated by whitespace (one call per line), or None."""
    decoder = json.JSONDecoder()
    values = []
    i, n = 0, len(text)
    while i < n:
        while i < n and text[i].isspace():
            i += 1
        if i >= n:
            break
        try:
            value, i = decoder.raw_decode(text, i)
        except ValueError:
            return None
        values.append(value)
    return values or None


class _Answer:
    """One response being assembled, from stream deltas or a whole message."""

    def __init__(self, names: frozenset[str], on_text: TextCallback | None) -> None:
        self.names = names
        self.on_text = on_text
        self.content: list[str] = []
        self.calls = _Calls(names)
        self.finish: str | None = None
        self.usage: dict[str, int] = {}
        # While the text might be a tool call written as text, it is held back.
        self._holding = bool(names)
        self._head = ""
        self._held: list[str] = []

    def text(self, piece: str) -> None:
        self.content.append(piece)
        if not self._holding:
            if self.on_text:
                self.on_text(piece)
            return
        self._held.append(piece)
        if len(self._head) < 16:
            self._head += piece
            if not _might_be_text_call(self._head):
                self._release()

    def _release(self) -> None:
        self._holding = False
        held, self._held = "".join(self._held), []
        if held and self.on_text:
            self.on_text(held)

    def build(self, notices: list[str]) -> Completion:
        content = "".join(self.content)
        calls = [(c["id"], c["name"], "".join(c["arguments"])) for c in self.calls.calls]
        if not calls and self._holding and content:
            parsed = _text_tool_calls(content, self.names)
            if parsed is not None:
                notices.append(
                    "The model wrote its tool call(s) as text instead of a native tool call, probably "
                    "because the server runs it without a tool-call parser; codeloop took "
                    f"{', '.join(n for n, _ in parsed)} as tool call(s). Fix it on the server (vLLM: "
                    "--enable-auto-tool-choice --tool-call-parser hermes for Qwen/Hermes models; see the "
                    "README's provider table)."
                )
                calls = [("", name, args) for name, args in parsed]
                content = ""
                self._holding, self._held = False, []  # never shown: it was the call
        if self._holding:
            self._release()  # the held text was an answer after all
        seen: set[str] = set()
        tool_calls = []
        for call_id, name, args in calls:
            if not call_id or call_id in seen:
                call_id = f"call_{len(seen)}_{random.getrandbits(32):08x}"
            seen.add(call_id)
            tool_calls.append(ToolCallRequest(call_id, name, args))
        return Completion(content, tool_calls, self.finish, self.usage)


TextCallback = Callable[[str], None]
RetryCallback = Callable[[Retry], None]


def _tool_names(tools: list[dict[str, Any]] | None) -> frozenset[str]:
    names = set()
    for t in tools or []:
        fn = t.get("function") if isinstance(t, Mapping) else None
        if isinstance(fn, Mapping) and isinstance(fn.get("name"), str):
            names.add(fn["name"])
    return frozenset(names)


def _request_chars(messages: list[dict[str, Any]]) -> int:
    total = 0
    for m in messages:
        content = m.get("content")
        if isinstance(content, str):
            total += len(content)
        elif content is not None:
            total += len(str(content))
        for call in m.get("tool_calls") or ():
            fn = call.get("function") if isinstance(call, Mapping) else None
            if isinstance(fn, Mapping):
                total += len(str(fn.get("arguments") or ""))
    return total


class ModelClient:
    """One instance per session. ``complete`` streams, assembles and retries."""

    def __init__(
        self,
        settings: Settings,
        *,
        sleep: Callable[[float], Awaitable[None]] = asyncio.sleep,
    ) -> None:
        self.settings = settings
        self._sleep = sleep
        self._use_stream_options = True
        # False once the server rejected ``stream: true``: remembered for this client.
        self.streaming = True
        self._notices: list[str] = []  # to go out with the next completion
        self._warned: set[str] = set()
        self._client = AsyncOpenAI(
            base_url=settings.base_url,
            api_key=settings.key(),
            max_retries=0,  # we retry ourselves, visibly
            timeout=settings.request_timeout,
            http_client=openai.DefaultAsyncHttpxClient(
                verify=shared_ssl_context(), event_hooks={"response": [_watch_sse_end]}
            ),
        )

    @property
    def model(self) -> str:
        return self.settings.model

    async def close(self) -> None:
        await self._client.close()

    async def complete(
        self,
        messages: list[dict[str, Any]],
        tools: list[dict[str, Any]] | None,
        *,
        on_text: TextCallback | None = None,
        on_retry: RetryCallback | None = None,
        model: str | None = None,
    ) -> Completion:
        attempts = self.settings.max_retries + 1
        names = _tool_names(tools)
        for attempt in range(attempts):
            try:
                answer = _Answer(names, on_text)
                if self.streaming:
                    await self._stream_once(messages, tools, answer, model or self.settings.model)
                else:
                    await self._plain_once(messages, tools, answer, model or self.settings.model)
                completion = self._finish(answer)
            except _Transient as t:
                if attempt + 1 >= attempts:
                    raise ModelError(
                        f"The model request failed after {attempts} attempts: {t.reason}", "api"
                    ) from t
                delay = self._backoff(attempt, t.retry_after)
                if on_retry:
                    on_retry(Retry(attempt + 1, attempts - 1, round(delay, 3), t.reason))
                log.info("retrying model request in %.2fs: %s", delay, t.reason)
                await self._sleep(delay)
                continue
            self._check_truncation(messages, tools, completion)
            completion.notices[:0] = self._notices
            self._notices = []
            return completion
        raise AssertionError("unreachable")

    def _backoff(self, attempt: int, retry_after: float | None) -> float:
        if retry_after is not None:
            return min(MAX_RETRY_DELAY, max(0.0, retry_after))
        base = self.settings.retry_base_delay * (2**attempt)
        return min(MAX_RETRY_DELAY, base * (0.75 + random.random() * 0.5))

    def _notice_once(self, key: str, message: str) -> None:
        if key not in self._warned:
            self._warned.add(key)
            self._notices.append(message)
            log.warning("%s", message)

    # -- one attempt -----------------------------------------------------------------------

    def _body(self, messages: list[dict[str, Any]], tools: list[dict[str, Any]] | None) -> dict[str, Any]:
        # The history and the tool schemas are already plain JSON in the wire format. Passed
        # as parameters, the SDK would re-walk all of them against its TypedDicts on every
        # request (~0.13 ms a message, ~0.6 ms for the schemas: 4 ms at 30 messages, over
        # 100 ms in a long session). extra_body goes into the JSON body as it is, and its
        # keys take precedence over the parameters' (documented in the SDK's _merge_mappings).
        body: dict[str, Any] = {"messages": messages}
        if tools:
            body["tools"] = tools
        return body

    async def _stream_once(
        self, messages: list[dict[str, Any]], tools: list[dict[str, Any]] | None, answer: _Answer, model: str
    ) -> None:
        kwargs: dict[str, Any] = {"model": model, "messages": [], "stream": True, "extra_body": self._body(messages, tools)}
        if self._use_stream_options:
            kwargs["stream_options"] = {"include_usage": True}
        try:
            stream = await self._create(kwargs)
        except (openai.BadRequestError, openai.UnprocessableEntityError) as e:
            msg = _provider_message(e)
            if self._use_stream_options and "stream_options" in msg:
                self._use_stream_options = False  # an older server; usage may be missing
                return await self._stream_once(messages, tools, answer, model)
            if "stream" in msg.lower() or _provider_param(e) == "stream":
                return await self._fall_back_to_plain(messages, tools, answer, model, e)
            raise ModelError(f"The model rejected the request ({e.status_code}): {msg}", "bad_request", e.status_code) from e
        await self._consume(stream, answer)

    async def _fall_back_to_plain(
        self,
        messages: list[dict[str, Any]],
        tools: list[dict[str, Any]] | None,
        answer: _Answer,
        model: str,
        error: openai.APIStatusError,
    ) -> None:
        """The server refused ``stream: true``: ask without streaming. Unless that is refused
        too (then streaming was not the problem), the client keeps asking so, and says so."""
        msg = _provider_message(error)
        self.streaming = False
        try:
            await self._plain_once(messages, tools, answer, model)
        except ModelError as again:
            if again.kind == "bad_request":
                self.streaming = True
            raise
        finally:
            if not self.streaming:  # also when this attempt failed and will be retried
                self._notice_once(
                    "no-stream",
                    f"The server at {self.settings.base_url} does not stream (it answered {error.status_code}: "
                    f"{msg}). codeloop asks it without streaming from now on in this session, so each "
                    "answer appears when it is complete.",
                )

    async def _plain_once(
        self, messages: list[dict[str, Any]], tools: list[dict[str, Any]] | None, answer: _Answer, model: str
    ) -> None:
        kwargs: dict[str, Any] = {"model": model, "messages": [], "stream": False, "extra_body": self._body(messages, tools)}
        try:
            response = await self._create(kwargs)
        except (openai.BadRequestError, openai.UnprocessableEntityError) as e:
            raise ModelError(
                f"The model rejected the request ({e.status_code}): {_provider_message(e)}", "bad_request", e.status_code
            ) from e
        url = self.settings.base_url
        choices = getattr(response, "choices", None) or []
        if getattr(response, "usage", None):
            answer.usage = _usage_dict(response.usage)
        if not choices:
            raise _Transient(f"the response from {url} had no answer in it")
        choice = choices[0]
        message = choice.message
        if message.content:
            answer.text(message.content)
        for i, tc in enumerate(message.tool_calls or []):
            fn = getattr(tc, "function", None)
            answer.calls.add(i, getattr(tc, "id", None), getattr(fn, "name", None), getattr(fn, "arguments", None))
        # A whole JSON body arrived, so the answer is complete even without a finish_reason.
        answer.finish = choice.finish_reason or ("tool_calls" if answer.calls.calls else "stop")

    async def _create(self, kwargs: dict[str, Any]) -> Any:
        url = self.settings.base_url
        try:
            return await self._client.chat.completions.create(**kwargs)
        except (openai.BadRequestError, openai.UnprocessableEntityError):
            raise
        except openai.AuthenticationError as e:
            raise ModelError(
                f"Authentication failed (401) at {url}: {_provider_message(e)}. "
                "Check OPENAI_API_KEY (or the codeloop API key setting).",
                "auth",
                401,
            ) from e
        except openai.RateLimitError as e:
            raise _Transient(f"rate limited (429): {_provider_message(e)}", _retry_after(e.response.headers)) from e
        except openai.InternalServerError as e:
            if e.response.headers.get("x-should-retry", "").lower() == "false":
                raise ModelError(f"The model endpoint {url} failed ({e.status_code}): {_provider_message(e)}", "api", e.status_code) from e
            raise _Transient(
                f"server error ({e.status_code}): {_provider_message(e)}", _retry_after(e.response.headers)
            ) from e
        except openai.APIStatusError as e:
            if e.status_code in (408, 409) or e.status_code >= 500:
                raise _Transient(f"HTTP {e.status_code}: {_provider_message(e)}", _retry_after(e.response.headers)) from e
            raise ModelError(
                f"The model endpoint {url} answered {e.status_code}: {_provider_message(e)}",
                "api",
                e.status_code,
            ) from e
        except openai.APITimeoutError as e:
            raise _Transient(f"the request to {url} timed out") from e
        except openai.APIConnectionError as e:
            if _never_connected(e):
                raise ModelError(
                    f"Could not connect to the model at {url} ({_root_cause(e)}). "
                    "Check OPENAI_BASE_URL or --base-url, and that the server is running.",
                    "connection",
                ) from e
            # Connected, then the answer was cut (a non-streamed body shorter than promised).
            raise _Transient(f"the response from {url} was cut ({_root_cause(e)})") from e

    async def _consume(self, stream: Any, answer: _Answer) -> None:
        url = self.settings.base_url
        loop = asyncio.get_running_loop()
        last_yield = loop.time()
        calls = answer.calls
        try:
            async for chunk in stream:
                # The SDK can turn one socket read into hundreds of chunks without
                # yielding: give the event loop (the editor's requests) a turn every few ms.
                now = loop.time()
                if now - last_yield >= YIELD_EVERY:
                    # A few loop iterations: an editor request needs several (read it,
                    # run its handler task, write the answer) to finish.
                    for _ in range(YIELD_ROUNDS):
                        await asyncio.sleep(0)
                    last_yield = loop.time()
                if getattr(chunk, "usage", None):
                    answer.usage = _usage_dict(chunk.usage)
                for choice in chunk.choices or []:
                    delta = choice.delta
                    if delta is not None:
                        if delta.content:
                            answer.text(delta.content)
                        for i, tc in enumerate(delta.tool_calls or []):
                            fn = tc.function
                            call_id = tc.id
                            if not call_id and fn is not None and fn.model_extra:
                                # Older llama.cpp put the id inside "function".
                                extra_id = fn.model_extra.get("id")
                                call_id = extra_id if isinstance(extra_id, str) else None
                            calls.add(
                                tc.index if tc.index is not None else i,
                                call_id,
                                fn.name if fn is not None else None,
                                fn.arguments if fn is not None else None,
                            )
                    if choice.finish_reason:
                        answer.finish = choice.finish_reason
        except asyncio.CancelledError:
            await _close_quietly(stream)
            raise
        except Exception as e:
            await _close_quietly(stream)
            transport = isinstance(e, (openai.APIConnectionError, OSError)) or _is_httpx_error(e)
            if not transport and not isinstance(e, (openai.APIError, ValueError)):
                raise
            if answer.finish and transport:
                # The server had said the answer was complete; only the end of the stream
                # (the usage chunk, [DONE]) was lost.
                log.info("stream from %s ended uncleanly after finish_reason: %s", url, _root_cause(e))
                return
            if isinstance(e, openai.APITimeoutError):
                raise _Transient(
                    f"the stream from {url} stalled (nothing for {self.settings.request_timeout:g} s)"
                ) from e
            # A stream cut mid-way: retried. Text already shown is discarded by the
            # Retry event's consumer.
            raise _Transient(f"the stream from {url} was cut ({_root_cause(e)})") from e
        if answer.finish is None:
            if not _saw_done(stream):
                raise _Transient(self._cut_reason(answer))
            # [DONE] without a finish_reason (some proxies): the answer is complete.
            answer.finish = "tool_calls" if calls.calls else "stop"
            log.info("stream from %s sent [DONE] without a finish_reason", url)

    def _cut_reason(self, answer: _Answer) -> str:
        url = self.settings.base_url
        got = []
        text = sum(len(p) for p in answer.content)
        if text:
            got.append(f"{text} characters of text")
        if answer.calls.calls:
            got.append(f"{len(answer.calls.calls)} tool call(s), not run")
        if not got:
            return f"the stream from {url} ended without a response"
        return (
            f"the stream from {url} ended before the answer was complete (no finish_reason and no "
            f"[DONE]; got {' and '.join(got)}); nothing from it was used"
        )

    def _finish(self, answer: _Answer) -> Completion:
        notices: list[str] = []
        completion = answer.build(notices)
        for n in notices:
            self._notice_once("text-tool-calls", n)
        finish = completion.finish_reason
        if completion.tool_calls and finish not in (None, "tool_calls", "stop", "function_call"):
            names = ", ".join(c.name or "?" for c in completion.tool_calls)
            raise ModelError(
                f"The model's answer ended with finish_reason {finish!r} in the middle of its tool call(s) "
                f"({names}), so nothing was run"
                + (
                    ": it hit its output token limit. Ask for a smaller step (e.g. a file in parts), or raise "
                    "the server's output limit (max_tokens; Ollama: num_predict)."
                    if finish == "length"
                    else "."
                ),
                "incomplete",
            )
        if finish == "length":
            self._notices.append("The answer stopped at the model's output token limit (finish_reason: length).")
        return completion

    def _check_truncation(
        self, messages: list[dict[str, Any]], tools: list[dict[str, Any]] | None, completion: Completion
    ) -> None:
        """Warn once when the server counted far fewer prompt tokens than were sent: it cut the
        prompt to fit its context window (Ollama drops the start of the conversation, silently)."""
        if "truncated" in self._warned:
            return
        usage = completion.usage
        prompt = usage.get("prompt_tokens", 0)
        if prompt <= 0 or usage.get("cached_tokens", 0):
            return  # no count, or a server that reports a cache (and so counts it in the prompt)
        # The characters bound the token estimate from above (a token is hardly ever shorter
        # than one), so small prompts are passed over without tokenizing. Otherwise the count
        # is cheap: count_tokens caches per string, and the history's strings repeat.
        bound = _request_chars(messages) + 8 * len(messages) + (len(json.dumps(tools)) if tools else 0)
        if bound < TRUNCATION_MIN_TOKENS or bound * TRUNCATION_RATIO <= prompt:
            return
        estimate = count_messages(messages, tools)
        if estimate < TRUNCATION_MIN_TOKENS or prompt >= TRUNCATION_RATIO * estimate:
            return
        self._notice_once(
            "truncated",
            f"The server counted {prompt:,} prompt tokens, but the request holds about {estimate:,}: it "
            "probably cut the start of the conversation to fit its context window, so the model did not "
            "see all of it. Ollama does this silently; give the model a bigger window there "
            "(OLLAMA_CONTEXT_LENGTH=32768 for `ollama serve`, or PARAMETER num_ctx 32768 in a Modelfile), "
            "and set codeloop's `contextWindow` setting to the window the server really has, so "
            "codeloop compacts the conversation before the server cuts it.",
        )


def _num(obj: Any, key: str) -> int:
    if obj is None:
        return 0
    value = obj.get(key) if isinstance(obj, Mapping) else getattr(obj, key, None)
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        return 0
    return max(0, int(value))


def _usage_dict(u: Any) -> dict[str, int]:
    """Usage as providers bill it: ``prompt_tokens`` (all of the prompt), ``cached_tokens``
    (the part of it served from the provider's cache), ``completion_tokens``, and
    ``cache_write_tokens`` when the provider reports cache writes.

    Cached tokens come from OpenAI's ``prompt_tokens_details.cached_tokens``, DeepSeek's
    ``prompt_cache_hit_tokens`` (with ``prompt_cache_miss_tokens``, the rest), or
    ``cache_read_input_tokens`` (Anthropic-compatible gateways, with
    ``cache_creation_input_tokens`` for writes). The SDK keeps fields it does not know as
    attributes (pydantic extras), so all are read the same way. OpenAI-compatible
    ``prompt_tokens`` include the cached tokens; Anthropic's own ``input_tokens`` do not, so
    when only ``input_tokens`` is given (or ``prompt_tokens`` is smaller than the cache
    counts, which cannot be if it includes them) the cache counts are added to it.
    """
    prompt = _num(u, "prompt_tokens")
    exclusive = False
    if not prompt and _num(u, "input_tokens"):
        prompt, exclusive = _num(u, "input_tokens"), True
    completion = _num(u, "completion_tokens") or _num(u, "output_tokens")
    details = u.get("prompt_tokens_details") if isinstance(u, Mapping) else getattr(u, "prompt_tokens_details", None)
    cached = (
        _num(details, "cached_tokens")
        or _num(u, "prompt_cache_hit_tokens")
        or _num(u, "cache_read_input_tokens")
        or _num(u, "cached_tokens")
    )
    written = _num(u, "cache_creation_input_tokens")
    if not prompt:
        prompt = _num(u, "prompt_cache_hit_tokens") + _num(u, "prompt_cache_miss_tokens")
    if exclusive or prompt < cached + written:
        prompt += cached + written
    out = {"prompt_tokens": prompt, "completion_tokens": completion, "cached_tokens": min(cached, prompt)}
    if written:
        out["cache_write_tokens"] = written
    return out


def _never_connected(e: BaseException) -> bool:
    """Whether a connection error happened before any answer came (refused, unknown host),
    rather than an answer cut after the server had started it (then it is worth a retry)."""
    seen: BaseException | None = e
    chain = []
    while seen is not None and seen not in chain:
        chain.append(seen)
        seen = seen.__cause__ or seen.__context__
    cut = ("RemoteProtocolError", "ReadError", "ReadTimeout", "WriteError")
    return not any(type(x).__name__ in cut or isinstance(x, ConnectionResetError) for x in chain)


def _is_httpx_error(e: BaseException) -> bool:
    return type(e).__module__.split(".")[0].startswith("httpx")


def _root_cause(e: BaseException) -> str:
    seen = e
    while seen.__cause__ is not None and seen.__cause__ is not seen:
        seen = seen.__cause__
    text = str(seen) or type(seen).__name__
    return text if len(text) < 200 else text[:197] + "..."


async def _close_quietly(stream: Any) -> None:
    try:
        await stream.close()
    except Exception:  # pragma: no cover - best effort
        pass
