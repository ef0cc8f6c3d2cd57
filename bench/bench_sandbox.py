"""8. The sandbox's cost: a command's wall time sandboxed (each backend that works here) vs not.

Each sample is what a process runner pays: ``Sandbox.prepare()``, an asyncio subprocess in its
own session reading all output, and ``Prepared.cleanup()``; the reference is the same command
spawned the same way without the sandbox. Two commands: ``bash -c true`` (the fixed cost) and a
small pytest run (12 tests in 3 files: a typical short test command). The variants are
interleaved, round-robin, so that drift on the shared machine hits them alike; medians.
Probing (once per server start) is reported too.
"""

from __future__ import annotations

import asyncio
import json
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

from common import result, row

from codeloop.services.sandbox import BACKENDS, Sandbox, probe_backend

BASH = "/bin/bash" if os.path.exists("/bin/bash") else "/bin/sh"


def _project(root: Path) -> None:
    for i in range(3):
        tests = "\n".join(f"def test_{i}_{j}():\n    assert sum(range({j + 2})) == {sum(range(j + 2))}\n"
                          for j in range(4))
        (root / f"test_mod{i}.py").write_text(tests)


async def _spawn(argv: list[str], cwd: str, env: dict[str, str], pass_fds: tuple[int, ...] = ()) -> int:
    proc = await asyncio.create_subprocess_exec(*argv, cwd=cwd, env=env, pass_fds=pass_fds, start_new_session=True,
                                                stdin=asyncio.subprocess.DEVNULL, stdout=asyncio.subprocess.PIPE,
                                                stderr=asyncio.subprocess.STDOUT)
    await proc.communicate()
    return proc.returncode or 0


async def _once(sb: Sandbox | None, argv: list[str], ws: Path, env: dict[str, str]) -> tuple[float, int]:
    t0 = time.perf_counter()
    if sb is None:
        rc = await _spawn(argv, str(ws), env)
    else:
        prep = sb.prepare(argv, ws, env)
        try:
            rc = await _spawn(prep.argv, prep.cwd, prep.env, prep.pass_fds)
        finally:
            prep.cleanup()
    return time.perf_counter() - t0, rc


async def run(quick: bool) -> dict[str, Any]:
    n_true, n_pytest = (3, 1) if quick else (30, 5)
    data: dict[str, Any] = {"backends": {}, "probe_ms": {}, "n": {"true": n_true, "pytest": n_pytest}}
    with tempfile.TemporaryDirectory(prefix="codeloop-bench-sandbox-") as tmp:
        root = Path(os.path.realpath(tmp))
        ws = root / "ws"
        ws.mkdir()
        _project(ws)
        env = {k: v for k, v in os.environ.items() if not k.startswith(("OPENAI_", "CODELOOP_"))}
        env["PYTHONDONTWRITEBYTECODE"] = "1"
        env["PYTEST_DISABLE_PLUGIN_AUTOLOAD"] = "1"  # this venv's plugins (pytest-lsp, ...) are not the point
        variants: dict[str, Sandbox | None] = {"none": None}
        for name in BACKENDS:
            t0 = time.perf_counter()
            pr = probe_backend(name, cache=False)
            data["probe_ms"][name] = round((time.perf_counter() - t0) * 1000, 1)
            if not pr.ok:
                data["backends"][name] = {"unavailable": pr.summary()}
                continue
            sb = Sandbox.probe({"mode": "on"}, ws, backends=[name], env=env, temp_dir=root, state_dir=root / "state")
            variants[name] = sb
            data["backends"][name] = {"description": sb.describe()}
        commands = {
            "true": [BASH, "-c", "true"],
            "pytest": [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", "-p", "no:randomly"],
        }
        samples: dict[str, dict[str, list[float]]] = {c: {v: [] for v in variants} for c in commands}
        failures: list[str] = []
        try:
            for cmd, argv in commands.items():
                for v, sb in variants.items() if not quick else ():  # warm-up
                    _, rc = await _once(sb, argv, ws, env)
                    if rc != 0:
                        failures.append(f"{cmd} under {v}: exit code {rc}")
                for _ in range(n_true if cmd == "true" else n_pytest):
                    for v, sb in variants.items():
                        dt, rc = await _once(sb, argv, ws, env)
                        samples[cmd][v].append(dt)
                        if rc != 0:
                            failures.append(f"{cmd} under {v}: exit code {rc}")
        finally:
            for sb in variants.values():
                if sb is not None:
                    sb.close()
    data["median_ms"] = {c: {v: round(statistics.median(s) * 1000, 2) for v, s in per.items() if s}
                         for c, per in samples.items()}
    data["failures"] = failures
    data["loadavg"] = [round(x, 2) for x in os.getloadavg()]
    return data


def main(quick: bool = False) -> dict[str, Any]:
    data = asyncio.run(run(quick))
    rows = []
    med = data["median_ms"]
    for cmd, label, target, limit in (("true", "`bash -c true`", "≤ +25 ms", None),
                                      ("pytest", "pytest, 12 tests", "≤ 1.25×", 1.25)):
        ref = med[cmd]["none"]
        for backend in BACKENDS:
            if backend not in med[cmd]:
                continue
            value = med[cmd][backend]
            met = (value / ref <= limit) if limit else (value - ref <= 25)
            rows.append(row(f"{label}, {backend} ({value - ref:+.1f} ms)", value, "ms", reference=ref, target=target,
                            met=bool(met and not data["failures"])))
    for backend, ms in data["probe_ms"].items():
        rows.append(row(f"probe {backend} (once per start)", ms, "ms"))
    notes = [f"Reference: the same command spawned the same way, unsandboxed. Medians of {data['n']['true']} "
             f"(true) and {data['n']['pytest']} (pytest) interleaved runs after a warm-up (none in --quick); prepare() and "
             f"cleanup() included. Load average at the end: {data['loadavg']} (the machine is shared)."]
    for backend, info in data["backends"].items():
        notes.append(f"{backend}: {info.get('description') or info.get('unavailable')}")
    notes += [f"FAILED: {f}" for f in data["failures"]]
    return result("sandbox", "Sandbox cost", rows, notes, **data)


if __name__ == "__main__":
    print(json.dumps(main(quick="--quick" in sys.argv), indent=2))
