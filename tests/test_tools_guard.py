"""The workspace guard (hypothesis) and every tool refusing paths outside the root;
registry parsing of malformed calls."""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from codeloop.tools.base import ToolResult
from codeloop.tools.builtin import builtin_registry as default_registry
from codeloop.tools.workspace import PathOutsideWorkspace, Workspace
from test_tools_common import REGISTRY, call, make_ctx

SEGMENTS = ["..", ".", "a", "b", "/", "", "out", "in", "loop", "deep", "~", "a/..", "..."]


@pytest.fixture(scope="module")
def sandbox(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    base = tmp_path_factory.mktemp("guard")
    root = base / "ws"
    outside = base / "outside"
    (root / "a" / "deep").mkdir(parents=True)
    (root / "b").mkdir()
    outside.mkdir()
    (outside / "secret").write_text("s")
    os.symlink(outside, root / "out")  # points out of the root
    os.symlink(outside / "secret", root / "a" / "out")
    os.symlink(root / "b", root / "in")  # points inside
    os.symlink("../../..", root / "a" / "deep" / "up")  # relative, climbs out
    os.symlink("loop", root / "loop")  # a loop
    return root, outside


def _check_inside(resolve, root: Path, parts: list[str], absolute: bool) -> None:  # type: ignore[no-untyped-def]
    raw = "/".join(parts)
    if absolute:
        raw = str(root) + "/" + raw
    try:
        got = resolve(raw)
    except PathOutsideWorkspace:
        return
    real_root = root.resolve()
    assert got == real_root or real_root in got.parents, (raw, got)
    # and what it returns really is inside once every link is followed
    real = Path(os.path.realpath(got))
    assert real == real_root or real_root in real.parents, (raw, got, real)


NO_LOOP = [s for s in SEGMENTS if s != "loop"] + ["up", "deep/up", "a/deep/up"]


@settings(max_examples=400, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(parts=st.lists(st.sampled_from(SEGMENTS), min_size=1, max_size=8), absolute=st.booleans())
def test_resolve_stays_inside_or_raises(sandbox: tuple[Path, Path], parts: list[str], absolute: bool) -> None:
    root, _ = sandbox
    _check_inside(Workspace(root).resolve, root, parts, absolute)


def test_resolve_symlink_loop_escape(sandbox: tuple[Path, Path]) -> None:
    root, _ = sandbox
    _check_inside(Workspace(root).resolve, root, ["loop", "..", "out"], False)


@settings(max_examples=400, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(parts=st.lists(st.sampled_from(SEGMENTS + ["up", "deep/up", "a/deep/up"]), min_size=1, max_size=8), absolute=st.booleans())
def test_tool_guard_stays_inside_or_raises(sandbox: tuple[Path, Path], parts: list[str], absolute: bool) -> None:
    from codeloop.tools.files import guarded_resolve

    root, _ = sandbox
    ctx = make_ctx(root)
    _check_inside(lambda raw: guarded_resolve(ctx, raw), root, parts, absolute)


def test_resolve_examples(sandbox: tuple[Path, Path]) -> None:
    root, outside = sandbox
    ws = Workspace(root)
    for bad in ["../x", "/etc/passwd", "out/secret", "a/out", "a/deep/up/outside", "~"]:
        with pytest.raises(PathOutsideWorkspace):
            ws.resolve(bad)
    assert ws.resolve("in") == (root / "b").resolve()
    assert ws.resolve("a/../b/new.txt") == (root / "b" / "new.txt").resolve()


BAD_PATHS = ["../x", "/etc/passwd", "link/secret", "loop/../link/secret"]


def _calls_for(bad: str) -> list[tuple[str, dict]]:
    return [
        ("read_file", {"path": bad}),
        ("write_file", {"path": bad, "content": "x"}),
        ("edit_file", {"path": bad, "old_string": "a", "new_string": "b"}),
        ("apply_patch", {"patch": f"--- a/{bad}\n+++ b/{bad}\n@@ -1 +1 @@\n-a\n+b\n"}),
        ("apply_patch", {"patch": f"--- /dev/null\n+++ {bad}\n@@ -0,0 +1 @@\n+b\n"}),
        ("grep", {"pattern": "x", "path": bad}),
        ("glob", {"pattern": "*", "path": bad}),
        ("list_dir", {"path": bad}),
        ("run_command", {"command": "true", "cwd": bad}),
        ("run_command", {"command": "true", "cwd": bad, "background": True}),
    ]


@pytest.mark.parametrize("bad", BAD_PATHS)
async def test_every_tool_refuses_outside_paths(tmp_path: Path, bad: str) -> None:
    root = tmp_path / "ws"
    root.mkdir()
    outside = tmp_path / "outside"
    outside.mkdir()
    (outside / "secret").write_text("a\n")
    (tmp_path / "x").write_text("a\n")
    os.symlink(outside, root / "link")
    os.symlink("loop", root / "loop")
    ctx = make_ctx(root)
    try:
        for name, args in _calls_for(bad):
            r = await call(ctx, name, **args)
            assert not r.ok, (name, args, r.text)
            assert "outside the workspace" in r.text, (name, r.text)
    finally:
        await ctx.processes.shutdown()
    assert (outside / "secret").read_text() == "a\n"
    assert (tmp_path / "x").read_text() == "a\n"
    assert sorted(p.name for p in root.iterdir()) == ["link", "loop"]


def test_malformed_calls_become_error_results() -> None:
    r = REGISTRY.parse("read_file", "{not json")
    assert isinstance(r, ToolResult) and not r.ok and "not valid JSON" in r.text
    r = REGISTRY.parse("read_file", "[1, 2]")
    assert isinstance(r, ToolResult) and "JSON object" in r.text
    r = REGISTRY.parse("read_file", json.dumps({"paht": "x"}))
    assert isinstance(r, ToolResult) and "path" in r.text and "invalid arguments" in r.text
    r = REGISTRY.parse("read_file", json.dumps({"path": "x", "offset": 0}))
    assert isinstance(r, ToolResult) and "offset" in r.text
    r = REGISTRY.parse("grep", json.dumps({"pattern": "x", "output_mode": "lines"}))
    assert isinstance(r, ToolResult) and "output_mode" in r.text
    r = REGISTRY.parse("rm_rf", "{}")
    assert isinstance(r, ToolResult) and "unknown tool" in r.text and "read_file" in r.text
    ok = REGISTRY.parse("list_dir", "")
    assert not isinstance(ok, ToolResult)


SELF_DESCRIBING = {
    ("grep", "pattern"), ("grep", "case_insensitive"), ("list_dir", "path"), ("write_file", "content"),
    ("edit_file", "old_string"), ("edit_file", "new_string"), ("edit_file", "replace_all"), ("apply_patch", "patch"),
    ("run_command", "command"), ("read_command_output", "id"), ("kill_process", "id"),
}


def test_registry_and_schemas() -> None:
    names = set(default_registry().names())
    assert names == {
        "read_file", "write_file", "edit_file", "apply_patch", "grep", "glob", "list_dir",
        "run_command", "read_command_output", "kill_process", "get_diagnostics", "todo_write",
    }
    ro = {t.name for t in default_registry().all() if t.read_only}
    assert ro == {"read_file", "grep", "glob", "list_dir", "read_command_output", "get_diagnostics", "todo_write"}
    for schema in default_registry().schemas():
        fn = schema["function"]
        assert fn["description"]
        for name, prop in fn["parameters"].get("properties", {}).items():
            # Every argument is described, unless its name (and the tool's description) says it
            # all: a description that repeats the name costs every request and tells nothing.
            if (fn["name"], name) not in SELF_DESCRIBING:
                assert prop.get("description"), (fn["name"], name, prop)
        json.dumps(schema)


def test_permission_requests(tmp_path: Path) -> None:
    from codeloop.tools.files import EditFile, ReadFile, WriteFile
    from codeloop.tools.search import Grep

    ctx = make_ctx(tmp_path)
    req = ReadFile().permission(ReadFile.Input(path="src/a.py"), ctx)
    assert (req.kind, req.target, req.cwd, req.path) == ("Read", "src/a.py", tmp_path.resolve(), tmp_path.resolve() / "src/a.py")
    assert WriteFile().permission(WriteFile.Input(path="n.txt", content=""), ctx).kind == "Write"
    assert EditFile().permission(EditFile.Input(path="n.txt", old_string="a", new_string="b"), ctx).kind == "Edit"
    req = Grep().permission(Grep.Input(pattern="x", path="../etc"), ctx)
    assert req.kind == "Read" and req.target == "../etc" and req.path is None
