"""Third-party MCP servers from PyPI, driven end to end through the manager:
``mcp-server-time`` and ``mcp-server-git`` (on a temporary repository), configured the way a
user writes them in ``.mcp.json`` and started after the user's consent."""

from __future__ import annotations

import json
import subprocess
from pathlib import Path

from mcp_helpers import BIN, wait_for

from codeloop.services.mcp import McpManager, ProjectConsent, load_config

GIT = ["git", "-c", "user.name=Test", "-c", "user.email=test@example.invalid", "-c", "commit.gpgsign=false"]


async def test_time_and_git_servers_from_pypi(tmp_path: Path) -> None:
    root = tmp_path / "ws"
    repo = root / "repo"
    repo.mkdir(parents=True)
    subprocess.run(GIT + ["init", "-q", "-b", "main"], cwd=root, check=True)
    subprocess.run(GIT + ["init", "-q", "-b", "main"], cwd=repo, check=True)
    (repo / "notes.txt").write_text("first line\n")
    subprocess.run(GIT + ["add", "-A"], cwd=repo, check=True)
    subprocess.run(GIT + ["commit", "-qm", "Add the notes"], cwd=repo, check=True)
    (repo / "notes.txt").write_text("first line\nsecond line\n")
    (root / ".mcp.json").write_text(json.dumps({"mcpServers": {
        "time": {"command": str(BIN / "mcp-server-time"), "args": ["--local-timezone", "${TZ_NAME:-Europe/Paris}"]},
        "git": {"command": str(BIN / "mcp-server-git"), "args": ["--repository", "${workspaceFolder}/repo"]},
    }}))
    cfg = load_config(root, config_home=tmp_path / "cfg", environ={"PATH": "/usr/bin:/bin"})
    assert not cfg.problems

    async def yes(request):
        return True

    m = McpManager(cfg.servers, root=root, consent=ProjectConsent(root, user_data_dir=tmp_path / "data"), ask=yes)
    try:
        await m.start()
        await wait_for(lambda: all(s.status == "ready" for s in m.states()), 60)
        names = {t.qualified_name for t in m.tools()}
        assert {"mcp__time__get_current_time", "mcp__time__convert_time", "mcp__git__git_status",
                "mcp__git__git_diff_unstaged", "mcp__git__git_log", "mcp__git__git_commit"} <= names
        assert m.tool("mcp__git__git_status").read_only and not m.tool("mcp__git__git_commit").read_only

        r = await m.call("mcp__time__convert_time", {"source_timezone": "Europe/Paris", "time": "12:00",
                                                     "target_timezone": "Asia/Tokyo"})
        data = json.loads(r.text)
        assert not r.is_error and data["target"]["timezone"] == "Asia/Tokyo" and data["time_difference"] == "+8.0h"
        r = await m.call("mcp__time__get_current_time", {"timezone": "Mars/Olympus_Mons"})
        assert r.is_error and "Invalid timezone" in r.text

        r = await m.call("mcp__git__git_status", {"repo_path": str(repo)})
        assert "modified:   notes.txt" in r.text
        r = await m.call("mcp__git__git_diff_unstaged", {"repo_path": str(repo)})
        assert "+second line" in r.text
        r = await m.call("mcp__git__git_add", {"repo_path": str(repo), "files": ["notes.txt"]})
        assert not r.is_error
        r = await m.call("mcp__git__git_commit", {"repo_path": str(repo), "message": "Add a second line"})
        assert not r.is_error and "Changes committed successfully" in r.text
        log = subprocess.run(["git", "log", "--format=%s"], cwd=repo, capture_output=True, text=True).stdout
        assert log.splitlines() == ["Add a second line", "Add the notes"]
        r = await m.call("mcp__git__git_log", {"repo_path": str(repo), "max_count": 1})
        assert "Add a second line" in r.text
    finally:
        await m.close()
    stored = json.loads((root / ".codeloop" / "settings.local.json").read_text())
    assert stored["enabledMcpjsonServers"] == ["time", "git"]
