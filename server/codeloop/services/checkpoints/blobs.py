"""A content-addressed blob store, named by the sha256 of the content, so each distinct
content is stored once.

A blob is one codec byte (``0`` raw, ``1`` zlib) and the payload. It lives either loose,
``objects/<2 hex>/<62 hex>`` (written atomically: a temp file and a rename), or in a pack,
``objects/pack/<name>.pack`` with ``<name>.idx`` (hash -> offset, length). Packs exist
because creating a file is the dominant cost of storing many small blobs (about 1 ms each
on a busy ext4 disk, against microseconds to append): the baseline of a 25,000-file tree
and a command that changed many files write one pack each (``batch()``); single blobs go
loose. Nothing is fsynced by default; ``sync()`` makes the blobs a journal record is about
to reference durable first. Every read checks the content against its name, so a blob
damaged by a power loss is reported as lost, never restored.
"""

from __future__ import annotations

import concurrent.futures
import contextlib
import json
import logging
import os
import re
import secrets
import threading
import time
import zlib
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from pathlib import Path

from codeloop.edits.disk import fsync_dir, write_atomic

from .model import sha256

log = logging.getLogger(__name__)

RAW = b"\x00"
ZLIB = b"\x01"
COMPRESS_MIN = 512  # smaller blobs are stored raw
COMPRESS_GAIN = 0.9  # keep the compressed form only when it is at most this share
TMP_SUFFIX = ".codeloop-tmp"
SYNC_THREADS = 16
REPACK_DEAD_SHARE = 0.5  # a pack more than half garbage is rewritten by gc
FLUSH_BYTES = 1 << 20  # a batch writes its pack in chunks of about this size


def _fsync_path(path: Path) -> None:
    try:
        fd = os.open(path, os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(fd)
    except OSError:
        pass
    finally:
        os.close(fd)


def _parallel(fn, items: list) -> None:
    if len(items) <= 2:
        for x in items:
            fn(x)
        return
    with concurrent.futures.ThreadPoolExecutor(min(SYNC_THREADS, len(items)), thread_name_prefix="fsync") as ex:
        list(ex.map(fn, items))


_HASH = re.compile(r"[0-9a-f]{64}")


def _is_hash(h: str) -> bool:
    return _HASH.fullmatch(h) is not None


@dataclass
class _Pack:
    name: str
    path: Path
    objects: dict[str, tuple[int, int]] = field(default_factory=dict)  # hash -> (offset, length)
    size: int = 0
    fd: int | None = None  # open for appending while it is the current batch
    synced: bool = False
    pending: list[bytes] = field(default_factory=list)  # appended, not yet written
    written: int = 0  # bytes of the file written so far

    def flush(self) -> None:
        if self.pending and self.fd is not None:
            data = b"".join(self.pending)
            self.pending.clear()
            view = memoryview(data)
            while view:
                n = os.write(self.fd, view)
                view = view[n:]
            self.written += len(data)

    @property
    def idx(self) -> Path:
        return self.path.with_suffix(".idx")


class BlobStore:
    def __init__(self, directory: Path) -> None:
        self.dir = Path(directory)
        self.pack_dir = self.dir / "pack"
        self._loose: dict[str, int] | None = None  # hash -> bytes on disk, once counted
        self._packs: dict[str, _Pack] = {}
        self._packed: dict[str, str] = {}  # hash -> pack name
        self._total = 0
        self._synced: set[str] = set()  # loose blobs made durable by this process
        self._batch: _Pack | None = None
        self._batch_depth = 0
        self._lock = threading.RLock()

    # -- names and counting ------------------------------------------------------------

    def path_of(self, h: str) -> Path:
        if not _is_hash(h):
            raise ValueError(f"not a sha256: {h!r}")
        return self.dir / h[:2] / h[2:]

    def _load(self) -> None:
        """Count the loose blobs and read the pack indexes (once)."""
        with self._lock:
            if self._loose is not None:
                return
            loose: dict[str, int] = {}
            if self.dir.is_dir():
                with os.scandir(self.dir) as top:
                    for d in top:
                        if len(d.name) != 2 or not d.is_dir(follow_symlinks=False):
                            continue
                        with os.scandir(d.path) as inner:
                            for e in inner:
                                if len(e.name) == 62 and not e.name.endswith(TMP_SUFFIX):
                                    try:
                                        loose[d.name + e.name] = e.stat(follow_symlinks=False).st_size
                                    except OSError:
                                        pass
            self._loose = loose
            self._total = sum(loose.values())
            self._scan_packs()

    def _scan_packs(self) -> None:
        """Read the indexes of packs not known yet (another process may have written some)."""
        if not self.pack_dir.is_dir():
            return
        for idx in self.pack_dir.glob("*.idx"):
            name = idx.stem
            if name in self._packs:
                continue
            pack = self.pack_dir / f"{name}.pack"
            try:
                data = json.loads(idx.read_text(encoding="utf-8"))
                objects = {h: (int(o), int(n)) for h, (o, n) in data["objects"].items() if _is_hash(h)}
                size = pack.stat().st_size
            except (OSError, ValueError, KeyError, TypeError):
                log.warning("checkpoint pack %s is unreadable; ignored", name)
                continue
            p = _Pack(name, pack, objects, size)
            self._packs[name] = p
            self._total += size
            for h in objects:
                self._packed.setdefault(h, name)

    def has(self, h: str) -> bool:
        """Whether this store holds ``h`` (as counted at start and written since; a blob
        another process wrote meanwhile may be stored again: harmless)."""
        self._load()
        with self._lock:
            return h in self._packed or (self._loose is not None and h in self._loose)

    def sizes(self) -> dict[str, int]:
        """Every blob and its stored size."""
        self._load()
        with self._lock:
            out = dict(self._loose or {})
            for h, name in self._packed.items():
                out.setdefault(h, self._packs[name].objects[h][1])
            return out

    def total_bytes(self) -> int:
        """Bytes on disk: loose blobs and whole pack files."""
        self._load()
        with self._lock:
            return self._total

    # -- writing -------------------------------------------------------------------------

    @staticmethod
    def encode(data: bytes) -> bytes:
        if len(data) >= COMPRESS_MIN:
            z = zlib.compress(data, 1)
            if len(z) <= len(data) * COMPRESS_GAIN:
                return ZLIB + z
        return RAW + data

    def put(self, data: bytes, h: str | None = None, *, durable: bool = False) -> tuple[str, int]:
        """Store ``data``; (its hash, the bytes this added on disk: 0 when already there)."""
        h = h or sha256(data)
        if self.has(h):
            self.touch(h)
            if durable:
                self.sync([h])
            return h, 0
        return h, self.put_encoded(h, self.encode(data), durable=durable)

    def put_encoded(self, h: str, encoded: bytes, *, durable: bool = False) -> int:
        """Store an already encoded blob (``encode(data)``) under ``h``; bytes added.
        Inside ``batch()`` it is appended to the batch's pack."""
        if self.has(h):
            return 0
        with self._lock:
            batch = self._batch
            if batch is not None:
                if h in self._packed:
                    return 0
                assert batch.fd is not None
                offset = batch.size
                batch.pending.append(encoded)
                batch.objects[h] = (offset, len(encoded))
                batch.size += len(encoded)
                if batch.size - batch.written >= FLUSH_BYTES:
                    batch.flush()
                batch.synced = False
                self._packed[h] = batch.name
                self._total += len(encoded)
                if not durable:
                    return len(encoded)
        if batch is not None:
            self.sync([h])
            return len(encoded)
        path = self.path_of(h)
        write_atomic(path, encoded, mode=0o644, durable=durable)
        with self._lock:
            if durable:
                self._synced.add(h)
            if self._loose is not None and h not in self._loose:
                self._loose[h] = len(encoded)
                self._total += len(encoded)
        return len(encoded)

    @contextlib.contextmanager
    def batch(self) -> Iterator[None]:
        """Blobs stored meanwhile go into one new pack (nested batches share it). Its index
        is written when the outermost batch ends; until then it is readable in-process."""
        self._load()
        with self._lock:
            self._batch_depth += 1
            if self._batch is None:
                self.pack_dir.mkdir(parents=True, exist_ok=True)
                name = f"{time.strftime('%Y%m%d-%H%M%S')}-{secrets.token_hex(4)}"
                path = self.pack_dir / f"{name}.pack"
                fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_APPEND | getattr(os, "O_CLOEXEC", 0), 0o644)
                self._batch = _Pack(name, path, fd=fd)
                self._packs[name] = self._batch
        try:
            yield
        finally:
            with self._lock:
                self._batch_depth -= 1
                if self._batch_depth == 0 and self._batch is not None:
                    pack, self._batch = self._batch, None
                    self._finish(pack)

    def _finish(self, pack: _Pack) -> None:
        pack.flush()
        if pack.fd is not None:
            os.close(pack.fd)
            pack.fd = None
        if not pack.objects:
            pack.path.unlink(missing_ok=True)
            self._packs.pop(pack.name, None)
            return
        self._write_idx(pack)

    def _write_idx(self, pack: _Pack) -> None:
        data = json.dumps({"version": 1, "objects": {h: list(v) for h, v in pack.objects.items()}},
                          separators=(",", ":"))
        write_atomic(pack.idx, data, mode=0o644, durable=False)

    def touch(self, h: str) -> None:
        """Mark a blob as just used (its mtime, or its pack's), so a concurrent ``gc`` in
        another process leaves it alone for its grace period."""
        with self._lock:
            name = self._packed.get(h)
            path = self._packs[name].path if name is not None else self.path_of(h)
        try:
            os.utime(path)
        except OSError:
            pass

    def sync(self, hashes: Iterable[str]) -> None:
        """Make these blobs durable (fsync them, their pack and index, and their folders)
        before a record that references them. Many loose blobs are fsynced in parallel: on
        a busy disk one fsync waits for a journal commit, and concurrent ones share it."""
        loose: list[Path] = []
        packs: list[_Pack] = []
        with self._lock:
            for h in set(hashes):
                name = self._packed.get(h)
                if name is not None:
                    pack = self._packs[name]
                    if not pack.synced and pack not in packs:
                        packs.append(pack)
                elif h not in self._synced:
                    loose.append(self.path_of(h))
            for pack in packs:
                if pack.fd is not None:
                    pack.flush()
                    os.fsync(pack.fd)
                    self._write_idx(pack)  # so the pack is readable after a power loss too
                else:
                    _fsync_path(pack.path)
                _fsync_path(pack.idx)
                pack.synced = pack.fd is None
            if packs:
                fsync_dir(self.pack_dir)
        if loose:
            _parallel(_fsync_path, loose)
            _parallel(fsync_dir, list({p.parent for p in loose}))
            fsync_dir(self.dir)
            with self._lock:
                self._synced.update(p.parent.name + p.name for p in loose)

    # -- reading -------------------------------------------------------------------------

    def get(self, h: str) -> bytes | None:
        """The content, or None when the blob is missing or damaged (logged)."""
        raw = self._read_encoded(h)
        if raw is None:
            return None
        if not raw:
            log.warning("blob %s is empty (damaged)", h)
            return None
        codec, payload = raw[:1], raw[1:]
        try:
            data = zlib.decompress(payload) if codec == ZLIB else payload if codec == RAW else None
        except zlib.error:
            data = None
        if data is None or sha256(data) != h:
            log.warning("blob %s is damaged; it will not be used", h)
            return None
        return data

    def location(self, h: str) -> tuple[Path, int, int | None] | None:
        """Where a blob is: (file, offset, length; None: the whole file), or None."""
        self._load()
        with self._lock:
            name = self._packed.get(h)
            if name is not None:
                return (self._packs[name].path, *self._packs[name].objects[h])
        path = self.path_of(h)
        return (path, 0, None) if path.is_file() else None

    def _read_encoded(self, h: str) -> bytes | None:
        if not _is_hash(h):
            return None
        self._load()
        with self._lock:
            if h not in self._packed and not self.path_of(h).is_file():
                self._scan_packs()
            name = self._packed.get(h)
            where = None
            if name is not None:
                pack = self._packs[name]
                offset, length = pack.objects[h]
                if offset + length > pack.written:
                    pack.flush()
                where = (pack.path, offset, length)
        if where is None:
            try:
                return self.path_of(h).read_bytes()
            except OSError:
                return None
        path, offset, length = where
        try:
            with open(path, "rb") as f:
                f.seek(offset)
                return f.read(length)
        except OSError:
            return None

    # -- removing ------------------------------------------------------------------------

    def gc(self, keep: set[str], grace: float = 3600.0) -> tuple[int, int]:
        """Delete every blob not in ``keep`` and not used (written or touched) in the last
        ``grace`` seconds, and temp files and unfinished packs older than that. A pack is
        deleted when nothing in it is kept, and rewritten when more than half of it is
        garbage. (blobs deleted, bytes freed)."""
        self._load()
        removed = freed = 0
        now = time.time()
        with self._lock:
            loose = dict(self._loose or {})
        for h, size in loose.items():
            if h in keep:
                continue
            path = self.path_of(h)
            try:
                if now - path.stat().st_mtime < grace:
                    continue
                path.unlink()
            except FileNotFoundError:
                pass
            except OSError as e:
                log.warning("could not delete blob %s: %s", h, e)
                continue
            removed += 1
            freed += size
            with self._lock:
                self._synced.discard(h)
                if self._loose is not None and self._loose.pop(h, None) is not None:
                    self._total -= size
        with self._lock:
            packs = [p for p in self._packs.values() if p.fd is None]
        for pack in packs:
            live = [h for h in pack.objects if h in keep]
            try:
                young = now - pack.path.stat().st_mtime < grace
            except OSError:
                young = False
            if young:
                continue
            live_bytes = sum(pack.objects[h][1] for h in live)
            if live and live_bytes >= pack.size * (1 - REPACK_DEAD_SHARE):
                continue
            with self._lock:  # readers wait while a pack is rewritten
                if live:
                    with self.batch():  # rewrite what is kept into a new pack
                        for h in live:
                            enc = self._read_encoded(h)
                            if enc is not None:
                                self._packed.pop(h, None)
                                self.put_encoded(h, enc)
                self._packs.pop(pack.name, None)
                for h in pack.objects:
                    if self._packed.get(h) == pack.name:
                        del self._packed[h]
                self._total -= pack.size
                pack.idx.unlink(missing_ok=True)
                pack.path.unlink(missing_ok=True)
            dead = len(pack.objects) - len(live)
            removed += dead
            freed += pack.size - live_bytes
        self._clean_leftovers(now, grace)
        return removed, freed

    def _clean_leftovers(self, now: float, grace: float) -> None:
        if self.pack_dir.is_dir():
            with self._lock:
                known = set(self._packs)
            for p in self.pack_dir.glob("*.pack"):
                if p.stem not in known and not p.with_suffix(".idx").exists():
                    try:
                        if now - p.stat().st_mtime > grace:
                            p.unlink()  # cut off before its index was written
                    except OSError:
                        pass
        if self.dir.is_dir():
            for d in self.dir.iterdir():
                if not d.is_dir() or len(d.name) != 2:
                    continue
                for e in d.iterdir():
                    if e.name.endswith(TMP_SUFFIX):
                        try:
                            if now - e.stat().st_mtime > grace:
                                e.unlink()
                        except OSError:
                            pass
                try:
                    d.rmdir()  # only when empty
                except OSError:
                    pass
