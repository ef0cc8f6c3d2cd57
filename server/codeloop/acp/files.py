"""The client's buffers through ``fs/read_text_file``: a ``Documents`` for the tools.

``Documents.get`` is synchronous, and ``fs/read_text_file`` is a request to the
client. The file tools call ``get`` from worker threads (they read files with
``asyncio.to_thread``); there, ``get`` asks the client through the event loop
(``run_coroutine_threadsafe``) and waits for the answer, blocking that worker, never
the loop. Called on the event loop itself (a cheap "is this an open buffer?" check),
``get`` answers from what the last fetch found, without asking.

The client answers with a buffer's text when the file is open there, else with the
disk's: a text equal to the disk's is no buffer of interest (``None``, the tools read
the disk as everywhere else); a different text is an unsaved buffer
(``OpenDocument(dirty=True)``), which the tools read instead of the disk, as over LSP.
Binary files, files too large to read and files the client cannot read are left to
the disk, where the tools say what they are.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import itertools
import logging
import threading
import time
from pathlib import Path

from codeloop.acp.link import SessionLink
from codeloop.core.ports import OpenDocument

log = logging.getLogger(__name__)

READ_TIMEOUT = 15.0  # seconds the client has to answer one read
# A tool looks a file up and then reads it (two ``get`` calls in a row): an answer this
# recent (seconds) is used again rather than asking twice.
FRESH = 0.5
MAX_BYTES = 8 * 1024 * 1024  # files above this size on disk are left to the disk


def normalized(text: str) -> str:
    """Text as the tools see it (universal newlines, as ``read_text`` gives it)."""
    return text.replace("\r\n", "\n").replace("\r", "\n")


def disk_text(path: Path) -> tuple[bool, str | None]:
    """(exists, its text or None when it is not UTF-8)."""
    try:
        raw = path.read_bytes()
    except FileNotFoundError:
        return False, None
    try:
        return True, normalized(raw.decode("utf-8"))
    except UnicodeDecodeError:
        return True, None


class ClientDocuments:
    def __init__(self, link: SessionLink, loop: asyncio.AbstractEventLoop, *, timeout: float = READ_TIMEOUT) -> None:
        self.link = link
        self.loop = loop
        self.timeout = timeout
        self._docs: dict[Path, OpenDocument] = {}
        self._versions = itertools.count(1)
        self._recent: dict[Path, tuple[float, OpenDocument | None]] = {}
        self._lock = threading.Lock()

    # -- the port -------------------------------------------------------------------

    def get(self, path: Path) -> OpenDocument | None:
        try:
            running = asyncio.get_running_loop()
        except RuntimeError:
            running = None
        if running is not None:  # on an event loop: never wait; the last fetch answers
            return self._docs.get(path)
        return self._fetch(path)

    def open_documents(self) -> list[OpenDocument]:
        with self._lock:
            return list(self._docs.values())

    def forget(self, path: Path) -> None:
        """``path`` was just written: the next look asks the client again."""
        with self._lock:
            self._recent.pop(path, None)
            self._docs.pop(path, None)

    # -- asking the client (from a worker thread) ---------------------------------------------

    def _fetch(self, path: Path) -> OpenDocument | None:
        with self._lock:
            recent = self._recent.get(path)
        if recent is not None and time.monotonic() - recent[0] < FRESH:
            return recent[1]
        doc = self._ask(path)
        with self._lock:
            self._recent[path] = (time.monotonic(), doc)
        return doc

    def _ask(self, path: Path) -> OpenDocument | None:
        try:
            if path.is_dir() or (path.is_file() and path.stat().st_size > MAX_BYTES):
                return None
            exists, disk = disk_text(path)
        except OSError:
            return None
        if exists and disk is None:
            return None  # binary on disk: the tools say so
        future = asyncio.run_coroutine_threadsafe(self.read(path), self.loop)
        try:
            text = future.result(self.timeout)
        except concurrent.futures.TimeoutError:
            future.cancel()
            log.warning("the ACP client did not answer fs/read_text_file for %s within %g s; reading the disk",
                        path, self.timeout)
            return self._docs.get(path) if not exists else None
        except Exception:
            log.exception("fs/read_text_file for %s failed", path)
            return None
        with self._lock:
            if text is None or (exists and text == disk):
                self._docs.pop(path, None)
                return None
            known = self._docs.get(path)
            if known is not None and known.text == text:
                return known
            doc = OpenDocument(path=path, text=text, version=next(self._versions), dirty=True)
            self._docs[path] = doc
            return doc

    async def read(self, path: Path) -> str | None:
        """The client's text of ``path`` (normalized), or None when it cannot give it."""
        try:
            answer = await self.link.conn.read_text_file(session_id=self.link.session_id, path=str(path))
        except asyncio.CancelledError:
            raise
        except Exception as e:  # missing file, no such buffer, the client gone
            log.info("fs/read_text_file %s: %s", path, e)
            return None
        return normalized(answer.content)


__all__ = ["ClientDocuments", "disk_text", "normalized"]
