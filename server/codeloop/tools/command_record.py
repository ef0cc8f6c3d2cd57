"""A command the agent ran (or is running) and the output it produced, bounded; and the
signals that stop a command's process group."""

from __future__ import annotations

import asyncio
import codecs
import logging
import os
import time
from collections import deque
from dataclasses import dataclass, field
from pathlib import Path

from codeloop.core.ports import SpawnPlan

log = logging.getLogger(__name__)

MAX_RECORD_CHARS = 20 * 1024 * 1024  # per command; the oldest lines go first


def group_alive(pgid: int) -> bool:
    """True while a process of group ``pgid`` is still running.

    Zombies do not count: in containers whose init does not reap orphans they
    linger in the group forever although they are dead.
    """
    proc = Path("/proc")
    if proc.is_dir():
        try:
            entries = os.listdir(proc)
        except OSError:
            entries = []
        found_proc = False
        for name in entries:
            if not name.isdigit():
                continue
            found_proc = True
            try:
                stat = (proc / name / "stat").read_text()
            except OSError:
                continue
            # pid (comm) state ppid pgrp ... ; comm may contain spaces and parens.
            rest = stat[stat.rfind(")") + 2 :].split()
            if len(rest) >= 3 and rest[2] == str(pgid) and rest[0] not in ("Z", "X"):
                return True
        if found_proc:
            return False
    try:
        os.killpg(pgid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def signal_group(pgid: int, sig: int) -> bool:
    try:
        os.killpg(pgid, sig)
        return True
    except ProcessLookupError:
        return False
    except PermissionError:
        log.warning("not allowed to signal process group %s", pgid)
        return False


@dataclass(eq=False)
class CommandRecord:
    """One command or background process and the output it has produced so far."""

    id: str
    command: str
    cwd: str
    background: bool
    pid: int = 0
    started_at: float = field(default_factory=time.time)
    ended_at: float | None = None
    exit_code: int | None = None
    timed_out: bool = False
    cancelled: bool = False
    killed: bool = False  # stopped by kill_process / shutdown / kill_all_foreground
    leftovers_killed: bool = False  # children still holding the output were stopped
    dropped_lines: int = 0  # oldest lines dropped to respect MAX_RECORD_CHARS
    max_chars: int = MAX_RECORD_CHARS
    _lines: deque[str] = field(default_factory=deque, repr=False)
    _partial: str = field(default="", repr=False)
    _chars: int = field(default=0, repr=False)
    _decoder: codecs.IncrementalDecoder = field(
        default_factory=lambda: codecs.getincrementaldecoder("utf-8")("replace"), repr=False
    )
    _pending_cr: bool = field(default=False, repr=False)
    _finished: asyncio.Future[None] | None = field(default=None, repr=False)
    _process: asyncio.subprocess.Process | None = field(default=None, repr=False)
    _plan: SpawnPlan | None = field(default=None, repr=False)  # the sandbox's, cleaned up at the end
    sandboxed: bool = False

    # -- state

    @property
    def pgid(self) -> int:
        return self.pid

    @property
    def running(self) -> bool:
        return self.ended_at is None

    def status(self) -> str:
        if self.running:
            return "running"
        if self.timed_out:
            return f"timed out (exit code {self.exit_code})"
        if self.killed or self.cancelled:
            return f"killed (exit code {self.exit_code})"
        return f"exited with code {self.exit_code}"

    def runtime(self) -> float:
        return (self.ended_at or time.time()) - self.started_at

    # -- output

    def feed_bytes(self, data: bytes, final: bool = False) -> str:
        text = self._decoder.decode(data, final)
        self.feed(text)
        return text

    def feed(self, text: str) -> None:
        if not text:
            return
        if self._pending_cr:
            text = "\r" + text
            self._pending_cr = False
        if text.endswith("\r"):
            self._pending_cr = True
            text = text[:-1]
        text = text.replace("\r\n", "\n")
        parts = text.split("\n")
        parts[0] = self._partial + parts[0]
        self._partial = parts.pop()
        for line in parts:
            self._push(line)
        # a single enormous line without a newline: cut it into pieces
        while len(self._partial) > 1_000_000:
            self._push(self._partial[:1_000_000])
            self._partial = self._partial[1_000_000:]

    def _push(self, line: str) -> None:
        self._lines.append(line)
        self._chars += len(line) + 1
        while self._chars > self.max_chars and len(self._lines) > 1:
            old = self._lines.popleft()
            self._chars -= len(old) + 1
            self.dropped_lines += 1

    def close_output(self) -> None:
        tail = self._decoder.decode(b"", True)
        if tail:
            self.feed(tail)
        if self._pending_cr:
            self._pending_cr = False
        if self._partial:
            self._push(self._partial)
            self._partial = ""

    @property
    def line_count(self) -> int:
        """Lines produced so far (including dropped ones and an unfinished last line)."""
        return self.dropped_lines + len(self._lines) + (1 if self._partial else 0)

    def lines(self) -> list[str]:
        """The kept lines; the first one is line ``dropped_lines + 1``."""
        out = list(self._lines)
        if self._partial:
            out.append(self._partial)
        return out

    def text(self) -> str:
        return "\n".join(self.lines())
