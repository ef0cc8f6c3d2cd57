"""The records: what a file held (a ``ContentRef``, or None for "absent"), a change of one
file, a checkpoint. Plain frozen dataclasses with JSON round-trips for the journal."""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from typing import Any, Literal

Who = Literal["proposal", "command", "unknown", "rewind"]
# "proposal": an edit of the proposal pipeline (record_edit); "command": seen between a
# command's before and after snapshots; "unknown": seen between steps (the user, an editor
# save of something else, a background process); "rewind": written by a rewind.
SESSION_WHO = frozenset({"proposal", "command", "rewind"})  # the session's own changes

NOT_KEPT_REASONS = {
    "size": "larger than the size cap",
    "budget": "the checkpoint store was full (its size budget)",
    "unreadable": "it could not be read",
}


def sha256(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def eol_key(data: bytes, exact: str | None = None) -> str:
    """A hash that ignores line endings for UTF-8 text (``\\r\\n`` and ``\\r`` count as
    ``\\n``), the exact hash otherwise. The proposal pipeline hands over text with
    normalised newlines while the disk keeps CRLF: both are "the same content"."""
    if b"\r" in data:
        try:
            data.decode("utf-8")
        except UnicodeDecodeError:
            pass
        else:
            return sha256(data.replace(b"\r\n", b"\n").replace(b"\r", b"\n"))
    return exact if exact is not None else sha256(data)


@dataclass(frozen=True, slots=True)
class ContentRef:
    """One version of a file: the sha256 of its bytes, its size, its permission bits, and
    whether its bytes are in the blob store (``kept``; if not, ``why``: "size", "budget",
    "unreadable"). ``key`` is ``eol_key`` when it differs from ``hash``."""

    hash: str
    size: int
    mode: int | None = None
    kept: bool = True
    why: str = ""
    key: str = ""

    @property
    def match_key(self) -> str:
        return self.key or self.hash

    def same(self, other: "ContentRef | None") -> bool:
        """The same content, line endings aside."""
        return other is not None and (self.hash == other.hash or self.match_key == other.match_key)

    def to_json(self) -> dict[str, Any]:
        d: dict[str, Any] = {"h": self.hash, "n": self.size}
        if self.mode is not None:
            d["m"] = self.mode
        if not self.kept:
            d["k"] = False
            d["why"] = self.why
        if self.key and self.key != self.hash:
            d["e"] = self.key
        return d

    @classmethod
    def from_json(cls, d: Any) -> "ContentRef | None":
        if d is None:
            return None
        if not isinstance(d, dict) or not isinstance(d.get("h"), str):
            raise ValueError(f"bad content reference {d!r}")
        mode = d.get("m")
        return cls(
            hash=d["h"],
            size=int(d.get("n", 0)),
            mode=int(mode) if isinstance(mode, int) else None,
            kept=bool(d.get("k", True)),
            why=str(d.get("why", "")),
            key=str(d.get("e", "")),
        )

    def not_kept_reason(self) -> str:
        return NOT_KEPT_REASONS.get(self.why, self.why or "it was not kept")


def same_state(a: ContentRef | None, b: ContentRef | None) -> bool:
    if a is None or b is None:
        return a is None and b is None
    return a.same(b)


@dataclass(frozen=True, slots=True)
class FileChange:
    """``path`` (workspace-relative, ``/``-separated) went from ``before`` to ``after``
    (None: absent) by ``who``, inside checkpoint ``checkpoint``; ``seq`` orders changes."""

    path: str
    before: ContentRef | None
    after: ContentRef | None
    who: Who
    checkpoint: str
    label: str = ""
    seq: int = 0
    ts: str = ""

    @property
    def kind(self) -> str:
        if self.before is None:
            return "created"
        if self.after is None:
            return "deleted"
        return "modified"


@dataclass(frozen=True, slots=True)
class Checkpoint:
    """A point to rewind to. ``kind`` "turn": before a user message, whose index in the
    conversation is ``message_index`` (and the host's own ``message_id``, if it gave one);
    "step": before a tool step within turn ``turn``. ``seq`` orders it among the changes."""

    id: str
    kind: Literal["turn", "step"]
    turn: str
    message_index: int | None
    message_id: str | None
    label: str
    ts: str
    seq: int = 0

    def to_json(self) -> dict[str, Any]:
        d: dict[str, Any] = {"type": "checkpoint", "id": self.id, "kind": self.kind, "turn": self.turn,
                             "label": self.label, "ts": self.ts}
        if self.message_index is not None:
            d["message_index"] = self.message_index
        if self.message_id is not None:
            d["message_id"] = self.message_id
        return d

    @classmethod
    def from_json(cls, d: dict[str, Any], seq: int) -> "Checkpoint":
        kind = d.get("kind")
        if kind not in ("turn", "step") or not isinstance(d.get("id"), str):
            raise ValueError("bad checkpoint record")
        mi = d.get("message_index")
        mid = d.get("message_id")
        return cls(
            id=d["id"],
            kind=kind,
            turn=str(d.get("turn") or d["id"]),
            message_index=int(mi) if isinstance(mi, int) else None,
            message_id=str(mid) if mid is not None else None,
            label=str(d.get("label", "")),
            ts=str(d.get("ts", "")),
            seq=seq,
        )


@dataclass(frozen=True, slots=True)
class TurnInfo:
    """A user turn as a rewind target: its checkpoint, the message it precedes, and what
    rewinding to it would touch (files the session changed since)."""

    checkpoint: Checkpoint
    message_index: int | None
    message_id: str | None
    label: str
    ts: str
    files_changed: int
    steps: int
