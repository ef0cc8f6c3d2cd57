"""Applying and saving edits (the apply/save half of the ``EditorPort``): one
``workspace/applyEdit`` per change, versioned minimal TextEdits; ``codeloop/document/save``
for a client that can save (VS Code), else the proposal service writes clean files itself."""

from __future__ import annotations

import logging
from collections.abc import Callable
from pathlib import Path
from typing import Any

from lsprotocol import types as lsp
from pydantic import ValidationError

from codeloop.edits.textedits import TextEdit
from codeloop.lsp import methods as M
from codeloop.lsp import wire
from codeloop.lsp.connection import ClientFeatures, Connection
from codeloop.services.proposals import ApplyResult, CreateOp, FileOp

log = logging.getLogger(__name__)

#: Seconds a plain client's didChange may lag behind a keystroke (Neovim debounces 150 ms).
PLAIN_CHANGE_SETTLE = 0.2


def to_lsp_edit(e: TextEdit) -> lsp.TextEdit:
    return lsp.TextEdit(
        range=lsp.Range(
            start=lsp.Position(line=e.start.line, character=e.start.character),
            end=lsp.Position(line=e.end.line, character=e.end.character),
        ),
        new_text=e.new_text,
    )


def workspace_edit(ops: list[FileOp], uri_of: Callable[[Path], str]) -> lsp.WorkspaceEdit:
    changes: list[Any] = []
    for op in ops:
        uri = uri_of(op.path)
        if isinstance(op, CreateOp):
            changes.append(lsp.CreateFile(uri=uri, options=lsp.CreateFileOptions(overwrite=False, ignore_if_exists=True)))
        else:
            changes.append(
                lsp.TextDocumentEdit(
                    text_document=lsp.OptionalVersionedTextDocumentIdentifier(uri=uri, version=op.version),
                    edits=[to_lsp_edit(e) for e in op.edits],
                )
            )
    return lsp.WorkspaceEdit(document_changes=changes)


class LspEditing:
    def __init__(self, conn: Connection, uri_of: Callable[[Path], str], features: ClientFeatures) -> None:
        self.conn = conn
        self.uri_of = uri_of
        self.features = features

    @property
    def can_apply(self) -> bool:
        return self.features.apply_edit

    @property
    def can_save(self) -> bool:
        return self.features.save

    @property
    def change_settle(self) -> float:
        # A codeloop-aware client sends didChange at once; any other may debounce it.
        return 0.0 if self.features.events else PLAIN_CHANGE_SETTLE

    async def apply(self, ops: list[FileOp], label: str) -> ApplyResult:
        applied, reason = await self.conn.apply_edit(workspace_edit(ops, self.uri_of), label)
        return ApplyResult(applied, reason)

    async def save(self, paths: list[Path]) -> list[Path]:
        if not self.features.save:
            return []
        uris = {self.uri_of(p): p for p in paths}
        try:
            raw = await self.conn.request(M.DOCUMENT_SAVE, wire.DocumentSaveParams(uris=list(uris)))
            result = wire.DocumentSaveResult.model_validate(raw if isinstance(raw, dict) else {})
        except ValidationError as e:
            log.warning("the editor's save answer is malformed: %s", wire.describe(e))
            return []
        except Exception as e:
            log.warning("the editor could not save: %s", e)
            return []
        return [uris[u] for u in result.saved if u in uris]
