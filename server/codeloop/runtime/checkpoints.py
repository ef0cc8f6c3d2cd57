"""A session's checkpoints, wired into the agent (docs/checkpoints.md).

``codeloop.services.checkpoints`` records; this module tells it when, for one session:

* a turn checkpoint before each user message (``begin_turn``), tied to that message once
  the loop commits it (``MarkingLog``: the checkpoint id is written with the message in
  the session file, so a resume knows it too);
* a step checkpoint before each model step that runs a tool that may change something
  (``before_tools``);
* every edit the session's applier lands (``RecordingApplier``), with the text it
  replaced (the buffer when open, unsaved edits included) and what it left;
* every command the process manager runs (``around``: the ``CommandObserver`` port).
  Background processes are recorded while they start; what they change later is
  "unknown" (seen at the next snapshot, listed by a rewind, never undone).

Checkpoints never stop the agent: when the store cannot be opened or a record fails, a
notice says so once and the session goes on without them.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

from codeloop.config import CheckpointsConfig
from codeloop.core.events import Notice
from codeloop.core.ports import ChangeApplier, Documents, EventSink
from codeloop.core.tasks import Tasks
from codeloop.edits.change import ChangeOutcome, ChangeSet
from codeloop.edits.diff import apply_hunks, compute_hunks
from codeloop.edits.rebase import rebase
from codeloop.services.checkpoints import CheckpointService, CheckpointSettings

log = logging.getLogger(__name__)

BASELINE_NOTICE_AFTER = 1.0  # seconds a command waits for the baseline before a notice says why
BASELINE_WAIT = 30.0  # at most, the first time: a command then runs unrecorded (its changes are "unknown")
LANDED = ("applied", "partial", "edited")


class SessionCheckpoints:
    """The checkpoints of one session: ``service()`` opens them once (in the background
    from the start, when an event loop runs), None when they are off or broken."""

    def __init__(self, root: Path, session_id: str | None, config: CheckpointsConfig, *, sink: EventSink,
                 tasks: Tasks, store_dir: Path | None = None) -> None:
        self.root = root
        self.session_id = session_id
        self.sink = sink
        self.tasks = tasks
        self.store_dir = store_dir
        self.settings, self.problems = CheckpointSettings.from_mapping(config.model_dump(by_alias=True))
        self.enabled = self.settings.enabled and session_id is not None
        self.off_reason = "" if self.enabled else (
            "checkpoints are off (the setting checkpoints.enabled)" if session_id is not None
            else "this session is not saved, so it has no checkpoints")
        self._service: CheckpointService | None = None
        self._opening: asyncio.Task[None] | None = None
        self._warned: set[str] = set()
        # (user message, checkpoint id), oldest first; the message dicts themselves, so a
        # compaction (which keeps the recent ones) and a rewind (which cuts) keep them right
        self.marks: list[tuple[dict[str, Any], str]] = []
        self._pending: tuple[Any, str | None] | None = None  # (content of the turn's user message, checkpoint)
        self.notes: list[str] = []  # for the model, with the next user message
        try:
            asyncio.get_running_loop()
        except RuntimeError:
            return
        self._start_opening()

    # -- opening -------------------------------------------------------------------

    def _start_opening(self) -> asyncio.Task[None] | None:
        if self._opening is None and self.enabled:
            self._opening = self.tasks.spawn(self._open(), "open checkpoints")
        return self._opening

    async def _open(self) -> None:
        assert self.session_id is not None
        try:
            cps = await CheckpointService.open(self.root, self.session_id, self.settings, store_dir=self.store_dir)
        except Exception as e:  # a read-only workspace, a broken store: the session goes on
            log.exception("could not open the checkpoints of %s", self.session_id)
            self.enabled = False
            self.off_reason = f"the checkpoint store could not be opened ({type(e).__name__}: {e})"
            self.warn("open", f"Checkpoints are off for this session: {self.off_reason}.")
            return
        for w in [*self.problems, *cps.warnings]:
            self.warn(w, f"Checkpoints: {w}")
        cps.start()
        self._service = cps

    async def service(self) -> CheckpointService | None:
        if self._service is not None or not self.enabled:
            return self._service
        task = self._start_opening()
        if task is not None:
            await asyncio.shield(task)
        return self._service

    def warn(self, key: str, text: str, level: str = "warning") -> None:
        """A notice, once per ``key`` and session."""
        if key in self._warned:
            return
        self._warned.add(key)
        try:
            self.sink.emit(Notice(text, level))  # type: ignore[arg-type]
        except Exception:
            log.exception("could not show a checkpoint notice")

    async def close(self) -> None:
        if self._opening is not None and not self._opening.done():
            try:
                await self._opening
            except Exception:
                pass
        if self._service is not None:
            try:
                await self._service.close()
            except Exception:
                log.exception("closing the checkpoints of %s failed", self.session_id)
            self._service = None

    # -- turns and steps -------------------------------------------------------------

    async def begin_turn(self, content: Any, index: int, label: str) -> None:
        """A checkpoint before the user message ``content`` (which the loop commits at
        ``index`` or, after a compaction, earlier)."""
        self._pending = (content, None)
        cps = await self.service()
        if cps is None:
            return
        try:
            cp = await cps.begin_turn(index, label=label[:200])
        except Exception as e:
            log.exception("could not record a turn checkpoint")
            self.warn("turn", f"Could not record a checkpoint before this message: {e}")
            return
        self._pending = (content, cp.id)

    def claim(self, message: dict[str, Any]) -> str | None:
        """The checkpoint of ``message`` when it is the pending turn's user message."""
        if self._pending is None or message.get("role") != "user" or message.get("content") is not self._pending[0]:
            return None
        cp = self._pending[1]
        self._pending = None
        self.notes.clear()  # told with this message (a turn that failed before it tells them next time)
        if cp is not None:
            self.marks.append((message, cp))
        return cp

    async def before_tools(self, names: list[str], may_change: bool) -> None:
        if not may_change:
            return  # rewinding to before a read-only step is rewinding to before the next one
        cps = await self.service()
        if cps is not None:
            await cps.begin_step(", ".join(names)[:200])

    def live_marks(self, messages: list[dict[str, Any]]) -> list[tuple[int, str]]:
        """(index in ``messages``, checkpoint id) of the user messages still there."""
        where = {id(m): i for i, m in enumerate(messages)}
        return [(where[id(m)], cp) for m, cp in self.marks if id(m) in where]

    def load_marks(self, messages: list[dict[str, Any]], marks: list[tuple[int, str]]) -> None:
        self.marks = [(messages[i], cp) for i, cp in marks if 0 <= i < len(messages)]

    # -- commands (the CommandObserver port) -----------------------------------------

    @asynccontextmanager
    async def around(self, command: str, cwd: Path, background: bool) -> AsyncIterator[None]:
        cps = await self.service()
        mark = None
        if cps is not None:
            label = f"{command} (started in the background)" if background else command
            try:
                if await self._baseline(cps):
                    mark = await cps.before_command(label[:500])
            except Exception as e:
                log.exception("the snapshot before a command failed")
                self.warn("command", f"Checkpoints could not record commands: {e}. A rewind will not undo them.")
        try:
            yield
        finally:
            if cps is not None and mark is not None:
                try:
                    await asyncio.shield(cps.after_command(mark))
                except Exception as e:
                    log.exception("the snapshot after a command failed")
                    self.warn("command", f"Checkpoints could not record a command: {e}. A rewind will not undo it.")

    async def _baseline(self, cps: CheckpointService) -> bool:
        """The first command waits for the baseline (the copy of the workspace its prior
        contents come from), a notice saying so when that takes a while; after
        ``BASELINE_WAIT`` it runs unrecorded (False): what it changes is seen later as
        "unknown", listed by a rewind and never undone."""
        task = cps.start()
        if task.done():
            await task
            return True
        try:
            await asyncio.wait_for(asyncio.shield(task), BASELINE_NOTICE_AFTER)
            return True
        except TimeoutError:
            pass
        self.warn("baseline", "Checkpoints: taking the first snapshot of the workspace before the first command "
                              "(once per workspace; later sessions reuse most of it)…", "info")
        try:
            await asyncio.wait_for(asyncio.shield(task), BASELINE_WAIT - BASELINE_NOTICE_AFTER)
            return True
        except TimeoutError:
            self.warn("baseline-slow", "Checkpoints: the first snapshot of the workspace is still running, so this "
                                       "command runs without one: a rewind will not undo what it changes.")
            return False

    # -- edits -----------------------------------------------------------------------

    def applier(self, inner: ChangeApplier, documents: Documents) -> ChangeApplier:
        return RecordingApplier(inner, self, documents)

    def message_log(self, writer: Any) -> "MarkingLog":
        return MarkingLog(writer, self)

    def pending_notes(self) -> list[str]:
        """What the model is to be told of (rewinds) with the next user message."""
        return list(self.notes)


class MarkingLog:
    """The ``MessageLog`` port around the session writer (which may be None): a turn's
    user message is written with the id of the checkpoint before it."""

    def __init__(self, writer: Any, checkpoints: SessionCheckpoints) -> None:
        self.writer = writer
        self.checkpoints = checkpoints

    def append(self, message: dict[str, Any]) -> None:
        cp = self.checkpoints.claim(message)
        if self.writer is None:
            return
        if cp is None:
            self.writer.append(message)
        else:
            self.writer.append(message, checkpoint=cp)


class RecordingApplier:
    """Records each file a change set landed: BEFORE is what the file held when it
    landed (the text the tool based its change on, the user's unsaved edits included;
    the disk's exact bytes when no buffer is open; edits the user typed while the change
    was reviewed are kept in it), AFTER what it holds now."""

    def __init__(self, inner: ChangeApplier, checkpoints: SessionCheckpoints, documents: Documents) -> None:
        self.inner = inner
        self.checkpoints = checkpoints
        self.documents = documents

    async def apply(self, changes: ChangeSet) -> ChangeOutcome:
        cps = await self.checkpoints.service()
        if cps is None:
            return await self.inner.apply(changes)
        closed = [c.path for c in changes.changes if self.documents.get(c.path) is None]
        disk_before = await asyncio.to_thread(_read_all, closed)
        outcome = await self.inner.apply(changes)
        try:
            await self._record(cps, changes, outcome, disk_before)
        except Exception as e:
            log.exception("recording an edit in the checkpoints failed")
            self.checkpoints.warn("edit", f"Checkpoints could not record an edit: {e}. A rewind will not undo it.")
        return outcome

    async def _record(self, cps: CheckpointService, changes: ChangeSet, outcome: ChangeOutcome,
                      disk_before: dict[Path, bytes | None]) -> None:
        by_path = {c.path: c for c in changes.changes}
        for fo in outcome.files:
            change = by_path.get(fo.path)
            if change is None or fo.status not in LANDED:
                continue
            doc = self.documents.get(fo.path)
            final = fo.final_text if fo.final_text is not None else (doc.text if doc is not None else None)
            after: str | bytes | None
            if doc is None:
                disk = (await asyncio.to_thread(_read_all, [fo.path]))[fo.path]
                after = disk if disk is not None and (final is None or _same_text(disk, final)) else final
            else:
                after = final
            if after is None:
                continue
            before: str | bytes | None = change.old_text
            expected = _expected_landing(change.old_text, change.new_text, fo.status, fo.accepted_hunks)
            if expected is not None and final is not None and _norm(final) != _norm(expected):
                # The user typed in the file while the change was reviewed, and the pipeline
                # kept it: the state before the landing is the final text without our change.
                r = rebase(_norm(expected), _norm(change.old_text or ""), _norm(final))
                if r.ok and r.text is not None:
                    before = r.text
            elif change.old_text is not None and doc is None:
                raw = disk_before.get(fo.path)
                if raw is not None and _same_text(raw, change.old_text):
                    before = raw  # the exact bytes (CRLF, a BOM) the file had
            await cps.record_edit(fo.path, before, after, label=changes.tool)


def _read_all(paths: list[Path]) -> dict[Path, bytes | None]:
    out: dict[Path, bytes | None] = {}
    for p in paths:
        try:
            out[p] = p.read_bytes()
        except OSError:
            out[p] = None
    return out


def _norm(text: str) -> str:
    return text.replace("\r\n", "\n").replace("\r", "\n")


def _same_text(data: bytes, text: str) -> bool:
    try:
        return _norm(data.decode("utf-8")) == _norm(text)
    except UnicodeDecodeError:
        return False


def _expected_landing(old: str | None, new: str, status: str, accepted: list[int]) -> str | None:
    """What the file holds after the landing when nobody typed meanwhile (None: unknown)."""
    if status == "applied":
        return new
    if status == "partial" and old is not None:
        try:
            return apply_hunks(old, compute_hunks(old, new), set(accepted))
        except ValueError:
            return None
    return None


__all__ = ["MarkingLog", "RecordingApplier", "SessionCheckpoints"]
