"""A session's checkpoint journal: ``sessions/<session id>.jsonl``, append-only, one JSON
object a line, each written, flushed and fsynced as it is added (as the session files
are), so a crash (SIGKILL mid-turn) loses at most the record being written. On load a cut
last line is dropped and reported; reopening for append removes it first.

Records:

    {"type": "header", "session", "root", "version", "ts"}                       first line
    {"type": "checkpoint", "id", "kind": "turn"|"step", "turn", "message_index"?,
     "message_id"?, "label", "ts"}
    {"type": "changes", "checkpoint", "who", "label", "files": [{"path", "before", "after"}], "ts"}
        before/after: null (absent) or {"h": sha256, "n": size, "m"?: mode, "k"?: false,
        "why"?: "size"|"budget"|"unreadable", "e"?: line-ending-insensitive hash}
    {"type": "rewind", "to", "undo", "summary", "ts"}                               informational
    {"type": "command", "id", "label", "ts"} / {"type": "command_end", "id"}      a command ran
        (a start without an end: the session stopped while it ran; what changed then is
        recorded on resume as "unknown", naming the command)
"""

from __future__ import annotations

import datetime as _dt
import json
import logging
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from codeloop.edits.disk import fsync_dir

from .model import Checkpoint, ContentRef, FileChange

log = logging.getLogger(__name__)

FORMAT_VERSION = 1


def now() -> str:
    return _dt.datetime.now(_dt.timezone.utc).isoformat(timespec="milliseconds")


@dataclass
class LoadedJournal:
    checkpoints: list[Checkpoint] = field(default_factory=list)
    changes: list[FileChange] = field(default_factory=list)
    rewinds: list[dict[str, Any]] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)
    header: dict[str, Any] = field(default_factory=dict)
    records: int = 0  # the next sequence number
    open_commands: dict[int, str] = field(default_factory=dict)  # started, never ended
    last_command_id: int = 0


def _encode(record: dict[str, Any]) -> bytes:
    return (json.dumps(record, ensure_ascii=False, separators=(",", ":")) + "\n").encode("utf-8")


class Journal:
    def __init__(self, path: Path) -> None:
        self.path = path
        self._have_file = path.exists()

    # -- writing ------------------------------------------------------------------------

    def repair(self) -> int:
        """Remove a last record cut by a crash so new records start on their own line.
        Returns the bytes removed."""
        try:
            with self.path.open("rb+") as f:
                data = f.read()
                if data and not data.endswith(b"\n"):
                    keep = data.rfind(b"\n") + 1
                    f.truncate(keep)
                    f.flush()
                    os.fsync(f.fileno())
                    return len(data) - keep
        except FileNotFoundError:
            pass
        return 0

    def append(self, records: list[dict[str, Any]], *, durable: bool = True) -> None:
        """Append whole lines. ``durable=False`` skips the fsync (the line still survives
        a crash of this process, not a power loss): for the command start/end markers."""
        data = b"".join(_encode(r) for r in records)
        flags = os.O_WRONLY | os.O_APPEND | os.O_CREAT | getattr(os, "O_BINARY", 0)
        self.path.parent.mkdir(parents=True, exist_ok=True)
        fd = os.open(self.path, flags, 0o600)
        try:
            view = memoryview(data)
            while view:
                n = os.write(fd, view)
                view = view[n:]
            if durable:
                os.fsync(fd)
        finally:
            os.close(fd)
        if not self._have_file:
            self._have_file = True
            fsync_dir(self.path.parent)

    # -- reading ------------------------------------------------------------------------

    def load(self) -> LoadedJournal:
        out = LoadedJournal()
        try:
            raw = self.path.read_bytes()
        except FileNotFoundError:
            return out
        lines = raw.split(b"\n")
        complete_end = raw.endswith(b"\n")
        last_index = max((i for i, line in enumerate(lines) if line.strip()), default=-1)
        seq = 0
        for i, line in enumerate(lines):
            if not line.strip():
                continue
            try:
                record = json.loads(line.decode("utf-8"))
                if not isinstance(record, dict):
                    raise ValueError("not an object")
                seq += 1
                self._apply(out, record, seq)
            except (ValueError, UnicodeDecodeError, TypeError, KeyError) as e:
                if i == last_index and not complete_end:
                    out.warnings.append(
                        f"{self.path.name} line {i + 1}: dropped an incomplete last record "
                        "(the session was cut off while writing it)"
                    )
                else:
                    out.warnings.append(f"{self.path.name} line {i + 1}: skipped an unreadable record ({e})")
        out.records = seq
        return out

    @staticmethod
    def _apply(out: LoadedJournal, record: dict[str, Any], seq: int) -> None:
        kind = record.get("type")
        if kind == "header":
            out.header = record
        elif kind == "checkpoint":
            out.checkpoints.append(Checkpoint.from_json(record, seq))
        elif kind == "changes":
            cp = str(record.get("checkpoint", ""))
            who = record.get("who")
            if who not in ("proposal", "command", "unknown", "rewind"):
                raise ValueError(f"unknown author {who!r}")
            files = record.get("files")
            if not isinstance(files, list):
                raise ValueError("changes without files")
            parsed = []
            for f in files:
                path = f.get("path") if isinstance(f, dict) else None
                if not isinstance(path, str) or not path:
                    raise ValueError("a change without a path")
                parsed.append(
                    FileChange(path, ContentRef.from_json(f.get("before")), ContentRef.from_json(f.get("after")),
                               who, cp, str(record.get("label", "")), seq, str(record.get("ts", "")))
                )
            out.changes.extend(parsed)  # all of a record, or (on an error above) none of it
        elif kind == "rewind":
            out.rewinds.append(record)
        elif kind == "command":
            cid = int(record["id"])
            out.open_commands[cid] = str(record.get("label", ""))
            out.last_command_id = max(out.last_command_id, cid)
        elif kind == "command_end":
            out.open_commands.pop(int(record["id"]), None)
        # other types: from a newer version; ignored


def change_record(checkpoint: str, who: str, label: str, files: list[FileChange]) -> dict[str, Any]:
    return {
        "type": "changes",
        "checkpoint": checkpoint,
        "who": who,
        "label": label,
        "files": [
            {
                "path": f.path,
                "before": f.before.to_json() if f.before is not None else None,
                "after": f.after.to_json() if f.after is not None else None,
            }
            for f in files
        ],
        "ts": now(),
    }
