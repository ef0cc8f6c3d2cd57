"""``python -m scripted_model --scenario module:function [--port 0] [--record FILE]``.

Prints ``READY <base_url>`` as the first stdout line, then serves until SIGTERM/SIGINT.
``--arg key=value`` (repeatable) is passed to a scenario factory as keyword arguments.
``--provider NAME`` (default ``$SCRIPTED_MODEL_PROVIDER``, else ``openai``) picks the wire of
a given server; ``--fault NAME`` (default ``$SCRIPTED_MODEL_FAULT``) injects a fault into the
first ``--fault-times`` answers to each distinct request (``always`` for every one).
"""

from __future__ import annotations

import argparse
import logging
import os
import signal
import sys
import threading

from .providers import PROVIDERS
from .scenarios import FAULTS, Faulty, load_scenario
from .server import ScriptedModel


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m scripted_model", description=__doc__)
    p.add_argument("--scenario", default="scripted_model.scenarios:echo", help="module:function (a scenario or a factory)")
    p.add_argument("--arg", action="append", default=[], metavar="KEY=VALUE", help="keyword argument for the factory")
    p.add_argument("--host", default="127.0.0.1")
    p.add_argument("--port", type=int, default=0)
    p.add_argument("--record", help="append every request to this file as JSON lines")
    p.add_argument("--model", action="append", default=None, help="model name listed by /v1/models (repeatable)")
    p.add_argument("--api-key", default=None, help="require this bearer token")
    p.add_argument("--no-validate", action="store_true", help="do not reject malformed chat requests")
    p.add_argument("--provider", default=os.environ.get("SCRIPTED_MODEL_PROVIDER") or None,
                   choices=sorted(PROVIDERS), help="the wire of which server to speak (default: openai)")
    p.add_argument("--context-window", type=int, default=None,
                   help="count at most this many prompt tokens, as a server with a small window does")
    p.add_argument("--fault", default=os.environ.get("SCRIPTED_MODEL_FAULT") or None, choices=FAULTS,
                   help="inject this fault into answers (see scripted_model.scenarios.Faulty)")
    p.add_argument("--fault-times", default=os.environ.get("SCRIPTED_MODEL_FAULT_TIMES") or "1",
                   help="how many times each distinct request gets the fault: a number or 'always'")
    p.add_argument("-v", "--verbose", action="store_true")
    args = p.parse_args(argv)

    logging.basicConfig(level=logging.DEBUG if args.verbose else logging.INFO, stream=sys.stderr,
                        format="%(asctime)s scripted_model %(levelname)s %(message)s")
    kwargs = {}
    for item in args.arg:
        key, sep, value = item.partition("=")
        if not sep:
            p.error(f"--arg wants KEY=VALUE, got {item!r}")
        kwargs[key] = value
    scenario = load_scenario(args.scenario, kwargs)
    if args.fault:
        times = None if args.fault_times == "always" else int(args.fault_times)
        scenario = Faulty(scenario, args.fault, times)

    stop = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: stop.set())
    signal.signal(signal.SIGINT, lambda *_: stop.set())

    model = ScriptedModel(scenario, host=args.host, port=args.port, models=args.model,
                          api_key=args.api_key, validate=not args.no_validate, record=args.record,
                          provider=args.provider, context_window=args.context_window).start()
    sys.stdout.write(f"READY {model.base_url}\n")
    sys.stdout.flush()
    try:
        while not stop.wait(0.5):
            pass
    finally:
        model.stop()
    return 0


if __name__ == "__main__":
    sys.exit(main())
