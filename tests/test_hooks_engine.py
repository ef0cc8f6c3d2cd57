"""The hooks engine running real bash and Python hook scripts.

Every hook here is a real script run by the engine in a subprocess; the tests judge what
the scripts wrote (their stdin, their environment, marker files) and what the engine
made of their exit codes and output. No user home is read: every load passes temporary
config homes.
"""

from __future__ import annotations

import asyncio
import json
import shlex
import sys
import textwrap
from pathlib import Path

import pytest

from codeloop.services.hooks import HookEngine, HookRun, HookSession, describe_run, load_hooks

PY = shlex.quote(sys.executable)


class Trust:
    def __init__(self, value: bool | None) -> None:
        self.value = value
        self.asked = 0

    def is_trusted(self) -> bool | None:
        self.asked += 1
        return self.value


TRUSTED = Trust(True)


def script(dirpath: Path, name: str, body: str) -> Path:
    p = dirpath / name
    p.write_text(textwrap.dedent(body).lstrip())
    p.chmod(0o755)
    return p


def settings(path: Path, hooks: dict) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps({"hooks": hooks}, indent=2))
    return path


def group(matcher: str | None, *commands: str, timeout: float | None = None) -> dict:
    entries = []
    for c in commands:
        e = {"type": "command", "command": c}
        if timeout is not None:
            e["timeout"] = timeout
        entries.append(e)
    g: dict = {"hooks": entries}
    if matcher is not None:
        g["matcher"] = matcher
    return g


@pytest.fixture
def ws(tmp_path: Path):
    class WS:
        root = tmp_path / "proj"
        home = tmp_path / "home" / "codeloop"
        claude_home = tmp_path / "home" / ".claude"
        bin = tmp_path / "bin"
        out = tmp_path / "out"

        def engine(self, trust=TRUSTED, on_run=None, session=None) -> HookEngine:
            hooks, problems = load_hooks(self.root, self.home, self.claude_home)
            assert problems == []
            return HookEngine(hooks, self.root, trust, on_run=on_run, session=session)

    for d in (WS.root, WS.home, WS.claude_home, WS.bin, WS.out):
        d.mkdir(parents=True)
    return WS()


def alive(pid: int) -> bool:
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return False
    return stat.rsplit(")", 1)[1].split()[0] not in ("Z", "X")


# ---------------------------------------------------------------------------------------


async def test_pre_tool_use_exit_2_blocks_with_stderr_as_reason(ws):
    guard = script(ws.bin, "guard.sh", """
        #!/usr/bin/env bash
        input=$(cat)
        if printf '%s' "$input" | grep -q 'rm -rf'; then
          echo "Refusing rm -rf: use trash instead" >&2
          exit 2
        fi
        exit 0
    """)
    settings(ws.root / ".claude" / "settings.json", {"PreToolUse": [group("Bash", str(guard))]})
    engine = ws.engine()
    res = await engine.run("PreToolUse", {"tool_name": "run_command", "tool_input": {"command": "rm -rf build"}})
    assert res.blocked and res.permission == "deny"
    assert res.reason == "Refusing rm -rf: use trash instead"
    assert res.reason_for == "model"
    assert res.updated_input is None
    assert res.outcomes[0].exit_code == 2 and res.outcomes[0].status == "denied"
    ok = await engine.run("PreToolUse", {"tool_name": "run_command", "tool_input": {"command": "ls"}})
    assert not ok.blocked and ok.permission is None and ok.outcomes[0].status == "ok"


async def test_updated_input_rewrites_a_claude_bash_call_and_maps_back(ws):
    rewrite = script(ws.bin, "rewrite.py", """
        import json, sys
        data = json.load(sys.stdin)
        assert data["tool_name"] == "Bash", data
        cmd = data["tool_input"]["command"]
        print(json.dumps({"hookSpecificOutput": {
            "hookEventName": "PreToolUse",
            "permissionDecision": "allow",
            "permissionDecisionReason": "dry run is always fine",
            "updatedInput": {"command": cmd + " --dry-run", "timeout": 30000},
        }}))
    """)
    settings(ws.root / ".claude" / "settings.json", {"PreToolUse": [group("Bash", f"{PY} {rewrite}")]})
    res = await ws.engine().run("PreToolUse", {
        "tool_name": "run_command", "tool_input": {"command": "make deploy", "timeout": 5, "cwd": "sub"}})
    assert not res.blocked
    assert res.permission == "allow" and res.permission_reason == "dry run is always fine"
    # Claude Code's milliseconds come back as codeloop's seconds; the codeloop-only cwd is kept.
    assert res.updated_input == {"command": "make deploy --dry-run", "timeout": 30.0, "cwd": "sub"}


async def test_updated_input_for_an_edit_maps_file_path_back_to_a_workspace_path(ws):
    rewrite = script(ws.bin, "redirect.py", """
        import json, sys
        data = json.load(sys.stdin)
        ti = data["tool_input"]
        assert data["tool_name"] == "Edit" and ti["file_path"].startswith("/"), data
        ti["file_path"] = ti["file_path"].replace("old.py", "new.py")
        print(json.dumps({"hookSpecificOutput": {"hookEventName": "PreToolUse", "updatedInput": ti}}))
    """)
    settings(ws.root / ".claude" / "settings.local.json", {"PreToolUse": [group("Edit|Write", f"{PY} {rewrite}")]})
    res = await ws.engine().run("PreToolUse", {
        "tool_name": "edit_file", "tool_input": {"path": "src/old.py", "old_string": "a", "new_string": "b"}})
    assert res.permission is None
    assert res.updated_input == {"path": "src/new.py", "old_string": "a", "new_string": "b"}


async def test_codeloop_dialect_hooks_see_codeloop_names_and_rewrite_in_them(ws):
    rewrite = script(ws.bin, "native.py", """
        import json, sys
        data = json.load(sys.stdin)
        assert data["tool_name"] == "edit_file" and "codeloop_tool_name" not in data, data
        print(json.dumps({"hookSpecificOutput": {"hookEventName": "PreToolUse",
                          "updatedInput": {"new_string": data["tool_input"]["new_string"].upper()}}}))
    """)
    settings(ws.root / ".codeloop" / "settings.json", {"PreToolUse": [group("run_command|edit_file", f"{PY} {rewrite}")]})
    res = await ws.engine().run("PreToolUse", {
        "tool_name": "edit_file", "tool_input": {"path": "a.py", "old_string": "x", "new_string": "y = 1"}})
    assert res.outcomes[0].status == "ok", res.warnings
    assert res.updated_input == {"path": "a.py", "old_string": "x", "new_string": "Y = 1"}


async def test_post_tool_use_adds_context_and_feedback(ws):
    ctx = script(ws.bin, "ctx.py", """
        import json, sys
        data = json.load(sys.stdin)
        print(json.dumps({"hookSpecificOutput": {"hookEventName": "PostToolUse",
               "additionalContext": "formatted " + data["tool_input"]["file_path"] + " after: " + data["tool_response"]}}))
    """)
    lint = script(ws.bin, "lint.sh", """
        #!/usr/bin/env bash
        cat >/dev/null
        echo '{"decision": "block", "reason": "lint: line 3 is too long"}'
    """)
    settings(ws.root / ".claude" / "settings.json", {"PostToolUse": [group("Write|Edit", f"{PY} {ctx}", str(lint))]})
    res = await ws.engine().run("PostToolUse", {
        "tool_name": "write_file", "tool_input": {"path": "a.py", "content": "x"}, "tool_response": "wrote a.py"})
    assert res.additional_context == f"formatted {ws.root / 'a.py'} after: wrote a.py"
    assert res.blocked and res.reason == "lint: line 3 is too long" and res.reason_for == "model"
    assert res.permission is None and res.updated_input is None


async def test_stop_hook_sends_the_agent_back_once(ws):
    log = ws.out / "stop.log"
    stop = script(ws.bin, "stop.py", f"""
        import json, sys
        data = json.load(sys.stdin)
        with open({str(log)!r}, "a") as f:
            f.write(json.dumps(data["stop_hook_active"]) + "\\n")
        if not data["stop_hook_active"]:
            print(json.dumps({{"decision": "block", "reason": "Run the tests before you stop."}}))
    """)
    settings(ws.claude_home / "settings.json", {"Stop": [group(None, f"{PY} {stop}")]})
    engine = ws.engine(trust=None)  # a user hook: no consent needed
    first = await engine.run("Stop", {"stop_hook_active": False})
    assert first.blocked and first.reason == "Run the tests before you stop." and first.reason_for == "model"
    second = await engine.run("Stop", {"stop_hook_active": True})
    assert not second.blocked and second.reason is None
    assert log.read_text().split() == ["false", "true"]


async def test_continue_false_wins_over_a_stop_block(ws):
    both = script(ws.bin, "both.sh", """
        #!/usr/bin/env bash
        echo '{"continue": false, "stopReason": "budget spent", "decision": "block", "reason": "go on", "systemMessage": "stopping"}'
    """)
    settings(ws.home / "settings.json", {"SubagentStop": [group(None, str(both))]})
    res = await ws.engine(trust=None).run("SubagentStop", {"stop_hook_active": False})
    assert res.stop and res.stop_reason == "budget spent"
    assert not res.blocked
    assert res.system_messages == ("stopping",)


async def test_a_hung_hook_is_killed_at_its_timeout_with_its_children(ws):
    pidfile = ws.out / "child.pid"
    hang = script(ws.bin, "hang.sh", f"""
        #!/usr/bin/env bash
        sleep 300 &
        echo $! > {pidfile}
        sleep 300
    """)
    quick = script(ws.bin, "quick.sh", """
        #!/usr/bin/env bash
        echo "quick context"
    """)
    settings(ws.home / "settings.json", {"UserPromptSubmit": [group(None, str(hang), timeout=2), group(None, str(quick))]})
    runs: list[HookRun] = []
    res = await ws.engine(trust=None, on_run=runs.append).run("UserPromptSubmit", {"prompt": "hi"})
    hung, ok = res.outcomes
    assert hung.timed_out and hung.exit_code is None and hung.status == "timeout"
    assert not res.blocked
    assert any("timed out after 2s" in w for w in res.warnings)
    assert ok.status == "ok" and res.additional_context == "quick context"
    child = int(pidfile.read_text())
    for _ in range(100):
        if not alive(child):
            break
        await asyncio.sleep(0.05)
    assert not alive(child), "the hook's background child survived the timeout"
    ends = [r for r in runs if r.phase == "end"]
    assert {r.outcome.status for r in ends} == {"timeout", "ok"}
    assert any(describe_run(r).endswith("timed out after 2s and was killed") for r in ends)


async def test_cancelling_the_run_kills_the_hooks(ws):
    pidfile = ws.out / "hook.pid"
    hang = script(ws.bin, "hang.sh", f"""
        #!/usr/bin/env bash
        echo $$ > {pidfile}
        sleep 300
    """)
    settings(ws.home / "settings.json", {"PreCompact": [group(None, str(hang))]})
    engine = ws.engine(trust=None)
    task = asyncio.create_task(engine.run("PreCompact", {"trigger": "auto"}))
    for _ in range(1000):
        if pidfile.exists() and pidfile.read_text().strip():
            break
        await asyncio.sleep(0.02)
    pid = int(pidfile.read_text())
    assert alive(pid)
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    for _ in range(100):
        if not alive(pid):
            break
        await asyncio.sleep(0.05)
    assert not alive(pid)


async def test_crashing_and_missing_hooks_warn_and_block_nothing(ws):
    crash = script(ws.bin, "crash.py", """
        raise RuntimeError("hook bug: cannot parse config")
    """)
    settings(ws.home / "settings.json", {"PreToolUse": [group("*", f"{PY} {crash}", str(ws.bin / "does-not-exist"))]})
    res = await ws.engine(trust=None).run("PreToolUse", {"tool_name": "read_file", "tool_input": {"path": "a"}})
    assert not res.blocked and res.permission is None
    crashed, missing = res.outcomes
    assert crashed.exit_code == 1 and crashed.status == "warning"
    assert missing.exit_code == 127
    assert any("exit code 1" in w and "hook bug: cannot parse config" in w for w in res.warnings)
    assert any("exit code 127" in w for w in res.warnings)


async def test_matching_hooks_run_in_parallel(ws):
    marks = ws.out
    racer = script(ws.bin, "racer.sh", f"""
        #!/usr/bin/env bash
        me=$1; other=$2
        touch {marks}/start-$me
        for i in $(seq 1 1000); do
          if [ -e {marks}/start-$other ]; then echo overlap > {marks}/seen-$me; break; fi
          sleep 0.02
        done
        [ -e {marks}/seen-$me ] || echo alone > {marks}/seen-$me
        touch {marks}/end-$me
    """)
    settings(ws.home / "settings.json", {"Notification": [group(None, f"{racer} a b", f"{racer} b a")]})
    res = await ws.engine(trust=None).run("Notification", {"message": "approval waiting", "notification_type": "permission_prompt"})
    assert [o.status for o in res.outcomes] == ["ok", "ok"]
    # Each saw the other start before it ended: they ran at the same time.
    assert (marks / "seen-a").read_text().strip() == "overlap"
    assert (marks / "seen-b").read_text().strip() == "overlap"


async def test_a_claude_code_bash_config_matches_codeloop_tools(ws):
    hit = script(ws.bin, "hit.sh", f"""
        #!/usr/bin/env bash
        python3 -c 'import json,sys; print(json.load(sys.stdin)["tool_name"])' >> {ws.out}/hits
    """)
    # An existing Claude Code file, as it is.
    (ws.root / ".claude").mkdir()
    (ws.root / ".claude" / "settings.json").write_text(json.dumps({
        "permissions": {"allow": ["Bash(npm test)"]},
        "hooks": {"PreToolUse": [{"matcher": "Bash", "hooks": [{"type": "command", "command": str(hit)}]}]},
    }))
    engine = ws.engine()
    for tool, args in [("run_command", {"command": "ls"}), ("run_command", {"command": "npm run dev", "background": True}),
                       ("read_file", {"path": "a"}), ("edit_file", {"path": "a", "old_string": "1", "new_string": "2"})]:
        await engine.run("PreToolUse", {"tool_name": tool, "tool_input": args})
    assert (ws.out / "hits").read_text().split() == ["Bash", "Bash"]
    assert [h.command for h in engine.matching("PreToolUse", "run_command")] == [str(hit)]
    assert engine.matching("PreToolUse", "grep") == []


async def test_stdin_fields_and_environment(ws):
    dump = script(ws.bin, "dump.py", f"""
        import json, os, sys
        data = json.load(sys.stdin)
        data["env"] = {{k: os.environ.get(k) for k in ("CODELOOP_PROJECT_DIR", "CLAUDE_PROJECT_DIR")}}
        data["pwd"] = os.getcwd()
        name = data["hook_event_name"] + "-" + sys.argv[1]
        with open(os.path.join({str(ws.out)!r}, name + ".json"), "w") as f:
            json.dump(data, f)
    """)
    settings(ws.root / ".claude" / "settings.json", {
        "PreToolUse": [group("Write", f"{PY} {dump} claude")],
        "SessionStart": [group("startup|resume", f"{PY} {dump} claude")],
    })
    settings(ws.root / ".codeloop" / "settings.json", {"PreToolUse": [group("write_file", f"{PY} {dump} codeloop")]})
    session = HookSession(session_id="s-42", transcript_path="/tmp/s-42.jsonl", permission_mode="acceptEdits")
    engine = ws.engine(session=session)
    await engine.run("PreToolUse", {"tool_name": "write_file", "tool_use_id": "call_7",
                                    "tool_input": {"path": "docs/a.md", "content": "hello"}})
    claude = json.loads((ws.out / "PreToolUse-claude.json").read_text())
    assert claude == {
        "session_id": "s-42", "transcript_path": "/tmp/s-42.jsonl", "cwd": str(ws.root),
        "permission_mode": "acceptEdits", "hook_event_name": "PreToolUse",
        "tool_name": "Write", "tool_input": {"file_path": str(ws.root / "docs" / "a.md"), "content": "hello"},
        "tool_use_id": "call_7", "codeloop_tool_name": "write_file",
        "codeloop_tool_input": {"path": "docs/a.md", "content": "hello"},
        "env": {"CODELOOP_PROJECT_DIR": str(ws.root), "CLAUDE_PROJECT_DIR": str(ws.root)},
        "pwd": str(ws.root),
    }
    native = json.loads((ws.out / "PreToolUse-codeloop.json").read_text())
    assert native["tool_name"] == "write_file" and native["tool_input"] == {"path": "docs/a.md", "content": "hello"}
    assert native["permission_mode"] == "acceptEdits"

    session.permission_mode = "bypass"
    await engine.run("SessionStart", {"source": "resume"})
    start = json.loads((ws.out / "SessionStart-claude.json").read_text())
    assert start["source"] == "resume" and start["permission_mode"] == "bypassPermissions"
    assert start["hook_event_name"] == "SessionStart"
    (ws.out / "SessionStart-claude.json").unlink()
    await engine.run("SessionStart", {"source": "clear"})  # the matcher is startup|resume
    assert not (ws.out / "SessionStart-claude.json").exists()


async def test_project_hooks_need_trust_and_user_hooks_do_not(ws):
    mark = script(ws.bin, "mark.sh", f"""
        #!/usr/bin/env bash
        touch {ws.out}/$1
    """)
    settings(ws.root / ".codeloop" / "settings.json", {"UserPromptSubmit": [group(None, f"{mark} project")]})
    settings(ws.root / ".claude" / "settings.local.json", {"UserPromptSubmit": [group(None, f"{mark} claude-local")]})
    settings(ws.home / "settings.json", {"UserPromptSubmit": [group(None, f"{mark} user")]})
    for trust in (None, Trust(None), Trust(False)):
        res = await ws.engine(trust=trust).run("UserPromptSubmit", {"prompt": "x"})
        assert sorted(p.name for p in ws.out.iterdir()) == ["user"]
        assert [h.scope for h in res.skipped] == ["project", "project"]
        assert res.ran == 1
    trust = Trust(True)
    engine = ws.engine(trust=trust)
    res = await engine.run("UserPromptSubmit", {"prompt": "x"})
    assert sorted(p.name for p in ws.out.iterdir()) == ["claude-local", "project", "user"]
    assert res.skipped == () and res.ran == 3 and trust.asked >= 1
    # The fingerprint that consent can be bound to changes when the project's hooks do.
    before = engine.project_fingerprint()
    settings(ws.root / ".codeloop" / "settings.json", {"UserPromptSubmit": [group(None, f"{mark} changed")]})
    assert ws.engine().project_fingerprint() != before


async def test_user_prompt_submit_plain_stdout_is_context_and_exit_2_blocks_for_the_user(ws):
    date = script(ws.bin, "ctx.sh", """
        #!/usr/bin/env bash
        echo "Branch: main"
    """)
    secret = script(ws.bin, "secret.py", """
        import json, sys
        if "password" in json.load(sys.stdin)["prompt"]:
            print("prompt holds a secret", file=sys.stderr)
            sys.exit(2)
    """)
    settings(ws.home / "settings.json", {"UserPromptSubmit": [group(None, str(date), f"{PY} {secret}")]})
    engine = ws.engine(trust=None)
    ok = await engine.run("UserPromptSubmit", {"prompt": "fix the bug"})
    assert not ok.blocked and ok.additional_context == "Branch: main"
    bad = await engine.run("UserPromptSubmit", {"prompt": "my password is hunter2"})
    assert bad.blocked and bad.reason == "prompt holds a secret" and bad.reason_for == "user"


async def test_session_start_cannot_be_blocked(ws):
    two = script(ws.bin, "two.sh", """
        #!/usr/bin/env bash
        echo "ignored on exit 2"
        echo "no network" >&2
        exit 2
    """)
    ctx = script(ws.bin, "ctx.sh", """
        #!/usr/bin/env bash
        echo '{"hookSpecificOutput": {"hookEventName": "SessionStart", "additionalContext": "Use pnpm."}}'
    """)
    settings(ws.home / "settings.json", {"SessionStart": [group("", str(two), str(ctx))]})
    res = await ws.engine(trust=None).run("SessionStart", {"source": "startup"})
    assert not res.blocked
    assert res.additional_context == "Use pnpm."
    assert any("cannot be blocked" in w and "no network" in w for w in res.warnings)


async def test_permissions_aggregate_deny_over_ask_over_allow(ws):
    def decider(name: str, decision: str, ctx: str) -> str:
        return str(script(ws.bin, name, f"""
            #!/usr/bin/env bash
            cat > /dev/null
            echo '{{"hookSpecificOutput": {{"hookEventName": "PreToolUse", "permissionDecision": "{decision}",
                   "permissionDecisionReason": "{decision} by {name}", "additionalContext": "{ctx}"}}}}'
        """))
    allow, ask, deny = decider("allow.sh", "allow", "one"), decider("ask.sh", "ask", "two"), decider("deny.sh", "deny", "")
    settings(ws.home / "settings.json", {"PreToolUse": [group("Bash", allow, ask)]})
    res = await ws.engine(trust=None).run("PreToolUse", {"tool_name": "run_command", "tool_input": {"command": "x"}})
    assert res.permission == "ask" and res.permission_reason == "ask by ask.sh" and not res.blocked
    assert res.additional_context == "one\n\ntwo"
    settings(ws.home / "settings.json", {"PreToolUse": [group("Bash", allow, ask, deny)]})
    res = await ws.engine(trust=None).run("PreToolUse", {"tool_name": "run_command", "tool_input": {"command": "x"}})
    assert res.permission == "deny" and res.blocked and res.reason == "deny by deny.sh"


async def test_identical_commands_run_once_and_leftover_children_do_not_hold_the_run(ws):
    bg = script(ws.bin, "bg.sh", f"""
        #!/usr/bin/env bash
        echo run >> {ws.out}/count
        sleep 300 &
        echo '{{"systemMessage": "started a watcher"}}'
    """)
    settings(ws.home / "settings.json", {"PostToolUse": [group("Read", str(bg))]})
    settings(ws.claude_home / "settings.json", {"PostToolUse": [group("read_file", str(bg))]})
    res = await ws.engine(trust=None).run("PostToolUse", {"tool_name": "read_file", "tool_input": {"path": "a"},
                                                          "tool_response": "1: a"})
    assert (ws.out / "count").read_text().split() == ["run"]
    (o,) = res.outcomes
    assert not o.timed_out and o.exit_code == 0
    assert res.system_messages == ("started a watcher",)
    assert any("left processes running" in w for w in res.warnings)


async def test_a_hook_that_ignores_a_large_input_does_not_hang(ws):
    settings(ws.home / "settings.json", {"PreToolUse": [group("Write", "exit 0")]})
    big = "x" * (4 * 1024 * 1024)
    res = await ws.engine(trust=None).run("PreToolUse", {"tool_name": "write_file",
                                                         "tool_input": {"path": "big.txt", "content": big}})
    assert [o.status for o in res.outcomes] == ["ok"]


async def test_bad_json_output_is_a_warning_and_a_wrong_event_name_is_ignored(ws):
    bad = script(ws.bin, "bad.sh", """
        #!/usr/bin/env bash
        echo '{"hookSpecificOutput": '
    """)
    wrong = script(ws.bin, "wrong.sh", """
        #!/usr/bin/env bash
        echo '{"hookSpecificOutput": {"hookEventName": "PostToolUse", "permissionDecision": "deny"}}'
    """)
    settings(ws.home / "settings.json", {"PreToolUse": [group("", str(bad), str(wrong))]})
    res = await ws.engine(trust=None).run("PreToolUse", {"tool_name": "glob", "tool_input": {"pattern": "*"}})
    assert not res.blocked and res.permission is None
    assert any("looks like JSON but is not" in w for w in res.warnings)
    assert any("is for 'PostToolUse', not 'PreToolUse'" in w for w in res.warnings)


async def test_run_reports_reach_the_callback(ws):
    say = script(ws.bin, "say.sh", """
        #!/usr/bin/env bash
        echo "checked" >&2
        exit 2
    """)
    settings(ws.home / "settings.json", {"PreToolUse": [group("mcp__github__.*", str(say))]})
    runs: list[HookRun] = []

    async def on_run(r: HookRun) -> None:
        runs.append(r)

    res = await ws.engine(trust=None, on_run=on_run).run(
        "PreToolUse", {"tool_name": "mcp__github__create_issue", "tool_input": {"title": "t"}})
    assert res.blocked
    start, end = runs
    assert (start.phase, end.phase) == ("start", "end") and start.run_id == end.run_id
    assert start.outcome is None and start.target == "mcp__github__create_issue"
    assert end.outcome.exit_code == 2 and end.outcome.blocked and end.outcome.duration >= 0
    assert end.outcome.excerpt() == "checked"
    assert describe_run(start, ws.root) == f"hook PreToolUse {start.hook.label(ws.root)}: running"
    line = describe_run(end, ws.root)
    assert line.startswith(f"hook PreToolUse {end.hook.label(ws.root)}: denied the call (exit 2, ")
    assert line.endswith("s): checked")
    # A failing callback is logged, not raised.
    def broken(_r):
        raise RuntimeError("ui gone")
    res = await ws.engine(trust=None, on_run=broken).run("PreToolUse", {"tool_name": "mcp__github__x", "tool_input": {}})
    assert res.blocked


async def test_unknown_event_is_a_programming_error(ws):
    with pytest.raises(ValueError, match="unknown hook event"):
        await ws.engine().run("PreToolUsed", {})

