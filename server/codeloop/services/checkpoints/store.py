"""The checkpoint store of one session (blocking; ``service.CheckpointService`` is the
async face). Where: ``<workspace>/.codeloop/checkpoints/`` (ignored by git: it is listed
in ``.codeloop/.gitignore``):

    objects/ab/cdef…        content-addressed blobs (blobs.py)
    sessions/<id>.jsonl     each session's journal (journal.py)
    index.json              the stat cache: path -> (size, mtime, ctime, inode) -> content hash

How a command's changes are caught with their prior contents. A stat snapshot alone cannot
give back the old bytes of a file a command rewrites, so the store keeps, at all times, a
blob of the current content of every tracked file (the "live" set):

* ``prepare()`` (the baseline, once per session, in the background) walks the tree and
  stores a blob of every tracked file under the size cap. Blobs are content-addressed, so
  a file already stored (by an earlier session, or another file with the same bytes) costs
  nothing, and ``index.json`` lets a new session skip reading files whose stat is unchanged.
* Before a command, ``before_command()`` brings the live set up to date: whatever changed
  since the last snapshot (the user's edits, an editor save) is read and stored now, while
  its bytes are still there. After the command, ``after_command()`` finds what changed; the
  BEFORE of each change is the live blob, the AFTER is read and stored (it is the next
  command's BEFORE).
* What changed is found with an inotify watcher (inotify.py) when it is available: the
  snapshot reads only the paths the kernel reported, so a command that changed nothing costs
  a non-blocking read of the event queue. Without it (not Linux, watch limit reached, queue
  overflow) the snapshot walks the tree and compares stats (scan.py).

Racy stats (a file rewritten within the timestamp granularity with the same size) are
handled as git does: each snapshot first writes a marker file in the store and reads its
timestamp (the file system's own clock, at its own granularity); an entry whose mtime or
ctime is not older than that is "racy" and is re-hashed the next time it is looked at.
When the store is on another file system, ``RACY_NS`` of wall-clock time stands in.

This module holds the records and the contents; the baseline, the stat cache and the
snapshots are in ``snapshots.py`` (a mixin of the store), pruning in ``prune.py``, the
shared small types in ``entries.py``.
"""

from __future__ import annotations

import errno
import hashlib
import logging
import os
import re
import threading
import time
from pathlib import Path
from typing import Any

from codeloop.edits.disk import ensure_codeloop_gitignore

from .blobs import BlobStore
from .entries import (
    HASH_CHUNK,
    PRUNE_EVERY,
    CheckpointError,
    CommandMark,
    Entry,
    StoreStats,
    _OPEN_FLAGS,
    _session_file_name,
    default_store_dir,
    link_ref,
)
from .inotify import Watcher
from .journal import FORMAT_VERSION, Journal, change_record, now
from .model import SESSION_WHO, Checkpoint, ContentRef, FileChange, TurnInfo, eol_key, sha256
from .prune import prune as prune_store
from .prune import storage as store_storage
from .scan import IgnoreRules, Stat, stat_file
from .settings import CheckpointSettings
from .snapshots import Snapshots

try:
    import fcntl
except ImportError:  # Windows
    fcntl = None  # type: ignore[assignment]

log = logging.getLogger(__name__)

__all__ = ["CheckpointError", "CheckpointStore", "CommandMark", "StoreStats", "default_store_dir", "link_ref"]


class CheckpointStore(Snapshots):
    """One session's checkpoints. Thread-safe; every method blocks (call them off the
    event loop). Open with ``CheckpointStore.open``; a session id seen before resumes."""

    def __init__(self, root: Path, session_id: str, settings: CheckpointSettings | None = None,
                 *, store_dir: Path | None = None) -> None:
        self.root = Path(root).resolve()
        self.session_id = session_id
        self.settings = settings or CheckpointSettings()
        self.dir = Path(store_dir).resolve() if store_dir is not None else default_store_dir(self.root)
        self.blobs = BlobStore(self.dir / "objects")
        self.journal = Journal(self.dir / "sessions" / _session_file_name(session_id))
        self.warnings: list[str] = []
        self.checkpoints: list[Checkpoint] = []
        self.changes: list[FileChange] = []
        self.rewinds: list[dict[str, Any]] = []  # {"to", "undo", "summary", "ts"}, oldest first
        self.open_elsewhere = False  # another process holds this session's journal
        self._stats = StoreStats(budget_bytes=self.settings.budget_bytes)
        self._lock = threading.RLock()  # the records and the live set
        self._prep_lock = threading.Lock()
        self._seq = 0
        self._next_cp = 1
        self._expected: dict[str, ContentRef | None] = {}  # recorded changes the disk may not show yet
        self._entries: dict[str, Entry] = {}
        self._ready = False
        self._watcher: Watcher | None = None
        self._rules = IgnoreRules(self.root, self.settings.exclude, self._skip_paths())
        self._last_full = 0.0
        self._active: dict[int, str] = {}
        self._next_mark = 1
        self._last_prune = 0.0
        self._budget_full = False
        self._session_lock_fd: int | None = None
        self._closed = False
        self._exclude_stat: Stat | None = None
        self._interrupted: list[str] = []  # commands that were running when the session stopped
        self._ignore_files: set[str] = set()  # tracked .gitignore/.ignore/.rgignore files
        self._clock_ns = 0  # the file system's "now" at the start of the current snapshot
        self._clock_same_fs: bool | None = None

    # -- opening ------------------------------------------------------------------------

    @classmethod
    def open(cls, root: Path, session_id: str, settings: CheckpointSettings | None = None,
             *, store_dir: Path | None = None) -> "CheckpointStore":
        """Open (or create) the store of ``session_id``. Its journal, if any, is loaded
        (a resume): a record cut by a crash is dropped, removed from the file, and said
        in ``warnings``."""
        self = cls(root, session_id, settings, store_dir=store_dir)
        self._make_dirs()
        self._lock_session()
        loaded = self.journal.load()
        self.warnings.extend(loaded.warnings)
        cut = self.journal.repair()
        if cut:
            log.warning("checkpoints %s: removed an incomplete last record (%d bytes)", session_id, cut)
        self.checkpoints = loaded.checkpoints
        self.changes = loaded.changes
        self.rewinds = list(loaded.rewinds)
        self._seq = loaded.records
        self._next_mark = loaded.last_command_id + 1
        self._interrupted = list(loaded.open_commands.values())
        for cp in self.checkpoints:
            m = re.fullmatch(r"c(\d+)", cp.id)
            if m:
                self._next_cp = max(self._next_cp, int(m.group(1)) + 1)
        for c in self.changes:
            if c.who in ("proposal", "rewind"):
                self._expected[c.path] = c.after
            else:
                self._expected.pop(c.path, None)
        if not loaded.header:
            self._append([{"type": "header", "session": session_id, "root": str(self.root),
                           "version": FORMAT_VERSION, "ts": now()}])
        return self

    def _skip_paths(self) -> tuple[str, ...]:
        try:
            rel = self.dir.relative_to(self.root).as_posix()
        except ValueError:
            return ()
        return (rel,)

    def _make_dirs(self) -> None:
        (self.dir / "sessions").mkdir(parents=True, exist_ok=True)
        (self.dir / "objects").mkdir(parents=True, exist_ok=True)
        if self.dir == default_store_dir(self.root):
            # .codeloop/.gitignore lists checkpoints/ (one helper for what codeloop keeps there)
            ensure_codeloop_gitignore(self.root)

    def _lock_session(self) -> None:
        """Hold a lock on this session's journal while open, so pruning in another
        process never deletes a live session."""
        if fcntl is None:
            return
        try:
            fd = os.open(self.journal.path, os.O_RDWR | os.O_CREAT, 0o600)
        except OSError:
            return
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError:
            self.warnings.append(f"session {self.session_id} is open in another process too")
            self.open_elsewhere = True
        self._session_lock_fd = fd

    def close(self) -> None:
        """Save the stat cache, stop the watcher, release the session."""
        with self._lock:
            if self._closed:
                return
            self._closed = True
            if self._ready:
                self._save_index()
            if self._watcher is not None:
                self._watcher.close()
                self._watcher = None
            if self._session_lock_fd is not None:
                try:
                    os.close(self._session_lock_fd)
                except OSError:
                    pass
                self._session_lock_fd = None

    # -- records ------------------------------------------------------------------------

    def _append(self, records: list[dict[str, Any]], durable: bool = True) -> int:
        """Write records (fsynced); the sequence number of the last one."""
        self.journal.append(records, durable=durable)
        self._seq += len(records)
        return self._seq

    def _new_checkpoint(self, kind: str, message_index: int | None, message_id: str | None, label: str) -> Checkpoint:
        with self._lock:
            cid = f"c{self._next_cp}"
            self._next_cp += 1
            if kind == "turn":
                turn = cid
            else:
                turn = next((c.turn for c in reversed(self.checkpoints)), cid)
            cp = Checkpoint(cid, kind, turn, message_index, message_id, label, now())  # type: ignore[arg-type]
            if kind == "step" and message_index is None:
                parent = next((c for c in reversed(self.checkpoints) if c.id == turn), None)
                if parent is not None:
                    cp = Checkpoint(cid, "step", turn, parent.message_index, parent.message_id, label, cp.ts)
            seq = self._append([cp.to_json()])
            cp = Checkpoint(cp.id, cp.kind, cp.turn, cp.message_index, cp.message_id, cp.label, cp.ts, seq)
            self.checkpoints.append(cp)
            return cp

    def begin_turn(self, message_index: int, *, message_id: str | None = None, label: str = "") -> Checkpoint:
        """A checkpoint before the user message at ``message_index`` of the conversation
        (``message_id``: the host's own id for it, if it has one). With the watcher, a full
        walk is done here now and then (``rescan_seconds``) to catch what it cannot see."""
        if self._ready and self._watcher is not None and self.settings.rescan_seconds:
            if time.monotonic() - self._last_full > self.settings.rescan_seconds:
                self.refresh(full=True)
        return self._new_checkpoint("turn", message_index, message_id, label)

    def begin_step(self, label: str = "") -> Checkpoint:
        """A checkpoint before a tool step within the current turn."""
        return self._new_checkpoint("step", None, None, label)

    def _current_checkpoint(self) -> Checkpoint:
        with self._lock:
            if self.checkpoints:
                return self.checkpoints[-1]
        return self._new_checkpoint("turn", None, None, "session start")

    def _record(self, who: str, label: str, files: list[FileChange]) -> list[FileChange]:
        """Append one record for ``files`` (their blobs made durable first)."""
        if not files:
            return []
        with self._lock:
            cp = self._current_checkpoint()
            hashes = {r.hash for f in files for r in (f.before, f.after) if r is not None and r.kept}
            self.blobs.sync(hashes)
            seq = self._append([change_record(cp.id, who, label, files)])
            ts = now()
            out = [FileChange(f.path, f.before, f.after, who, cp.id, label, seq, ts) for f in files]  # type: ignore[arg-type]
            self.changes.extend(out)
            return out

    # -- contents -----------------------------------------------------------------------

    def _maybe_prune(self, need: int = 0) -> None:
        """Prune now if the store is near its budget (at most every PRUNE_EVERY seconds).
        Only from the thread that holds the lock (never from the capture workers)."""
        if not self._ready or self.blobs.total_bytes() + need <= self.settings.budget_bytes * 0.9:
            return
        if time.monotonic() - self._last_prune <= PRUNE_EVERY:
            return
        self._last_prune = time.monotonic()
        try:
            self.prune(need=need)
        except Exception:
            log.exception("pruning the checkpoint store failed")

    def _room_for(self, n: int, may_prune: bool) -> bool:
        budget = self.settings.budget_bytes
        if self.blobs.total_bytes() + n <= budget:
            return True
        if may_prune:
            with self._lock:
                self._maybe_prune(n)
        ok = self.blobs.total_bytes() + n <= budget
        if not ok and not self._budget_full:
            self._budget_full = True
            log.warning("checkpoint store is over its budget (%d bytes); new contents are not kept", budget)
        return ok

    def keep_bytes(self, data: bytes, mode: int | None = None, *, durable: bool = False,
                   may_prune: bool = True) -> ContentRef:
        """Store ``data`` (under the cap and the budget) and return its reference."""
        h = sha256(data)
        key = eol_key(data, h)
        key = "" if key == h else key
        if len(data) > self.settings.max_file_bytes:
            return ContentRef(h, len(data), mode, False, "size", key)
        if self.blobs.has(h):
            self.blobs.touch(h)
        else:
            encoded = self.blobs.encode(data)
            if not self._room_for(len(encoded), may_prune):
                return ContentRef(h, len(data), mode, False, "budget", key)
            self.blobs.put_encoded(h, encoded)
        if durable:
            self.blobs.sync([h])
        return ContentRef(h, len(data), mode, True, "", key)

    def _capture(self, rel: str) -> Entry | None:
        """Read a file now: its stat and a reference to its (stored) content. None if it
        is not there (or not a file). Reads through one descriptor (open, fstat, read,
        fstat): a file rewritten in place while being read is read again; one replaced
        meanwhile was read whole in its old version, and the new one is a new change."""
        path = os.path.join(self.root, rel)
        for _attempt in range(3):
            try:
                fd = os.open(path, _OPEN_FLAGS)
            except FileNotFoundError:
                return None
            except OSError as e:
                try:
                    lst = os.lstat(path)
                except OSError:
                    return None
                if (lst.st_mode & 0o170000) == 0o120000:  # a symbolic link: recorded, never followed
                    ref = link_ref(path)
                    return None if ref is None else Entry(Stat.of(lst), ref, True)
                if (lst.st_mode & 0o170000) != 0o100000 or e.errno == errno.ELOOP:
                    return None
                st = Stat.of(lst)
                return Entry(st, ContentRef(f"unreadable:{st.size}:{st.mtime_ns}", st.size, st.mode, False, "unreadable"), True)
            try:
                st0 = os.fstat(fd)
                if (st0.st_mode & 0o170000) != 0o100000:
                    return None
                st = Stat.of(st0)
                hasher = None
                if st.size > self.settings.max_file_bytes:
                    hasher = hashlib.sha256()
                    size = 0
                    while chunk := os.read(fd, HASH_CHUNK):
                        hasher.update(chunk)
                        size += len(chunk)
                    data = b""
                else:
                    parts = []
                    want = st.size + 1
                    while chunk := os.read(fd, max(want, 65536)):
                        parts.append(chunk)
                        want = 65536
                    data = parts[0] if len(parts) == 1 else b"".join(parts)
                after = Stat.of(os.fstat(fd))
            finally:
                os.close(fd)
            if not after.same(st):
                continue  # changed while being read: read again
            racy = max(st.mtime_ns, st.ctime_ns) >= self._clock_ns
            if hasher is not None:
                return Entry(st, ContentRef(hasher.hexdigest(), size, st.mode, False, "size"), racy)
            return Entry(st, self.keep_bytes(data, st.mode, may_prune=False), racy)
        log.warning("checkpoints: %s kept changing while being read", rel)
        last = stat_file(self.root, rel)
        if last is None:
            return None
        return Entry(last, ContentRef(f"unreadable:{last.size}:{last.mtime_ns}", last.size, last.mode, False, "unreadable"),
                     True)

    def load(self, ref: ContentRef | None) -> bytes | None:
        """The bytes of a kept content, or None (absent, not kept, or lost)."""
        if ref is None or not ref.kept:
            return None
        return self.blobs.get(ref.hash)

    # -- edits from the proposal pipeline -----------------------------------------------

    def rel(self, path: Path | str) -> str | None:
        """Workspace-relative ``/`` path, or None when outside the workspace."""
        p = Path(path)
        if not p.is_absolute():
            p = self.root / p
        p = Path(os.path.normpath(p))
        try:
            rel = p.relative_to(self.root).as_posix()
        except ValueError:
            try:  # the same folder reached through a symbolic link
                rel = (p.parent.resolve() / p.name).relative_to(self.root).as_posix()
            except (ValueError, OSError):
                return None
        return rel if rel not in ("", ".") and not rel.startswith("../") else None

    def record_edit(self, path: Path | str, before: str | bytes | None, after: str | bytes | None,
                    *, label: str = "") -> FileChange | None:
        """Record an edit of the proposal pipeline: ``before`` is what the user had (the
        buffer when open, unsaved edits included; None: the file did not exist), ``after``
        what the edit left (None: deleted). Text is stored as UTF-8. None when the path is
        outside the workspace or nothing changed."""
        rel = self.rel(path)
        if rel is None:
            return None
        with self._lock:
            entry = self._entries.get(rel)
            mode = entry.ref.mode if entry is not None else None
            before_ref = self._ref_for(before, entry, mode)
            after_ref = self._ref_for(after, None, mode)
            if (before_ref is None and after_ref is None) or (
                before_ref is not None and after_ref is not None and before_ref.hash == after_ref.hash
            ):
                return None
            out = self._record("proposal", label, [FileChange(rel, before_ref, after_ref, "proposal", "")])
            self._expected[rel] = after_ref
            return out[0] if out else None

    def _ref_for(self, content: str | bytes | None, entry: Entry | None, mode: int | None) -> ContentRef | None:
        if content is None:
            return None
        data = content.encode("utf-8") if isinstance(content, str) else content
        if entry is not None and entry.ref.kept and isinstance(content, str):
            # The pipeline hands over text with normalised newlines; when it is what the
            # disk holds, keep the disk's exact bytes (CRLF and all) as this version.
            if entry.ref.match_key == eol_key(data):
                return entry.ref
        return self.keep_bytes(data, mode)

    def record_rewind(self, label: str, files: list[FileChange]) -> list[FileChange]:
        """Record what a rewind wrote (so the disk showing it is not a change, and the
        rewind itself can be undone)."""
        with self._lock:
            out = self._record("rewind", label, files)
            for f in out:
                self._expected[f.path] = f.after
            return out

    def note_rewind(self, to: str, undo: str, summary: str) -> None:
        with self._lock:
            record = {"type": "rewind", "to": to, "undo": undo, "summary": summary, "ts": now()}
            self._append([record])
            self.rewinds.append(record)

    # -- reading the records -----------------------------------------------------------

    def checkpoint(self, checkpoint_id: str) -> Checkpoint | None:
        with self._lock:
            return next((c for c in self.checkpoints if c.id == checkpoint_id), None)

    def checkpoint_for_message(self, message_index: int) -> Checkpoint | None:
        """The latest turn checkpoint before the user message at ``message_index``."""
        with self._lock:
            return next((c for c in reversed(self.checkpoints) if c.kind == "turn" and c.message_index == message_index), None)

    def changes_after(self, checkpoint_id: str) -> list[FileChange]:
        cp = self.checkpoint(checkpoint_id)
        if cp is None:
            raise CheckpointError(f"no checkpoint {checkpoint_id!r} in session {self.session_id}")
        with self._lock:
            return [c for c in self.changes if c.seq > cp.seq]

    def turns(self) -> list[TurnInfo]:
        """Every turn checkpoint, oldest first, with how many files the session changed
        since it (what a rewind to it would consider) and its number of steps."""
        with self._lock:
            out = []
            for cp in self.checkpoints:
                if cp.kind != "turn":
                    continue
                touched = {c.path for c in self.changes if c.seq > cp.seq and c.who in SESSION_WHO}
                steps = sum(1 for c in self.checkpoints if c.kind == "step" and c.turn == cp.id)
                out.append(TurnInfo(cp, cp.message_index, cp.message_id, cp.label, cp.ts, len(touched), steps))
            return out

    def stats(self) -> StoreStats:
        """Figures for benchmarks and ``/rewind`` listings."""
        with self._lock:
            st = StoreStats(**{**self._stats.__dict__, "last_refresh": dict(self._stats.last_refresh)})
            st.tracked_files = len(self._entries)
            st.watcher = self._watcher is not None
            st.watched_dirs = self._watcher.count if self._watcher is not None else 0
        st.blob_bytes = self.blobs.total_bytes()
        st.blobs = len(self.blobs.sizes())
        return st

    def current_ref(self, rel: str) -> ContentRef | None:
        with self._lock:
            e = self._entries.get(rel)
            return e.ref if e is not None else None

    def tracked(self) -> list[str]:
        with self._lock:
            return sorted(self._entries)

    # -- pruning ------------------------------------------------------------------------

    def prune(self, need: int = 0) -> dict[str, int]:
        """Delete the oldest other sessions' journals (not open anywhere) until what the
        rest reference, plus the live set, fits the budget (less ``need``), then delete
        every blob nothing references (and unused for an hour, so another process's fresh
        blobs are safe)."""
        return prune_store(self, need)

    def storage(self) -> dict[str, int]:
        """Bytes on disk: blobs, journals, the stat cache."""
        return store_storage(self)
