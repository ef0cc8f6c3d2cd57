"""What the checkpoint store's parts share: the live set's entries, the records handed
out (``CommandMark``, ``StoreStats``), the constants, and small helpers."""

from __future__ import annotations

import concurrent.futures
import os
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from .model import ContentRef, sha256
from .scan import Stat

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


def link_ref(path: str | Path) -> ContentRef | None:
    """A symbolic link as a version of a path: its target's hash, never kept."""
    try:
        target = os.fsencode(os.readlink(path))
    except OSError:
        return None
    return ContentRef("link:" + sha256(target), len(target), None, False, "symlink")


def _same_stat(a: Stat | None, b: Stat | None) -> bool:
    if a is None or b is None:
        return a is None and b is None
    return a.same(b)
