"""read_file, write_file, edit_file and the DiskChangeApplier."""

from __future__ import annotations

import os
import stat
from pathlib import Path

import pytest

from codeloop.core.ports import NoDocuments, OpenDocument
from codeloop.edits.change import ChangeSet, FileChange
from codeloop.edits.disk import DiskChangeApplier
from codeloop.tools.base import ToolContext
from codeloop.tools.processes import ProcessManager
from codeloop.tools.workspace import Workspace
from test_tools_common import call, make_ctx


@pytest.fixture
def ws(tmp_path: Path) -> Path:
    return tmp_path


# -- read_file


async def test_read_file_numbers_lines_and_pages(ws: Path) -> None:
    (ws / "a.txt").write_text("".join(f"line {i}\n" for i in range(1, 11)))
    ctx = make_ctx(ws)
    r = await call(ctx, "read_file", path="a.txt")
    assert r.ok
    assert r.text.splitlines()[0] == "1\tline 1"
    assert r.text.splitlines()[-1] == "10\tline 10"
    assert "more lines" not in r.text

    r = await call(ctx, "read_file", path="a.txt", offset=3, limit=4)
    lines = r.text.splitlines()
    assert lines[:4] == ["3\tline 3", "4\tline 4", "5\tline 5", "6\tline 6"]
    assert lines[4] == "... 4 more lines. Call read_file with offset=7 to continue."

    r = await call(ctx, "read_file", path="a.txt", offset=11)
    assert not r.ok and "past the end" in r.text and "10 lines" in r.text


async def test_read_file_caps_lines_and_chars(ws: Path) -> None:
    (ws / "big.txt").write_text("".join(f"{i}\n" for i in range(1, 3001)))
    ctx = make_ctx(ws)
    # A range the model asked for: up to 2000 lines (within 24,000 characters).
    r = await call(ctx, "read_file", path="big.txt", limit=2000)
    lines = r.text.splitlines()
    assert lines[1999] == "2000\t2000"
    assert lines[-1] == "... 1000 more lines. Call read_file with offset=2001 to continue."
    # A first look (no limit): up to 8,000 characters, then how to go on.
    r = await call(ctx, "read_file", path="big.txt")
    assert len(r.text) <= 8_000 + 100
    lines = r.text.splitlines()
    shown = len(lines) - 1
    assert lines[shown - 1] == f"{shown}\t{shown}"
    assert lines[-1] == f"... {3000 - shown} more lines. Call read_file with offset={shown + 1} to continue."

    # ~100k character cap, long lines cut at 2000 characters
    (ws / "wide.txt").write_text(("x" * 5000 + "\n") * 100)
    r = await call(ctx, "read_file", path="wide.txt")
    assert len(r.text) < 110_000
    first = r.text.splitlines()[0]
    assert first.startswith("1\t" + "x" * 2000) and "3000 more characters" in first
    last = r.text.splitlines()[-1]
    assert last.startswith("... ") and "Call read_file with offset=" in last
    shown = len(r.text.splitlines()) - 1
    assert last == f"... {100 - shown} more lines. Call read_file with offset={shown + 1} to continue."


async def test_read_file_refuses_binary_and_directories(ws: Path) -> None:
    (ws / "img.bin").write_bytes(b"PNG\x00\x01\x02" * 10)
    (ws / "latin.txt").write_bytes("caf\xe9".encode("latin-1"))
    (ws / "d").mkdir()
    ctx = make_ctx(ws)
    r = await call(ctx, "read_file", path="img.bin")
    assert not r.ok and "binary" in r.text
    r = await call(ctx, "read_file", path="latin.txt")
    assert not r.ok and "binary" in r.text and "UTF-8" in r.text
    r = await call(ctx, "read_file", path="d")
    assert not r.ok and "directory" in r.text
    r = await call(ctx, "read_file", path="missing.txt")
    assert not r.ok and "not found" in r.text


async def test_read_file_prefers_open_buffer(ws: Path) -> None:
    path = ws / "m.py"
    path.write_text("on disk\n")
    docs = NoDocuments({path: OpenDocument(path=path, text="in buffer\nline 2\n", version=7, dirty=True)})
    ctx = make_ctx(ws, documents=docs)
    r = await call(ctx, "read_file", path="m.py")
    assert r.ok
    lines = r.text.splitlines()
    assert lines[0] == "(editor buffer, version 7, unsaved changes)"
    assert lines[1] == "1\tin buffer"
    assert "on disk" not in r.text


async def test_read_empty_file(ws: Path) -> None:
    (ws / "e.txt").write_text("")
    r = await call(make_ctx(ws), "read_file", path="e.txt")
    assert r.ok and "empty" in r.text


# -- write_file


async def test_write_file_creates_parents_and_overwrites(ws: Path) -> None:
    ctx = make_ctx(ws)
    r = await call(ctx, "write_file", path="deep/er/new.txt", content="a\nb\n")
    assert r.ok, r.text
    assert r.text == "Applied: created deep/er/new.txt (+2 lines)."
    assert (ws / "deep/er/new.txt").read_text() == "a\nb\n"
    r = await call(ctx, "write_file", path="deep/er/new.txt", content="a\nc\nd\n")
    assert r.text == "Applied: wrote deep/er/new.txt (+2 -1 lines)."
    assert (ws / "deep/er/new.txt").read_text() == "a\nc\nd\n"


async def test_write_file_rejected_by_user_is_a_normal_result(ws: Path) -> None:
    asked: list[ChangeSet] = []

    async def confirm(cs: ChangeSet) -> bool | str:
        asked.append(cs)
        return "use tabs please"

    ctx = make_ctx(ws, changes=DiskChangeApplier(confirm, root=ws))
    r = await call(ctx, "write_file", path="x.py", content="x = 1\n")
    assert r.ok  # the model must read it; it is not a crash
    assert "rejected" in r.text and "Feedback: use tabs please" in r.text
    assert not (ws / "x.py").exists()
    assert asked[0].tool == "write_file" and asked[0].changes[0].old_text is None

    ctx.review_edits = False  # the policy lets edits land unreviewed: confirm is not asked
    r = await call(ctx, "write_file", path="x.py", content="x = 1\n")
    assert r.ok and r.text.startswith("Applied") and len(asked) == 1


# -- edit_file


async def test_edit_file_unique_match(ws: Path) -> None:
    (ws / "a.py").write_text("def f():\n    return 1\n")
    ctx = make_ctx(ws)
    r = await call(ctx, "edit_file", path="a.py", old_string="return 1", new_string="return 2")
    assert r.ok, r.text
    assert r.text == "Applied: wrote a.py (+1 -1 lines)."
    assert (ws / "a.py").read_text() == "def f():\n    return 2\n"


async def test_edit_file_ambiguous_changes_nothing(ws: Path) -> None:
    text = "x = 1\ny = 2\nx = 1\n\nx = 1\n"
    (ws / "a.py").write_text(text)
    r = await call(make_ctx(ws), "edit_file", path="a.py", old_string="x = 1", new_string="x = 3")
    assert not r.ok
    assert "3 times" in r.text and "lines 1, 3, 5" in r.text and "replace_all" in r.text
    assert (ws / "a.py").read_text() == text


async def test_edit_file_zero_match_points_at_candidates(ws: Path) -> None:
    text = "def f():\n        return 1\n\ndef g():\n    pass\n"
    (ws / "a.py").write_text(text)
    ctx = make_ctx(ws)
    r = await call(ctx, "edit_file", path="a.py", old_string="def f():\n    return 1", new_string="z")
    assert not r.ok and "not found" in r.text
    assert "whitespace" in r.text and "line(s) 1" in r.text
    r = await call(ctx, "edit_file", path="a.py", old_string="def g():\n    return 5", new_string="z")
    assert not r.ok and "first line of old_string appears at line(s) 4" in r.text
    r = await call(ctx, "edit_file", path="a.py", old_string="nothing like it", new_string="z")
    assert not r.ok and "not found" in r.text
    assert (ws / "a.py").read_text() == text

    r = await call(ctx, "edit_file", path="a.py", old_string="pass", new_string="pass")
    assert not r.ok and "identical" in r.text


async def test_edit_file_replace_all(ws: Path) -> None:
    (ws / "a.py").write_text("a = foo\nb = foo\nfoo()\n")
    r = await call(make_ctx(ws), "edit_file", path="a.py", old_string="foo", new_string="bar", replace_all=True)
    assert r.ok, r.text
    assert (ws / "a.py").read_text() == "a = bar\nb = bar\nbar()\n"


async def test_edit_file_keeps_crlf_and_mode(ws: Path) -> None:
    p = ws / "w.sh"
    p.write_bytes(b"echo one\r\necho two\r\n")
    p.chmod(0o755)
    r = await call(make_ctx(ws), "edit_file", path="w.sh", old_string="echo two", new_string="echo 2")
    assert r.ok, r.text
    assert p.read_bytes() == b"echo one\r\necho 2\r\n"
    assert stat.S_IMODE(p.stat().st_mode) == 0o755


async def test_edit_file_stale_disk_writes_nothing(ws: Path) -> None:
    p = ws / "a.py"
    p.write_text("v = 1\n")

    async def confirm(cs: ChangeSet) -> bool:
        p.write_text("v = 1\nchanged = True\n")  # someone edits the file while we ask
        return True

    ctx = make_ctx(ws, changes=DiskChangeApplier(confirm, root=ws))
    r = await call(ctx, "edit_file", path="a.py", old_string="v = 1", new_string="v = 2")
    assert r.ok and "Nothing was written" in r.text and "changed on disk" in r.text
    assert p.read_text() == "v = 1\nchanged = True\n"


# -- DiskChangeApplier directly


async def test_disk_applier_all_or_nothing_on_stale(tmp_path: Path) -> None:
    a, b = tmp_path / "a.txt", tmp_path / "b.txt"
    a.write_text("A\n")
    b.write_text("B\n")
    cs = ChangeSet(
        tool="apply_patch",
        changes=(FileChange(a, "A\n", "A2\n"), FileChange(b, "not B\n", "B2\n"), FileChange(tmp_path / "c.txt", None, "C\n")),
        review=False,
    )
    out = await DiskChangeApplier(root=tmp_path).apply(cs)
    assert out.status == "stale" and "b.txt" in out.message
    assert a.read_text() == "A\n" and b.read_text() == "B\n" and not (tmp_path / "c.txt").exists()
    assert not [p for p in tmp_path.iterdir() if p.name.endswith(".codeloop-tmp")]

    # a file that must not exist but does
    cs = ChangeSet(tool="write_file", changes=(FileChange(a, None, "x"),), review=False)
    out = await DiskChangeApplier(root=tmp_path).apply(cs)
    assert out.status == "stale" and "now exists" in out.message


async def test_disk_applier_confirm_true_and_false(tmp_path: Path) -> None:
    p = tmp_path / "n.txt"
    cs = ChangeSet(tool="write_file", changes=(FileChange(p, None, "1\n"),), review=True)

    async def no(_: ChangeSet) -> bool:
        return False

    async def yes(_: ChangeSet) -> bool:
        return True

    out = await DiskChangeApplier(no, root=tmp_path).apply(cs)
    assert out.status == "rejected" and out.message == "The user rejected the change to n.txt; nothing was written."
    assert not p.exists()
    out = await DiskChangeApplier(yes, root=tmp_path).apply(cs)
    assert out.status == "applied" and out.landed and p.read_text() == "1\n"
    assert out.files[0].final_text == "1\n"
    # new files get the usual permissions, not mkstemp's 0600
    umask = os.umask(0)
    os.umask(umask)
    assert stat.S_IMODE(p.stat().st_mode) == 0o666 & ~umask


async def test_tools_work_without_optional_context(tmp_path: Path) -> None:
    (tmp_path / "f.txt").write_text("hello\n")
    ctx = ToolContext(workspace=Workspace(tmp_path), changes=DiskChangeApplier(), processes=ProcessManager())
    r = await call(ctx, "read_file", path=str(tmp_path / "f.txt"))  # absolute inside the root is fine
    assert r.ok and "hello" in r.text


# -- read_file on an image

PNG_1PX = bytes.fromhex(
    "89504e470d0a1a0a0000000d49484452000000010000000108060000001f15c4890000000d49444154789c6360f8cfc0f01f0005"
    "0001ff8a0a4b1b0000000049454e44ae426082"
)


async def test_read_file_shows_an_image_to_a_model_that_takes_images(ws: Path) -> None:
    import base64

    (ws / "shot.png").write_bytes(PNG_1PX)
    r = await call(make_ctx(ws, images=True), "read_file", path="shot.png")
    assert r.ok and r.text.startswith("shot.png: image/png image"), r.text
    (img,) = r.images
    assert img.mime == "image/png" and base64.b64decode(img.data) == PNG_1PX
    assert img.data_url().startswith("data:image/png;base64,")


async def test_read_file_on_an_image_tells_a_text_only_model_what_to_do(ws: Path) -> None:
    (ws / "shot.png").write_bytes(PNG_1PX)
    r = await call(make_ctx(ws, images=False), "read_file", path="shot.png")
    assert not r.ok and not r.images
    assert "is an image, and the model in use does not take images" in r.text
