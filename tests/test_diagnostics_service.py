"""The diagnostics service: check-command output, the "new errors" comparison, the
editor source's polling, the check-command fallback (real pyflakes, real shell
commands), and the get_diagnostics tool."""

from __future__ import annotations

import asyncio
import shlex
import sys
import time
from pathlib import Path

import pytest

from codeloop.core.ports import DiagnosticInfo, NoDocuments, OpenDocument
from codeloop.services.diagnostics import (
    DiagnosticsService,
    default_check_command,
    new_errors,
    parse_check_output,
    render_report,
)
from codeloop.tools.base import ToolContext
from codeloop.tools.registry import ToolRegistry
from codeloop.tools.diagnostics import GetDiagnostics
from codeloop.tools.processes import ProcessManager
from codeloop.tools.workspace import Workspace

PY = shlex.quote(sys.executable)


def err(path: Path, line: int, message: str, col: int = 0, severity: str = "error", source: str = "ls") -> DiagnosticInfo:
    return DiagnosticInfo(path, line, col, line, col + 1, severity, message, source)  # type: ignore[arg-type]


# -- parsing ---------------------------------------------------------------------------


def test_parse_pyflakes_ruff_and_mypy_lines(tmp_path):
    target = tmp_path / "pkg" / "a.py"
    target.parent.mkdir()
    target.write_text("")
    other = tmp_path / "b.py"
    output = "\n".join(
        [
            f"{target}:1:1: 'os' imported but unused",
            "pkg/a.py:2:5: undefined name 'y'",  # relative to the cwd
            f"{target}:3:7: invalid syntax",
            "def f(:",
            "      ^",
            f"{other}:1:1: not this file",
            "pkg/a.py:4: error: Incompatible types in assignment  [assignment]",
            "pkg/a.py:5: note: See https://example.invalid",
            "pkg/a.py:6:1: F401 [*] `sys` imported but unused",
            # ruff's rustc-style default format
            "E741 Ambiguous variable name: `l`",
            " --> pkg/a.py:7:5",
            "  |",
            "7 | l = 1",
            "  |     ^",
            # pylint
            "pkg/a.py:8:0: W0611: Unused import re (unused-import)",
            "Found 3 errors.",
        ]
    )
    got = parse_check_output(output, tmp_path, {target.resolve(): target})
    assert list(got) == [target]
    rows = [(d.line, d.character, d.severity, d.code, d.message) for d in got[target]]
    assert rows == [
        (0, 0, "error", "", "'os' imported but unused"),
        (1, 4, "error", "", "undefined name 'y'"),
        (2, 6, "error", "", "invalid syntax"),
        (3, 0, "error", "", "Incompatible types in assignment  [assignment]"),
        (4, 0, "information", "", "See https://example.invalid"),
        (5, 0, "error", "F401", "`sys` imported but unused"),
        (6, 4, "error", "E741", "Ambiguous variable name: `l`"),
        (7, 0, "error", "W0611", "Unused import re (unused-import)"),
    ]


def test_parse_ignores_noise_and_reports_a_clean_file_as_empty(tmp_path):
    target = tmp_path / "a.py"
    got = parse_check_output("All checks passed!\n\nwarning: something global\n", tmp_path, {target: target})
    assert got == {target: []}


# -- the comparison ----------------------------------------------------------------------

BEFORE = "".join(f"line{i} = {i}\n" for i in range(30))


def test_an_error_in_the_changed_lines_is_new(tmp_path):
    p = tmp_path / "a.py"
    after = BEFORE.replace("line10 = 10\n", "line10 = y\n")
    found = new_errors(p, BEFORE, after, [], [err(p, 10, "undefined name 'y'", 9)])
    assert [d.message for d in found.in_edit] == ["undefined name 'y'"]
    assert found.elsewhere == []


def test_errors_that_were_there_before_or_just_moved_are_not_reported(tmp_path):
    p = tmp_path / "a.py"
    before_diags = [err(p, 10, "undefined name 'q'"), err(p, 25, "unused variable 'z'")]
    # Insert three lines at the top: every old error moves down by 3, and line 10 is
    # edited without touching its error.
    after = "a = 1\nb = 2\nc = 3\n" + BEFORE.replace("line10 = 10\n", "line10 = 10  # edited\n")
    after_diags = [err(p, 13, "undefined name 'q'"), err(p, 28, "unused variable 'z'")]
    found = new_errors(p, BEFORE, after, before_diags, after_diags)
    assert not found, found


def test_new_errors_elsewhere_are_reported_separately_and_warnings_are_not(tmp_path):
    p = tmp_path / "a.py"
    before = "def greet():\n    pass\n" + "x = 1\n" * 20 + "greet()\n"
    after = before.replace("def greet():", "def hello():")
    after_diags = [err(p, 22, "undefined name 'greet'"), err(p, 0, "shadowed builtin", severity="warning")]
    found = new_errors(p, before, after, [], after_diags)
    assert found.in_edit == []
    assert [(d.line, d.message) for d in found.elsewhere] == [(22, "undefined name 'greet'")]


def test_a_second_identical_error_in_the_edit_counts(tmp_path):
    p = tmp_path / "a.py"
    after = BEFORE.replace("line20 = 20\n", "line20 = y\n")
    before_diags = [err(p, 3, "undefined name 'y'")]
    after_diags = [err(p, 3, "undefined name 'y'"), err(p, 20, "undefined name 'y'")]
    found = new_errors(p, BEFORE, after, before_diags, after_diags)
    assert [d.line for d in found.in_edit] == [20]
    assert found.elsewhere == []


def test_fixing_an_error_reports_nothing_and_the_report_says_so(tmp_path):
    p = tmp_path / "a.py"
    after = BEFORE.replace("line5 = 5\n", "line5 = 6\n")
    found = new_errors(p, BEFORE, after, [err(p, 5, "bad")], [])
    assert not found
    assert render_report([found], lambda q: q.name, ["pyflakes"]) == "Diagnostics after the edit (pyflakes): no new errors."
    assert render_report([found], lambda q: q.name, []) == ""


def test_the_report_names_file_line_and_message(tmp_path):
    p = tmp_path / "a.py"
    found = new_errors(p, "x = 1\n", "x = y\n", [], [err(p, 0, "undefined name 'y'", 4, source="pyright")])
    text = render_report([found], lambda q: q.name, ["editor"])
    assert "NEW ERRORS" in text
    assert "a.py:1:5: error: undefined name 'y' [pyright]" in text


# -- the check-command source -------------------------------------------------------------


@pytest.fixture
def pyfile(tmp_path):
    p = tmp_path / "mod.py"
    p.write_text("import os\n\nx = 1\n")
    return p


def test_default_command_is_pyflakes_for_python_only(tmp_path):
    assert default_check_command(tmp_path / "a.py") is not None
    assert "-m pyflakes" in default_check_command(tmp_path / "a.py")
    assert default_check_command(tmp_path / "a.rs") is None


async def test_pyflakes_fallback_checks_the_disk_file(pyfile, tmp_path):
    svc = DiagnosticsService(tmp_path)
    got = await svc.diagnostics([pyfile, tmp_path / "notes.md"])
    assert list(got) == [pyfile]  # nothing reports on .md: unknown, not "clean"
    assert [(d.line, d.message) for d in got[pyfile]] == [(0, "'os' imported but unused")]
    assert svc.source_for(pyfile) == "pyflakes" and svc.source_for(tmp_path / "notes.md") is None


async def test_unsaved_buffer_is_checked_not_the_disk(pyfile, tmp_path):
    docs = NoDocuments({pyfile: OpenDocument(pyfile, "import os\nprint(os.sep, y)\n", 3, "python", dirty=True)})
    svc = DiagnosticsService(tmp_path, documents=docs)
    got = await svc.diagnostics([pyfile])
    assert [(d.path, d.line, d.message) for d in got[pyfile]] == [(pyfile, 1, "undefined name 'y'")]
    assert pyfile.read_text() == "import os\n\nx = 1\n"  # the disk was not touched


async def test_configured_check_command_with_placeholder_and_without(pyfile, tmp_path):
    script = tmp_path / "lint.py"
    script.write_text(
        "import sys\nfor n, line in enumerate(open(sys.argv[1]), 1):\n"
        "    if 'TODO' in line:\n        print(f'{sys.argv[1]}:{n}:{line.index(\"TODO\") + 1}: warning: TODO left')\n"
    )
    pyfile.write_text("a = 1\nb = 2  # TODO\n")
    for command in (f"{PY} lint.py {{file}}", f"{PY} lint.py"):
        svc = DiagnosticsService(tmp_path, check_command=lambda c=command: c)
        got = await svc.diagnostics([pyfile])
        assert [(d.line, d.character, d.severity, d.message) for d in got[pyfile]] == [(1, 9, "warning", "TODO left")]
    # A path with spaces and quotes is passed as one argument.
    odd = tmp_path / "it's a file.py"
    odd.write_text("# TODO\n")
    svc = DiagnosticsService(tmp_path, check_command=f"{PY} lint.py {{file}}")
    assert [d.line for d in (await svc.diagnostics([odd]))[odd]] == [0]


async def test_a_missing_or_hanging_command_gives_no_diagnostics_and_is_killed(pyfile, tmp_path):
    svc = DiagnosticsService(tmp_path, check_command="no-such-linter-xyz {file}")
    assert await svc.diagnostics([pyfile]) == {}
    from conftest import processes_matching, unique_marker

    marker = unique_marker("31.4159265")
    svc = DiagnosticsService(tmp_path, check_command=f"sleep {marker}; true", command_timeout=0.5)
    t0 = time.monotonic()
    assert await svc.diagnostics([pyfile]) == {}
    assert time.monotonic() - t0 < 5
    await asyncio.sleep(0.2)
    assert processes_matching(marker) == []


async def test_no_source_at_all_without_pyflakes_or_command(tmp_path, pyfile):
    svc = DiagnosticsService(tmp_path, use_default_command=False)
    assert svc.source_for(pyfile) is None and not svc.has_source([pyfile])
    assert await svc.diagnostics([pyfile]) == {}


async def test_check_edit_with_pyflakes_reports_the_new_undefined_name(tmp_path):
    p = tmp_path / "calc.py"
    before = "def add(a, b):\n    return a + b\n"
    p.write_text(before)
    svc = DiagnosticsService(tmp_path)
    snap = await svc.snapshot({p: before})
    after = "def add(a, b):\n    return a + c\n"
    p.write_text(after)
    report = await svc.report(snap, {p: after}, lambda q: q.name)
    assert "NEW ERRORS" in report and "calc.py:2:16: error: undefined name 'c'" in report


# -- the editor source ---------------------------------------------------------------------


class FakeEditor:
    """An editor whose language server republishes ``delay`` seconds after a change."""

    def __init__(self, path: Path, before: list[DiagnosticInfo], after: list[DiagnosticInfo], delay: float, version: int = 2):
        self.path, self.before, self.after, self.delay = path, before, after, delay
        self.changed_at: float | None = None
        self.version = version
        self.calls = 0
        self.forwards_diagnostics = True

    def edit(self) -> None:
        self.changed_at = time.monotonic()

    async def editor_diagnostics(self, paths):
        self.calls += 1
        fresh = self.changed_at is not None and time.monotonic() - self.changed_at >= self.delay
        return {self.path: list(self.after if fresh else self.before)}, {self.path: self.version}


async def test_editor_diagnostics_are_awaited_until_the_language_server_republishes(tmp_path):
    p = tmp_path / "a.py"
    fake = FakeEditor(p, [], [err(p, 0, "undefined name 'y'", 4)], delay=0.4)
    docs = NoDocuments({p: OpenDocument(p, "x = y\n", 2, "python")})
    svc = DiagnosticsService(tmp_path, editor=fake, documents=docs, poll_interval=0.05, quiet_after=1.0, max_wait=3.0)
    snap = await svc.snapshot({p: "x = 1\n"})
    fake.edit()
    t0 = time.monotonic()
    found = await svc.check_edit(snap, {p: "x = y\n"})
    took = time.monotonic() - t0
    assert [d.message for d in found[0].in_edit] == ["undefined name 'y'"]
    assert 0.35 <= took < 1.0, took  # waited for the republish, then settled after one more poll


async def test_editor_without_changes_returns_after_quiet_period_and_waits_for_the_version(tmp_path):
    p = tmp_path / "a.py"
    fake = FakeEditor(p, [], [], delay=0.0, version=1)  # still reports the pre-edit version
    docs = NoDocuments({p: OpenDocument(p, "x = 2\n", 2, "python")})
    svc = DiagnosticsService(tmp_path, editor=fake, documents=docs, poll_interval=0.05, quiet_after=0.3, max_wait=0.8)
    snap = await svc.snapshot({p: "x = 1\n"})
    fake.edit()
    t0 = time.monotonic()
    await svc.check_edit(snap, {p: "x = 2\n"})
    assert 0.75 <= time.monotonic() - t0 < 1.5  # the version never arrived: bounded by max_wait
    fake.version = 2
    t0 = time.monotonic()
    found = await svc.check_edit(snap, {p: "x = 2\n"})
    assert 0.25 <= time.monotonic() - t0 < 0.7  # nothing changed: quiet_after
    assert not found[0]


async def test_an_editor_that_fails_is_not_fatal(tmp_path):
    class Broken:
        forwards_diagnostics = True

        async def editor_diagnostics(self, paths):
            raise RuntimeError("connection lost")

    p = tmp_path / "a.py"
    svc = DiagnosticsService(tmp_path, editor=Broken())
    assert await svc.diagnostics([p]) == {}


# -- the tool -----------------------------------------------------------------------------


def _ctx(tmp_path, diagnostics, docs=None) -> ToolContext:
    return ToolContext(
        workspace=Workspace(tmp_path), changes=None, processes=ProcessManager(),  # type: ignore[arg-type]
        documents=docs or NoDocuments(), diagnostics=diagnostics,
    )


async def _call(ctx, **args):
    registry = ToolRegistry([GetDiagnostics()])
    import json

    parsed = registry.parse("get_diagnostics", json.dumps(args))
    assert not hasattr(parsed, "ok"), parsed
    tool, inp = parsed
    return await registry.run(tool, inp, ctx)


async def test_tool_lists_problems_per_file(tmp_path, pyfile):
    (tmp_path / "b.py").write_text("print(zzz)\n")
    (tmp_path / "c.txt").write_text("hi\n")
    ctx = _ctx(tmp_path, DiagnosticsService(tmp_path))
    result = await _call(ctx, paths=["mod.py", "b.py", "c.txt"])
    assert result.ok, result.text
    assert result.text.splitlines() == [
        "mod.py: 1 problem(s), 1 error(s)",
        "  1:1 error: 'os' imported but unused",
        "b.py: 1 problem(s), 1 error(s)",
        "  1:7 error: undefined name 'zzz'",
        "c.txt: no diagnostics available (no language server or check command covers this file)",
    ]


async def test_tool_errors_are_clear(tmp_path, pyfile):
    ctx = _ctx(tmp_path, None)
    result = await _call(ctx, paths=["mod.py"])
    assert not result.ok and "no diagnostics are available" in result.text
    ctx = _ctx(tmp_path, DiagnosticsService(tmp_path))
    assert "file not found" in (await _call(ctx, paths=["nope.py"])).text
    assert "outside the workspace" in (await _call(ctx, paths=["/etc/passwd"])).text
    assert "no files are open" in (await _call(ctx)).text


async def test_tool_defaults_to_open_documents_and_filters_severity(tmp_path, pyfile):
    docs = NoDocuments({pyfile: OpenDocument(pyfile, "import os\nx = y\n", 2, "python", dirty=True)})
    svc = DiagnosticsService(tmp_path, documents=docs)
    result = await _call(_ctx(tmp_path, svc, docs))
    assert "mod.py: 2 problem(s)" in result.text and "2:5 error: undefined name 'y'" in result.text
    script = tmp_path / "lint.py"
    script.write_text("import sys\nprint(sys.argv[1] + ':1:1: warning: meh')\nprint(sys.argv[1] + ':2:1: error: bad')\n")
    svc = DiagnosticsService(tmp_path, documents=docs, check_command=f"{PY} lint.py {{file}}")
    result = await _call(_ctx(tmp_path, svc, docs), min_severity="error")
    assert result.text.splitlines() == ["mod.py: 1 problem(s), 1 error(s)", "  2:1 error: bad"]
