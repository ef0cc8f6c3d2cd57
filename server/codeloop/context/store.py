"""Sessions as append-only JSONL files, one per session.

Where: the workspace's ``.codeloop/sessions/`` (kept out of git by
``.codeloop/.gitignore``), or, with ``storage="user"``, the user's data folder
(``$XDG_DATA_HOME/codeloop`` or ``~/.local/share/codeloop``) under
``sessions/<workspace-hash>/``.

Records, one JSON object a line:

    {"type": "session", "id", "created", "cwd", "model", "title", "version"}   first line
    {"type": "message", "message": {...}, "checkpoint"?, "ts"}   checkpoint: the one before this user message
    {"type": "usage", "model", "prompt_tokens", "completion_tokens", "cached_tokens", "ts"}
    {"type": "compaction", "summary", "messages": [...], "ts"}   replaces every message so far
    {"type": "meta", "title"?, "touched"?, "system"?, "todos"?, ..., "ts"}   touched: a folder whose memory
        files are in the prompt; system: the system prompt requests carry; todos: the todo list now (the last wins)
    {"type": "subagent", "call_id", "agent", "message", "ts"}   a message of the sub-agent run by that tool call
    {"type": "rewind", "keep", "checkpoint", "summary", "note"?, "ts"}   a rewind: only the first ``keep``
        messages remain (null: the conversation stayed, the code was rewound); ``note`` is told to the
        model with the next user message

Each record is written, flushed and fsynced as it is added, so a crash loses at
most the record being written; a cut last line is dropped on load and reported.
API keys never reach the file: known key shapes, ``Bearer`` tokens,
``Authorization`` values and the configured key are replaced by ``[REDACTED]``.
"""

from __future__ import annotations

import datetime as _dt
import hashlib
import json
import logging
import os
import re
import secrets as _secrets
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from codeloop.edits.disk import ensure_codeloop_gitignore, fsync_dir
from codeloop.context.cost import parse_usage
from codeloop.context.prompt import TURN_CONTEXT_OPEN

log = logging.getLogger(__name__)

FORMAT_VERSION = 1
REDACTED = "[REDACTED]"
TITLE_CHARS = 60

_TOKENISH = r"(?=[A-Za-z_\-.+/=~]*\d)[A-Za-z0-9_\-.+/=~]{16,}"  # 16+ chars, with a digit
_KEY_PATTERNS = [
    # "Authorization: Bearer <anything>", also inside JSON ("authorization": "Bearer ...")
    re.compile(r"(?i)(\bauthorization[\"']?\s*[:=]\s*[\"']?(?:bearer|basic|token)\s+)[^\s\"',}]+"),
    # "Authorization: <a key>"; code such as "authorization: str" is left alone
    re.compile(r"(?i)(\bauthorization[\"']?\s*[:=]\s*[\"']?)" + _TOKENISH),
    re.compile(r"(?i)(\bbearer\s+)(?=[A-Za-z._~+/=\-]*\d)[A-Za-z0-9._~+/=\-]{8,}"),
    # OPENAI_API_KEY=..., "x-api-key": "...", GITHUB_TOKEN=..., client_secret: ...
    re.compile(r"(?i)([A-Za-z0-9_\-]*(?:api[_-]?key|token|secret|passw(?:or)?d)[\"']?\s*[:=]\s*[\"']?)" + _TOKENISH),
    re.compile(r"()\bsk-[A-Za-z0-9_\-]{16,}"),  # OpenAI, Anthropic (sk-ant-), DeepSeek, ...
    re.compile(r"()\b(?:ghp|gho|ghu|ghs|ghr)_[A-Za-z0-9]{30,}"),
    re.compile(r"()\bgithub_pat_[A-Za-z0-9_]{20,}"),
    re.compile(r"()\bAKIA[0-9A-Z]{16}\b"),
    re.compile(r"()\bAIza[0-9A-Za-z_\-]{35}"),
    re.compile(r"()\bxox[abprs]-[A-Za-z0-9\-]{10,}"),
    re.compile(r"()\bgsk_[A-Za-z0-9]{20,}"),
    re.compile(r"()\bhf_[A-Za-z0-9]{30,}"),
]


class Scrubber:
    """Replaces secrets in every string of a JSON-like value."""

    def __init__(self, secrets: list[str] | None = None) -> None:
        # Longest first, so a key that contains another is replaced whole.
        self.secrets = sorted({s for s in (secrets or []) if s and len(s) >= 6 and s != "not-needed"}, key=len, reverse=True)

    def text(self, value: str) -> str:
        for s in self.secrets:
            if s in value:
                value = value.replace(s, REDACTED)
        for pat in _KEY_PATTERNS:
            value = pat.sub(lambda m: m.group(1) + REDACTED, value)
        return value

    def value(self, value: Any) -> Any:
        if isinstance(value, str):
            return self.text(value)
        if isinstance(value, dict):
            return {k: self.value(v) for k, v in value.items()}
        if isinstance(value, (list, tuple)):
            return [self.value(v) for v in value]
        return value


def _now() -> str:
    return _dt.datetime.now(_dt.timezone.utc).isoformat(timespec="milliseconds")


def _new_id() -> str:
    stamp = _dt.datetime.now(_dt.timezone.utc).strftime("%Y%m%d-%H%M%S")
    return f"{stamp}-{_secrets.token_hex(3)}"


def make_title(text: str) -> str:
    """The first user message, on one line, shortened."""
    one = " ".join(text.split())
    return one if len(one) <= TITLE_CHARS else one[: TITLE_CHARS - 1].rstrip() + "…"


def _message_text(message: dict[str, Any]) -> str:
    """A user message's words, without the context block the session adds after them."""
    content = message.get("content")
    if isinstance(content, str):
        return content.split("\n\n" + TURN_CONTEXT_OPEN, 1)[0] if not content.startswith(TURN_CONTEXT_OPEN) else ""
    if isinstance(content, list):
        return " ".join(str(p.get("text", "")) for p in content
                        if isinstance(p, dict) and p.get("type") == "text" and not str(p.get("text", "")).startswith(TURN_CONTEXT_OPEN))
    return ""


INTERRUPTED_RESULT = (
    "[interrupted: the session ended (the process stopped) before this tool call finished; "
    "it may or may not have run. Check its effects before running it again.]"
)


def answer_unresolved(messages: list[dict[str, Any]]) -> tuple[list[dict[str, Any]], int]:
    """``messages`` with a tool result added for every tool call that has none (a session
    cut off mid-turn), right after that call's other results; and how many were added.
    Without them the API refuses the conversation."""
    answered = {str(m.get("tool_call_id")) for m in messages if m.get("role") == "tool"}
    out: list[dict[str, Any]] = []
    added = 0
    missing: list[str] = []

    def flush() -> None:
        nonlocal added
        for cid in missing:
            out.append({"role": "tool", "tool_call_id": cid, "content": INTERRUPTED_RESULT})
            added += 1
        missing.clear()

    for m in messages:
        if m.get("role") != "tool":
            flush()
        out.append(m)
        if m.get("role") == "assistant":
            for call in m.get("tool_calls") or []:
                cid = str(call.get("id", "")) if isinstance(call, dict) else ""
                if cid and cid not in answered:
                    missing.append(cid)
    flush()
    return out, added


@dataclass(frozen=True, slots=True)
class SessionInfo:
    id: str
    title: str
    created: str
    updated: str
    message_count: int
    model: str


@dataclass(slots=True)
class LoadedSession:
    id: str
    messages: list[dict[str, Any]]
    usage_totals: dict[str, int]
    warnings: list[str]
    title: str = ""
    model: str = ""
    created: str = ""
    updated: str = ""
    cwd: str = ""
    compactions: int = 0
    usage: list[dict[str, Any]] = field(default_factory=list)  # the usage records, in order
    touched: list[str] = field(default_factory=list)  # folders (relative) whose memory files are in the prompt
    # The system prompt the session's requests carry (the latest one written); a resumed
    # session sends the same bytes, so a provider's prompt cache still holds.
    system: str | None = None
    todos: Any = None  # the todo list as last saved (context.todos.from_session reads it)
    # The sub-agents' conversations, by the parent's tool call id: {"agent", "messages"}.
    subagents: dict[str, dict[str, Any]] = field(default_factory=dict)
    # (message index, checkpoint id): the user messages that have a checkpoint before them
    marks: list[tuple[int, str]] = field(default_factory=list)
    rewinds: int = 0
    notes: list[str] = field(default_factory=list)  # rewinds the model has not been told of yet


class SessionWriter:
    """Appends one session's records. Implements the ``MessageLog`` port."""

    def __init__(
        self,
        path: Path,
        session_id: str,
        scrubber: Scrubber,
        *,
        header: dict[str, Any] | None = None,
        title: str | None = None,
    ) -> None:
        self.path = path
        self.id = session_id
        self.scrubber = scrubber
        self._header = header  # written with the first record; None once on disk
        self.title = title

    # -- MessageLog --------------------------------------------------------------

    def append(self, message: dict[str, Any], checkpoint: str | None = None) -> None:
        """``checkpoint``: the id of the checkpoint taken before this user message."""
        if not self.title and message.get("role") == "user":
            text = _message_text(message)
            if text.strip():
                self.title = make_title(self.scrubber.text(text))
                if self._header is not None:
                    self._header["title"] = self.title
                else:
                    self._write({"type": "meta", "title": self.title, "ts": _now()})
        record: dict[str, Any] = {"type": "message", "message": message, "ts": _now()}
        if checkpoint is not None:
            record["checkpoint"] = checkpoint
        self._write(record)

    # -- other records ---------------------------------------------------------------

    def append_usage(self, usage: Any, model: str) -> None:
        prompt, completion, cached, reasoning = parse_usage(usage)
        record = {
            "type": "usage",
            "model": model,
            "prompt_tokens": prompt,
            "completion_tokens": completion,
            "cached_tokens": cached,
            "ts": _now(),
        }
        if reasoning:
            record["reasoning_tokens"] = reasoning
        self._write(record)

    def append_compaction(self, messages_after: list[dict[str, Any]], summary: str | None = None) -> None:
        """Record that the conversation is now ``messages_after`` (a resume starts from it)."""
        record: dict[str, Any] = {"type": "compaction", "messages": list(messages_after), "ts": _now()}
        if summary is not None:
            record["summary"] = summary
        self._write(record)

    def append_rewind(self, keep: int | None, checkpoint: str, summary: str = "", note: str = "") -> None:
        """Record a rewind to ``checkpoint``: the conversation now is its first ``keep``
        messages (None: it stayed as it was); ``note`` is for the model with the next user
        message (a resume tells it too)."""
        record: dict[str, Any] = {"type": "rewind", "keep": keep, "checkpoint": checkpoint, "summary": summary, "ts": _now()}
        if note:
            record["note"] = note
        self._write(record)

    def set_title(self, title: str) -> None:
        self.title = make_title(title)
        if self._header is not None:
            self._header["title"] = self.title
        self._write({"type": "meta", "title": self.title, "ts": _now()})

    def append_meta(self, **fields: Any) -> None:
        self._write({"type": "meta", **fields, "ts": _now()})

    def append_subagent(self, call_id: str, agent: str, message: dict[str, Any]) -> None:
        """A message of the sub-agent the parent's tool call ``call_id`` runs."""
        self._write({"type": "subagent", "call_id": call_id, "agent": agent, "message": message, "ts": _now()})

    # -- writing -----------------------------------------------------------------

    def _write(self, record: dict[str, Any]) -> None:
        lines = []
        created = False
        if self._header is not None:
            lines.append(self._encode(self._header))
            created = True
        lines.append(self._encode(record))
        data = "".join(lines).encode("utf-8")
        flags = os.O_WRONLY | os.O_APPEND | os.O_CREAT | getattr(os, "O_BINARY", 0)
        fd = os.open(self.path, flags, 0o600)
        try:
            view = memoryview(data)
            while view:
                n = os.write(fd, view)
                view = view[n:]
            os.fsync(fd)
        finally:
            os.close(fd)
        if created:
            self._header = None
            fsync_dir(self.path.parent)

    def _encode(self, record: dict[str, Any]) -> str:
        clean = self.scrubber.value(record)
        return json.dumps(clean, ensure_ascii=False, separators=(",", ":"), default=str) + "\n"


def carry_marks(old: list[dict[str, Any]], new: list[dict[str, Any]],
                marks: list[tuple[dict[str, Any], str]]) -> list[tuple[dict[str, Any], str]]:
    """Marks on messages of ``old`` moved onto the same messages in ``new`` (a compaction
    keeps a tail of the old list; answering interrupted calls inserts a few): the two lists
    are matched from the end, skipping what ``new`` added."""
    if not marks:
        return marks
    moved: dict[int, dict[str, Any]] = {}
    i = len(old) - 1
    for j in range(len(new) - 1, -1, -1):
        if i < 0:
            break
        if new[j] == old[i]:
            moved[id(old[i])] = new[j]
            i -= 1
    return [(moved[id(m)], cp) for m, cp in marks if id(m) in moved]


def default_user_data_dir() -> Path:
    base = os.environ.get("XDG_DATA_HOME")
    if base:
        return Path(base) / "codeloop"
    if os.name == "nt" and os.environ.get("LOCALAPPDATA"):
        return Path(os.environ["LOCALAPPDATA"]) / "codeloop"
    return Path.home() / ".local" / "share" / "codeloop"


def workspace_hash(root: Path) -> str:
    return hashlib.sha256(str(Path(root).resolve()).encode("utf-8")).hexdigest()[:16]


class SessionStore:
    def __init__(
        self,
        root: Path,
        storage: str = "workspace",
        user_data_dir: Path | None = None,
        secrets: list[str] | None = None,
    ) -> None:
        self.root = Path(root).resolve()
        self.storage = storage
        self.scrubber = Scrubber(list(secrets or []))
        if storage == "user":
            base = Path(user_data_dir) if user_data_dir is not None else default_user_data_dir()
            self.dir = base / "sessions" / workspace_hash(self.root)
        elif storage == "workspace":
            self.dir = self.root / ".codeloop" / "sessions"
        else:
            raise ValueError(f"storage must be 'workspace' or 'user', not {storage!r}")

    # -- writing -------------------------------------------------------------------

    def _prepare(self) -> None:
        self.dir.mkdir(parents=True, exist_ok=True)
        if self.storage == "workspace":
            ensure_codeloop_gitignore(self.root)
        else:
            marker = self.dir / "workspace.txt"
            if not marker.exists():
                try:
                    marker.write_text(str(self.root) + "\n", encoding="utf-8")
                except OSError:
                    pass

    def path_of(self, session_id: str) -> Path:
        if not re.fullmatch(r"[A-Za-z0-9_.\-]+", session_id) or session_id.startswith("."):
            raise ValueError(f"invalid session id {session_id!r}")
        return self.dir / f"{session_id}.jsonl"

    def create(self, model: str, title: str | None = None) -> SessionWriter:
        """A new session. Its file appears with the first record appended."""
        self._prepare()
        sid = _new_id()
        while self.path_of(sid).exists():
            sid = _new_id()
        shown = make_title(title) if title else None
        header = {
            "type": "session",
            "id": sid,
            "created": _now(),
            "cwd": str(self.root),
            "model": model,
            "title": shown,
            "version": FORMAT_VERSION,
        }
        return SessionWriter(self.path_of(sid), sid, self.scrubber, header=header, title=shown)

    def open_for_append(self, session_id: str) -> SessionWriter:
        """Continue an existing session. A record cut by a crash is removed first, so
        new records start on a line of their own."""
        path = self.path_of(session_id)
        if not path.is_file():
            raise FileNotFoundError(f"no session {session_id!r} in {self.dir}")
        self._prepare()
        with path.open("rb+") as f:
            data = f.read()
            if data and not data.endswith(b"\n"):
                keep = data.rfind(b"\n") + 1
                log.warning("session %s: removing an incomplete last record (%d bytes)", session_id, len(data) - keep)
                f.truncate(keep)
                f.flush()
                os.fsync(f.fileno())
        loaded = self.load(session_id)
        return SessionWriter(path, session_id, self.scrubber, title=loaded.title or None)

    # -- reading -------------------------------------------------------------------

    def load(self, session_id: str) -> LoadedSession:
        path = self.path_of(session_id)
        raw = path.read_bytes()
        out = LoadedSession(session_id, [], {"requests": 0, "prompt_tokens": 0, "completion_tokens": 0, "cached_tokens": 0}, [])
        lines = raw.split(b"\n")
        complete_end = raw.endswith(b"\n")
        last_index = max((i for i, line in enumerate(lines) if line.strip()), default=-1)
        marks: list[tuple[dict[str, Any], str]] = []  # (user message, checkpoint), by identity
        for i, line in enumerate(lines):
            if not line.strip():
                continue
            try:
                record = json.loads(line.decode("utf-8"))
                if not isinstance(record, dict):
                    raise ValueError("not an object")
            except (ValueError, UnicodeDecodeError):
                if i == last_index and not complete_end:
                    out.warnings.append(
                        f"line {i + 1}: dropped an incomplete last record (the session was cut off while writing it)"
                    )
                else:
                    out.warnings.append(f"line {i + 1}: skipped an unreadable record")
                continue
            before = out.messages
            self._apply(out, record, i + 1)
            if record.get("type") == "message" and isinstance(record.get("checkpoint"), str) and out.messages:
                marks.append((out.messages[-1], record["checkpoint"]))
            elif record.get("type") == "compaction" and out.messages is not before:
                marks = carry_marks(before, out.messages, marks)
        where = {id(m): n for n, m in enumerate(out.messages)}
        out.marks = [(where[id(m)], cp) for m, cp in marks if id(m) in where]  # rewound ones are gone
        if not out.updated:
            out.updated = out.created
        return out

    @staticmethod
    def _apply(out: LoadedSession, record: dict[str, Any], line_no: int) -> None:
        kind = record.get("type")
        if record.get("ts"):
            out.updated = str(record["ts"])
        if kind == "session":
            out.title = record.get("title") or out.title
            out.model = record.get("model") or ""
            out.created = record.get("created") or ""
            out.cwd = record.get("cwd") or ""
            out.updated = out.updated or out.created
        elif kind == "message":
            msg = record.get("message")
            if isinstance(msg, dict):
                out.messages.append(msg)
                if msg.get("role") == "user":
                    out.notes.clear()  # told with this message
            else:
                out.warnings.append(f"line {line_no}: a message record without a message")
        elif kind == "compaction":
            msgs = record.get("messages")
            if isinstance(msgs, list):
                out.messages = [m for m in msgs if isinstance(m, dict)]
                out.compactions += 1
            else:
                out.warnings.append(f"line {line_no}: a compaction record without messages")
        elif kind == "rewind":
            keep = record.get("keep")
            if isinstance(keep, int) and keep >= 0:
                out.messages = out.messages[:keep]
            elif keep is not None:
                out.warnings.append(f"line {line_no}: a rewind record with an invalid 'keep'")
                return
            out.rewinds += 1
            if isinstance(record.get("note"), str) and record["note"]:
                out.notes.append(record["note"])
        elif kind == "usage":
            out.usage.append(record)
            out.usage_totals["requests"] += 1
            for key in ("prompt_tokens", "completion_tokens", "cached_tokens"):
                try:
                    out.usage_totals[key] += int(record.get(key) or 0)
                except (TypeError, ValueError):
                    pass
        elif kind == "meta":
            if record.get("title"):
                out.title = str(record["title"])
            if record.get("model"):
                out.model = str(record["model"])
            touched = record.get("touched")
            if isinstance(touched, str) and touched not in out.touched:
                out.touched.append(touched)
            if isinstance(record.get("system"), str):
                out.system = record["system"]
            if "todos" in record:
                out.todos = record["todos"]
        elif kind == "subagent":
            msg, call_id = record.get("message"), record.get("call_id")
            if isinstance(msg, dict) and isinstance(call_id, str):
                entry = out.subagents.setdefault(call_id, {"agent": str(record.get("agent") or ""), "messages": []})
                entry["messages"].append(msg)
            else:
                out.warnings.append(f"line {line_no}: a sub-agent record without a message or call id")

    def _info(self, path: Path) -> SessionInfo | None:
        try:
            loaded = self.load(path.stem)
        except (OSError, ValueError) as e:
            log.debug("skipping %s: %s", path, e)
            return None
        if not loaded.created and not loaded.messages:
            return None
        return SessionInfo(
            id=path.stem,
            title=loaded.title or "(untitled)",
            created=loaded.created,
            updated=loaded.updated,
            message_count=len(loaded.messages),
            model=loaded.model,
        )

    def list(self) -> list[SessionInfo]:
        """Every session, newest (last written) first. Reads every file: call it
        off the event loop (``asyncio.to_thread``) when there may be many."""
        if not self.dir.is_dir():
            return []
        infos = [i for i in map(self._info, self.dir.glob("*.jsonl")) if i is not None]
        infos.sort(key=lambda s: (s.updated, s.created, s.id), reverse=True)
        return infos

    def latest(self) -> SessionInfo | None:
        """The most recently written session (reads only the newest file(s))."""
        if not self.dir.is_dir():
            return None

        def mtime(p: Path) -> float:
            try:
                return p.stat().st_mtime
            except OSError:
                return 0.0

        paths = sorted(self.dir.glob("*.jsonl"), key=lambda p: (mtime(p), p.stem), reverse=True)
        for path in paths:
            info = self._info(path)
            if info is not None:
                return info
        return None
