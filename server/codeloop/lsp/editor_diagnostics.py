"""The editor's own diagnostics (the ``EditorDiagnostics`` port), for a client that forwards
them (``codeloop/diagnostics/get``, VS Code). A plain client forwards none: the
diagnostics service then runs the check command."""

from __future__ import annotations

import logging
from collections.abc import Callable
from pathlib import Path

from pydantic import ValidationError

from codeloop.core.ports import Documents, DiagnosticInfo
from codeloop.lsp import methods as M
from codeloop.lsp import wire
from codeloop.lsp.connection import Connection
from codeloop.lsp.documents import uri_to_path

log = logging.getLogger(__name__)

SEVERITIES = {1: "error", 2: "warning", 3: "information", 4: "hint"}


def to_info(path: Path, d: wire.Diagnostic) -> DiagnosticInfo:
    severity = SEVERITIES.get(d.severity or 1, "error")
    return DiagnosticInfo(
        path=path,
        line=d.range.start.line,
        character=d.range.start.character,
        end_line=d.range.end.line,
        end_character=d.range.end.character,
        severity=severity,  # type: ignore[arg-type]
        message=d.message,
        source=d.source or "",
        code="" if d.code is None else str(d.code),
    )


class ForwardedDiagnostics:
    forwards_diagnostics = True

    def __init__(self, conn: Connection, documents: Documents, uri_of: Callable[[Path], str]) -> None:
        self.conn = conn
        self.documents = documents
        self.uri_of = uri_of

    async def editor_diagnostics(self, paths: list[Path]) -> tuple[dict[Path, list[DiagnosticInfo]], dict[Path, int | None]]:
        uris = {self.uri_of(p): p for p in paths}
        refs = []
        for uri, asked in uris.items():
            doc = self.documents.get(asked)
            refs.append(wire.DocumentRef(uri=uri, version=doc.version if doc else None))
        raw = await self.conn.request(M.DIAGNOSTICS_GET, wire.DiagnosticsGetParams(uris=refs))
        try:
            result = wire.DiagnosticsGetResult.model_validate(raw if isinstance(raw, dict) else {})
        except ValidationError as e:
            log.warning("the editor's diagnostics answer is malformed: %s", wire.describe(e))
            return {}, {}
        entries = result.diagnostics
        if isinstance(entries, list):
            entries = {e.uri: e.diagnostics for e in entries}

        def path_of(uri: str) -> Path | None:
            return uris.get(uri) or uri_to_path(uri)

        out: dict[Path, list[DiagnosticInfo]] = {}
        for uri, items in entries.items():
            path = path_of(uri)
            if path is None:
                continue
            infos = []
            for item in items:
                try:
                    infos.append(to_info(path, wire.Diagnostic.model_validate(item)))
                except ValidationError:
                    continue  # one malformed diagnostic does not hide the others
            out[path] = infos
        versions: dict[Path, int | None] = {}
        for uri, version in (result.versions or {}).items():
            path = path_of(uri)
            if path is not None:
                versions[path] = version
        return out, versions

    async def diagnostics(self, paths: list[Path]) -> dict[Path, list[DiagnosticInfo]]:
        return (await self.editor_diagnostics(paths))[0]


class NoForwardedDiagnostics:
    forwards_diagnostics = False

    async def editor_diagnostics(self, paths: list[Path]) -> tuple[dict[Path, list[DiagnosticInfo]], dict[Path, int | None]]:
        return {}, {}

    async def diagnostics(self, paths: list[Path]) -> dict[Path, list[DiagnosticInfo]]:
        return {}
