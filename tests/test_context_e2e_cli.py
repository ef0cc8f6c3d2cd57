"""End to end through the real CLI: project memory in the system prompt, ``codeloop
context``, the chat's slash commands, the cost line, and secrets kept out of sessions."""

from __future__ import annotations

import json
import re
import subprocess
from pathlib import Path

from conftest import words
from scripted_model import Call, ChatRequest, Keyed, Script, Text, ToolCalls, Usage

from codeloop.context.compaction import SUMMARY_INSTRUCTIONS, SUMMARY_PREFIX
from codeloop.context.prompt import STATIC_PROMPT, PromptBuilder
from codeloop.runtime.subagents import TaskTool
from codeloop.tools.builtin import BuiltinTools

# The static part: the instructions, then each tool's own guidance line (the session's tools: the built-in ones, then the sub-agents' task tool).
STATIC_PART = PromptBuilder(Path("."), guidance=[*(t.guidance for t in BuiltinTools().tools() if t.guidance),
                                                 TaskTool.guidance]).static
from codeloop.context.store import workspace_hash
from codeloop.commands.table import help_text

HELP_TEXT = help_text("cli")
from codeloop.context.tokens import count_tokens

ROOT_RULE = "Root rule R-7731: use tabs in Makefiles."
NESTED_RULE = "Nested rule N-4242: pkg keeps its public API in __all__."
EDITED_RULE = "Nested rule E-5150: gen files are written, never patched."
CLAUDE_RULE = "Claude rule C-1001: run make check before finishing."


def memory_workspace(root: Path) -> None:
    (root / "AGENTS.md").write_text(f"# Rules\n{ROOT_RULE}\n")
    (root / "CLAUDE.md").write_text(f"{CLAUDE_RULE}\n")
    for d in ("pkg", "gen", "other"):
        (root / d).mkdir()
    (root / "pkg" / "AGENTS.md").write_text(f"{NESTED_RULE}\n")
    (root / "pkg" / "mod.py").write_text("__all__ = ['f']\n\ndef f():\n    return 1\n")
    (root / "gen" / "AGENTS.md").write_text(f"{EDITED_RULE}\n")
    (root / "other" / "x.py").write_text("x = 1\n")


def system_of(req: ChatRequest) -> str:
    assert req.messages[0]["role"] == "system"
    return req.messages[0]["content"]


def test_agents_md_at_the_root_always_nested_only_once_touched(model_server, run_cli, tmp_path):
    memory_workspace(tmp_path)
    scenario = Script(
        [
            ToolCalls([Call("read_file", {"path": "other/x.py"})]),
            ToolCalls([Call("grep", {"pattern": "__all__", "path": "pkg"})]),  # a search touches no file
            ToolCalls([Call("read_file", {"path": "pkg/mod.py"})]),
            ToolCalls([Call("write_file", {"path": "gen/out.py", "content": "y = 2\n"})]),
            Text("Done."),
        ]
    )
    server = model_server(scenario)
    result = run_cli(["run", "--cwd", str(tmp_path), "--yes", "read and write"], server.base_url)
    assert result.code == 0, result.both
    reqs = server.chat_requests
    assert len(reqs) == 5
    systems = [system_of(r) for r in reqs]
    assert len(set(systems)) == 1, "the system prompt stays byte for byte the same all session (prompt caches)"
    s = systems[0]
    assert s.startswith(STATIC_PART), "the static part comes first, byte for byte"
    assert ROOT_RULE in s and CLAUDE_RULE in s
    assert NESTED_RULE not in s and EDITED_RULE not in s
    # A nested memory file goes with the tool result that first touched its folder, once:
    # reading other/ or searching pkg/ does not count.
    results = [m["content"] for m in reqs[4].messages if m["role"] == "tool"]
    pkg_memory = "[Project memory: pkg/AGENTS.md; it applies to the files under its folder]\n" + NESTED_RULE
    gen_memory = "[Project memory: gen/AGENTS.md; it applies to the files under its folder]\n" + EDITED_RULE
    assert [pkg_memory in r for r in results] == [False, False, True, False]
    assert [gen_memory in r for r in results] == [False, False, False, True], "the write touched gen/"
    assert (tmp_path / "gen" / "out.py").read_text() == "y = 2\n"


def test_codeloop_context_prints_the_per_part_token_table(model_server, run_cli, tmp_path):
    memory_workspace(tmp_path)
    subprocess.run(["git", "init", "-q", "-b", "trunk", str(tmp_path)], check=True)
    server = model_server(Text("unused"))
    result = run_cli(["context", "--cwd", str(tmp_path), "--full"], server.base_url)
    assert result.code == 0, result.both
    rows = {}
    for line in result.out.splitlines():
        m = re.match(r"^(\S.*?)\s{2,}(\d+)\s{2}(.*)$", line)
        if m:
            rows[m.group(1)] = (int(m.group(2)), m.group(3))
    assert rows["static instructions"] == (count_tokens(STATIC_PART), "included (cached prefix)")
    assert STATIC_PART.startswith(STATIC_PROMPT) and "- Read files with read_file" in STATIC_PART
    agents_part = "# Project memory: AGENTS.md\n" + f"# Rules\n{ROOT_RULE}\n".strip() + "\n"
    assert rows["memory AGENTS.md"] == (count_tokens(agents_part), "included")
    assert rows["memory CLAUDE.md"][1] == "included"
    assert "memory pkg/AGENTS.md" not in rows, "nothing is touched yet"
    assert rows["environment"][1] == "included"
    assert rows["git"][1] == "included"
    assert "- Branch: " in result.out and "trunk" in result.out
    assert "tokenizer: o200k_base" in result.out
    # --full: the prompt itself follows the table, and its total is what the table says.
    prompt = result.out[result.out.index(STATIC_PROMPT):]
    assert ROOT_RULE in prompt
    assert prompt.endswith("\n\n")  # print() adds one
    assert rows["total"][0] == count_tokens(prompt[:-1])


def test_chat_slash_commands(model_server, run_cli, tmp_path):
    memory_workspace(tmp_path)
    seen: dict[str, ChatRequest] = {}

    def note(key: str, text: str):
        def reply(req: ChatRequest):
            seen[key] = req
            return Text(text, usage=Usage(prompt_tokens=1200, completion_tokens=30))

        return reply

    def summary(req: ChatRequest):
        seen["summary"] = req
        return Text("The user greeted; nothing else happened. FOCUS-KEPT.")

    turns = Keyed(
        {
            "hello": note("hello", "Hi there."),
            "second": note("second", "Second answer."),
            "after compact": note("after compact", "Compacted fine."),
            "fresh start": note("fresh", "A fresh start."),
            "back again": note("back", "Welcome back."),
        }
    )

    def scenario(req: ChatRequest):
        if req.messages and req.messages[0]["content"].startswith(SUMMARY_INSTRUCTIONS[:60]):
            return summary
        return turns

    server = model_server(scenario)
    lines = [
        "hello",
        "/context",
        "/cost",
        "/mode plan",
        "/model other-model",
        "second",
        "/compact keep the greeting",
        "after compact",
        "/clear",
        "fresh start",
        "/help",
        "/mode",
        "/model",
        "/resume",
        "back again",
        "/cost",
    ]
    result = run_cli(["chat", "--cwd", str(tmp_path), "--yes"], server.base_url, stdin="\n".join(lines) + "\n")
    assert result.code == 0, result.both
    assert not server.failures, server.failures
    out = result.out

    # /context: the table, with the memory files.
    assert "static instructions" in out and "memory AGENTS.md" in out and "tokenizer: o200k_base" in out
    assert re.search(r"conversation +\d+  tokens as sent \(\d+ messages\)", out), out
    assert re.search(r"tool schemas +\d+  tokens \(\d+ tools\)", out) and "keepToolOutput=4,000" in out
    # /cost after one request of 1,200 in and 30 out.
    assert "This turn:    1 requests, 1,200 in, 30 out, no price known" in out
    assert "This session: 1 requests, 1,200 in, 30 out, no price known" in out
    assert "scripted-model: no price known" in out
    # /mode plan and /model: the next request uses both.
    assert "Mode: plan." in out and "Model set to other-model for this session." in out
    second = seen["second"]
    assert second.model == "other-model"
    # The mode is told in the turn's context block, after the user's words; the system
    # prompt stays as it was.
    assert "# Permission mode" not in system_of(second) and system_of(second) == system_of(seen["hello"])
    for mutating in ("write_file", "edit_file", "apply_patch"):
        assert mutating not in second.tool_names() and mutating in seen["hello"].tool_names()
    assert [m["content"] for m in second.messages[1:3]] == ["hello", "Hi there."]
    asked = second.messages[3]["content"]
    assert asked.startswith("second\n\n<codeloop-context>\n# Permission mode\nYou are in plan mode") and asked.endswith(
        "</codeloop-context>"
    )
    # /compact with a focus: the summary request names it; the next request starts from the summary.
    assert "The user asked this summary to focus on: keep the greeting" in seen["summary"].messages[0]["content"]
    assert re.search(r"Compacted: [\d,]+ → [\d,]+ tokens \(\d+ messages summarised\)\.", out), out
    after = seen["after compact"]
    assert after.messages[1]["content"].startswith(SUMMARY_PREFIX) and "FOCUS-KEPT" in after.messages[1]["content"]
    assert after.last_user_text() == "after compact"
    # /clear: a new, empty conversation; the mode and model chosen in this REPL still hold.
    assert re.search(r"Started a new session \S+\. \(The old one is kept in the history\.\)", out)
    fresh = seen["fresh"]
    assert [words(m["content"]) for m in fresh.messages[1:]] == ["fresh start"]
    assert fresh.model == "other-model" and "# Permission mode" in fresh.last_user_text(), "the mode is in the turn's context"
    # /help, and the bare /mode and /model.
    assert HELP_TEXT in out
    assert "Mode: plan. Modes:" in out
    assert "Model: other-model at " in out
    # /resume (no id): the latest session with messages on disk is the new one; it continues.
    back = seen["back"]
    assert [words(m["content"]) for m in back.messages[1:]] == ["fresh start", "A fresh start.", "back again"]
    # Two session files: the first (compacted) and the one /clear started.
    files = list((tmp_path / ".codeloop" / "sessions").glob("*.jsonl"))
    assert len(files) == 2
    # The last /cost counts the resumed session's earlier request too.
    # (It was closed by /resume and reopened: its usage is loaded from the file.)
    assert out.rstrip().removesuffix(">").rstrip().endswith(
        "This turn:    1 requests, 1,200 in, 30 out, no price known\n"
        "This session: 2 requests, 2,400 in, 60 out, no price known\n"
        "other-model: no price known (set one under the `prices` setting)"
    ), out[-600:]


def test_cost_line_at_the_end_of_run_with_a_price_from_project_settings(model_server, run_cli, tmp_path):
    settings = {
        "prices": {"scripted-model": {"input": 1000, "output": 2000, "cached_input": 100}},
        "baseUrl": "http://127.0.0.1:9/v1",  # ignored: a project file may not redirect the key
        "permissions": {"deny": ["Bash(rm:*)"]},
    }
    (tmp_path / ".codeloop").mkdir()
    (tmp_path / ".codeloop" / "settings.json").write_text(json.dumps(settings))
    scenario = Script(
        [
            ToolCalls([Call("list_dir", {"path": "."})], usage=Usage(prompt_tokens=1000, completion_tokens=100, cached_tokens=400)),
            Text("Listed.", usage=Usage(prompt_tokens=1500, completion_tokens=200)),
        ]
    )
    server = model_server(scenario)
    result = run_cli(["run", "--cwd", str(tmp_path), "--yes", "list the files"], server.base_url)
    assert result.code == 0, result.both
    # (600*1000 + 400*100 + 100*2000 + 1500*1000 + 200*2000) / 1e6 = 2.74
    assert "[2,500 in / 300 out (400 cached, 16% hit rate), $2.7400]" in result.out
    assert result.out.rstrip().splitlines()[-1] == "session: 2 requests, 2,500 in (400 cached, 16% hit rate), 300 out, $2.74"

    # Without a known price there is no cost line, only the token counts.
    (tmp_path / ".codeloop" / "settings.json").write_text("{}")
    server2 = model_server(Text("ok", usage=Usage(prompt_tokens=10, completion_tokens=2)))
    result = run_cli(["run", "--cwd", str(tmp_path), "--yes", "hi"], server2.base_url)
    assert result.code == 0, result.both
    assert "[10 in / 2 out]" in result.out and "session:" not in result.out and "$" not in result.out


def test_context_window_flag_and_bad_values(model_server, run_cli, tmp_path):
    server = model_server(Text("unused"))
    result = run_cli(["context", "--cwd", str(tmp_path), "--context-window", "12"], server.base_url)
    assert result.code == 0, result.both
    assert "setting 'context_window' = 12 is invalid" in result.out
    assert not (tmp_path / ".codeloop").exists(), "showing the prompt leaves nothing behind"
    (tmp_path / ".codeloop").mkdir()
    (tmp_path / ".codeloop" / "settings.json").write_text("{not json")
    result = run_cli(["context", "--cwd", str(tmp_path)], server.base_url)
    assert result.code == 0, result.both
    assert "settings.json: could not read settings" in result.both


SECRET_KEY = "zq-Distinctive-E2E-key-4d3c2b1a9f8e"
BEARER = "tok.9f8e7d6c5b4a39281706-XYZ"


def test_secrets_never_reach_the_session_files(model_server, run_cli, tmp_path):
    command = f"echo \"key is $OPENAI_API_KEY\"; echo 'Authorization: Bearer {BEARER}'"

    def after_command(req: ChatRequest):
        # The model itself sees the command output (the file must not).
        assert BEARER in req.last_tool_results()[0]
        return Text(f"The header was Authorization: Bearer {BEARER} and the key {SECRET_KEY}.")

    scenario = Script([ToolCalls([Call("run_command", {"command": command})]), after_command])
    server = model_server(scenario, api_key=SECRET_KEY)
    result = run_cli(
        ["chat", "--cwd", str(tmp_path), "--yes"],
        server.base_url,
        stdin=f"my key is {SECRET_KEY}, print the header\n",
        OPENAI_API_KEY=SECRET_KEY,
    )
    assert result.code == 0, result.both
    assert not server.failures, server.failures
    assert server.chat_requests[0].headers["authorization"] == f"Bearer {SECRET_KEY}"
    [path] = (tmp_path / ".codeloop" / "sessions").glob("*.jsonl")
    data = path.read_text()
    assert SECRET_KEY not in data and BEARER not in data
    assert "[REDACTED]" in data
    assert "print the header" in data  # the rest is kept

    # Stored in the user data dir instead (a project setting): the same holds, and the
    # workspace gets no session file.
    data_home = tmp_path.parent / f"{tmp_path.name}-data"
    other = tmp_path.parent / f"{tmp_path.name}-ws"
    (other / ".codeloop").mkdir(parents=True)
    (other / ".codeloop" / "settings.json").write_text(json.dumps({"sessionStorage": "user"}))
    server.scenario = Script([ToolCalls([Call("run_command", {"command": command})]), after_command])
    result = run_cli(["chat", "--cwd", str(other), "--yes"], server.base_url, stdin="print the header\n",
                     OPENAI_API_KEY=SECRET_KEY, XDG_DATA_HOME=str(data_home))
    assert result.code == 0, result.both
    assert not (other / ".codeloop" / "sessions").exists()
    [path] = (data_home / "codeloop" / "sessions" / workspace_hash(other)).glob("*.jsonl")
    data = path.read_text()
    assert SECRET_KEY not in data and BEARER not in data and "print the header" in data


def test_a_failed_compaction_leaves_the_conversation_unchanged(model_server, run_cli, tmp_path):
    from scripted_model import Error

    turns = Keyed({"hello": Text("Hi there."), "again": Text("Still here.")})

    def scenario(req: ChatRequest):
        if req.messages and req.messages[0]["content"].startswith(SUMMARY_INSTRUCTIONS[:60]):
            return Error(400, "the summary request was refused")
        return turns

    server = model_server(scenario)
    result = run_cli(["chat", "--cwd", str(tmp_path), "--yes"], server.base_url, stdin="hello\nsecond hello\n/compact\nagain\n")
    assert result.code == 0, result.both
    assert "Compaction failed; the conversation is unchanged:" in result.out
    assert "the summary request was refused" in result.out
    last = server.chat_requests[-1]
    assert [m["content"] for m in last.messages[1:]] == ["hello", "Hi there.", "second hello", "Hi there.", "again"]
    # The session file has no compaction record: a resume gets the same conversation.
    [path] = (tmp_path / ".codeloop" / "sessions").glob("*.jsonl")
    assert '"type":"compaction"' not in path.read_text()
