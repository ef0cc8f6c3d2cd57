"""Smoke test for the benchmarks: ``bench/run.py --quick`` still runs every benchmark and
writes its results. No timing is asserted: these are benchmarks, not tests."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
OURS = ["overhead", "responsiveness", "search", "proposals", "memory", "tokens", "checkpoints", "mcp", "sandbox",
        "code_mode"]


def test_quick_run_produces_every_result(tmp_path: Path) -> None:
    out = tmp_path / "results"
    env = {k: v for k, v in os.environ.items() if not k.startswith(("OPENAI_", "CODELOOP_"))}
    env["CODELOOP_BENCH_CACHE"] = str(tmp_path / "cache")  # the small search tree goes here
    proc = subprocess.run(
        [sys.executable, str(ROOT / "bench" / "run.py"), "--quick", "--results", str(out)],
        capture_output=True, text=True, timeout=180, env=env, stdin=subprocess.DEVNULL,
    )
    assert proc.returncode == 0, proc.stderr[-3000:] + proc.stdout[-3000:]
    [report_file] = [p for p in out.glob("*-quick.json")]
    report = json.loads(report_file.read_text())
    assert report["quick"] is True
    assert {"nproc", "cpu", "memory_gb", "python"} <= set(report["machine"])
    by_name = {r["name"]: r for r in report["results"]}
    assert set(OURS) <= set(by_name)
    for name in OURS:
        res = by_name[name]
        assert not res.get("error"), (name, res.get("error"))
        assert res["rows"], name
        for r in res["rows"]:
            assert {"metric", "value", "unit", "reference", "ratio", "target", "met"} <= set(r), (name, r)
    # The numbers each benchmark exists for are present (their size is not checked).
    for conv in ("short", "long"):
        assert set(by_name["overhead"]["data"][conv]) == {"bare", "bare_sdk", "codeloop"}
        assert by_name["overhead"]["data"][conv]["codeloop"]["loop"]["n"] > 0
    assert {"idle", "stream", "command"} == set(by_name["responsiveness"]["data"]["stats"])
    assert by_name["responsiveness"]["data"]["stats"]["idle"]["codeAction"]["n"] > 0
    assert all("tool_ms" in c or "raw_ms" in c for c in by_name["search"]["data"]["cases"].values())
    assert by_name["proposals"]["data"]["edits"] > 0
    assert by_name["memory"]["data"]["after_kb"] > 0
    assert by_name["tokens"]["data"]["naive_per_request"] and by_name["tokens"]["data"]["codeloop_per_request"]
    cp = by_name["checkpoints"]["data"]
    assert cp["watcher"]["nothing_changed_ms"]["n"] > 0 and cp["walk"]["hundred_changed_ms"]["n"] > 0
    assert cp["session"]["steps"] > 0 and cp["restored_exactly"] is True
    assert {"0", "20", "200"} <= set(by_name["mcp"]["data"]["tokens"])
    assert by_name["mcp"]["data"]["startup"]["with_slow_s"]
    sandbox = by_name["sandbox"]["data"]
    assert sandbox["median_ms"]["true"]["none"] > 0 and sandbox["median_ms"]["pytest"]["none"] > 0
    assert not sandbox["failures"], sandbox["failures"]  # each backend that works here ran both commands
    assert sandbox["run_command_ms"]["sandboxed"] > 0 and sandbox["run_command_ms"]["unsandboxed"] > 0
    code = by_name["code_mode"]["data"]
    for way in ("per_step", "batched", "code_mode"):  # each way did the rename and the tests pass
        assert code[way]["renamed"] and code[way]["tests_pass"] and code[way]["requests"] > 0, (way, code[way])
    # The Markdown table was written next to the JSON, and as latest.md.
    md = (out / "latest.md").read_text()
    assert "| metric | codeloop | reference | ratio | target |" in md
    assert report_file.with_suffix(".md").exists()
    # A quick run never rewrites the committed figures.
    assert "(quick)" not in (ROOT / "bench" / "LATEST.md").read_text(encoding="utf-8") if (ROOT / "bench" / "LATEST.md").exists() else True
