"""Checkpoint settings: a plain dataclass, and a lenient reader for the ``checkpoints``
settings object (camelCase keys, as in the editor's ``codeloop.checkpoints``)."""

from __future__ import annotations

from dataclasses import dataclass, field, fields, replace
from typing import Any

MiB = 1024 * 1024
GiB = 1024 * MiB

DEFAULT_BUDGET = 2 * GiB
DEFAULT_MAX_FILE = 16 * MiB


@dataclass(frozen=True, slots=True)
class CheckpointSettings:
    """``budget_bytes``: what the store (blobs and journals, on disk) may take before the
    oldest other sessions' checkpoints are pruned; past it with nothing left to prune, new
    contents are recorded as not kept. ``max_file_bytes``: a file larger than this is never
    copied (its hash is recorded; rewind says it cannot restore it). ``exclude``: extra
    gitignore-style patterns (relative to the workspace) that commands' snapshots skip, on
    top of ``.gitignore``/``.ignore``/``.rgignore`` and ``.git/info/exclude``. ``watch``:
    use a file-system watcher (inotify, Linux) so a snapshot reads only what changed;
    without it each snapshot walks the tree. ``rescan_seconds``: with the watcher, a full
    walk at the start of a user turn when the last one is older than this (it catches
    what a watcher cannot see, such as writes through ``mmap``); 0 never."""

    enabled: bool = True
    budget_bytes: int = DEFAULT_BUDGET
    max_file_bytes: int = DEFAULT_MAX_FILE
    exclude: tuple[str, ...] = field(default_factory=tuple)
    watch: bool = True
    rescan_seconds: float = 600.0

    @classmethod
    def from_mapping(cls, data: Any) -> tuple["CheckpointSettings", list[str]]:
        """Settings from ``{"enabled", "budgetBytes", "maxFileBytes", "exclude", "watch",
        "rescanSeconds"}`` (snake_case keys work too). A bad value is reported in the
        warnings and its default used; unknown keys are reported and ignored."""
        out = cls()
        warnings: list[str] = []
        if data is None:
            return out, warnings
        if not isinstance(data, dict):
            return out, [f"checkpoints: expected an object, got {type(data).__name__}; using the defaults"]
        names = {f.name for f in fields(cls)}
        camel = {"budgetBytes": "budget_bytes", "maxFileBytes": "max_file_bytes", "rescanSeconds": "rescan_seconds"}
        for key, value in data.items():
            name = camel.get(key, key)
            if name not in names:
                warnings.append(f"checkpoints.{key}: unknown setting, ignored")
                continue
            ok = True
            if name in ("enabled", "watch"):
                ok = isinstance(value, bool)
            elif name in ("budget_bytes", "max_file_bytes"):
                ok = isinstance(value, int) and not isinstance(value, bool) and value >= 0
            elif name == "rescan_seconds":
                ok = isinstance(value, (int, float)) and not isinstance(value, bool) and value >= 0
            elif name == "exclude":
                ok = isinstance(value, list) and all(isinstance(v, str) for v in value)
                if ok:
                    value = tuple(value)
            if not ok:
                warnings.append(f"checkpoints.{key}: invalid value {value!r}; using the default")
                continue
            out = replace(out, **{name: value})
        return out, warnings
