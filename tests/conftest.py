"""Shared fixtures: the scripted model server and a runner for the real CLI."""

from __future__ import annotations

import json
import os
import random
import subprocess
import sys
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
from scripted_model import Faulty, ScriptedModel

ROOT = Path(__file__).resolve().parent.parent
CODELOOP = [sys.executable, "-m", "codeloop"]


@pytest.fixture
def model_server() -> Iterator[Callable[..., ScriptedModel]]:
    """Start a scripted model for a scenario: ``server = model_server(scenario)``.

    ``provider=`` picks the wire of a given server (``scripted_model.providers``); the
    default comes from ``$SCRIPTED_MODEL_PROVIDER`` (e.g. to run the whole suite against
    Ollama's wire), else OpenAI's. ``$SCRIPTED_MODEL_FAULT`` (with
    ``$SCRIPTED_MODEL_FAULT_TIMES``, default 1) injects a fault into every scenario."""
    started: list[ScriptedModel] = []

    def start(scenario, **kw) -> ScriptedModel:
        kw.setdefault("provider", os.environ.get("SCRIPTED_MODEL_PROVIDER") or None)
        fault = os.environ.get("SCRIPTED_MODEL_FAULT")
        if fault:
            times = os.environ.get("SCRIPTED_MODEL_FAULT_TIMES", "1")
            scenario = Faulty(scenario, fault, None if times == "always" else int(times))
        server = ScriptedModel(scenario, **kw).start()
        started.append(server)
        return server

    yield start
    for s in started:
        s.stop()


@dataclass
class CliResult:
    code: int
    out: str
    err: str

    @property
    def both(self) -> str:
        return self.out + self.err


def cli_env(base_url: str, **extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("OPENAI_", "CODELOOP_"))}
    env.update(
        OPENAI_BASE_URL=base_url,
        OPENAI_API_KEY="sk-test-not-a-real-key",
        CODELOOP_MODEL="scripted-model",
        NO_COLOR="1",
        PYTHONUNBUFFERED="1",
    )
    env.update(extra)
    return env


@pytest.fixture
def run_cli() -> Callable[..., CliResult]:
    """Run the real ``codeloop`` CLI in a subprocess against a base URL."""

    def run(args: list[str], base_url: str, *, stdin: str | None = None, timeout: float = 90, **env: str) -> CliResult:
        proc = subprocess.run(
            CODELOOP + args,
            input=stdin if stdin is not None else "",
            capture_output=True,
            text=True,
            timeout=timeout,
            env=cli_env(base_url, **env),
        )
        return CliResult(proc.returncode, proc.stdout, proc.stderr)

    return run


def asking_user_settings(config_home: Path, **more: object) -> Path:
    """Write ``<config_home>/codeloop/settings.json`` (the user settings, XDG_CONFIG_HOME) with
    the sandbox's autoAllow off, plus ``more``. For tests of what the policy (or the trust)
    asks: bubblewrap is active here, and a command it contains is not asked
    (tests/test_sandbox_e2e.py covers that)."""
    path = config_home / "codeloop" / "settings.json"
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps({"sandbox": {"autoAllow": False}, **more}) + "\n")
    return path


def unique_marker(seconds: str) -> str:
    """A sleep duration no other process on the machine has in its command line (other
    test runs may be going on beside this one): ``seconds`` with this process's id and
    a random tail appended as more decimals."""
    return f"{seconds}{os.getpid()}{random.randint(10_000, 99_999)}"


def processes_matching(marker: str) -> list[int]:
    """PIDs whose command line contains ``marker`` (from /proc)."""
    pids = []
    for entry in os.listdir("/proc"):
        if not entry.isdigit() or int(entry) == os.getpid():
            continue
        try:
            cmdline = Path(f"/proc/{entry}/cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace")
            stat = Path(f"/proc/{entry}/stat").read_text()
        except OSError:
            continue
        if marker in cmdline and ") Z " not in stat:
            pids.append(int(entry))
    return pids


def words(content: object) -> object:
    """A user message's own words: its text without the context block codeloop adds
    after it (``<codeloop-context>...``); other contents as they are."""
    if isinstance(content, str):
        return content.split("\n\n<codeloop-context>\n", 1)[0]
    return content


@pytest.fixture(scope="session")
def bubblewrap(tmp_path_factory: pytest.TempPathFactory) -> None:
    """Skips the test unless bubblewrap works here and fully contains commands (autoAllow)."""
    from codeloop.services.sandbox import Sandbox

    sb = Sandbox.probe("auto", tmp_path_factory.mktemp("probe"))
    try:
        if sb.backend != "bubblewrap" or not sb.auto_allow:
            pytest.skip(f"bubblewrap does not work here: {sb.describe()}")
    finally:
        sb.close()
