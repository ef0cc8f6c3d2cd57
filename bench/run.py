"""Run the benchmarks: ``python bench/run.py [--quick] [--only NAME[,NAME]] [--profile]``.

Each benchmark runs in its own process (``bench_<name>.py``, ``main(quick) -> dict``).
Results go to ``bench/results/<timestamp>.json`` and ``.md`` and ``bench/results/latest.md``;
a full run of every benchmark also refreshes ``bench/LATEST.md`` (committed).
``--quick`` runs a few iterations of each, only to check they still run (CI smoke).
``--profile`` (env CODELOOP_BENCH_PROFILE=1) makes benchmarks that support it write a
pyinstrument profile to ``bench/results/``.
"""

from __future__ import annotations

import argparse
import datetime as dt
import importlib
import json
import os
import subprocess
import sys
import tempfile
import time
import traceback
from pathlib import Path
from typing import Any

BENCH = Path(__file__).resolve().parent
sys.path.insert(0, str(BENCH))

from common import machine  # noqa: E402

BENCHMARKS = ["overhead", "responsiveness", "search", "proposals", "memory", "tokens", "code_actions", "checkpoints", "mcp",
              "sandbox", "code_mode"]
TIMEOUT = 900  # seconds per benchmark


def available(name: str) -> bool:
    return (BENCH / f"bench_{name}.py").exists()


def run_child(name: str, quick: bool, out: Path) -> None:
    """In the child process: run one benchmark and write its result."""
    mod = importlib.import_module(f"bench_{name}")
    t0 = time.perf_counter()
    res = mod.main(quick)
    if not isinstance(res, dict):
        res = {"value": res}
    res.setdefault("name", name)
    res["seconds"] = round(time.perf_counter() - t0, 1)
    out.write_text(json.dumps(res, default=str))


def run_one(name: str, quick: bool, profile: bool) -> dict[str, Any]:
    if not available(name):
        return {"name": name, "skipped": f"bench/bench_{name}.py is not there (yet)"}
    env = dict(os.environ)
    if profile:
        env["CODELOOP_BENCH_PROFILE"] = "1"
    with tempfile.TemporaryDirectory(prefix="codeloop-bench-out-") as tmp:
        out = Path(tmp) / "result.json"
        cmd = [sys.executable, str(BENCH / "run.py"), "--child", name, "--out", str(out)] + (["--quick"] if quick else [])
        t0 = time.perf_counter()
        try:
            proc = subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=TIMEOUT,
                                  stdin=subprocess.DEVNULL)
        except subprocess.TimeoutExpired:
            return {"name": name, "error": f"timed out after {TIMEOUT}s"}
        if proc.returncode != 0 or not out.exists():
            tail = (proc.stderr or proc.stdout).strip().splitlines()[-15:]
            return {"name": name, "error": "\n".join(tail) or f"exit code {proc.returncode}",
                    "seconds": round(time.perf_counter() - t0, 1)}
        return json.loads(out.read_text())


# -- Markdown ------------------------------------------------------------------------------


def _fmt(v: Any) -> str:
    if v is None or v == "":
        return ""
    if isinstance(v, float):
        return f"{v:,.3f}".rstrip("0").rstrip(".") if abs(v) < 100 else f"{v:,.1f}"
    if isinstance(v, int):
        return f"{v:,}"
    return str(v).replace("|", "\\|")


def _met(m: Any) -> str:
    return {True: "✅ met", False: "❌ missed", None: ""}[m]


def markdown(report: dict[str, Any]) -> str:
    m = report["machine"]
    lines = [
        f"# codeloop benchmarks — {report['when']}{' (quick)' if report['quick'] else ''}",
        "",
        f"Machine: {m['nproc']} CPUs ({m['cpu']}), {m['memory_gb']} GB RAM, Python {m['python']}, "
        f"{m['platform']}, {m['ripgrep'] or 'rg not found'}. Commit {report.get('commit', '?')}.",
        "",
        "Every ratio is codeloop's figure over the reference measured in the same run.",
        "",
    ]
    for res in report["results"]:
        title = res.get("title") or res.get("name")
        lines.append(f"## {title}")
        lines.append("")
        if res.get("skipped"):
            lines += [f"Skipped: {res['skipped']}.", ""]
            continue
        if res.get("error"):
            lines += ["**Failed to run:**", "", "```", res["error"], "```", ""]
            continue
        rows = res.get("rows")
        if rows:
            lines.append("| metric | codeloop | reference | ratio | target | |")
            lines.append("|---|---:|---:|---:|---|---|")
            for r in rows:
                value = f"{_fmt(r.get('value'))} {r.get('unit', '')}".strip()
                ref = r.get("reference")
                ref_s = f"{_fmt(ref)} {r.get('unit', '')}".strip() if ref is not None else ""
                ratio = ""
                if isinstance(r.get("ratio"), (int, float)):
                    # small ratios get a third digit: 0.029× is not 0.03×
                    ratio = f"{r['ratio']:.3f}×" if r["ratio"] < 0.1 else f"{r['ratio']:.2f}×"
                lines.append(f"| {_fmt(r['metric'])} | {value} | {ref_s} | {ratio} | {_fmt(r.get('target'))} | {_met(r.get('met'))} |")
            lines.append("")
        else:
            shown = {k: v for k, v in res.items() if k not in ("name", "title", "notes")}
            lines += ["```json", json.dumps(shown, indent=2, default=str)[:4000], "```", ""]
        for note in res.get("notes") or []:
            lines.append(f"- {note}")
        if res.get("seconds") is not None:
            lines.append(f"- Ran in {res['seconds']} s.")
        lines.append("")
    return "\n".join(lines)


def _commit() -> str:
    try:
        return subprocess.run(["git", "rev-parse", "--short", "HEAD"], cwd=BENCH, capture_output=True,
                              text=True).stdout.strip() or "?"
    except OSError:
        return "?"


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--quick", action="store_true", help="a few iterations each: checks they run (CI)")
    p.add_argument("--only", help=f"comma-separated names: {', '.join(BENCHMARKS)}")
    p.add_argument("--profile", action="store_true", help="write profiles where supported")
    p.add_argument("--results", default=str(BENCH / "results"), help="where to write results")
    p.add_argument("--child", help=argparse.SUPPRESS)
    p.add_argument("--out", help=argparse.SUPPRESS)
    args = p.parse_args(argv)

    if args.child:
        try:
            run_child(args.child, args.quick, Path(args.out))
        except Exception:
            traceback.print_exc()
            return 1
        return 0

    names = BENCHMARKS if not args.only else [n.strip() for n in args.only.split(",") if n.strip()]
    unknown = [n for n in names if n not in BENCHMARKS]
    if unknown:
        p.error(f"unknown benchmark(s): {', '.join(unknown)}; choose from {', '.join(BENCHMARKS)}")
    results = []
    for name in names:
        print(f"[bench] {name} ...", file=sys.stderr, flush=True)
        res = run_one(name, args.quick, args.profile)
        status = "skipped" if res.get("skipped") else "FAILED" if res.get("error") else f"{res.get('seconds', '?')} s"
        print(f"[bench] {name}: {status}", file=sys.stderr, flush=True)
        results.append(res)
    now = dt.datetime.now()
    report = {"when": now.strftime("%Y-%m-%d %H:%M"), "quick": args.quick, "machine": machine(),
              "commit": _commit(), "results": results}
    out_dir = Path(args.results)
    out_dir.mkdir(parents=True, exist_ok=True)
    stamp = now.strftime("%Y%m%d-%H%M%S") + ("-quick" if args.quick else "")
    md = markdown(report)
    (out_dir / f"{stamp}.json").write_text(json.dumps(report, indent=2, default=str))
    (out_dir / f"{stamp}.md").write_text(md)
    (out_dir / "latest.md").write_text(md)
    if not args.quick and not args.only:
        (BENCH / "LATEST.md").write_text(md)
    print(md)
    print(f"[bench] wrote {out_dir / (stamp + '.json')}", file=sys.stderr)
    return 1 if any(r.get("error") for r in results) else 0


if __name__ == "__main__":
    sys.exit(main())
