"""MCP servers through the real ``codeloop`` CLI: a real MCP server (the edge server, on the
official SDK's own server API), the scripted model calling ``mcp__…`` tools, permission
rules, the consent for a project's servers, a cloned repository's allow rules, a dead
server, a slow one, tool search over 200 tools, ``/mcp`` and ``codeloop mcp list``."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest
from conftest import CODELOOP, asking_user_settings, cli_env
from mcp_helpers import WaitForTools, edge_entry
from pty_cli import run_on_pty
from scripted_model import Call, ChatRequest, Keyed, Script, Text, ToolCalls

GIT = ["git", "-c", "user.name=t", "-c", "user.email=t@example.invalid", "-c", "commit.gpgsign=false"]


def git(root: Path, *args: str) -> None:
    subprocess.run(GIT + list(args), cwd=root, check=True, capture_output=True)


def workspace(tmp_path: Path, *, user: dict | None = None, project: dict | None = None, repo: bool = False,
              settings: dict | None = None) -> tuple[Path, dict[str, str]]:
    """A workspace and the environment of a user whose settings are ``user``
    (``~/.config/codeloop/settings.json``), with ``project`` as its ``.mcp.json`` and
    ``settings`` as its ``.codeloop/settings.json`` (committed when ``repo``)."""
    root = tmp_path / "ws"
    root.mkdir()
    home = tmp_path / "home"
    asking_user_settings(home / "config", **(user or {}))
    if project is not None:
        (root / ".mcp.json").write_text(json.dumps({"mcpServers": project}, indent=2))
    if settings is not None:
        (root / ".codeloop").mkdir()
        (root / ".codeloop" / "settings.json").write_text(json.dumps(settings, indent=2))
    if repo:
        git(root, "init", "-q")
        git(root, "add", "-A")
        git(root, "commit", "-qm", "as cloned", "--allow-empty")
    env = {"XDG_CONFIG_HOME": str(home / "config"), "XDG_DATA_HOME": str(home / "data")}
    return root, env


def run(args: list[str], base_url: str, env: dict[str, str], timeout: float = 120) -> subprocess.CompletedProcess[str]:
    return subprocess.run(CODELOOP + args, input="", capture_output=True, text=True, timeout=timeout,
                          env=cli_env(base_url, **env))


def results(req: ChatRequest) -> str:
    return "\n".join(req.last_tool_results())


def test_allow_deny_and_ask_rules_decide_mcp_calls(model_server, tmp_path):
    """allow runs the call, deny refuses it, and a tool with readOnlyHint (echo) is still
    asked: with no terminal to ask, it is refused."""
    root, env = workspace(tmp_path, user={
        "mcpServers": {"edge": edge_entry()},
        "permissions": {"allow": ["mcp__edge__add"], "deny": ["mcp__edge__fail"]},
    })
    seen: dict[str, str] = {}

    def check(req: ChatRequest):
        seen["results"] = results(req)
        return Text("checked")

    wait = WaitForTools(["mcp__edge__add", "mcp__edge__echo"], Script([
        ToolCalls([Call("mcp__edge__add", {"a": 2, "b": 3}), Call("mcp__edge__fail", {}),
                   Call("mcp__edge__echo", {"text": "hi"})]),
        check,
    ]))
    server = model_server(wait)
    out = run(["run", "use the tools", "--cwd", str(root)], server.base_url, env)
    assert out.returncode == 0, out.stdout + out.stderr
    add, fail, echo = server.chat_requests[-1].last_tool_results()
    assert add.startswith("5")
    assert fail.startswith("Permission denied") and "mcp__edge__fail" in fail
    assert "denied permission" in echo and "no terminal is attached" in echo, echo
    # the card names the server
    assert "● mcp__edge__add [edge]" in out.stdout


def test_whole_server_rules_and_an_ask_rule_inside_one(model_server, tmp_path):
    root, env = workspace(tmp_path, user={
        "mcpServers": {"edge": edge_entry(), "second": edge_entry("second")},
        "permissions": {"allow": ["mcp__edge", "mcp__second__*"], "ask": ["mcp__edge__add"]},
    })
    wait = WaitForTools(["mcp__edge__echo", "mcp__second__echo"], Script([
        ToolCalls([Call("mcp__edge__echo", {"text": "one"}), Call("mcp__second__echo", {"text": "two"}),
                   Call("mcp__edge__add", {"a": 1, "b": 1})]),
        Text("done"),
    ]))
    server = model_server(wait)
    out = run(["run", "go", "--cwd", str(root)], server.base_url, env)
    assert out.returncode == 0, out.stdout + out.stderr
    one, two, add = server.chat_requests[-1].last_tool_results()
    assert one.startswith("one") and two.startswith("two")
    assert "denied permission" in add  # the ask rule asks (nobody to ask here)


def test_bypass_allows_mcp_calls_but_deny_rules_hold(model_server, tmp_path):
    root, env = workspace(tmp_path, user={"mcpServers": {"edge": edge_entry()},
                                          "permissions": {"deny": ["mcp__edge__add"]}})
    wait = WaitForTools(["mcp__edge__echo"], Script([
        ToolCalls([Call("mcp__edge__echo", {"text": "free"}), Call("mcp__edge__add", {"a": 1, "b": 2})]),
        Text("done"),
    ]))
    server = model_server(wait)
    out = run(["run", "go", "--cwd", str(root), "--yes"], server.base_url, env)
    assert out.returncode == 0, out.stdout + out.stderr
    echo, add = server.chat_requests[-1].last_tool_results()
    assert echo.startswith("free")
    assert add.startswith("Permission denied")


def test_always_allow_an_mcp_tool_at_the_prompt(model_server, tmp_path):
    root, env = workspace(tmp_path, user={"mcpServers": {"edge": edge_entry()}})

    def script():
        return WaitForTools(["mcp__edge__echo"], Script([
            ToolCalls([Call("mcp__edge__echo", {"text": "hello"})]),
            lambda req: Text("got " + req.last_tool_results()[0].split("\n")[0]),
        ]))

    server = model_server(Keyed({"first": script(), "second": script()}))
    code, out = run_on_pty(CODELOOP + ["run", "first", "--cwd", str(root)], cli_env(server.base_url, **env),
                           [("reason to deny: ", "a")])
    assert code == 0, out
    assert "? Call: mcp__edge__echo" in out
    assert "Always allowed from now on: mcp__edge__echo" in out
    local = json.loads((root / ".codeloop" / "settings.local.json").read_text())
    assert local["permissions"]["allow"] == ["mcp__edge__echo"]
    assert "got hello" in out
    # a new run: not asked again (outside git the answer is also kept in the user's store)
    code, out = run_on_pty(CODELOOP + ["run", "second", "--cwd", str(root)], cli_env(server.base_url, **env), [])
    assert code == 0, out
    assert "? Call" not in out and "got hello" in out


def test_a_project_server_starts_only_after_consent_at_the_prompt(model_server, tmp_path):
    root, env = workspace(tmp_path, project={"proj": edge_entry("proj")}, repo=True)

    def script():
        return WaitForTools(["mcp__proj__echo"], Script([
            ToolCalls([Call("mcp__proj__echo", {"text": "from the project"})]),
            lambda req: Text("result: " + req.last_tool_results()[0].split("\n")[0]),
        ]))

    server = model_server(Keyed({"first": script(), "second": script()}))
    code, out = run_on_pty(CODELOOP + ["run", "first", "--cwd", str(root)], cli_env(server.base_url, **env),
                           [("Enter: not now: ", "y"), ("reason to deny: ", "y")])
    assert code == 0, out
    assert "? Trust MCP server proj:" in out and ".mcp.json defines MCP server 'proj'" in out
    assert "result: from the project" in out
    local = json.loads((root / ".codeloop" / "settings.local.json").read_text())
    assert local["enabledMcpjsonServers"] == ["proj"] and "proj" in local["mcpServerFingerprints"]
    # remembered (git ignores the file, so it is the user's): no question, even without a terminal
    out2 = run(["run", "second", "--cwd", str(root), "--yes"], server.base_url, env)
    assert out2.returncode == 0, out2.stdout + out2.stderr
    assert "Trust" not in out2.stdout and "result: from the project" in out2.stdout


def test_a_project_server_without_a_terminal_needs_trust_project(model_server, tmp_path):
    root, env = workspace(tmp_path, project={"proj": edge_entry("proj")}, repo=True)
    server = model_server(Keyed({
        "plain": Text("no tools"),
        "trusted": WaitForTools(["mcp__proj__echo"], Script([
            ToolCalls([Call("mcp__proj__echo", {"text": "trusted run"})]),
            lambda req: Text("result: " + req.last_tool_results()[0].split("\n")[0]),
        ])),
    }))
    # --yes does not imply consent
    out = run(["run", "plain", "--cwd", str(root), "--yes"], server.base_url, env)
    assert out.returncode == 0, out.stdout + out.stderr
    assert "The project's MCP server 'proj'" in out.stdout and "--trust-project" in out.stdout
    assert not any(n.startswith("mcp__") for n in server.chat_requests[-1].tool_names())
    out = run(["run", "trusted", "--cwd", str(root), "--yes", "--trust-project"], server.base_url, env)
    assert out.returncode == 0, out.stdout + out.stderr
    assert "result: trusted run" in out.stdout
    assert not (root / ".codeloop" / "settings.local.json").exists()  # nothing remembered


def test_a_cloned_repositorys_allow_rule_waits_for_trust(model_server, tmp_path):
    root, env = workspace(tmp_path, settings={"permissions": {"allow": ["Bash(touch marker.txt)"]}}, repo=True)

    def touch():
        return Script([ToolCalls([Call("run_command", {"command": "touch marker.txt"})]),
                       lambda req: Text("result: " + req.last_tool_results()[0][:200])])

    server = model_server(Keyed({"untrusted": touch(), "asked": touch(), "again": touch()}))
    out = run(["run", "untrusted", "--cwd", str(root)], server.base_url, env)
    assert out.returncode == 0, out.stdout + out.stderr
    assert not (root / "marker.txt").exists()
    assert "allows Bash(touch marker.txt) without asking" in out.stdout and "--trust-project" in out.stdout
    # trusted at the prompt: applied, and remembered
    code, text = run_on_pty(CODELOOP + ["run", "asked", "--cwd", str(root)], cli_env(server.base_url, **env),
                            [("Enter: not now: ", "y")])
    assert code == 0, text
    assert "? Trust the project's allow rules:" in text and "? Run" not in text
    assert (root / "marker.txt").exists()
    (root / "marker.txt").unlink()
    out = run(["run", "again", "--cwd", str(root)], server.base_url, env)
    assert out.returncode == 0 and (root / "marker.txt").exists(), out.stdout + out.stderr


def test_a_turn_keeps_working_while_a_server_is_dead_or_crashes(model_server, tmp_path):
    root, env = workspace(tmp_path, user={
        "mcpServers": {"dead": edge_entry("dead", "--crash-at-start"), "crashy": edge_entry("crashy"),
                       "edge": edge_entry()},
        "permissions": {"allow": ["mcp__crashy", "mcp__edge"]},
    })
    seen: dict[str, str] = {}

    def after_crash(req: ChatRequest):
        seen["crash"] = results(req)
        return ToolCalls([Call("mcp__edge__echo", {"text": "still here"}), Call("mcp__dead__echo", {"text": "x"})])

    def after_echo(req: ChatRequest):
        seen["echo"], seen["dead"] = req.last_tool_results()
        return Text("finished")

    server = model_server(WaitForTools(["mcp__crashy__crash", "mcp__edge__echo"], Script([
        ToolCalls([Call("mcp__crashy__crash", {})]), after_crash, after_echo])))
    out = run(["run", "go", "--cwd", str(root)], server.base_url, env)
    assert out.returncode == 0, out.stdout + out.stderr
    assert "finished" in out.stdout
    assert "stopped during the call" in seen["crash"] and "crashing now, on purpose" in seen["crash"]
    assert seen["echo"].startswith("still here")
    assert "unknown tool 'mcp__dead__echo'" in seen["dead"]
    assert not any(n.startswith("mcp__dead__") for n in server.chat_requests[-1].tool_names())


def test_a_slow_server_does_not_hold_the_first_request(model_server, tmp_path):
    root, env = workspace(tmp_path, user={"mcpServers": {"slow": edge_entry("slow", "--slow-start", "4")},
                                          "permissions": {"allow": ["mcp__slow"]}})
    wait = WaitForTools(["mcp__slow__echo"], Script([ToolCalls([Call("mcp__slow__echo", {"text": "late"})]),
                                                     Text("done")]))
    server = model_server(wait)
    out = run(["run", "go", "--cwd", str(root)], server.base_url, env)
    assert out.returncode == 0, out.stdout + out.stderr
    first = server.chat_requests[0]
    assert not any(n.startswith("mcp__") for n in first.tool_names())  # sent before the server was ready
    assert wait.waited >= 2
    # when its tools appeared, the model was told (with the next tool result), and the
    # system prompt stayed byte for byte the same
    told = [r for r in server.chat_requests if "The MCP server 'slow' is now connected" in results(r)]
    assert told, [results(r)[:300] for r in server.chat_requests]
    assert len({r.system_text() for r in server.chat_requests}) == 1
    assert server.chat_requests[-1].last_tool_results()[0].startswith("late")


def test_tool_search_over_200_tools(model_server, tmp_path):
    root, env = workspace(tmp_path, user={"mcpServers": {"big": edge_entry("big", "--tools", "200")},
                                          "permissions": {"allow": ["mcp__big"]}})
    seen: dict[str, str] = {}

    def found(req: ChatRequest):
        seen["search"] = results(req)
        return ToolCalls([Call("mcp__big__weather_forecast_002", {"target": "Paris"})])

    def called(req: ChatRequest):
        seen["call"] = results(req)
        return Text("done")

    server = model_server(WaitForTools(["search_tools"], Script([
        ToolCalls([Call("search_tools", {"query": "weather forecast", "limit": 3})]), found, called])))
    out = run(["run", "what is the weather", "--cwd", str(root)], server.base_url, env)
    assert out.returncode == 0, out.stdout + out.stderr
    with_search = [r for r in server.chat_requests if "search_tools" in r.tool_names()]
    first = with_search[0]
    assert not any(n.startswith("mcp__big__") for n in first.tool_names())  # deferred: names only
    desc = next(t["function"]["description"] for t in first.tools if t["function"]["name"] == "search_tools")
    assert desc.count("- mcp__big__") == 212 and "mcp__big__weather_forecast_002" in desc  # 200 + the 12 others
    assert "mcp__big__weather_forecast_002" in seen["search"] and "Loaded 3 tools" in seen["search"]
    after = with_search[-2]  # the request that called the loaded tool
    assert "mcp__big__weather_forecast_002" in after.tool_names()
    assert not {"mcp__big__calendar_event_000"} & set(after.tool_names())
    assert seen["call"].startswith("weather_forecast_002('Paris'")
    # the search tool's description stayed byte for byte the same (prompt caches)
    descs = {next(t["function"]["description"] for t in r.tools if t["function"]["name"] == "search_tools")
             for r in with_search}
    assert len(descs) == 1


def test_images_and_error_results(model_server, tmp_path):
    root, env = workspace(tmp_path, user={"mcpServers": {"edge": edge_entry()}, "images": "on",
                                          "permissions": {"allow": ["mcp__edge"]}})
    server = model_server(WaitForTools(["mcp__edge__image"], Script([
        ToolCalls([Call("mcp__edge__image", {}), Call("mcp__edge__fail", {"message": "no such widget"})]),
        Text("done")])))
    out = run(["run", "go", "--cwd", str(root)], server.base_url, env)
    assert out.returncode == 0, out.stdout + out.stderr
    last = server.chat_requests[-1]
    image, fail = [m for m in last.messages if m.get("role") == "tool"][-2:]
    assert "[image 1 (image/png" in image["content"] and "is attached]" in image["content"]
    assert fail["content"].startswith("Error: ") and "no such widget" in fail["content"]
    parts = last.messages[-1]["content"]
    assert last.messages[-1]["role"] == "user" and any(p.get("type") == "image_url" and
                                                       p["image_url"]["url"].startswith("data:image/png;base64,")
                                                       for p in parts)


def test_slash_mcp_in_chat(model_server, tmp_path):
    root, env = workspace(tmp_path, user={"mcpServers": {"edge": edge_entry(),
                                                         "dead": edge_entry("dead", "--crash-at-start")}})
    server = model_server(WaitForTools(["mcp__edge__echo"], Script([Text("ready")])))
    out = subprocess.run(CODELOOP + ["chat", "--cwd", str(root)], input="hello\n/mcp\n/mcp restart edge\n/mcp restart nope\n",
                         capture_output=True, text=True, timeout=120, env=cli_env(server.base_url, **env))
    assert out.returncode == 0, out.stdout + out.stderr
    text = out.stdout
    assert "MCP servers:" in text
    assert "edge  [ready]  12 tools  (user, stdio)" in text
    # failed, or starting again after its backoff: its last error is shown either way
    assert "dead  [" in text and "last error: failed to start: the server exited with code 3" in text
    assert "Restarting the MCP server 'edge'." in text
    assert "There is no MCP server named 'nope'" in text
    assert "/mcp [restart|allow|deny <name>]" in subprocess.run(
        CODELOOP + ["chat", "--cwd", str(root)], input="/help\n", capture_output=True, text=True, timeout=60,
        env=cli_env(server.base_url, **env)).stdout


def test_codeloop_mcp_list(tmp_path):
    root, env = workspace(tmp_path, user={"mcpServers": {"edge": edge_entry(),
                                                         "dead": edge_entry("dead", "--crash-at-start")}},
                          project={"proj": edge_entry("proj"), "nocmd": {"args": ["x"]}})
    out = subprocess.run(CODELOOP + ["mcp", "list", "--cwd", str(root), "--tools"], capture_output=True, text=True,
                         timeout=120, env=cli_env("http://127.0.0.1:9/v1", **env))
    assert out.returncode == 0, out.stdout + out.stderr
    text = out.stdout
    assert "edge  [ready]  12 tools  (user, stdio)" in text
    assert f"runs `{sys.executable}" in text
    assert "dead  [failed" in text and "fatal: cannot open the widget database" in text
    assert "proj  [needs-consent]" in text and "--trust-project" in text
    assert f"{root / '.mcp.json'}:" in text and "MCP server 'nocmd'" in text and 'needs "command"' in text
    assert "  mcp__edge__echo: Echo the text back." in text
    trusted = subprocess.run(CODELOOP + ["mcp", "list", "--cwd", str(root), "--trust-project"], capture_output=True,
                             text=True, timeout=120, env=cli_env("http://127.0.0.1:9/v1", **env))
    assert "proj  [ready]  12 tools  (project, stdio)" in trusted.stdout, trusted.stdout + trusted.stderr


@pytest.mark.parametrize("flag", ["--yes"])
def test_yes_alone_never_trusts_a_cloned_repositorys_rules(model_server, tmp_path, flag):
    """In bypass (--yes) the rules do not matter for allowing; what a repository asks
    for stays a question of trust: its *deny* rules still hold, its servers do not start."""
    root, env = workspace(tmp_path, settings={"permissions": {"deny": ["Bash(touch:*)"]}},
                          project={"proj": edge_entry("proj")}, repo=True)
    server = model_server(Script([ToolCalls([Call("run_command", {"command": "touch marker.txt"})]), Text("done")]))
    out = run(["run", "go", "--cwd", str(root), flag], server.base_url, env)
    assert out.returncode == 0, out.stdout + out.stderr
    assert "Permission denied" in server.chat_requests[-1].last_tool_results()[0]
    assert not (root / "marker.txt").exists()
    assert "The project's MCP server 'proj'" in out.stdout


def test_plan_mode_offers_only_read_only_mcp_tools_and_still_asks(model_server, tmp_path):
    """readOnlyHint keeps a tool in plan mode (echo), the others are not offered (add); the
    read-only one is still asked: no terminal, so refused."""
    root, env = workspace(tmp_path, user={"mcpServers": {"edge": edge_entry()}})
    server = model_server(WaitForTools(["mcp__edge__echo"], Script([
        ToolCalls([Call("mcp__edge__echo", {"text": "look"}), Call("mcp__edge__add", {"a": 1, "b": 2})]),
        Text("planned")])))
    out = run(["run", "plan it", "--cwd", str(root), "--mode", "plan"], server.base_url, env)
    assert out.returncode == 0, out.stdout + out.stderr
    offered = [n for n in server.chat_requests[-2].tool_names() if n.startswith("mcp__edge__")]
    assert "mcp__edge__echo" in offered and "mcp__edge__add" not in offered
    assert not {"mcp__edge__crash", "mcp__edge__add_tool"} & set(offered)
    echo, add = server.chat_requests[-1].last_tool_results()
    assert "denied permission" in echo
    assert "not available in the current mode" in add


def test_the_servers_stop_with_the_cli(model_server, tmp_path):
    """Every server's process group is gone when codeloop exits, a grandchild the server
    left behind (as npx does) included."""
    from conftest import processes_matching, unique_marker

    child = unique_marker("child")
    root, env = workspace(tmp_path, user={"mcpServers": {"edge": edge_entry("edge", "--spawn-child", child)},
                                          "permissions": {"allow": ["mcp__edge"]}})
    server = model_server(WaitForTools(["mcp__edge__echo"], Script([
        ToolCalls([Call("mcp__edge__echo", {"text": "x"})]), Text("done")])))
    out = run(["run", "go", "--cwd", str(root)], server.base_url, env)
    assert out.returncode == 0, out.stdout + out.stderr
    assert server.chat_requests[-1].last_tool_results()[0].startswith("x")  # it ran, its child with it
    assert processes_matching(child) == []
