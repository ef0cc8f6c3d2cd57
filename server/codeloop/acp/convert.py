"""Pure conversions between codeloop's shapes and ACP's (no connection here).

Tool kinds and locations, session modes, the command table, the todo list as a
plan, a prompt's content blocks as the user's message, and a saved conversation
replayed as ``session/update`` notifications (``session/load``).
"""

from __future__ import annotations

import binascii
import json
import re
from collections.abc import Callable, Iterable, Mapping, Sequence
from pathlib import Path
from typing import Any
from urllib.parse import unquote, urlparse

from acp.schema import (
    AgentMessageChunk,
    AgentPlanUpdate,
    AudioContentBlock,
    AvailableCommand,
    AvailableCommandInput,
    AvailableCommandsUpdate,
    BlobResourceContents,
    ContentToolCallContent,
    EmbeddedResourceContentBlock,
    ImageContentBlock,
    PlanEntry,
    ResourceContentBlock,
    SessionMode,
    SessionModeState,
    TextContentBlock,
    ToolCallLocation,
    ToolCallProgress,
    ToolCallStart,
    UnstructuredCommandInput,
    UserMessageChunk,
)

from codeloop.agent.loop import IMAGES_NOTE
from codeloop.commands.table import describe
from codeloop.context.prompt import TURN_CONTEXT_OPEN
from codeloop.policy.types import MODES
from codeloop.runtime.turns import ContextItem, ImageAttachment, TurnContext
from codeloop.tools.base import BaseTool

HOST = "acp"  # the command layer's name for this host

# ACP's tool kinds (acp.schema.ToolKind) a tool's ``activity`` may name.
TOOL_KINDS = ("read", "edit", "delete", "move", "search", "execute", "think", "fetch", "switch_mode", "other")
_KIND_OF_POLICY = {"Bash": "execute", "Edit": "edit", "Write": "edit", "Read": "read"}
IMAGE_TYPES = ("image/png", "image/jpeg", "image/gif", "image/webp")

MODE_INFO: dict[str, tuple[str, str]] = {
    "ask": ("Ask", "Asks before each edit and command the rules do not allow"),
    "acceptEdits": ("Accept edits", "Applies file edits without asking; commands are still asked"),
    "plan": ("Plan", "Explores and plans: no edits, only the commands the rules allow"),
    "bypass": ("Bypass", "Runs everything without asking (deny rules and catastrophic commands still hold)"),
}


# -- tools ---------------------------------------------------------------------------


def tool_kind(tool: BaseTool | None) -> str:
    """The ACP kind of a tool's calls: its ``activity``, else from its policy kind."""
    if tool is None:
        return "other"
    if tool.activity in TOOL_KINDS:
        return tool.activity
    if tool.kind in _KIND_OF_POLICY:
        return _KIND_OF_POLICY[tool.kind]
    if tool.kind is None and tool.read_only:
        return "read"
    return "other"


def request_kind(kind: str) -> str:
    """The ACP kind of an approval request (``ApprovalRequest.kind``)."""
    return _KIND_OF_POLICY.get(kind, "other")


def absolute(root: Path, path: str) -> Path:
    p = Path(path).expanduser()
    return p if p.is_absolute() else root / p


def locations(root: Path, arguments: Mapping[str, Any]) -> list[ToolCallLocation]:
    """The files a call names (its ``path`` argument), for the client's follow-along."""
    path = arguments.get("path")
    if not isinstance(path, str) or not path.strip() or "\x00" in path:
        return []
    line = arguments.get("offset")
    return [ToolCallLocation(path=str(absolute(root, path)), line=line if isinstance(line, int) and line > 0 else None)]


def tool_start(call_id: str, name: str, summary: str, arguments: Mapping[str, Any], tool: BaseTool | None,
               root: Path, status: str = "in_progress") -> ToolCallStart:
    return ToolCallStart(
        session_update="tool_call",
        tool_call_id=call_id,
        title=summary or name,
        kind=tool_kind(tool),
        status=status,
        locations=locations(root, arguments) or None,
        raw_input=dict(arguments),
    )


def text_content(text: str) -> ContentToolCallContent:
    return ContentToolCallContent(type="content", content=TextContentBlock(type="text", text=text))


# -- modes, commands, plans -------------------------------------------------------------


def modes(current: str) -> SessionModeState:
    return SessionModeState(
        current_mode_id=current,
        available_modes=[SessionMode(id=m, name=MODE_INFO[m][0], description=MODE_INFO[m][1]) for m in MODES],
    )


def available_commands() -> AvailableCommandsUpdate:
    """The command layer's table, as the client's slash-command menu."""
    commands = []
    for c in describe(HOST):
        hint = c.get("synopsis") or ""
        commands.append(AvailableCommand(
            name=c["name"], description=c["description"],
            input=AvailableCommandInput(root=UnstructuredCommandInput(hint=hint)) if hint else None,
        ))
    return AvailableCommandsUpdate(session_update="available_commands_update", available_commands=commands)


_PLAN_STATUS = {"pending": "pending", "in_progress": "in_progress", "completed": "completed"}


def plan_update(todos: Iterable[Mapping[str, Any]]) -> AgentPlanUpdate:
    """The todo list (``{"content", "activeForm", "status"}`` items) as ACP's plan: the
    item in progress reads as it is being done."""
    entries = []
    for t in todos:
        status = _PLAN_STATUS.get(str(t.get("status", "")), "pending")
        text = str(t.get("activeForm") if status == "in_progress" and t.get("activeForm") else t.get("content", ""))
        entries.append(PlanEntry(content=text, priority="medium", status=status))
    return AgentPlanUpdate(session_update="plan", entries=entries)


# -- prompts ----------------------------------------------------------------------------


def uri_path(uri: str) -> Path | None:
    if not uri.startswith("file://"):
        return None
    return Path(unquote(urlparse(uri).path))


def _label(uri: str, root: Path) -> str:
    path = uri_path(uri)
    if path is None:
        return uri
    try:
        return path.relative_to(root).as_posix()
    except ValueError:
        return str(path)


def _image(mime: str, data: str, what: str, images: list[ImageAttachment], notes: list[str]) -> None:
    if mime not in IMAGE_TYPES:
        notes.append(f"[{what}: an image of type {mime!r}, which codeloop does not send; it was left out]")
        return
    try:
        binascii.a2b_base64(data.encode("ascii"), strict_mode=True)
    except (ValueError, binascii.Error):
        notes.append(f"[{what}: an image whose data is not valid base64; it was left out]")
        return
    images.append(ImageAttachment(mime, data))


def prompt_parts(blocks: Sequence[Any], root: Path) -> tuple[str, TurnContext]:
    """A prompt's content blocks as the user's text (what slash commands are read from)
    and the turn's context: images, embedded resources (files the user @-mentioned, with
    their text), links to files (named in the text, for the model to read), notes for
    what cannot be sent (audio, binary resources)."""
    texts: list[str] = []
    images: list[ImageAttachment] = []
    items: list[ContextItem] = []
    notes: list[str] = []
    for block in blocks:
        if isinstance(block, TextContentBlock):
            texts.append(block.text)
        elif isinstance(block, ImageContentBlock):
            _image(block.mime_type, block.data, "an attached image", images, notes)
        elif isinstance(block, ResourceContentBlock):
            label = _label(block.uri, root)
            texts.append(f"[@{label}]" if label != block.uri else f"[{block.name}]({block.uri})")
        elif isinstance(block, EmbeddedResourceContentBlock):
            res = block.resource
            label = _label(res.uri, root).replace('"', "'")
            if isinstance(res, BlobResourceContents):
                mime = res.mime_type or "application/octet-stream"
                if mime.startswith("image/"):
                    _image(mime, res.blob, label, images, notes)
                else:
                    notes.append(f"[{label}: a binary resource ({mime}) was attached; it is not shown here]")
            else:
                items.append(ContextItem("file", label, res.text))
        elif isinstance(block, AudioContentBlock):
            notes.append("[an audio clip was attached; codeloop does not take audio, so it was left out]")
    text = "\n".join(t for t in texts if t) if texts else ""
    if notes:
        text = (text + "\n\n" if text else "") + "\n".join(notes)
    return text, TurnContext(images=images, context_items=items)


# -- the replay of a saved conversation (session/load) ------------------------------------------

_DATA_URL = re.compile(r"^data:(image/[\w.+-]+);base64,(.*)$", re.S)


def _user_blocks(content: Any) -> list[Any]:
    if isinstance(content, str):
        text = content.split("\n\n" + TURN_CONTEXT_OPEN, 1)[0]
        return [TextContentBlock(type="text", text=text)] if text else []
    blocks: list[Any] = []
    if not isinstance(content, list):
        return blocks
    for part in content:
        if not isinstance(part, Mapping):
            continue
        if part.get("type") == "text" and isinstance(part.get("text"), str):
            text = part["text"]
            if text.startswith(TURN_CONTEXT_OPEN):
                continue
            blocks.append(TextContentBlock(type="text", text=text.split("\n\n" + TURN_CONTEXT_OPEN, 1)[0]))
        elif part.get("type") == "image_url":
            url = part.get("image_url", {}).get("url", "") if isinstance(part.get("image_url"), Mapping) else ""
            m = _DATA_URL.match(url) if isinstance(url, str) else None
            if m:
                blocks.append(ImageContentBlock(type="image", mime_type=m.group(1), data=m.group(2)))
    return blocks


def _failed(text: str) -> bool:
    return text.startswith(("Error:", "Permission denied:", "The user denied", "Cancelled:"))


def replay(messages: Sequence[Mapping[str, Any]], lookup: Callable[[str, str], tuple[BaseTool | None, str]],
           root: Path) -> list[Any]:
    """A conversation as the updates that show it: the user's messages (without codeloop's
    context block), the answers, and each tool call with its result. ``lookup(name,
    arguments_json)`` gives the tool and its card's summary."""
    out: list[Any] = []
    for m in messages:
        role = m.get("role")
        content = m.get("content")
        if role == "user":
            blocks = _user_blocks(content)
            if blocks and isinstance(blocks[0], TextContentBlock) and blocks[0].text == IMAGES_NOTE:
                continue  # the images tool calls returned, not something the user said
            out += [UserMessageChunk(session_update="user_message_chunk", content=b) for b in blocks]
        elif role == "assistant":
            if isinstance(content, str) and content:
                out.append(AgentMessageChunk(session_update="agent_message_chunk",
                                             content=TextContentBlock(type="text", text=content)))
            for call in m.get("tool_calls") or []:
                if not isinstance(call, Mapping):
                    continue
                fn = call.get("function")
                if not isinstance(fn, Mapping):
                    fn = {}
                name, raw = str(fn.get("name", "")), str(fn.get("arguments", "") or "")
                try:
                    arguments = json.loads(raw) if raw.strip() else {}
                except json.JSONDecodeError:
                    arguments = {}
                tool, summary = lookup(name, raw)
                out.append(tool_start(str(call.get("id", "")), name, summary,
                                      arguments if isinstance(arguments, dict) else {}, tool, root, status="pending"))
        elif role == "tool":
            text = content if isinstance(content, str) else "".join(
                p.get("text", "") for p in content or [] if isinstance(p, Mapping))
            out.append(ToolCallProgress(session_update="tool_call_update", tool_call_id=str(m.get("tool_call_id", "")),
                                        status="failed" if _failed(text) else "completed", content=[text_content(text)]))
    return out


__all__ = [
    "HOST", "MODE_INFO", "TOOL_KINDS", "absolute", "available_commands", "locations", "modes", "plan_update",
    "prompt_parts", "replay", "request_kind", "text_content", "tool_kind", "tool_start", "uri_path",
]
