"""The MCP configuration the README shows is valid and means what the README says (the
project rule: docs that show config are tested by extracting them)."""

from __future__ import annotations

from pathlib import Path

from codeloop.policy import PermissionPolicy
from codeloop.policy.types import PermissionRequest
from codeloop.services.mcp import load_config

README = Path(__file__).resolve().parent.parent / "README.md"


def test_the_readme_mcp_json_example_loads(tmp_path: Path) -> None:
    text = README.read_text()
    section = text.split("\n## MCP servers\n", 1)[1].split("\n## ", 1)[0]
    example = section.split("```json\n", 1)[1].split("```", 1)[0]
    root = tmp_path / "ws"
    root.mkdir()
    (root / ".mcp.json").write_text(example)
    cfg = load_config(root, config_home=tmp_path / "no-config", environ={"DOCS_TOKEN": "t0k"})
    assert not cfg.problems, [str(p) for p in cfg.problems]
    by = cfg.by_name()
    assert list(by) == ["git", "time", "docs"]
    assert by["git"].transport == "stdio" and by["git"].command == "uvx" and by["git"].source == "project"
    assert by["time"].env == {"TZ": "UTC"}  # ${TZ:-UTC} with TZ unset
    assert by["docs"].transport == "http" and by["docs"].headers == {"Authorization": "Bearer t0k"}
    assert all(s.needs_consent for s in cfg.servers)  # a workspace's servers wait for the user

    # the rule names the README gives decide these servers' tools as it says
    words = " ".join(section.split())
    for rule, tool, action in (("mcp__git", "mcp__git__git_status", "allow"), ("mcp__git__*", "mcp__git__git_log", "allow"),
                               ("mcp__git__git_status", "mcp__git__git_status", "allow"),
                               ("mcp__git", "mcp__time__now", "ask")):
        assert f"`{rule}`" in words
        policy = PermissionPolicy(root, user_settings={"allow": [rule]}, config_home=tmp_path / "no-config")
        assert policy.decide(PermissionRequest("Tool", tool, root)).action == action, (rule, tool)
