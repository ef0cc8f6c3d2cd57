"""The scripted model (tests/scripted_model) in its own process, timing itself.

    python bench/model_proc.py --scenario NAME [--arg key=value ...]

prints ``READY <base_url>`` and serves until SIGTERM. ``GET /bench/timings`` returns
``[{"start": s, "end": s, "path": ...}]`` (server clock, seconds) for every chat request
handled so far: from when the request's headers were parsed until the last byte of the
response was flushed. That is the model server's own time, which the harness benchmark
subtracts. Scenarios are the factories in ``bench/scenarios.py``.
"""

from __future__ import annotations

import argparse
import json
import os
import signal
import socket
import sys
import threading
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path[:0] = [str(HERE.parent / "tests"), str(HERE)]

import scenarios  # noqa: E402  (bench/scenarios.py)
from scripted_model import ScriptedModel  # noqa: E402
from scripted_model import server as sm_server  # noqa: E402

_TIMINGS: list[dict] = []
_LOCK = threading.Lock()
_orig_dispatch = sm_server._Handler._dispatch


def _timed_dispatch(self) -> None:  # type: ignore[no-untyped-def]
    if self.path.startswith("/bench/timings"):
        with _LOCK:
            data = json.dumps(_TIMINGS).encode()
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)
        return
    start = time.perf_counter()
    try:
        _orig_dispatch(self)
    finally:
        end = time.perf_counter()
        if self.command == "POST":
            with _LOCK:
                _TIMINGS.append({"start": start, "end": end, "path": self.path})


sm_server._Handler._dispatch = _timed_dispatch  # type: ignore[method-assign]
_orig_setup = sm_server._Handler.setup


def _setup_nodelay(self) -> None:  # type: ignore[no-untyped-def]
    # Real model servers (uvicorn, nginx) disable Nagle. Without this, the small SSE writes
    # of one response wait ~40 ms for the client's delayed ACK, and that wait would be
    # counted as the client's time.
    _orig_setup(self)
    self.connection.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)


sm_server._Handler.setup = _setup_nodelay  # type: ignore[method-assign]


def main() -> int:
    p = argparse.ArgumentParser()
    p.add_argument("--scenario", required=True)
    p.add_argument("--arg", action="append", default=[])
    args = p.parse_args()
    kwargs = dict(a.split("=", 1) for a in args.arg)
    scenario = getattr(scenarios, args.scenario)(**kwargs)
    stop = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: stop.set())
    signal.signal(signal.SIGINT, lambda *_: stop.set())
    # $SCRIPTED_MODEL_PROVIDER: the wire of another server (tests/scripted_model/providers.py).
    model = ScriptedModel(scenario, models=["gpt-4o"], provider=os.environ.get("SCRIPTED_MODEL_PROVIDER") or None).start()
    # Keep no request records: bodies grow with the conversation and would only cost memory.
    model._record = _no_record(model)  # type: ignore[method-assign]
    sys.stdout.write(f"READY {model.base_url}\n")
    sys.stdout.flush()
    try:
        while not stop.wait(0.2):
            pass
    finally:
        model.stop()
    return 0


def _no_record(model: ScriptedModel):  # type: ignore[no-untyped-def]
    def record(req, is_chat):  # type: ignore[no-untyped-def]
        with model._cond:
            if is_chat:
                req.count = model._chat_count
                model._chat_count += 1
        return req

    return record


if __name__ == "__main__":
    sys.exit(main())
