"""Open documents as the agent sees them, on top of pygls' workspace.

Implements the ``Documents`` port (buffer text and version, unsaved edits
included) and the ``DiskState`` the proposal service needs (does an open buffer
hold unsaved user edits?).
"""

from __future__ import annotations

import asyncio
import logging
from pathlib import Path

from pygls.uris import from_fs_path, to_fs_path
from pygls.workspace import Workspace as PyglsWorkspace

from codeloop.core.ports import OpenDocument

log = logging.getLogger(__name__)


def uri_to_path(uri: str) -> Path | None:
    fs = to_fs_path(uri)
    return Path(fs).resolve() if fs else None


def path_to_uri(path: Path) -> str:
    return from_fs_path(str(path)) or path.as_uri()


class EditorDocuments:
    def __init__(self, workspace: PyglsWorkspace) -> None:
        self.workspace = workspace
        self._disk: dict[Path, str | None] = {}  # the text last known on disk, per open path
        self._by_path: dict[Path, str] = {}  # path -> uri

    # -- lifecycle, driven by the handlers ---------------------------------------

    def opened(self, uri: str) -> None:
        path = uri_to_path(uri)
        if path is None:
            return
        self._by_path[path] = uri
        self._disk.pop(path, None)
        asyncio.get_running_loop().create_task(self._read_disk(path))

    async def _read_disk(self, path: Path) -> None:
        try:
            text: str | None = await asyncio.to_thread(path.read_text, encoding="utf-8")
        except (OSError, UnicodeDecodeError):
            text = None
        if path in self._by_path:
            self._disk[path] = text

    def saved(self, uri: str, text: str | None) -> None:
        path = uri_to_path(uri)
        if path is None:
            return
        if text is None:
            doc = self.workspace.text_documents.get(uri)
            text = doc.source if doc is not None else None
        self._disk[path] = text

    def closed(self, uri: str) -> None:
        path = uri_to_path(uri)
        if path is not None:
            self._by_path.pop(path, None)
            self._disk.pop(path, None)

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

    # -- DiskState -----------------------------------------------------------------

    def _dirty(self, path: Path, text: str) -> bool:
        if path not in self._disk:
            return False  # not read yet: assume the editor opened it from disk
        return self._disk[path] != text

    def is_dirty(self, path: Path) -> bool:
        doc = self.get(path)
        return doc is not None and doc.dirty

    def mark_saved(self, path: Path, text: str) -> None:
        if path in self._by_path:
            self._disk[path] = text
