"""``/rewind`` restores through the client when it offers ``fs/*`` (a ``RewindPort``).

The command host cannot ask over ACP (no free-form question): ``/rewind`` lists the
messages, ``/rewind N`` previews, ``/rewind N --yes`` applies (``commands/rewind.py``).

- ``read``: what the user has: the client's text of the file (``fs/read_text_file``: an
  unsaved buffer's), when it differs from the disk's other than by line endings; else
  the disk's bytes.
- ``write``: a text file that exists is written with ``fs/write_text_file`` (the editor's
  buffer follows); a file to create (with its mode) and binary contents go to the disk.
- ``delete``: on disk (ACP has no delete; the editor sees the file go).
"""

from __future__ import annotations

import asyncio
from pathlib import Path

from codeloop.acp.files import ClientDocuments, normalized
from codeloop.acp.link import SessionLink
from codeloop.services.checkpoints import DiskPort


class ClientRewindPort:
    def __init__(self, link: SessionLink, documents: ClientDocuments | None, *, write: bool) -> None:
        self.link = link
        self.documents = documents
        self.write_through = write
        self.disk = DiskPort()

    async def read(self, path: Path) -> bytes | None:
        disk = await self.disk.read(path)
        if self.documents is None:
            return disk
        try:
            on_disk = disk.decode("utf-8") if disk is not None else None
        except UnicodeDecodeError:
            return disk  # binary: the editor has no text of it
        text = await self.documents.read(path)
        if text is None or (on_disk is not None and normalized(on_disk) == text):
            return disk
        return text.encode("utf-8")

    async def write(self, path: Path, content: str | bytes, mode: int | None = None) -> None:
        try:
            if self.write_through and isinstance(content, str) and await asyncio.to_thread(path.is_file):
                await self.link.conn.write_text_file(session_id=self.link.session_id, path=str(path), content=content)
            else:
                await self.disk.write(path, content, mode)
        finally:
            self._forget(path)

    async def delete(self, path: Path) -> None:
        try:
            await self.disk.delete(path)
        finally:
            self._forget(path)

    def _forget(self, path: Path) -> None:
        if self.documents is not None:
            self.documents.forget(path)


__all__ = ["ClientRewindPort"]
