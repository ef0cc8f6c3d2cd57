"""Rewind: plan (a preview per file, with choices) and the port restores go through.

For each file the session changed after the checkpoint (proposal, command or rewind; the
"chain" starts at its first such change, so what the user did to it before is not undone):

* the checkpoint's content (``target``) is the BEFORE of the chain's first change;
* the session's last version (``last``) is the AFTER of its last session change;
* the file counts as **changed by the user since** when its current content (the editor's
  buffer when open) differs from ``last`` (line endings aside), or when a change that was
  not the session's ("unknown") came after the chain began.

Files not changed since: "restore" (the default) writes the checkpoint's content back,
deletes a file the session created, or recreates one it deleted; "keep" leaves it.
Files changed since are never touched without being asked: the default is "keep"; "rebase"
undoes the session's changes on top of the user's (each session change, newest first,
undone with ``codeloop.edits.rebase`` when it does not overlap the user's edits; text files
only); "restore" (the checkpoint's content over the user's) only when chosen for that file.
A file is deleted only when the session created it and nobody changed it since.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable, Literal, Protocol

from codeloop.edits.diff import unified_diff
from codeloop.edits.disk import fsync_dir, write_atomic
from codeloop.edits.rebase import rebase

from .model import SESSION_WHO, Checkpoint, ContentRef, FileChange, eol_key, same_state, sha256

Choice = Literal["restore", "keep", "rebase"]
Action = Literal["restore", "delete", "recreate", "none", "unavailable"]
MAX_DIFF_CHARS = 100_000


class RewindPort(Protocol):
    """Where restores go. The editor host routes open buffers through
    ``workspace/applyEdit`` (so undo stacks stay right) and the rest to disk."""

    async def read(self, path: Path) -> bytes | None:
        """What the user has now: the open buffer's text (unsaved edits included), else
        the file's bytes; None when there is no such file."""
        ...

    async def write(self, path: Path, content: str | bytes, mode: int | None = None) -> None:
        """Replace (or create, with ``mode``) the file. ``content`` is str when it is
        UTF-8 text, bytes otherwise."""
        ...

    async def delete(self, path: Path) -> None: ...


class DiskPort:
    """The default port: atomic writes (a temp file, fsync, rename) and unlink."""

    async def read(self, path: Path) -> bytes | None:
        import asyncio

        return await asyncio.to_thread(_read_disk, path)

    async def write(self, path: Path, content: str | bytes, mode: int | None = None) -> None:
        import asyncio

        await asyncio.to_thread(write_atomic, path, content, mode=mode)

    async def delete(self, path: Path) -> None:
        import asyncio

        def rm() -> None:
            try:
                path.unlink()
            except FileNotFoundError:
                return
            fsync_dir(path.parent)

        await asyncio.to_thread(rm)


def _read_disk(path: Path) -> bytes | None:
    try:
        return path.read_bytes()
    except (FileNotFoundError, NotADirectoryError, IsADirectoryError):
        return None


def ref_of(data: bytes | None, mode: int | None = None) -> ContentRef | None:
    if data is None:
        return None
    h = sha256(data)
    key = eol_key(data, h)
    return ContentRef(h, len(data), mode, True, "", "" if key == h else key)


@dataclass
class FilePlan:
    """One file of a rewind preview.

    ``action``: what "restore" does ("restore" content, "delete" a file the session
    created, "recreate" a file it deleted, "none": it already is as at the checkpoint,
    "unavailable": its content then was not kept). ``choices``/``default``: what may be
    chosen for it ("restore", "keep", "rebase"). ``diff``: current → checkpoint content
    (unified, or a line for binary files); ``user_diff``: the session's last version →
    current, when the user changed it since; ``rebase_diff``: current → the rebased text."""

    path: str
    action: Action
    user_changed: bool
    choices: tuple[str, ...]
    default: str
    reason: str
    diff: str = ""
    user_diff: str = ""
    rebase_diff: str = ""
    rebase_note: str = ""
    binary: bool = False
    current: ContentRef | None = None
    target: ContentRef | None = None
    last: ContentRef | None = None
    current_bytes: bytes | None = field(default=None, repr=False)
    target_bytes: bytes | None = field(default=None, repr=False)
    rebased: bytes | None = field(default=None, repr=False)
    rebase_deletes: bool = False


@dataclass
class RewindPlan:
    """``files``: what the session changed since the checkpoint. ``outside``: (path,
    label) of files changed since only by others (the user, a command cut off by a crash
    and seen on resume): never touched by a rewind, listed so nobody is surprised."""

    checkpoint: Checkpoint
    files: list[FilePlan]
    outside: list[tuple[str, str]] = field(default_factory=list)

    def file(self, path: str) -> FilePlan | None:
        return next((f for f in self.files if f.path == path), None)

    def preview(self) -> str:
        """A readable preview: one line per file, then the diffs."""
        cp = self.checkpoint
        where = f"before message {cp.message_index}" if cp.message_index is not None else f"checkpoint {cp.id}"
        if not self.files and not self.outside:
            return f"Rewind to {where}: no file changes to undo."
        lines = [f"Rewind to {where} ({cp.id}):"]
        for f in self.files:
            lines.append(f"  {f.path}: {f.reason} [choices: {', '.join(f.choices)}; default {f.default}]")
        for path, label in self.outside:
            lines.append(f"  {path}: changed outside the session ({label}); left alone")
        for f in self.files:
            for title, d in (("since the session's last change", f.user_diff), ("restore", f.diff),
                             ("rebase", f.rebase_diff)):
                if d:
                    lines.append(f"\n### {f.path} ({title})\n{d.rstrip()}")
        return "\n".join(lines)


OutcomeStatus = Literal["restored", "deleted", "recreated", "rebased", "kept", "unchanged", "unavailable", "failed"]


@dataclass(frozen=True)
class FileOutcome:
    path: str
    status: OutcomeStatus
    message: str = ""


@dataclass
class RewindResult:
    checkpoint: Checkpoint
    undo_checkpoint: Checkpoint | None  # rewind to this to undo the rewind
    files: list[FileOutcome]
    summary: str  # for the user and the model


# -- planning -------------------------------------------------------------------------------


def outside_changes(changes_after: list[FileChange]) -> list[tuple[str, str]]:
    """(path, label of its last change) of paths changed only by others."""
    ours = {c.path for c in changes_after if c.who in SESSION_WHO}
    last: dict[str, str] = {}
    for c in changes_after:
        if c.path not in ours:
            last[c.path] = c.label
    return sorted(last.items())


def chains(changes_after: list[FileChange]) -> dict[str, list[FileChange]]:
    """Per path, its changes from the first session change on (paths the session did
    not change are left out)."""
    out: dict[str, list[FileChange]] = {}
    for c in changes_after:
        if c.path in out:
            out[c.path].append(c)
        elif c.who in SESSION_WHO:
            out[c.path] = [c]
    return out


def _text(data: bytes | None) -> str | None:
    if data is None:
        return None
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError:
        return None


def _cap(d: str) -> str:
    if len(d) <= MAX_DIFF_CHARS:
        return d
    cut = d.rfind("\n", 0, MAX_DIFF_CHARS) + 1
    return d[:cut] + f"[diff cut: {len(d) - cut:,} more characters]\n"


def render_diff(old: bytes | None, new: bytes | None, path: str) -> str:
    """A unified diff from ``old`` to ``new`` (None: absent); binary files in one line."""
    if old == new:
        return ""
    a, b = _text(old), _text(new)
    if (old is not None and a is None) or (new is not None and b is None):
        def size(x: bytes | None) -> str:
            return "absent" if x is None else f"{len(x):,} bytes"

        return f"Binary file {path}: {size(old)} -> {size(new)}\n"
    if b is None:  # deleted
        d = unified_diff(a, "", path).replace(f"+++ b/{path}\n", "+++ /dev/null\n", 1)
        return _cap(d)
    return _cap(unified_diff(a, b, path))


def _eol(text: str) -> str:
    crlf = text.count("\r\n")
    return "\r\n" if crlf and crlf >= text.count("\n") - crlf else "\n"


def _like(text: str, eol: str) -> str:
    plain = text.replace("\r\n", "\n")
    return plain if eol == "\n" else plain.replace("\n", "\r\n")


def _same_bytes(a: bytes | None, b: bytes | None) -> bool:
    if a is None or b is None:
        return a is None and b is None
    return a == b or eol_key(a) == eol_key(b)


def undo_on_top(chain: list[FileChange], current: bytes | None,
                load: Callable[[ContentRef | None], bytes | None]) -> tuple[bool, bytes | None, str]:
    """Undo the session's changes of ``chain``, newest first, on top of ``current``:
    (ok, result (None: absent), note). A change is undone as is when the text still is
    what it left, else rebased onto the text (``codeloop.edits.rebase``) when its hunks
    do not overlap the other edits; changes that are not the session's stay."""
    cur = current
    for c in reversed(chain):
        if c.who not in SESSION_WHO:
            continue
        a = load(c.after) if c.after is not None else None
        b = load(c.before) if c.before is not None else None
        if c.after is not None and a is None:
            return False, None, f"a version the session wrote was not kept ({c.after.not_kept_reason()})"
        if c.before is not None and b is None:
            return False, None, f"the earlier content was not kept ({c.before.not_kept_reason()})"
        if _same_bytes(cur, a):
            cur = b
            continue
        if cur is None:
            return False, None, "it was deleted since"
        if a is None:
            return False, None, "the session created it, and it was changed since"
        if b is None:
            return False, None, "the session deleted it, and it was created again since"
        ta, tb, tc = _text(a), _text(b), _text(cur)
        if ta is None or tb is None or tc is None:
            return False, None, "it is not a text file, so the changes cannot be combined"
        eol = _eol(tc)
        if _eol(ta) != eol:
            ta, tb = _like(ta, eol), _like(tb, eol)
        r = rebase(ta, tb, tc)
        if not r.ok or r.text is None:
            return False, None, "the session's changes overlap the later edits: " + r.message
        cur = r.text.encode("utf-8")
    return True, cur, ""


def plan_file(path: str, chain: list[FileChange], current: bytes | None, link: ContentRef | None,
              load: Callable[[ContentRef | None], bytes | None]) -> FilePlan:
    """The plan for one file: ``current`` is what the user has now (None: absent, or
    ``link``: a symbolic link is there, as ``store.link_ref`` describes it)."""
    first = chain[0]
    last_session = next(c for c in reversed(chain) if c.who in SESSION_WHO)
    target, last = first.before, last_session.after
    current_link = link is not None
    cur_ref = link if current_link else ref_of(current)
    outsider = any(c.who not in SESSION_WHO for c in chain)
    user_changed = outsider or not same_state(cur_ref, last)
    target_bytes = load(target) if target is not None else None
    target_ok = target is None or target_bytes is not None
    binary = any(x is not None and _text(x) is None for x in (current, target_bytes))

    if target is None:
        action: Action = "delete" if current is not None or current_link else "none"
    elif not target_ok:
        action = "unavailable"
    elif current is None and not current_link:
        action = "recreate"
    elif not current_link and current is not None and target_bytes == current:
        action = "none"
    else:
        action = "restore"

    def why_unavailable() -> str:
        assert target is not None
        if target.why == "symlink":
            return "it was a symbolic link then, which a rewind does not restore"
        if target.kept:
            return "its content then was lost from the checkpoint store (damaged or pruned)"
        return f"its content then was not kept ({target.not_kept_reason()})"

    fp = FilePlan(path, action, user_changed, (), "keep", "", binary=binary, current=cur_ref, target=target,
                  last=last, current_bytes=current, target_bytes=target_bytes)
    if action != "unavailable":
        fp.diff = render_diff(current, target_bytes, path) if action != "none" else ""

    if not user_changed:
        if action == "none":
            fp.choices, fp.default = ("keep",), "keep"
            fp.reason = "already as at the checkpoint"
        elif action == "unavailable":
            fp.choices, fp.default = ("keep",), "keep"
            fp.reason = "cannot be restored: " + why_unavailable()
        else:
            fp.choices, fp.default = ("restore", "keep"), "restore"
            fp.reason = {
                "restore": "restore its content",
                "delete": "delete it (the session created it)",
                "recreate": "recreate it (deleted during the session)",
            }[action]
        return fp

    # changed since the session's last change: shown, and kept unless chosen otherwise
    last_bytes = load(last) if last is not None else None
    if last is None or last_bytes is not None:
        fp.user_diff = render_diff(last_bytes, current, path)
    else:
        fp.user_diff = f"(the session's last version of {path} was not kept: {last.not_kept_reason()})\n"
    ok, rebased, note = (False, None, "it is a symbolic link now") if current_link else undo_on_top(chain, current, load)
    choices = ["keep"]
    if ok and not _same_bytes(rebased, current):
        if rebased is None:
            # only when every later edit was undone too (the user's edits reverted): a plain delete
            fp.rebase_deletes = True
        fp.rebased = rebased
        fp.rebase_diff = render_diff(current, rebased, path)
        choices.append("rebase")
    elif not ok:
        fp.rebase_note = note
    if action not in ("unavailable", "none"):
        choices.append("restore")
    fp.choices, fp.default = tuple(choices), "keep"
    what = "changed since the session's last change"
    if action == "unavailable":
        fp.reason = f"{what}; kept unless you choose otherwise; its checkpoint content cannot be restored: {why_unavailable()}"
    elif "rebase" in choices:
        fp.reason = (f"{what}; kept unless you choose: rebase (undo the session's changes on top of the later "
                     "edits) or restore (the checkpoint's content, discarding them)")
    elif "restore" in choices:
        fp.reason = (f"{what}; kept unless you choose restore (the checkpoint's content, discarding the later edits)"
                     + (f"; cannot rebase: {note}" if note else ""))
    else:
        fp.reason = f"{what}; kept" + (f" (cannot rebase: {note})" if note else "")
    return fp


CHANGED_SINCE = "changed since the session's last change"


def summarize(checkpoint: Checkpoint, outcomes: list[FileOutcome], outside: list[tuple[str, str]] | None = None) -> str:
    """What was done, in a form the user and the model can be told: "undone: …; kept
    (changed since the session's change, not touched): …"."""
    where = (f"before user message {checkpoint.message_index}" if checkpoint.message_index is not None
             else f"checkpoint {checkpoint.id}")
    groups: dict[str, list[str]] = {}
    for o in outcomes:
        key: str = o.status
        text = o.path
        if o.status == "kept":
            key = "kept-changed" if o.message.startswith(CHANGED_SINCE) else "kept"
            extra = o.message[len(CHANGED_SINCE):].lstrip("; ") if key == "kept-changed" else o.message
            if extra:
                text += f" ({extra})"
        elif o.message and o.status in ("failed", "unavailable"):
            text += f" ({o.message})"
        groups.setdefault(key, []).append(text)
    parts = []
    labels = [
        ("restored", "undone"),
        ("recreated", "recreated (deleted during the session)"),
        ("deleted", "deleted (created during the session)"),
        ("rebased", "undone on top of the later edits"),
        ("kept-changed", "kept (changed since the session's change, so not touched)"),
        ("kept", "kept"),
        ("unavailable", "not restored"),
        ("failed", "failed"),
    ]
    for status, label in labels:
        if groups.get(status):
            parts.append(f"{label}: " + ", ".join(groups[status]))
    if outside:
        parts.append("left alone (changed outside the session): " + ", ".join(p for p, _ in outside))
    if not parts:
        return f"Rewound the code to {where}: there was nothing to undo."
    return f"Rewound the code to {where}. " + "; ".join(parts) + "."


def abs_path(root: Path, rel: str) -> Path:
    return Path(os.path.join(root, rel))
