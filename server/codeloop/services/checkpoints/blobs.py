"""A content-addressed blob store: ``objects/<2 hex>/<62 hex>``, named by the sha256 of
the content, so each distinct content is stored once.

A blob file is one codec byte (``0`` raw, ``1`` zlib) and the payload. Blobs are written
atomically (a temp file and a rename: a blob under its name is always whole), without an
fsync by default; ``sync()`` makes the ones a journal record is about to reference
durable first. Every read checks the content against its name, so a blob damaged by a
power loss is reported as lost, never restored.
"""

from __future__ import annotations

import concurrent.futures
import logging
import os
import threading
import time
import zlib
from collections.abc import Iterable
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


class BlobStore:
    def __init__(self, directory: Path) -> None:
        self.dir = Path(directory)
        self._sizes: dict[str, int] | None = None  # hash -> bytes on disk, once counted
        self._total = 0
        self._synced: set[str] = set()  # made durable by this process
        self._lock = threading.Lock()

    # -- names -------------------------------------------------------------------------

    def path_of(self, h: str) -> Path:
        if len(h) != 64 or any(c not in "0123456789abcdef" for c in h):
            raise ValueError(f"not a sha256: {h!r}")
        return self.dir / h[:2] / h[2:]

    def has(self, h: str) -> bool:
        sizes = self._sizes
        if sizes is not None:
            with self._lock:
                if h in sizes:
                    return True
        return self.path_of(h).is_file()

    # -- accounting ----------------------------------------------------------------------

    def sizes(self) -> dict[str, int]:
        """Every blob and its size on disk (counted once by a walk, then kept up to date)."""
        with self._lock:
            if self._sizes is not None:
                return dict(self._sizes)
        counted: dict[str, int] = {}
        if self.dir.is_dir():
            with os.scandir(self.dir) as top:
                for d in top:
                    if len(d.name) != 2 or not d.is_dir(follow_symlinks=False):
                        continue
                    with os.scandir(d.path) as inner:
                        for e in inner:
                            if len(e.name) == 62 and not e.name.endswith(TMP_SUFFIX):
                                try:
                                    counted[d.name + e.name] = e.stat(follow_symlinks=False).st_size
                                except OSError:
                                    pass
        with self._lock:
            if self._sizes is None:
                self._sizes = counted
                self._total = sum(counted.values())
            return dict(self._sizes)

    def total_bytes(self) -> int:
        if self._sizes is None:
            self.sizes()
        with self._lock:
            return self._total

    def disk_size(self, h: str) -> int:
        if self._sizes is None:
            self.sizes()
        with self._lock:
            assert self._sizes is not None
            return self._sizes.get(h, 0)

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
        """Store an already encoded blob (``encode(data)``) under ``h``; bytes added."""
        path = self.path_of(h)
        if self.has(h):
            return 0
        write_atomic(path, encoded, mode=0o644, durable=durable)
        with self._lock:
            if durable:
                self._synced.add(h)
            if self._sizes is not None and h not in self._sizes:
                self._sizes[h] = len(encoded)
                self._total += len(encoded)
        return len(encoded)

    def touch(self, h: str) -> None:
        """Mark a blob as just used (its mtime), so a concurrent ``gc`` in another process
        leaves it alone for its grace period."""
        try:
            os.utime(self.path_of(h))
        except OSError:
            pass

    def sync(self, hashes: Iterable[str]) -> None:
        """fsync these blobs and their folders (before a record that references them).
        Many at once are fsynced in parallel: on a busy disk one fsync waits for a journal
        commit, and concurrent ones share it."""
        with self._lock:
            todo = [h for h in set(hashes) if h not in self._synced]
        paths = [self.path_of(h) for h in todo]
        if not paths:
            return
        dirs = {p.parent for p in paths}
        _parallel(_fsync_path, paths)
        _parallel(fsync_dir, list(dirs))
        fsync_dir(self.dir)
        with self._lock:
            self._synced.update(todo)

    # -- reading -------------------------------------------------------------------------

    def get(self, h: str) -> bytes | None:
        """The content, or None when the blob is missing or damaged (logged)."""
        try:
            raw = self.path_of(h).read_bytes()
        except (OSError, ValueError):
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

    # -- removing ------------------------------------------------------------------------

    def gc(self, keep: set[str], grace: float = 3600.0) -> tuple[int, int]:
        """Delete every blob not in ``keep`` and not used (written or touched) in the last
        ``grace`` seconds, and temp files older than that. (blobs deleted, bytes freed)."""
        sizes = self.sizes()
        removed = freed = 0
        now = time.time()
        for h, size in sizes.items():
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
                if self._sizes is not None and self._sizes.pop(h, None) is not None:
                    self._total -= size
        if self.dir.is_dir():
            for d in self.dir.iterdir():
                if not d.is_dir():
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
        return removed, freed
