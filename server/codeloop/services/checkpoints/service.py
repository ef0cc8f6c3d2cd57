"""The async face of the checkpoint store: every blocking part runs in a worker thread,
the baseline is a tracked background task whose errors are logged (and re-raised to
whoever waits for it)."""

from __future__ import annotations

import asyncio
import logging
import os
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from pathlib import Path

from .model import Checkpoint, ContentRef, FileChange, TurnInfo
from .rewind import (
    CHANGED_SINCE,
    DiskPort,
    FileOutcome,
    FilePlan,
    OutcomeStatus,
    RewindPlan,
    RewindPort,
    RewindResult,
    abs_path,
    chains,
    outside_changes,
    plan_file,
    ref_of,
    render_diff,
    summarize,
)
from .settings import CheckpointSettings
from .store import CheckpointError, CheckpointStore, CommandMark, link_ref

log = logging.getLogger(__name__)

APPLY_CONCURRENCY = 8  # files restored at once (each write is fsynced: they overlap)


@dataclass
class CommandRecording:
    """Inside ``async with service.command(label) as rec``; ``rec.changes`` after it."""

    mark: CommandMark
    changes: list[FileChange] = field(default_factory=list)


class CheckpointService:
    """One session's checkpoints, for the agent loop and the hosts.

    Typical use::

        cps = await CheckpointService.open(root, session_id, settings)
        cps.start()                                  # the baseline, in the background
        await cps.begin_turn(len(messages))          # before each user message
        await cps.begin_step("a tool step")          # before each tool step
        await cps.record_edit(path, before, after)   # each applied proposal edit
        async with cps.command("pytest -q"):         # around each command
            ...
        plan = await cps.plan_rewind(cps.checkpoint_for_message(3).id)
        result = await cps.apply_rewind(plan)        # result.summary for the model
    """

    def __init__(self, store: CheckpointStore, port: RewindPort | None = None) -> None:
        self.store = store
        self.port: RewindPort = port or DiskPort()
        self._baseline: asyncio.Task[None] | None = None

    @classmethod
    async def open(cls, root: Path, session_id: str, settings: CheckpointSettings | None = None, *,
                   store_dir: Path | None = None, port: RewindPort | None = None) -> "CheckpointService":
        """Open (or resume) the session's checkpoints. ``warnings`` says what loading
        dropped (a record cut by a crash)."""
        store = await asyncio.to_thread(CheckpointStore.open, root, session_id, settings, store_dir=store_dir)
        return cls(store, port)

    @property
    def warnings(self) -> list[str]:
        return self.store.warnings

    @property
    def root(self) -> Path:
        return self.store.root

    # -- the baseline -----------------------------------------------------------------

    def start(self) -> asyncio.Task[None]:
        """Start the baseline in the background (idempotent); commands wait for it."""
        if self._baseline is None:
            self._baseline = asyncio.get_running_loop().create_task(asyncio.to_thread(self.store.prepare),
                                                                    name="checkpoints-baseline")
            self._baseline.add_done_callback(_log_failure)
        return self._baseline

    async def ready(self) -> None:
        await self.start()

    # -- recording --------------------------------------------------------------------

    async def begin_turn(self, message_index: int, *, message_id: str | None = None, label: str = "") -> Checkpoint:
        return await asyncio.to_thread(self.store.begin_turn, message_index, message_id=message_id, label=label)

    async def begin_step(self, label: str = "") -> Checkpoint:
        return await asyncio.to_thread(self.store.begin_step, label)

    async def record_edit(self, path: Path | str, before: str | bytes | None, after: str | bytes | None,
                          *, label: str = "") -> FileChange | None:
        return await asyncio.to_thread(self.store.record_edit, path, before, after, label=label)

    async def before_command(self, label: str = "") -> CommandMark:
        await self.ready()
        return await asyncio.to_thread(self.store.before_command, label)

    async def after_command(self, mark: CommandMark) -> list[FileChange]:
        return await asyncio.to_thread(self.store.after_command, mark)

    @asynccontextmanager
    async def command(self, label: str = "") -> AsyncIterator[CommandRecording]:
        """Snapshots around a command: ``async with cps.command(cmd) as rec: run it``;
        ``rec.changes`` is what it changed (also when it failed or was cancelled)."""
        rec = CommandRecording(await self.before_command(label))
        try:
            yield rec
        finally:
            rec.changes = await asyncio.shield(self.after_command(rec.mark))

    async def refresh(self) -> list[FileChange]:
        """Record what changed outside the session since the last snapshot."""
        await self.ready()
        return await asyncio.to_thread(self.store.refresh)

    # -- reading ----------------------------------------------------------------------

    def turns(self) -> list[TurnInfo]:
        return self.store.turns()

    def checkpoints(self) -> list[Checkpoint]:
        return list(self.store.checkpoints)

    def rewinds(self) -> list[dict]:
        """The rewinds done in this session, oldest first: ``{"to", "undo", "summary",
        "ts"}`` (rewinding to ``undo`` undoes that rewind)."""
        return list(self.store.rewinds)

    @property
    def open_elsewhere(self) -> bool:
        """Another process has this session open (a rewind here would race it)."""
        return self.store.open_elsewhere

    def checkpoint_for_message(self, message_index: int) -> Checkpoint | None:
        return self.store.checkpoint_for_message(message_index)

    # -- rewind -----------------------------------------------------------------------

    async def plan_rewind(self, checkpoint_id: str, port: RewindPort | None = None) -> RewindPlan:
        """A preview of what rewinding the code to ``checkpoint_id`` does, per file."""
        port = port or self.port
        cp = self.store.checkpoint(checkpoint_id)
        if cp is None:
            raise CheckpointError(f"no checkpoint {checkpoint_id!r} in this session")
        after = self.store.changes_after(checkpoint_id)
        by_path = chains(after)
        files: list[FilePlan] = []
        for rel in sorted(by_path):
            current, link = await self._current(rel, port)
            files.append(await asyncio.to_thread(plan_file, rel, by_path[rel], current, link, self.store.load))
        return RewindPlan(cp, files, outside_changes(after))

    async def apply_rewind(self, plan: RewindPlan, choices: dict[str, str] | None = None, *,
                           changed_since: str = "keep", port: RewindPort | None = None) -> RewindResult:
        """Apply ``plan``: each file's choice from ``choices`` (path -> "restore", "keep",
        "rebase"), else its default; files changed since the session's last change follow
        ``changed_since`` ("keep" or "rebase"; never "restore" unless chosen per file). A
        file that changed after the preview is re-checked and kept if it is no longer
        safe. One file failing never stops the others. The rewind is recorded, so
        ``result.undo_checkpoint`` undoes it."""
        if changed_since not in ("keep", "rebase"):
            raise ValueError('changed_since must be "keep" or "rebase"')
        port = port or self.port
        choices = dict(choices or {})
        undo = await self.begin_step(f"before rewinding to {plan.checkpoint.id}")
        by_path = chains(self.store.changes_after(plan.checkpoint.id))
        gate = asyncio.Semaphore(APPLY_CONCURRENCY)

        async def one(fp: FilePlan) -> tuple[FileOutcome, FileChange | None]:
            async with gate:
                try:
                    return await self._apply_file(fp, choices.get(fp.path), changed_since, port, by_path)
                except Exception as e:  # one file never stops the others
                    log.exception("rewind of %s failed", fp.path)
                    return FileOutcome(fp.path, "failed", str(e) or type(e).__name__), None

        done = await asyncio.gather(*(one(fp) for fp in plan.files))
        outcomes = [o for o, _ in done]
        written = [c for _, c in done if c is not None]
        summary = summarize(plan.checkpoint, outcomes, plan.outside)
        await asyncio.to_thread(self.store.record_rewind, f"rewind to {plan.checkpoint.id}", written)
        await asyncio.to_thread(self.store.note_rewind, plan.checkpoint.id, undo.id, summary)
        return RewindResult(plan.checkpoint, undo, outcomes, summary)

    async def _apply_file(self, fp: FilePlan, choice: str | None, changed_since: str, port: RewindPort,
                          by_path: dict) -> tuple[FileOutcome, FileChange | None]:
        path = abs_path(self.store.root, fp.path)
        current, link = await self._current(fp.path, port)
        if _plain(link if link is not None else ref_of(current)) != _plain(fp.current):
            # changed after the preview: plan this file again, and never act on a stale choice
            chain = by_path.get(fp.path)
            if chain is None:
                return FileOutcome(fp.path, "kept", "no longer changed by the session"), None
            fresh = await asyncio.to_thread(plan_file, fp.path, chain, current, link, self.store.load)
            if fresh.user_changed or choice == "keep":
                # what was chosen was chosen for what the preview showed
                return FileOutcome(fp.path, "kept", f"{CHANGED_SINCE}; after the preview"
                                   if fresh.user_changed else "as chosen"), None
            fp, choice = fresh, None
        if choice is None:
            choice = changed_since if fp.user_changed else fp.default
        if not fp.user_changed and fp.action == "none":
            return FileOutcome(fp.path, "unchanged"), None
        if not fp.user_changed and fp.action == "unavailable":
            return FileOutcome(fp.path, "unavailable", fp.reason.split(": ", 1)[-1]), None
        if choice not in fp.choices:
            if fp.user_changed:
                msg = CHANGED_SINCE
                if choice == "rebase" and fp.rebase_note:
                    msg += f"; could not undo the session's changes on top: {fp.rebase_note}"
                return FileOutcome(fp.path, "kept", msg), None
            return FileOutcome(fp.path, "kept", f"{choice!r} is not possible for it"), None
        if choice == "keep":
            return FileOutcome(fp.path, "kept", CHANGED_SINCE if fp.user_changed else "as chosen"), None
        before_ref = await asyncio.to_thread(self._keep_current, current, fp)
        if choice == "rebase":
            if fp.rebased is None:
                await port.delete(path)
                return FileOutcome(fp.path, "rebased", "deleted"), FileChange(fp.path, before_ref, None, "rewind", "")
            data = fp.rebased
            await port.write(path, _content(data), None)
            after = await asyncio.to_thread(self.store.keep_bytes, data, fp.current.mode if fp.current else None)
            return FileOutcome(fp.path, "rebased"), FileChange(fp.path, before_ref, after, "rewind", "")
        # restore
        if fp.action == "delete":
            await port.delete(path)
            return FileOutcome(fp.path, "deleted"), FileChange(fp.path, before_ref, None, "rewind", "")
        assert fp.target_bytes is not None and fp.target is not None
        await port.write(path, _content(fp.target_bytes), fp.target.mode)
        status: OutcomeStatus = "recreated" if fp.action == "recreate" else "restored"
        return FileOutcome(fp.path, status), FileChange(fp.path, before_ref, fp.target, "rewind", "")

    async def _current(self, rel: str, port: RewindPort) -> tuple[bytes | None, ContentRef | None]:
        """(what the user has now, or the symbolic link that is there instead)."""
        path = abs_path(self.store.root, rel)
        if os.path.islink(path):
            return None, await asyncio.to_thread(link_ref, path)
        return await port.read(path), None

    def _keep_current(self, current: bytes | None, fp: FilePlan) -> ContentRef | None:
        """Store what is there now, so the rewind can itself be undone."""
        if current is None:
            return fp.current if fp.current is not None and fp.current.why == "symlink" else None
        return self.store.keep_bytes(current, fp.current.mode if fp.current else None)

    # -- closing ----------------------------------------------------------------------

    async def close(self) -> None:
        if self._baseline is not None and not self._baseline.done():
            try:
                await self._baseline
            except Exception:
                pass
        await asyncio.to_thread(self.store.close)


def _plain(ref: ContentRef | None) -> ContentRef | None:
    return None if ref is None else ContentRef(ref.hash, ref.size, None, ref.kept, ref.why, ref.key)


def _content(data: bytes) -> str | bytes:
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError:
        return data


def _log_failure(task: asyncio.Task) -> None:
    if task.cancelled():
        return
    exc = task.exception()
    if exc is not None:
        log.error("the checkpoint baseline failed", exc_info=exc)


__all__ = ["CheckpointService", "CommandRecording", "render_diff"]
