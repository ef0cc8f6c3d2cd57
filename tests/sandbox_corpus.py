"""Runs the escape corpus (tests/sandbox_escapes.json) for real under a sandbox backend.

Used by tests/test_sandbox_escapes.py, and runnable on its own (also as another user)::

    python tests/sandbox_corpus.py --backend bubblewrap [--backend landlock] [--json]

Everything it touches is under a temporary directory, except the unique names it checks in the
host's /tmp, /dev/shm, /etc and /usr/local (removed again if an attempt ever succeeded). The real
home is never used: the sandbox gets a fake "real home" with fake secrets.
"""

from __future__ import annotations

import argparse
import http.server
import json
import os
import select
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
import uuid
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT / "server") not in sys.path:
    sys.path.insert(0, str(ROOT / "server"))

from codeloop.services.sandbox import Sandbox  # noqa: E402

CORPUS = Path(__file__).resolve().parent / "sandbox_escapes.json"
TEST_LIMIT = 48  # tasks per sandboxed command in the corpus (small: the fork bombs are real)
ENTRY_TIMEOUT = 30.0
BOMB_SECONDS = 4.0

SECRETS = {
    ".ssh/id_rsa": "-----BEGIN OPENSSH PRIVATE KEY-----\nSECRET-KEY-MATERIAL\n",
    ".ssh/config": "Host *\n",
    ".aws/credentials": "[default]\naws_secret_access_key = SECRET-AWS-KEY\n",
    ".netrc": "machine example.com login me password SECRET-NETRC\n",
    ".git-credentials": "https://me:SECRET-GIT-CRED@example.com\n",
    ".docker/config.json": '{"auths": {"x": {"auth": "SECRET-DOCKER"}}}\n',
    ".kube/config": "token: SECRET-KUBE\n",
    ".config/gcloud/credentials.db": "SECRET-GCLOUD\n",
    ".config/codeloop/settings.json": '{"apiKey": "SECRET-CODELOOP-KEY"}\n',
}
HOME_FILES = {".bashrc": "# the user's bashrc\n", ".gitconfig": "[user]\n\tname = Someone\n"}


def load_corpus() -> list[dict[str, Any]]:
    return json.loads(CORPUS.read_text())["entries"]


@dataclass
class Outcome:
    id: str
    backend: str
    status: str  # "blocked" | "escaped" | "skipped"
    detail: str = ""
    stdout: str = ""
    stderr: str = ""

    def to_json(self) -> dict[str, Any]:
        return {"id": self.id, "backend": self.backend, "status": self.status, "detail": self.detail}


class _Hits:
    def __init__(self) -> None:
        self.http = 0
        self.udp = 0
        self.unix = 0


@dataclass
class Fixtures:
    """The world outside the sandbox: listeners, a victim process, a fake home, victim files."""

    root: Path
    hits: _Hits = field(default_factory=_Hits)
    port: int = 0
    udp_port: int = 0
    unix_sock: Path | None = None
    abstract: str = ""
    victim: subprocess.Popen | None = None
    victim_cwd: Path | None = None
    _stop: list = field(default_factory=list)

    def start(self) -> "Fixtures":
        hits = self.hits

        class Handler(http.server.BaseHTTPRequestHandler):
            def do_GET(self) -> None:  # noqa: N802
                hits.http += 1
                self.send_response(200)
                self.end_headers()
                self.wfile.write(b"exfiltrated")

            def log_message(self, *a: Any) -> None:
                pass

        srv = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.port = srv.server_address[1]
        threading.Thread(target=srv.serve_forever, daemon=True).start()
        self._stop.append(srv.shutdown)

        udp = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        udp.bind(("127.0.0.1", 0))
        self.udp_port = udp.getsockname()[1]
        self.unix_sock = self.root / "daemon.sock"
        unix = socket.socket(socket.AF_UNIX)
        unix.bind(str(self.unix_sock))
        unix.listen(8)
        self.abstract = f"codeloop-test-{uuid.uuid4().hex[:12]}"
        abstract = socket.socket(socket.AF_UNIX)
        abstract.bind("\0" + self.abstract)
        abstract.listen(8)
        running = [True]

        def serve_sockets() -> None:
            while running[0]:
                ready, _, _ = select.select([udp, unix, abstract], [], [], 0.1)
                for s in ready:
                    try:
                        if s is udp:
                            s.recvfrom(100)
                            hits.udp += 1
                        else:
                            conn, _ = s.accept()
                            hits.unix += 1
                            conn.close()
                    except OSError:
                        pass

        t = threading.Thread(target=serve_sockets, daemon=True)
        t.start()

        def stop_sockets() -> None:
            running[0] = False
            t.join(2)
            for s in (udp, unix, abstract):
                s.close()

        self._stop.append(stop_sockets)
        self.restart_victim()
        self._stop.append(lambda: (self.victim.kill(), self.victim.wait()))
        return self

    def restart_victim(self) -> None:
        if self.victim is not None:
            self.victim.kill()
            self.victim.wait()
        env = dict(os.environ, CODELOOP_VICTIM="PARENT-SECRET-MARKER")
        self.victim = subprocess.Popen(["sleep", "300"], env=env, cwd=self.victim_cwd, start_new_session=True)

    def victim_alive(self) -> bool:
        assert self.victim is not None
        if self.victim.poll() is not None:
            return False
        try:
            state = Path(f"/proc/{self.victim.pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
        except OSError:
            return False
        if state == "T":  # stopped: let it go on for the next entry, but it counts
            os.kill(self.victim.pid, signal.SIGCONT)
            return False
        return True

    def stop(self) -> None:
        for fn in reversed(self._stop):
            try:
                fn()
            except Exception:
                pass


def make_home(home: Path) -> None:
    for rel, text in {**SECRETS, **HOME_FILES}.items():
        p = home / rel
        p.parent.mkdir(parents=True, exist_ok=True)
        p.write_text(text)
    os.chmod(home / ".ssh", 0o700)
    os.chmod(home / ".ssh" / "id_rsa", 0o600)


def make_workspace(ws: Path, setup: list[str]) -> None:
    ws.mkdir(parents=True)
    env = dict(os.environ, GIT_CONFIG_GLOBAL="/dev/null", GIT_CONFIG_NOSYSTEM="1")
    subprocess.run(["git", "init", "-q", str(ws)], check=True, env=env)
    (ws / ".codeloop").mkdir()
    (ws / ".codeloop" / "settings.json").write_text('{"permissions": {"deny": ["Bash(rm -rf *)"]}}\n')
    (ws / "README.md").write_text("hello\n")
    if "no_hooks_dir" in setup:
        for p in sorted((ws / ".git" / "hooks").iterdir()):
            p.unlink()
        (ws / ".git" / "hooks").rmdir()


def make_outside(outside: Path) -> None:
    (outside / "tree" / "sub").mkdir(parents=True)
    (outside / "victim.txt").write_text("precious\n")
    (outside / "tree" / "a.txt").write_text("a\n")
    (outside / "tree" / "sub" / "b.txt").write_text("b\n")


def _fill(text: str, values: dict[str, str]) -> str:
    for k, v in values.items():
        text = text.replace("{" + k + "}", v)
    return text


def _snapshot(paths: list[str]) -> dict[str, bytes | None]:
    out: dict[str, bytes | None] = {}
    for p in paths:
        try:
            out[p] = Path(p).read_bytes()
        except OSError:
            out[p] = None
    return out


def _count_descendants_alive(pids: list[int]) -> int:
    return sum(1 for pid in pids if Path(f"/proc/{pid}").exists())


class CorpusRunner:
    """Runs entries under one backend; ``sandbox_for`` is made once per runner."""

    def __init__(self, backend: str, tmp: Path, fixtures: Fixtures) -> None:
        self.backend = backend
        self.tmp = tmp
        self.fx = fixtures
        self.home = tmp / "home"
        self.outside = tmp / "outside"
        self.home.mkdir(exist_ok=True)
        self.outside.mkdir(exist_ok=True)
        make_home(self.home)
        make_outside(self.outside)
        self.sandboxes: dict[str, Sandbox] = {}
        self._n = 0

    def sandbox(self, ws: Path) -> Sandbox:
        mode = "off" if self.backend == "none" else "on"
        sb = Sandbox.probe({"mode": mode, "maxProcesses": TEST_LIMIT}, ws, self.home, backends=[self.backend],
                           env={"PATH": os.environ.get("PATH", "/usr/bin:/bin"), "HOME": str(self.home),
                                "LANG": "C.UTF-8"},
                           readable=[self.outside], temp_dir=self.tmp, state_dir=self.tmp / "state")
        sb._placeholders.idle = 0  # remove placeholders as soon as a command ends
        return sb

    def guarantees(self) -> dict[str, str]:
        ws = self.tmp / "probe-ws"
        ws.mkdir(exist_ok=True)
        sb = self.sandbox(ws)
        try:
            return sb.guarantees() if sb.active else {}
        finally:
            sb.close()

    def run_entry(self, entry: dict[str, Any]) -> Outcome:
        self._n += 1
        uid = f"{os.getpid()}-{self._n}-{uuid.uuid4().hex[:8]}"
        ws = self.tmp / f"ws-{self._n}"
        make_workspace(ws, entry.get("setup", []))
        host_tmp = Path(tempfile.gettempdir()) / f"codeloop-escape-{uid}"
        values = {
            "ws": str(ws), "home": str(self.home), "outside": str(self.outside), "host_tmp": str(host_tmp),
            "port": str(self.fx.port), "udp_port": str(self.fx.udp_port), "unix_sock": str(self.fx.unix_sock),
            "abstract": self.fx.abstract, "victim": str(self.fx.victim.pid if self.fx.victim else 0),
            "victim_cwd": str(self.fx.victim_cwd), "attempts": str(TEST_LIMIT * 4),
            "parent": str(os.getpid()), "python": os.path.realpath(sys.executable), "id": uid,
        }
        checks = {k: ([_fill(x, values) for x in v] if isinstance(v, list) else v)
                  for k, v in entry.get("checks", {}).items()}
        command = _fill(entry["command"], values)
        env = {"PATH": os.environ.get("PATH", "/usr/bin:/bin"), "HOME": str(self.home), "LANG": "C.UTF-8"}
        env.update({k: _fill(v, values) for k, v in entry.get("env", {}).items()})
        before = _snapshot(checks.get("unchanged", []))
        hits0 = (self.fx.hits.http, self.fx.hits.udp, self.fx.hits.unix)
        sb = self.sandbox(ws)
        out = Outcome(entry["id"], self.backend, "blocked")
        cleanup_paths = [host_tmp, Path(f"{host_tmp}.py"), Path(f"/usr/local/codeloop-escape-{uid}"),
                         Path(f"/etc/codeloop-escape-{uid}"), Path(f"/dev/shm/codeloop-escape-{uid}"),
                         Path(f"/tmp/codeloop-escape-{uid}")]
        try:
            if not sb.active and self.backend != "none":
                return Outcome(entry["id"], self.backend, "skipped", f"{self.backend} unavailable: "
                               f"{sb.unavailable_reason}")
            if entry.get("forkbomb"):
                if self.backend == "none" and entry["forkbomb"] != "bounded":
                    return Outcome(entry["id"], "none", "skipped", "never run a real fork bomb unsandboxed")
                return self._forkbomb(sb, entry, command, ws, env, checks, out)
            try:
                res = sb.run(["/bin/sh", "-c", command], ws, env=env, timeout=ENTRY_TIMEOUT)
                out.stdout, out.stderr = res.stdout, res.stderr
            except subprocess.TimeoutExpired:
                out.detail = "timed out (killed)"
            if any(k in checks for k in ("server_hits", "udp_hits", "unix_hits")):
                time.sleep(0.3)  # let the listeners count what reached them
            failures = self._judge(checks, before, hits0, out)
            if failures:
                out.status = "escaped"
                out.detail = "; ".join(failures)
            return out
        finally:
            sb.close()
            for p in cleanup_paths:
                try:
                    p.unlink()
                except OSError:
                    pass

    def _judge(self, checks: dict[str, Any], before: dict[str, bytes | None], hits0: tuple[int, int, int],
               out: Outcome) -> list[str]:
        bad: list[str] = []
        for p in checks.get("absent", []):
            if os.path.lexists(p):
                bad.append(f"{p} exists")
        for p in checks.get("exists", []):
            if not os.path.exists(p):
                bad.append(f"{p} is gone")
        for p in checks.get("no_file", []):
            if os.path.isfile(p):
                bad.append(f"{p} was created")
        now = _snapshot(list(before))
        for p, data in before.items():
            if now[p] != data:
                bad.append(f"{p} changed")
        for s in checks.get("stdout_lacks", []):
            if s in out.stdout:
                bad.append(f"output shows {s!r}")
        if checks.get("stdout_empty") and out.stdout.strip():
            bad.append(f"output: {out.stdout.strip()[:80]!r}")
        if "server_hits" in checks and self.fx.hits.http != hits0[0]:
            bad.append("the local HTTP server was reached")
        if "udp_hits" in checks and self.fx.hits.udp != hits0[1]:
            bad.append("the local UDP listener got a datagram")
        if "unix_hits" in checks and self.fx.hits.unix != hits0[2]:
            bad.append("a Unix socket outside was connected")
        if checks.get("victim_alive") and not self.fx.victim_alive():
            bad.append("the process outside was killed or stopped")
            self.fx.restart_victim()
        return bad

    def _forkbomb(self, sb: Sandbox, entry: dict[str, Any], command: str, ws: Path, env: dict[str, str],
                  checks: dict[str, Any], out: Outcome) -> Outcome:
        limit = TEST_LIMIT
        if "process-limit" not in sb.guarantees() and self.backend != "none":
            return Outcome(entry["id"], self.backend, "skipped", "no process limit here")
        if entry["forkbomb"] == "bounded":
            res = sb.run(["/bin/sh", "-c", command], ws, env=env, timeout=ENTRY_TIMEOUT)
            out.stdout, out.stderr = res.stdout, res.stderr
            try:
                n = int(res.stdout.split("forked", 1)[1].split()[0])
            except (IndexError, ValueError):
                out.status, out.detail = "escaped", f"no count: {res.stdout!r} {res.stderr[-200:]!r}"
                return out
            if n >= limit:
                out.status, out.detail = "escaped", f"{n} forks succeeded under a limit of {limit}"
            else:
                out.detail = f"{n} forks succeeded, then the limit ({limit}) held"
            return out
        # The real bash fork bomb: only after the bounded one held (checked by the caller's order).
        prep = sb.prepare(["/bin/sh", "-c", command], ws, env)
        proc = subprocess.Popen(prep.argv, cwd=prep.cwd, env=prep.env, pass_fds=prep.pass_fds,
                                start_new_session=True, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        host_ok = True
        try:
            deadline = time.monotonic() + BOMB_SECONDS
            while time.monotonic() < deadline:
                time.sleep(0.5)
                try:
                    subprocess.run(["true"], check=True, timeout=10)
                except (OSError, subprocess.SubprocessError):
                    host_ok = False
            peak = prep.cgroup.peak() if prep.cgroup is not None else None
        finally:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait()
            prep.cleanup()
        if not host_ok:
            out.status, out.detail = "escaped", "the host could not fork during the bomb"
        elif peak is not None and peak > limit:
            out.status, out.detail = "escaped", f"the cgroup peaked at {peak} tasks (limit {limit})"
        else:
            out.detail = f"held ({'peak ' + str(peak) + ' tasks' if peak is not None else 'host kept forking'})"
        return out


def run_all(backends: list[str], tmp: Path, ids: list[str] | None = None) -> list[Outcome]:
    (tmp / "victim-cwd").mkdir()
    fx = Fixtures(tmp, victim_cwd=tmp / "victim-cwd").start()
    try:
        outcomes = []
        for backend in backends:
            (tmp / backend).mkdir()
            runner = CorpusRunner(backend, tmp / backend, fx)
            given = runner.guarantees() if backend != "none" else {e["guarantee"]: "" for e in load_corpus()}
            bounded_held = False
            for entry in load_corpus():
                if ids and entry["id"] not in ids:
                    continue
                if entry["guarantee"] not in given:
                    outcomes.append(Outcome(entry["id"], backend, "skipped",
                                            f"{backend} does not guarantee {entry['guarantee']!r}"))
                    continue
                if entry.get("forkbomb") == "bash" and not bounded_held and backend != "none":
                    outcomes.append(Outcome(entry["id"], backend, "skipped",
                                            "the bounded fork bomb did not hold: the real one is not run"))
                    continue
                outcome = runner.run_entry(entry)
                if entry.get("forkbomb") == "bounded":
                    bounded_held = outcome.status == "blocked"
                outcomes.append(outcome)
        return outcomes
    finally:
        fx.stop()


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--backend", action="append", choices=["bubblewrap", "landlock", "none"],
                    help="none: the control run, unsandboxed (every attempt should succeed)")
    ap.add_argument("--only", action="append", help="entry ids")
    ap.add_argument("--json", action="store_true")
    args = ap.parse_args(argv)
    with tempfile.TemporaryDirectory(prefix="codeloop-corpus-") as tmp:
        outcomes = run_all(args.backend or ["bubblewrap", "landlock"], Path(os.path.realpath(tmp)), args.only)
    if args.json:
        print(json.dumps([o.to_json() for o in outcomes]))
    else:
        for o in outcomes:
            print(f"{o.backend:11} {o.status:8} {o.id:40} {o.detail}")
        for b in dict.fromkeys(o.backend for o in outcomes):
            ran = [o for o in outcomes if o.backend == b and o.status != "skipped"]
            esc = [o for o in ran if o.status == "escaped"]
            print(f"{b}: {len(ran)} escape attempts, {len(esc)} succeeded, "
                  f"{sum(o.backend == b and o.status == 'skipped' for o in outcomes)} not applicable")
    return 1 if any(o.status == "escaped" for o in outcomes) else 0


if __name__ == "__main__":
    sys.exit(main())
