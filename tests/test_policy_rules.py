"""Rule parsing and matching, modes for file tools, and the secrets default."""

from __future__ import annotations

from pathlib import Path

import pytest

from codeloop.policy import PermissionPolicy, PermissionRequest, RuleError, parse_rule
from codeloop.policy.rules import match_command, match_path, match_tool


@pytest.fixture()
def world(tmp_path: Path) -> dict[str, Path]:
    home = tmp_path / "home"
    root = home / "proj"
    (root / "src" / "a").mkdir(parents=True)
    return {"home": home, "root": root.resolve(), "config": tmp_path / "config"}


def make(world: dict[str, Path], mode: str = "ask", **perms: list[str]) -> PermissionPolicy:
    return PermissionPolicy(world["root"], mode=mode, user_settings={"permissions": perms} if perms else None,
                            config_home=world["config"], home=world["home"])


def edit(world: dict[str, Path], rel: str, kind: str = "Edit") -> PermissionRequest:
    return PermissionRequest(kind, rel, world["root"], (world["root"] / rel))


# -- parsing -------------------------------------------------------------------


@pytest.mark.parametrize("text", ["Bash(npm", "Bash()", "Edit()", "bash(ls)", "Frobnicate(x)", "Bash(echo 'x)",
                                  "Read(!x)", "Read(~bob/x)", "Bash(:*)x", 42])
def test_malformed_rules_raise(text: object) -> None:
    with pytest.raises(RuleError):
        parse_rule(text)


def test_foreign_tools_are_inert() -> None:
    assert parse_rule("WebFetch(domain:example.com)") is None


def test_mcp_rules_name_a_server_or_one_tool(world: dict[str, Path]) -> None:
    one = parse_rule("mcp__github__create_issue")
    assert one is not None and match_tool(one, "mcp__github__create_issue")
    assert not match_tool(one, "mcp__github__create_issue_comment")
    for whole in ("mcp__github", "mcp__github__*"):
        r = parse_rule(whole)
        assert match_tool(r, "mcp__github__create_issue") and match_tool(r, "mcp__github__list")
        assert not match_tool(r, "mcp__githubber__list"), whole
    for bad in ("mcp__", "mcp____x", "mcp__github(foo)"):
        with pytest.raises(RuleError):
            parse_rule(bad)
    call = lambda p, name: p.decide(PermissionRequest("Tool", name, world["root"]))  # noqa: E731
    p = make(world, allow=["mcp__github"], deny=["mcp__github__delete_repo"], ask=["mcp__time__*"])
    assert call(p, "mcp__github__list_issues").action == "allow"
    assert call(p, "mcp__github__delete_repo").action == "deny"
    assert call(p, "mcp__time__now").action == "ask"
    d = call(p, "mcp__other__x")
    assert d.action == "ask" and d.suggested_rule == "mcp__other__x", "an MCP tool asks by default"
    for mode in ("acceptEdits", "plan"):
        p.mode = mode
        assert call(p, "mcp__other__x").action == "ask", mode
    p.mode = "bypass"
    assert call(p, "mcp__other__x").action == "allow"
    assert call(p, "mcp__github__delete_repo").action == "deny", "deny rules hold in bypass"


def test_prefix_rule_matches_whole_words() -> None:
    r = parse_rule("Bash(npm run test:*)")
    assert match_command(r, ["npm", "run", "test"])
    assert match_command(r, ["npm", "run", "test", "--", "-k", "x"])
    assert not match_command(r, ["npm", "run", "test-e2e"])
    assert not match_command(r, ["npm", "run"])
    assert not match_command(r, ["npx", "run", "test"])


def test_exact_rule_compares_words_not_spacing() -> None:
    r = parse_rule("Bash(git  status)")
    assert match_command(r, ["git", "status"])
    assert not match_command(r, ["git", "status", "-s"])
    quoted = parse_rule("Bash(grep 'a b' file)")
    assert match_command(quoted, ["grep", "a b", "file"])
    assert not match_command(quoted, ["grep", "a", "b", "file"])
    # exact rules never cover a command that gets more arguments at run time (xargs)
    assert not match_command(r, ["git", "status"], open_args=True)


def test_wildcard_rule() -> None:
    r = parse_rule("Bash(git * main)")
    assert match_command(r, ["git", "push", "origin", "main"])
    assert not match_command(r, ["git", "push", "origin", "dev"])
    tail = parse_rule("Bash(npm run *)")
    assert match_command(tail, ["npm", "run"]) and match_command(tail, ["npm", "run", "x"])
    assert not match_command(tail, ["npm", "runx"])


def test_path_globs(world: dict[str, Path]) -> None:
    root, home = world["root"], world["home"]
    src = parse_rule("Edit(src/**)", home=home)
    assert match_path(src, root / "src/a/b.py", root)
    assert not match_path(src, root / "lib/src.py", root)
    assert not match_path(src, root / "lib/src/x.py", root)  # anchored: it has a slash
    lock = parse_rule("Write(**/*.lock)", home=home)
    assert match_path(lock, root / "yarn.lock", root) and match_path(lock, root / "a/b/c.lock", root)
    env = parse_rule("Read(.env)", home=home)
    assert match_path(env, root / ".env", root) and match_path(env, root / "sub/.env", root)
    assert not match_path(env, root / ".env.local", root)
    ssh = parse_rule("Read(~/.ssh/**)", home=home)
    assert match_path(ssh, home / ".ssh/id_rsa", root) and not match_path(ssh, root / ".ssh/x", root)
    absolute = parse_rule("Edit(/etc/**)", home=home)
    assert match_path(absolute, Path("/etc/hosts"), root) and not match_path(absolute, root / "etc/hosts", root)
    anchored = parse_rule("Edit(./a.py)", home=home)
    assert match_path(anchored, root / "a.py", root) and not match_path(anchored, root / "x/a.py", root)
    # relative anchored rules never match outside the workspace
    assert not match_path(src, Path("/tmp/src/a.py"), root)


# -- classes and modes for the file tools -------------------------------------------


def test_edit_modes(world: dict[str, Path]) -> None:
    expected = {"ask": "ask", "acceptEdits": "allow", "plan": "deny", "bypass": "allow"}
    for mode, action in expected.items():
        p = make(world, mode)
        for kind in ("Edit", "Write"):
            d = p.decide(edit(world, "src/a/b.py", kind))
            assert d.action == action, (mode, kind, d)
    d = make(world, "plan").decide(edit(world, "src/x.py"))
    assert "plan mode is read-only" in d.reason


def test_edit_rules_cover_write_and_order(world: dict[str, Path]) -> None:
    p = make(world, allow=["Edit(src/**)"])
    assert p.decide(edit(world, "src/a/b.py", "Write")).action == "allow"
    assert p.decide(edit(world, "lib/x.py")).action == "ask"
    p = make(world, "acceptEdits", allow=["Edit(src/**)"], deny=["Write(**/*.lock)"], ask=["Edit(src/a/**)"])
    d = p.decide(edit(world, "src/yarn.lock"))
    assert d.action == "deny" and d.rule == "Write(**/*.lock)"
    d = p.decide(edit(world, "src/a/b.py"))
    assert d.action == "ask" and d.rule == "Edit(src/a/**)"  # ask beats allow
    assert p.decide(edit(world, "src/c.py")).action == "allow"
    # deny rules hold in bypass; ask rules do not
    p.mode = "bypass"
    assert p.decide(edit(world, "src/yarn.lock")).action == "deny"
    assert p.decide(edit(world, "src/a/b.py")).action == "allow"


def test_first_matching_rule_is_named(world: dict[str, Path]) -> None:
    p = make(world, deny=["Bash(rm:*)", "Bash(rm -rf:*)"])
    d = p.decide(PermissionRequest("Bash", "rm -rf build", world["root"]))
    assert d.action == "deny" and d.rule == "Bash(rm:*)"


def test_policy_files_are_protected_even_in_bypass(world: dict[str, Path]) -> None:
    p = make(world, "bypass", allow=["Edit"])
    d = p.decide(edit(world, ".codeloop/settings.json"))
    assert d.action == "ask" and "own configuration" in d.reason and d.confirm
    for other in (".mcp.json", ".claude/settings.json", ".codeloop/agents/x.md", ".vscode/settings.json",
                  ".git/hooks/pre-commit", ".git/config"):
        d = p.decide(edit(world, other))
        assert d.action == "ask" and d.confirm, other
    assert not p.decide(edit(world, "src/app.py")).confirm
    d = p.decide(PermissionRequest("Bash", "echo '{}' > .codeloop/settings.local.json", world["root"]))
    assert d.action == "ask"
    d = p.decide(PermissionRequest("Bash", "rm .codeloop/settings.json", world["root"]))
    assert d.action == "ask"


def test_claude_code_settings_are_protected_in_the_project_and_the_user_folders(world, monkeypatch, tmp_path) -> None:
    # The hooks' settings files (issue 17): the project's, the user's ~/.claude, and a
    # Claude Code folder moved with $CLAUDE_CONFIG_DIR.
    moved = tmp_path / "claude-config"
    monkeypatch.setenv("CLAUDE_CONFIG_DIR", str(moved))
    p = make(world, "bypass", allow=["Edit"])
    for target in (".claude/settings.json", ".claude/settings.local.json", str(world["home"] / ".claude" / "settings.json"),
                   str(moved / "settings.json"), str(moved / "agents" / "x.md")):
        d = p.decide(edit(world, target))
        assert d.action == "ask" and d.confirm, target


def test_reads_and_the_secrets_default(world: dict[str, Path]) -> None:
    root, home = world["root"], world["home"]
    p = make(world)
    read = lambda t, path=None: p.decide(PermissionRequest("Read", t, root, path))  # noqa: E731
    assert read("src/a.py").action == "allow"
    for secret in (".env", ".env.production", "certs/server.pem", "deploy.key", "keys/id_ed25519"):
        d = read(secret)
        assert d.action == "ask" and "secret" in d.reason, secret
        assert d.suggested_rule and d.suggested_rule.startswith("Read(")
    assert read(".env.example").action == "allow"
    assert read("id_ed25519.pub").action == "allow"
    assert read(str(home / ".ssh/config")).action == "ask"
    assert read("~/.aws/credentials").action == "ask"
    for mode in ("acceptEdits", "plan"):
        p.mode = mode
        assert read(".env").action == "ask"
    p.mode = "bypass"
    assert read(".env").action == "allow"
    p = make(world, "bypass", deny=["Read(.env)"])
    assert p.decide(PermissionRequest("Read", ".env", root)).action == "deny"
    p = make(world, allow=["Read(.env)"])
    assert p.decide(PermissionRequest("Read", ".env", root)).action == "allow"
    p = make(world, allow=["Read"])  # a bare rule does not lift the secrets default
    assert p.decide(PermissionRequest("Read", ".env", root)).action == "ask"


def test_tool_visibility_and_mode_text(world: dict[str, Path]) -> None:
    p = make(world, "plan")
    assert p.tool_visible("Read", True)
    assert not p.tool_visible("Edit", False)
    assert not p.tool_visible("Write", False)
    assert not p.tool_visible("Tool", False) and p.tool_visible("Tool", True)
    assert p.tool_visible("Bash", False)  # a shell-like tool stays: it runs read-only commands
    note = p.describe_mode()
    assert note and "plan" in note.lower() and "read-only" in note
    p.mode = "ask"
    assert p.tool_visible("Edit", False) and p.describe_mode() is None
    p.mode = "nonsense"  # type: ignore[assignment]
    assert p.mode == "ask"


def test_plan_mode_commands(world: dict[str, Path]) -> None:
    p = make(world, "plan", allow=["Bash(git:*)", "Bash(npm test)", "Bash(ls:*)", "Bash(echo:*)"])
    run = lambda c: p.decide(PermissionRequest("Bash", c, world["root"]))  # noqa: E731
    assert run("git status").action == "allow"
    assert run("git log --oneline -3").action == "allow"
    assert run("ls -la").action == "allow"
    d = run("npm test")
    assert d.action == "deny" and "plan mode is read-only" in d.reason
    assert run("git commit -m x").action == "deny"
    assert run("git branch new-thing").action == "deny"
    assert run("git -c core.pager='sh -c x' log").action == "deny"
    assert run("echo hi > notes.txt").action == "deny"
    assert run("echo hi > /dev/null").action == "allow"
    assert run("ls | sort -o out.txt").action == "deny"
    assert run("cat README.md").action == "ask"  # read-only but no rule: the user decides


def test_decide_never_raises_and_never_allows_garbage(world: dict[str, Path]) -> None:
    p = make(world, allow=["Bash(ls:*)"])
    for junk in ["", "   ", "\x00", "(((((", "$(" * 500, "ls " + "| cat " * 400, "'" * 3, "a" * 60000]:
        d = p.decide(PermissionRequest("Bash", junk, world["root"]))
        assert d.action in ("ask", "deny"), (junk[:20], d)
