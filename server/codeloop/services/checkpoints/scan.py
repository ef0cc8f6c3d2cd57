"""Which files a command snapshot tracks, and a stat walk over them.

Tracked: regular files (not symlinks) below the workspace that ``.gitignore``,
``.ignore``, ``.rgignore`` (nested ones included, deeper files winning, as in rg and
the search tools), ``.git/info/exclude`` and the ``exclude`` setting do not ignore.
Never tracked: ``.git/``, and the checkpoint and session stores under ``.codeloop/``.
"""

from __future__ import annotations

import logging
import os
from collections.abc import Callable
import re
from typing import NamedTuple
from pathlib import Path

import pathspec

log = logging.getLogger(__name__)

IGNORE_FILES = (".gitignore", ".ignore", ".rgignore")  # later files win, as in rg
ALWAYS_SKIP_NAMES = frozenset({".git"})
ALWAYS_SKIP_PATHS = frozenset({".codeloop/checkpoints", ".codeloop/sessions"})


class Stat(NamedTuple):
    """What a snapshot keeps of a file: enough to tell it changed without reading it."""

    size: int
    mtime_ns: int
    ctime_ns: int
    ino: int
    mode: int

    @classmethod
    def of(cls, st: os.stat_result) -> "Stat":
        return cls(st.st_size, st.st_mtime_ns, st.st_ctime_ns, st.st_ino, st.st_mode & 0o7777)

    def same(self, other: "Stat | None") -> bool:
        return other is not None and self[:4] == other[:4]


_NAMED_GROUP = re.compile(r"\(\?P<[A-Za-z_][A-Za-z0-9_]*>")


def _combine(patterns: list) -> "re.Pattern[str] | None":
    if not patterns:
        return None
    try:
        return re.compile("|".join(f"(?:{_NAMED_GROUP.sub('(?:', p.regex.pattern)})" for p in patterns))
    except re.error:
        return None


class _Spec:
    """One folder's ignore patterns, compiled for the walk: without negations, a path is
    ignored when any pattern matches, so the patterns are one regex (and patterns that
    only match folders are left out for files: a file below an ignored folder is never
    reached); with negations, pathspec decides (last match wins)."""

    __slots__ = ("spec", "exact", "dir_rx", "file_rx")

    def __init__(self, spec: pathspec.GitIgnoreSpec) -> None:
        self.spec = spec
        pats = [p for p in spec.patterns if p.include is not None and getattr(p, "regex", None) is not None]
        self.exact = any(p.include is False for p in pats)
        self.dir_rx = self.file_rx = None
        if not self.exact:
            self.dir_rx = _combine(pats)
            self.file_rx = _combine([p for p in pats if not str(getattr(p, "pattern", "")).rstrip().endswith("/")])
            if (pats and self.dir_rx is None) or (self.file_rx is None and any(
                    not str(getattr(p, "pattern", "")).rstrip().endswith("/") for p in pats)):
                self.exact = True  # could not combine: per pattern

    def match(self, sub: str, is_dir: bool) -> bool | None:
        if self.exact:
            return self.spec.check_file(sub + "/" if is_dir else sub).include
        rx = self.dir_rx if is_dir else self.file_rx
        if rx is None:
            return None
        return True if rx.search(sub + "/" if is_dir else sub) is not None else None

    def files_matter(self) -> bool:
        return self.exact or self.file_rx is not None


class IgnoreRules:
    """gitignore semantics per folder, cached. ``reset()`` after an ignore file changed."""

    def __init__(self, root: Path, exclude: tuple[str, ...] = (), skip_paths: tuple[str, ...] = ()) -> None:
        self.root = root
        self.exclude = tuple(exclude)
        self.skip_paths = ALWAYS_SKIP_PATHS | frozenset(skip_paths)
        self._specs: dict[str, _Spec | None] = {}

    def reset(self) -> None:
        self._specs.clear()

    def spec(self, rel_dir: str) -> _Spec | None:
        """The patterns of the ignore files in folder ``rel_dir`` ("" is the root)."""
        if rel_dir in self._specs:
            return self._specs[rel_dir]
        directory = self.root / rel_dir if rel_dir else self.root
        lines: list[str] = []
        if not rel_dir:
            try:
                lines.extend((self.root / ".git" / "info" / "exclude").read_text(encoding="utf-8", errors="replace").splitlines())
            except OSError:
                pass
        for name in IGNORE_FILES:
            try:
                lines.extend((directory / name).read_text(encoding="utf-8", errors="replace").splitlines())
            except OSError:
                continue
        if not rel_dir:
            lines.extend(self.exclude)
        spec = None
        if any(line.strip() and not line.lstrip().startswith("#") for line in lines):
            try:
                spec = _Spec(pathspec.GitIgnoreSpec.from_lines(lines))
            except Exception:  # a malformed ignore file must not break snapshots
                log.warning("could not parse the ignore files in %s", directory)
        self._specs[rel_dir] = spec
        return spec

    def chain(self, rel_dir: str) -> list[tuple[str, _Spec]]:
        """(folder, spec) for ``rel_dir`` and each of its ancestors that has patterns, root first."""
        out: list[tuple[str, _Spec]] = []
        parts = rel_dir.split("/") if rel_dir else []
        for i in range(len(parts) + 1):
            d = "/".join(parts[:i])
            s = self.spec(d)
            if s is not None:
                out.append((d, s))
        return out

    @staticmethod
    def match(chain: list[tuple[str, _Spec]], rel: str, is_dir: bool) -> bool:
        """Whether ``rel`` (whose folder's chain this is) is ignored by these specs: the
        deepest folder whose patterns say something decides."""
        for d, s in reversed(chain):
            r = s.match(rel[len(d) + 1 :] if d else rel, is_dir)
            if r is not None:
                return r
        return False

    def skipped(self, rel: str, name: str, is_dir: bool) -> bool:
        if name in ALWAYS_SKIP_NAMES:
            return True
        return is_dir and rel in self.skip_paths

    def ignored(self, rel: str, is_dir: bool) -> bool:
        """Ignored itself or below an ignored (or skipped) folder."""
        parts = rel.split("/")
        for i in range(1, len(parts)):
            d = "/".join(parts[:i])
            if self.skipped(d, parts[i - 1], True) or self.match(self.chain("/".join(parts[: i - 1])), d, True):
                return True
        parent = "/".join(parts[:-1])
        return self.skipped(rel, parts[-1], is_dir) or self.match(self.chain(parent), rel, is_dir)


def is_ignore_file(rel: str) -> bool:
    name = rel.rsplit("/", 1)[-1]
    return name in IGNORE_FILES or rel == ".git/info/exclude"


def walk(root: Path, rules: IgnoreRules, start: str = "",
         on_dir: Callable[[str, str], None] | None = None) -> tuple[dict[str, Stat], list[str]]:
    """Every tracked file (and symbolic link) below folder ``start`` with its stat, and
    every tracked folder (``start`` included). ``start`` must not itself be ignored.
    ``on_dir(abs, rel)`` is called for each folder just before it is listed (to watch it
    first, so nothing created after the listing goes unseen)."""
    files: dict[str, Stat] = {}
    dirs: list[str] = []
    base = str(root)
    stack = [start]
    while stack:
        rel_dir = stack.pop()
        abs_dir = os.path.join(base, rel_dir) if rel_dir else base
        if on_dir is not None:
            on_dir(abs_dir, rel_dir)
        try:
            it = os.scandir(abs_dir)
        except OSError:
            continue
        dirs.append(rel_dir)
        chain = rules.chain(rel_dir)
        file_chain = chain if any(s.files_matter() for _, s in chain) else None
        prefix = rel_dir + "/" if rel_dir else ""
        skip_names = ALWAYS_SKIP_NAMES
        new = tuple.__new__
        with it:
            for e in it:
                name = e.name
                try:
                    if e.is_dir(follow_symlinks=False):
                        rel = prefix + name
                        if rules.skipped(rel, name, True) or (chain and rules.match(chain, rel, True)):
                            continue
                        stack.append(rel)
                        continue
                except OSError:
                    continue
                if name in skip_names:
                    continue
                rel = prefix + name
                if file_chain and rules.match(file_chain, rel, False):
                    continue
                try:
                    st = e.stat(follow_symlinks=False)
                except OSError:
                    continue
                fmt = st.st_mode & 0o170000
                if fmt == _REG or fmt == _LNK:
                    files[rel] = new(Stat, (st.st_size, st.st_mtime_ns, st.st_ctime_ns, st.st_ino, st.st_mode & 0o7777))
    return files, dirs


_REG = 0o100000
_LNK = 0o120000


def stat_file(root: Path, rel: str) -> Stat | None:
    """The stat of a regular file or symbolic link (not followed), or None."""
    try:
        st = os.lstat(os.path.join(root, rel))
    except OSError:
        return None
    if (st.st_mode & 0o170000) not in (_REG, _LNK):
        return None
    return Stat.of(st)
