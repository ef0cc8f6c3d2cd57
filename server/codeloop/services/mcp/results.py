"""An MCP ``CallToolResult`` as a neutral result for the agent.

Works on the result's wire form (a JSON object, camelCase as the spec writes it), so it
knows nothing of the SDK. What the model gets:

- text content, joined with blank lines between blocks;
- ``isError`` → an error result (its text says what went wrong);
- ``structuredContent`` as compact JSON; a text block that only repeats it as JSON (the
  SDK's servers send both) is dropped, so the data is not paid for twice;
- images as :class:`ImagePart` (mime type + base64), to be sent when the model takes
  images; :meth:`McpCallResult.model_text` says, in the text, either that they are
  attached or that the model cannot see them;
- embedded resources: their text (with the URI); binary ones as a note;
- resource links, listed.

No output budget is applied here: the session budgets ``text`` like any tool's output.
"""

from __future__ import annotations

import base64
import binascii
import json
from dataclasses import dataclass, field
from typing import Any


@dataclass(frozen=True)
class ImagePart:
    mime_type: str
    data: str  # base64

    @property
    def size(self) -> int:
        """Decoded size in bytes (estimated from the base64 length)."""
        n = len(self.data)
        return max(0, n * 3 // 4 - self.data[-2:].count("="))

    def data_url(self) -> str:
        return f"data:{self.mime_type};base64,{self.data}"

    def openai_part(self) -> dict[str, Any]:
        """A Chat Completions content part."""
        return {"type": "image_url", "image_url": {"url": self.data_url()}}


@dataclass(frozen=True)
class ResourceLinkInfo:
    uri: str
    name: str = ""
    description: str = ""
    mime_type: str = ""


@dataclass
class McpCallResult:
    is_error: bool
    text: str  # everything but the images, as the model should read it
    images: list[ImagePart] = field(default_factory=list)
    structured: Any = None
    links: list[ResourceLinkInfo] = field(default_factory=list)
    # The server and tool, for cards and logs.
    server: str = ""
    tool: str = ""
    # Why it failed when the failure is ours, not the tool's: "timeout", "crashed",
    # "not-ready", "unknown-tool", "protocol", "cancelled"; None for the tool's own results.
    failure: str | None = None

    def model_text(self, images_supported: bool) -> str:
        """``text`` plus one line per image: attached, or not visible to this model."""
        if not self.images:
            return self.text
        notes = []
        for i, img in enumerate(self.images, 1):
            what = f"image {i} ({img.mime_type}, {_size(img.size)})"
            if images_supported:
                notes.append(f"[{what} is attached]")
            else:
                notes.append(f"[the tool returned {what}; this model does not take images, so it is not shown]")
        return "\n".join(x for x in [self.text, *notes] if x)

    def content_parts(self, images_supported: bool) -> list[dict[str, Any]]:
        """Chat Completions content parts: the text, then the images when supported."""
        parts: list[dict[str, Any]] = [{"type": "text", "text": self.model_text(images_supported)}]
        if images_supported:
            parts += [img.openai_part() for img in self.images]
        return parts


def error_result(message: str, *, failure: str, server: str = "", tool: str = "") -> McpCallResult:
    return McpCallResult(is_error=True, text=message, server=server, tool=tool, failure=failure)


def _size(n: int) -> str:
    if n < 1024:
        return f"{n} B"
    if n < 1024 * 1024:
        return f"{n / 1024:.1f} KB"
    return f"{n / 1024 / 1024:.1f} MB"


def compact_json(value: Any) -> str:
    return json.dumps(value, ensure_ascii=False, separators=(",", ":"), default=str)


def _wrapped(structured: Any) -> tuple[bool, Any]:
    """The SDK's servers wrap a return value that is not an object as ``{"result": value}``."""
    if isinstance(structured, dict) and set(structured) == {"result"}:
        return True, structured["result"]
    return False, None


def _repeats(text: str, structured: Any) -> bool:
    """Whether a text block is only the structured content again (as JSON, or as the
    wrapped value itself)."""
    is_wrapped, inner = _wrapped(structured)
    if is_wrapped and isinstance(inner, str) and text == inner:
        return True
    stripped = text.strip()
    if not stripped:
        return False
    try:
        value = json.loads(stripped)
    except ValueError:
        return False
    return value == structured or (is_wrapped and value == inner)


def _blob_size(b64: str) -> int:
    try:
        return len(base64.b64decode(b64, validate=False))
    except (binascii.Error, ValueError):
        return len(b64) * 3 // 4


def convert(result: dict[str, Any], *, server: str = "", tool: str = "") -> McpCallResult:
    """A ``CallToolResult`` (wire JSON) → McpCallResult."""
    content = result.get("content")
    if not isinstance(content, list):
        content = []
    structured = result.get("structuredContent")
    has_structured = "structuredContent" in result and structured is not None
    is_error = result.get("isError") is True
    texts: list[str] = []
    repeated = False
    images: list[ImagePart] = []
    links: list[ResourceLinkInfo] = []
    for block in content:
        if not isinstance(block, dict):
            continue
        kind = block.get("type")
        if kind == "text":
            t = str(block.get("text", ""))
            if has_structured and _repeats(t, structured):
                repeated = True
                continue
            texts.append(t)
        elif kind == "image":
            data = block.get("data")
            if isinstance(data, str) and data:
                images.append(ImagePart(str(block.get("mimeType") or "image/png"), data))
        elif kind == "audio":
            data = str(block.get("data") or "")
            texts.append(f"[audio ({block.get('mimeType') or 'audio'}, {_size(_blob_size(data))}) is not shown]")
        elif kind == "resource":
            res = block.get("resource") or {}
            if not isinstance(res, dict):
                continue
            uri = str(res.get("uri", ""))
            mime = str(res.get("mimeType") or "")
            if "text" in res:
                texts.append(f"[resource {uri}]\n{res.get('text', '')}")
            elif isinstance(res.get("blob"), str):
                blob = res["blob"]
                if mime.startswith("image/"):
                    images.append(ImagePart(mime, blob))
                else:
                    texts.append(f"[resource {uri} ({mime or 'binary'}, {_size(_blob_size(blob))}) is binary; not shown]")
        elif kind == "resource_link":
            links.append(ResourceLinkInfo(
                uri=str(block.get("uri", "")), name=str(block.get("name") or ""),
                description=str(block.get("description") or ""), mime_type=str(block.get("mimeType") or ""),
            ))
        else:
            texts.append(f"[content of type {kind!r} is not shown]")
    if has_structured:
        is_wrapped, inner = _wrapped(structured)
        if is_wrapped and repeated:
            # The text said it already: give the value itself, not the wrapper.
            texts.append(inner if isinstance(inner, str) else compact_json(inner))
        else:
            texts.append(compact_json(structured))
    if links:
        lines = ["Resource links:"]
        for link in links:
            label = link.name or link.uri
            line = f"- {label} <{link.uri}>" if link.name else f"- {link.uri}"
            extra = ", ".join(x for x in [link.mime_type, link.description] if x)
            lines.append(line + (f" ({extra})" if extra else ""))
        texts.append("\n".join(lines))
    text = "\n\n".join(t for t in texts if t != "")
    if is_error and not text:
        text = "the tool reported an error without a message"
    return McpCallResult(is_error=is_error, text=text, images=images, structured=structured if has_structured else None,
                         links=links, server=server, tool=tool)
