"""Custom slash command files: arguments, front matter, namespaces, precedence, problems."""

from __future__ import annotations

import textwrap
from pathlib import Path

from codeloop.context.custom_commands import load_custom_commands, split_arguments


def md(path: Path, text: str) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(textwrap.dedent(text).lstrip())
    return path


def test_arguments_and_front_matter(tmp_path):
    root = tmp_path / "proj"
    md(root / ".claude" / "commands" / "fix-issue.md", """
        ---
        description: Fix a GitHub issue
        argument-hint: [issue-number] [priority]
        allowed-tools: Bash(gh issue view:*), Bash(git add:*, git commit:*), Read
        model: small-model
        ---
        Fix issue #$1 with priority $2.
        All arguments: $ARGUMENTS
        Missing: [$3]
    """)
    md(root / ".claude" / "commands" / "review.md", "Review the latest change carefully.\n")
    cmds = load_custom_commands(root)
    assert cmds.problems == []
    fix, err = cmds.lookup("fix-issue")
    assert err is None
    assert fix.description == "Fix a GitHub issue" and fix.argument_hint == "[issue-number] [priority]"
    assert fix.model == "small-model"
    assert fix.allowed_tools == ("Bash(gh issue view:*)", "Bash(git add:*, git commit:*)", "Read")
    assert fix.expand('123 "very high"') == (
        "Fix issue #123 with priority very high.\nAll arguments: 123 \"very high\"\nMissing: []")
    review, _ = cmds.lookup("/review")
    assert review.description == "Review the latest change carefully."  # its first line
    assert review.expand("") == "Review the latest change carefully."
    # No placeholder: the arguments are appended, as Claude Code does.
    assert review.expand("focus on errors") == "Review the latest change carefully.\n\nARGUMENTS: focus on errors"
    assert fix.help_line() == "/fix-issue [issue-number] [priority] — Fix a GitHub issue (project)"


def test_argument_values_are_not_expanded_again():
    from codeloop.context.custom_commands import CustomCommand
    c = CustomCommand("echo", "", "d", "A=$1 B=$2 ALL=$ARGUMENTS", Path("x.md"), "project", "codeloop")
    assert c.expand("$2 x") == "A=$2 B=x ALL=$2 x"
    assert split_arguments('a "b c') == ["a", '"b', "c"]  # unbalanced quotes: plain words


def test_namespaces_like_claude_code(tmp_path):
    root = tmp_path / "proj"
    md(root / ".claude" / "commands" / "frontend" / "component.md", "Make a component $ARGUMENTS\n")
    md(root / ".claude" / "commands" / "frontend" / "build.md", "Build the frontend\n")
    md(root / ".claude" / "commands" / "backend" / "build.md", "Build the backend\n")
    md(root / ".claude" / "commands" / "git" / "flow" / "start.md", "Start a flow\n")
    cmds = load_custom_commands(root)
    comp, _ = cmds.lookup("component")
    assert (comp.name, comp.namespace, comp.qualified, comp.label) == (
        "component", "frontend", "frontend:component", "(project:frontend)")
    none, why = cmds.lookup("build")
    assert none is None
    assert why == "/build is ambiguous: use one of /backend:build (project:backend), /frontend:build (project:frontend)"
    assert cmds.lookup("frontend:build")[0].body == "Build the frontend"
    assert cmds.lookup("backend/build")[0].body == "Build the backend"
    assert cmds.lookup("git:flow:start")[0].label == "(project:git:flow)"
    assert cmds.lookup("nothing") == (None, None)
    assert dict(cmds.completions())["component"].startswith("Make a component")
    assert "frontend:build" in dict(cmds.completions())
    # A top-level file of the same name wins the bare name.
    md(root / ".claude" / "commands" / "build.md", "Build everything\n")
    assert load_custom_commands(root).lookup("build")[0].body == "Build everything"


def test_precedence_and_user_commands(tmp_path):
    root, home, claude = tmp_path / "proj", tmp_path / "cfg", tmp_path / ".claude"
    md(root / ".codeloop" / "commands" / "deploy.md", "codeloop project deploy\n")
    md(root / ".claude" / "commands" / "deploy.md", "claude project deploy\n")
    md(home / "commands" / "deploy.md", "user deploy\n")
    md(claude / "commands" / "scratch.md", "---\ndescription: a scratchpad\n---\nscratch\n")
    cmds = load_custom_commands(root, home, claude)
    assert cmds.lookup("deploy")[0].body == "codeloop project deploy"
    assert [c.body for c in cmds.shadowed] == ["claude project deploy", "user deploy"]
    s, _ = cmds.lookup("scratch")
    assert (s.scope, s.origin, s.label) == ("user", "claude", "(user)")
    assert [c.qualified for c in load_custom_commands(root).commands] == ["deploy"]


def test_broken_command_files_are_named(tmp_path):
    root = tmp_path / "proj"
    d = root / ".codeloop" / "commands"
    md(d / "ok.md", "fine\n")
    md(d / "empty.md", "---\ndescription: nothing here\n---\n\n")
    md(d / "unclosed.md", "---\ndescription: x\n")
    md(d / "bad desc.md", "x\n")
    md(d / "typed.md", "---\ndescription: [1, 2]\n---\nbody\n")
    md(d / "bad ns" / "x.md", "x\n")
    (d / "latin1.md").write_bytes(b"caf\xe9\n")
    (d / "notes.txt").write_text("not a command")
    md(d / ".hidden.md", "hidden\n")
    cmds = load_custom_commands(root)
    assert [c.name for c in cmds.commands] == ["ok"]
    msgs = {p.path.name: p.message for p in cmds.problems}
    assert "has no prompt" in msgs["empty.md"]
    assert "no closing --- line" in msgs["unclosed.md"]
    assert "cannot be a command name" in msgs["bad desc.md"]
    assert "description must be text" in msgs["typed.md"]
    assert "cannot be a namespace" in msgs["bad ns"]
    assert "cannot be read" in msgs["latin1.md"]
    assert all(str(p).startswith(str(d)) for p in cmds.problems)
    assert len(cmds.problems) == 6
