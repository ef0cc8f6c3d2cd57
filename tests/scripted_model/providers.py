"""Provider modes: the same scripted answer on the wire the way each server sends it.

Each mode copies documented (or reported, with the reference) behaviour of a real
OpenAI-compatible server; the scenario does not change, only the bytes do.

==================  =========================================================================
mode                what it copies
==================  =========================================================================
``openai``          OpenAI: ``call_…`` ids, one ``index`` per call, the name once then the
                    arguments in pieces, an empty-delta chunk with ``finish_reason``, a usage
                    chunk (``choices: []``) with ``stream_options.include_usage``, and
                    ``prompt_tokens_details.cached_tokens`` (1,024 then 128-token steps).
``ollama``          Ollama's ``/v1`` endpoint with its legacy tool parser (models without a
                    registered parser, e.g. qwen2.5-coder): every delta carries ``role`` and
                    ``content``; each call arrives whole in one delta, all with ``index: 0``
                    (ollama#15457, #15497; ``openai/openai.go`` ``ToToolCalls``/``ToChunk``);
                    ``finish_reason`` ``tool_calls`` once a call was sent; usage only with
                    ``include_usage``, as a ``choices: []`` chunk, without cache fields
                    (``middleware/openai.go``; ollama#8008). ``context_window`` makes it count
                    only the last N prompt tokens, as Ollama does when a prompt overflows
                    ``num_ctx`` (it drops the start; ollama#3427).
``ollama-text``     Ollama serving qwen2.5-coder whose template the model ignores: the call
                    comes back as a bare JSON object in ``content``, ``tool_calls`` null
                    (ollama#12174).
``vllm``            vLLM with ``--enable-auto-tool-choice --tool-call-parser hermes``:
                    ``chatcmpl-tool-…`` ids, the first delta of a call has the name and no
                    ``arguments`` key, ``finish_reason`` rides on the last delta (vllm#35705),
                    usage with ``prompt_tokens_details: null`` (reported only with
                    ``--enable-prompt-tokens-details``).
``vllm-noparser``   the same server without those flags, serving a Qwen/Hermes model: the chat
                    template still shows the tools, and the model answers
                    ``<tool_call>{"name": …, "arguments": …}</tool_call>`` as plain
                    ``content`` with ``finish_reason: stop`` (the Hermes format the ``hermes``
                    parser would have extracted; vLLM docs, tool calling).
``llamacpp``        llama-server before b5500 (llama.cpp#13774, fixed by #13800): the whole
                    name repeated in every tool-call delta, the id inside ``function``, no
                    ``type``; usage always in the last chunk, with ``timings``
                    (``stream_options`` ignored).
``lmstudio``        LM Studio 0.3.x: continuation deltas with ``"name": ""`` and ``"id": ""``
                    (rig#442), no usage when streaming even when asked
                    (lmstudio-bug-tracker#713).
``nostream``        a server that does not stream: ``stream: true`` gets a 400 naming the
                    ``stream`` parameter (OpenAI's ``unsupported_value`` for models that could
                    not stream); ``stream: false`` works, with usage.
``deepseek``        DeepSeek: OpenAI's stream, usage with ``prompt_cache_hit_tokens`` and
                    ``prompt_cache_miss_tokens`` (64-token cache units), no
                    ``prompt_tokens_details``.
==================  =========================================================================

Chunks are produced as ``(kind, chunk)`` pairs, kind one of ``open`` (the role), ``text``,
``call`` (a call's first delta, or a whole call), ``args`` (argument pieces), ``finish``,
``usage``; fault replies use the kinds to cut a stream at a meaningful place.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterator
from typing import Any

__all__ = ["PROVIDERS", "Provider", "get_provider", "text_tool_calls"]

Event = tuple[str, dict[str, Any]]


def _hex(seed: str, n: int) -> str:
    return hashlib.sha1(seed.encode()).hexdigest()[:n]


def text_tool_calls(calls: list[tuple[str, str, str]], style: str) -> str:
    """Calls written as text, the way a model without a tool-call parser writes them."""
    blocks = []
    for _, name, args in calls:
        try:
            parsed: Any = json.loads(args)
        except ValueError:
            parsed = args
        obj = json.dumps({"name": name, "arguments": parsed}, ensure_ascii=False)
        blocks.append(f"<tool_call>\n{obj}\n</tool_call>" if style == "hermes" else obj)
    return "\n".join(blocks)


class Provider:
    """The OpenAI wire (the default); subclasses change what their server does differently."""

    name = "openai"
    streams = True
    cache = "openai"  # "openai", "deepseek" or None: which cache fields usage carries
    honours_include_usage = True
    fingerprint: str | None = "fp_scripted"
    tool_text_style: str | None = None  # calls go out as text ("hermes" or "json")

    # ---- identities --------------------------------------------------------------------
    def completion_id(self, count: int) -> str:
        return f"chatcmpl-scripted{count:04d}"

    def call_id(self, count: int, index: int) -> str:
        return f"call_{count}_{index}"

    # ---- usage -------------------------------------------------------------------------
    def usage(self, c: Any) -> dict[str, Any]:
        u: dict[str, Any] = {
            "prompt_tokens": c.prompt_tokens,
            "completion_tokens": c.completion_tokens,
            "total_tokens": c.prompt_tokens + c.completion_tokens,
        }
        if self.cache == "openai":
            u["prompt_tokens_details"] = {"cached_tokens": c.cached_tokens, "audio_tokens": 0}
            u["completion_tokens_details"] = {
                "reasoning_tokens": 0,
                "audio_tokens": 0,
                "accepted_prediction_tokens": 0,
                "rejected_prediction_tokens": 0,
            }
        elif self.cache == "deepseek":
            u["prompt_cache_hit_tokens"] = c.cached_tokens
            u["prompt_cache_miss_tokens"] = c.prompt_tokens - c.cached_tokens
            u["completion_tokens_details"] = {"reasoning_tokens": 0}
        u.update(c.usage_extra)
        return u

    # ---- the non-streamed answer ---------------------------------------------------------
    def message(self, c: Any) -> dict[str, Any]:
        content = c.full_content
        calls = c.calls
        if self.tool_text_style and calls:
            content = (content + "\n" if content else "") + text_tool_calls(calls, self.tool_text_style)
            calls = []
        msg: dict[str, Any] = {"role": "assistant", "content": content if (content or not calls) else None, "refusal": None}
        if calls:
            msg["tool_calls"] = [self.whole_call(i, cid, name, args) for i, (cid, name, args) in enumerate(calls)]
        return msg

    def whole_call(self, index: int, cid: str, name: str, args: str) -> dict[str, Any]:
        return {"id": cid, "type": "function", "function": {"name": name, "arguments": args}}

    def finish_reason(self, c: Any) -> str | None:
        if self.tool_text_style and c.calls:
            return "stop"
        return c.finish_reason

    def completion(self, c: Any) -> dict[str, Any]:
        out: dict[str, Any] = {
            "id": c.id,
            "object": "chat.completion",
            "created": c.created,
            "model": c.model,
            "choices": [{"index": 0, "message": self.message(c), "logprobs": None, "finish_reason": self.finish_reason(c)}],
            "usage": self.usage(c),
        }
        if self.fingerprint:
            out["system_fingerprint"] = self.fingerprint
        return out

    # ---- the stream ----------------------------------------------------------------------
    def chunk(self, c: Any, delta: dict[str, Any], finish_reason: str | None = None) -> dict[str, Any]:
        out: dict[str, Any] = {"id": c.id, "object": "chat.completion.chunk", "created": c.created, "model": c.model}
        if self.fingerprint:
            out["system_fingerprint"] = self.fingerprint
        out["choices"] = [{"index": 0, "delta": delta, "logprobs": None, "finish_reason": finish_reason}]
        if c.include_usage and self.honours_include_usage:
            out["usage"] = None
        return out

    def usage_chunk(self, c: Any) -> dict[str, Any] | None:
        if not (c.include_usage and self.honours_include_usage):
            return None
        out: dict[str, Any] = {"id": c.id, "object": "chat.completion.chunk", "created": c.created, "model": c.model}
        if self.fingerprint:
            out["system_fingerprint"] = self.fingerprint
        out["choices"] = []
        out["usage"] = self.usage(c)
        return out

    def opener(self, c: Any) -> dict[str, Any]:
        # OpenAI opens a tool-call-only message with content null, a text message with "".
        tool_only = bool(c.calls) and not c.content and not self.tool_text_style
        return {"role": "assistant", "content": None if tool_only else "", "refusal": None}

    def text_pieces(self, c: Any) -> Iterator[str]:
        if c.stream_reply is not None:
            token = c.stream_reply.token
            for _ in range(c.stream_reply.tokens):
                yield token
            return
        text = c.content or ""
        if self.tool_text_style and c.calls:
            text = (text + "\n" if text else "") + text_tool_calls(c.calls, self.tool_text_style)
        size = c.chunk_size
        for i in range(0, len(text), size):
            yield text[i : i + size]

    def text_delta(self, piece: str) -> dict[str, Any]:
        return {"content": piece}

    def call_events(self, c: Any, index: int, cid: str, name: str, args: str) -> Iterator[Event]:
        yield "call", {"tool_calls": [{"index": index, "id": cid, "type": "function", "function": {"name": name, "arguments": ""}}]}
        size = c.chunk_size
        for i in range(0, len(args), size):
            yield "args", {"tool_calls": [{"index": index, "function": {"arguments": args[i : i + size]}}]}

    def events(self, c: Any) -> Iterator[Event]:
        """Every chunk the server sends, in order (without ``[DONE]``)."""
        yield "open", self.chunk(c, self.opener(c))
        for piece in self.text_pieces(c):
            yield "text", self.chunk(c, self.text_delta(piece))
        if not self.tool_text_style:
            for index, (cid, name, args) in enumerate(c.calls):
                for kind, delta in self.call_events(c, index, cid, name, args):
                    yield kind, self.chunk(c, delta)
        yield "finish", self.chunk(c, {}, self.finish_reason(c))
        usage = self.usage_chunk(c)
        if usage is not None:
            yield "usage", usage

    def reject(self, req: Any) -> Any:
        """An error reply for requests this server refuses, or None."""
        return None


class Ollama(Provider):
    name = "ollama"
    cache = None
    fingerprint = "fp_ollama"

    def completion_id(self, count: int) -> str:
        return f"chatcmpl-{(count * 37 + 11) % 999}"

    def call_id(self, count: int, index: int) -> str:
        return "call_" + _hex(f"ollama-{count}-{index}", 8)

    def chunk(self, c: Any, delta: dict[str, Any], finish_reason: str | None = None) -> dict[str, Any]:
        full = {"role": "assistant", "content": ""}
        full.update({k: v for k, v in delta.items() if k in ("content", "tool_calls")})
        return {
            "id": c.id,
            "object": "chat.completion.chunk",
            "created": c.created,
            "model": c.model,
            "system_fingerprint": self.fingerprint,
            "choices": [{"index": 0, "delta": full, "finish_reason": finish_reason}],
        }

    def opener(self, c: Any) -> dict[str, Any]:
        return {"content": ""}

    def finish_reason(self, c: Any) -> str | None:
        # "tool_calls" once a call was sent, whatever the reason generation stopped (ToChunk);
        # its parser only emits a call whose JSON is complete.
        if c.calls and not self.tool_text_style:
            return "tool_calls"
        return super().finish_reason(c)

    def whole_call(self, index: int, cid: str, name: str, args: str) -> dict[str, Any]:
        # The legacy parser path never sets Function.Index: every call says index 0.
        return {"id": cid, "index": 0, "type": "function", "function": {"name": name, "arguments": args}}

    def call_events(self, c: Any, index: int, cid: str, name: str, args: str) -> Iterator[Event]:
        yield "call", {"tool_calls": [self.whole_call(index, cid, name, args)]}

    def usage_chunk(self, c: Any) -> dict[str, Any] | None:
        if not c.include_usage:
            return None
        return {
            "id": c.id,
            "object": "chat.completion.chunk",
            "created": c.created,
            "model": c.model,
            "system_fingerprint": self.fingerprint,
            "choices": [],
            "usage": self.usage(c),
        }

    def message(self, c: Any) -> dict[str, Any]:
        msg = super().message(c)
        msg.pop("refusal", None)
        if msg["content"] is None:
            msg["content"] = ""
        return msg


class OllamaText(Ollama):
    name = "ollama-text"
    tool_text_style = "json"


class VLLM(Provider):
    name = "vllm"
    cache = None
    fingerprint = None

    def completion_id(self, count: int) -> str:
        return "chatcmpl-" + _hex(f"vllm-{count}", 32)

    def call_id(self, count: int, index: int) -> str:
        return "chatcmpl-tool-" + _hex(f"vllm-{count}-{index}", 32)

    def usage(self, c: Any) -> dict[str, Any]:
        u = super().usage(c)
        u["prompt_tokens_details"] = None
        return u

    def opener(self, c: Any) -> dict[str, Any]:
        return {"role": "assistant", "content": ""}

    def call_events(self, c: Any, index: int, cid: str, name: str, args: str) -> Iterator[Event]:
        yield "call", {"tool_calls": [{"id": cid, "type": "function", "index": index, "function": {"name": name}}]}
        size = c.chunk_size
        for i in range(0, len(args), size):
            yield "args", {"tool_calls": [{"index": index, "function": {"arguments": args[i : i + size]}}]}

    def events(self, c: Any) -> Iterator[Event]:
        # The finish_reason rides on the last delta rather than on an empty one.
        pending: Event | None = None
        for kind, chunk in super().events(c):
            if kind == "finish":
                if pending is not None and pending[0] in ("text", "args", "call"):
                    pending[1]["choices"][0]["finish_reason"] = self.finish_reason(c)
                    pending = (pending[0] + "+finish", pending[1])
                else:
                    if pending is not None:
                        yield pending
                    pending = (kind, chunk)
                continue
            if pending is not None:
                yield pending
            pending = (kind, chunk)
        if pending is not None:
            yield pending


class VLLMNoParser(VLLM):
    name = "vllm-noparser"
    tool_text_style = "hermes"


class LlamaCpp(Provider):
    name = "llamacpp"
    cache = None
    fingerprint = "b5481-d785f9c1"
    honours_include_usage = False

    def completion_id(self, count: int) -> str:
        return "chatcmpl-" + _hex(f"llamacpp-{count}", 32)

    def opener(self, c: Any) -> dict[str, Any]:
        return {"role": "assistant", "content": None}

    def call_events(self, c: Any, index: int, cid: str, name: str, args: str) -> Iterator[Event]:
        size = c.chunk_size
        pieces = [args[i : i + size] for i in range(0, len(args), size)] or [""]
        for n, piece in enumerate(pieces):
            yield ("call" if n == 0 else "args"), {
                "tool_calls": [{"index": index, "function": {"name": name, "id": cid, "arguments": piece}}]
            }

    def events(self, c: Any) -> Iterator[Event]:
        for kind, chunk in super().events(c):
            if kind == "finish":
                chunk["usage"] = self.usage(c)
                chunk["timings"] = {"prompt_n": c.prompt_tokens, "predicted_n": c.completion_tokens}
            yield kind, chunk


class LMStudio(Provider):
    name = "lmstudio"
    cache = None
    honours_include_usage = False
    fingerprint = None

    def completion_id(self, count: int) -> str:
        return "chatcmpl-" + _hex(f"lmstudio-{count}", 20)

    def chunk(self, c: Any, delta: dict[str, Any], finish_reason: str | None = None) -> dict[str, Any]:
        out = super().chunk(c, delta, finish_reason)
        out["system_fingerprint"] = c.model
        return out

    def opener(self, c: Any) -> dict[str, Any]:
        return {"role": "assistant", "content": ""}

    def call_events(self, c: Any, index: int, cid: str, name: str, args: str) -> Iterator[Event]:
        yield "call", {"tool_calls": [{"index": index, "id": cid, "type": "function", "function": {"name": name, "arguments": ""}}]}
        size = c.chunk_size
        for i in range(0, len(args), size):
            yield "args", {
                "tool_calls": [{"index": index, "id": "", "type": "function", "function": {"name": "", "arguments": args[i : i + size]}}]
            }


class NoStream(Provider):
    name = "nostream"
    streams = False

    def reject(self, req: Any) -> Any:
        from .scenarios import Error

        if req.stream:
            return Error(
                400,
                "Unsupported value: 'stream' does not support true with this model. Supported values are: false.",
                type="invalid_request_error",
                code="unsupported_value",
                param="stream",
            )
        return None


class DeepSeek(Provider):
    name = "deepseek"
    cache = "deepseek"
    fingerprint = "fp_deepseek"


PROVIDERS: dict[str, type[Provider]] = {
    p.name: p for p in (Provider, Ollama, OllamaText, VLLM, VLLMNoParser, LlamaCpp, LMStudio, NoStream, DeepSeek)
}


def get_provider(name: str | None) -> Provider:
    key = (name or "openai").strip().lower()
    if key not in PROVIDERS:
        raise ValueError(f"unknown provider mode {name!r}; known: {', '.join(PROVIDERS)}")
    return PROVIDERS[key]()
