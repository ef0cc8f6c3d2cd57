"""Rewind end to end in the CLI: the real ``codeloop chat`` against the scripted model,
real files, real commands (``rm``, a Python generator), then the real ``codeloop rewind``
(list, preview, apply, ``--code-only``, ``--conversation-only``, ``--choose``), ``/rewind``
in chat, a resume after the rewind, and a rewind after the CLI was killed with SIGKILL
mid-turn."""

from __future__ import annotations

import json
import os
import random
import signal
import subprocess
import sys
import time
from pathlib import Path

from conftest import CODELOOP, cli_env, processes_matching, unique_marker, words
from scripted_model import Call, ChatRequest, Keyed, Script, Text, ToolCalls

A_PY = "def greet(name):\n    return 'hello ' + name\n"
A_AGENT = "def greet(name):\n    return f'Hello, {name}!'\n"
B_TXT = b"first line\r\nsecond line\r\n"  # CRLF on disk
B_AGENT = "first line\nsecond line\nthird line, by the agent\n"
GEN = (
    "import os\n"
    "with open('d.bin', 'r+b') as f:\n"
    "    f.seek(4096); f.write(os.urandom(8192))\n"
    "open('e.txt', 'w').write('made by the generator\\n')\n"
)


def tree(root: Path) -> dict[str, bytes]:
    out = {}
    for p in sorted(root.rglob("*")):
        rel = p.relative_to(root).as_posix()
        if p.is_file() and not rel.startswith(".codeloop/"):
            out[rel] = p.read_bytes()
    return out


def make_workspace(root: Path) -> dict[str, bytes]:
    rng = random.Random(19)
    (root / "a.py").write_text(A_PY)
    (root / "b.txt").write_bytes(B_TXT)
    (root / "c.bin").write_bytes(bytes(rng.randrange(256) for _ in range(20_000)))
    (root / "d.bin").write_bytes(rng.randbytes(3 * 1024 * 1024))  # large and binary
    (root / "gen.py").write_text(GEN)
    return tree(root)


def the_turn() -> Script:
    """Two edits, a command that deletes a file, a command that rewrites one and creates one."""
    return Script([
        ToolCalls([Call("edit_file", {"path": "a.py", "old_string": "return 'hello ' + name",
                                      "new_string": "return f'Hello, {name}!'"})]),
        ToolCalls([Call("write_file", {"path": "b.txt", "content": B_AGENT})]),
        ToolCalls([Call("run_command", {"command": "rm c.bin"})]),
        ToolCalls([Call("run_command", {"command": f"{sys.executable} gen.py"})]),
        Text("Done: greeting fixed, notes extended, data regenerated."),
    ])


def session_file(root: Path) -> Path:
    [path] = sorted((root / ".codeloop" / "sessions").glob("*.jsonl"))
    return path


def records(path: Path) -> list[dict]:
    return [json.loads(line) for line in path.read_text().splitlines() if line.strip()]


def user_texts(req: ChatRequest) -> list[str]:
    return [words(m["content"]) for m in req.messages if m["role"] == "user"]


def run_chat(run_cli, server, root: Path, stdin: str, *extra: str):
    result = run_cli(["chat", "--cwd", str(root), "--yes", *extra], server.base_url, stdin=stdin)
    assert result.code == 0, result.both
    return result


def rewind(run_cli, server, root: Path, *args: str):
    return run_cli(["rewind", "--cwd", str(root), *args], server.base_url)


def test_rewind_restores_everything_and_keeps_what_the_user_changed_since(model_server, run_cli, tmp_path):
    before = make_workspace(tmp_path)
    seen: dict[str, ChatRequest] = {}

    def remember(key: str, reply):
        def answer(req: ChatRequest):
            seen[key] = req
            return reply
        return answer

    server = model_server(Keyed({
        "refactor": the_turn(),
        "and then": Text("Nothing more to do."),
        "after the rewind": Script([remember("after", Text("Understood."))]),
    }))
    run_chat(run_cli, server, tmp_path, "refactor the greeting\nand then?\n")
    after_turn = tree(tmp_path)
    assert after_turn["a.py"].decode() == A_AGENT and "c.bin" not in after_turn and "e.txt" in after_turn
    assert after_turn["d.bin"] != before["d.bin"]
    # The user edits a.py afterwards, outside codeloop.
    (tmp_path / "a.py").write_text(A_AGENT + "\n# the user's own line\n")

    listed = rewind(run_cli, server, tmp_path, "list")
    assert listed.code == 0, listed.both
    assert "1  refactor the greeting" in listed.out and "2  and then?" in listed.out
    assert "4 files changed since" in listed.out or "5 files changed since" in listed.out

    preview = rewind(run_cli, server, tmp_path, "preview", "1")
    assert preview.code == 0, preview.both
    out = preview.out
    assert "a.py: changed since the session's last change" in out
    assert "c.bin: recreate it" in out and "e.txt: delete it (the session created it)" in out
    assert "Binary file d.bin" in out and "+# the user's own line" in out
    assert "Conversation: the last 6 message(s) are removed" in out or "Conversation: the last" in out
    assert tree(tmp_path) == {**after_turn, "a.py": (A_AGENT + "\n# the user's own line\n").encode()}  # nothing touched

    # No terminal and no --yes: refused, nothing touched.
    refused = rewind(run_cli, server, tmp_path, "apply", "1")
    assert refused.code == 2 and "no terminal" in refused.err

    applied = rewind(run_cli, server, tmp_path, "apply", "1", "--yes")
    assert applied.code == 0, applied.both
    now = tree(tmp_path)
    # Byte for byte: the CRLF text, the recreated binary, the large binary rewritten in place.
    for name in ("b.txt", "c.bin", "d.bin", "gen.py"):
        assert now[name] == before[name], name
    assert "e.txt" not in now  # the one the session created
    assert now["a.py"] == (A_AGENT + "\n# the user's own line\n").encode()  # changed since: kept
    assert "kept (changed since the session's change, so not touched): a.py" in applied.out
    assert "deleted (created during the session): e.txt" in applied.out
    assert "Your message was: refactor the greeting" in applied.out

    # The conversation was cut in the session file: a resume starts before message 1,
    # and the model is told what the rewind did.
    recs = records(session_file(tmp_path))
    rw = [r for r in recs if r["type"] == "rewind"]
    assert len(rw) == 1 and rw[0]["keep"] == 0
    run_chat(run_cli, server, tmp_path, "after the rewind: carry on\n", "--continue")
    req = seen["after"]
    assert user_texts(req) == ["after the rewind: carry on"]
    sent = [m for m in req.messages if m["role"] == "user"][0]["content"]
    assert "Rewind: The user rewound this conversation" in sent and "kept (changed since" in sent and "a.py" in sent

    # The rewind itself can be undone: it is listed, and rewinding to it redoes the session's changes.
    listed = rewind(run_cli, server, tmp_path, "list")
    undo_id = next(line.split()[0] for line in listed.out.splitlines() if "undo: the rewind" in line)
    undone = rewind(run_cli, server, tmp_path, "apply", undo_id, "--yes", "--code-only")
    assert undone.code == 0, undone.both
    again = tree(tmp_path)
    assert again["b.txt"] == after_turn["b.txt"] and "c.bin" not in again and again["e.txt"] == after_turn["e.txt"]
    assert again["d.bin"] == after_turn["d.bin"]


def test_choose_restore_code_only_and_conversation_only(model_server, run_cli, tmp_path):
    before = make_workspace(tmp_path)
    server = model_server(Keyed({"refactor": the_turn(), "more": Text("More.")}))
    run_chat(run_cli, server, tmp_path, "refactor it\nmore\n")
    (tmp_path / "a.py").write_text("# the user rewrote it all\n")
    messages_before = [r for r in records(session_file(tmp_path)) if r["type"] == "message"]

    # --code-only with an explicit choice for the file the user changed: the checkpoint's version.
    res = rewind(run_cli, server, tmp_path, "apply", "1", "--yes", "--code-only", "--choose", "a.py=restore")
    assert res.code == 0, res.both
    assert tree(tmp_path) == before
    [code_only] = [r for r in records(session_file(tmp_path)) if r["type"] == "rewind"]
    assert code_only["keep"] is None  # the conversation untouched; the model is told with the next message
    assert code_only["note"].startswith("The user rewound the code (not the conversation).")

    # --conversation-only: the files stay as they are; the conversation loses message 2 on.
    (tmp_path / "x.txt").write_text("unrelated\n")
    res = rewind(run_cli, server, tmp_path, "apply", "2", "--yes", "--conversation-only")
    assert res.code == 0, res.both
    assert tree(tmp_path) == {**before, "x.txt": b"unrelated\n"}
    [rw] = [r for r in records(session_file(tmp_path)) if r["type"] == "rewind" and r["keep"] is not None]
    second = next(i for i, r in enumerate(messages_before) if r["message"]["role"] == "user" and
                  words(r["message"]["content"]) == "more")
    assert rw["keep"] == second
    listed = rewind(run_cli, server, tmp_path, "list")
    assert "1  refactor it" in listed.out and "more" not in listed.out.split("undo")[0]


def test_rewind_in_chat(model_server, run_cli, tmp_path):
    before = make_workspace(tmp_path)
    seen: dict[str, ChatRequest] = {}

    def after(req: ChatRequest):
        seen["next"] = req
        return Text("OK.")

    server = model_server(Keyed({"refactor": the_turn(), "next": Script([after])}))
    result = run_chat(run_cli, server, tmp_path,
                      "refactor it\n/rewind\n/rewind 1\n1\n/rewind 1 --yes\nnext question\n")
    out = result.out
    assert "1  refactor it" in out  # the listing
    assert "Rewind what?" in out and "Code and conversation" in out  # asked (the answer "1": both)
    assert tree(tmp_path) == before
    # The second /rewind 1: message 1 is gone from the conversation.
    assert "There is no message to rewind to in this conversation." in out
    assert user_texts(seen["next"]) == ["next question"]


MARKER = unique_marker("37.1414213")


def test_rewind_after_sigkill_mid_turn(model_server, run_cli, tmp_path):
    before = make_workspace(tmp_path)
    server = model_server(Keyed({
        "refactor": Script([
            ToolCalls([Call("write_file", {"path": "b.txt", "content": B_AGENT})]),
            ToolCalls([Call("run_command", {"command": "rm c.bin"})]),
            ToolCalls([Call("run_command", {"command": f"echo half > f.txt; sleep {MARKER}"})]),
        ]),
    }))
    proc = subprocess.Popen(CODELOOP + ["chat", "--cwd", str(tmp_path), "--yes"], stdin=subprocess.PIPE,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=cli_env(server.base_url))
    try:
        proc.stdin.write("refactor it\n")
        proc.stdin.flush()
        deadline = time.monotonic() + 60
        while not processes_matching(MARKER):
            assert time.monotonic() < deadline, "the long command never started"
            time.sleep(0.05)
        proc.send_signal(signal.SIGKILL)
        proc.wait(10)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait(10)
        for pid in processes_matching(MARKER):
            try:
                os.kill(pid, signal.SIGKILL)
            except ProcessLookupError:
                pass
        for f in (proc.stdout, proc.stderr, proc.stdin):
            f.close()
    assert proc.returncode == -signal.SIGKILL
    assert (tmp_path / "f.txt").exists() and "c.bin" not in tree(tmp_path)

    preview = rewind(run_cli, server, tmp_path, "preview")
    assert preview.code == 0, preview.both
    # What the killed command did is "changed outside the session": listed, never undone.
    assert "f.txt: changed outside the session" in preview.out
    res = rewind(run_cli, server, tmp_path, "apply", "--yes", "--code-only")
    assert res.code == 0, res.both
    assert tree(tmp_path) == {**before, "f.txt": b"half\n"}
    assert "left alone (changed outside the session): f.txt" in res.out
