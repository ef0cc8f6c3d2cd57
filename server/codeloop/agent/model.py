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
import ssl
import time
from collections.abc import Awaitable, Callable, Mapping
from typing import Any

import openai
from openai import AsyncOpenAI

from codeloop.agent.completion import Completion, TextCallback, _Answer, _tool_names
from codeloop.agent.sse import _saw_done, _watch_sse_end
from codeloop.agent.usage import _usage_dict
from codeloop.config import Settings
from codeloop.context.tokens import count_messages
from codeloop.core.events import Retry

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
            context: ssl.SSLContext = importlib.import_module(name).create_ssl_context()
            return context
        except (ImportError, AttributeError):
            continue
    return ssl.create_default_context()


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


RetryCallback = Callable[[Retry], None]


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
