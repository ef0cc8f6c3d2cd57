"""Shared helpers for the benchmarks: statistics, rows, the model server process, machine info.

Every benchmark module has ``main(quick: bool) -> dict`` returning::

    {"name": str, "title": str,
     "rows": [{"metric", "value", "unit", "reference", "ratio", "target", "met"}, ...],
     "notes": [str, ...], "data": {...raw numbers...}}

``value`` is codeloop's figure, ``reference`` the baseline measured in the same run,
``ratio`` value / reference, ``met`` True/False against ``target`` (None: no target).
"""

from __future__ import annotations

import json
import os
import platform
import re
import socket
import statistics
import subprocess
import sys
import time
import urllib.request
from contextlib import contextmanager
from pathlib import Path
from typing import Any, Iterator

BENCH = Path(__file__).resolve().parent
ROOT = BENCH.parent
TESTS = ROOT / "tests"
for p in (str(TESTS), str(BENCH)):
    if p not in sys.path:
        sys.path.insert(0, p)

CACHE = Path(os.environ.get("CODELOOP_BENCH_CACHE", Path.home() / ".cache" / "codeloop"))


# -- statistics -----------------------------------------------------------------------------


def percentile(samples: list[float], q: float) -> float:
    """Nearest-rank percentile (q in 0..100); 0.0 for no samples."""
    if not samples:
        return 0.0
    s = sorted(samples)
    k = max(0, min(len(s) - 1, int(round(q / 100 * len(s) + 0.5)) - 1))
    return s[k]


def summary_ms(samples_s: list[float]) -> dict[str, float]:
    """p50/p99/mean/min/max in milliseconds of samples in seconds."""
    ms = [x * 1000 for x in samples_s]
    if not ms:
        return {"n": 0, "p50": 0.0, "p99": 0.0, "mean": 0.0, "min": 0.0, "max": 0.0}
    return {
        "n": len(ms),
        "p50": round(percentile(ms, 50), 3),
        "p99": round(percentile(ms, 99), 3),
        "mean": round(statistics.fmean(ms), 3),
        "min": round(min(ms), 3),
        "max": round(max(ms), 3),
    }


def row(
    metric: str,
    value: float | int | str,
    unit: str = "",
    *,
    reference: float | int | None = None,
    target: str = "",
    met: bool | None = None,
) -> dict[str, Any]:
    ratio = None
    if isinstance(value, (int, float)) and isinstance(reference, (int, float)) and reference:
        ratio = round(value / reference, 3)
    return {
        "metric": metric,
        "value": value,
        "unit": unit,
        "reference": reference,
        "ratio": ratio,
        "target": target,
        "met": met,
    }


def result(name: str, title: str, rows: list[dict[str, Any]], notes: list[str] | None = None, **data: Any) -> dict[str, Any]:
    return {"name": name, "title": title, "rows": rows, "notes": list(notes or []), "data": data}


# -- the machine ----------------------------------------------------------------------------


def machine() -> dict[str, Any]:
    cpu = ""
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        cpu = platform.processor()
    mem_gb = None
    try:
        m = re.search(r"MemTotal:\s+(\d+) kB", Path("/proc/meminfo").read_text())
        if m:
            mem_gb = round(int(m.group(1)) / 1024 / 1024, 1)
    except OSError:
        pass
    rg = None
    try:
        from codeloop.tools.search import find_rg

        exe = find_rg()
        if exe:
            rg = subprocess.run([exe, "--version"], capture_output=True, text=True).stdout.splitlines()[0]
    except Exception:
        pass
    return {
        "nproc": os.cpu_count(),
        "cpu": cpu,
        "memory_gb": mem_gb,
        "python": platform.python_version(),
        "platform": platform.platform(),
        "ripgrep": rg,
    }


def rss_kb(pid: int) -> int:
    """Resident set size of a process, in kB (from /proc)."""
    m = re.search(r"VmRSS:\s+(\d+) kB", Path(f"/proc/{pid}/status").read_text())
    return int(m.group(1)) if m else 0


# -- the scripted model in its own process ---------------------------------------------------


class ModelProcess:
    """``bench/model_proc.py`` in a subprocess: the scripted model, plus per-request
    server-side timings at ``GET /bench/timings`` (so its own time can be subtracted)."""

    def __init__(self, scenario: str, **args: Any) -> None:
        self.scenario = scenario
        self.args = args
        self.proc: subprocess.Popen[str] | None = None
        self.base_url = ""

    def start(self) -> "ModelProcess":
        cmd = [sys.executable, str(BENCH / "model_proc.py"), "--scenario", self.scenario]
        for k, v in self.args.items():
            cmd += ["--arg", f"{k}={v}"]
        env = dict(os.environ, PYTHONPATH=os.pathsep.join([str(TESTS), str(BENCH)]))
        self.proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True, env=env)
        assert self.proc.stdout is not None
        line = self.proc.stdout.readline().strip()
        if not line.startswith("READY "):
            self.stop()
            raise RuntimeError(f"model process did not start: {line!r}")
        self.base_url = line.split(" ", 1)[1]
        return self

    def timings(self) -> list[dict[str, Any]]:
        """Server-side timings of the chat requests so far: start, end (server clock, s)."""
        url = self.base_url.removesuffix("/v1") + "/bench/timings"
        with urllib.request.urlopen(url, timeout=30) as r:
            return json.loads(r.read())

    def stop(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        self.proc = None

    def __enter__(self) -> "ModelProcess":
        return self.start()

    def __exit__(self, *exc: Any) -> None:
        self.stop()


def env_for(base_url: str, model: str = "gpt-4o", **extra: str) -> dict[str, str]:
    """Environment for a codeloop process pointed at ``base_url``."""
    env = {k: v for k, v in os.environ.items() if not k.startswith(("OPENAI_", "CODELOOP_"))}
    env.update(
        OPENAI_BASE_URL=base_url,
        OPENAI_API_KEY="sk-bench-not-a-real-key",
        CODELOOP_MODEL=model,
        CODELOOP_LOG_LEVEL="WARNING",
        NO_COLOR="1",
        PYTHONUNBUFFERED="1",
    )
    env.update(extra)
    return env


@contextmanager
def timer() -> Iterator[list[float]]:
    out: list[float] = []
    t0 = time.perf_counter()
    try:
        yield out
    finally:
        out.append(time.perf_counter() - t0)


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]
