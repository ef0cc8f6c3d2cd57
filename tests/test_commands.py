from codeloop.commands.table import COMMANDS, help_text, parse


def parse_slash(text):
    return parse(text, "cli")


HELP_TEXT = help_text("cli")


def test_plain_messages_are_not_commands():
    assert parse_slash("fix the bug") is None
    assert parse_slash("/usr/bin/env python is missing") is None
    assert parse_slash("//compact is a literal") is None
    assert parse_slash("/") is None


def test_commands_and_arguments():
    assert parse_slash("/clear").name == "clear"
    c = parse_slash("  /compact   keep the API notes  ")
    assert (c.name, c.arg) == ("compact", "keep the API notes")
    assert parse_slash("/compact").arg is None
    assert parse_slash("/context").name == "context"
    assert parse_slash("/cost").name == "cost"
    assert (parse_slash("/model gpt-4.1").name, parse_slash("/model gpt-4.1").arg) == ("model", "gpt-4.1")
    assert parse_slash("/resume 20250101-120000-abc123").arg == "20250101-120000-abc123"
    assert parse_slash("/HELP").name == "help"
    assert parse_slash("/quit").name == "exit"


def test_mode_is_validated_and_normalised():
    assert parse_slash("/mode").arg is None
    c = parse_slash("/mode acceptedits")
    assert (c.name, c.arg, c.error) == ("mode", "acceptEdits", None)
    bad = parse_slash("/mode fly")
    assert bad.name == "mode" and "fly" in bad.error and "plan" in bad.error


def test_unknown_command():
    c = parse_slash("/foo bar")
    assert (c.name, c.raw, c.arg) == ("unknown", "foo", "bar")


def test_help_lists_every_command():
    for name in ("/clear", "/compact", "/context", "/cost", "/model", "/mode", "/resume", "/help"):
        assert name in HELP_TEXT


def test_the_help_comes_from_the_table_and_each_host_gets_its_own():
    for c in COMMANDS:
        assert c.description in HELP_TEXT
    assert "/exit" in HELP_TEXT and "/exit" not in help_text("lsp")
    # /exit is not a command in the editor: it is sent to the agent as text
    assert parse("/exit", "lsp").name == "unknown"


def test_custom_commands_join_the_help_and_the_table_for_clients_but_built_ins_win(tmp_path):
    from codeloop.commands.table import describe
    from codeloop.context.custom_commands import load_custom_commands

    cmds = tmp_path / ".claude" / "commands"
    (cmds / "frontend").mkdir(parents=True)
    (cmds / "fix-issue.md").write_text("---\ndescription: Fix a GitHub issue\nargument-hint: [number]\n---\nFix #$1\n")
    (cmds / "frontend" / "component.md").write_text("Make a component named $1\n")
    (cmds / "compact.md").write_text("A file named like a built-in command\n")
    custom = load_custom_commands(tmp_path)
    text = help_text("cli", custom)
    assert "/fix-issue [number]" in text and "Fix a GitHub issue (project)" in text
    assert "/component" in text and "Make a component named $1 (project:frontend)" in text
    assert "A file named like a built-in command" not in text
    table = describe("lsp", custom)
    assert {"name": "compact", "synopsis": "[focus]", "source": "built-in"}.items() <= next(
        r for r in table if r["name"] == "compact").items()
    assert [r for r in table if r["source"] != "built-in"] == [
        {"name": "fix-issue", "synopsis": "[number]", "description": "Fix a GitHub issue", "source": "project"},
        {"name": "component", "synopsis": "", "description": "Make a component named $1", "source": "project:frontend"},
    ]
