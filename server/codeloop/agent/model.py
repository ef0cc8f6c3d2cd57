"""The model client: streaming chat completions with tools over any
OpenAI-compatible endpoint, with retries that honour ``retry-after``."""

from __future__ import annotations

import asyncio
import email.utils
import functools
import logging
import random
import ssl
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any

import openai
from openai import AsyncOpenAI

from codeloop.core.events import Retry
from codeloop.config import Settings

log = logging.getLogger(__name__)

MAX_RETRY_DELAY = 60.0
# While a stream is consumed, the event loop (an editor's requests) gets a turn this often (s).
YIELD_EVERY = 0.001
YIELD_ROUNDS = 4


@functools.cache
def shared_ssl_context() -> ssl.SSLContext:
    """One TLS context for every client of the process. Building one loads the CA
    bundle (~20 ms, blocking); a new session, or a /model switch, should not stall the
    event loop for that. Hosts may warm it in a thread at startup."""
    import importlib

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


class PartialStream(Exception):
    """Raised when a stream is cut after text was already received."""


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


TextCallback = Callable[[str], None]
RetryCallback = Callable[[Retry], None]


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
        self._client = AsyncOpenAI(
            base_url=settings.base_url,
            api_key=settings.key(),
            max_retries=0,  # we retry ourselves, visibly
            timeout=settings.request_timeout,
            http_client=openai.DefaultAsyncHttpxClient(verify=shared_ssl_context()),
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
        for attempt in range(attempts):
            try:
                return await self._stream_once(messages, tools, on_text, model or self.settings.model)
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
        raise AssertionError("unreachable")

    def _backoff(self, attempt: int, retry_after: float | None) -> float:
        if retry_after is not None:
            return min(MAX_RETRY_DELAY, max(0.0, retry_after))
        base = self.settings.retry_base_delay * (2**attempt)
        return min(MAX_RETRY_DELAY, base * (0.75 + random.random() * 0.5))

    async def _stream_once(
        self,
        messages: list[dict[str, Any]],
        tools: list[dict[str, Any]] | None,
        on_text: TextCallback | None,
        model: str,
    ) -> Completion:
        # The history and the tool schemas are already plain JSON in the wire format. Passed
        # as parameters, the SDK would re-walk all of them against its TypedDicts on every
        # request (~0.13 ms a message, ~0.6 ms for the schemas: 4 ms at 30 messages, over
        # 100 ms in a long session). extra_body goes into the JSON body as it is, and its
        # keys take precedence over the parameters' (documented in the SDK's _merge_mappings).
        body: dict[str, Any] = {"messages": messages}
        if tools:
            body["tools"] = tools
        kwargs: dict[str, Any] = {"model": model, "messages": [], "stream": True, "extra_body": body}
        if self._use_stream_options:
            kwargs["stream_options"] = {"include_usage": True}
        url = self.settings.base_url
        try:
            stream = await self._client.chat.completions.create(**kwargs)
        except openai.BadRequestError as e:
            msg = _provider_message(e)
            if self._use_stream_options and "stream_options" in msg:
                self._use_stream_options = False  # an older server; usage may be missing
                return await self._stream_once(messages, tools, on_text, model)
            raise ModelError(f"The model rejected the request (400): {msg}", "bad_request", 400) from e
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
            raise ModelError(
                f"Could not connect to the model at {url} ({_root_cause(e)}). "
                "Check OPENAI_BASE_URL or --base-url, and that the server is running.",
                "connection",
            ) from e
        return await self._consume(stream, on_text, url)

    async def _consume(self, stream: Any, on_text: TextCallback | None, url: str) -> Completion:
        content: list[str] = []
        calls: dict[int, dict[str, Any]] = {}
        finish: str | None = None
        usage: dict[str, int] = {}
        loop = asyncio.get_running_loop()
        last_yield = loop.time()
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
                    usage = _usage_dict(chunk.usage)
                for choice in chunk.choices or []:
                    delta = choice.delta
                    if delta is not None:
                        if delta.content:
                            content.append(delta.content)
                            if on_text:
                                on_text(delta.content)
                        for i, tc in enumerate(delta.tool_calls or []):
                            index = tc.index if tc.index is not None else i
                            slot = calls.setdefault(index, {"id": "", "name": "", "arguments": []})
                            if tc.id:
                                slot["id"] = tc.id
                            if tc.function is not None:
                                if tc.function.name:
                                    slot["name"] += tc.function.name
                                if tc.function.arguments:
                                    slot["arguments"].append(tc.function.arguments)
                    if choice.finish_reason:
                        finish = choice.finish_reason
        except asyncio.CancelledError:
            await _close_quietly(stream)
            raise
        except (openai.APIError, OSError, ValueError) as e:
            await _close_quietly(stream)
            # A stream cut mid-way: retried. Text already shown is discarded by the
            # Retry event's consumer.
            raise _Transient(f"the stream from {url} was cut ({_root_cause(e)})") from e
        except Exception as e:  # httpx errors that the client did not wrap
            if type(e).__module__.split(".")[0].startswith("httpx"):
                await _close_quietly(stream)
                raise _Transient(f"the stream from {url} was cut ({_root_cause(e)})") from e
            raise
        if finish is None and not content and not calls:
            raise _Transient(f"the stream from {url} ended without a response")
        tool_calls = [
            ToolCallRequest(
                id=slot["id"] or f"call_{index}_{random.getrandbits(32):08x}",
                name=slot["name"],
                arguments="".join(slot["arguments"]),
            )
            for index, slot in sorted(calls.items())
        ]
        return Completion("".join(content), tool_calls, finish, usage)


def _usage_dict(u: Any) -> dict[str, int]:
    out = {
        "prompt_tokens": int(getattr(u, "prompt_tokens", 0) or 0),
        "completion_tokens": int(getattr(u, "completion_tokens", 0) or 0),
        "cached_tokens": 0,
    }
    details = getattr(u, "prompt_tokens_details", None)
    if details is not None:
        out["cached_tokens"] = int(getattr(details, "cached_tokens", 0) or 0)
    return out


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
