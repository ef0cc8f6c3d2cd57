"""9. Code mode vs tool calling: one scripted task done both ways, in one run.

The task: rename a function used in 40 files (``old_name`` → ``new_name`` in ``pkg/util.py`` and
the 40 modules that import it) and run the tests. The real CLI (``codeloop run --yes``) does it
against the scripted model three ways:

- **tool calling, one call per step** (how agents usually go): grep, then one ``edit_file`` per
  model request, then the tests;
- **tool calling, batched**: grep, then all 41 edits as parallel calls in one response, then the
  tests (the fewest requests tool calling can do);
- **code mode**: one ``run_code`` program that greps, edits the 41 files and runs the tests,
  printing only a summary.

Measured for each: model requests, prompt tokens (``count_messages`` + ``count_tools`` on the
requests the model received: what a provider bills), wall time of the whole run, and that the
rename is done and the tests pass. The reference is tool calling one call per step.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

from common import ROOT, result, row
from scripted_model import Call, ChatRequest, Script, ScriptedModel, Text, ToolCalls

from codeloop.context.tokens import count_messages, count_tools

N_FILES = 40  # --quick: QUICK_FILES
QUICK_FILES = 3
TEST_COMMAND = "python3 -m unittest -q"


def make_project(root: Path, n: int = N_FILES) -> list[str]:
    pkg = root / "pkg"
    pkg.mkdir(parents=True)
    (pkg / "__init__.py").write_text("")
    (pkg / "util.py").write_text('def old_name(x):\n    """Twice x."""\n    return 2 * x\n')
    files = ["pkg/util.py"]
    for i in range(n):
        rel = f"pkg/mod{i:02}.py"
        (root / rel).write_text(
            f"from pkg.util import old_name\n\n\ndef value_{i}():\n    # uses old_name on {i}\n"
            f"    return old_name({i})\n")
        files.append(rel)
    tests = ["import unittest", "", ""]
    tests += [f"from pkg.mod{i:02} import value_{i}" for i in range(n)]
    tests += ["", "", "class Values(unittest.TestCase):", "    def test_values(self):"]
    tests += [f"        self.assertEqual(value_{i}(), {2 * i})" for i in range(n)]
    (root / "test_values.py").write_text("\n".join(tests) + "\n")
    return files


def _edit(rel: str) -> Call:
    return Call("edit_file", {"path": rel, "old_string": "old_name", "new_string": "new_name", "replace_all": True})


def _done(req: ChatRequest) -> Text:
    return Text("Renamed old_name to new_name in 41 files; the tests pass.")


def tool_calling(files: list[str], batched: bool) -> Script:
    steps: list[Any] = [ToolCalls([Call("grep", {"pattern": "old_name", "output_mode": "files_with_matches"})])]
    if batched:
        steps.append(ToolCalls([_edit(f) for f in files]))
    else:
        steps += [ToolCalls([_edit(f)]) for f in files]
    steps += [ToolCalls([Call("run_command", {"command": TEST_COMMAND})]), _done]
    return Script(steps)


PROGRAM = f'''
from codeloop_tools import grep, edit_file, run_command
files = grep(pattern="old_name", output_mode="files_with_matches").split()
files = [f for f in files if f.endswith(".py")]
changed = []
for f in files:
    edit_file(path=f, old_string="old_name", new_string="new_name", replace_all=True)
    changed.append(f)
tests = run_command(command="{TEST_COMMAND}")
print(len(changed), "files changed")
print(tests.splitlines()[-3:])
'''


def code_mode() -> Script:
    return Script([ToolCalls([Call("run_code", {"program": PROGRAM})]), _done])


def run_variant(name: str, scenario: Script, work: Path, env: dict[str, str], n: int) -> dict[str, Any]:
    ws = work / name
    files = make_project(ws, n)
    model = ScriptedModel(scenario).start()
    try:
        t0 = time.perf_counter()
        proc = subprocess.run([sys.executable, "-m", "codeloop", "run", "rename old_name to new_name and run the tests",
                               "--cwd", str(ws), "--yes"], capture_output=True, text=True, timeout=600,
                              env={**env, "OPENAI_BASE_URL": model.base_url})
        wall = time.perf_counter() - t0
        reqs = model.chat_requests
        prompt = sum(count_messages(r.messages) + count_tools(r.body.get("tools") or []) for r in reqs)
        renamed = all("old_name" not in (ws / f).read_text() and "new_name" in (ws / f).read_text() for f in files)
        tests = subprocess.run([sys.executable, "-m", "unittest", "-q"], cwd=ws, capture_output=True, text=True,
                               timeout=120)
        return {"requests": len(reqs), "prompt_tokens": prompt, "wall_s": round(wall, 2), "exit": proc.returncode,
                "renamed": renamed, "tests_pass": tests.returncode == 0, "failures": model.failures[:3],
                "stderr": proc.stderr[-500:] if proc.returncode else ""}
    finally:
        model.stop()


def main(quick: bool = False) -> dict[str, Any]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("OPENAI_", "CODELOOP_"))}
    env.update(OPENAI_API_KEY="sk-bench", CODELOOP_MODEL="scripted-model", NO_COLOR="1",
               PYTHONPATH=str(ROOT / "server"), PYTHONDONTWRITEBYTECODE="1")
    data: dict[str, Any] = {}
    with tempfile.TemporaryDirectory(prefix="codeloop-bench-codemode-") as tmp:
        work = Path(tmp)
        cfg = work / "xdg"
        (cfg / "codeloop").mkdir(parents=True)
        (cfg / "codeloop" / "settings.json").write_text(json.dumps({}))
        env["XDG_CONFIG_HOME"] = str(cfg)
        variants = {"per_step": lambda f: tool_calling(f, batched=False),
                    "batched": lambda f: tool_calling(f, batched=True),
                    "code_mode": lambda f: code_mode()}
        n = QUICK_FILES if quick else N_FILES
        files = ["pkg/util.py"] + [f"pkg/mod{i:02}.py" for i in range(n)]
        for name, make in variants.items():
            data[name] = run_variant(name, make(files), work, env, n)
        data["files"] = n
    ref = data["per_step"]
    rows = []
    runs = {k: v for k, v in data.items() if isinstance(v, dict)}
    ok = all(d["renamed"] and d["tests_pass"] and d["exit"] == 0 for d in runs.values())
    labels = {"per_step": "tool calling, one call per step", "batched": f"tool calling, {n + 1} edits in one step",
              "code_mode": "code mode (one program)"}
    for name in ("code_mode", "batched"):
        d = data[name]
        rows.append(row(f"model requests, {labels[name]}", d["requests"], "", reference=ref["requests"],
                        target="fewer" if name == "code_mode" else "", met=(d["requests"] < ref["requests"] and ok)
                        if name == "code_mode" else None))
        rows.append(row(f"prompt tokens, {labels[name]}", d["prompt_tokens"], "tokens", reference=ref["prompt_tokens"],
                        target="≤ 0.2×" if name == "code_mode" else "",
                        met=(d["prompt_tokens"] <= 0.2 * ref["prompt_tokens"] and ok) if name == "code_mode" else None))
        rows.append(row(f"wall time, {labels[name]}", d["wall_s"], "s", reference=ref["wall_s"]))
    rows.append(row("rename done and tests pass, every way", "yes" if ok else "NO", met=ok))
    notes = [
        f"Task: rename a function used in {n} files ({n + 1} edits) and run the tests, with the real CLI "
        "(`codeloop run --yes`) against the scripted model. Reference: tool calling, one call per step "
        f"({ref['requests']} requests, {ref['prompt_tokens']:,} prompt tokens, {ref['wall_s']} s).",
        "Prompt tokens: count_messages + count_tools over every request the model received (no prompt cache "
        "assumed). Wall time includes the CLI's start and the sandbox probe; the scripted model answers at once, so "
        "a real model's time per request would widen the gap.",
    ]
    for name, d in runs.items():
        if not (d["renamed"] and d["tests_pass"] and d["exit"] == 0):
            notes.append(f"FAILED {name}: exit {d['exit']}, renamed {d['renamed']}, tests {d['tests_pass']}: "
                         f"{d['failures']} {d['stderr']}")
    return result("code_mode", "Code mode vs tool calling", rows, notes, **data)


if __name__ == "__main__":
    print(json.dumps(main(quick="--quick" in sys.argv), indent=2))
