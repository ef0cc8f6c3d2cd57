"""The wire models of codeloop/rewind/* (lsp/rewind.py; docs/protocol.md "Rewind"), part of
the custom wire (``wire`` re-exports them)."""

from __future__ import annotations

from typing import Any, Literal

from codeloop.lsp.wire_base import Wire


RewindChoice = Literal["restore", "keep", "rebase"]


class RewindTarget(Wire):
    """A point a session can be rewound to: before user message ``number``, back before an
    earlier rewind (``undo``), or any checkpoint (``step``: the code only)."""

    checkpoint_id: str
    kind: Literal["message", "undo", "step"]
    number: int | None
    index: int | None
    text: str
    words: str
    ts: str
    files: int


class RewindListResult(Wire):
    session_id: str
    targets: list[RewindTarget]
    unavailable: str | None = None


class RewindPreviewParams(Wire):
    session_id: str
    checkpoint_id: str


class RewindFile(Wire):
    path: str
    action: Literal["restore", "delete", "recreate", "none", "unavailable"]
    user_changed: bool
    choices: list[RewindChoice]
    default: RewindChoice
    reason: str
    diff: str
    user_diff: str
    rebase_diff: str
    binary: bool


class RewindOutside(Wire):
    path: str
    label: str


class RewindConversation(Wire):
    removes: int
    note: str


class RewindPreviewResult(Wire):
    preview_id: str
    session_id: str
    target: RewindTarget
    files: list[RewindFile]
    outside: list[RewindOutside]
    conversation: RewindConversation
    text: str


class RewindApplyParams(Wire):
    session_id: str
    preview_id: str
    code: bool = True
    conversation: bool = True
    choices: dict[str, RewindChoice] = {}
    changed_since: Literal["keep", "rebase"] = "keep"


class RewindFileResult(Wire):
    path: str
    status: str
    message: str


class RewindApplyResult(Wire):
    session_id: str
    summary: str
    files: list[RewindFileResult]
    undo_checkpoint: str | None
    removed: int
    message: str
    messages: list[dict[str, Any]]


class RewindCommandArgs(Wire):
    """``codeloop.rewind [sessionId?, target?]`` (positional)."""
