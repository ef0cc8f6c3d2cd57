"""3. Search on a large tree: the grep and glob tools against raw ripgrep.

The tree (generated once, then reused from ``~/.cache/codeloop/bench-tree``): 50,000
files, about 500 MB, in a git repository whose .gitignore hides half of them
(``vendor/``). One file in a hundred holds a ``NEEDLE_<n>`` line. The quick mode uses a
small tree (1,000 files, 5 MB).

Each case runs the codeloop tool in-process (``await tool.run(args, ctx)``, as the
loop calls it) and the raw command as an asyncio subprocess reading all its output.
Median of several runs after a warm-up; the page cache is warm for both.
"""

from __future__ import annotations

import asyncio
import json
import random
import shutil
import statistics
import subprocess
import time
from pathlib import Path
from typing import Any

from common import CACHE, result, row

from codeloop.edits.disk import DiskChangeApplier
from codeloop.tools.base import ToolContext
from codeloop.tools.registry import ToolRegistry
from codeloop.tools.processes import ProcessManager
from codeloop.tools.search import Glob, Grep, _base_rg_args, find_rg
from codeloop.tools.workspace import Workspace

FULL = {"files": 50_000, "bytes": 500 * 1024 * 1024}
SMALL = {"files": 1_000, "bytes": 5 * 1024 * 1024}
TREE_VERSION = 1

WORDS = (
    "def class return import self value result items config request response handler error "
    "data index count buffer stream parse build cache token event state update render node "
    "path file line text name key list dict open close read write start stop check apply"
).split()


def _pool(rng: random.Random, n: int = 4000) -> list[str]:
    lines = []
    for _ in range(n):
        indent = "    " * rng.randint(0, 3)
        words = " ".join(rng.choice(WORDS) for _ in range(rng.randint(3, 9)))
        lines.append(f"{indent}{words} = {rng.randint(0, 99999)}\n")
    return lines


def ensure_tree(kind: str) -> Path:
    """The benchmark tree for ``kind`` ("full" or "small"), generated if missing."""
    spec = FULL if kind == "full" else SMALL
    root = CACHE / ("bench-tree" if kind == "full" else "bench-tree-small")
    stamp = root / ".bench-tree.json"
    want = {**spec, "version": TREE_VERSION}
    if stamp.exists():
        try:
            if json.loads(stamp.read_text()) == want:
                return root
        except ValueError:
            pass
    if root.exists():
        shutil.rmtree(root)
    root.mkdir(parents=True)
    rng = random.Random(42)
    pool = _pool(rng)
    pool_text = "".join(pool)
    per_file = spec["bytes"] // spec["files"]
    per_dir = 100
    half = spec["files"] // 2
    made: set[Path] = set()
    for i in range(spec["files"]):
        visible = i < half
        d = root / ("src" if visible else "vendor") / f"pkg{(i % half) // per_dir:04d}"
        if d not in made:
            d.mkdir(parents=True, exist_ok=True)
            made.add(d)
        start = rng.randrange(0, len(pool_text) - per_file - 1)
        start = pool_text.find("\n", start) + 1
        body = pool_text[start : start + per_file]
        body = body[: body.rfind("\n") + 1]
        head = f"# file {i}\n"
        if i % 100 == 7:
            head += f"marker = 'NEEDLE_{i}'\n"
        ext = ".py" if i % 3 else ".txt"
        (d / f"mod{i % per_dir:03d}{ext}").write_text(head + body)
    (root / ".gitignore").write_text("vendor/\n")
    subprocess.run(["git", "init", "-q"], cwd=root, check=True)
    stamp.write_text(json.dumps(want))
    return root


def tree_size(root: Path) -> tuple[int, int]:
    files = 0
    size = 0
    for p in root.rglob("*"):
        if ".git" in p.parts:
            continue
        if p.is_file():
            files += 1
            size += p.stat().st_size
    return files, size


async def _raw(args: list[str], cwd: Path) -> tuple[float, int]:
    t0 = time.perf_counter()
    proc = await asyncio.create_subprocess_exec(
        *args, cwd=str(cwd), stdin=asyncio.subprocess.DEVNULL,
        stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.DEVNULL,
    )
    out, _ = await proc.communicate()
    return time.perf_counter() - t0, len(out)


async def _tool(tool: Any, args: dict[str, Any], ctx: ToolContext) -> tuple[float, int, str | None]:
    """(seconds, result size, error text or None), run through the registry as the loop does."""
    parsed = tool.Input.model_validate(args)
    t0 = time.perf_counter()
    res = await ToolRegistry([tool]).run(tool, parsed, ctx)
    return time.perf_counter() - t0, len(res.text), None if res.ok else res.text[:300]


async def run(quick: bool) -> dict[str, Any]:
    root = ensure_tree("small" if quick else "full")
    rg = find_rg()
    assert rg, "ripgrep not found"
    ctx = ToolContext(workspace=Workspace(root), changes=DiskChangeApplier(root=root), processes=ProcessManager())
    grep, glob = Grep(), Glob()
    cases = [
        ("grep content, rare pattern", (grep, {"pattern": r"NEEDLE_\d+"}), [rg, "-n", r"NEEDLE_\d+"]),
        ("(diagnostic) raw rg with the grep tool's own flags", None,
         [rg, *_base_rg_args(), "--engine", "auto", "--json", "-g", "!.git", "-e", r"NEEDLE_\d+", "--", "."]),
        ("grep files_with_matches, common word", (grep, {"pattern": r"\bbuffer stream\b", "output_mode": "files_with_matches"}),
         [rg, "-l", r"\bbuffer stream\b"]),
        ("glob **/*.py", (glob, {"pattern": "**/*.py"}), [rg, "--files", "-g", "*.py"]),
        ("glob src/pkg000*/mod01*.py", (glob, {"pattern": "src/pkg000*/mod01*.py"}), [rg, "--files", "-g", "src/pkg000*/mod01*.py"]),
    ]
    repeats = 2 if quick else 7
    out: dict[str, Any] = {}
    for name, pair, raw in cases:
        if pair is None:  # a diagnostic: only the raw command
            t_raw = [(await _raw(raw, root))[0] for _ in range(repeats + 1)][1:]
            out[name] = {"raw_ms": round(statistics.median(t_raw) * 1000, 1), "raw_command": " ".join(["rg"] + raw[1:])}
            continue
        tool, targs = pair
        await _tool(tool, targs, ctx)  # warm-up
        await _raw(raw, root)
        t_tool, t_raw = [], []
        error = None
        for _ in range(repeats):
            dt, n_tool, error = await _tool(tool, targs, ctx)
            t_tool.append(dt)
            dt, n_raw = await _raw(raw, root)
            t_raw.append(dt)
        out[name] = {
            "error": error,
            "tool_ms": round(statistics.median(t_tool) * 1000, 1),
            "raw_ms": round(statistics.median(t_raw) * 1000, 1),
            "tool_chars": n_tool,
            "raw_bytes": n_raw,
            "raw_command": " ".join(["rg"] + raw[1:]),
        }
    files, size = tree_size(root)
    return {"cases": out, "tree": {"path": str(root), "files": files, "mb": round(size / 1024 / 1024, 1),
                                   "ignored": "vendor/ (half the files)"}, "repeats": repeats}


def main(quick: bool = False) -> dict[str, Any]:
    data = asyncio.run(run(quick))
    rows = []
    for name, c in data["cases"].items():
        if "tool_ms" not in c:
            rows.append(row(f"{name}: `{c['raw_command']}`", c["raw_ms"], "ms"))
            continue
        ratio = c["tool_ms"] / c["raw_ms"] if c["raw_ms"] else None
        ok = c["error"] is None
        rows.append(row(f"{name} (vs `{c['raw_command']}`)" + ("" if ok else " — tool FAILED"), c["tool_ms"], "ms",
                        reference=c["raw_ms"], target="≤ 1.3× raw rg",
                        met=bool(ok and ratio is not None and ratio <= 1.3)))
    t = data["tree"]
    notes = [f"Tree: {t['files']} files, {t['mb']} MB, {t['ignored']} ignored; median of {data['repeats']} runs."]
    notes += [f"{name}: the tool returned an error: {c['error']}" for name, c in data["cases"].items() if c.get("error")]
    return result("search", "Search on a large tree", rows, notes, **data)


if __name__ == "__main__":
    print(json.dumps(main(quick=True), indent=2))
