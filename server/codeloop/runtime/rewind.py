"""Rewinding a session to before one of its user messages: the code, the conversation,
or both (docs/checkpoints.md).

``SessionRewind`` is what every host uses (``/rewind``, ``codeloop rewind``, the editor's
commands and panel): ``targets()`` lists the user messages that can be rewound to (and
the rewinds that can be undone), ``preview()`` says per file what a rewind does,
``apply()`` does it. The code goes back through the checkpoint service (with the host's
port: the editor's buffers, else the disk); the conversation is cut before the message
(a ``rewind`` record in the session file, so a resume shows it cut too); the model is
told what happened with the next user message.
"""

from __future__ import annotations

import dataclasses
import logging
from dataclasses import dataclass, field
from typing import Any, Literal, Protocol

from codeloop.context.prompt import TURN_CONTEXT_OPEN
from codeloop.services.checkpoints import CheckpointError, CheckpointService, RewindPlan, RewindPort, RewindResult
from codeloop.services.checkpoints.rewind import summarize

log = logging.getLogger(__name__)

TEXT_CHARS = 80


class RewindError(ValueError):
    """A rewind that cannot be done; the message is for the user (the command layer
    shows a ``ValueError``'s message as a warning)."""


class RewindableSession(Protocol):
    """What a rewind uses of ``codeloop.runtime.session.AgentSession``."""

    @property
    def messages(self) -> list[dict[str, Any]]: ...

    checkpoints: Any  # runtime.checkpoints.SessionCheckpoints
    turn_lock: Any

    def rewound(self, keep: int | None, checkpoint: str, summary: str, note: str) -> None: ...


@dataclass(frozen=True)
class RewindTarget:
    """A point to rewind to: before user message ``number`` (1 = the oldest listed) at
    ``index`` of the conversation, back before an earlier rewind (``kind`` "undo"), or any
    other checkpoint named by its id ("step": the code only)."""

    id: str  # the checkpoint
    kind: Literal["message", "undo", "step"]
    number: int | None
    index: int | None
    text: str  # the user's words (first line, shortened), or what the undo undoes
    ts: str
    files: int  # files the session changed since (what a code rewind considers)
    words: str = ""  # the user's words, whole

    def describe(self) -> str:
        if self.kind == "undo":
            return f"{self.id:>5}  undo: {self.text}"
        files = f"{self.files} file{'s' if self.files != 1 else ''} changed since"
        return f"{self.number:>5}  {self.text}  ({files}; {self.id})"


@dataclass
class RewindPreview:
    target: RewindTarget
    plan: RewindPlan
    removes: int  # messages a conversation rewind removes
    conversation: str = ""  # why the conversation cannot be rewound ("" when it can)

    def text(self, code: bool = True, conversation: bool = True) -> str:
        t = self.target
        head = (f"Rewind to before message {t.number}: {t.text}" if t.kind == "message" and t.number
                else f"Undo the rewind ({t.text})" if t.kind == "undo"
                else f"Rewind the code to checkpoint {t.id} ({t.text})")
        lines = [head]
        if conversation:
            lines.append(f"Conversation: {self.conversation}" if self.conversation
                         else f"Conversation: the last {self.removes} message(s) are removed (from this one on).")
        if code:
            lines.append("Code:" if self.plan.files or self.plan.outside else "Code: no file changes to undo.")
            if self.plan.files or self.plan.outside:
                body = self.plan.preview().split("\n", 1)
                lines.append(body[1] if len(body) > 1 else "")
        return "\n".join(lines).rstrip()

    @property
    def asks(self) -> list[Any]:
        """The files a user is asked about: changed since the session's change."""
        return [f for f in self.plan.files if f.user_changed and len(f.choices) > 1]


@dataclass
class RewindOutcome:
    target: RewindTarget
    summary: str  # for the user
    code: RewindResult | None = None
    removed: int = 0  # messages removed from the conversation
    message: str = ""  # the words of the message rewound to (to edit and send again)
    notes: list[str] = field(default_factory=list)


def user_words(content: Any) -> str:
    """A user message's own words (without the context block codeloop adds)."""
    if isinstance(content, list):
        text = next((str(p.get("text", "")) for p in content if isinstance(p, dict) and p.get("type") == "text"), "")
    else:
        text = str(content or "")
    at = text.find("\n\n" + TURN_CONTEXT_OPEN)
    if at >= 0:
        text = text[:at]
    elif text.startswith(TURN_CONTEXT_OPEN):
        text = ""
    return text


def _short(text: str) -> str:
    one = " ".join(text.split())
    return one if len(one) <= TEXT_CHARS else one[: TEXT_CHARS - 1].rstrip() + "…"


class SessionRewind:
    def __init__(self, session: RewindableSession) -> None:
        self.session = session

    async def _service(self) -> CheckpointService:
        cps = await self.session.checkpoints.service()
        if cps is None:
            raise RewindError(f"Nothing to rewind: {self.session.checkpoints.off_reason}.")
        return cps

    async def targets(self) -> list[RewindTarget]:
        """The user messages that can be rewound to, oldest first, then the rewinds that
        can be undone."""
        cps = await self._service()
        files = {t.checkpoint.id: t.files_changed for t in cps.turns()}
        messages = self.session.messages
        stamps = {c.id: c.ts for c in cps.checkpoints()}
        out: list[RewindTarget] = []
        for n, (index, cp_id) in enumerate(self.session.checkpoints.live_marks(messages), 1):
            words = user_words(messages[index].get("content"))
            out.append(RewindTarget(cp_id, "message", n, index, _short(words) or "(no text)", stamps.get(cp_id, ""),
                                    files.get(cp_id, 0), words))
        for r in cps.rewinds():
            undo = str(r.get("undo", ""))
            if undo:
                out.append(RewindTarget(undo, "undo", None, None, f"the rewind of {r.get('ts', '')[:19]} to {r.get('to')}",
                                        str(r.get("ts", "")), 0))
        return out

    async def resolve(self, spec: str | None) -> RewindTarget:
        """``spec``: a message number as listed ("3"), a checkpoint id ("c7"), "last"
        or None (the last message)."""
        targets = await self.targets()
        messages = [t for t in targets if t.kind == "message"]
        s = (spec or "last").strip().lstrip("#")
        if s == "last":
            if not messages:
                raise RewindError("There is no message to rewind to in this conversation.")
            return messages[-1]
        if s.isdigit():
            hit = next((t for t in messages if t.number == int(s)), None)
            if hit is None:
                raise RewindError(f"There is no message {s} to rewind to (messages 1 to {len(messages)})."
                                  if messages else "There is no message to rewind to in this conversation.")
            return hit
        hit = next((t for t in reversed(targets) if t.id == s), None)
        if hit is not None:
            return hit
        cps = await self._service()
        cp = next((c for c in cps.checkpoints() if c.id == s), None)
        if cp is None:
            raise RewindError(f"No message or checkpoint {spec!r} in this session; /rewind lists them.")
        # a step checkpoint (or a message no longer in the conversation): the code only
        return RewindTarget(cp.id, "step", None, None, f"before {cp.label}" if cp.label else cp.id, cp.ts, 0)

    async def preview(self, target: RewindTarget, port: RewindPort | None = None) -> RewindPreview:
        cps = await self._service()
        await cps.ready()  # what changed while the session was not running is known first
        try:
            plan = await cps.plan_rewind(target.id, port)
        except CheckpointError as e:
            raise RewindError(str(e)) from e
        index = self._index_of(target.id)
        if index is None:
            why = ("that message is no longer in the conversation (compacted or rewound); only the code"
                   if target.kind == "message" else "it is not before a user message")
            return RewindPreview(target, plan, 0, f"left as it is ({why}).")
        return RewindPreview(target, plan, len(self.session.messages) - index)

    def _index_of(self, checkpoint_id: str) -> int | None:
        return next((i for i, cp in self.session.checkpoints.live_marks(self.session.messages) if cp == checkpoint_id), None)

    async def apply(self, preview: RewindPreview, choices: dict[str, str] | None = None, *, changed_since: str = "keep",
                    code: bool = True, conversation: bool = True, port: RewindPort | None = None) -> RewindOutcome:
        """Rewind the code (per file: ``choices``, else each file's default; files the
        user changed since follow ``changed_since``: "keep" or "rebase", never reset),
        the conversation, or both."""
        if not code and not conversation:
            raise RewindError("Nothing to do: neither the code nor the conversation was chosen.")
        cps = await self._service()
        target = preview.target
        async with self.session.turn_lock:
            out = RewindOutcome(target, "")
            parts: list[str] = []
            if code:
                res = await cps.apply_rewind(preview.plan, choices, changed_since=changed_since, port=port)
                cp = dataclasses.replace(res.checkpoint, message_index=target.number if target.kind == "message" else None)
                res.summary = summarize(cp, res.files, preview.plan.outside)
                out.code = res
                parts.append(res.summary)
            index = self._index_of(target.id) if conversation else None
            if conversation and index is not None:
                out.message = user_words(self.session.messages[index].get("content"))
                out.removed = len(self.session.messages) - index
                parts.append(f"Rewound the conversation to before message {target.number}: "
                             f"{out.removed} message(s) removed.")
            elif conversation:
                parts.append(f"The conversation was left as it is: {preview.conversation or 'no such message'}")
            out.summary = " ".join(parts)
            note = self._note(preview, out, index is not None)
            if note:
                out.notes.append(note)
            self.session.rewound(index, target.id, out.code.summary if out.code else "", note)
            log.info("rewind of %s: %s", target.id, out.summary)
            return out

    @staticmethod
    def _note(preview: RewindPreview, out: RewindOutcome, cut: bool) -> str:
        """What the model is told with the next user message."""
        if cut and out.code is not None:
            return ("The user rewound this conversation to this point (the later messages were removed) and the "
                    f"code with it. {out.code.summary} Files kept as they are may hold later changes: read a file "
                    "again before editing it.")
        if out.code is not None:
            return (f"The user rewound the code (not the conversation). {out.code.summary} Files may no longer "
                    "hold what earlier messages show: read a file again before editing it.")
        if cut:
            changed = [f.path for f in preview.plan.files if f.action != "none"]
            still = (f" The changes made after this point are still in the files: {', '.join(changed)}."
                     if changed else "")
            return ("The user rewound this conversation to this point (the later messages were removed) but not "
                    f"the code.{still} Read a file again before editing it.")
        return ""


__all__ = ["RewindError", "RewindOutcome", "RewindPreview", "RewindTarget", "SessionRewind", "user_words"]
