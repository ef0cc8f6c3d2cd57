"""One model response, assembled: from stream deltas (tool calls numbered the ways real
servers number them) or a whole message, tool calls written as text included."""

from __future__ import annotations

import json
import random
import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

TextCallback = Callable[[str], None]


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


def _tool_names(tools: list[dict[str, Any]] | None) -> frozenset[str]:
    names = set()
    for t in tools or []:
        fn = t.get("function") if isinstance(t, Mapping) else None
        if isinstance(fn, Mapping) and isinstance(fn.get("name"), str):
            names.add(fn["name"])
    return frozenset(names)
