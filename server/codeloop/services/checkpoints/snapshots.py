"""The snapshots of the checkpoint store: the baseline (once per session), the stat cache
(``index.json``), and the snapshot before and after each command (``refresh``): what
changed, found through the watcher's events or a walk of the tree. A mixin of
``store.CheckpointStore``, whose state it uses (see ``store.py`` for how it all fits)."""

from __future__ import annotations

import contextlib
import json
import logging
import os
import threading
import time
from pathlib import Path
from typing import Any

from codeloop.edits.disk import write_atomic

from .blobs import BlobStore
from .entries import BATCH_MIN, INDEX_VERSION, RACY_NS, CommandMark, Entry, StoreStats, _map, _same_stat
from .inotify import Watcher, WatcherUnavailable, WatchLimit
from .journal import now
from .model import Checkpoint, ContentRef, FileChange, same_state
from .scan import IGNORE_FILES, IgnoreRules, Stat, is_ignore_file, stat_file, walk
from .settings import CheckpointSettings

log = logging.getLogger(__name__)


class Snapshots:
    """Part of ``CheckpointStore``: every method here runs with its attributes, declared here
    (set in ``CheckpointStore.__init__``), and calls the store's methods stubbed below."""

    root: Path
    dir: Path
    settings: CheckpointSettings
    blobs: BlobStore
    checkpoints: list[Checkpoint]
    changes: list[FileChange]
    _stats: StoreStats
    _lock: threading.RLock
    _prep_lock: threading.Lock
    _expected: dict[str, ContentRef | None]  # recorded changes the disk may not show yet
    _entries: dict[str, Entry]
    _ready: bool
    _closed: bool
    _watcher: Watcher | None
    _rules: IgnoreRules
    _last_full: float
    _active: dict[int, str]  # running commands: mark id -> label
    _next_mark: int
    _exclude_stat: Stat | None
    _interrupted: list[str]
    _ignore_files: set[str]
    _clock_ns: int
    _clock_same_fs: bool | None

    # -- the store's own (CheckpointStore) -----------------------------------------------

    def _append(self, records: list[dict[str, Any]], durable: bool = True) -> int:
        raise NotImplementedError

    def _record(self, who: str, label: str, files: list[FileChange]) -> list[FileChange]:
        raise NotImplementedError

    def _capture(self, rel: str) -> Entry | None:
        raise NotImplementedError

    def _maybe_prune(self, need: int = 0) -> None:
        raise NotImplementedError

    def _skip_paths(self) -> tuple[str, ...]:
        raise NotImplementedError

    def prune(self, need: int = 0) -> dict[str, int]:
        raise NotImplementedError

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
                self._maybe_prune(sum(st.size for _, st, _ in todo if st is not None))
            with (self.blobs.batch() if len(readable) > BATCH_MIN else contextlib.nullcontext()):
                captured = dict(zip(readable, _map(self._capture, readable)))
            read = len(readable)
            for rel, _st, old in todo:
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
