"""apply_patch: multi-file, drifted line numbers, all-or-nothing failures."""

from __future__ import annotations

from pathlib import Path

from test_tools_common import call, make_ctx

A = "".join(f"a{i}\n" for i in range(1, 31))  # a1..a30
B = "import os\n\n\ndef main():\n    print('hi')\n    return 0\n"


def setup(ws: Path) -> None:
    (ws / "src").mkdir()
    (ws / "src/a.py").write_text(A)
    (ws / "b.py").write_text(B)


async def test_multi_file_patch_with_drifted_line_numbers(tmp_path: Path) -> None:
    setup(tmp_path)
    # The headers say line 5 / 20 / 2, but the text is at 10 / 25 / 4: drift of 5 and 2.
    patch = """\
diff --git a/src/a.py b/src/a.py
--- a/src/a.py
+++ b/src/a.py
@@ -5,3 +5,4 @@
 a9
 a10
+inserted after a10
 a11
@@ -20,3 +21,3 @@
 a24
-a25
+A25
 a26
--- a/b.py
+++ b/b.py
@@ -2,4 +2,4 @@
 def main():
-    print('hi')
+    print('hello')
     return 0
--- /dev/null
+++ b/docs/new.md
@@ -0,0 +1,2 @@
+# New
+text
"""
    r = await call(make_ctx(tmp_path), "apply_patch", patch=patch)
    assert r.ok, r.text
    assert r.text.startswith("Applied:")
    assert "src/a.py (+2 -1 lines)" in r.text and "created docs/new.md (+2 lines)" in r.text
    want_a = A.replace("a10\n", "a10\ninserted after a10\n").replace("a25\n", "A25\n")
    assert (tmp_path / "src/a.py").read_text() == want_a
    assert (tmp_path / "b.py").read_text() == B.replace("print('hi')", "print('hello')")
    assert (tmp_path / "docs/new.md").read_text() == "# New\ntext\n"


async def test_failing_hunk_changes_nothing_and_names_the_hunk(tmp_path: Path) -> None:
    setup(tmp_path)
    before = {p: p.read_bytes() for p in tmp_path.rglob("*") if p.is_file()}
    patch = """\
--- a/b.py
+++ b/b.py
@@ -4,2 +4,2 @@
 def main():
-    print('hi')
+    print('hello')
--- a/src/a.py
+++ b/src/a.py
@@ -1,2 +1,2 @@
-a1
+A1
 a2
@@ -10,3 +10,4 @@
 a10
-a11 but different
+x
 a12
--- /dev/null
+++ b/created.txt
@@ -0,0 +1 @@
+new
"""
    r = await call(make_ctx(tmp_path), "apply_patch", patch=patch)
    assert not r.ok
    assert "hunk 2 of src/a.py (@@ -10,3 +10,3 @@) did not match" in r.text
    assert "'a11'" in r.text and "'a11 but different'" in r.text  # says which line differs
    after = {p: p.read_bytes() for p in tmp_path.rglob("*") if p.is_file()}
    assert after == before  # byte-identical, nothing created


async def test_sloppy_model_patch_is_tolerated(tmp_path: Path) -> None:
    """Wrong hunk counts, a code fence, a blank context line without its space."""
    setup(tmp_path)
    patch = """```diff
--- b.py
+++ b.py
@@ -1,99 +1,99 @@
 import os

+import sys

 def main():
```
"""
    r = await call(make_ctx(tmp_path), "apply_patch", patch=patch)
    assert r.ok, r.text
    assert (tmp_path / "b.py").read_text() == B.replace("import os\n\n", "import os\n\nimport sys\n", 1)


async def test_deletion_and_rename_are_refused(tmp_path: Path) -> None:
    setup(tmp_path)
    ctx = make_ctx(tmp_path)
    r = await call(ctx, "apply_patch", patch="--- a/b.py\n+++ /dev/null\n@@ -1,6 +0,0 @@\n" + "".join("-" + x + "\n" for x in B.splitlines()))
    assert not r.ok and "does not delete files" in r.text
    assert (tmp_path / "b.py").read_text() == B
    r = await call(ctx, "apply_patch", patch="--- a/b.py\n+++ b/c.py\n@@ -1,1 +1,1 @@\n-import os\n+import sys\n")
    assert not r.ok and "renames" in r.text


async def test_garbage_and_missing_files(tmp_path: Path) -> None:
    setup(tmp_path)
    ctx = make_ctx(tmp_path)
    r = await call(ctx, "apply_patch", patch="please change line 3")
    assert not r.ok and "unified diff" in r.text
    r = await call(ctx, "apply_patch", patch="--- a/nope.py\n+++ b/nope.py\n@@ -1 +1 @@\n-x\n+y\n")
    assert not r.ok and "does not exist" in r.text
    r = await call(ctx, "apply_patch", patch="--- /dev/null\n+++ b/b.py\n@@ -0,0 +1 @@\n+x\n")
    assert not r.ok and "already exists" in r.text


async def test_no_newline_at_end_of_file(tmp_path: Path) -> None:
    (tmp_path / "n.txt").write_text("one\ntwo")
    patch = "--- a/n.txt\n+++ b/n.txt\n@@ -1,2 +1,2 @@\n one\n-two\n\\ No newline at end of file\n+three\n"
    r = await call(make_ctx(tmp_path), "apply_patch", patch=patch)
    assert r.ok, r.text
    assert (tmp_path / "n.txt").read_text() == "one\nthree\n"


async def test_patch_permission_lists_every_file(tmp_path: Path) -> None:
    from codeloop.tools.patch import ApplyPatch

    setup(tmp_path)
    ctx = make_ctx(tmp_path)
    tool = ApplyPatch()
    args = ApplyPatch.Input(patch="--- a/src/a.py\n+++ b/src/a.py\n@@ -1 +1 @@\n-a1\n+b\n--- a/b.py\n+++ b/b.py\n@@ -1 +1 @@\n-import os\n+x\n")
    req = tool.permission(args, ctx)
    assert req.kind == "Edit" and req.target == "src/a.py, b.py"
    assert req.path == (tmp_path / "src/a.py").resolve()
