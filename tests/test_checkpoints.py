"""Checkpoints and rewind at the service level (codeloop.services.checkpoints).

Real files in a temporary workspace, real commands run as subprocesses (rm, mv, a Python
script), real git for the ignore rules, and a real child process killed with SIGKILL
while it records. Each scenario runs with the inotify watcher and with plain stat walks.
"""

from __future__ import annotations

import asyncio
import json
import os
import random
import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import pytest

from codeloop.services.checkpoints import (
    CheckpointService,
    CheckpointSettings,
    CheckpointStore,
    DiskPort,
)
from codeloop.services.checkpoints.settings import MiB

SERVER = Path(__file__).resolve().parent.parent / "server"


async def sh(cwd: Path, script: str) -> None:
    """Run a shell command for real, as the agent's command runner would."""
    proc = await asyncio.create_subprocess_exec("/bin/sh", "-c", script, cwd=str(cwd),
                                                stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.STDOUT)
    out, _ = await proc.communicate()
    assert proc.returncode == 0, out.decode()


async def py(cwd: Path, code: str) -> None:
    proc = await asyncio.create_subprocess_exec(sys.executable, "-c", textwrap.dedent(code), cwd=str(cwd),
                                                stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.STDOUT)
    out, _ = await proc.communicate()
    assert proc.returncode == 0, out.decode()


class BufferPort(DiskPort):
    """The editor's side of the port: open buffers (with unsaved text) are read and
    written in memory, everything else on disk."""

    def __init__(self) -> None:
        self.buffers: dict[Path, str] = {}
        self.writes: list[Path] = []

    async def read(self, path: Path) -> bytes | None:
        if path in self.buffers:
            return self.buffers[path].encode("utf-8")
        return await super().read(path)

    async def write(self, path: Path, content: str | bytes, mode: int | None = None) -> None:
        self.writes.append(path)
        if path in self.buffers:
            assert isinstance(content, str)
            self.buffers[path] = content
            return
        await super().write(path, content, mode)


def files_of(root: Path) -> dict[str, bytes]:
    out = {}
    for p in root.rglob("*"):
        rel = p.relative_to(root).as_posix()
        if rel.startswith((".git/", ".codeloop/")) or rel in (".git", ".codeloop") or not p.is_file():
            continue
        out[rel] = p.read_bytes()
    return out


@pytest.fixture
def ws(tmp_path: Path) -> Path:
    root = tmp_path / "ws"
    root.mkdir()
    subprocess.run(["git", "init", "-q"], cwd=root, check=True)
    (root / ".gitignore").write_text("build/\n*.log\n")
    rng = random.Random(7)
    (root / "src").mkdir()
    (root / "src" / "app.py").write_text("def main():\n    return 1\n\n\ndef helper():\n    return 2\n")
    (root / "src" / "notes.txt").write_bytes(b"line one\r\nline two\r\n")  # CRLF on disk
    (root / "data.bin").write_bytes(bytes(rng.randrange(256) for _ in range(50_000)))
    (root / "gen.py").write_text("VALUE = 1\n")
    (root / "big.bin").write_bytes(rng.randbytes(5 * MiB))
    (root / "old_name.txt").write_text("moved around\n")
    (root / "build").mkdir()
    (root / "build" / "out.o").write_bytes(b"\x7fELF ignored")
    (root / "trace.log").write_text("ignored log\n")
    return root


@pytest.fixture(params=[True, False], ids=["watcher", "walk"])
def settings(request) -> CheckpointSettings:
    return CheckpointSettings(watch=request.param)


async def run_turn(root: Path, cps: CheckpointService, port: BufferPort):
    """The issue's turn: two files edited through the proposal pipeline (one with the
    user's unsaved buffer text), a command deletes a third, a command rewrites a fourth
    (and the 5 MB binary) and creates a fifth, a command moves a sixth."""
    app, notes = root / "src" / "app.py", root / "src" / "notes.txt"
    cp = await cps.begin_turn(0, message_id="m-0", label="refactor")
    # 1. a proposal on a file that is not open: the applier writes the disk
    await cps.begin_step("edit_file")
    new_app = "def main():\n    return 10\n\n\ndef helper():\n    return 2\n"
    app.write_text(new_app)
    await cps.record_edit(app, "def main():\n    return 1\n\n\ndef helper():\n    return 2\n", new_app)
    # 2. a proposal on an open buffer with unsaved edits: only the buffer text is handed over
    port.buffers[notes] = "line one\nline two\nunsaved user line\n"
    before = port.buffers[notes]
    after = before + "agent line\n"
    port.buffers[notes] = after
    await cps.record_edit(notes, before, after)
    # 3. a command deletes a file
    await cps.begin_step("run_command")
    async with cps.command("rm data.bin") as rec:
        await sh(root, "rm data.bin")
    assert [(c.path, c.kind, c.who) for c in rec.changes] == [("data.bin", "deleted", "command")]
    # 4. a command rewrites two files (one 5 MB binary), creates one, and writes ignored ones
    await cps.begin_step("run_command")
    async with cps.command("python gen") as rec:
        await py(root, """
            import os, random
            open("gen.py", "w").write("VALUE = 2\\n")
            with open("big.bin", "r+b") as f:   # rewritten in place: same inode
                f.seek(1000); f.write(os.urandom(4096))
            open("generated.txt", "w").write("made by the generator\\n")
            os.makedirs("build", exist_ok=True)
            open("build/out.o", "wb").write(b"rebuilt")
            open("trace.log", "a").write("more\\n")
        """)
    assert sorted((c.path, c.kind) for c in rec.changes) == [
        ("big.bin", "modified"), ("gen.py", "modified"), ("generated.txt", "created")]
    # 5. a command moves a file
    async with cps.command("mv") as rec:
        await sh(root, "mv old_name.txt new_name.txt")
    assert sorted((c.path, c.kind) for c in rec.changes) == [("new_name.txt", "created"), ("old_name.txt", "deleted")]
    return cp


async def test_turn_rewinds_byte_for_byte_and_keeps_later_user_edits(ws: Path, settings):
    original = files_of(ws)
    port = BufferPort()
    cps = await CheckpointService.open(ws, "s-e2e", settings, port=port)
    cps.start()
    await cps.ready()
    notes = ws / "src" / "notes.txt"
    buffer_before = "line one\nline two\nunsaved user line\n"
    cp = await run_turn(ws, cps, port)

    # the user edits app.py after the turn (far from the session's change)
    app = ws / "src" / "app.py"
    user_text = app.read_text() + "\n\ndef user_added():\n    return 3\n"
    app.write_text(user_text)

    plan = await cps.plan_rewind(cp.id)
    by = {f.path: f for f in plan.files}
    assert set(by) == {"src/app.py", "src/notes.txt", "data.bin", "gen.py", "big.bin", "generated.txt",
                       "old_name.txt", "new_name.txt"}
    assert (by["data.bin"].action, by["generated.txt"].action, by["new_name.txt"].action, by["old_name.txt"].action) == (
        "recreate", "delete", "delete", "recreate")
    assert by["src/app.py"].user_changed and by["src/app.py"].default == "keep"
    assert set(by["src/app.py"].choices) == {"keep", "rebase", "restore"}
    assert "+def user_added():" in by["src/app.py"].user_diff
    assert "-    return 10" in by["src/app.py"].rebase_diff and "user_added" not in by["src/app.py"].rebase_diff
    assert not by["src/notes.txt"].user_changed and by["src/notes.txt"].default == "restore"
    assert "Binary file big.bin" in by["big.bin"].diff
    assert "src/app.py" in plan.preview()

    result = await cps.apply_rewind(plan)  # non-interactive: keep what the user changed
    now = files_of(ws)
    for rel in ("data.bin", "gen.py", "big.bin", "old_name.txt"):
        assert now[rel] == original[rel], rel
    assert "generated.txt" not in now and "new_name.txt" not in now
    assert port.buffers[notes] == buffer_before  # the buffer, unsaved edits included
    assert now["src/app.py"] == user_text.encode()  # kept as the user has it
    assert now["build/out.o"] == b"rebuilt" and now["trace.log"].endswith(b"more\n")  # ignored: untouched
    assert "kept (changed since the session's change, so not touched): src/app.py." in result.summary, result.summary
    assert "deleted (created during the session): generated.txt, new_name.txt" in result.summary
    assert {o.path: o.status for o in result.files}["data.bin"] == "recreated"

    # the rewind's own writes are not taken for changes, and it can be undone
    async with cps.command("true") as rec:
        pass
    assert rec.changes == []
    undo = await cps.plan_rewind(result.undo_checkpoint.id)
    assert {f.path for f in undo.files if f.action != "none"} >= {"gen.py", "generated.txt", "data.bin"}
    await cps.apply_rewind(undo)
    assert (ws / "generated.txt").read_text() == "made by the generator\n"
    assert not (ws / "data.bin").exists()
    await cps.close()


async def test_rebase_undoes_the_session_change_on_top_of_the_users(ws: Path, settings):
    port = BufferPort()
    cps = await CheckpointService.open(ws, "s-rebase", settings, port=port)
    cp = await run_turn(ws, cps, port)
    app = ws / "src" / "app.py"
    app.write_text(app.read_text() + "\n\ndef user_added():\n    return 3\n")
    # and the user overwrote the generated file: it is never deleted then
    (ws / "generated.txt").write_text("the user's own text now\n")
    plan = await cps.plan_rewind(cp.id)
    gen = plan.file("generated.txt")
    assert gen is not None and gen.user_changed and "rebase" not in gen.choices
    result = await cps.apply_rewind(plan, changed_since="rebase")
    assert app.read_text() == "def main():\n    return 1\n\n\ndef helper():\n    return 2\n\n\ndef user_added():\n    return 3\n"
    assert (ws / "generated.txt").read_text() == "the user's own text now\n"
    statuses = {o.path: o.status for o in result.files}
    assert statuses["src/app.py"] == "rebased" and statuses["generated.txt"] == "kept"
    await cps.close()


async def test_overlapping_user_edit_is_kept_and_explicit_restore_overwrites(ws: Path):
    cps = await CheckpointService.open(ws, "s-conflict", CheckpointSettings())
    app = ws / "src" / "app.py"
    cp = await cps.begin_turn(0)
    async with cps.command("sed"):
        await sh(ws, "sed -i 's/return 1/return 100/' src/app.py")
    app.write_text(app.read_text().replace("return 100", "return 1000"))  # the user, on the same line
    plan = await cps.plan_rewind(cp.id)
    fp = plan.file("src/app.py")
    assert fp is not None and fp.user_changed and "rebase" not in fp.choices and "overlap" in fp.rebase_note
    res = await cps.apply_rewind(plan, changed_since="rebase")
    assert "return 1000" in app.read_text()
    assert "could not undo" in res.files[0].message
    # per-file choice: the user says "restore it anyway"
    plan = await cps.plan_rewind(cp.id)
    await cps.apply_rewind(plan, {"src/app.py": "restore"})
    assert app.read_text() == "def main():\n    return 1\n\n\ndef helper():\n    return 2\n"
    await cps.close()


async def test_a_file_changed_after_the_preview_is_not_touched(ws: Path):
    cps = await CheckpointService.open(ws, "s-late", CheckpointSettings())
    cp = await cps.begin_turn(0)
    async with cps.command("echo"):
        await sh(ws, "echo agent >> gen.py")
    plan = await cps.plan_rewind(cp.id)
    assert plan.file("gen.py").default == "restore"
    (ws / "gen.py").write_text("the user typed this meanwhile\n")
    res = await cps.apply_rewind(plan)
    assert (ws / "gen.py").read_text() == "the user typed this meanwhile\n"
    assert res.files[0].status == "kept"
    await cps.close()


async def test_resume_from_disk_rewinds(ws: Path, settings):
    original = files_of(ws)
    port = BufferPort()
    cps = await CheckpointService.open(ws, "s-resume", settings, port=port)
    cp = await run_turn(ws, cps, port)
    notes = ws / "src" / "notes.txt"
    notes.write_text(port.buffers.pop(notes))  # the editor saves the buffer, then closes
    await cps.begin_turn(1)
    await cps.close()

    again = await CheckpointService.open(ws, "s-resume", settings)
    assert again.warnings == []
    assert [t.message_index for t in again.turns()] == [0, 1]
    assert again.checkpoint_for_message(0).id == cp.id and again.checkpoint_for_message(0).message_id == "m-0"
    again.start()
    plan = await again.plan_rewind(cp.id)
    await again.apply_rewind(plan)
    now = files_of(ws)
    for rel in ("data.bin", "gen.py", "big.bin", "old_name.txt", "src/app.py"):
        assert now[rel] == original[rel], rel
    # notes.txt was edited in a buffer with unsaved text: that text comes back, on disk now
    assert now["src/notes.txt"] == b"line one\nline two\nunsaved user line\n"
    assert "generated.txt" not in now
    await again.close()


CHILD = r"""
import asyncio, os, sys
sys.path.insert(0, sys.argv[2])
from pathlib import Path
from codeloop.services.checkpoints import CheckpointService, CheckpointSettings

async def main():
    root = Path(sys.argv[1])
    cps = await CheckpointService.open(root, "s-crash", CheckpointSettings(watch=sys.argv[3] == "1"))
    cp = await cps.begin_turn(0)
    async with cps.command("rm"):
        os.remove(root / "data.bin")
    async with cps.command("gen"):
        (root / "gen.py").write_text("VALUE = 99\n")
        (root / "generated.txt").write_text("new\n")
    await cps.begin_turn(1)
    print("READY", cp.id, flush=True)
    i = 0
    while True:   # mid-turn, recording, until killed
        i += 1
        async with cps.command(f"loop {i}"):
            (root / f"loop{i % 50}.txt").write_text("x" * 20000 * (i % 7))
asyncio.run(main())
"""


async def test_rewind_after_sigkill_mid_recording(ws: Path, settings):
    original = files_of(ws)
    child = subprocess.Popen([sys.executable, "-c", CHILD, str(ws), str(SERVER), "1" if settings.watch else "0"],
                             stdout=subprocess.PIPE, text=True)
    try:
        line = child.stdout.readline().split()
        assert line[0] == "READY", line
        cp_id = line[1]
        await asyncio.sleep(0.3)  # let it record for a while
    finally:
        child.send_signal(signal.SIGKILL)
        child.wait()
    # a record cut mid-write, as a SIGKILL during append leaves it
    journal = ws / ".codeloop" / "checkpoints" / "sessions" / "s-crash.jsonl"
    with journal.open("ab") as f:
        f.write(b'{"type":"changes","checkpoint":"c2","who":"command","files":[{"path":"gen.py","bef')
    cps = await CheckpointService.open(ws, "s-crash", settings)
    assert any("incomplete last record" in w for w in cps.warnings)
    assert journal.read_bytes().endswith(b"\n")  # cut record removed before appending
    await cps.ready()
    plan = await cps.plan_rewind(cp_id)
    res = await cps.apply_rewind(plan)
    now = files_of(ws)
    assert now["data.bin"] == original["data.bin"] and now["gen.py"] == original["gen.py"]
    assert "generated.txt" not in now
    # what the command cut off by the kill wrote was never recorded as the session's: it
    # is found on resume, said, and left alone; everything recorded is undone
    outside = dict(plan.outside)
    statuses = {o.path: o.status for o in res.files}
    for p in now:
        if p.startswith("loop"):
            if p in outside:  # only that command wrote it
                assert "a command cut off" in outside[p], (p, plan.outside)
            else:  # the session wrote it before: what the cut-off command did is not undone blindly
                assert plan.file(p).user_changed and statuses[p] == "kept", (p, plan.file(p))
    assert set(outside) <= {p for p in now if p.startswith("loop")} | {f"loop{i}.txt" for i in range(50)}
    assert "failed" not in {o.status for o in res.files}
    if outside:
        assert "left alone (changed outside the session)" in res.summary
    await cps.close()


async def test_ignored_files_are_not_tracked_and_the_store_is_git_ignored(ws: Path, settings):
    (ws / "scratch").mkdir()
    (ws / "scratch" / "keep.txt").write_text("excluded by the setting\n")
    st = CheckpointSettings(watch=settings.watch, exclude=("scratch/",))
    cps = await CheckpointService.open(ws, "s-ignore", st)
    await cps.ready()
    tracked = cps.store.tracked()
    assert "src/app.py" in tracked and "big.bin" in tracked
    assert not any(p.startswith(("build/", ".git/", ".codeloop/", "scratch/")) or p.endswith(".log")
                   for p in tracked if p != ".codeloop/.gitignore")  # (a workspace file like any other)
    assert (ws / ".codeloop" / ".gitignore").read_text().splitlines().count("checkpoints/") == 1
    cp = await cps.begin_turn(0)
    async with cps.command("touch ignored") as rec:
        await sh(ws, "echo x > build/new.o; echo y >> trace.log; echo z > scratch/keep.txt; mkdir -p build/deep; echo 1 > build/deep/f")
    assert rec.changes == []
    await cps.record_edit(ws / "src" / "app.py", (ws / "src" / "app.py").read_text(), "changed\n")
    git = subprocess.run(["git", "status", "--porcelain", "--ignored", "-uall"], cwd=ws, capture_output=True, text=True).stdout
    store_lines = [line for line in git.splitlines() if ".codeloop/checkpoints" in line]
    assert store_lines and all(line.startswith("!!") for line in store_lines), git
    check = subprocess.run(["git", "check-ignore", "-q", ".codeloop/checkpoints/sessions/s-ignore.jsonl"], cwd=ws)
    assert check.returncode == 0
    assert (await cps.plan_rewind(cp.id)).file("src/app.py") is not None
    await cps.close()


async def test_ignore_rules_changed_by_a_command_never_make_existing_files_look_created(ws: Path, settings):
    cps = await CheckpointService.open(ws, "s-gitignore", settings)
    cp = await cps.begin_turn(0)
    async with cps.command("un-ignore build") as rec:
        await sh(ws, "printf '*.log\\n' > .gitignore")
    assert [(c.path, c.kind) for c in rec.changes] == [(".gitignore", "modified")]
    assert "build/out.o" in cps.store.tracked()
    plan = await cps.plan_rewind(cp.id)
    assert [f.path for f in plan.files] == [".gitignore"]
    await cps.apply_rewind(plan)
    assert (ws / "build" / "out.o").read_bytes() == b"\x7fELF ignored"
    assert (ws / ".gitignore").read_text() == "build/\n*.log\n"
    await cps.close()


async def test_folders_created_moved_and_removed_by_commands(ws: Path, settings):
    original = files_of(ws)
    cps = await CheckpointService.open(ws, "s-dirs", settings)
    cp = await cps.begin_turn(0)
    async with cps.command("mkdir") as rec:
        await sh(ws, "mkdir -p pkg/sub && echo a > pkg/sub/a.py && echo b > pkg/b.py")
    assert sorted(c.path for c in rec.changes) == ["pkg/b.py", "pkg/sub/a.py"]
    async with cps.command("mv dir") as rec:
        await sh(ws, "mv src lib")
    assert sorted((c.path, c.kind) for c in rec.changes) == [
        ("lib/app.py", "created"), ("lib/notes.txt", "created"), ("src/app.py", "deleted"), ("src/notes.txt", "deleted")]
    async with cps.command("edit in moved dir") as rec:
        await sh(ws, "echo more >> lib/app.py")
    assert [(c.path, c.kind) for c in rec.changes] == [("lib/app.py", "modified")]
    async with cps.command("rm -rf") as rec:
        await sh(ws, "rm -rf pkg")
    assert sorted((c.path, c.kind) for c in rec.changes) == [("pkg/b.py", "deleted"), ("pkg/sub/a.py", "deleted")]
    await cps.apply_rewind(await cps.plan_rewind(cp.id))
    now = files_of(ws)
    assert {k: v for k, v in now.items()} == original
    await cps.close()


async def test_changes_between_steps_are_the_users_and_are_not_undone(ws: Path, settings):
    cps = await CheckpointService.open(ws, "s-unknown", settings)
    cp = await cps.begin_turn(0)
    async with cps.command("agent"):
        await sh(ws, "echo agent >> gen.py")
    (ws / "src" / "notes.txt").write_bytes(b"the user's edit\n")  # between steps, not the session's
    async with cps.command("agent again") as rec:
        await sh(ws, "echo again >> gen.py")
    assert [c.path for c in rec.changes] == ["gen.py"]
    unknown = [c for c in cps.store.changes if c.who == "unknown"]
    assert [c.path for c in unknown] == ["src/notes.txt"]
    plan = await cps.plan_rewind(cp.id)
    assert [f.path for f in plan.files] == ["gen.py"]
    await cps.apply_rewind(plan)
    assert (ws / "gen.py").read_text() == "VALUE = 1\n"
    assert (ws / "src" / "notes.txt").read_bytes() == b"the user's edit\n"
    await cps.close()


async def test_crlf_file_edited_as_text_restores_its_exact_bytes(ws: Path):
    cps = await CheckpointService.open(ws, "s-crlf", CheckpointSettings())
    await cps.ready()
    notes = ws / "src" / "notes.txt"
    cp = await cps.begin_turn(0)
    notes.write_bytes(b"line one\r\nline 2\r\n")  # the headless applier keeps CRLF on disk
    await cps.record_edit(notes, "line one\nline two\n", "line one\nline 2\n")
    async with cps.command("noop") as rec:
        pass
    assert rec.changes == []  # the disk showing the edit is not a change
    plan = await cps.plan_rewind(cp.id)
    assert not plan.file("src/notes.txt").user_changed
    await cps.apply_rewind(plan)
    assert notes.read_bytes() == b"line one\r\nline two\r\n"
    await cps.close()


async def test_size_cap_files_are_recorded_not_kept_and_rewind_says_so(ws: Path, settings):
    st = CheckpointSettings(watch=settings.watch, max_file_bytes=1 * MiB)
    cps = await CheckpointService.open(ws, "s-cap", st)
    cp = await cps.begin_turn(0)
    async with cps.command("truncate big") as rec:
        await sh(ws, "head -c 100 big.bin > t && mv t big.bin && rm data.bin")
    big = next(c for c in rec.changes if c.path == "big.bin")
    assert big.before is not None and not big.before.kept and big.before.why == "size" and big.before.size == 5 * MiB
    plan = await cps.plan_rewind(cp.id)
    assert plan.file("big.bin").action == "unavailable"
    res = await cps.apply_rewind(plan)
    assert (ws / "big.bin").stat().st_size == 100  # not pretended
    assert (ws / "data.bin").exists()  # the others still restored
    assert "not restored: big.bin (its content then was not kept (larger than the size cap))" in res.summary
    await cps.close()


async def test_budget_prunes_old_sessions_but_never_a_live_one(ws: Path):
    blob_dir = ws / ".codeloop" / "checkpoints" / "objects"
    budget = 400_000
    st = CheckpointSettings(budget_bytes=budget, watch=False, max_file_bytes=200_000)
    (ws / "big.bin").unlink()
    (ws / "data.bin").unlink()
    rng = random.Random(3)
    sessions = []
    live = None
    for n in range(4):
        cps = await CheckpointService.open(ws, f"s-old{n}", st)
        await cps.begin_turn(0)
        async with cps.command("write"):
            (ws / f"blob{n}.bin").write_bytes(rng.randbytes(150_000))
        async with cps.command("rm"):
            (ws / f"blob{n}.bin").unlink()
        sessions.append(cps.store.journal.path)
        if n == 1:
            live = cps  # stays open: another window's session
        else:
            await cps.close()
        os.utime(cps.store.journal.path, (1000 + n, 1000 + n))  # oldest first
    cps = await CheckpointService.open(ws, "s-new", st)
    await cps.ready()  # the baseline prunes
    left = sorted(p.name for p in (ws / ".codeloop" / "checkpoints" / "sessions").glob("*.jsonl"))
    assert "s-old1.jsonl" in left and "s-new.jsonl" in left  # the live one survives
    assert "s-old0.jsonl" not in left
    # the blobs are only deleted once unused for the grace period (another process may
    # have just written them): age them, and prune again
    for p in blob_dir.rglob("*"):
        if p.is_file():
            os.utime(p, (1000, 1000))
    report = cps.store.prune()
    assert report["bytes_freed"] > 0
    assert cps.store.blobs.total_bytes() <= budget
    # full: new contents are recorded as not kept, and a rewind says so
    cp = await cps.begin_turn(0)
    (ws / "huge1.bin").write_bytes(rng.randbytes(190_000))
    (ws / "huge2.bin").write_bytes(rng.randbytes(190_000))
    async with cps.command("noop"):
        pass
    async with cps.command("rm huge") as rec:
        await sh(ws, "rm huge1.bin huge2.bin")
    whys = sorted((c.before.kept, c.before.why) for c in rec.changes)
    assert (False, "budget") in whys
    res = await cps.apply_rewind(await cps.plan_rewind(cp.id))
    assert "the checkpoint store was full" in res.summary
    await live.close()
    await cps.close()


async def test_dedup_and_index_make_a_second_session_cheap(ws: Path):
    # a file written in the same clock tick as the snapshot is "racy" and read again: the
    # fixture's files are not, once a tick has passed
    await asyncio.sleep(0.05)
    st = CheckpointSettings(watch=False)
    first = await CheckpointService.open(ws, "s-a", st)
    await first.ready()
    n_files = first.store.stats().tracked_files
    blobs = first.store.blobs.total_bytes()
    assert first.store.stats().baseline_read_files == n_files
    await first.close()
    second = await CheckpointService.open(ws, "s-b", st)
    await second.ready()
    assert second.store.stats().baseline_read_files == 0  # the stat cache vouched for every file
    assert second.store.blobs.total_bytes() == blobs  # nothing stored twice
    (ws / "copy.bin").write_bytes((ws / "data.bin").read_bytes())
    async with second.command("noop"):
        pass
    assert second.store.blobs.total_bytes() == blobs  # same content: the same blob
    await second.close()


async def test_blob_damage_is_reported_not_restored(ws: Path):
    cps = await CheckpointService.open(ws, "s-damage", CheckpointSettings(watch=False))
    cp = await cps.begin_turn(0)
    async with cps.command("rm") as rec:
        await sh(ws, "rm gen.py")
    path, offset, length = cps.store.blobs.location(rec.changes[0].before.hash)  # in the baseline's pack
    with open(path, "r+b") as f:
        f.seek(offset + 1)
        f.write(b"garbage")
    res = await cps.apply_rewind(await cps.plan_rewind(cp.id))
    assert not (ws / "gen.py").exists()
    assert "lost from the checkpoint store" in res.summary
    await cps.close()


async def test_turn_mapping_and_steps(ws: Path):
    cps = await CheckpointService.open(ws, "s-map", CheckpointSettings(watch=False))
    t0 = await cps.begin_turn(0, label="first")
    s1 = await cps.begin_step("edit_file")
    await cps.record_edit("gen.py", "VALUE = 1\n", "VALUE = 5\n")
    t1 = await cps.begin_turn(2, label="second")
    await cps.begin_step("run_command")
    await cps.begin_step("run_command")
    turns = cps.turns()
    assert [(t.checkpoint.id, t.message_index, t.steps, t.files_changed) for t in turns] == [
        (t0.id, 0, 1, 1), (t1.id, 2, 2, 0)]
    assert s1.turn == t0.id and s1.message_index == 0
    assert cps.checkpoint_for_message(2).id == t1.id and cps.checkpoint_for_message(1) is None
    # rewinding to a step works the same way
    plan = await cps.plan_rewind(s1.id)
    assert [f.path for f in plan.files] == ["gen.py"]
    # the conversation is rewound by the host; a new message 2 gets a new checkpoint
    t2 = await cps.begin_turn(2, label="second, again")
    assert cps.checkpoint_for_message(2).id == t2.id
    await cps.close()


def test_settings_from_mapping():
    st, warnings = CheckpointSettings.from_mapping({"budgetBytes": 1000, "maxFileBytes": -1, "exclude": ["x/"],
                                                    "watch": "yes", "bogus": 1})
    assert st.budget_bytes == 1000 and st.max_file_bytes == CheckpointSettings().max_file_bytes
    assert st.exclude == ("x/",) and st.watch is True
    assert len(warnings) == 3
    assert CheckpointSettings.from_mapping("nope")[1]


def test_journal_torn_line_in_the_middle_is_skipped_and_said(tmp_path: Path):
    root = tmp_path / "w"
    root.mkdir()
    store = CheckpointStore.open(root, "s-j")
    store.begin_turn(0)
    store.close()
    path = store.journal.path
    data = path.read_bytes()
    path.write_bytes(data + b"{broken\n" + json.dumps({"type": "checkpoint", "id": "c7", "kind": "turn",
                                                       "turn": "c7", "message_index": 3, "label": "", "ts": ""}).encode() + b"\n")
    again = CheckpointStore.open(root, "s-j")
    assert any("skipped an unreadable record" in w for w in again.warnings)
    assert [c.id for c in again.checkpoints] == ["c1", "c7"]
    assert again.begin_turn(4).id == "c8"
    again.close()


async def test_symbolic_links_made_by_commands(ws: Path, settings):
    cps = await CheckpointService.open(ws, "s-links", settings)
    cp = await cps.begin_turn(0)
    async with cps.command("ln") as rec:
        await sh(ws, "ln -s gen.py alias.py && rm old_name.txt && ln -s src old_name.txt")
    assert sorted((c.path, c.kind) for c in rec.changes) == [("alias.py", "created"), ("old_name.txt", "modified")]
    assert all(c.after.why == "symlink" for c in rec.changes)
    res = await cps.apply_rewind(await cps.plan_rewind(cp.id))
    assert not os.path.lexists(ws / "alias.py")  # the session's link is removed, not its target
    assert (ws / "gen.py").read_text() == "VALUE = 1\n"
    assert not (ws / "old_name.txt").is_symlink() and (ws / "old_name.txt").read_text() == "moved around\n"
    assert {o.path: o.status for o in res.files} == {"alias.py": "deleted", "old_name.txt": "restored"}
    await cps.close()


def test_blob_packs_dedup_gc_and_repack(tmp_path: Path):
    from codeloop.services.checkpoints.blobs import BlobStore

    store = BlobStore(tmp_path / "objects")
    rng = random.Random(5)
    datas = [rng.randbytes(3000) + b"x" * 3000 for _ in range(10)]
    with store.batch():
        hashes = [store.put(d)[0] for d in datas]
        assert store.put(datas[0])[1] == 0  # stored once
        assert store.get(hashes[3]) == datas[3]  # readable before the pack is finished
    loose_h, _ = store.put(b"a loose blob" * 100)
    [pack] = list((tmp_path / "objects" / "pack").glob("*.pack"))
    assert pack.with_suffix(".idx").exists()
    other = BlobStore(tmp_path / "objects")  # another process sees the pack
    assert all(other.get(h) == d for h, d in zip(hashes, datas)) and other.get(loose_h) == b"a loose blob" * 100
    # an unfinished pack (cut off before its index) is removed once old
    orphan = pack.with_name("cut.pack")
    orphan.write_bytes(b"\x00partial")
    old = time.time() - 7200
    for p in (tmp_path / "objects").rglob("*"):
        if p.is_file():
            os.utime(p, (old, old))
    # keep 8 of 10: the pack stays as it is
    assert other.gc(set(hashes[:8]) | {loose_h}, grace=60) == (0, 0)  # not worth rewriting
    assert not orphan.exists()
    store2 = BlobStore(tmp_path / "objects")
    # keep 2 of 10: more than half is garbage, so the kept ones are rewritten into a new pack
    for p in (tmp_path / "objects").rglob("*"):
        if p.is_file():
            os.utime(p, (old, old))
    removed, freed = store2.gc(set(hashes[:2]), grace=60)
    assert removed == 8 + 1 and freed > 0  # 8 packed, 1 loose
    assert not pack.exists()
    assert [store2.get(h) for h in hashes[:2]] == datas[:2] and store2.get(hashes[5]) is None
    assert BlobStore(tmp_path / "objects").get(hashes[1]) == datas[1]
    # keep nothing: the pack goes
    for p in (tmp_path / "objects").rglob("*"):
        if p.is_file():
            os.utime(p, (old, old))
    store2.gc(set(), grace=60)
    assert not list((tmp_path / "objects" / "pack").glob("*.pack")) and store2.total_bytes() == 0


async def test_overlapping_commands_are_both_the_sessions(ws: Path):
    cps = await CheckpointService.open(ws, "s-overlap", CheckpointSettings())
    cp = await cps.begin_turn(0)
    async with cps.command("first") as first:
        await sh(ws, "echo one >> gen.py")
        async with cps.command("second") as second:
            await sh(ws, "echo two > second.txt")
    # what the first had done when the second started is the first's (a command's, not "unknown")
    gen = [c for c in cps.store.changes if c.path == "gen.py"]
    assert [(c.who, c.label) for c in gen] == [("command", "while running: first")]
    assert [(c.path, c.who) for c in second.changes] == [("second.txt", "command")]
    assert first.changes == []
    await cps.apply_rewind(await cps.plan_rewind(cp.id))
    assert (ws / "gen.py").read_text() == "VALUE = 1\n" and not (ws / "second.txt").exists()
    await cps.close()


async def test_watcher_fallbacks_overflow_and_watch_limit(ws: Path, monkeypatch):
    from codeloop.services.checkpoints import inotify

    cps = await CheckpointService.open(ws, "s-overflow", CheckpointSettings())
    await cps.ready()
    watcher = cps.store._watcher
    assert watcher is not None
    real_drain = watcher.drain

    def overflowing():  # the kernel's queue overflowed (fs.inotify.max_queued_events)
        batch = real_drain()
        batch.overflow = True
        return batch

    monkeypatch.setattr(watcher, "drain", overflowing)
    await cps.begin_turn(0)
    async with cps.command("edit") as rec:
        await sh(ws, "echo changed > gen.py")
    assert [c.path for c in rec.changes] == ["gen.py"]
    assert cps.store.stats().last_refresh["mode"] == "walk"
    await cps.close()

    def limited(self, abs_dir, rel_dir):  # fs.inotify.max_user_watches reached
        raise inotify.WatchLimit(28, "the inotify watch limit is reached")

    monkeypatch.setattr(inotify.Watcher, "add", limited)
    cps = await CheckpointService.open(ws, "s-limit", CheckpointSettings())
    await cps.ready()
    stats = cps.store.stats()
    assert not stats.watcher and "watch limit" in stats.watcher_note
    await cps.begin_turn(0)
    async with cps.command("rm") as rec:
        await sh(ws, "rm gen.py")
    assert [(c.path, c.kind) for c in rec.changes] == [("gen.py", "deleted")]
    await cps.close()


async def test_periodic_rescan_catches_writes_inotify_cannot_see(ws: Path):
    cps = await CheckpointService.open(ws, "s-mmap", CheckpointSettings(rescan_seconds=0.001))
    await cps.ready()
    await cps.begin_turn(0)
    # a write through mmap: no inotify event
    await py(ws, """
        import mmap
        with open("gen.py", "r+b") as f:
            m = mmap.mmap(f.fileno(), 0)
            m[0:5] = b"HELLO"
            m.flush()
            m.close()
    """)
    await asyncio.sleep(0.01)
    await cps.begin_turn(1)  # the rescan
    seen = [c for c in cps.store.changes if c.path == "gen.py"]
    assert seen and seen[-1].who == "unknown" and seen[-1].after.hash != seen[-1].before.hash
    cp = cps.checkpoint_for_message(1)
    async with cps.command("rewrite"):
        await sh(ws, "echo agent > gen.py")
    await cps.apply_rewind(await cps.plan_rewind(cp.id))
    assert (ws / "gen.py").read_bytes().startswith(b"HELLO")  # the version before the command, not older
    await cps.close()


def test_the_documented_settings_are_the_real_ones():
    import re as _re

    doc = (Path(__file__).resolve().parent.parent / "docs" / "checkpoints.md").read_text(encoding="utf-8")
    table = doc.split("## Settings", 1)[1].split("\n\n", 2)[1]
    keys = _re.findall(r"^\| `(\w+)` \|", table, _re.M)
    assert keys == ["enabled", "budgetBytes", "maxFileBytes", "exclude", "watch", "rescanSeconds"]
    defaults = CheckpointSettings()
    values = {"enabled": True, "budgetBytes": 1, "maxFileBytes": 1, "exclude": [], "watch": False, "rescanSeconds": 1}
    st, warnings = CheckpointSettings.from_mapping({k: values[k] for k in keys})
    assert warnings == [] and st.watch is False and st.budget_bytes == 1
    assert "| `budgetBytes` | 2 GiB |" in table and defaults.budget_bytes == 2 * 1024 ** 3
    assert "| `maxFileBytes` | 16 MiB |" in table and defaults.max_file_bytes == 16 * MiB
    assert "| `rescanSeconds` | `600` |" in table and defaults.rescan_seconds == 600


async def test_an_explicit_restore_is_not_applied_to_edits_made_after_the_preview(ws: Path):
    cps = await CheckpointService.open(ws, "s-late2", CheckpointSettings())
    cp = await cps.begin_turn(0)
    async with cps.command("echo"):
        await sh(ws, "echo agent >> gen.py")
    (ws / "gen.py").write_text("the user's first edit\n")
    plan = await cps.plan_rewind(cp.id)
    assert plan.file("gen.py").user_changed and "the user's first edit" in plan.file("gen.py").diff
    (ws / "gen.py").write_text("the user's second edit, not in the preview\n")
    res = await cps.apply_rewind(plan, {"gen.py": "restore"})
    assert (ws / "gen.py").read_text() == "the user's second edit, not in the preview\n"
    assert res.files[0].status == "kept" and "after the preview" in res.summary
    await cps.close()
