"""The escape corpus (tests/sandbox_escapes.json), run for real under bubblewrap and Landlock.

Every attempt must fail under every backend that gives the guarantee it tests; the same
attempts run unsandboxed (the control) must succeed, so that a check that can never fail would
show. As root the corpus also runs as another user (nobody), where the process limit works
differently (RLIMIT_NPROC in a user namespace, or with headroom, instead of a pids cgroup).
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

import sandbox_corpus as C

pytestmark = pytest.mark.e2e

ENTRIES = C.load_corpus()
IDS = [e["id"] for e in ENTRIES]
ROOT = Path(__file__).resolve().parent.parent


@pytest.fixture(scope="module")
def world(tmp_path_factory: pytest.TempPathFactory):
    tmp = Path(os.path.realpath(tmp_path_factory.mktemp("corpus")))
    (tmp / "victim-cwd").mkdir()
    fx = C.Fixtures(tmp, victim_cwd=tmp / "victim-cwd").start()
    yield tmp, fx
    fx.stop()


_runners: dict[str, tuple[C.CorpusRunner, dict[str, str]]] = {}
_bounded: dict[str, str] = {}


def runner_for(backend: str, world) -> tuple[C.CorpusRunner, dict[str, str]]:
    tmp, fx = world
    key = f"{backend}:{tmp}"
    if key not in _runners:
        (tmp / backend).mkdir(exist_ok=True)
        r = C.CorpusRunner(backend, tmp / backend, fx)
        given = r.guarantees() if backend != "none" else {}
        _runners[key] = (r, given)
    return _runners[key]


def test_corpus_is_well_formed() -> None:
    from codeloop.services.sandbox import GUARANTEES

    assert len(IDS) == len(set(IDS)), "duplicate ids"
    for e in ENTRIES:
        assert e["guarantee"] in GUARANTEES, e["id"]
        assert e["command"].strip() and e.get("checks"), e["id"]
    assert len(ENTRIES) >= 40


@pytest.mark.parametrize("backend", ["bubblewrap", "landlock"])
@pytest.mark.parametrize("entry", ENTRIES, ids=IDS)
def test_escape_attempt_fails(backend: str, entry: dict, world) -> None:
    runner, given = runner_for(backend, world)
    if not given:
        pytest.skip(f"{backend} is not available here")
    if entry["guarantee"] not in given:
        pytest.skip(f"{backend} does not guarantee {entry['guarantee']!r} (a documented limitation)")
    if entry.get("forkbomb") == "bash" and _bounded.get(backend) != "blocked":
        pytest.skip("the real fork bomb only runs after the bounded one held")
    out = runner.run_entry(entry)
    if entry.get("forkbomb") == "bounded":
        _bounded[backend] = out.status
    assert out.status == "blocked", f"{entry['id']} escaped under {backend}: {out.detail}\n{out.stdout}\n{out.stderr}"


@pytest.mark.parametrize("entry", [e for e in ENTRIES if e.get("forkbomb") != "bash"],
                         ids=[e["id"] for e in ENTRIES if e.get("forkbomb") != "bash"])
def test_attempt_succeeds_unsandboxed(entry: dict, world) -> None:
    """The control: with the sandbox off, the attempt works (so its checks can fail)."""
    if entry.get("control_needs_root") and os.geteuid() != 0:
        pytest.skip("unsandboxed, only root could do this")
    runner, _ = runner_for("none", world)
    out = runner.run_entry(entry)
    if entry.get("control_may_hold"):
        pytest.skip(entry["control_may_hold"])
    assert out.status == "escaped", f"{entry['id']} did not escape unsandboxed: its checks prove nothing"


def _python_for(user_uid: int) -> list[str] | None:
    """An interpreter ``user_uid`` can run, with codeloop and its dependencies importable."""
    site = [p for p in sys.path if p.endswith("site-packages") and os.path.isdir(p)]
    for exe in (os.path.realpath(sys.executable), "/usr/bin/python3"):
        probe = subprocess.run(["setpriv", f"--reuid={user_uid}", f"--regid={user_uid}", "--clear-groups",
                                "env", "-i", f"PYTHONPATH={os.pathsep.join([str(ROOT / 'server'), *site])}",
                                exe, "-c", "import sys, pydantic; print(sys.version_info[:2])"],
                               capture_output=True, text=True)
        if probe.returncode == 0 and probe.stdout.strip() == str(tuple(sys.version_info[:2])):
            return [exe]
    return None


@pytest.mark.skipif(os.geteuid() != 0 or not shutil.which("setpriv"), reason="needs root (to become nobody)")
def test_corpus_as_an_unprivileged_user(tmp_path: Path) -> None:
    """As nobody: RLIMIT_NPROC holds the fork bombs (in bubblewrap's user namespace, and with
    headroom under Landlock), and every other attempt fails the same way."""
    py = _python_for(65534)
    if py is None:
        pytest.skip("no Python that nobody can run with codeloop's dependencies")
    site = [p for p in sys.path if p.endswith("site-packages") and os.path.isdir(p)]
    env = {"HOME": "/tmp", "PATH": os.environ.get("PATH", "/usr/bin:/bin"), "LANG": "C.UTF-8",
           "PYTHONPATH": os.pathsep.join([str(ROOT / "server"), *site])}
    proc = subprocess.run(["setpriv", "--reuid=65534", "--regid=65534", "--clear-groups", "env", "-i",
                           *[f"{k}={v}" for k, v in env.items()], *py, str(ROOT / "tests" / "sandbox_corpus.py"),
                           "--backend", "bubblewrap", "--backend", "landlock", "--json"],
                          capture_output=True, text=True, timeout=900, cwd="/")
    outcomes = json.loads(proc.stdout.strip().splitlines()[-1])
    escaped = [o for o in outcomes if o["status"] == "escaped"]
    assert not escaped, escaped
    ran = {b: [o for o in outcomes if o["backend"] == b and o["status"] == "blocked"] for b in ("bubblewrap", "landlock")}
    for backend, blocked in ran.items():
        ids = {o["id"] for o in blocked}
        assert {"fork-bomb-bounded", "fork-bomb-bash", "read-ssh-key", "write-home-file", "curl-local-server"} <= ids, (backend, ids)
        bomb = next(o for o in blocked if o["id"] == "fork-bomb-bounded")
        assert "then the limit" in bomb["detail"], bomb
    assert len(ran["bubblewrap"]) == len(ENTRIES)
