"""Diagnostics for the agent: where they come from, and what its edits broke.

Two sources, in order:

1. The editor. A client announcing ``experimental.codeloop.diagnostics`` (the VS
   Code extension) answers ``codeloop/diagnostics/get`` with what every language
   server it runs reports (``vscode.languages.getDiagnostics``), plus the version
   of each document.
2. A check command, for clients that forward nothing (and the headless CLI): the
   ``checkCommand`` setting, a shell command with a ``{file}`` placeholder (the
   quoted path is appended when there is none), run in the workspace root. Without
   it, ``.py`` files are checked with ``python -m pyflakes {file}`` when pyflakes
   is importable by the server's Python; other files get nothing. Output lines
   ``path:line:col: message`` (or ``path:line: message``) are parsed; a leading
   ``error:``/``warning:``/``note:`` sets the severity, anything else is an error.

After an accepted edit lands, :meth:`DiagnosticsService.check_edit` compares the
diagnostics after it with a snapshot taken just before, and reports the errors
that appeared in or near the changed lines (and, separately, new errors
elsewhere in the same file) so the model can fix its own breakage.

No pygls or lsprotocol here: the editor is reached through ``EditorDiagnostics``.
"""

from __future__ import annotations

import asyncio
import dataclasses
import functools
import importlib.util
import logging
import os
import re
import shlex
import signal
import sys
import tempfile
import time
from collections import Counter
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol

from codeloop.core.ports import CommandSandbox, DiagnosticInfo, Documents, SandboxRefused
from codeloop.edits.diff import compute_hunks

log = logging.getLogger(__name__)

#: Lines around a change whose errors count as "in the edited range".
MARGIN = 2
#: How many diagnostics one report lists per file and kind.
REPORT_LIMIT = 10

_LINE_RE = re.compile(r"^(?P<path>[^:\n][^:\n]*?):(?P<line>\d+):(?:(?P<col>\d+):)?\s*(?P<message>\S.*)$")
_SEVERITY_PREFIX = re.compile(r"^(?P<sev>error|warning|warn|note|info|hint)\s*:\s*", re.IGNORECASE)
_ARROW_RE = re.compile(r"^-->\s*(?P<where>\S.*?:\d+(?::\d+)?)\s*$")
_CODE_RE = re.compile(r"^([A-Z]{1,4}\d{2,5}):?\s+(?:\[\*\]\s+)?(\S.*)$")
_SEVERITIES = {"error": "error", "warning": "warning", "warn": "warning", "note": "information", "info": "information", "hint": "hint"}


class EditorDiagnostics(Protocol):
    """What the service needs from the editor (implemented by ``codeloop.lsp.client.EditorClient``)."""

    @property
    def forwards_diagnostics(self) -> bool: ...

    async def editor_diagnostics(
        self, paths: list[Path]
    ) -> tuple[dict[Path, list[DiagnosticInfo]], dict[Path, int | None]]:
        """(diagnostics per path, the document version the editor holds per path, None if unknown)."""
        ...


# -- parsing check-command output ---------------------------------------------------


def parse_check_output(output: str, cwd: Path, paths: dict[Path, Path]) -> dict[Path, list[DiagnosticInfo]]:
    """Diagnostics from ``path:line[:col]: message`` lines.

    ``paths`` maps the resolved path a line may name (the file checked, possibly a
    temporary copy) to the path to report it under. Lines naming other files, and
    anything that is not such a line (source excerpts, carets, summaries), are ignored.
    Lines and columns in the output are 1-based; DiagnosticInfo is 0-based.
    """
    out: dict[Path, list[DiagnosticInfo]] = {p: [] for p in paths.values()}
    cache: dict[str, Path | None] = {}
    previous = ""
    for raw in output.splitlines():
        stripped = raw.strip()
        arrow = _ARROW_RE.match(stripped)
        if arrow is not None and previous:
            # rustc-style (ruff's default "full" format): "F401 [*] message" then " --> path:line:col".
            m = _LINE_RE.match(f"{arrow.group('where')}: {previous}")
        else:
            m = _LINE_RE.match(stripped)
        if stripped:
            previous = stripped
        if m is None:
            continue
        name = m.group("path").strip()
        if name not in cache:
            try:
                candidate = Path(name) if os.path.isabs(name) else cwd / name
                cache[name] = paths.get(Path(os.path.realpath(candidate)))
            except (OSError, ValueError):
                cache[name] = None
        target = cache[name]
        if target is None:
            continue
        line = max(int(m.group("line")) - 1, 0)
        col = max(int(m.group("col")) - 1, 0) if m.group("col") else 0
        message = m.group("message").strip()
        severity = "error"
        sev = _SEVERITY_PREFIX.match(message)
        if sev is not None:
            severity = _SEVERITIES[sev.group("sev").lower()]
            message = message[sev.end() :].strip() or message
        code = ""
        code_m = _CODE_RE.match(message)  # ruff/flake8/pylint: "F401 [*] `os` imported ...", "W0611: Unused ..."
        if code_m is not None:
            code, message = code_m.group(1), code_m.group(2)
        out[target].append(
            DiagnosticInfo(target, line, col, line, col, severity, message, "", code)  # type: ignore[arg-type]
        )
    return out


# -- the "new errors" comparison ------------------------------------------------------


def _key(d: DiagnosticInfo) -> tuple[str, str, str]:
    return (d.source, d.code, " ".join(d.message.split()))


def _in(line: int, ranges: list[tuple[int, int]]) -> bool:
    return any(lo <= line < hi for lo, hi in ranges)


def _minus(after: list[DiagnosticInfo], before: list[DiagnosticInfo]) -> list[DiagnosticInfo]:
    """The diagnostics of ``after`` not matched by one of ``before`` with the same key (a multiset difference)."""
    left = Counter(_key(d) for d in before)
    out = []
    for d in after:
        k = _key(d)
        if left[k] > 0:
            left[k] -= 1
        else:
            out.append(d)
    return out


@dataclass(slots=True)
class NewErrors:
    path: Path
    in_edit: list[DiagnosticInfo] = field(default_factory=list)
    elsewhere: list[DiagnosticInfo] = field(default_factory=list)

    def __bool__(self) -> bool:
        return bool(self.in_edit or self.elsewhere)


def new_errors(
    path: Path,
    before_text: str,
    after_text: str,
    before: list[DiagnosticInfo],
    after: list[DiagnosticInfo],
    margin: int = MARGIN,
) -> NewErrors:
    """Errors after an edit that were not there before it.

    ``in_edit``: errors within ``margin`` lines of a changed range of the new text,
    not matched (by source, code and message) by an error near the same range
    before. ``elsewhere``: errors in unchanged code, not matched by one in
    unchanged code before (e.g. callers of a function the edit renamed). Lines
    that moved keep their errors' keys, so moving code reports nothing.
    """
    hunks = compute_hunks(before_text, after_text)
    new_ranges = [(max(h.new_start - margin, 0), h.new_end + margin + (0 if h.new_lines else 1)) for h in hunks]
    old_ranges = [(max(h.old_start - margin, 0), h.old_end + margin + (0 if h.old_lines else 1)) for h in hunks]
    errs_after = sorted((d for d in after if d.severity == "error"), key=lambda d: (d.line, d.character))
    errs_before = sorted((d for d in before if d.severity == "error"), key=lambda d: (d.line, d.character))
    after_in = [d for d in errs_after if _in(d.line, new_ranges)]
    after_out = [d for d in errs_after if not _in(d.line, new_ranges)]
    before_in = [d for d in errs_before if _in(d.line, old_ranges)]
    before_out = [d for d in errs_before if not _in(d.line, old_ranges)]
    return NewErrors(path, _minus(after_in, before_in), _minus(after_out, before_out))


def format_diagnostic(rel: str, d: DiagnosticInfo) -> str:
    tag = " ".join(x for x in (d.source, d.code) if x)
    return f"{rel}:{d.line + 1}:{d.character + 1}: {d.severity}: {d.message}" + (f" [{tag}]" if tag else "")


def render_report(found: list[NewErrors], rel: Callable[[Path], str], checked: list[str]) -> str:
    """The text appended to an edit's tool result. Empty when nothing was checked."""
    if not checked:
        return ""
    found = [f for f in found if f]
    if not found:
        return f"Diagnostics after the edit ({', '.join(checked)}): no new errors."
    lines = ["Diagnostics after the edit: NEW ERRORS. Fix them before you say you are done."]
    for f in found:
        name = rel(f.path)
        for label, items in (("in the lines you changed", f.in_edit), ("elsewhere in the file, probably caused by the edit", f.elsewhere)):
            if not items:
                continue
            lines.append(f"{name}: {len(items)} new error(s) {label}:")
            lines += [f"  {format_diagnostic(name, d)}" for d in items[:REPORT_LIMIT]]
            if len(items) > REPORT_LIMIT:
                lines.append(f"  … and {len(items) - REPORT_LIMIT} more")
    return "\n".join(lines)


# -- the service ------------------------------------------------------------------------


@dataclass(slots=True)
class Snapshot:
    """Diagnostics just before an edit lands (only for paths that have a source)."""

    texts: dict[Path, str]
    diagnostics: dict[Path, list[DiagnosticInfo]]
    sources: dict[Path, str]  # path -> "editor" | the command's name


@functools.lru_cache(maxsize=1)
def _has_pyflakes() -> bool:
    return importlib.util.find_spec("pyflakes") is not None  # a file-system search: once


def default_check_command(path: Path) -> str | None:
    """The command used when the editor forwards nothing and no ``checkCommand`` is set."""
    if path.suffix == ".py" and _has_pyflakes():
        return f"{shlex.quote(sys.executable)} -m pyflakes {{file}}"
    return None


@functools.lru_cache(maxsize=64)
def _command_name(template: str) -> str:
    try:
        parts = shlex.split(template)
    except ValueError:
        parts = template.split()
    words = [p for p in parts if p != "{file}"]
    if len(words) >= 3 and words[1] == "-m":
        return words[2]
    return os.path.basename(words[0]) if words else "check command"


class DiagnosticsService:
    """A ``DiagnosticsSource`` (editor first, then a check command) and the after-edit check."""

    def __init__(
        self,
        root: Path,
        *,
        editor: EditorDiagnostics | None = None,
        documents: Documents | None = None,
        check_command: Callable[[], str | None] | str | None = None,
        use_default_command: bool = True,
        quiet_after: float = 0.75,
        max_wait: float = 2.0,
        poll_interval: float = 0.15,
        command_timeout: float = 30.0,
        sandbox: CommandSandbox | Callable[[], CommandSandbox | None] | None = None,
    ) -> None:
        self.root = Path(root).resolve()
        self._sandbox = sandbox  # the check command runs in it, like the agent's commands
        self.editor = editor
        self.documents = documents
        self._check_command = check_command
        self.use_default_command = use_default_command
        self.quiet_after = quiet_after
        self.max_wait = max_wait
        self.poll_interval = poll_interval
        self.command_timeout = command_timeout
        self._sem = asyncio.Semaphore(2)

    # -- which source ---------------------------------------------------------------

    @property
    def from_editor(self) -> bool:
        return self.editor is not None and bool(self.editor.forwards_diagnostics)

    def command_for(self, path: Path) -> str | None:
        configured = self._check_command() if callable(self._check_command) else self._check_command
        if configured and configured.strip():
            return configured
        return default_check_command(path) if self.use_default_command else None

    def source_for(self, path: Path) -> str | None:
        """"editor", the name of the check command, or None when nothing reports on ``path``."""
        if self.from_editor:
            return "editor"
        command = self.command_for(path)
        return _command_name(command) if command else None

    def describe(self) -> str:
        if self.from_editor:
            return "the editor's language servers"
        configured = self._check_command() if callable(self._check_command) else self._check_command
        if configured:
            return f"the check command {configured!r}"
        if self.use_default_command and _has_pyflakes():
            return "pyflakes (for .py files)"
        return "nothing (no check command configured)"

    # -- the DiagnosticsSource port ----------------------------------------------------

    async def diagnostics(self, paths: list[Path]) -> dict[Path, list[DiagnosticInfo]]:
        """Diagnostics per path; a path missing from the result has no source (unknown)."""
        if not paths:
            return {}
        if self.from_editor:
            diags, _ = await self._from_editor(paths)
            return diags
        results = await asyncio.gather(*(self._from_command(p) for p in paths))
        return {p: r for p, r in zip(paths, results) if r is not None}

    async def _from_editor(self, paths: list[Path]) -> tuple[dict[Path, list[DiagnosticInfo]], dict[Path, int | None]]:
        assert self.editor is not None
        try:
            diags, versions = await self.editor.editor_diagnostics(paths)
        except asyncio.CancelledError:
            raise
        except Exception as e:
            log.warning("the editor could not give diagnostics: %s", e)
            return {}, {}
        # The editor answers for every path it was asked about; no entry means none.
        return {p: list(diags.get(p, [])) for p in paths}, versions

    async def _from_command(self, path: Path) -> list[DiagnosticInfo] | None:
        template = self.command_for(path)
        if template is None:
            return None
        buffer = self.documents.get(path) if self.documents is not None else None
        async with self._sem:
            if buffer is not None:
                try:
                    disk = await asyncio.to_thread(path.read_text, encoding="utf-8")
                except (OSError, UnicodeDecodeError):
                    disk = None
                if disk != buffer.text:
                    # Unsaved edits: check a copy of the buffer, report under the real path.
                    with tempfile.TemporaryDirectory(prefix="codeloop-check-") as tmp:
                        copy = Path(tmp) / path.name
                        await asyncio.to_thread(copy.write_text, buffer.text, encoding="utf-8")
                        return await self._run(template, copy, path)
            if not path.exists():
                return []
            return await self._run(template, path, path)

    async def _run(self, template: str, target: Path, report_as: Path) -> list[DiagnosticInfo] | None:
        quoted = shlex.quote(str(target))
        command = template.replace("{file}", quoted) if "{file}" in template else f"{template} {quoted}"
        sandbox = self._sandbox() if callable(self._sandbox) and not isinstance(self._sandbox, CommandSandbox) \
            else self._sandbox
        plan = None
        argv, env = ["/bin/sh", "-c", command], None
        if sandbox is not None:
            try:  # the copy of an unsaved buffer lives outside the workspace: readable
                plan = await asyncio.to_thread(sandbox.prepare, argv, self.root, None, readable=[target.parent])
            except SandboxRefused as e:
                log.warning("check command %r not run: %s", command, str(e).splitlines()[0])
                return None
            argv, env = list(plan.argv), dict(plan.env)
        try:
            proc = await asyncio.create_subprocess_exec(
                *argv,
                cwd=plan.cwd if plan is not None else self.root,
                env=env,
                pass_fds=plan.pass_fds if plan is not None else (),
                stdin=asyncio.subprocess.DEVNULL,
                stdout=asyncio.subprocess.PIPE,
                stderr=asyncio.subprocess.STDOUT,
                start_new_session=True,
            )
        except OSError as e:
            log.warning("check command %r could not start: %s", command, e)
            if plan is not None:
                plan.cleanup()
            return None
        try:
            return await self._finish(proc, command, target, report_as)
        finally:
            if plan is not None:
                await asyncio.shield(asyncio.to_thread(plan.cleanup))

    async def _finish(self, proc: asyncio.subprocess.Process, command: str, target: Path,
                      report_as: Path) -> list[DiagnosticInfo] | None:
        try:
            out, _ = await asyncio.wait_for(proc.communicate(), self.command_timeout)
        except asyncio.TimeoutError:
            await _kill(proc)
            log.warning("check command %r timed out after %ss", command, self.command_timeout)
            return None
        except asyncio.CancelledError:
            await _kill(proc)
            raise
        text = out.decode("utf-8", errors="replace")
        if proc.returncode in (126, 127):
            log.warning("check command %r failed (exit %s): %s", command, proc.returncode, text.strip()[:200])
            return None
        resolved = {Path(os.path.realpath(target)): report_as}
        if len(text) < 20_000:
            return parse_check_output(text, self.root, resolved).get(report_as, [])
        # A long report (thousands of lines) is parsed off the event loop.
        parsed = await asyncio.to_thread(parse_check_output, text, self.root, resolved)
        return parsed.get(report_as, [])

    # -- before and after an edit ----------------------------------------------------------

    def has_source(self, paths: Iterable[Path]) -> bool:
        return any(self.source_for(p) for p in paths)

    async def snapshot(self, texts: dict[Path, str]) -> Snapshot:
        """Diagnostics of ``texts`` (path -> the text it holds now) before an edit lands."""
        sources = {p: s for p in texts if (s := self.source_for(p)) is not None}
        if not sources:
            return Snapshot(dict(texts), {}, {})
        existing = [p for p in sources if texts[p] != "" or p.exists()]
        diags = await self.diagnostics(existing) if existing else {}
        return Snapshot(dict(texts), {p: diags.get(p, []) for p in sources}, sources)

    async def check_edit(self, before: Snapshot, after_texts: dict[Path, str]) -> list[NewErrors]:
        """New errors in the files an edit changed; ``after_texts`` is what each holds now."""
        paths = [p for p in after_texts if p in before.sources]
        if not paths:
            return []
        if self.from_editor:
            after = await self._settled(paths, before, self._expected_versions(paths))
        else:
            after = await self.diagnostics(paths)
        found = []
        for p in paths:
            if p not in after:
                continue
            found.append(new_errors(p, before.texts.get(p, ""), after_texts[p], before.diagnostics.get(p, []), after[p]))
        return found

    async def report(self, before: Snapshot, after_texts: dict[Path, str], rel: Callable[[Path], str]) -> str:
        """``check_edit`` rendered for the model; "" when no source covers these files."""
        try:
            found = await self.check_edit(before, after_texts)
        except asyncio.CancelledError:
            raise
        except Exception:
            log.exception("checking diagnostics after an edit failed")
            return ""
        checked = sorted({before.sources[p] for p in after_texts if p in before.sources})
        return render_report(found, rel, checked)

    def _expected_versions(self, paths: list[Path]) -> dict[Path, int]:
        out: dict[Path, int] = {}
        if self.documents is None:
            return out
        for p in paths:
            doc = self.documents.get(p)
            if doc is not None:
                out[p] = doc.version
        return out

    async def _settled(self, paths: list[Path], before: Snapshot, expected: dict[Path, int]) -> dict[Path, list[DiagnosticInfo]]:
        """Poll the editor until its diagnostics reflect the edit, within ``max_wait``.

        Other language servers need a moment to re-check a changed document, and the
        editor cannot say which version its diagnostics belong to. So: once the editor
        holds the edited version, diagnostics that differ from the snapshot and then stay
        the same for one poll are taken as settled; if nothing differs by
        ``quiet_after`` the edit is taken to have changed nothing.
        """

        def shape(d: dict[Path, list[DiagnosticInfo]]) -> dict[Path, list[tuple]]:
            return {p: sorted((x.line, x.character, x.severity, x.message, x.source, x.code) for x in d.get(p, [])) for p in paths}

        start = time.monotonic()
        was = shape(before.diagnostics)
        last: dict[Path, list[tuple]] | None = None
        while True:
            diags, versions = await self._from_editor(paths)
            elapsed = time.monotonic() - start
            now = shape(diags)
            current = all(versions.get(p) is None or p not in expected or (versions[p] or 0) >= expected[p] for p in paths)
            if current:
                changed = now != was
                if changed and last == now:
                    return diags
                if not changed and elapsed >= self.quiet_after:
                    return diags
            if elapsed >= self.max_wait:
                return diags
            last = now if current else None
            await asyncio.sleep(self.poll_interval)


async def _kill(proc: asyncio.subprocess.Process) -> None:
    try:
        os.killpg(proc.pid, signal.SIGKILL)
    except (ProcessLookupError, PermissionError):
        pass
    try:
        await asyncio.wait_for(proc.wait(), 5)
    except (asyncio.TimeoutError, asyncio.CancelledError):
        pass


# -- the headless host -----------------------------------------------------------------


def _read_texts(paths: list[Path]) -> dict[Path, str]:
    out: dict[Path, str] = {}
    for p in paths:
        try:
            out[p] = p.read_text(encoding="utf-8", errors="replace")
        except OSError:
            out[p] = ""
    return out


class CheckedApplier:
    """A ChangeApplier that, once the inner one has landed a change on disk, checks the
    changed files (with the service's check command: the CLI has no editor) and tells
    the model about new errors, as proposals do in the editor."""

    def __init__(self, inner: Any, checker: DiagnosticsService, rel: Callable[[Path], str]) -> None:
        self.inner = inner
        self.checker = checker
        self.rel = rel

    async def apply(self, changes: Any) -> Any:
        paths = [c.path for c in changes.changes]
        if not paths or not self.checker.has_source(paths):
            return await self.inner.apply(changes)
        snapshot = await self.checker.snapshot(await asyncio.to_thread(_read_texts, paths))
        outcome = await self.inner.apply(changes)
        if not outcome.landed:
            return outcome
        found = await self.checker.report(snapshot, await asyncio.to_thread(_read_texts, paths), self.rel)
        if not found:
            return outcome
        return dataclasses.replace(outcome, message=f"{outcome.message}\n{found}")
