"""The scripted model's replies for the VS Code UI tests (tests/vscode/ui.test.mjs).

Loaded by ``python -m scripted_model --scenario scenarios:ui`` with
``PYTHONPATH=tests:tests/vscode``. Each branch is keyed by a phrase of the user's message
and answers by its step within that user turn (how many assistant messages follow the
last user message), so it is stateless and survives retries.
"""

from __future__ import annotations

from scripted_model import Call, ChatRequest, Keyed, Text, ToolCalls

# The workspace file the tests create (25 lines; the two edits are far apart: two hunks).
GREET_LINES = [f"# line {i}" for i in range(1, 26)]
GREET_LINES[1] = "GREETING = 'hello'"
GREET_LINES[22] = "FAREWELL = 'bye'"
GREET_PY = "\n".join(GREET_LINES) + "\n"

TWO_HUNKS_LINES = list(GREET_LINES)
TWO_HUNKS_LINES[1] = "GREETING = 'hello, world'"
TWO_HUNKS_LINES[22] = "FAREWELL = 'see you later'"
TWO_HUNKS_PY = "\n".join(TWO_HUNKS_LINES) + "\n"

# after step 2 (only the first hunk accepted) plus one line at the end
FOOTER_PY = GREET_PY.replace("'hello'", "'hello, world'") + "# footer\n"

HELLO_ANSWER = (
    "**Hello** from the scripted model. `greet.py` defines a greeting:\n\n"
    "```python\nGREETING = 'hello'\ndef greet(name):\n    return f\"{GREETING} {name}\"\n```\n\n"
    "- one constant\n- no functions yet\n"
)


def step(req: ChatRequest) -> int:
    """Assistant messages since the last user message."""
    n = 0
    for m in reversed(req.messages):
        if m.get("role") == "user":
            break
        if m.get("role") == "assistant":
            n += 1
    return n


def two_steps(call: Call, final: str):
    def reply(req: ChatRequest):
        if step(req) == 0:
            return ToolCalls([call])
        results = req.last_tool_results()
        return Text(f"{final}\n\nTool said: {results[0] if results else '(nothing)'}", chunk_size=8, delay=0.01)

    return reply


def hello(req: ChatRequest):
    if step(req) == 0:
        return ToolCalls([Call("read_file", {"path": "greet.py"})])
    return Text(HELLO_ANSWER, chunk_size=6, delay=0.02)


CODE_MODE_PROGRAM = (
    "from codeloop_tools import read_file\n"
    "first = read_file(path='greet.py', limit=5)\n"
    "again = read_file(path='greet.py', offset=20)\n"
    "print(len(first), len(again))\n"
)


def ui(**_kwargs):
    return Keyed(
        {
            "say hello": hello,
            "change both constants": two_steps(
                Call("write_file", {"path": "greet.py", "content": TWO_HUNKS_PY}), "Edited greet.py."
            ),
            "rename the constant": two_steps(
                Call("edit_file", {"path": "greet.py", "old_string": "GREETING", "new_string": "Greeting"}),
                "Done with the rename.",
            ),
            "append a footer": two_steps(
                Call("write_file", {"path": "greet.py", "content": FOOTER_PY}), "Footer added."
            ),
            "run the echo": two_steps(
                Call("run_command", {"command": "echo hello-from-codeloop && echo second-line-$((40+2))"}),
                "The command ran.",
            ),
            "run the program": two_steps(
                Call("run_code", {"program": CODE_MODE_PROGRAM}), "The program read the file twice.",
            ),
            "run the long one": two_steps(
                Call("run_command", {"command": "echo long-started; sleep 120", "timeout": 300}),
                "It finished.",
            ),
        },
        default=Text("I only know the test scripts."),
    )


# ---- quick fixes and code actions (tests/vscode/quickfix.test.mjs) --------------------------

# A JSON file with a missing comma: VS Code's built-in JSON language features report it.
BROKEN_JSON = '{\n  "name": "codeloop",\n  "version": 1\n  "private": true\n}\n'
FIXED_JSON = '{\n  "name": "codeloop",\n  "version": 1,\n  "private": true\n}\n'
# A second broken file whose fix streams slowly (to watch the progress and press Stop).
SLOW_JSON = '{\n  "slow": true\n  "stop": "me"\n}\n'
NAMES_PY = 'names = ["ada", "grace"]\nprint(names)\n'
UPPER_NAMES_PY = 'names = ["ADA", "GRACE"]\nprint(names)\n'
EXPLANATION = "This line builds a **list of two names**; the next one prints it."


def quickfix(**_kwargs):
    """Answers the server's focused prompts (server/codeloop/services/quickfix.py)."""
    return Keyed(
        {
            # fix_prompt: "Fix this diagnostic in <path> (...)"
            "Fix this diagnostic in slow.json": lambda req: Text(
                "Looking at slow.json very slowly. " * 40, chunk_size=4, delay=0.15
            ),
            "Fix this diagnostic in config.json": two_steps(
                Call("edit_file", {"path": "config.json", "old_string": '"version": 1\n', "new_string": '"version": 1,\n'}),
                "Added the missing comma after the version.",
            ),
            # ask_prompt: "... Instruction: <what the user typed>"
            "Instruction: uppercase the names": two_steps(
                Call("edit_file", {"path": "names.py", "old_string": '["ada", "grace"]', "new_string": '["ADA", "GRACE"]'}),
                "Uppercased the names.",
            ),
            # explain_prompt: "Explain what this code in <path> ..."
            "Explain what this code": lambda req: Text(EXPLANATION, chunk_size=6, delay=0.01),
        },
        default=Text("I only know the quick-fix test scripts."),
    )


# ---- per-hunk review, approvals by keyboard, the composer (tests/vscode/review.test.mjs) ----

def numbered(name: str, n: int = 30) -> list[str]:
    return [f"# {name} line {i}" for i in range(1, n + 1)]


# Each test has its own file with two far-apart lines the model changes (two hunks).
def _two_hunks(name: str) -> tuple[str, str]:
    before = numbered(name)
    after = list(before)
    after[2] = f"{name.upper()}_TOP = 'proposed top'"
    after[26] = f"{name.upper()}_BOTTOM = 'proposed bottom'"
    return "\n".join(before) + "\n", "\n".join(after) + "\n"


TWEAK_PY, TWEAK_PROPOSED = _two_hunks("tweak")
LENS_PY, LENS_PROPOSED = _two_hunks("lens")
KEYS_PY, KEYS_PROPOSED = _two_hunks("keys")
WHOLE_PY, WHOLE_PROPOSED = _two_hunks("whole")
NOPE_PY, NOPE_PROPOSED = _two_hunks("nope")


def review(**_kwargs):
    return Keyed(
        {
            "edit tweak.py": two_steps(Call("write_file", {"path": "tweak.py", "content": TWEAK_PROPOSED}), "Edited tweak.py."),
            "edit lens.py": two_steps(Call("write_file", {"path": "lens.py", "content": LENS_PROPOSED}), "Edited lens.py."),
            "edit keys.py": two_steps(Call("write_file", {"path": "keys.py", "content": KEYS_PROPOSED}), "Edited keys.py."),
            "edit whole.py": two_steps(Call("write_file", {"path": "whole.py", "content": WHOLE_PROPOSED}), "Edited whole.py."),
            "edit nope.py": two_steps(Call("write_file", {"path": "nope.py", "content": NOPE_PROPOSED}), "Edited nope.py."),
            "run two commands": two_steps(
                Call("run_command", {"command": "echo first-approved && echo second-approved"}), "Both ran."
            ),
            "run a denied one": two_steps(Call("run_command", {"command": "echo should-not-run"}), "Understood."),
            "run an always one": two_steps(Call("run_command", {"command": "echo always-ok"}), "Ran it."),
            "what is in this screenshot": Text("A small red square.", chunk_size=6, delay=0.01),
            "explain the mentioned file": Text("It is a file of numbered comment lines.", chunk_size=6, delay=0.01),
        },
        default=Text("I only know the review test scripts."),
    )


def mcp(**_kwargs):
    """tests/vscode/mcp.test.mjs: the model calls the project's MCP server's echo tool."""
    return Keyed({
        "call the project tool": two_steps(Call("mcp__proj__echo", {"text": "hello from the panel"}), "Called it."),
    })


# ---- the todo list, sub-agents, hooks, custom commands (tests/vscode/panel.test.mjs) ---------

def _todo(content: str, active: str, status: str) -> dict[str, str]:
    return {"content": content, "activeForm": active, "status": status}


PLAN_FIRST = [
    _todo("Read greet.py", "Reading greet.py", "in_progress"),
    _todo("Summarize the constants", "Summarizing the constants", "pending"),
    _todo("Write the report", "Writing the report", "pending"),
]
PLAN_SECOND = [
    _todo("Read greet.py", "Reading greet.py", "completed"),
    _todo("Summarize the constants", "Summarizing the constants", "in_progress"),
    _todo("Write the report", "Writing the report", "pending"),
]
# what the parent's task call asks; the child's conversation is keyed on it
CHILD_PROMPT = "Read greet.py and report the greeting constant."
CHILD_ANSWER = "The greeting is 'hello' (greet.py, line 2)."


def plan_twice(req: ChatRequest):
    n = step(req)
    if n == 0:
        return ToolCalls([Call("todo_write", {"todos": PLAN_FIRST})])
    if n == 1:
        # streamed slowly: the first list stays on screen for a few seconds
        return ToolCalls([Call("todo_write", {"todos": PLAN_SECOND})], chunk_size=8, delay=0.12)
    return Text("Planned; now summarizing the constants.", chunk_size=8, delay=0.01)


def delegate(req: ChatRequest):
    if step(req) == 0:
        return ToolCalls([Call("task", {"description": "find the greeting", "prompt": CHILD_PROMPT,
                                        "subagent_type": "explore"})])
    results = req.last_tool_results()
    return Text(f"The sub-agent says: {results[0].splitlines()[0] if results else '(nothing)'}", chunk_size=8, delay=0.01)


def child(req: ChatRequest):
    if step(req) == 0:
        return ToolCalls([Call("read_file", {"path": "greet.py"})], delay=0.05)
    return Text(CHILD_ANSWER, chunk_size=4, delay=0.1)


LONG_PROMPT = "Run the long job and report when it is done."


def delegate_long(req: ChatRequest):
    if step(req) == 0:
        return ToolCalls([Call("task", {"description": "run the long job", "prompt": LONG_PROMPT, "subagent_type": "general"})])
    return Text("The job is done.")


def long_child(req: ChatRequest):
    if step(req) == 0:
        return ToolCalls([Call("run_command", {"command": "echo sub-started; sleep 60", "timeout": 300})])
    return Text("It finished.")


def panel(**_kwargs):
    return Keyed(
        {
            "plan the greeting work": plan_twice,
            "delegate the greeting search": delegate,
            CHILD_PROMPT: child,
            "delegate the long job": delegate_long,
            LONG_PROMPT: long_child,
            "run the blocked command": two_steps(Call("run_command", {"command": "echo should-be-blocked"}), "The hook stopped it."),
            # the custom command .codeloop/commands/summarize.md, expanded by the server
            "Summarize greet.py in one line.": Text("greet.py holds two constants.", chunk_size=6, delay=0.01),
        },
        default=Text("I only know the panel test scripts."),
    )
# ---- rewind from the panel (tests/vscode/rewind.test.mjs) --------------------------------------

NOTES_TXT = "first line\nsecond line\n"
LATER_TXT = "later = 1\n"


def rewind(**_kwargs):
    """One turn that edits two files, deletes one with a command and creates one with another."""

    def turn(req: ChatRequest):
        n = step(req)
        calls = [
            Call("edit_file", {"path": "notes.txt", "old_string": "second line", "new_string": "second line, by the agent"}),
            Call("write_file", {"path": "later.txt", "content": "later = 2\n"}),
            Call("run_command", {"command": "rm data.txt"}),
            Call("run_command", {"command": "printf 'made by the agent\\n' > made.txt"}),
        ]
        return ToolCalls([calls[n]]) if n < len(calls) else Text("Rewrote the notes.")

    return Keyed({"rewrite the notes": turn}, default=Text("I only know the rewind test script."))
