"""Open documents as the agent sees them, on top of pygls' workspace.

Implements the ``Documents`` port (buffer text and version, unsaved edits included), the
``DiskState`` the proposal service needs (does an open buffer hold unsaved user edits?) and
its ``ChangeWatch`` (wait for the ``didChange`` that follows an edit; let a debounced one
arrive first).

Deterministic: until the disk has been read (in a tracked background task), the text the
editor opened the document with stands for the disk. Whoever needs the real answer awaits
``ready(path)`` first.
"""

from __future__ import annotations

import asyncio
import functools
import logging
import time
from pathlib import Path

from lsprotocol import types as lsp
from pygls.uris import from_fs_path, to_fs_path
from pygls.workspace import TextDocument
from pygls.workspace import Workspace as PyglsWorkspace

from codeloop.core.ports import OpenDocument
from codeloop.core.tasks import Tasks

log = logging.getLogger(__name__)


@functools.lru_cache(maxsize=4096)
def uri_to_path(uri: str) -> Path | None:
    """The resolved path of a file URI (cached: resolving costs a system call per component,
    and every request names its document)."""
    try:
        fs = to_fs_path(uri)
        return Path(fs).resolve() if fs else None
    except (ValueError, OSError):
        return None


class FastTextDocument(TextDocument):
    """pygls' document with an incremental change applied by slicing the text (pygls walks
    and rewrites every line: 20-40 ms per keystroke in a 20,000-line file, during which no
    request is answered). The same lines, positions and clamping as pygls'."""

    def _apply_incremental_change(self, change: lsp.TextDocumentContentChangePartial) -> None:
        source = self.source
        lines = source.splitlines(True)  # pygls' own line split, so positions mean the same
        rng = self._position_codec.range_from_client_units(lines, change.range)
        start_line, start_col = rng.start.line, rng.start.character
        end_line, end_col = rng.end.line, rng.end.character
        if start_line == len(lines):  # an edit at the very end of the file
            self._source = source + change.text
            return
        if start_line > len(lines) or end_line < start_line:
            return  # pygls' walk never reaches the start: the text is dropped, nothing changes
        tail = lines[end_line][end_col:] if end_line < len(lines) else ""
        self._source = "".join(
            ("".join(lines[:start_line]), lines[start_line][:start_col], change.text, tail, "".join(lines[end_line + 1:]))
        )


def use_fast_documents(workspace: PyglsWorkspace) -> None:
    """Make ``workspace`` create ``FastTextDocument``s (pygls has no option for the class)."""
    original = workspace._create_text_document

    def create(doc_uri: str, source: str | None = None, version: int | None = None,
               language_id: str | None = None) -> TextDocument:
        doc = original(doc_uri, source=source, version=version, language_id=language_id)
        doc.__class__ = FastTextDocument
        return doc

    workspace._create_text_document = create  # type: ignore[method-assign]


def path_to_uri(path: Path) -> str:
    return from_fs_path(str(path)) or path.as_uri()


def _read(path: Path) -> str | None:
    try:
        return path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError):
        return None


class EditorDocuments:
    def __init__(self, workspace: PyglsWorkspace, tasks: Tasks) -> None:
        self.workspace = workspace
        self.tasks = tasks
        self._disk: dict[Path, str | None] = {}  # the text known to be on disk, per open path
        self._reads: dict[Path, asyncio.Task[None]] = {}
        self._by_path: dict[Path, str] = {}  # path -> uri
        self._changed: dict[Path, asyncio.Event] = {}
        self._last_change: dict[Path, float] = {}

    # -- lifecycle, driven by the handlers ---------------------------------------

    def opened(self, uri: str, text: str) -> None:
        path = uri_to_path(uri)
        if path is None:
            return
        self._by_path[path] = uri
        self._disk[path] = text  # until the read below says otherwise
        self._reads[path] = self.tasks.spawn(self._read_disk(path), f"read {path.name} from disk")

    async def _read_disk(self, path: Path) -> None:
        text = await asyncio.to_thread(_read, path)
        if path in self._by_path and path in self._reads:
            self._disk[path] = text
            self._reads.pop(path, None)

    def changed(self, uri: str) -> None:
        path = uri_to_path(uri)
        if path is None:
            return
        self._last_change[path] = time.monotonic()
        event = self._changed.pop(path, None)
        if event is not None:
            event.set()

    def saved(self, uri: str, text: str | None) -> None:
        path = uri_to_path(uri)
        if path is None:
            return
        if text is None:
            doc = self.workspace.text_documents.get(uri)
            text = doc.source if doc is not None else None
        self._reads.pop(path, None)
        self._disk[path] = text

    def closed(self, uri: str) -> None:
        path = uri_to_path(uri)
        if path is not None:
            self._by_path.pop(path, None)
            self._disk.pop(path, None)
            self._last_change.pop(path, None)
            read = self._reads.pop(path, None)
            if read is not None:
                read.cancel()

    async def ready(self, path: Path | None = None) -> None:
        """Returns once the disk text of ``path`` (of every open document: None) is known."""
        reads = [self._reads[path]] if path is not None and path in self._reads else (
            list(self._reads.values()) if path is None else []
        )
        if reads:
            await asyncio.gather(*(asyncio.shield(r) for r in reads), return_exceptions=True)

    # -- the Documents port ------------------------------------------------------

    def get(self, path: Path) -> OpenDocument | None:
        uri = self._by_path.get(path)
        if uri is None:
            return None
        doc = self.workspace.text_documents.get(uri)
        if doc is None:
            return None
        text = doc.source
        return OpenDocument(path, text, doc.version or 0, doc.language_id or "", self._dirty(path, text))

    def open_documents(self) -> list[OpenDocument]:
        out = []
        for path in list(self._by_path):
            doc = self.get(path)
            if doc is not None:
                out.append(doc)
        return out

    def uri(self, path: Path) -> str:
        return self._by_path.get(path) or path_to_uri(path)

    def is_open(self, path: Path) -> bool:
        return path in self._by_path

    # -- DiskState -----------------------------------------------------------------

    def _dirty(self, path: Path, text: str) -> bool:
        return self._disk.get(path) != text

    def is_dirty(self, path: Path) -> bool:
        doc = self.get(path)
        return doc is not None and doc.dirty

    def mark_saved(self, path: Path, text: str) -> None:
        if path in self._by_path:
            self._reads.pop(path, None)
            self._disk[path] = text

    # -- ChangeWatch -----------------------------------------------------------------

    async def changed_since(self, path: Path, version: int | None, timeout: float) -> bool:
        """Waits until the document's version moves past ``version``. False on timeout."""
        deadline = time.monotonic() + timeout
        while True:
            doc = self.get(path)
            if doc is None:
                return False
            if version is None or doc.version > version:
                return True
            left = deadline - time.monotonic()
            if left <= 0:
                return False
            event = self._changed.setdefault(path, asyncio.Event())
            try:
                await asyncio.wait_for(event.wait(), left)
            except asyncio.TimeoutError:
                return False

    async def quiet(self, path: Path, seconds: float, at_most: float = 2.0) -> None:
        """Waits until ``seconds`` pass without a didChange of ``path`` (from now, at most
        ``at_most``): a keystroke the client is still debouncing arrives first."""
        since = time.monotonic()
        while True:
            last = max(since, self._last_change.get(path, since))
            wait = min(last + seconds, since + at_most) - time.monotonic()
            if wait <= 0:
                return
            await asyncio.sleep(wait)
