"""The MCP servers' lifecycle, against real servers: a slow server does not hold the others
up, a server that fails at start or crashes is failed with its stderr and restarted with
backoff, the start-up timeout, HTTP servers that go away and come back, project consent,
and no process left behind (process groups, stubborn servers, leftover children)."""

from __future__ import annotations

import asyncio
import json
import subprocess
import sys
import uuid
from pathlib import Path

import pytest
from conftest import processes_matching
from mcp_helpers import EDGE, HttpServer, edge, wait_for

from codeloop.services.mcp import McpManager, ProjectConsent, ServerConfig, cannot_ask, load_config
from codeloop.services.mcp.consent import ConsentRequest


def marker(tag: str) -> str:
    return f"cl-mcp-{tag}-{uuid.uuid4().hex[:8]}"


async def test_start_returns_at_once_and_a_slow_server_does_not_hold_up_the_others(tmp_path: Path) -> None:
    slow_mark = marker("slow")
    # (Short grace periods: the slow server is asleep and does not read its stdin.)
    m = McpManager([edge("fast"), edge("slow", "--slow-start", "30", label=slow_mark)], root=tmp_path,
                   stdin_grace=0.5, term_grace=0.5)
    try:
        await m.start()
        assert {s.name: s.status for s in m.states()} == {"fast": "starting", "slow": "starting"}
        await wait_for(lambda: m.state("fast").status == "ready", 30)
        assert m.state("slow").status == "starting"
        r = await m.call("mcp__fast__echo", {"text": "no waiting"})
        assert r.text == "no waiting"
        assert m.state("slow").status == "starting"
        assert [t.server for t in m.tools()] == ["fast"] * 12
        assert processes_matching(slow_mark)
    finally:
        await m.close()
    # Closing while a server is still starting stops it too.
    assert processes_matching(slow_mark) == []


async def test_a_server_that_fails_at_start_is_failed_with_its_stderr_and_retried(tmp_path: Path) -> None:
    m = McpManager([edge("boom", "--crash-at-start"), edge("good")], root=tmp_path, backoff=0.2, max_failures=3)
    events = []
    m.subscribe(lambda e: events.append((e.server, e.state.status)))
    try:
        await m.start()
        await wait_for(lambda: m.state("boom").status == "failed" and m.state("boom").retry_in is None
                       and m.state("boom").restarts == 2, 60)
        st = m.state("boom")
        assert st.last_error == "failed to start: the server exited with code 3"
        assert "fatal: cannot open the widget database (on purpose)" in st.stderr_tail
        assert events.count(("boom", "failed")) == 3 and events.count(("boom", "starting")) == 2
        # The other server is unaffected.
        await wait_for(lambda: m.state("good").status == "ready", 30)
        assert (await m.call("mcp__good__echo", {"text": "fine"})).text == "fine"
        # Given up: a restart from /mcp tries again.
        await m.restart("boom")
        await wait_for(lambda: m.state("boom").restarts == 3 and m.state("boom").status == "failed", 30)
        log_text = Path(st.log_file or "").read_text()
        assert log_text.count("fatal: cannot open the widget database") >= 4
        assert "gave up after 3 failures in a row" in log_text
    finally:
        await m.close()


async def test_a_command_that_does_not_exist_or_a_missing_directory(tmp_path: Path) -> None:
    m = McpManager([
        ServerConfig(name="ghost", transport="stdio", source="user", origin="t", command="no-such-mcp-server --stdio"),
        ServerConfig(name="nowhere", transport="stdio", source="user", origin="t", command=sys.executable,
                     cwd=str(tmp_path / "missing")),
    ], root=tmp_path, max_failures=1)
    try:
        await m.start()
        await wait_for(lambda: all(s.status == "failed" for s in m.states()), 10)
        assert m.state("ghost").last_error == (
            'failed to start: command not found: no-such-mcp-server --stdio (put its arguments in "args")')
        assert m.state("nowhere").last_error == f"failed to start: the working directory {tmp_path / 'missing'} does not exist"
    finally:
        await m.close()


async def test_the_start_up_timeout(tmp_path: Path) -> None:
    mark = marker("timeout")
    m = McpManager([edge("late", "--slow-start", "60", label=mark)], root=tmp_path, startup_timeout=2.0,
                   max_failures=1, stdin_grace=0.5, term_grace=0.5)
    try:
        await m.start()
        await wait_for(lambda: m.state("late").status == "failed", 30)
        assert m.state("late").last_error == "failed to start: did not start within 2 s"
        assert processes_matching(mark) == []  # killed, not left to start later
    finally:
        await m.close()


async def test_a_crash_in_the_middle_of_a_call_is_reported_and_the_server_restarted(tmp_path: Path) -> None:
    child = marker("child")
    m = McpManager([edge("crashy", "--spawn-child", child)], root=tmp_path, backoff=0.2)
    states: list = []
    m.subscribe(lambda e: states.append((e.state.status, e.state.pid, e.state.last_error)))
    try:
        await m.start()
        await wait_for(lambda: m.state("crashy").status == "ready", 30)
        first_pid = m.state("crashy").pid
        assert len(processes_matching(child)) == 2  # the server and its child
        r = await m.call("mcp__crashy__crash", {})
        assert (r.is_error, r.failure) == (True, "crashed")
        assert "the server exited with code 7" in r.text and "crashing now, on purpose" in r.text
        # The child the server left behind (same process group) is killed with it.
        await wait_for(lambda: m.state("crashy").restarts == 1 and m.state("crashy").status == "ready", 30)
        # the crash is reported as a failure with its reason in the event that withdraws the tools
        assert ("failed", None, "stopped: the server exited with code 7") in states, states
        assert all(pid is not None for status, pid, _ in states if status == "ready"), states
        st = m.state("crashy")
        assert st.restarts == 1 and st.pid != first_pid
        assert st.last_error == "stopped: the server exited with code 7"
        assert (await m.call("mcp__crashy__echo", {"text": "back"})).text == "back"
        # The new server (its command line has the marker too) and its own child; the first
        # server's child is gone with it.
        left = processes_matching(child)
        assert len(left) == 2 and st.pid in left and first_pid not in left
    finally:
        await m.close()
    assert processes_matching(child) == []


async def test_close_kills_whole_process_groups_even_stubborn_ones(tmp_path: Path) -> None:
    a, b = marker("a"), marker("b")
    m = McpManager([edge("polite", "--spawn-child", a, label=a), edge("stubborn", "--stubborn", "--spawn-child", b, label=b)],
                   root=tmp_path, stdin_grace=0.5, term_grace=0.5)
    await m.start()
    await wait_for(lambda: all(s.status == "ready" for s in m.states()), 30)
    assert len(processes_matching(a)) == 2 and len(processes_matching(b)) == 2  # server + child
    await m.close()
    assert processes_matching(a) == [] and processes_matching(b) == []
    log_text = (tmp_path / ".codeloop" / "mcp-logs" / "stubborn.log").read_text()
    assert "stdin closed; staying alive anyway" in log_text and "ignoring SIGTERM" in log_text  # asked, then killed


async def test_restart_replaces_the_process(tmp_path: Path) -> None:
    mark = marker("restart")
    m = McpManager([edge("srv", label=mark)], root=tmp_path)
    events: list = []
    m.subscribe(lambda e: events.append((e.kind, e.state.status, e.state.pid, e.state.tool_count)))
    try:
        await m.start()
        await wait_for(lambda: m.state("srv").status == "ready", 30)
        old = m.state("srv").pid
        events.clear()
        await m.restart("srv")
        await wait_for(lambda: m.state("srv").status == "ready" and m.state("srv").pid not in (None, old), 30)
        assert processes_matching(mark) == [m.state("srv").pid]
        assert m.state("srv").restarts == 1
        # What a panel sees: the old process withdrawn as "starting", then the new one ready;
        # never "ready" without a process or its tools.
        assert events[0][:2] == ("state", "starting") and events[0][3] == 0, events
        assert all(pid is not None and count > 0 for _, status, pid, count in events if status == "ready"), events
        assert events[-1][1] == "ready" and events[-1][2] not in (None, old), events
    finally:
        await m.close()


async def test_stderr_goes_to_the_log_file_not_the_terminal(tmp_path: Path, capfd: pytest.CaptureFixture[str]) -> None:
    mark = marker("quiet")
    m = McpManager([edge("quiet", label=mark)], root=tmp_path)
    try:
        await m.start()
        await wait_for(lambda: m.state("quiet").status == "ready", 30)
        await m.call("mcp__quiet__fail", {"message": "logged failure"})
    finally:
        await m.close()
    out, err = capfd.readouterr()
    assert mark not in out + err
    log_text = (tmp_path / ".codeloop" / "mcp-logs" / "quiet.log").read_text()
    assert f"edge server {mark} starting (pid" in log_text
    # .codeloop/ stays out of git.
    subprocess.run(["git", "init", "-q"], cwd=tmp_path, check=True)
    ignored = subprocess.run(["git", "check-ignore", "-q", ".codeloop/mcp-logs/quiet.log"], cwd=tmp_path)
    assert ignored.returncode == 0


async def test_an_http_server_that_goes_away_is_failed_then_reconnected(tmp_path: Path) -> None:
    web = HttpServer().start()
    again = HttpServer(port=web.port)
    m = McpManager([ServerConfig(name="web", transport="http", source="user", origin="t", url=web.url)],
                   root=tmp_path, backoff=0.3, max_backoff=1.0, max_failures=100)
    try:
        await m.start()
        await wait_for(lambda: m.state("web").status == "ready", 30)
        web.stop()
        r = await m.call("mcp__web__echo", {"text": "anyone?"})
        assert r.is_error and r.failure in ("crashed", "not-ready")
        # Retried with backoff, and the retries fail cleanly while it is down.
        await wait_for(lambda: m.state("web").status == "failed"
                       and (m.state("web").last_error or "").startswith("failed to start: cannot reach"), 30)
        assert m.state("web").last_error == f"failed to start: cannot reach {web.url}: All connection attempts failed"
        again.start()  # the same port
        await wait_for(lambda: m.state("web").status == "ready", 60)
        assert (await m.call("mcp__web__echo", {"text": "back"})).text == "back"
    finally:
        await m.close()
        web.stop()
        again.stop()


async def test_an_invalid_definition_is_shown_and_the_others_start(tmp_path: Path) -> None:
    (tmp_path / "cfg").mkdir()
    (tmp_path / "cfg" / "settings.json").write_text(json.dumps({"mcpServers": {
        "broken": {"type": "http"},
        "fine": {"command": sys.executable, "args": [EDGE, "--name", "fine"]},
    }}))
    cfg = load_config(tmp_path, config_home=tmp_path / "cfg")
    assert [s.name for s in cfg.servers] == ["fine"]
    m = McpManager(cfg.servers, root=tmp_path, problems=cfg.problems)
    try:
        await m.start()
        await wait_for(lambda: m.state("fine").status == "ready", 30)
        broken = m.state("broken")
        assert broken.status == "failed"
        assert broken.last_error == (f"invalid configuration: {tmp_path / 'cfg' / 'settings.json'}:1: "
                                     f"MCP server 'broken': an http server needs \"url\" (a string)")
    finally:
        await m.close()


# -- project consent ---------------------------------------------------------------------------


def consent_project(tmp_path: Path, names: list[str]) -> Path:
    root = tmp_path / "ws"
    root.mkdir()
    subprocess.run(["git", "init", "-q"], cwd=root, check=True)
    (root / ".mcp.json").write_text(json.dumps({"mcpServers": {
        n: {"command": sys.executable, "args": [EDGE, "--name", f"consent-{n}"]} for n in names}}))
    return root


async def test_project_servers_start_only_with_consent_and_answers_are_remembered(tmp_path: Path) -> None:
    root = consent_project(tmp_path, ["yes", "no", "later"])
    data = tmp_path / "data"
    asked: list[ConsentRequest] = []

    async def ask(request: ConsentRequest) -> bool | None:
        asked.append(request)
        return {"yes": True, "no": False, "later": None}[request.name]

    cfg = load_config(root, config_home=tmp_path / "cfg")
    m = McpManager(cfg.servers, root=root, consent=ProjectConsent(root, user_data_dir=data), ask=ask)
    try:
        await m.start()
        await wait_for(lambda: m.state("yes").status == "ready", 30)
        assert [r.name for r in asked] == ["yes", "no", "later"]
        assert asked[0].prompt().startswith(f"{root / '.mcp.json'} defines MCP server 'yes', which runs `{sys.executable} ")
        assert m.state("no").status == "disabled"
        assert m.state("later").status == "needs-consent"
        assert (await m.call("mcp__later__echo", {"text": "x"})).failure == "unknown-tool"
        # The user agrees later (/mcp, a panel button).
        await m.set_consent("later", True)
        await wait_for(lambda: m.state("later").status == "ready", 30)
    finally:
        await m.close()
    stored = json.loads((root / ".codeloop" / "settings.local.json").read_text())
    assert stored["enabledMcpjsonServers"] == ["yes", "later"] and stored["disabledMcpjsonServers"] == ["no"]

    # A new session asks nothing.
    asked.clear()
    m2 = McpManager(cfg.servers, root=root, consent=ProjectConsent(root, user_data_dir=data), ask=ask)
    try:
        await m2.start()
        await wait_for(lambda: m2.state("yes").status == "ready" and m2.state("later").status == "ready", 30)
        assert asked == [] and m2.state("no").status == "disabled"
    finally:
        await m2.close()


async def test_non_interactive_runs_need_trust_project(tmp_path: Path) -> None:
    root = consent_project(tmp_path, ["proj"])
    cfg = load_config(root, config_home=tmp_path / "cfg")
    data = tmp_path / "data"
    m = McpManager(cfg.servers, root=root, consent=ProjectConsent(root, user_data_dir=data), ask=cannot_ask)
    try:
        await m.start()
        await asyncio.sleep(0.2)
        assert m.state("proj").status == "needs-consent"
    finally:
        await m.close()
    assert not (root / ".codeloop" / "settings.local.json").exists()  # nothing remembered
    m = McpManager(cfg.servers, root=root, consent=ProjectConsent(root, user_data_dir=data), ask=cannot_ask,
                   trust_project=True)
    try:
        await m.start()
        await wait_for(lambda: m.state("proj").status == "ready", 30)
    finally:
        await m.close()
    assert not (root / ".codeloop" / "settings.local.json").exists()  # still nothing remembered


async def test_close_does_not_wait_for_an_unanswered_question(tmp_path: Path) -> None:
    root = consent_project(tmp_path, ["proj"])
    cfg = load_config(root, config_home=tmp_path / "cfg")
    asked = asyncio.Event()

    async def away(request: ConsentRequest) -> bool | None:
        asked.set()
        await asyncio.Event().wait()  # the user never answers
        return None

    m = McpManager(cfg.servers, root=root, consent=ProjectConsent(root, user_data_dir=tmp_path / "data"), ask=away)
    await m.start()
    await asyncio.wait_for(asked.wait(), 10)
    assert m.state("proj").status == "needs-consent"
    await asyncio.wait_for(m.close(), 5)  # not the servers' grace periods: there is no server


async def test_closing_does_not_wait_for_a_server_that_is_still_starting(tmp_path: Path) -> None:
    """A session that ends while a server sleeps before serving stops it at once, instead
    of waiting out its start (the grace periods are for servers that serve requests)."""
    tag = marker("starting")
    m = McpManager([edge("slow", "--slow-start", "60", label=tag)], root=tmp_path)
    await m.start()
    await wait_for(lambda: processes_matching(tag))
    assert m.state("slow").status == "starting"
    # bounded far below the 60 s start and the 2 s + 2 s grace a ready server gets
    await asyncio.wait_for(m.close(), 3.0)
    await wait_for(lambda: not processes_matching(tag), 5)
    assert "ready" not in (tmp_path / ".codeloop" / "mcp-logs" / "slow.log").read_text()
