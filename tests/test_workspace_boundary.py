"""The workspace boundary across every tool that takes a path or a pattern (issue 12,
items 7 and 9), driven through the real ToolRegistry (parse + run) on a real Workspace.

The world: a workspace with symlinks pointing out (to a fake home with ``.ssh/id_rsa``,
to another folder, to a key file, relative ones climbing out, a loop), lock files
named like ``~$report.docx``; outside it, files whose names and contents carry
sentinels. The property, for any sequence of calls and folder swaps (a folder
replaced by a symlink between calls, and back):

* nothing outside the root is read or listed: every outside file and folder keeps
  its access time (the filesystem updates it on a read or a listing; checked to
  work here first) and its content, and nothing is created outside;
* nothing outside is named in a result: no outside-only name or content appears;
* every call returns a result and the registry never raises; ``permission()`` never
  raises, and the policy decides its request without logging an error;
* a path that cannot name a file, or resolves outside, is an error result.

Plus the specific cases: ``link/**`` and a swapped folder for glob (issue 12 item 7,
both search engines), a swap *during* a ripgrep run and during a Python walk, the
``~`` rules, NUL/long/unicode paths, and the real CLI answering such calls with
honest errors, no traceback and no "the user denied".
"""

from __future__ import annotations

import asyncio
import json
import logging
import os
import shutil
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import codeloop.tools.search as search
import codeloop.tools.search.rg as search_rg
import pytest
from codeloop.core.ports import DiagnosticInfo
from codeloop.policy import PermissionPolicy
from codeloop.tools.base import ToolResult
from codeloop.tools.search.ignore import IgnoreMatcher, walk_files
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from scripted_model import Call, ChatRequest, Script, Text, ToolCalls
from test_tools_common import REGISTRY, make_ctx

SENT_NAME = "OUTSIDENAME"  # only in names of files outside the workspace
SENT_TEXT = "SECRETOUTSIDE"  # only in contents of files outside the workspace


@dataclass
class World:
    base: Path
    root: Path
    home: Path
    outside: Path


def make_world(base: Path) -> World:
    home, outside, root = base / "home", base / "outside", base / "ws"
    ssh = home / ".ssh"
    ssh.mkdir(parents=True)
    (outside / "deep").mkdir(parents=True)
    (ssh / "id_rsa").write_text(f"-----BEGIN {SENT_TEXT} KEY-----\nhello\n")
    (ssh / f"known_hosts_{SENT_NAME}").write_text(f"{SENT_TEXT} host\nhello\n")
    (home / f"notes_{SENT_NAME}.txt").write_text(f"{SENT_TEXT} notes hello\n")
    (home / ".bashrc").write_text(f"# {SENT_TEXT}\n")
    (outside / f"data_{SENT_NAME}.txt").write_text(f"{SENT_TEXT} data hello\n")
    (outside / "deep" / f"more_{SENT_NAME}.py").write_text(f"{SENT_TEXT} = 'hello'\n")
    (root / "src").mkdir(parents=True)
    (root / "sub" / "deep").mkdir(parents=True)
    (root / "ignored").mkdir()
    (root / "src" / "a.py").write_text("hello = 1\n")
    (root / "sub" / "b.txt").write_text("hello sub\n")
    (root / "sub" / "deep" / "c.md").write_text("hello deep\n")
    (root / "ignored" / "i.txt").write_text("hello ignored\n")
    (root / ".gitignore").write_text("ignored/\n")
    (root / "~$report.docx").write_text("lock hello\n")
    (root / "é.txt").write_text("hello unicode\n")
    os.symlink(home, root / "link_home")
    os.symlink(ssh, root / "link_ssh")
    os.symlink(ssh / "id_rsa", root / "link_key")
    os.symlink("../outside", root / "link_out")
    os.symlink("../../outside", root / "src" / "up")
    os.symlink("../../../home", root / "sub" / "deep" / "up")
    os.symlink("src", root / "in_link")
    os.symlink("loop", root / "loop")
    return World(base, root.resolve(), home.resolve(), outside.resolve())


def _outside_entries(w: World) -> Iterator[Path]:
    for top in (w.home, w.outside):
        yield top
        for dirpath, dirnames, filenames in os.walk(top):
            for name in dirnames + filenames:
                yield Path(dirpath) / name


def snapshot_contents(w: World) -> dict[str, bytes | None]:
    return {str(p): (p.read_bytes() if p.is_file() else None) for p in _outside_entries(w)}


def age_atimes(w: World) -> list[Path]:
    """Access times well before the modification times: under relatime (and strictatime)
    the next read of a file, or listing of a folder, moves them. Returns the entries
    (listed once, here: listing them again would move their folders' times)."""
    entries = sorted(_outside_entries(w), key=lambda p: -len(p.parts))
    for p in entries:
        st_ = os.lstat(p)
        os.utime(p, ns=(st_.st_mtime_ns - 10**12, st_.st_mtime_ns), follow_symlinks=False)
    return entries


def snapshot_atimes(entries: list[Path]) -> dict[str, int]:
    return {str(p): os.lstat(p).st_atime_ns for p in entries}


def _atime_works() -> bool:
    with tempfile.TemporaryDirectory() as d:
        f, sub = Path(d) / "f", Path(d) / "sub"
        f.write_text("x")
        sub.mkdir()
        for p in (f, sub):
            st_ = os.stat(p)
            os.utime(p, ns=(st_.st_mtime_ns - 10**12, st_.st_mtime_ns))
        before = (os.stat(f).st_atime_ns, os.stat(sub).st_atime_ns)
        f.read_text()
        os.listdir(sub)
        return os.stat(f).st_atime_ns != before[0] and os.stat(sub).st_atime_ns != before[1]


ATIME_WORKS = _atime_works()


class Diagnostics:
    """A diagnostics source that knows no problems (get_diagnostics resolves its paths first)."""

    async def diagnostics(self, paths: list[Path]) -> dict[Path, list[DiagnosticInfo]]:
        return {p: [] for p in paths}


class _Errors(logging.Handler):
    def __init__(self) -> None:
        super().__init__(logging.ERROR)
        self.records: list[logging.LogRecord] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.records.append(record)


@contextmanager
def world_env() -> Iterator[World]:
    """A fresh world; HOME is its fake home while it lives."""
    base = Path(tempfile.mkdtemp(prefix="codeloop-boundary-"))
    old_home = os.environ.get("HOME")
    try:
        w = make_world(base)
        os.environ["HOME"] = str(w.home)
        yield w
    finally:
        if old_home is None:
            os.environ.pop("HOME", None)
        else:
            os.environ["HOME"] = old_home
        shutil.rmtree(base, ignore_errors=True)


# -- the oracle: which path texts must be refused (written apart from the tools)


def must_refuse(w: World, raw: str) -> bool:
    """True when ``raw`` cannot name a file inside the workspace."""
    if "\x00" in raw:
        return True
    try:
        encoded = os.fsencode(raw)
    except UnicodeError:
        return True
    if any(len(c) > 255 for c in encoded.split(b"/")) or len(encoded) + len(str(w.root)) >= 4000:
        return True
    text = raw
    if raw == "~" or raw.startswith("~/"):
        text = str(w.home) + raw[1:]
    elif raw.startswith("~"):
        import pwd

        name = raw[1:].split("/", 1)[0]
        try:
            text = pwd.getpwnam(name).pw_dir + raw[1 + len(name):]
        except (KeyError, ValueError):
            pass
    candidate = Path(text) if Path(text).is_absolute() else w.root / text
    real = Path(os.path.realpath(candidate))
    return not (real == w.root or w.root in real.parents)


# -- strategies

SEGMENTS = [
    "..", ".", "", "src", "sub", "sub/deep", "a.py", "b.txt", "c.md", "new.txt", "link_home", "link_ssh",
    "link_key", "link_out", "in_link", "loop", "up", "src/up", "sub/deep/up", "deep", ".ssh", "id_rsa", ".bashrc",
    "ignored", "~", "~root", "~nobody", "~nosuchuser", "~$report.docx", "é.txt", "日本語", "x" * 300, "\x00",
    "\ud800", "*", "**", "?*", "*.py", "*.txt", "[ab]*",
]
PREFIXES = ["", "", "", "/", "~/", "./", "ROOT/", "HOME/", "OUTSIDE/"]


@st.composite
def paths(draw: st.DrawFn) -> str:
    if draw(st.integers(0, 30)) == 0:
        return draw(st.sampled_from(["d/" * 2100, "x" * 5000, "a/" + "b" * 256, "\x00", "~\x00", "\udcff.txt"]))
    prefix = draw(st.sampled_from(PREFIXES))
    body = "/".join(draw(st.lists(st.sampled_from(SEGMENTS), min_size=1, max_size=5)))
    return prefix + body


LINKS_OUT = ["link_home", "link_ssh", "link_out", "src/up", "sub/deep/up"]
FOLDERS = ["link_home", "link_ssh", "link_out", "in_link", "src", "src/up", "sub", "sub/deep", "sub/deep/up",
           ".ssh", "..", ".", "~", "deep", "loop"]
WILD = ["*", "**", "**/*", "*.txt", "*.py", "id_*", "?*", ".*", "[a-z]*", "**/.ssh/*"]


@st.composite
def globs(draw: st.DrawFn) -> str:
    """Glob patterns: a few literal folders (often links pointing out), then wildcards."""
    if draw(st.integers(0, 4)) == 0:
        return draw(paths())
    prefix = draw(st.sampled_from(["", "", "", "/", "ROOT/", "HOME/", "~/", "./"]))
    first = draw(st.sampled_from(LINKS_OUT + FOLDERS))
    folders = draw(st.lists(st.sampled_from(FOLDERS), min_size=0, max_size=2))
    return prefix + "/".join([first] + folders + [draw(st.sampled_from(WILD))])


def _fill(w: World, raw: str) -> str:
    return raw.replace("ROOT/", str(w.root) + "/", 1).replace("HOME/", str(w.home) + "/", 1).replace(
        "OUTSIDE/", str(w.outside) + "/", 1
    )


REGEXES = ["hello", "SECRET", "S.CR", "OUT", "KEY", ".", "(", "\x00", "\ud800", "hello|SECRET", "^#"]
COMMAND = "pwd -P; ls -a"


@st.composite
def calls(draw: st.DrawFn) -> tuple[str, dict[str, Any]]:
    tool = draw(st.sampled_from([
        "read_file", "write_file", "edit_file", "apply_patch", "apply_patch_new", "list_dir", "grep", "glob",
        "run_command", "run_command_bg", "read_command_output", "get_diagnostics", "glob", "glob", "grep", "list_dir",
    ]))
    p = draw(paths())
    if tool == "read_file":
        return tool, {"path": p}
    if tool == "write_file":
        return tool, {"path": p, "content": "written\n"}
    if tool == "edit_file":
        return tool, {"path": p, "old_string": "hello", "new_string": "HELLO"}
    if tool == "apply_patch":
        return tool, {"patch": f"--- a/{p}\n+++ b/{p}\n@@ -1 +1 @@\n-hello\n+HELLO\n"}
    if tool == "apply_patch_new":
        return "apply_patch", {"patch": f"--- /dev/null\n+++ b/{p}\n@@ -0,0 +1 @@\n+new\n"}
    if tool == "list_dir":
        return tool, {"path": p, "depth": draw(st.integers(1, 5))}
    if tool == "grep":
        args: dict[str, Any] = {"pattern": draw(st.sampled_from(REGEXES)), "path": p}
        if draw(st.booleans()):
            args["glob"] = draw(globs())
        args["output_mode"] = draw(st.sampled_from(["content", "files_with_matches", "count"]))
        return tool, args
    if tool == "glob":
        return tool, {"pattern": draw(globs()), "path": draw(st.sampled_from([".", ".", "src", "sub", p]))}
    if tool == "run_command":
        return tool, {"command": COMMAND, "cwd": p}
    if tool == "run_command_bg":
        return "run_command", {"command": COMMAND, "cwd": p, "background": True}
    if tool == "read_command_output":
        return tool, {"id": draw(st.sampled_from(["cmd-1", "bg-1", "cmd-99", "../x", "\x00", p]))}
    return tool, {"paths": [p]}


SWAP_TARGETS = ["HOME/.ssh", "HOME", "OUTSIDE"]
steps = st.lists(
    st.one_of(
        calls().map(lambda c: ("call", c)),
        st.tuples(st.sampled_from(["sub", "src", "sub/deep"]), st.sampled_from(SWAP_TARGETS)).map(lambda s: ("swap", s)),
        st.sampled_from(["sub", "src", "sub/deep"]).map(lambda s: ("unswap", s)),
    ),
    min_size=1,
    max_size=7,
)


def _real(p: Path) -> bool:
    return os.path.realpath(p) == str(p)


def swap(w: World, folder: str, target: str) -> None:
    """Replace the workspace folder by a symlink pointing out (its content kept aside)."""
    here = w.root / folder
    if not _real(here.parent) or here.is_symlink() or not here.is_dir():
        return  # (never through a link: that would move something outside)
    stash = w.base / ("stash-" + folder.replace("/", "-"))
    if stash.exists():
        return
    os.rename(here, stash)
    os.symlink(_fill(w, target + "/").rstrip("/"), here)


def unswap(w: World, folder: str) -> None:
    here = w.root / folder
    stash = w.base / ("stash-" + folder.replace("/", "-"))
    if _real(here.parent) and here.is_symlink() and stash.is_dir():
        here.unlink()
        os.rename(stash, here)


def check_result(w: World, name: str, args: dict[str, Any], result: ToolResult) -> None:
    text = result.text
    assert isinstance(text, str) and text, (name, args)
    assert SENT_TEXT not in text, ("outside content in a result", name, args, text[:2000])
    assert SENT_NAME not in text, ("an outside name in a result", name, args, text[:2000])
    if name == "run_command" and result.ok:
        # the command ran in a folder inside the workspace
        lines = [ln for ln in text.splitlines() if ln.startswith("/")]
        assert lines or args.get("background"), text  # (a slow start may show no output yet)
        for line in lines[:1]:
            cwd = Path(line)
            assert cwd == w.root or w.root in cwd.parents, (args, text)


async def _run_steps(w: World, plan: list[tuple[str, Any]]) -> None:
    errors = _Errors()
    logging.getLogger("codeloop").addHandler(errors)
    ctx = make_ctx(w.root, diagnostics=Diagnostics())
    ctx.processes.start_wait = 0.2
    policy = PermissionPolicy(w.root, user_settings=None, config_home=w.base / "config", home=w.home)
    try:
        for kind, step in plan:
            if kind == "swap":
                swap(w, *step)
                continue
            if kind == "unswap":
                unswap(w, step)
                continue
            name, raw_args = step
            args = json.loads(_fill(w, json.dumps(raw_args)))
            parsed = REGISTRY.parse(name, json.dumps(args))
            if isinstance(parsed, ToolResult):
                result = parsed
            else:
                tool, inp = parsed
                request = tool.permission(inp, ctx)  # must not raise
                if request is not None:
                    decision = policy.decide(request)
                    assert decision.action in ("allow", "ask", "deny")
                result = await REGISTRY.run(tool, inp, ctx)  # never raises
            check_result(w, name, args, result)
            path_arg = args.get("path")
            if name == "run_command":
                path_arg = args.get("cwd")
            if name in ("read_file", "write_file", "edit_file", "list_dir", "grep", "glob", "run_command") \
                    and isinstance(path_arg, str) and path_arg.strip() not in ("", ".") \
                    and must_refuse(w, path_arg):
                assert not result.ok and result.text.startswith("Error"), (name, args, result.text[:500])
        assert not errors.records, [r.getMessage() for r in errors.records]
    finally:
        logging.getLogger("codeloop").removeHandler(errors)
        await ctx.processes.shutdown()


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(plan=steps)
def test_no_tool_reads_lists_writes_or_names_anything_outside(plan: list[tuple[str, Any]]) -> None:
    with world_env() as w:
        contents = snapshot_contents(w)
        entries = age_atimes(w)
        atimes = snapshot_atimes(entries)
        try:
            asyncio.run(_run_steps(w, plan))
        finally:
            for folder in ("sub/deep", "sub", "src") * 2:
                unswap(w, folder)
        if ATIME_WORKS:
            assert snapshot_atimes(entries) == atimes, "something outside the workspace was read or listed"
        assert snapshot_contents(w) == contents, "something outside the workspace changed"


@pytest.mark.parametrize("engine", ["rg", "python"])
@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(pattern=globs(), path=st.sampled_from([".", "src", "sub", "in_link", "sub/deep"]))
def test_glob_patterns_never_leave(engine: str, pattern: str, path: str, monkeypatch: pytest.MonkeyPatch) -> None:
    """Any glob pattern, both engines: link/**, ../*, absolute and ~ patterns list nothing outside."""
    if engine == "python":
        monkeypatch.setattr(search_rg, "find_rg", lambda: None)
    with world_env() as w:
        entries = age_atimes(w)
        atimes = snapshot_atimes(entries)

        async def go() -> ToolResult:
            ctx = make_ctx(w.root)
            try:
                parsed = REGISTRY.parse("glob", json.dumps({"pattern": _fill(w, pattern), "path": path}))
                if isinstance(parsed, ToolResult):
                    return parsed
                return await REGISTRY.run(*parsed, ctx)
            finally:
                await ctx.processes.shutdown()

        result = asyncio.run(go())
        check_result(w, "glob", {"pattern": pattern}, result)
        if ATIME_WORKS:
            assert snapshot_atimes(entries) == atimes


# -- the cases of issue 12, one by one


async def _call(ctx: Any, name: str, **args: Any) -> ToolResult:
    parsed = REGISTRY.parse(name, json.dumps(args))
    if isinstance(parsed, ToolResult):
        return parsed
    tool, inp = parsed
    tool.permission(inp, ctx)
    return await REGISTRY.run(tool, inp, ctx)


@pytest.fixture
def world() -> Iterator[World]:
    with world_env() as w:
        yield w


@pytest.fixture(params=["rg", "python"])
def engine(request: pytest.FixtureRequest, monkeypatch: pytest.MonkeyPatch) -> str:
    if request.param == "python":
        monkeypatch.setattr(search_rg, "find_rg", lambda: None)
    else:
        assert search.find_rg() is not None
    return request.param


async def test_glob_through_a_symlinked_folder_lists_nothing(world: World, engine: str) -> None:
    ctx = make_ctx(world.root)
    for pattern in ("link_ssh/**", "link_ssh/*", "link_home/**", "link_home/.ssh/*", "link_out/**/*.py",
                    "**/id_rsa", "**/*" + SENT_NAME[:4] + "*", "in_link/../link_ssh/*"):
        r = await _call(ctx, "glob", pattern=pattern)
        assert r.ok and r.text.startswith("No files match"), (pattern, r.text)
    r = await _call(ctx, "glob", pattern="in_link/*")  # a link inside the workspace: not followed either
    assert r.text.startswith("No files match"), r.text
    r = await _call(ctx, "glob", pattern="**/*")
    assert SENT_NAME not in r.text and "src/a.py" in r.text and "link_ssh" not in r.text


async def test_a_folder_swapped_for_a_symlink_between_calls(world: World, engine: str) -> None:
    ctx = make_ctx(world.root)
    r = await _call(ctx, "glob", pattern="sub/**")
    assert sorted(r.text.splitlines()) == ["sub/b.txt", "sub/deep/c.md"]
    swap(world, "sub", "HOME/.ssh")
    for name, args in [
        ("glob", {"pattern": "sub/**"}), ("glob", {"pattern": "sub/*"}), ("glob", {"pattern": "**/*"}),
        ("grep", {"pattern": "KEY|hello"}), ("grep", {"pattern": "KEY", "glob": "sub/**"}),
        ("list_dir", {"depth": 3}),
    ]:
        r = await _call(ctx, name, **args)
        assert r.ok, r.text
        assert SENT_TEXT not in r.text and SENT_NAME not in r.text, (name, r.text)
        if name != "list_dir":  # (list_dir shows where links point: link_key -> .../id_rsa)
            assert "id_rsa" not in r.text, (name, r.text)
    r = await _call(ctx, "list_dir", depth=3)
    assert "  sub/ -> " in r.text and "\n    " not in r.text.split("sub/ -> ", 1)[1].split("\n", 1)[1][:4], r.text
    for name, args in [("glob", {"pattern": "*", "path": "sub"}), ("grep", {"pattern": ".", "path": "sub"}),
                       ("list_dir", {"path": "sub"}), ("read_file", {"path": "sub/id_rsa"}),
                       ("run_command", {"command": "ls", "cwd": "sub"})]:
        r = await _call(ctx, name, **args)
        assert not r.ok and "outside the workspace" in r.text, (name, r.text)
    await ctx.processes.shutdown()


def _swapping_rg(tmp: Path, world: World, folder: str) -> str:
    """An ``rg`` that swaps ``folder`` for a symlink to the fake .ssh, then runs the real rg:
    the swap lands after every check codeloop makes before starting rg."""
    script = tmp / "rg-swapping"
    real = search_rg._find_rg_cached()
    here = world.root / folder
    stash = world.base / "stash-during"
    script.write_text(
        "#!/bin/sh\n"
        f"if [ ! -L '{here}' ]; then mv '{here}' '{stash}' && ln -s '{world.home / '.ssh'}' '{here}'; fi\n"
        f"exec '{real}' \"$@\"\n"
    )
    script.chmod(0o755)
    return str(script)


@pytest.mark.parametrize("call", [
    ("grep", {"pattern": "KEY|hello", "path": "sub"}),
    ("grep", {"pattern": "KEY|hello", "path": "sub", "output_mode": "files_with_matches"}),
    ("grep", {"pattern": "KEY|hello", "path": "sub", "output_mode": "count"}),
    ("glob", {"pattern": "sub/**"}),
    ("glob", {"pattern": "*", "path": "sub"}),
])
async def test_a_swap_during_a_ripgrep_run_shows_nothing_outside(
    world: World, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, call: tuple[str, dict[str, Any]]
) -> None:
    monkeypatch.setattr(search_rg, "find_rg", lambda: _swapping_rg(tmp_path, world, "sub"))
    ctx = make_ctx(world.root)
    name, args = call
    r = await _call(ctx, name, **args)
    assert (world.root / "sub").is_symlink()  # rg really ran after the swap
    assert r.ok, r.text
    assert SENT_TEXT not in r.text and SENT_NAME not in r.text and "id_rsa" not in r.text, r.text
    assert "became a symbolic link" in r.text, r.text


async def test_a_swap_during_a_python_walk_is_not_followed(
    world: World, monkeypatch: pytest.MonkeyPatch
) -> None:
    """list_dir and the fallback walk open each folder from its parent's descriptor without
    following links: a folder swapped after its parent was read is refused, not followed."""
    real_matches = IgnoreMatcher.matches

    def swapping(self: IgnoreMatcher, path: Path, is_dir: bool) -> bool:
        if path.name == "sub" and is_dir:
            swap(world, "sub", "HOME/.ssh")  # after readdir said "a folder", before it is opened
        return real_matches(self, path, is_dir)

    monkeypatch.setattr(IgnoreMatcher, "matches", swapping)
    ctx = make_ctx(world.root)
    r = await _call(ctx, "list_dir", depth=3)
    assert (world.root / "sub").is_symlink()
    assert r.ok and SENT_NAME not in r.text, r.text
    assert "sub/\n    [cannot list:" in r.text, r.text  # shown as the folder it was, not followed
    unswap(world, "sub")
    files = walk_files(world.root, world.root, IgnoreMatcher(world.root))
    assert (world.root / "sub").is_symlink()
    names = [p.relative_to(world.root).as_posix() for p in files]
    assert "src/a.py" in names and not any(n.startswith("sub/") for n in names), names
    unswap(world, "sub")
    monkeypatch.setattr(search_rg, "find_rg", lambda: None)
    r = await _call(ctx, "grep", pattern="KEY|hello")
    assert SENT_TEXT not in r.text and "sub/" not in r.text and "src/a.py:1:hello = 1" in r.text, r.text


# -- item 9: paths that used to crash


async def test_tilde_rules(world: World) -> None:
    ctx = make_ctx(world.root)
    (world.root / "~nosuchuser").mkdir()
    r = await _call(ctx, "read_file", path="~$report.docx")
    assert r.ok and "lock hello" in r.text, r.text
    r = await _call(ctx, "edit_file", path="~$report.docx", old_string="lock", new_string="LOCK")
    assert r.ok, r.text
    assert (world.root / "~$report.docx").read_text() == "LOCK hello\n"
    r = await _call(ctx, "write_file", path="~nosuchuser/x.txt", content="mine\n")
    assert r.ok and (world.root / "~nosuchuser" / "x.txt").read_text() == "mine\n", r.text
    r = await _call(ctx, "grep", pattern="mine", path="~nosuchuser")
    assert r.text == "~nosuchuser/x.txt:1:mine", r.text
    r = await _call(ctx, "run_command", command="pwd", cwd="~nosuchuser")
    assert r.ok and str(world.root / "~nosuchuser") in r.text, r.text
    import pwd

    users = [u for u in ("root", "nobody") if u in {e.pw_name for e in pwd.getpwall()}]
    for raw in ["~", "~/.ssh/id_rsa"] + [f"~{u}/x" for u in users]:
        r = await _call(ctx, "read_file", path=raw)
        assert not r.ok and "outside the workspace" in r.text and f"./{raw}" in r.text, r.text
    r = await _call(ctx, "glob", pattern="*", path="~")
    assert not r.ok and str(world.home) in r.text and SENT_NAME not in r.text
    await ctx.processes.shutdown()


async def test_tilde_without_a_known_home(world: World, monkeypatch: pytest.MonkeyPatch) -> None:
    import pwd

    monkeypatch.delenv("HOME")

    def no_entry(uid: int) -> Any:
        raise KeyError(uid)

    monkeypatch.setattr(pwd, "getpwuid", no_entry)
    ctx = make_ctx(world.root)
    r = await _call(ctx, "read_file", path="~/x")
    assert not r.ok and "home directory, which is not known" in r.text, r.text
    r = await _call(ctx, "read_file", path="~$report.docx")
    assert r.ok, r.text


@pytest.mark.parametrize("raw, why", [
    ("a\x00b", "NUL byte"), ("\ud800x", "lone surrogate"), ("x" * 300, "300 bytes long"),
    ("d/" * 2100, "bytes long"), ("~\x00", "NUL byte"),
])
async def test_paths_that_cannot_be_paths(world: World, raw: str, why: str) -> None:
    ctx = make_ctx(world.root, diagnostics=Diagnostics())
    for name, args in [
        ("read_file", {"path": raw}), ("write_file", {"path": raw, "content": "x"}),
        ("edit_file", {"path": raw, "old_string": "a", "new_string": "b"}), ("list_dir", {"path": raw}),
        ("grep", {"pattern": "x", "path": raw}), ("glob", {"pattern": "*", "path": raw}),
        ("run_command", {"command": "true", "cwd": raw}), ("run_command", {"command": "true", "cwd": raw, "background": True}),
        ("get_diagnostics", {"paths": [raw]}),
        ("apply_patch", {"patch": f"--- /dev/null\n+++ b/{raw}\n@@ -0,0 +1 @@\n+b\n"}),
    ]:
        parsed = REGISTRY.parse(name, json.dumps(args))
        assert not isinstance(parsed, ToolResult), parsed
        tool, inp = parsed
        if name != "apply_patch":
            # nothing to ask: the call can never run; its run says why
            assert tool.permission(inp, ctx) is None, name
        r = await REGISTRY.run(tool, inp, ctx)
        assert not r.ok and why in r.text, (name, r.text)
        assert "Traceback" not in r.text and "failed:" not in r.text, (name, r.text)
        assert len(r.text) < 600, (name, len(r.text))
    await ctx.processes.shutdown()


async def test_patterns_and_commands_that_cannot_be_passed(world: World) -> None:
    ctx = make_ctx(world.root)
    for name, args, why in [
        ("grep", {"pattern": "a\x00b"}, "NUL byte"), ("grep", {"pattern": "\ud800"}, "lone surrogate"),
        ("grep", {"pattern": "a", "glob": "*\x00"}, "NUL byte"), ("glob", {"pattern": "*\x00"}, "NUL byte"),
        ("glob", {"pattern": "\ud800*"}, "lone surrogate"), ("grep", {"pattern": "a" * 200_000}, "could not run ripgrep"),
        ("run_command", {"command": "echo a\x00b"}, "NUL byte"), ("run_command", {"command": "\x00", "background": True}, "NUL byte"),
    ]:
        parsed = REGISTRY.parse(name, json.dumps(args))
        assert not isinstance(parsed, ToolResult)
        tool, inp = parsed
        if name == "run_command":
            assert tool.permission(inp, ctx) is None
        r = await REGISTRY.run(tool, inp, ctx)
        assert not r.ok and why in r.text and "failed:" not in r.text, (name, r.text[:300])
    assert ctx.processes.records() == []  # nothing was started
    await ctx.processes.shutdown()


def test_the_policy_decides_such_requests_without_an_error(world: World) -> None:
    from codeloop.policy import PermissionRequest

    errors = _Errors()
    logging.getLogger("codeloop").addHandler(errors)
    try:
        policy = PermissionPolicy(world.root, user_settings=None, config_home=world.base / "c", home=world.home)
        for kind in ("Read", "Edit", "Write"):
            for target in ("a\x00b", "\ud800", "x" * 5000, "~$report.docx", "~nobody/x"):
                assert policy.decide(PermissionRequest(kind, target, world.root, None)).action in ("allow", "ask", "deny")
    finally:
        logging.getLogger("codeloop").removeHandler(errors)
    assert not errors.records, [r.getMessage() for r in errors.records]


def test_cli_answers_bad_paths_with_errors_not_denials(model_server, run_cli, world: World) -> None:
    """The real CLI, headless in ask mode (nobody can approve): calls with a NUL, a lock
    file name, an unknown user's ~, a long cwd and a symlinked glob get honest errors
    (or their results), no "the user denied permission", no traceback, and the run ends."""

    def check(req: ChatRequest):
        results = req.last_tool_results()
        assert len(results) == 7, results
        nul, lock, nouser, cwd, glob_, nul_cmd, tilde = results
        assert "invalid path" in nul and "NUL byte" in nul, nul
        assert "lock hello" in lock, lock
        assert "file not found: ~nosuchuser/x" in nouser, nouser
        assert "bytes long" in cwd and "nothing was run" in cwd, cwd
        assert glob_.startswith("No files match"), glob_
        assert "NUL byte" in nul_cmd, nul_cmd
        assert "outside the workspace" in tilde, tilde
        for r in results:
            assert "denied" not in r and SENT_NAME not in r and SENT_TEXT not in r, r
        return Text("all refused cleanly")

    server = model_server(Script([
        ToolCalls([
            Call("read_file", {"path": "src/a\x00.py"}),
            Call("read_file", {"path": "~$report.docx"}),
            Call("read_file", {"path": "~nosuchuser/x"}),
            Call("run_command", {"command": "true", "cwd": "d/" * 2100}),
            Call("glob", {"pattern": "link_ssh/**"}),
            Call("run_command", {"command": "echo a\x00b"}),
            Call("list_dir", {"path": "../outside"}),
        ]),
        check,
    ]))
    result = run_cli(["run", "look around", "--cwd", str(world.root)], server.base_url, HOME=str(world.home))
    assert result.code == 0, result.both
    assert "all refused cleanly" in result.out
    assert "Traceback" not in result.err, result.err
    assert len(server.requests) == 2
