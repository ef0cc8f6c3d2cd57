"""Pruning the checkpoint store to its budget: other sessions' journals, oldest first (never
one open in another process), then the blobs nothing references."""

from __future__ import annotations

import json
import logging
import os
from pathlib import Path
from typing import Any

from .entries import GC_GRACE

try:
    import fcntl
except ImportError:  # Windows
    fcntl = None  # type: ignore[assignment]

log = logging.getLogger(__name__)


def prune(store: Any, need: int = 0) -> dict[str, int]:
    """Delete the oldest other sessions' journals (not open anywhere) until what the
    rest reference, plus the live set, fits the budget (less ``need``), then delete
    every blob nothing references (and unused for an hour, so another process's fresh
    blobs are safe)."""
    with store._lock:
        keep: set[str] = {r.hash for e in store._entries.values() for r in (e.ref,) if r.kept}
        keep |= {r.hash for c in store.changes for r in (c.before, c.after) if r is not None and r.kept}
    others: list[tuple[float, Path, set[str]]] = []
    for p in (store.dir / "sessions").glob("*.jsonl"):
        if p == store.journal.path:
            continue
        try:
            mtime = p.stat().st_mtime
            hashes = journal_hashes(p)
        except OSError:
            continue
        others.append((mtime, p, hashes))
    others.sort(key=lambda t: t[0])
    sizes = store.blobs.sizes()
    budget = store.settings.budget_bytes - need

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
        if is_locked(path):
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
    removed, freed = store.blobs.gc(final, GC_GRACE)
    store._stats.pruned_sessions += dropped
    store._budget_full = store.blobs.total_bytes() > store.settings.budget_bytes
    return {"sessions_deleted": dropped, "blobs_deleted": removed, "bytes_freed": freed}


def storage(store: Any) -> dict[str, int]:
    """Bytes on disk: blobs, journals, the stat cache."""
    journals = sum(p.stat().st_size for p in (store.dir / "sessions").glob("*.jsonl"))
    try:
        index = store._index_path().stat().st_size
    except OSError:
        index = 0
    return {"blobs": store.blobs.total_bytes(), "blob_count": len(store.blobs.sizes()), "journals": journals, "index": index}


def journal_hashes(path: Path) -> set[str]:
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


def is_locked(path: Path) -> bool:
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
