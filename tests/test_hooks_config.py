"""Loading hooks from the settings files, matchers, and the Claude Code payload mapping."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from codeloop.services.hooks import HookEngine, Matcher, load_hooks, settings_stamp
from codeloop.services.hooks.dialect import from_claude, input_changes
from codeloop.services.hooks.dialect import to_claude as _to_claude
from codeloop.tools.builtin import BuiltinTools
from codeloop.tools.registry import select_tools

TOOLS = {t.name: t for t in BuiltinTools().tools()}


def to_claude(name, tool_input, root):
    return _to_claude(TOOLS.get(name), name, tool_input, root)


def write(path: Path, data) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(data if isinstance(data, str) else json.dumps(data, indent=2))
    return path


def hooks_of(event: str, matcher: str, *commands: str) -> dict:
    return {"hooks": {event: [{"matcher": matcher, "hooks": [{"type": "command", "command": c} for c in commands]}]}}


@pytest.fixture
def dirs(tmp_path: Path):
    root, home, claude = tmp_path / "proj", tmp_path / "cfg" / "codeloop", tmp_path / "cfg" / ".claude"
    for d in (root, home, claude):
        d.mkdir(parents=True)
    return root, home, claude


def test_every_file_loads_with_its_scope_dialect_and_order(dirs):
    root, home, claude = dirs
    write(home / "settings.json", hooks_of("PreToolUse", "Bash", "user-codeloop"))
    write(claude / "settings.json", hooks_of("PreToolUse", "Bash", "user-claude"))
    write(root / ".codeloop" / "settings.json", hooks_of("PreToolUse", "Bash", "project-codeloop"))
    write(root / ".codeloop" / "settings.local.json", hooks_of("PreToolUse", "Bash", "project-codeloop-local"))
    write(root / ".claude" / "settings.json", hooks_of("PreToolUse", "Bash", "project-claude"))
    write(root / ".claude" / "settings.local.json", hooks_of("PreToolUse", "Bash", "project-claude-local"))
    hooks, problems = load_hooks(root, home, claude)
    assert problems == []
    assert [(h.command, h.scope, h.dialect) for h in hooks] == [
        ("user-codeloop", "user", "codeloop"),
        ("user-claude", "user", "claude"),
        ("project-codeloop", "project", "codeloop"),
        ("project-codeloop-local", "project", "codeloop"),
        ("project-claude", "project", "claude"),
        ("project-claude-local", "project", "claude"),
    ]
    assert hooks[4].source == root / ".claude" / "settings.json" and hooks[4].is_project
    assert all(h.timeout == 60.0 for h in hooks)
    # Without homes, the user files are not read at all.
    only_project, _ = load_hooks(root)
    assert [h.scope for h in only_project] == ["project"] * 4


def test_a_broken_file_names_itself_and_the_others_still_load(dirs):
    root, home, claude = dirs
    write(root / ".claude" / "settings.json", '{\n  "hooks": {\n    "PreToolUse": [\n  }\n')
    write(root / ".codeloop" / "settings.json", hooks_of("Stop", "", "still-here"))
    write(home / "settings.json", "[1, 2]")
    hooks, problems = load_hooks(root, home, claude)
    assert [h.command for h in hooks] == ["still-here"]
    texts = [str(p) for p in problems]
    assert any(t.startswith(f"{root / '.claude' / 'settings.json'}:4") and "invalid JSON" in t for t in texts), texts
    assert any(str(home / "settings.json") in t and "must be a JSON object" in t for t in texts), texts


def test_broken_entries_are_named_and_their_neighbours_load(dirs):
    root, home, claude = dirs
    path = write(root / ".claude" / "settings.json", {"hooks": {
        "PreToolUse": [
            {"matcher": "Bash", "hooks": [
                {"type": "command", "command": "good-1", "timeout": 5},
                {"type": "command"},
                {"type": "command", "command": "bad-timeout", "timeout": -3},
                {"type": "prompt", "prompt": "is this safe?"},
                "not-an-object",
            ]},
            {"matcher": "(unclosed", "hooks": [{"type": "command", "command": "bad-regex"}]},
            {"matcher": 7, "hooks": []},
            {"matcher": "Edit"},
        ],
        "PostToolUseFailure": [{"hooks": [{"type": "command", "command": "unsupported"}]}],
        "BeforeEverything": [],
        "Stop": {"hooks": []},
        "SessionEnd": [{"hooks": [{"command": "good-2"}]}],
    }})
    hooks, problems = load_hooks(root, home, claude)
    assert [(h.command, h.timeout) for h in hooks] == [("good-1", 5.0), ("good-2", 60.0)]
    by_entry = {p.where.split(": ", 1)[1]: p.message for p in problems}
    assert all(p.path == path and p.where.startswith(str(path)) for p in problems)
    assert "non-empty string" in by_entry["hooks.PreToolUse[0].hooks[1].command"]
    assert "positive number" in by_entry["hooks.PreToolUse[0].hooks[2].timeout"]
    assert "'prompt' are not supported" in by_entry["hooks.PreToolUse[0].hooks[3].type"]
    assert "must be an object" in by_entry["hooks.PreToolUse[0].hooks[4]"]
    assert "not a valid regular expression" in by_entry["hooks.PreToolUse[1].matcher"]
    assert "must be a string" in by_entry["hooks.PreToolUse[2].matcher"]
    assert "must be a list of hook objects" in by_entry["hooks.PreToolUse[3].hooks"]
    assert "Claude Code event codeloop does not run" in by_entry["hooks.PostToolUseFailure"]
    assert "not a hook event" in by_entry["hooks.BeforeEverything"]
    assert "must be a list" in by_entry["hooks.Stop"]
    assert len(problems) == 10
    # A line number points into the file where it can.
    assert any(p.where.startswith(f"{path}:") for p in problems)


def test_disable_all_hooks_user_wide_or_for_the_project_only(dirs):
    root, home, claude = dirs
    write(home / "settings.json", hooks_of("Stop", "", "user"))
    write(root / ".claude" / "settings.json", {**hooks_of("Stop", "", "project"), "disableAllHooks": True})
    hooks, _ = load_hooks(root, home, claude)
    assert [h.command for h in hooks] == ["user"]  # a repository cannot switch the user's hooks off
    write(claude / "settings.json", {"disableAllHooks": True})
    hooks, _ = load_hooks(root, home, claude)
    assert hooks == []


def test_payload_override_in_a_codeloop_file(dirs):
    root, home, claude = dirs
    write(home / "settings.json", {"hooks": {"PreToolUse": [{"matcher": "Bash", "hooks": [
        {"type": "command", "command": "copied-from-claude", "payload": "claude"},
        {"type": "command", "command": "bad", "payload": "yaml"},
    ]}]}})
    hooks, problems = load_hooks(root, home, claude)
    assert [(h.command, h.dialect) for h in hooks] == [("copied-from-claude", "claude")]
    assert "must be \"claude\" or \"codeloop\"" in problems[0].message


def test_settings_stamp_changes_with_the_files(dirs):
    root, home, claude = dirs
    before = settings_stamp(root, home, claude)
    write(root / ".claude" / "settings.local.json", hooks_of("Stop", "", "x"))
    assert settings_stamp(root, home, claude) != before


@pytest.mark.parametrize("matcher,name,hit", [
    ("", "anything", True),
    ("*", "mcp__x__y", True),
    ("Bash", "Bash", True),
    ("Edit", "MultiEdit", False),  # the simple form is exact names
    ("Edit|Write", "Write", True),
    ("bash", "Bash", False),  # case counts
    ("mcp__github__.*", "mcp__github__create_issue", True),
    ("mcp__github__.*", "mcp__gitlab__create_issue", False),
    ("Notebook.*", "NotebookEdit", True),
    ("mcp__memory__create_entities", "mcp__memory__create_entities", True),
])
def test_matcher_semantics(matcher, name, hit):
    assert Matcher.parse(matcher).test(name) is hit


@pytest.mark.parametrize("matcher,tool,hit", [
    ("Bash", "run_command", True),
    ("BashOutput", "read_command_output", True),
    ("KillShell", "kill_process", True),
    ("Bash", "read_file", False),
    ("Edit|Write", "edit_file", True),
    ("Edit|Write", "write_file", True),
    ("Edit|Write", "apply_patch", True),
    ("Edit|MultiEdit|Write", "read_file", False),
    ("Read", "read_file", True),
    ("Grep|Glob|LS", "list_dir", True),
    ("run_command|edit_file", "run_command", True),
    ("TodoWrite", "todo_write", True),
    ("mcp__.*", "mcp__fs__read", True),
    (".*_file", "edit_file", True),
])
def test_claude_code_names_select_codeloop_tools(dirs, matcher, tool, hit):
    root, home, claude = dirs
    write(root / ".claude" / "settings.json", hooks_of("PostToolUse", matcher, "x"))
    hooks, _ = load_hooks(root)
    # The engine asks the tool for its other names (BaseTool.claude_names).
    assert bool(HookEngine(hooks, root, trust=None).matching("PostToolUse", tool, include_untrusted=True)) is hit


def test_non_tool_events_match_their_own_field_or_nothing(dirs):
    root, _, _ = dirs
    write(root / ".claude" / "settings.json", {"hooks": {
        "SessionStart": [{"matcher": "startup", "hooks": [{"type": "command", "command": "s"}]}],
        "PreCompact": [{"matcher": "manual", "hooks": [{"type": "command", "command": "c"}]}],
        "Stop": [{"matcher": "ignored-here", "hooks": [{"type": "command", "command": "t"}]}],
    }})
    s, c, t = load_hooks(root)[0]
    assert s.selects("startup") and not s.selects("resume") and not s.selects(None)
    assert c.selects("manual") and not c.selects("auto")
    assert t.selects(None)  # Stop has no matcher field


def test_each_tool_knows_its_claude_code_names_and_tool_lists_resolve_through_them():
    assert TOOLS["run_command"].claude_names[0] == "Bash"
    assert TOOLS["edit_file"].names() == ("edit_file", "Edit", "MultiEdit")
    assert TOOLS["get_diagnostics"].names() == ("get_diagnostics",)
    available = [TOOLS[n] for n in ("read_file", "grep", "glob", "list_dir", "run_command",
                                     "read_command_output", "edit_file", "write_file", "apply_patch")]
    tools, unknown = select_tools(["Read", "Grep", "Glob", "NotebookEdit"], available)
    assert [t.name for t in tools] == ["read_file", "grep", "glob"] and unknown == ["NotebookEdit"]
    tools, unknown = select_tools(["Bash", "edit_file"], available)
    assert [t.name for t in tools] == ["run_command", "edit_file"] and unknown == []
    tools, _ = select_tools(["BashOutput"], available)
    assert [t.name for t in tools] == ["read_command_output"]


def test_to_and_from_claude_inputs(tmp_path):
    root = tmp_path
    assert to_claude("run_command", {"command": "ls", "timeout": 1.5, "cwd": "src"}, root) == (
        "Bash", {"command": "ls", "timeout": 1500, "cwd": "src"})
    assert to_claude("run_command", {"command": "npm run dev", "background": True}, root) == (
        "Bash", {"command": "npm run dev", "run_in_background": True})
    assert to_claude("edit_file", {"path": "a/b.py", "old_string": "x", "new_string": "y"}, root) == (
        "Edit", {"file_path": str(root / "a" / "b.py"), "old_string": "x", "new_string": "y"})
    assert to_claude("grep", {"pattern": "x", "case_insensitive": True, "context": 2}, root) == (
        "Grep", {"pattern": "x", "-i": True, "-C": 2})
    assert to_claude("read_command_output", {"id": "bg-1", "offset": -5}, root) == (
        "BashOutput", {"bash_id": "bg-1", "offset": -5})
    assert to_claude("get_diagnostics", {"paths": []}, root) == ("get_diagnostics", {"paths": []})
    assert to_claude("mcp__s__t", {"q": 1}, root) == ("mcp__s__t", {"q": 1})
    # Back: paths inside the workspace become workspace paths again; outside ones stay absolute.
    write, run = TOOLS["write_file"], TOOLS["run_command"]
    assert from_claude(write, {"file_path": str(root / "x.txt"), "content": "c"}, root) == {"path": "x.txt", "content": "c"}
    assert from_claude(write, {"file_path": "/etc/passwd", "content": "c"}, root) == {"path": "/etc/passwd", "content": "c"}
    assert from_claude(run, {"command": "x", "run_in_background": True}, root) == {"command": "x", "background": True}
    assert from_claude(run, {"command": "x", "timeout": 2000}, root) == {"command": "x", "timeout": 2.0}
    # Changes only: the same file spelled differently is no change.
    orig = {"path": str(root / "a.py"), "content": "c"}
    assert input_changes(write, "write_file", orig, {"file_path": str(root / "a.py")}, "claude", root) == {}
    assert input_changes(write, "write_file", orig, {"content": "d"}, "claude", root) == {"content": "d"}


def test_apply_patch_is_shown_as_an_edit_of_its_files(tmp_path):
    patch = (
        "--- a/src/one.py\n+++ b/src/one.py\n@@ -1 +1 @@\n-a\n+b\n"
        "--- /dev/null\n+++ b/new.txt\n@@ -0,0 +1 @@\n+n\n"
        "--- a/gone.txt\n+++ /dev/null\n@@ -1 +0,0 @@\n-g\n"
    )
    files = [str(tmp_path / "src" / "one.py"), str(tmp_path / "new.txt"), str(tmp_path / "gone.txt")]
    name, inp = to_claude("apply_patch", {"patch": patch}, tmp_path)
    assert name == "Edit" and inp == {"patch": patch, "file_paths": files}
    single = "--- a/x.py\n+++ b/x.py\n@@ -1 +1 @@\n-a\n+b\n"
    assert to_claude("apply_patch", {"patch": single}, tmp_path)[1]["file_path"] == str(tmp_path / "x.py")
    assert from_claude(TOOLS["apply_patch"], {"patch": "p2", "file_path": "x", "file_paths": []}, tmp_path) == {"patch": "p2"}
