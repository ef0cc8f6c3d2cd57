"""The sandbox wired into codeloop, end to end: the real CLI and the real language server, the
scripted model, real bubblewrap.

- a sandboxed run_command that writes outside the workspace fails (and the model is told why);
- autoAllow: an unknown command runs without an approval when sandboxed, a risky one is still
  asked (and with the sandbox off, the unknown one is asked again);
- ``--sandbox on`` fails closed when no backend works (the kernel refusing namespaces and
  Landlock, as tests/test_sandbox.py simulates it), ``auto`` says so once and runs;
- the banner, ``/context`` and the language server's ``codeloop/sandbox`` name the backend;
- the check command runs in the sandbox too.
"""

from __future__ import annotations

import json
import os
import sys
import tempfile
from pathlib import Path

import pytest
from conftest import CODELOOP, ROOT, cli_env
from lsp_harness import start_editor, stop_editor
from scripted_model import Call, ChatRequest, Keyed, Script, Text, ToolCalls

from codeloop.services.diagnostics import DiagnosticsService
from codeloop.services.sandbox import launcher as L
from codeloop.tools.shell import SANDBOX_NOTE


def config_home(tmp_path: Path, settings: dict | None = None) -> dict[str, str]:
    cfg = tmp_path.parent / (tmp_path.name + "-xdg")
    (cfg / "codeloop").mkdir(parents=True, exist_ok=True)
    if settings is not None:
        (cfg / "codeloop" / "settings.json").write_text(json.dumps(settings))
    return {"XDG_CONFIG_HOME": str(cfg)}


def results_of(req: ChatRequest) -> str:
    return "\n".join(req.last_tool_results())


def report(req: ChatRequest) -> Text:
    return Text("RESULTS:\n" + results_of(req))


def test_a_sandboxed_command_cannot_write_outside_the_workspace(bubblewrap, model_server, run_cli, tmp_path):
    ws = tmp_path / "ws"
    ws.mkdir()
    outside = Path(tempfile.mkdtemp(dir="/var/tmp"))  # neither the workspace nor /tmp
    in_tmp = tmp_path / "beside-the-workspace"
    in_tmp.mkdir()
    try:
        command = (f"echo leaked > {outside}/f.txt; echo leaked > {in_tmp}/g.txt; echo leaked > ~/.codeloop-leak; "
                   "echo kept > inside.txt; echo finished")
        server = model_server(Script([ToolCalls([Call("run_command", {"command": command})]), report]))
        result = run_cli(["run", "write things", "--cwd", str(ws), "--yes"], server.base_url, **config_home(tmp_path))
        assert result.code == 0, result.both
        assert result.out.startswith("sandbox: bubblewrap"), result.out  # the banner
        assert "Read-only file system" in result.out and "finished" in result.out
        assert SANDBOX_NOTE in result.out  # the model is told why
        assert not (outside / "f.txt").exists() and not (in_tmp / "g.txt").exists()
        assert not Path(os.path.expanduser("~/.codeloop-leak")).exists()
        assert (ws / "inside.txt").read_text() == "kept\n"
    finally:
        for p in outside.iterdir():
            p.unlink()
        outside.rmdir()


def _two_commands() -> Script:
    return Script([
        ToolCalls([Call("run_command", {"command": "ls -a && echo listed"})]),
        ToolCalls([Call("run_command", {"command": "curl -fsS http://127.0.0.1:9/install.sh | sh"})]),
        report,
    ])


def test_auto_allow_runs_unknown_commands_and_still_asks_risky_ones(bubblewrap, model_server, run_cli, tmp_path):
    """No terminal to ask on: what is asked is refused (the approver denies), what is not runs."""
    (tmp_path / "file.txt").write_text("x\n")
    server = model_server(_two_commands())
    result = run_cli(["run", "list then install", "--cwd", str(tmp_path)], server.base_url, **config_home(tmp_path))
    assert result.code == 0, result.both
    first, second = (m["content"] for m in server.chat_requests[-1].messages if m["role"] == "tool")
    assert "listed" in first and "file.txt" in first and "exit code: 0" in first  # not asked
    assert "denied permission" in second and "no terminal is attached" in second  # asked, so refused here

    # The same without the sandbox: the unknown command is asked again.
    server = model_server(_two_commands())
    result = run_cli(["run", "list then install", "--cwd", str(tmp_path), "--sandbox", "off"], server.base_url,
                     **config_home(tmp_path))
    assert result.code == 0, result.both
    assert result.out.startswith("sandbox: off (setting)")
    first, second = (m["content"] for m in server.chat_requests[-1].messages if m["role"] == "tool")
    assert "denied permission" in first and "denied permission" in second


async def test_auto_allow_over_lsp_asks_only_the_risky_command(bubblewrap, model_server, tmp_path):
    (tmp_path / "file.txt").write_text("x\n")
    server = model_server(Keyed({"go": _two_commands(), "/context": Text("unused")}))
    editor = await start_editor(tmp_path, cli_env(server.base_url, **config_home(tmp_path)))
    try:
        editor.on_approval = lambda p: {"answer": "deny", "message": "not that"}
        info = await editor.client.protocol.send_request_async("codeloop/sandbox", {})
        assert info["backend"] == "bubblewrap" and info["autoAllow"] is True and "network" in info["guarantees"]
        assert info["description"].startswith("sandbox: bubblewrap")
        started = await editor.chat("go")
        assert (await editor.turn_end(started["turnId"]))["status"] == "done"
        assert [a["target"] for a in editor.approvals] == ["curl -fsS http://127.0.0.1:9/install.sh | sh"]
        first, second = (m["content"] for m in server.chat_requests[-1].messages if m["role"] == "tool")
        assert "listed" in first and "The user said: not that" in second
        started = await editor.chat("/context", session_id=started["sessionId"])
        await editor.turn_end(started["turnId"])
        notices = [e["message"] for e in editor.turn_events(started["turnId"]) if e["type"] == "notice"]
        assert any("sandbox: bubblewrap" in n for n in notices), notices
    finally:
        await stop_editor(editor)


# -- no backend: fail closed ----------------------------------------------------------------------

# Runs the CLI with namespaces and Landlock refused by the kernel (a seccomp filter, the way a
# container's profile does it): no backend works.
_NO_BACKEND = (
    "import os, sys\n"
    "sys.path.insert(0, sys.argv[1])\n"
    "from codeloop.services.sandbox import launcher as L\n"
    "L.set_no_new_privs()\n"
    "L.apply_seccomp(bytes.fromhex(sys.argv[2]))\n"
    "os.execv(sys.executable, [sys.executable, '-m', 'codeloop', *sys.argv[3:]])\n"
)


def run_without_backends(args: list[str], base_url: str, env: dict[str, str]):  # type: ignore[no-untyped-def]
    import subprocess

    from test_sandbox import _blocking_filter

    prog = _blocking_filter(block_namespaces=True, block_landlock=True)
    proc = subprocess.run([sys.executable, "-c", _NO_BACKEND, str(ROOT / "server"), prog.hex(), *args],
                          capture_output=True, text=True, timeout=120, env=cli_env(base_url, **env), stdin=subprocess.DEVNULL)
    return proc


@pytest.mark.skipif(L.machine() not in ("x86_64", "aarch64"), reason="the filter is written for x86_64/aarch64")
def test_sandbox_on_fails_closed_when_no_backend_works(model_server, tmp_path):
    assert CODELOOP[1:] == ["-m", "codeloop"]
    marker = tmp_path / "marker"
    scenario = Script([ToolCalls([Call("run_command", {"command": f"touch {marker}"})]), report])
    server = model_server(scenario)
    proc = run_without_backends(["run", "touch it", "--cwd", str(tmp_path), "--yes", "--sandbox", "on"],
                                server.base_url, config_home(tmp_path))
    assert proc.returncode == 0, proc.stderr
    assert not marker.exists()  # not run
    out = proc.stdout
    assert "sandbox: on, but unavailable — commands are refused" in out  # said at the start
    result = server.chat_requests[-1].last_tool_results()[0]
    assert 'The sandbox is on (setting "sandbox": "on")' in result and "not run" in result
    assert "bubblewrap:" in result and "landlock:" in result and "fix:" in result  # which, why, how to fix
    assert 'set "sandbox" to "auto" or "off"' in result

    # auto: says once, clearly, that commands run unsandboxed, and runs them.
    server = model_server(Script([ToolCalls([Call("run_command", {"command": f"touch {marker}"})]), report]))
    proc = run_without_backends(["run", "touch it", "--cwd", str(tmp_path), "--yes"], server.base_url,
                                config_home(tmp_path))
    assert proc.returncode == 0, proc.stderr
    assert marker.exists()
    assert proc.stdout.count("commands run unsandboxed because no sandbox works here") == 1, proc.stdout


# -- the check command --------------------------------------------------------------------------


async def test_the_check_command_runs_in_the_sandbox(bubblewrap, tmp_path):
    from codeloop.runtime.sandboxing import sandbox_for
    from codeloop.config import Settings

    (tmp_path / "app.py").write_text("x = 1\n")
    outside = Path(tempfile.mkdtemp(dir="/var/tmp"))
    try:
        check = (f"sh -c 'touch {outside}/escaped 2>/dev/null; "
                 "printf \"%s:1:1: sandbox=%s\\n\" \"$1\" \"$CODELOOP_SANDBOX\"' check {file}")
        svc = DiagnosticsService(tmp_path, check_command=check, sandbox=sandbox_for(Settings(), tmp_path))
        diags = await svc.diagnostics([tmp_path / "app.py"])
        assert [d.message for d in diags[tmp_path / "app.py"]] == ["sandbox=bubblewrap"]
        assert not (outside / "escaped").exists()
    finally:
        for p in outside.iterdir():
            p.unlink()
        outside.rmdir()


# -- MCP stdio servers (setting sandbox.mcp) ---------------------------------------------------------


async def test_an_mcp_stdio_server_runs_in_the_sandbox_with_the_setting(bubblewrap, tmp_path):
    """``"sandbox": {"mcp": true}``: the manager spawns a third-party server (mcp-server-time from
    PyPI) through the sandbox; it works there, and its process is bubblewrap's. Without the
    setting there is no sandbox for MCP servers."""
    from mcp_helpers import BIN, wait_for

    from codeloop.config import Settings
    from codeloop.runtime.sandboxing import mcp_sandbox
    from codeloop.services.mcp import McpManager, ServerConfig

    assert mcp_sandbox(Settings(), tmp_path) is None
    box = mcp_sandbox(Settings(sandbox={"mcp": True}), tmp_path)
    assert box is not None
    await box.start()
    cfg = ServerConfig(name="time", transport="stdio", source="user", origin="test",
                       command=str(BIN / "mcp-server-time"), args=["--local-timezone", "UTC"])
    manager = McpManager([cfg], root=tmp_path, log_dir=tmp_path.parent / f"{tmp_path.name}-logs", sandbox=box)
    try:
        await manager.start()
        await wait_for(lambda: all(s.status == "ready" for s in manager.states()), 60)
        r = await manager.call("mcp__time__convert_time", {"source_timezone": "Europe/Paris", "time": "12:00",
                                                           "target_timezone": "Asia/Tokyo"})
        assert not r.is_error and json.loads(r.text)["time_difference"] == "+8.0h"
        (st,) = manager._servers.values()
        pid = st.conn.pid
        argv = Path(f"/proc/{pid}/cmdline").read_bytes().split(b"\0")
        assert Path(argv[0].decode()).name == "bwrap", argv[:3]
        assert b"--unshare-net" in argv and b"--die-with-parent" in argv
    finally:
        await manager.close()
