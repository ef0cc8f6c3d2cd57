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
"""

from __future__ import annotations

import concurrent.futures
import contextlib
import errno
import hashlib
import json
import logging
import os
import re
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from codeloop.edits.disk import ensure_codeloop_gitignore, write_atomic

from .blobs import BlobStore
from .inotify import Watcher, WatcherUnavailable, WatchLimit
from .journal import FORMAT_VERSION, Journal, change_record, now
from .model import SESSION_WHO, Checkpoint, ContentRef, FileChange, TurnInfo, eol_key, same_state, sha256
from .scan import IGNORE_FILES, IgnoreRules, Stat, is_ignore_file, stat_file, walk
from .settings import CheckpointSettings

try:
    import fcntl
except ImportError:  # Windows
    fcntl = None  # type: ignore[assignment]

log = logging.getLogger(__name__)

RACY_NS = 2_000_000_000  # 2 s: coarse kernel clocks, FAT's 2 s mtimes
INDEX_VERSION = 1
HASH_CHUNK = 1 << 20
PRUNE_EVERY = 60.0  # seconds between prunes triggered by a full budget
GC_GRACE = 3600.0


_OPEN_FLAGS = os.O_RDONLY | getattr(os, "O_NOFOLLOW", 0) | getattr(os, "O_CLOEXEC", 0)
BATCH_MIN = 8  # more new contents than this in one snapshot go into one pack
PARALLEL_MIN = 16  # more files than this are read by a few threads (hashing and zlib release the GIL)


def _workers() -> int:
    return max(1, min(4, os.cpu_count() or 1))


def _map(fn, items: list) -> list:
    if len(items) <= PARALLEL_MIN:
        return [fn(x) for x in items]
    with concurrent.futures.ThreadPoolExecutor(_workers(), thread_name_prefix="checkpoints") as ex:
        return list(ex.map(fn, items))


@dataclass(slots=True)
class Entry:
    stat: Stat
    ref: ContentRef
    racy: bool = False


@dataclass(frozen=True, slots=True)
class CommandMark:
    """Handed back by ``before_command``; give it to ``after_command``."""

    id: int
    label: str
    started: float


@dataclass
class StoreStats:
    tracked_files: int = 0
    watched_dirs: int = 0
    watcher: bool = False
    watcher_note: str = ""
    blob_bytes: int = 0
    blobs: int = 0
    baseline_seconds: float = 0.0
    baseline_read_files: int = 0
    last_refresh: dict[str, Any] = field(default_factory=dict)
    pruned_sessions: int = 0
    budget_bytes: int = 0


class CheckpointError(Exception):
    pass


def _session_file_name(session_id: str) -> str:
    if not re.fullmatch(r"[A-Za-z0-9_.\-]+", session_id) or session_id.startswith("."):
        raise ValueError(f"invalid session id {session_id!r}")
    return f"{session_id}.jsonl"


def default_store_dir(root: Path) -> Path:
    return Path(root) / ".codeloop" / "checkpoints"


class CheckpointStore:
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
        st = stat_file(self.root, rel)
        if st is None:
            return None
        return Entry(st, ContentRef(f"unreadable:{st.size}:{st.mtime_ns}", st.size, st.mode, False, "unreadable"), True)

    def load(self, ref: ContentRef | None) -> bytes | None:
        """The bytes of a kept content, or None (absent, not kept, or lost)."""
        if ref is None or not ref.kept:
            return None
        return self.blobs.get(ref.hash)

    # -- the baseline -------------------------------------------------------------------

    @property
    def ready(self) -> bool:
        return self._ready

    def prepare(self) -> None:
        """The baseline: watch and walk the tree, store a blob of every tracked file
        (reading only what the stat cache does not vouch for). Idempotent."""
        if self._ready:
            return
        with self._prep_lock:
            if self._ready or self._closed:
                return
            t0 = time.perf_counter()
            with self._lock:
                stale = dict(self._expected)
                self._tick()
            cache = self._load_index()
            watcher = None
            note = ""
            if self.settings.watch:
                try:
                    watcher = Watcher()
                except WatcherUnavailable as e:
                    note = f"no watcher: {e}"
            self._watcher = watcher
            files, _dirs = walk(self.root, self._rules, on_dir=self._on_dir if watcher is not None else None)
            self._ignore_files = {p for p in files if p.endswith(IGNORE_FILES) and is_ignore_file(p)}
            watcher = self._watcher  # None if the watch limit was reached
            self._exclude_stat = self._info_exclude_stat()
            self.blobs.sizes()  # count the store once, for the budget
            entries: dict[str, Entry] = {}
            todo: list[str] = []
            for rel, st in files.items():
                old = cache.get(rel)
                if old is not None and st.same(old.stat) and not old.racy and (not old.ref.kept or self.blobs.has(old.ref.hash)):
                    entries[rel] = old
                else:
                    todo.append(rel)
            if todo:
                with self.blobs.batch():
                    for rel, entry in zip(todo, _map(self._capture, todo)):
                        if entry is not None:
                            entries[rel] = entry
            with self._lock:
                offline = self._offline_changes(cache, entries)
                self._entries = entries
                self._last_full = time.monotonic()
                for rel, exp in stale.items():
                    # After a resume the disk is the truth: a recorded edit it never caught
                    # up with shows at rewind as "changed since", and is asked about.
                    if rel in self._expected and self._expected[rel] is exp:
                        del self._expected[rel]
                self._ready = True
                self._stats.baseline_seconds = round(time.perf_counter() - t0, 3)
                self._stats.baseline_read_files = len(todo)
                self._stats.watcher = self._watcher is not None
                self._stats.watcher_note = self._stats.watcher_note or note
                if offline:
                    if self._interrupted:
                        label = ("changed while the session was not running; a command cut off when it "
                                 "stopped may have done it: " + "; ".join(self._interrupted))
                    else:
                        label = "changed while the session was not running"
                    self._record("unknown", label, offline)
                self._save_index()
        try:
            self.prune()
        except Exception:
            log.exception("pruning the checkpoint store failed")

    def _tick(self) -> None:
        """Read the file system's clock (see "Racy stats" above)."""
        if self._clock_same_fs is None:
            try:
                self._clock_same_fs = os.stat(self.dir).st_dev == os.stat(self.root).st_dev
            except OSError:
                self._clock_same_fs = False
        if self._clock_same_fs:
            path = self.dir / "clock"
            try:
                try:
                    os.utime(path)  # metadata only: the file system's "now"
                except FileNotFoundError:
                    path.touch()
                st = os.stat(path)
                self._clock_ns = max(st.st_mtime_ns, st.st_ctime_ns)
                return
            except OSError:
                pass
        self._clock_ns = time.time_ns() - RACY_NS

    def _offline_changes(self, cache: dict[str, Entry], entries: dict[str, Entry]) -> list[FileChange]:
        """On a resume: what changed since the session last recorded anything (a command
        cut off by a crash, the user while it was closed), found against the last recorded
        version of each file, else the stat cache. Recorded as "unknown": never undone."""
        if not self.changes and not self.checkpoints:
            return []
        if not cache:
            return []  # nothing to compare with
        last: dict[str, ContentRef | None] = {}
        for c in self.changes:
            last[c.path] = c.after
        out: list[FileChange] = []
        for rel in sorted(set(last) | set(cache) | set(entries)):
            now_ref = entries[rel].ref if rel in entries else None
            if rel in last:
                prior = last[rel]
            elif rel in cache:
                prior = cache[rel].ref
            else:
                prior = None
            if prior is None and now_ref is None:
                continue
            if prior is not None and now_ref is not None and (prior.hash == now_ref.hash or prior.same(now_ref)):
                continue
            if rel not in last and rel not in entries and os.path.lexists(os.path.join(self.root, rel)):
                continue  # ignored now, not gone
            if rel not in last and rel not in cache and self._rules.ignored(rel, False):
                continue
            out.append(FileChange(rel, prior, now_ref, "unknown", ""))
        return out

    def _on_dir(self, abs_dir: str, rel_dir: str) -> None:
        """Watch a folder before it is listed (the watch-limit falls back to walking)."""
        w = self._watcher
        if w is None or w.watching(rel_dir):
            return
        try:
            w.add(abs_dir, rel_dir)
        except WatchLimit as e:
            log.warning("checkpoints: %s; snapshots walk the tree instead", e)
            self._stats.watcher_note = f"no watcher: {e}"
            self._stats.watcher = False
            w.close()
            self._watcher = None
        except OSError:
            pass  # gone meanwhile: its parent's event says so

    def _info_exclude_stat(self) -> Stat | None:
        return stat_file(self.root, ".git/info/exclude")

    # -- the stat cache -----------------------------------------------------------------

    def _index_path(self) -> Path:
        return self.dir / "index.json"

    def _load_index(self) -> dict[str, Entry]:
        try:
            data = json.loads(self._index_path().read_text(encoding="utf-8"))
        except (OSError, ValueError):
            return {}
        if not isinstance(data, dict) or data.get("version") != INDEX_VERSION or data.get("root") != str(self.root):
            return {}
        out: dict[str, Entry] = {}
        for rel, v in (data.get("entries") or {}).items():
            try:
                size, mtime, ctime, ino, mode, ref, racy = v
                r = ContentRef.from_json(ref)
                if r is not None:
                    out[rel] = Entry(Stat(size, mtime, ctime, ino, mode), r, bool(racy))
            except (TypeError, ValueError):
                continue
        return out

    def _save_index(self) -> None:
        entries = {
            rel: [e.stat.size, e.stat.mtime_ns, e.stat.ctime_ns, e.stat.ino, e.stat.mode, e.ref.to_json(), e.racy]
            for rel, e in self._entries.items()
        }
        data = json.dumps({"version": INDEX_VERSION, "root": str(self.root), "entries": entries}, separators=(",", ":"))
        try:
            write_atomic(self._index_path(), data, durable=False)
        except OSError as e:
            log.warning("could not save the checkpoint index: %s", e)

    # -- snapshots ----------------------------------------------------------------------

    def refresh(self, who: str = "unknown", label: str = "", *, full: bool = False) -> list[FileChange]:
        """Bring the live set up to date with the disk, recording what changed as ``who``.
        A change the disk was expected to show (an edit recorded through ``record_edit``
        reaching the disk, a rewind) is not recorded again."""
        self.prepare()
        with self._lock:
            if self._closed:
                return []
            t0 = time.perf_counter()
            candidates, mode, silent = self._candidates(full)
            if candidates:
                self._tick()  # before anything is read
            changed: list[FileChange] = []
            todo: list[tuple[str, Stat | None, Entry | None]] = []
            for rel, st in candidates.items():
                old = self._entries.get(rel)
                if rel in silent:
                    # tracked, or no longer, only because the ignore rules changed: no change
                    entry = self._capture(rel) if st is not None else None
                    if entry is None:
                        self._entries.pop(rel, None)
                    else:
                        self._entries[rel] = entry
                    continue
                if st is None and old is None:
                    continue
                if st is not None and old is not None and st.same(old.stat) and not old.racy:
                    continue
                todo.append((rel, st, old))
            readable = [rel for rel, st, _ in todo if st is not None]
            if readable:
                self._maybe_prune(sum(candidates[r].size for r in readable))  # type: ignore[union-attr]
            with (self.blobs.batch() if len(readable) > BATCH_MIN else contextlib.nullcontext()):
                captured = dict(zip(readable, _map(self._capture, readable)))
            read = len(readable)
            for rel, st, old in todo:
                entry = captured.get(rel)
                if entry is None and old is None:
                    continue
                if entry is not None and old is not None and entry.ref.hash == old.ref.hash:
                    self._entries[rel] = entry  # touched, not changed
                    continue
                if entry is None:
                    self._entries.pop(rel, None)
                else:
                    self._entries[rel] = entry
                after = entry.ref if entry is not None else None
                before = old.ref if old is not None else None
                if rel in self._expected:
                    exp = self._expected.pop(rel)
                    if same_state(after, exp):
                        continue  # the disk caught up with a recorded change
                changed.append(FileChange(rel, before, after, who, ""))  # type: ignore[arg-type]
            changed.sort(key=lambda c: c.path)
            out = self._record(who, label, changed)
            self._stats.last_refresh = {
                "mode": mode, "candidates": len(candidates), "read": read, "changes": len(out),
                "ms": round((time.perf_counter() - t0) * 1000, 3),
            }
            return out

    def _candidates(self, full: bool) -> tuple[dict[str, Stat | None], str, set[str]]:
        """Paths that may have changed, with their stat now (None: gone): from the
        watcher's events, or from a walk (``full``, no watcher, a queue overflow, an ignore
        file changed). And the paths whose tracking changed only because the ignore rules
        did (no change is recorded for them)."""
        w = self._watcher
        if w is not None and not full:
            batch = w.drain()
            if not (batch.overflow or batch.lost_root):
                paths = set(batch.files)
                known: dict[str, Stat | None] = {}
                for d in batch.dirs_gone:
                    w.forget(d)
                    prefix = d + "/"
                    paths.update(p for p in self._entries if p.startswith(prefix))
                for d in batch.dirs_new:
                    if self._rules.ignored(d, True) or not os.path.isdir(os.path.join(self.root, d)):
                        continue
                    files, _ = walk(self.root, self._rules, d, on_dir=self._on_dir)
                    known.update(files)
                if not any(is_ignore_file(p) for p in paths | set(known)):
                    out: dict[str, Stat | None] = {}
                    for p in paths | set(known):
                        if p in known:
                            out[p] = known[p]
                        elif p in self._entries or not self._rules.ignored(p, False):
                            out[p] = stat_file(self.root, p)
                    return out, "watcher", set()
            full = True
        # A walk. With a watcher, what is queued now is superseded by it; what happens
        # during it stays queued for the next snapshot.
        if self._watcher is not None:
            self._watcher.drain()
        files, dirs = walk(self.root, self._rules, on_dir=self._on_dir if self._watcher is not None else None)
        silent: set[str] = set()
        exclude_stat = self._info_exclude_stat()
        ignore_files = {p for p in files if p.endswith(IGNORE_FILES) and is_ignore_file(p)}
        ignore_files |= {p for p in self._ignore_files if p not in files}
        rules_changed = not _same_stat(exclude_stat, self._exclude_stat) or any(
            not _same_stat(files.get(p), self._entries[p].stat if p in self._entries else None) for p in ignore_files
        )
        if rules_changed:
            old_rules = self._rules
            self._rules = IgnoreRules(self.root, self.settings.exclude, self._skip_paths())
            self._exclude_stat = exclude_stat
            if self._watcher is not None:
                self._watcher.drain()
            files, dirs = walk(self.root, self._rules, on_dir=self._on_dir if self._watcher is not None else None)
            for p in files:
                if p not in self._entries and old_rules.ignored(p, False):
                    silent.add(p)  # was ignored, is tracked now
            for p in self._entries:
                if p not in files and os.path.lexists(os.path.join(self.root, p)) and self._rules.ignored(p, False):
                    silent.add(p)  # is ignored now
        self._ignore_files = {p for p in files if p.endswith(IGNORE_FILES) and is_ignore_file(p)}
        if self._watcher is not None:
            live = set(dirs)
            for d in self._watcher.watched():
                if d not in live:
                    self._watcher.forget(d)
        self._last_full = time.monotonic()
        out = dict.fromkeys(self._entries)
        out.update(files)
        for p in silent:
            if p not in files:
                out[p] = None
        return out, "walk", silent

    def before_command(self, label: str = "") -> CommandMark:
        """Snapshot before a command runs: what changed since the last snapshot is read
        and stored now (recorded as "unknown", or as a running command's), so the
        command's changes can be undone."""
        with self._lock:
            others = list(self._active.values())
        self.refresh("command" if others else "unknown",
                     ("while running: " + "; ".join(others)) if others else "changed outside the session")
        with self._lock:
            mark = CommandMark(self._next_mark, label, time.monotonic())
            self._next_mark += 1
            self._active[mark.id] = label
            self._append([{"type": "command", "id": mark.id, "label": label, "ts": now()}], durable=False)
        return mark

    def after_command(self, mark: CommandMark) -> list[FileChange]:
        """Snapshot after the command: its changed, created and deleted files, recorded
        with their prior and new contents."""
        with self._lock:
            self._active.pop(mark.id, None)
            others = list(self._active.values())
        label = mark.label if not others else f"{mark.label} (while also running: {'; '.join(others)})"
        out = self.refresh("command", label)
        with self._lock:
            self._append([{"type": "command_end", "id": mark.id}], durable=False)
        return out

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
        with self._lock:
            keep: set[str] = {r.hash for e in self._entries.values() for r in (e.ref,) if r.kept}
            keep |= {r.hash for c in self.changes for r in (c.before, c.after) if r is not None and r.kept}
        others: list[tuple[float, Path, set[str]]] = []
        for p in (self.dir / "sessions").glob("*.jsonl"):
            if p == self.journal.path:
                continue
            try:
                mtime = p.stat().st_mtime
                hashes = _journal_hashes(p)
            except OSError:
                continue
            others.append((mtime, p, hashes))
        others.sort(key=lambda t: t[0])
        sizes = self.blobs.sizes()
        budget = self.settings.budget_bytes - need

        def total(sets: list[set[str]]) -> int:
            u = set(keep)
            for s in sets:
                u |= s
            return sum(sizes.get(h, 0) for h in u)

        dropped = 0
        remaining = list(others)
        for item in list(others):  # oldest first
            if total([t[2] for t in remaining]) <= budget:
                break
            _, path, _ = item
            if _is_locked(path):
                continue  # a session open in another process
            try:
                path.unlink()
            except OSError as e:
                log.warning("could not delete %s: %s", path, e)
                continue
            dropped += 1
            remaining.remove(item)
        final = set(keep)
        for t in remaining:
            final |= t[2]
        removed, freed = self.blobs.gc(final, GC_GRACE)
        self._stats.pruned_sessions += dropped
        self._budget_full = self.blobs.total_bytes() > self.settings.budget_bytes
        return {"sessions_deleted": dropped, "blobs_deleted": removed, "bytes_freed": freed}

    def storage(self) -> dict[str, int]:
        """Bytes on disk: blobs, journals, the stat cache."""
        journals = sum(p.stat().st_size for p in (self.dir / "sessions").glob("*.jsonl"))
        try:
            index = self._index_path().stat().st_size
        except OSError:
            index = 0
        return {"blobs": self.blobs.total_bytes(), "blob_count": len(self.blobs.sizes()), "journals": journals, "index": index}


def link_ref(path: str | Path) -> ContentRef | None:
    """A symbolic link as a version of a path: its target's hash, never kept."""
    try:
        target = os.fsencode(os.readlink(path))
    except OSError:
        return None
    return ContentRef("link:" + sha256(target), len(target), None, False, "symlink")


def _journal_hashes(path: Path) -> set[str]:
    out: set[str] = set()
    with path.open("rb") as f:
        for line in f:
            try:
                rec = json.loads(line)
            except ValueError:
                continue
            if not isinstance(rec, dict) or rec.get("type") != "changes":
                continue
            for fc in rec.get("files") or []:
                if not isinstance(fc, dict):
                    continue
                for side in ("before", "after"):
                    r = fc.get(side)
                    if isinstance(r, dict) and r.get("k", True) and isinstance(r.get("h"), str):
                        out.add(r["h"])
    return out


def _is_locked(path: Path) -> bool:
    """Whether a session journal is held open by a live store."""
    if fcntl is None:
        return False
    try:
        fd = os.open(path, os.O_RDONLY)
    except OSError:
        return False
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except OSError:
        return True
    else:
        fcntl.flock(fd, fcntl.LOCK_UN)
        return False
    finally:
        os.close(fd)


def _same_stat(a: Stat | None, b: Stat | None) -> bool:
    if a is None or b is None:
        return a is None and b is None
    return a.same(b)
