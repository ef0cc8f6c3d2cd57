"""The headless ChangeApplier: writes ChangeSets straight to disk.

Every file is written atomically (a temporary file in the same directory,
fsync, ``os.replace``), keeping its mode. Before anything is written, every
file's current text must still be what the tool based its change on; if one
differs, nothing is written and the outcome is "stale".
"""

from __future__ import annotations

import asyncio
import logging
import os
import stat
import tempfile
from collections.abc import Awaitable, Callable
from pathlib import Path

from codeloop.edits.change import ChangeOutcome, ChangeSet, FileChange, FileOutcome
from codeloop.edits.diff import diff_stats

log = logging.getLogger(__name__)

Confirm = Callable[[ChangeSet], Awaitable["bool | str"]]


def _umask() -> int:
    # os.umask can only be read by setting it; do it once at import.
    mask = os.umask(0)
    os.umask(mask)
    return mask


_UMASK = _umask()


def _read_current(path: Path) -> tuple[str | None, bool]:
    """(text as the tools see it (universal newlines) or None if missing, uses CRLF)."""
    try:
        raw = path.read_bytes()
    except FileNotFoundError:
        return None, False
    text = raw.decode("utf-8")
    crlf = b"\r\n" in raw and raw.count(b"\r\n") >= raw.count(b"\n") - raw.count(b"\r\n")
    return text.replace("\r\n", "\n").replace("\r", "\n"), crlf


class DiskChangeApplier:
    """ChangeApplier for the headless CLI.

    ``confirm`` is asked for reviewed change sets: True applies, False rejects,
    a string rejects with the user's feedback. Without it everything is applied.
    ``root`` (optional) only makes the messages show workspace-relative paths.
    """

    def __init__(self, confirm: Confirm | None = None, *, root: Path | str | None = None) -> None:
        self.confirm = confirm
        self.root = Path(root).resolve() if root is not None else None

    def display(self, path: Path) -> str:
        for base in (self.root, Path.cwd()):
            if base is None:
                continue
            try:
                return path.relative_to(base).as_posix()
            except ValueError:
                continue
        return str(path)

    def _names(self, changes: ChangeSet) -> str:
        names = [self.display(c.path) for c in changes.changes]
        if len(names) == 1:
            return names[0]
        return ", ".join(names[:-1]) + " and " + names[-1]

    async def apply(self, changes: ChangeSet) -> ChangeOutcome:
        if not changes.changes:
            return ChangeOutcome("error", "Nothing to apply: the change set is empty.")
        stale = await asyncio.to_thread(self._check, changes)
        if stale is not None:
            return stale
        if changes.review and self.confirm is not None:
            answer = await self.confirm(changes)
            if answer is not True:
                what = "change to" if len(changes.changes) == 1 else "changes to"
                msg = f"The user rejected the {what} {self._names(changes)}; nothing was written."
                if isinstance(answer, str) and answer.strip():
                    msg += f" Feedback: {answer.strip()}"
                return ChangeOutcome(
                    "rejected", msg, [FileOutcome(c.path, "rejected") for c in changes.changes]
                )
        return await asyncio.to_thread(self._write_all, changes)

    # -- blocking parts (run in a thread)

    def _check(self, changes: ChangeSet) -> ChangeOutcome | None:
        """A "stale" (or "error") outcome if any file no longer holds old_text."""
        problems: list[str] = []
        for c in changes.changes:
            name = self.display(c.path)
            if c.path.is_dir():
                return ChangeOutcome("error", f"{name} is a directory; nothing was written.")
            try:
                current, _ = _read_current(c.path)
            except UnicodeDecodeError:
                problems.append(f"{name} is no longer UTF-8 text")
                continue
            except OSError as e:
                return ChangeOutcome("error", f"Cannot read {name}: {e.strerror or e}; nothing was written.")
            if c.old_text is None and current is not None:
                problems.append(f"{name} now exists (it did not when the change was made)")
            elif c.old_text is not None and current is None:
                problems.append(f"{name} has been deleted")
            elif c.old_text is not None and current != c.old_text.replace("\r\n", "\n"):
                problems.append(f"{name} has changed on disk since it was read")
        if not problems:
            return None
        return ChangeOutcome(
            "stale",
            "Nothing was written: " + "; ".join(problems) + ". Read the file(s) again and redo the change.",
            [FileOutcome(c.path, "stale") for c in changes.changes],
        )

    def _write_all(self, changes: ChangeSet) -> ChangeOutcome:
        stale = self._check(changes)  # again: the user may have taken a while
        if stale is not None:
            return stale
        prepared: list[tuple[FileChange, str, bool]] = []  # change, temp path, crlf
        created_dirs: list[Path] = []
        try:
            for c in changes.changes:
                crlf = False
                mode: int | None = None
                if c.path.exists():
                    _, crlf = _read_current(c.path)
                    mode = stat.S_IMODE(c.path.stat().st_mode)
                crlf = crlf and "\r\n" not in c.new_text
                data = (c.new_text.replace("\n", "\r\n") if crlf else c.new_text).encode("utf-8")
                created_dirs.extend(_make_parents(c.path.parent))
                tmp = _write_temp(c.path, data, mode)
                prepared.append((c, tmp, crlf))
        except OSError as e:
            for _, tmp, _ in prepared:
                _unlink(tmp)
            for d in reversed(created_dirs):
                try:
                    d.rmdir()
                except OSError:
                    pass
            return ChangeOutcome("error", f"Could not write the changes ({e}); nothing was written.")

        done: list[FileChange] = []
        for c, tmp, _ in prepared:
            try:
                os.replace(tmp, c.path)
                done.append(c)
            except OSError as e:
                for _, t, _ in prepared[len(done) :]:
                    _unlink(t)
                rolled = self._roll_back(done)
                return ChangeOutcome(
                    "error",
                    f"Could not write {self.display(c.path)} ({e}). "
                    + ("The files written before it were restored." if rolled else "Some files may have been written.")
                    + " Check the files before retrying.",
                )
        for d in {c.path.parent for c in done}:
            fsync_dir(d)

        parts = []
        files = []
        for c in changes.changes:
            added, removed = diff_stats(c.old_text, c.new_text)
            name = self.display(c.path)
            if c.old_text is None:
                parts.append(f"created {name} (+{added} lines)")
            else:
                parts.append(f"wrote {name} (+{added} -{removed} lines)")
            files.append(FileOutcome(c.path, "applied", final_text=c.new_text))
        return ChangeOutcome("applied", "Applied: " + ", ".join(parts) + ".", files)

    def _roll_back(self, done: list[FileChange]) -> bool:
        ok = True
        for c in reversed(done):
            try:
                if c.old_text is None:
                    c.path.unlink()
                else:
                    tmp = _write_temp(c.path, c.old_text.encode("utf-8"), None)
                    os.replace(tmp, c.path)
            except OSError:
                log.exception("could not roll back %s", c.path)
                ok = False
        return ok


def _make_parents(directory: Path) -> list[Path]:
    """mkdir -p, returning the directories it created (outermost first)."""
    missing: list[Path] = []
    d = directory
    while not d.exists():
        missing.append(d)
        if d.parent == d:
            break
        d = d.parent
    directory.mkdir(parents=True, exist_ok=True)
    return list(reversed(missing))


def _write_temp(path: Path, data: bytes, mode: int | None, durable: bool = True) -> str:
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".codeloop-tmp")
    try:
        with os.fdopen(fd, "wb") as f:
            f.write(data)
            f.flush()
            if durable:
                os.fsync(f.fileno())
        os.chmod(tmp, mode if mode is not None else 0o666 & ~_UMASK)
    except BaseException:
        _unlink(tmp)
        raise
    return tmp


def write_atomic(path: Path, text: str | bytes, *, mode: int | None = None, durable: bool = True) -> None:
    """Write ``text`` (str as UTF-8, or bytes as they are) to ``path`` atomically (a temp
    file in the same folder, fsync, rename), keeping the file's mode (``mode`` is used
    for a new file). Readers see the old or the new file, never half.

    ``durable=False`` skips the fsyncs: still atomic for other processes and across a
    crash of this one, but not across a power loss (for caches and content-checked data).
    With ``durable`` the folder is fsynced too, so the rename itself survives a power loss.
    """
    path.parent.mkdir(parents=True, exist_ok=True)
    try:
        mode = path.stat().st_mode & 0o7777
    except FileNotFoundError:
        pass
    data = text if isinstance(text, bytes) else text.encode("utf-8")
    tmp = _write_temp(path, data, mode, durable)
    try:
        os.replace(tmp, path)
    except BaseException:
        _unlink(tmp)
        raise
    if durable:
        fsync_dir(path.parent)


def _unlink(path: str) -> None:
    try:
        os.unlink(path)
    except OSError:
        pass


def fsync_dir(directory: Path) -> None:
    """Make a rename or a new file in ``directory`` durable (best effort; no-op on Windows)."""
    if os.name == "nt":
        return
    try:
        fd = os.open(directory, os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(fd)
    except OSError:
        pass
    finally:
        os.close(fd)


# What codeloop keeps under a workspace's .codeloop/ that must never be committed. The file
# lists itself too, so running codeloop leaves `git status` clean (commit it with `git add -f`
# if the team wants it; codeloop writes it again wherever it runs).
CODELOOP_IGNORED = (".gitignore", "settings.local.json", "sessions/", "checkpoints/", "mcp-logs/")


def ensure_codeloop_gitignore(root: Path, extra: tuple[str, ...] = ()) -> None:
    """Make ``<root>/.codeloop/.gitignore`` list what codeloop keeps there (and ``extra``),
    keeping whatever else the file says. Written atomically; best effort."""
    path = Path(root) / ".codeloop" / ".gitignore"
    try:
        existing = path.read_text(encoding="utf-8") if path.exists() else ""
    except (OSError, UnicodeDecodeError):
        return
    have = {line.strip() for line in existing.splitlines()}
    missing = [line for line in (*CODELOOP_IGNORED, *extra) if line not in have and "/" + line not in have]
    if not missing:
        return
    sep = "" if not existing or existing.endswith("\n") else "\n"
    try:
        write_atomic(path, existing + sep + "\n".join(missing) + "\n")
    except OSError as e:
        log.warning("could not update %s: %s", path, e)
