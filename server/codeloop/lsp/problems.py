"""codeloop's own view of the problems in open documents, for clients that do not tell it.

Neovim's ``vim.lsp.buf.code_action`` sends a server only the diagnostics *that server*
published (deliberately, since neovim/neovim#30002), so a server that publishes none gets
``"diagnostics": []`` and cannot offer "Fix with codeloop". For a client that does not
forward the editor's diagnostics (``experimental.codeloop.diagnostics``), codeloop checks
each open document itself with the diagnostics service's check command (``checkCommand``, by
default pyflakes for Python), in the background, 0.4 s after the last change, and keeps the
result per document. ``textDocument/codeAction`` reads it: no I/O, no waiting.

Publishing them (``textDocument/publishDiagnostics``) is off by default, so they don't
duplicate the user's own linters (pyright, ruff, nvim-lint already show these problems);
``"publishDiagnostics": true`` turns it on (source ``codeloop: <command>``), e.g. when
codeloop's check command is the only linter.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable
from pathlib import Path

from lsprotocol import types as lsp

from codeloop.core.ports import DiagnosticInfo
from codeloop.lsp.connection import Connection
from codeloop.lsp.documents import EditorDocuments
from codeloop.core.tasks import Tasks
from codeloop.services.diagnostics import DiagnosticsService

log = logging.getLogger(__name__)

#: Seconds after the last change before a document is checked again.
CHECK_DELAY = 0.4

_SEVERITY = {"error": 1, "warning": 2, "information": 3, "hint": 4}


class OwnDiagnostics:
    def __init__(
        self,
        service: DiagnosticsService,
        documents: EditorDocuments,
        tasks: Tasks,
        conn: Connection,
        publish: Callable[[], bool],
        delay: float = CHECK_DELAY,
    ) -> None:
        self.service = service
        self.documents = documents
        self.tasks = tasks
        self.conn = conn
        self.publish = publish
        self.delay = delay
        # path -> (version checked, diagnostics by line)
        self._found: dict[Path, tuple[int, dict[int, list[DiagnosticInfo]]]] = {}
        self._pending: dict[Path, asyncio.Task[None]] = {}
        self._published: set[Path] = set()
        self.checks = 0  # checks run (for tests and the benchmark)

    def schedule(self, path: Path | None, delay: float | None = None) -> None:
        """(Re)check ``path`` after ``delay`` seconds without another change."""
        if path is None or self.service.source_for(path) is None:
            return
        previous = self._pending.pop(path, None)
        if previous is not None:
            previous.cancel()
        self._pending[path] = self.tasks.spawn(self._check(path, self.delay if delay is None else delay), f"check {path.name}")

    async def _check(self, path: Path, delay: float) -> None:
        try:
            await self._run_check(path, delay)
        finally:
            if self._pending.get(path) is asyncio.current_task():
                self._pending.pop(path, None)

    async def _run_check(self, path: Path, delay: float) -> None:
        await asyncio.sleep(delay)
        doc = self.documents.get(path)
        if doc is None:
            return
        found = (await self.service.diagnostics([path])).get(path)
        self.checks += 1
        now = self.documents.get(path)
        if found is None or now is None:
            return
        by_line: dict[int, list[DiagnosticInfo]] = {}
        for d in found:
            for line in range(d.line, min(d.end_line, d.line + 50) + 1):
                by_line.setdefault(line, []).append(d)
        self._found[path] = (doc.version, by_line)
        if self.publish():
            self._published.add(path)
            name = self.service.source_for(path) or "check"
            self.conn.publish_diagnostics(self.documents.uri(path), doc.version, [_to_lsp(d, name) for d in found])
        elif path in self._published:
            self._clear(path)

    def source_name(self, path: Path) -> str | None:
        return self.service.source_for(path)

    def forget(self, path: Path | None) -> None:
        if path is None:
            return
        task = self._pending.pop(path, None)
        if task is not None:
            task.cancel()
        self._found.pop(path, None)
        if path in self._published:
            self._clear(path)

    def _clear(self, path: Path) -> None:
        self._published.discard(path)
        self.conn.publish_diagnostics(self.documents.uri(path), None, [])

    def on_lines(self, path: Path | None, first: int, last: int) -> list[DiagnosticInfo]:
        """The problems last found on lines [first, last] of ``path``. No I/O."""
        if path is None:
            return []
        entry = self._found.get(path)
        if entry is None:
            return []
        by_line = entry[1]
        out: list[DiagnosticInfo] = []
        seen: set[int] = set()
        if last - first > len(by_line):
            lines = sorted(x for x in by_line if first <= x <= last)
        else:
            lines = [x for x in range(first, last + 1) if x in by_line]
        for line in lines:
            for d in by_line[line]:
                if id(d) not in seen:
                    seen.add(id(d))
                    out.append(d)
        return out

    async def settled(self) -> None:
        """Waits for the checks in flight (tests)."""
        while self._pending:
            await asyncio.gather(*list(self._pending.values()), return_exceptions=True)


def _to_lsp(d: DiagnosticInfo, name: str) -> lsp.Diagnostic:
    return lsp.Diagnostic(
        range=lsp.Range(
            start=lsp.Position(line=d.line, character=d.character),
            end=lsp.Position(line=d.end_line, character=max(d.end_character, d.character)),
        ),
        message=d.message,
        severity=lsp.DiagnosticSeverity(_SEVERITY.get(d.severity, 1)),
        source=f"codeloop: {d.source or name}",
        code=d.code or None,
    )
