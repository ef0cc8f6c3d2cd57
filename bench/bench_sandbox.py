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
from codeloop.tools.processes import ProcessManager

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
        data["run_command_ms"] = await _run_command(ws, env, root, n_true)
    data["median_ms"] = {c: {v: round(statistics.median(s) * 1000, 2) for v, s in per.items() if s}
                         for c, per in samples.items()}
    data["failures"] = failures
    data["loadavg"] = [round(x, 2) for x in os.getloadavg()]
    return data


async def _run_command(ws: Path, env: dict[str, str], root: Path, n: int) -> dict[str, float]:
    """``run_command``'s own path: the process manager (bash, its process group, output read
    and kept), with the session's sandbox (the first backend that works) and without."""
    sb = Sandbox.probe("auto", ws, env=env, temp_dir=root, state_dir=root / "state-pm")
    pms = {"sandboxed": ProcessManager(sandbox=sb), "unsandboxed": ProcessManager()}
    times: dict[str, list[float]] = {k: [] for k in pms}
    try:
        for _ in range(n):
            for k, pm in pms.items():
                t0 = time.perf_counter()
                rec = await pm.run("true", ws, 30)
                times[k].append(time.perf_counter() - t0)
                assert rec.exit_code == 0, (k, rec.text())
    finally:
        for pm in pms.values():
            await pm.shutdown()
        sb.close()
    out = {k: round(statistics.median(v) * 1000, 2) for k, v in times.items()}
    out["backend"] = sb.backend  # type: ignore[assignment]
    return out


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
    rc = data["run_command_ms"]
    rows.append(row(f"run_command `true` (process manager), {rc['backend']} ({rc['sandboxed'] - rc['unsandboxed']:+.1f} ms)",
                    rc["sandboxed"], "ms", reference=rc["unsandboxed"], target="≤ +25 ms",
                    met=rc["sandboxed"] - rc["unsandboxed"] <= 25))
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
