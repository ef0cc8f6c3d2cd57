"""The pieces of the checkpoint wiring, each against its real counterpart: the settings
(the documented defaults are the service's), the session store's rewind record and the
checkpoint marks carried across a compaction, the process manager's command observer
(real subprocesses), the recording applier (a real checkpoint store on real files), and a
real ``AgentSession`` against the scripted model (a step checkpoint before each step that
may change something, none before a read-only one)."""

from __future__ import annotations

import re
from contextlib import asynccontextmanager
from pathlib import Path

from scripted_model import Call, ChatRequest, Error, Script, Text, ToolCalls

from codeloop.config import Settings, build_settings
from codeloop.context.store import SessionStore
from codeloop.core.ports import DenyAll, NullTerminal
from codeloop.edits.change import ChangeOutcome, ChangeSet, FileChange, FileOutcome
from codeloop.edits.disk import DiskChangeApplier
from codeloop.runtime.checkpoints import SessionCheckpoints
from codeloop.runtime.session import AgentSession, Ports
from codeloop.core.tasks import Tasks
from codeloop.services.checkpoints import CheckpointSettings
from codeloop.tools.processes import ProcessManager

ROOT = Path(__file__).resolve().parent.parent


def test_the_checkpoints_setting_has_the_services_defaults_and_is_documented():
    st, warnings = CheckpointSettings.from_mapping(Settings().checkpoints.model_dump(by_alias=True))
    assert warnings == [] and st == CheckpointSettings()
    s, problems = build_settings({"checkpoints": {"watch": False, "exclude": ["dist/"]}})
    assert problems == [] and s.checkpoints.watch is False and s.checkpoints.exclude == ["dist/"]
    s, problems = build_settings({"checkpoints": {"budgetbytes": 5}})  # a typo: reported, defaults kept
    assert problems and "checkpoints" in problems[0] and s.checkpoints.budget_bytes == 2 * 1024**3
    readme = (ROOT / "README.md").read_text(encoding="utf-8")
    row = next(line for line in readme.splitlines() if line.startswith("| `checkpoints` |"))
    for key in ("enabled", "budgetBytes", "maxFileBytes", "exclude", "watch", "rescanSeconds"):
        assert key in row, key


def test_rewind_records_cut_the_conversation_and_marks_survive_a_compaction(tmp_path):
    store = SessionStore(tmp_path)
    w = store.create("m")
    u1 = {"role": "user", "content": "one"}
    w.append(u1, checkpoint="c1")
    w.append({"role": "assistant", "content": "ok 1"})
    w.append({"role": "user", "content": "two"}, checkpoint="c3")
    w.append({"role": "assistant", "content": "ok 2"})
    w.append({"role": "user", "content": "two"}, checkpoint="c5")  # the same words again
    w.append({"role": "assistant", "content": "ok 3"})
    loaded = store.load(w.id)
    assert loaded.marks == [(0, "c1"), (2, "c3"), (4, "c5")]
    # A compaction keeps the last turn (a summary replaces the rest): its mark moves with it.
    kept = loaded.messages[4:]
    w.append_compaction([{"role": "user", "content": "[summary]"}, {"role": "assistant", "content": "ack"}, *kept], "s")
    loaded = store.load(w.id)
    assert loaded.marks == [(2, "c5")]
    # A rewind cuts the conversation, and its note waits for the next user message.
    w.append_rewind(2, "c5", "undone: a.py", "The user rewound this conversation.")
    loaded = store.load(w.id)
    assert [m["content"] for m in loaded.messages] == ["[summary]", "ack"]
    assert loaded.marks == [] and loaded.rewinds == 1 and loaded.notes == ["The user rewound this conversation."]
    w.append_rewind(None, "c1", "undone: b.py", "The user rewound the code (not the conversation).")
    assert len(store.load(w.id).messages) == 2 and len(store.load(w.id).notes) == 2
    w.append({"role": "user", "content": "three"}, checkpoint="c8")
    loaded = store.load(w.id)
    assert loaded.notes == [] and loaded.marks == [(2, "c8")]


class Observer:
    def __init__(self, fail: str = "") -> None:
        self.fail = fail
        self.seen: list[tuple[str, str, bool]] = []

    @asynccontextmanager
    async def around(self, command, cwd, background):
        self.seen.append(("before", command, background))
        if self.fail == "before":
            raise RuntimeError("snapshot failed")
        try:
            yield
        finally:
            self.seen.append(("after", command, background))
            if self.fail == "after":
                raise RuntimeError("snapshot failed")


async def test_the_process_manager_wraps_each_command_and_survives_a_broken_observer(tmp_path):
    obs = Observer()
    pm = ProcessManager(NullTerminal(), observer=obs)
    rec = await pm.run("echo one > one.txt", tmp_path, 30)
    assert rec.exit_code == 0 and obs.seen == [("before", "echo one > one.txt", False), ("after", "echo one > one.txt", False)]
    bg = await pm.start("sleep 30", tmp_path)
    assert obs.seen[-2:] == [("before", "sleep 30", True), ("after", "sleep 30", True)] and bg.running  # only its start
    for fail in ("before", "after"):
        pm.observer = Observer(fail)
        rec = await pm.run(f"echo {fail} > {fail}.txt", tmp_path, 30)
        assert rec.exit_code == 0 and (tmp_path / f"{fail}.txt").read_text() == f"{fail}\n"
    await pm.shutdown()


class Sink:
    def __init__(self) -> None:
        self.events = []

    def emit(self, event) -> None:
        self.events.append(event)


class TypedMeanwhile:
    """An applier whose user typed in the file while the change was reviewed; the change
    landed on top of their text (what the proposal pipeline does)."""

    def __init__(self, typed: str) -> None:
        self.typed = typed

    async def apply(self, changes: ChangeSet) -> ChangeOutcome:
        c = changes.changes[0]
        final = c.new_text + self.typed
        c.path.write_text(final)
        return ChangeOutcome("applied", "ok", [FileOutcome(c.path, "applied", final_text=final)])


async def test_the_recording_applier_keeps_what_the_user_typed_during_the_review(tmp_path):
    f = tmp_path / "notes.txt"
    f.write_text("alpha\nbeta\n")
    cps = SessionCheckpoints(tmp_path, "s-typed", Settings().checkpoints, sink=Sink(), tasks=Tasks())
    service = await cps.service()
    cp = await service.begin_turn(0)
    applier = cps.applier(TypedMeanwhile("typed during the review\n"), _NoDocs())
    await applier.apply(ChangeSet("edit_file", (FileChange(f, "alpha\nbeta\n", "ALPHA\nbeta\n"),)))
    assert f.read_text() == "ALPHA\nbeta\ntyped during the review\n"
    plan = await service.plan_rewind(cp.id)
    res = await service.apply_rewind(plan)
    # the session's change is undone; the user's typing (made before it landed) stays
    assert f.read_text() == "alpha\nbeta\ntyped during the review\n", res.summary
    await cps.close()


async def test_a_crlf_file_edited_headless_restores_its_exact_bytes(tmp_path):
    f = tmp_path / "win.txt"
    f.write_bytes(b"one\r\ntwo\r\n")
    cps = SessionCheckpoints(tmp_path, "s-crlf", Settings().checkpoints, sink=Sink(), tasks=Tasks())
    service = await cps.service()  # (the baseline may not have run yet: the applier reads the bytes)
    cp = await service.begin_turn(0)
    applier = cps.applier(DiskChangeApplier(root=tmp_path), _NoDocs())
    out = await applier.apply(ChangeSet("edit_file", (FileChange(f, "one\ntwo\n", "one\n2\n"),), review=False))
    assert out.landed and f.read_bytes() == b"one\r\n2\r\n"
    await service.apply_rewind(await service.plan_rewind(cp.id))
    assert f.read_bytes() == b"one\r\ntwo\r\n"
    await cps.close()


class _NoDocs:
    def get(self, path):
        return None

    def open_documents(self):
        return []


async def test_a_session_checkpoints_steps_that_may_change_something(model_server, tmp_path):
    (tmp_path / "a.txt").write_text("a\n")
    server = model_server(Script([
        ToolCalls([Call("read_file", {"path": "a.txt"})]),
        ToolCalls([Call("run_command", {"command": "echo b > b.txt"})]),
        Text("done"),
    ]))
    settings = Settings(base_url=server.base_url, model="scripted-model", api_key="sk-test", mode="bypass")
    sink = Sink()
    session = AgentSession(settings, tmp_path, Ports(sink=sink, approver=DenyAll("no"), changes=DiskChangeApplier(root=tmp_path)))
    try:
        end = await session.send("read then write")
        assert end.status == "done"
        cps = await session.checkpoints.service()
        kinds = [(c.kind, c.label) for c in cps.checkpoints()]
        assert kinds[0] == ("turn", "read then write")
        steps = [label for kind, label in kinds if kind == "step"]
        assert len(steps) == 1 and re.search(r"\brun_command\b", steps[0])  # none before the read
        [change] = [c for c in cps.store.changes if c.path == "b.txt"]
        assert change.who == "command" and change.kind == "created"
        # the user message is tied to the turn's checkpoint, in memory and in the session file
        turn = cps.checkpoints()[0].id
        assert session.checkpoints.live_marks(session.messages) == [(0, turn)]
        assert session.store.load(session.id).marks == [(0, turn)]
    finally:
        await session.close()


async def test_a_command_waits_for_the_first_snapshot_only_so_long(tmp_path, monkeypatch):
    import time as _time

    from codeloop.runtime import checkpoints as rc

    monkeypatch.setattr(rc, "BASELINE_NOTICE_AFTER", 0.1)
    monkeypatch.setattr(rc, "BASELINE_WAIT", 0.6)
    (tmp_path / "a.txt").write_text("a\n")
    sink = Sink()
    cps = SessionCheckpoints(tmp_path, "s-slow", Settings().checkpoints, sink=sink, tasks=Tasks())
    service = await cps.service()
    real = service.store.prepare

    def slow_prepare() -> None:  # a workspace whose first snapshot takes a while
        _time.sleep(2.0)
        real()

    monkeypatch.setattr(service.store, "prepare", slow_prepare)
    service._baseline = None  # (started again, slowly)
    await service.begin_turn(0)
    pm = ProcessManager(NullTerminal(), observer=cps)
    t0 = _time.monotonic()
    rec = await pm.run("echo b > b.txt", tmp_path, 30)
    assert rec.exit_code == 0 and _time.monotonic() - t0 < 1.8  # did not wait for the whole baseline
    texts = [e.message for e in sink.events]
    assert any("taking the first snapshot" in t for t in texts) and any("runs without one" in t for t in texts)
    await service.ready()
    rec = await pm.run("echo c > c.txt", tmp_path, 30)
    who = {c.path: c.who for c in service.store.changes}
    assert who.get("c.txt") == "command"  # recorded once the baseline is there
    assert who.get("b.txt") in (None, "unknown")  # never the session's: never undone
    await pm.shutdown()
    await cps.close()


async def test_the_model_hears_of_a_rewind_even_when_the_next_turn_failed(model_server, tmp_path):
    seen: list[ChatRequest] = []

    def ok(req: ChatRequest):
        seen.append(req)
        return Text("fine")

    server = model_server(Script([Error(400, "bad request, not retried"), ok]))
    settings = Settings(base_url=server.base_url, model="scripted-model", api_key="sk-test", mode="bypass", max_retries=0)
    session = AgentSession(settings, tmp_path, Ports(sink=Sink(), approver=DenyAll("no"), changes=DiskChangeApplier(root=tmp_path)))
    try:
        session.rewound(None, "c1", "undone: a.py", "The user rewound the code (not the conversation). undone: a.py")
        assert (await session.send("first")).status == "error"  # the message never joined the history
        assert (await session.send("second")).status == "done"
        [user] = [m for m in seen[0].messages if m["role"] == "user"]
        assert user["content"].startswith("second") and "Rewind: The user rewound the code" in user["content"]
        assert session.checkpoints.pending_notes() == []
        assert session.store.load(session.id).notes == []
    finally:
        await session.close()
