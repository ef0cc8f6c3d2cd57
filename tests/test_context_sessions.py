import json
import subprocess
import time
from pathlib import Path

import pytest

from codeloop.core.ports import MessageLog
from codeloop.context.store import REDACTED, SessionStore


def records(path: Path) -> list[dict]:
    return [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines()]


def test_append_is_on_disk_after_each_call(tmp_path: Path, monkeypatch):
    import os

    synced: list[int] = []
    real_fsync = os.fsync
    monkeypatch.setattr(os, "fsync", lambda fd: (synced.append(fd), real_fsync(fd))[1])
    store = SessionStore(tmp_path)
    w = store.create("gpt-4o")
    assert isinstance(w, MessageLog)
    msgs = [
        {"role": "user", "content": "Add a --verbose flag to the CLI please, and test it"},
        {"role": "assistant", "content": None, "tool_calls": [{"id": "c1", "type": "function", "function": {"name": "read_file", "arguments": "{}"}}]},
        {"role": "tool", "tool_call_id": "c1", "content": "file text"},
    ]
    for i, m in enumerate(msgs, 1):
        n_synced = len(synced)
        w.append(m)
        assert len(synced) > n_synced  # fsynced before append returned
        recs = records(w.path)  # read back from disk right away
        assert recs[0]["type"] == "session" and recs[0]["id"] == w.id and recs[0]["model"] == "gpt-4o"
        assert recs[0]["cwd"] == str(tmp_path.resolve())
        assert [r["message"] for r in recs if r["type"] == "message"] == msgs[:i]
        assert all("ts" in r for r in recs[1:])
    assert recs[0]["title"] == "Add a --verbose flag to the CLI please, and test it"
    assert w.path.parent == tmp_path.resolve() / ".codeloop" / "sessions"


def test_gitignore_written_without_clobbering(tmp_path: Path):
    (tmp_path / ".codeloop").mkdir()
    (tmp_path / ".codeloop" / ".gitignore").write_text("mine.txt")
    SessionStore(tmp_path).create("m").append({"role": "user", "content": "hi"})
    lines = (tmp_path / ".codeloop" / ".gitignore").read_text().splitlines()
    assert lines == ["mine.txt", ".gitignore", "settings.local.json", "sessions/", "checkpoints/", "mcp-logs/"]
    SessionStore(tmp_path).create("m").append({"role": "user", "content": "again"})
    assert (tmp_path / ".codeloop" / ".gitignore").read_text().splitlines() == lines


def test_codeloop_leaves_git_status_clean_but_project_settings_show(tmp_path: Path):
    """What codeloop writes under .codeloop/ (its .gitignore included) never shows in git status;
    a project settings file the team may commit does."""
    git = ["git", "-C", str(tmp_path), "-c", "user.email=t@t", "-c", "user.name=t"]
    subprocess.run([*git, "init", "-q"], check=True)
    (tmp_path / "a.txt").write_text("a\n")
    subprocess.run([*git, "add", "a.txt"], check=True)
    subprocess.run([*git, "commit", "-qm", "init"], check=True)
    SessionStore(tmp_path).create("m").append({"role": "user", "content": "hi"})
    assert (tmp_path / ".codeloop" / "sessions").is_dir()
    status = lambda: subprocess.run([*git, "status", "--porcelain", "-uall"], check=True,  # noqa: E731
                                    capture_output=True, text=True).stdout
    assert status() == ""
    (tmp_path / ".codeloop" / "settings.json").write_text("{}")
    assert status() == "?? .codeloop/settings.json\n"


def test_user_storage_is_per_workspace(tmp_path: Path):
    data = tmp_path / "data"
    ws1, ws2 = tmp_path / "one", tmp_path / "two"
    ws1.mkdir()
    ws2.mkdir()
    a = SessionStore(ws1, storage="user", user_data_dir=data)
    b = SessionStore(ws2, storage="user", user_data_dir=data)
    a.create("m").append({"role": "user", "content": "in one"})
    assert a.dir.parent == data / "sessions" and a.dir != b.dir
    assert not (ws1 / ".codeloop").exists()
    assert [s.title for s in a.list()] == ["in one"] and b.list() == []


def test_truncated_last_line_is_dropped_and_reported(tmp_path: Path):
    store = SessionStore(tmp_path)
    w = store.create("m")
    w.append({"role": "user", "content": "first"})
    w.append({"role": "assistant", "content": "second"})
    with w.path.open("ab") as f:  # a crash in the middle of a write
        f.write(b'{"type":"message","message":{"role":"user","con')
    loaded = store.load(w.id)
    assert [m["content"] for m in loaded.messages] == ["first", "second"]
    assert len(loaded.warnings) == 1 and "incomplete last record" in loaded.warnings[0]
    # appending again starts on a clean line
    w2 = store.open_for_append(w.id)
    w2.append({"role": "user", "content": "third"})
    again = store.load(w.id)
    assert [m["content"] for m in again.messages] == ["first", "second", "third"]
    assert again.warnings == []


def test_secrets_never_reach_the_file(tmp_path: Path):
    key = "sk-proj-Abcdefghijklmnop1234567890"
    configured = "local-gateway-key-42"
    store = SessionStore(tmp_path, secrets=[configured])
    w = store.create("m")
    w.append({"role": "user", "content": f"my key is {key}, use it"})
    w.append(
        {
            "role": "assistant",
            "content": None,
            "tool_calls": [
                {
                    "id": "c1",
                    "type": "function",
                    "function": {
                        "name": "run_command",
                        "arguments": json.dumps({"command": "curl -H 'Authorization: Bearer x' https://api.example"}),
                    },
                }
            ],
        }
    )
    w.append({"role": "tool", "tool_call_id": "c1", "content": f"Authorization: Bearer {configured}\nok"})
    w.append_meta(note=f"header Authorization: Bearer abc.def-123456 and {configured}")
    raw = w.path.read_text()
    assert key not in raw and "sk-proj" not in raw
    assert configured not in raw
    assert "Bearer x" not in raw and "abc.def-123456" not in raw
    assert REDACTED in raw
    loaded = store.load(w.id)
    assert loaded.messages[0]["content"] == f"my key is {REDACTED}, use it"
    assert loaded.title == f"my key is {REDACTED}, use it"


def test_list_newest_first_and_latest(tmp_path: Path):
    store = SessionStore(tmp_path)
    assert store.list() == [] and store.latest() is None
    ids = []
    for title in ("alpha task", "beta task", "gamma task"):
        w = store.create("gpt-4o-mini")
        w.append({"role": "user", "content": title})
        w.append({"role": "assistant", "content": "ok"})
        ids.append(w.id)
        time.sleep(0.005)
    # touching the oldest makes it the newest
    store.open_for_append(ids[0]).append({"role": "user", "content": "more"})
    infos = store.list()
    assert [i.id for i in infos] == [ids[0], ids[2], ids[1]]
    assert infos[0].title == "alpha task" and infos[0].message_count == 3
    assert infos[1].model == "gpt-4o-mini"
    assert store.latest().id == ids[0]


def test_resume_returns_every_message_and_usage(tmp_path: Path):
    store = SessionStore(tmp_path)
    w = store.create("gpt-4o")
    msgs = [{"role": "user", "content": f"m{i}"} if i % 2 == 0 else {"role": "assistant", "content": f"m{i}"} for i in range(40)]
    for i, m in enumerate(msgs):
        w.append(m)
        if i % 2:
            w.append_usage({"prompt_tokens": 100, "completion_tokens": 10, "prompt_tokens_details": {"cached_tokens": 50}}, "gpt-4o")
    loaded = store.load(w.id)
    assert loaded.messages == msgs
    assert loaded.usage_totals == {"requests": 20, "prompt_tokens": 2000, "completion_tokens": 200, "cached_tokens": 1000}
    assert loaded.warnings == []


def test_compaction_record_reconstructs_the_conversation(tmp_path: Path):
    store = SessionStore(tmp_path)
    w = store.create("m")
    for i in range(6):
        w.append({"role": "user" if i % 2 == 0 else "assistant", "content": f"old {i}"})
    after = [{"role": "user", "content": "[Summary of the earlier conversation] ..."}, {"role": "assistant", "content": "old 5"}]
    w.append_compaction(after, summary="...")
    w.append({"role": "user", "content": "new question"})
    loaded = store.load(w.id)
    assert loaded.messages == after + [{"role": "user", "content": "new question"}]
    assert loaded.compactions == 1
    # a resumed writer keeps appending to the same file
    store.open_for_append(w.id).append({"role": "assistant", "content": "answer"})
    assert store.load(w.id).messages[-1] == {"role": "assistant", "content": "answer"}


def test_set_title_and_bad_ids(tmp_path: Path):
    store = SessionStore(tmp_path)
    w = store.create("m", title="given")
    w.append({"role": "user", "content": "ignored for the title"})
    assert store.load(w.id).title == "given"
    w.set_title("renamed " + "x" * 100)
    t = store.load(w.id).title
    assert t.startswith("renamed ") and len(t) <= 60
    with pytest.raises(ValueError):
        store.load("../etc/passwd")
    with pytest.raises(FileNotFoundError):
        store.open_for_append("nope")


def test_the_title_is_the_users_words_not_the_context_block_after_them(tmp_path: Path):
    from codeloop.runtime.session import with_context

    block = "<codeloop-context>\nmode: ask\ngit: 2 files changed\n</codeloop-context>"
    store = SessionStore(tmp_path)
    w = store.create("m")
    w.append({"role": "user", "content": with_context("plan the work", block)})
    assert store.load(w.id).title == "plan the work"
    parts = with_context([{"type": "text", "text": "look at this"}, {"type": "image_url", "image_url": {"url": "data:x"}}], block)
    w2 = store.create("m")
    w2.append({"role": "user", "content": parts})
    assert store.load(w2.id).title == "look at this"
    w3 = store.create("m")
    w3.append({"role": "user", "content": block})  # nothing but the block: no title from it
    w3.append({"role": "user", "content": "the real words"})
    assert store.load(w3.id).title == "the real words"
