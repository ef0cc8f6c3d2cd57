"""The end of a server-sent-events body: whether ``data: [DONE]`` went by.

The openai SDK stops at ``[DONE]`` without saying whether it saw it; a response hook
wraps the raw SSE body so the model client can tell a finished stream from a cut one.
"""

from __future__ import annotations

import importlib
import logging
import re
from typing import Any

import openai

log = logging.getLogger(__name__)

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

    class _SSEEnd(_AsyncByteStream):
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
