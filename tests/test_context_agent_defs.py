"""Sub-agent definition files: Claude Code's and codeloop's, good and broken."""

from __future__ import annotations

import textwrap
from pathlib import Path

from codeloop.context.agent_defs import agent_dirs, describe_for_model, load_agent_defs, parse_agent
from codeloop.tools.builtin import BuiltinTools
from codeloop.tools.registry import select_tools

TOOLS = {t.name: t for t in BuiltinTools().tools()}


def md(path: Path, text: str) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(textwrap.dedent(text).lstrip())
    return path


def test_a_claude_code_agent_file_as_it_is(tmp_path):
    root = tmp_path / "proj"
    p = md(root / ".claude" / "agents" / "code-reviewer.md", """
        ---
        name: code-reviewer
        description: Expert code review specialist. Use proactively after writing or modifying code.
        tools: Read, Grep, Glob, Bash
        model: sonnet
        color: blue
        ---
        You are a senior code reviewer.

        Run git diff to see recent changes.
    """)
    defs = load_agent_defs(root)
    assert defs.problems == []
    a = defs.get("code-reviewer")
    assert a.description.startswith("Expert code review specialist")
    assert a.tools == ("Read", "Grep", "Glob", "Bash")
    assert a.model == "sonnet" and a.max_turns is None
    assert a.prompt == "You are a senior code reviewer.\n\nRun git diff to see recent changes."
    assert (a.path, a.scope, a.origin) == (p, "project", "claude")
    assert a.extra == {"color": "blue"}
    parent = [TOOLS[n] for n in ("read_file", "grep", "glob", "run_command", "edit_file")]
    tools, unknown = select_tools(a.tools, parent)
    assert [t.name for t in tools] == ["read_file", "grep", "glob", "run_command"] and unknown == []


def test_codeloop_fields_lists_inherit_and_defaults(tmp_path):
    root = tmp_path / "proj"
    md(root / ".codeloop" / "agents" / "explorer.md", """
        ---
        description: Reads the code to answer a question
        tools:
          - read_file
          - grep
        model: inherit
        maxTurns: 8
        ---
        Answer briefly.
    """)
    md(root / ".codeloop" / "agents" / "all-tools.md", """
        ---
        description: Uses whatever the parent has
        disallowedTools: Bash
        ---
        Go.
    """)
    md(root / ".codeloop" / "agents" / "no-tools.md", """
        ---
        description: Only thinks
        tools: []
        ---
        Think.
    """)
    defs = load_agent_defs(root)
    assert defs.problems == []
    assert list(defs.agents) == ["all-tools", "explorer", "no-tools"]  # file name order
    e = defs.get("explorer")
    assert e.name == "explorer"  # from the file name
    assert e.tools == ("read_file", "grep") and e.model is None and e.max_turns == 8
    assert defs.get("all-tools").tools is None and defs.get("all-tools").disallowed_tools == ("Bash",)
    assert defs.get("no-tools").tools == ()
    assert describe_for_model(defs) == ("- all-tools: Uses whatever the parent has\n"
                                        "- explorer: Reads the code to answer a question\n- no-tools: Only thinks")


def test_precedence_project_before_user_codeloop_before_claude(tmp_path):
    root, home, claude = tmp_path / "proj", tmp_path / "cfg", tmp_path / ".claude"
    for folder, tag in [(root / ".codeloop" / "agents", "p-codeloop"), (root / ".claude" / "agents", "p-claude"),
                        (home / "agents", "u-codeloop"), (claude / "agents", "u-claude")]:
        md(folder / "helper.md", f"---\ndescription: {tag}\n---\n{tag}\n")
        md(folder / f"only-{tag}.md", f"---\ndescription: {tag}\n---\n{tag}\n")
    assert [d for d, _, _ in agent_dirs(root, home, claude)] == [
        root / ".codeloop" / "agents", root / ".claude" / "agents", home / "agents", claude / "agents"]
    defs = load_agent_defs(root, home, claude)
    assert defs.problems == []
    assert defs.get("helper").description == "p-codeloop"
    assert [a.description for a in defs.shadowed] == ["p-claude", "u-codeloop", "u-claude"]
    assert defs.get("only-u-claude").scope == "user" and defs.get("only-u-claude").origin == "claude"
    assert len(defs.agents) == 5
    # No homes given: no user agents read.
    assert "only-u-codeloop" not in load_agent_defs(root).agents


def test_broken_files_are_named_and_skipped(tmp_path):
    root = tmp_path / "proj"
    d = root / ".claude" / "agents"
    md(d / "good.md", "---\ndescription: fine\n---\nok\n")
    bad = {
        "no-front.md": ("Just a prompt, no front matter.\n", "has no front matter"),
        "no-desc.md": ("---\nname: x1\n---\nbody\n", "needs a `description:`"),
        "unclosed.md": ("---\ndescription: x\nbody\n", "no closing --- line"),
        "bad-turns.md": ("---\ndescription: x\nmaxTurns: 0\n---\nb\n", "maxTurns must be a whole number"),
        "bad-model.md": ("---\ndescription: x\nmodel: 3\n---\nb\n", "model must be"),
        "bad-tools.md": ("---\ndescription: x\ntools: {a: 1}\n---\nb\n", "tools must be a list"),
        "bad-name.md": ("---\nname: has space\ndescription: x\n---\nb\n", "not a valid agent name"),
        "list-doc.md": ("---\n- a\n- b\n---\nb\n", "must be a mapping"),
        "garbage.md": ("---\ndescription: [unclosed\n: : :\n---\nb\n", "not valid YAML"),
        "binary.md": (b"---\ndescription: \xff\xfe\n---\n", "cannot be read"),
    }
    for name, (text, _) in bad.items():
        (d / name).write_bytes(text if isinstance(text, bytes) else text.encode())
    md(d / "zz-dup.md", "---\nname: good\ndescription: again\n---\nb\n")
    defs = load_agent_defs(root)
    assert list(defs.agents) == ["good"]
    by_file = {p.path.name: p for p in defs.problems}
    for name, (_, needle) in bad.items():
        assert needle in by_file[name].message, (name, by_file[name].message)
        assert by_file[name].fatal and str(by_file[name]).startswith(str(d / name))
    assert "defines agent 'good' again" in by_file["zz-dup.md"].message


def test_claude_files_that_are_not_quite_yaml_still_load(tmp_path):
    # Real Claude Code agent files often have ": " inside an unquoted description.
    p = md(tmp_path / "a" / "planner.md", """
        ---
        name: planner
        description: Use this agent when: the user asks for a plan. Examples: <example>plan it</example>
        tools: Read, Grep
        maxTurns: 4
        ---
        Plan.
    """)
    a, note = parse_agent(p.read_text(), p)
    assert a.description == "Use this agent when: the user asks for a plan. Examples: <example>plan it</example>"
    assert a.tools == ("Read", "Grep") and a.max_turns == 4
    assert "not valid YAML" in note and "description" in note
    defs = load_agent_defs(tmp_path, dirs=[(tmp_path / "a", "project", "claude")])
    assert defs.get("planner") is not None
    assert [(pr.fatal, pr.path) for pr in defs.problems] == [(False, p)]
