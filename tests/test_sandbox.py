"""The sandbox service (codeloop.services.sandbox), for real: real bubblewrap, real Landlock.

- the setting and its parsing;
- finding the real home whatever HOME says;
- probing: why a backend is unavailable (bwrap missing, namespaces blocked the way Docker's
  seccomp profile blocks them, a kernel without Landlock, a read-only cgroup filesystem as root),
  failing closed in mode "on", saying so once in mode "auto", doing nothing in mode "off";
- ordinary work inside: pytest, pip install into the workspace's venv, npm test, git commit (in
  a repository and in a linked worktree), a local server on the sandbox's own loopback;
- the runner's contract: argv only, the process group kills the whole sandbox, the sandbox
  dies with its parent, inherited fds (code mode's pipe), resource limits, network on, the
  placeholders for missing protected paths, asyncio.

The escape attempts themselves are in test_sandbox_escapes.py.
"""

from __future__ import annotations

import asyncio
import base64
import hashlib
import json
import os
import shutil
import signal
import socket
import struct
import subprocess
import sys
import threading
import time
import uuid
import zipfile
from pathlib import Path

import pytest

from codeloop.services.sandbox import (
    Sandbox,
    SandboxSettings,
    parse_sandbox_setting,
    real_home,
    secret_homes,
    workspace_plan,
)
from codeloop.services.sandbox import launcher as L

ROOT = Path(__file__).resolve().parent.parent
PY = sys.executable
BACKENDS = ["bubblewrap", "landlock"]
GIT_ENV = {"GIT_CONFIG_GLOBAL": "/dev/null", "GIT_CONFIG_NOSYSTEM": "1", "GIT_AUTHOR_NAME": "t",
           "GIT_AUTHOR_EMAIL": "t@example.com", "GIT_COMMITTER_NAME": "t", "GIT_COMMITTER_EMAIL": "t@example.com"}


def base_env(**extra: str) -> dict[str, str]:
    env = {"PATH": os.environ.get("PATH", "/usr/bin:/bin"), "LANG": "C.UTF-8", **GIT_ENV}
    env.update(extra)
    return env


@pytest.fixture
def home(tmp_path: Path) -> Path:
    h = Path(os.path.realpath(tmp_path)) / "home"
    (h / ".ssh").mkdir(parents=True)
    (h / ".ssh" / "id_rsa").write_text("SECRET-KEY\n")
    (h / ".gitconfig").write_text("[user]\n")
    return h


@pytest.fixture
def ws(tmp_path: Path) -> Path:
    w = Path(os.path.realpath(tmp_path)) / "ws"
    w.mkdir()
    return w


def make(backend: str, ws: Path, home: Path, tmp: Path, **kw) -> Sandbox:
    settings = kw.pop("settings", {"mode": "on"})
    sb = Sandbox.probe(settings, ws, home, backends=[backend], env=base_env(HOME=str(home)),
                       temp_dir=tmp, state_dir=tmp / "state", **kw)
    if not sb.active:
        pytest.skip(f"{backend} is not available here: {sb.unavailable_reason}")
    return sb


# -- the setting ----------------------------------------------------------------------------------


def test_setting_shorthands_and_object() -> None:
    assert parse_sandbox_setting(None) == (SandboxSettings(), [])
    assert SandboxSettings().mode == "auto" and SandboxSettings().network is False and SandboxSettings().auto_allow
    for s in ("auto", "on", "off", " ON "):
        settings, problems = parse_sandbox_setting(s)
        assert settings.mode == s.strip().lower() and problems == []
    assert parse_sandbox_setting(False)[0].mode == "off"
    assert parse_sandbox_setting(True)[0].mode == "on"
    settings, problems = parse_sandbox_setting({"mode": "on", "network": True, "autoAllow": False, "maxProcesses": 64})
    assert problems == []
    assert (settings.mode, settings.network, settings.auto_allow, settings.max_processes) == ("on", True, False, 64)
    assert settings.to_json() == {"mode": "on", "network": True, "autoAllow": False, "maxProcesses": 64, "mcp": False}


def test_setting_bad_values_are_reported_and_defaults_kept() -> None:
    settings, problems = parse_sandbox_setting("sometimes")
    assert settings.mode == "auto" and "sometimes" in problems[0] and '"auto", "on" or "off"' in problems[0]
    settings, problems = parse_sandbox_setting({"mode": "of", "network": "yes", "autoAllow": True, "colour": 1,
                                                "maxProcesses": 2})
    assert settings.mode == "auto" and settings.network is False and settings.auto_allow is True
    assert settings.max_processes == SandboxSettings().max_processes
    text = "\n".join(problems)
    assert "sandbox.mode" in text and "sandbox.network" in text and "sandbox.colour is unknown" in text
    assert "sandbox.maxProcesses" in text and len(problems) == 4
    settings, problems = parse_sandbox_setting(42)
    assert settings == SandboxSettings() and "42" in problems[0]


# -- the real home --------------------------------------------------------------------------------


def test_real_home_comes_from_passwd_not_home(tmp_path: Path) -> None:
    import pwd

    expected = pwd.getpwuid(os.getuid()).pw_dir
    code = "from codeloop.services.sandbox import real_home; print(real_home())"
    out = subprocess.run([PY, "-c", code], env={**os.environ, "HOME": str(tmp_path)}, capture_output=True,
                         text=True, check=True).stdout.strip()
    assert out == expected != str(tmp_path)
    assert real_home() == Path(expected)
    homes = secret_homes(Path(expected), {"HOME": str(tmp_path)})
    assert homes[:2] == [Path(expected), tmp_path]  # the secrets under both are hidden


def test_home_secrets_hidden_whatever_home_says(ws: Path, home: Path, tmp_path: Path) -> None:
    other = tmp_path / "other-home"
    other.mkdir()
    for backend in BACKENDS:
        sb = make(backend, ws, home, tmp_path)
        try:
            res = sb.run(["/bin/sh", "-c", f"echo HOME=$HOME; cat {home}/.ssh/id_rsa; cat {home}/.gitconfig"], ws,
                         env=base_env(HOME=str(other)))
            assert f"HOME={other}" in res.stdout
            assert "SECRET-KEY" not in res.stdout and "[user]" in res.stdout, (backend, res)
        finally:
            sb.close()


# -- probing ----------------------------------------------------------------------------------------

_NS_FLAGS = 0x7E020000  # CLONE_NEWNS | NEWCGROUP | NEWUTS | NEWIPC | NEWUSER | NEWPID | NEWNET
_SYSCALLS = {"x86_64": {"clone": 56, "unshare": 272, "clone3": 435, "setns": 308, "landlock": 444},
             "aarch64": {"clone": 220, "unshare": 97, "clone3": 435, "setns": 268, "landlock": 444}}


def _blocking_filter(block_namespaces: bool, block_landlock: bool) -> bytes:
    """A seccomp program like Docker's default profile (no new namespaces) and/or a kernel
    without Landlock (ENOSYS), for the probe to meet."""
    arch = L.machine()
    nr = _SYSCALLS[arch]
    prog: list[tuple[int, int, int, int]] = [(0x20, 0, 0, 0)]  # ld nr

    def deny(num: int, err: int) -> None:
        prog.extend([(0x15, 0, 1, num), (0x06, 0, 0, L.RET_ERRNO | err)])

    if block_landlock:
        for n in (444, 445, 446):
            deny(n, 38)  # ENOSYS
    if block_namespaces:
        deny(nr["clone3"], 38)  # glibc falls back to clone(2), whose flags can be checked
        deny(nr["setns"], 1)
        for name in ("clone", "unshare"):
            prog.extend([(0x15, 0, 4, nr[name]), (0x20, 0, 0, 16), (0x45, 0, 1, _NS_FLAGS),
                         (0x06, 0, 0, L.RET_ERRNO | 1), (0x20, 0, 0, 0)])
    prog.append((0x06, 0, 0, L.RET_ALLOW))
    return b"".join(struct.pack("=HBBI", *i) for i in prog)


_CHILD = r"""
import json, sys
sys.path.insert(0, sys.argv[1])
from codeloop.services.sandbox import Sandbox, SandboxUnavailable, launcher as L
prog = bytes.fromhex(sys.argv[2])
if prog:
    L.set_no_new_privs()
    L.apply_seccomp(prog)
env = json.loads(sys.argv[6])
sb = Sandbox.probe(sys.argv[3], sys.argv[4], sys.argv[5], cache=False, env=env, state_dir=sys.argv[4] + "/../state")
out = sb.info()
out["reason"] = sb.unavailable_reason
try:
    p = sb.prepare(["/bin/true"], sys.argv[4])
    out["argv0"] = p.argv[0]
    p.cleanup()
except SandboxUnavailable as e:
    out["refused"] = str(e)
sb.close()
print(json.dumps(out))
"""


def _probe_in_child(mode: str, ws: Path, home: Path, *, prog: bytes = b"", env: dict | None = None,
                    wrap: list[str] = ()) -> dict:
    env = env or base_env()
    proc = subprocess.run([*wrap, PY, "-c", _CHILD, str(ROOT / "server"), prog.hex(), mode, str(ws), str(home),
                           json.dumps(env)], capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, proc.stderr
    return json.loads(proc.stdout.strip().splitlines()[-1])


def test_probe_reports_a_missing_bwrap(ws: Path, home: Path) -> None:
    out = _probe_in_child("auto", ws, home, env=base_env(PATH="/nonexistent"))
    assert "bubblewrap is not installed" in out["unavailable"]["bubblewrap"]
    assert "apt install bubblewrap" in out["unavailable"]["bubblewrap"]
    if out["backend"] == "landlock":  # the next backend took over, and says what it cannot do
        assert out["description"].startswith("sandbox: Landlock")
        assert any("PID namespace" in x for x in out["limitations"])


@pytest.mark.skipif(L.machine() not in _SYSCALLS, reason="filter written for x86_64/aarch64")
def test_probe_meets_blocked_namespaces_and_no_landlock(ws: Path, home: Path) -> None:
    prog = _blocking_filter(block_namespaces=True, block_landlock=True)
    auto = _probe_in_child("auto", ws, home, prog=prog)
    assert auto["backend"] == "none"
    bw, ll = auto["unavailable"]["bubblewrap"], auto["unavailable"]["landlock"]
    assert "namespace" in bw.lower() and "Operation not permitted" in bw and "fix:" in bw, bw
    assert "has no Landlock" in ll and "5.13" in ll, ll
    assert auto["description"].startswith("sandbox: none — commands run unsandboxed because no sandbox works here")
    assert "bubblewrap" in auto["description"] and "landlock" in auto["description"]
    assert "refused" not in auto and auto["argv0"] == "/bin/true"  # auto: runs, unsandboxed, and says so

    on = _probe_in_child("on", ws, home, prog=prog)
    assert on["backend"] == "none" and on["description"].startswith("sandbox: on, but unavailable")
    refusal = on["refused"]
    assert 'The sandbox is on (setting "sandbox": "on")' in refusal and "not run" in refusal
    assert "bubblewrap:" in refusal and "landlock:" in refusal and "fix:" in refusal
    assert 'set "sandbox" to "auto" or "off"' in refusal

    off = _probe_in_child("off", ws, home, prog=prog)
    assert off["backend"] == "none" and off["unavailable"] == {} and off["argv0"] == "/bin/true"
    assert off["description"] == "sandbox: off (setting) — commands run unsandboxed"

    # Namespaces blocked but Landlock there: Landlock takes over.
    ll_only = _probe_in_child("on", ws, home, prog=_blocking_filter(block_namespaces=True, block_landlock=False))
    assert ll_only["backend"] == "landlock" and "refused" not in ll_only
    assert "bubblewrap" in ll_only["reason"]


@pytest.mark.skipif(os.geteuid() != 0 or not shutil.which("unshare"), reason="needs root")
def test_root_without_a_writable_cgroup_says_there_is_no_process_limit(ws: Path, home: Path) -> None:
    from codeloop.services.sandbox.limits import _pids_hierarchy

    if _pids_hierarchy() is None:
        pytest.skip("no pids cgroup here")
    ro = ("for m in $(awk '$3 ~ /^cgroup/ {print $2}' /proc/mounts); do mount -o remount,bind,ro $m || exit 3; done; "
          'exec "$@"')
    out = _probe_in_child("on", ws, home, wrap=["unshare", "-m", "--propagation", "private", "sh", "-c", ro, "sh"])
    assert out["backend"] == "bubblewrap" and out["processLimit"] is None
    assert "process-limit" not in out["guarantees"]
    note = " ".join(out["limitations"])
    assert "no process limit" in note and "RLIMIT_NPROC does not apply" in note and "not writable" in note
    assert out["description"].endswith("no process limit")


def test_probe_is_cached_and_describes_each_backend(ws: Path, home: Path, tmp_path: Path) -> None:
    for backend in BACKENDS:
        sb = make(backend, ws, home, tmp_path)
        again = Sandbox.probe("on", ws, home, backends=[backend], temp_dir=tmp_path, state_dir=tmp_path / "s")
        try:
            assert again.probes[backend] is sb.probes[backend]  # cached: not probed twice
            line = sb.describe()
            assert "\n" not in line and line.startswith("sandbox: ")
            assert ("bubblewrap" in line) == (backend == "bubblewrap") and ("Landlock" in line) == (backend == "landlock")
            assert "network off" in line and "home secrets hidden" in line
            g = sb.guarantees()
            assert {"fs", "tmp", "secrets", "network", "sockets"} <= set(g)
            assert ("workspace-config" in g) == (backend == "bubblewrap")
            assert sb.info()["backend"] == backend and sb.unavailable_reason is None
            # autoAllow only where an unknown command is really contained (not under Landlock)
            assert sb.auto_allow == (backend == "bubblewrap") == sb.info()["autoAllow"]
        finally:
            sb.close()
            again.close()


# -- ordinary work inside ---------------------------------------------------------------------------


@pytest.mark.parametrize("backend", BACKENDS)
def test_pytest_runs_inside(backend: str, ws: Path, home: Path, tmp_path: Path) -> None:
    (ws / "calc.py").write_text("def add(a, b):\n    return a + b\n")
    (ws / "test_calc.py").write_text(
        "import tempfile\nfrom calc import add\n\n"
        "def test_add(tmp_path):\n    (tmp_path / 'x').write_text('1')\n    assert add(1, 2) == 3\n\n"
        "def test_tempfile():\n    with tempfile.NamedTemporaryFile() as f:\n        f.write(b'x')\n")
    sb = make(backend, ws, home, tmp_path)
    try:
        res = sb.run([PY, "-m", "pytest", "-q", "-p", "no:randomly"], ws, timeout=120)
        assert res.returncode == 0, res.stdout + res.stderr
        assert "2 passed" in res.stdout
        assert (ws / ".pytest_cache").is_dir()  # written in the workspace
    finally:
        sb.close()


def _wheel(dest: Path) -> Path:
    files = {"tinypkg/__init__.py": 'def hello():\n    return "hi from tinypkg"\n',
             "tinypkg-0.1.dist-info/METADATA": "Metadata-Version: 2.1\nName: tinypkg\nVersion: 0.1\n",
             "tinypkg-0.1.dist-info/WHEEL": "Wheel-Version: 1.0\nGenerator: test\nRoot-Is-Purelib: true\nTag: py3-none-any\n"}
    record = []
    for name, text in files.items():
        digest = base64.urlsafe_b64encode(hashlib.sha256(text.encode()).digest()).rstrip(b"=").decode()
        record.append(f"{name},sha256={digest},{len(text)}")
    files["tinypkg-0.1.dist-info/RECORD"] = "\n".join(record + ["tinypkg-0.1.dist-info/RECORD,,"]) + "\n"
    path = dest / "tinypkg-0.1-py3-none-any.whl"
    with zipfile.ZipFile(path, "w") as z:
        for name, text in files.items():
            z.writestr(name, text)
    return path


def test_pip_install_into_the_workspace_venv(ws: Path, home: Path, tmp_path: Path) -> None:
    subprocess.run([PY, "-m", "venv", str(ws / ".venv")], check=True, timeout=300)
    wheel = _wheel(ws)
    for backend in BACKENDS:
        sb = make(backend, ws, home, tmp_path)
        try:
            cmd = (f".venv/bin/python -m pip install --no-index --disable-pip-version-check {wheel.name} && "
                   ".venv/bin/python -c 'import tinypkg; print(tinypkg.hello())' && "
                   ".venv/bin/python -m pip uninstall -y -q tinypkg")
            res = sb.run(["/bin/sh", "-c", cmd], ws, timeout=300)
            assert res.returncode == 0, (backend, res.stdout[-2000:], res.stderr[-2000:])
            assert "Successfully installed tinypkg-0.1" in res.stdout and "hi from tinypkg" in res.stdout
        finally:
            sb.close()


@pytest.mark.skipif(not shutil.which("npm"), reason="npm is not installed")
@pytest.mark.parametrize("backend", BACKENDS)
def test_npm_test_runs_inside(backend: str, ws: Path, home: Path, tmp_path: Path) -> None:
    (ws / "package.json").write_text(json.dumps({"name": "tiny", "version": "1.0.0", "scripts": {"test": "node test.js"}}))
    (ws / "test.js").write_text(
        "const fs = require('fs'), os = require('os'), path = require('path');\n"
        "const assert = require('assert');\nassert.strictEqual([1, 2].map(x => x * 2).join(), '2,4');\n"
        "fs.writeFileSync(path.join(os.tmpdir(), 'npm-tmp.txt'), 'x');\n"
        "fs.writeFileSync('out.txt', 'written');\nconsole.log('tiny tests passed');\n")
    sb = make(backend, ws, home, tmp_path)
    try:
        res = sb.run(["npm", "test"], ws, env=base_env(HOME=str(home)), timeout=120)
        assert res.returncode == 0, res.stdout + res.stderr
        assert "tiny tests passed" in res.stdout and (ws / "out.txt").read_text() == "written"
    finally:
        sb.close()


def _git(cwd: Path, *args: str) -> str:
    return subprocess.run(["git", *args], cwd=cwd, env={**os.environ, **GIT_ENV}, check=True, capture_output=True,
                          text=True).stdout


@pytest.mark.parametrize("backend", BACKENDS)
def test_git_status_and_commit_inside(backend: str, ws: Path, home: Path, tmp_path: Path) -> None:
    _git(ws, "init", "-q")
    (ws / "a.txt").write_text("one\n")
    sb = make(backend, ws, home, tmp_path)
    try:
        res = sb.run(["/bin/sh", "-c", "git status --short && git add -A && git commit -qm first && git log --oneline"],
                     ws, env=base_env(HOME=str(home)))
        assert res.returncode == 0, res.stderr
        assert "?? a.txt" in res.stdout and "first" in res.stdout
        assert "first" in _git(ws, "log", "--oneline")
    finally:
        sb.close()


@pytest.mark.parametrize("backend", BACKENDS)
def test_git_commit_in_a_linked_worktree(backend: str, home: Path, tmp_path: Path) -> None:
    main = Path(os.path.realpath(tmp_path)) / "main"
    main.mkdir()
    _git(main, "init", "-q")
    (main / "f.txt").write_text("x\n")
    _git(main, "add", "-A")
    _git(main, "commit", "-qm", "base")
    wt = Path(os.path.realpath(tmp_path)) / "wt"
    _git(main, "worktree", "add", "-q", "-b", "feature", str(wt))
    plan = workspace_plan(wt)
    assert wt / ".git" in plan.read_only and main / ".git" / "hooks" in plan.read_only
    assert main / ".git" in plan.writable_outside
    config_before = (main / ".git" / "config").read_bytes()
    sb = make(backend, wt, home, tmp_path)
    try:
        cmd = ("echo more >> f.txt && git commit -qam second && git log --oneline | head -1; "
               "echo evil > " + str(main / ".git" / "hooks" / "pre-commit") + "; git config core.pager evil; "
               "echo pwned > " + str(main / "f.txt"))
        res = sb.run(["/bin/sh", "-c", cmd], wt, env=base_env(HOME=str(home)))
        assert "second" in res.stdout, res.stderr
        assert "second" in _git(main, "log", "--oneline", "feature")
        assert (main / "f.txt").read_text() == "x\n"  # the main worktree's files stay read-only
        if backend == "bubblewrap":  # Landlock cannot protect paths inside writable directories
            assert not (main / ".git" / "hooks" / "pre-commit").exists()
            assert (main / ".git" / "config").read_bytes() == config_before
    finally:
        sb.close()
        (main / ".git" / "hooks" / "pre-commit").unlink(missing_ok=True)


def test_a_local_server_on_the_sandbox_loopback(ws: Path, home: Path, tmp_path: Path) -> None:
    """Network off still leaves bubblewrap's own loopback: a test suite's local server works."""
    sb = make("bubblewrap", ws, home, tmp_path)
    script = ("import http.server, threading, urllib.request\n"
              "s = http.server.ThreadingHTTPServer(('127.0.0.1', 0), http.server.SimpleHTTPRequestHandler)\n"
              "threading.Thread(target=s.serve_forever, daemon=True).start()\n"
              "print(urllib.request.urlopen(f'http://127.0.0.1:{s.server_address[1]}/', timeout=5).status)\n")
    try:
        res = sb.run([PY, "-c", script], ws)
        assert res.stdout.strip() == "200", res.stderr
    finally:
        sb.close()


# -- the runner's contract -----------------------------------------------------------------------


def _procs_with(marker: str, prefix: str = "") -> list[int]:
    """Processes whose command line has ``marker`` (and starts with ``prefix``)."""
    out = []
    for d in Path("/proc").iterdir():
        if d.name.isdigit():
            try:
                cmd = (d / "cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace")
            except OSError:
                continue
            if marker in cmd and cmd.startswith(prefix):
                out.append(int(d.name))
    return out


def _wait_gone(marker: str, seconds: float = 5.0) -> list[int]:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        left = [p for p in _procs_with(marker) if not _zombie(p)]
        if not left:
            return []
        time.sleep(0.05)
    return [p for p in _procs_with(marker) if not _zombie(p)]


def _zombie(pid: int) -> bool:
    try:
        return Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0] in ("Z", "X")
    except OSError:
        return True


@pytest.mark.parametrize("backend", BACKENDS)
def test_prepare_is_argv_only_and_the_group_kill_stops_everything(backend: str, ws: Path, home: Path,
                                                                   tmp_path: Path) -> None:
    sb = make(backend, ws, home, tmp_path)
    marker = f"31{uuid.uuid4().int % 10**6}.5"
    try:
        prep = sb.prepare(["/bin/sh", "-c", f"(setsid sleep {marker} &) ; sleep {marker} & sleep {marker}"], ws,
                          base_env(OPENAI_API_KEY="sk-x"))
        assert prep.preexec_fn is None and prep.start_new_session and prep.sandboxed and prep.backend == backend
        assert "OPENAI_API_KEY" in prep.removed_env and "OPENAI_API_KEY" not in prep.env
        assert prep.env["CODELOOP_SANDBOX"] == backend
        assert prep.pass_fds == ()  # self-contained: the MCP SDK's stdio client can spawn it too
        status = sb.run(["/bin/sh", "-c", "grep -E '^(Seccomp|NoNewPrivs):' /proc/self/status"], ws).stdout
        assert "Seccomp:\t2" in status and "NoNewPrivs:\t1" in status, status  # the filter is on
        proc = subprocess.Popen(prep.argv, cwd=prep.cwd, env=prep.env, pass_fds=prep.pass_fds,
                                start_new_session=True)
        deadline = time.monotonic() + 10
        while len(_procs_with(marker, "sleep ")) < 3 and time.monotonic() < deadline:
            time.sleep(0.05)
        assert len(_procs_with(marker, "sleep ")) >= 3
        os.killpg(proc.pid, signal.SIGTERM)  # what the runner does
        proc.wait(10)
        prep.cleanup()  # the runner's last step: under Landlock the cgroup (as root) takes the setsid'd one
        left = _wait_gone(marker)
        if backend == "bubblewrap" or prep.cgroup is not None:
            assert left == [], "something survived the sandbox"
        else:
            assert len(left) <= 1  # Landlock without a cgroup: a setsid'd daemon is out of reach
    finally:
        for pid in _procs_with(marker):
            os.kill(pid, signal.SIGKILL)
        sb.close()


_PARENT = r"""
import os, sys, subprocess, time
sys.path.insert(0, sys.argv[1])
from codeloop.services.sandbox import Sandbox
sb = Sandbox.probe("on", sys.argv[2], sys.argv[3], backends=[sys.argv[4]], state_dir=sys.argv[2] + "/../state",
                   temp_dir=sys.argv[2] + "/..")  # this process is killed: nothing of it may stay in /tmp
prep = sb.prepare(["/bin/sh", "-c", "sleep %s & sleep %s" % (sys.argv[5], sys.argv[5])], sys.argv[2])
p = subprocess.Popen(prep.argv, cwd=prep.cwd, env=prep.env, pass_fds=prep.pass_fds, start_new_session=True)
print(p.pid, flush=True)
time.sleep(300)
"""


@pytest.mark.parametrize("backend", BACKENDS)
def test_the_sandbox_dies_with_its_parent(backend: str, ws: Path, home: Path) -> None:
    marker = f"32{uuid.uuid4().int % 10**6}.5"
    parent = subprocess.Popen([PY, "-c", _PARENT, str(ROOT / "server"), str(ws), str(home), backend, marker],
                              stdout=subprocess.PIPE, text=True)
    try:
        child = int(parent.stdout.readline())
        deadline = time.monotonic() + 15
        while len(_procs_with(marker, "sleep ")) < 2 and time.monotonic() < deadline:
            time.sleep(0.05)
        assert len(_procs_with(marker, "sleep ")) >= 2  # the command runs (bwrap is set up)
        parent.kill()  # SIGKILL: no cleanup of any kind in the parent
        parent.wait()
        if backend == "bubblewrap":
            assert _wait_gone(marker) == []
        else:  # Landlock: the direct child dies (parent-death signal); its children are orphaned, still confined
            deadline = time.monotonic() + 5
            while not _zombie(child) and time.monotonic() < deadline:
                time.sleep(0.05)
            assert _zombie(child)
    finally:
        for pid in _procs_with(marker):
            os.kill(pid, signal.SIGKILL)


@pytest.mark.parametrize("backend", BACKENDS)
def test_an_inherited_pipe_reaches_the_sandboxed_program(backend: str, ws: Path, home: Path, tmp_path: Path) -> None:
    """Code mode talks to its program over an inherited pipe: pass_fds survives the sandbox."""
    sb = make(backend, ws, home, tmp_path)
    r_out, w_out = os.pipe()
    r_in, w_in = os.pipe()
    try:
        prog = (f"import os; req = os.read({r_in}, 100); os.write({w_out}, b'reply to ' + req)")
        prep = sb.prepare([PY, "-c", prog], ws, pass_fds=[w_out, r_in])
        proc = subprocess.Popen(prep.argv, cwd=prep.cwd, env=prep.env, pass_fds=prep.pass_fds, start_new_session=True)
        os.close(w_out)
        os.close(r_in)
        os.write(w_in, b"call 1")
        os.close(w_in)
        assert os.read(r_out, 100) == b"reply to call 1"
        assert proc.wait(30) == 0
        prep.cleanup()
    finally:
        os.close(r_out)
        sb.close()


@pytest.mark.parametrize("backend", BACKENDS + ["none"])
def test_resource_limits_apply_in_every_mode(backend: str, ws: Path, home: Path, tmp_path: Path) -> None:
    if backend == "none":
        sb = Sandbox.probe("off", ws, home, env=base_env(), temp_dir=tmp_path, state_dir=tmp_path / "state")
    else:
        sb = make(backend, ws, home, tmp_path)
    try:
        t0 = time.monotonic()
        res = sb.run([PY, "-c", "while True: pass"], ws, rlimits={"cpu": 1}, timeout=60)
        # killed by SIGXCPU or SIGKILL (bubblewrap reports a signal death as 128 + the signal)
        assert res.returncode in (-signal.SIGXCPU, -signal.SIGKILL, 128 + signal.SIGXCPU, 128 + signal.SIGKILL), res
        assert time.monotonic() - t0 < 30
        res = sb.run([PY, "-c", "import resource; print(resource.getrlimit(resource.RLIMIT_NOFILE))"], ws,
                     rlimits={"nofile": (64, 64)})
        assert res.stdout.strip() == "(64, 64)", res.stderr
        with pytest.raises(ValueError):
            sb.prepare(["true"], ws, rlimits={"bogus": 1})
    finally:
        sb.close()


@pytest.mark.parametrize("backend", BACKENDS)
def test_network_on_reaches_a_local_server(backend: str, ws: Path, home: Path, tmp_path: Path) -> None:
    srv = socket.socket()
    srv.bind(("127.0.0.1", 0))
    srv.listen(4)
    port = srv.getsockname()[1]
    got: list[bytes] = []

    def accept() -> None:
        srv.settimeout(20)
        try:
            conn, _ = srv.accept()
            got.append(conn.recv(10))
            conn.close()
        except OSError:
            pass

    t = threading.Thread(target=accept)
    t.start()
    sb = make(backend, ws, home, tmp_path, settings={"mode": "on", "network": True})
    try:
        assert "network" not in sb.guarantees() and "network on" in sb.describe() and not sb.auto_allow
        code = f"import socket; socket.create_connection(('127.0.0.1', {port}), timeout=5).sendall(b'hello')"
        res = sb.run([PY, "-c", code], ws)
        assert res.returncode == 0, res.stderr
        t.join(20)
        assert got == [b"hello"]
        # The same sandbox with the network off for one command (code mode's choice).
        res = sb.run([PY, "-c", code], ws, network=False)
        assert res.returncode != 0
    finally:
        srv.close()
        sb.close()


def test_placeholders_for_missing_protected_paths(ws: Path, home: Path, tmp_path: Path) -> None:
    _git(ws, "init", "-q")
    shutil.rmtree(ws / ".git" / "hooks")
    sb = make("bubblewrap", ws, home, tmp_path)
    sb._placeholders.idle = 0.3
    try:
        res = sb.run(["/bin/sh", "-c", "ls -a; echo x > .mcp.json; echo '{}' > .vscode/settings.json"], ws)
        assert ".mcp.json" in res.stdout and ".vscode" in res.stdout  # mount points, read-only
        assert "Read-only file system" in res.stderr
        assert not (ws / ".mcp.json").is_file() and not (ws / ".vscode" / "settings.json").exists()
        assert (ws / ".git" / "hooks").is_dir()  # persistent: git's own directory
        time.sleep(0.4)
        sb._placeholders.sweep()
        for name in (".mcp.json", ".vscode", ".claude", ".codeloop"):
            assert not (ws / name).exists(), name  # gone once unused
        # What a crashed codeloop left behind is removed at the next start.
        (ws / ".claude").mkdir()
        (tmp_path / "state" / "placeholders.json").write_text(json.dumps({str(ws / ".claude"): 2 ** 22 + 12345}))
        sb2 = make("bubblewrap", ws, home, tmp_path)
        sb2.close()
        assert not (ws / ".claude").exists()
    finally:
        sb.close()
    assert not (ws / ".mcp.json").exists()


def test_arun_times_out_and_kills_the_sandbox(ws: Path, home: Path, tmp_path: Path) -> None:
    marker = f"33{uuid.uuid4().int % 10**6}.5"
    for backend in BACKENDS:
        sb = make(backend, ws, home, tmp_path)
        try:
            res = asyncio.run(sb.arun(["/bin/sh", "-c", "echo hello; echo oops >&2"], ws))
            assert (res.returncode, res.stdout, res.stderr) == (0, "hello\n", "oops\n")
            with pytest.raises(subprocess.TimeoutExpired):
                asyncio.run(sb.arun(["/bin/sh", "-c", f"sleep {marker}"], ws, timeout=1))
            assert _wait_gone(marker) == []
        finally:
            sb.close()


def test_off_mode_runs_as_today(ws: Path, home: Path, tmp_path: Path) -> None:
    sb = Sandbox.probe("off", ws, home, env=base_env(OPENAI_API_KEY="sk-x"), temp_dir=tmp_path)
    try:
        assert sb.backend == "none" and sb.probes == {} and not sb.refuses and sb.guarantees() == {}
        prep = sb.prepare(["/bin/echo", "hi"], ws)
        assert prep.argv == ["/bin/echo", "hi"] and prep.env["OPENAI_API_KEY"] == "sk-x" and not prep.sandboxed
        res = sb.run(["/bin/sh", "-c", f"echo ok > {home}/written"], ws)
        assert res.returncode == 0 and (home / "written").exists()
    finally:
        sb.close()


def test_workspace_plan_protects_git_and_editor_config(ws: Path) -> None:
    _git(ws, "init", "-q")
    (ws / ".vscode").mkdir()
    plan = workspace_plan(ws)
    assert ws / ".git" in plan.self_binds
    assert {ws / ".git" / "hooks", ws / ".git" / "config", ws / ".vscode"} <= set(plan.read_only)
    assert {p.path for p in plan.placeholders} == {ws / ".codeloop", ws / ".claude", ws / ".mcp.json"}
    assert plan.writable_outside == []
    sub = ws / "pkg"
    sub.mkdir()
    inner = workspace_plan(sub)  # a workspace inside a repository: its git dir must stay writable
    assert ws / ".git" in inner.writable_outside and ws / ".git" / "hooks" in inner.read_only


def test_the_documented_settings_parse() -> None:
    """docs/sandbox.md's JSON examples are valid settings, and its table names every key."""
    import re

    doc = (ROOT / "docs" / "sandbox.md").read_text(encoding="utf-8")
    blocks = re.findall(r"```json\n(.*?)```", doc, re.S)
    assert len(blocks) >= 2
    for block in blocks:
        value = json.loads(block)["sandbox"]
        settings, problems = parse_sandbox_setting(value)
        assert problems == [], (block, problems)
    assert parse_sandbox_setting(json.loads(blocks[1])["sandbox"])[0].to_json() == json.loads(blocks[1])["sandbox"]
    table_keys = set(re.findall(r"^\| `(\w+)` \|", doc, re.M))
    assert table_keys == {info.alias or name for name, info in SandboxSettings.model_fields.items()}


_MCP_SERVER = '''
import os
from mcp.server.mcpserver import MCPServer

app = MCPServer("sandboxed")


@app.tool()
def where() -> str:
    """Say where this server runs, and try to write the home directory."""
    try:
        with open(os.path.join(os.environ["HOME"], "written-by-mcp"), "w") as f:
            f.write("x")
        wrote = "wrote the home"
    except OSError as e:
        wrote = "home refused: " + e.strerror
    return os.environ.get("CODELOOP_SANDBOX", "none") + "; " + wrote


app.run()
'''


@pytest.mark.parametrize("backend", BACKENDS)
def test_an_mcp_stdio_server_runs_inside(backend: str, ws: Path, home: Path, tmp_path: Path) -> None:
    """The prepared argv is all the official MCP SDK's stdio client needs (it takes no fds or
    preexec_fn): a real MCPServer (the SDK's server API) runs sandboxed and answers a tool call."""
    pytest.importorskip("mcp")
    from mcp import ClientSession, StdioServerParameters
    from mcp.client.stdio import stdio_client

    (ws / "server.py").write_text(_MCP_SERVER)
    sb = make(backend, ws, home, tmp_path)

    async def call() -> str:
        prep = sb.prepare([PY, str(ws / "server.py")], ws, base_env(HOME=str(home)))
        params = StdioServerParameters(command=prep.argv[0], args=prep.argv[1:], env=prep.env, cwd=prep.cwd)
        try:
            async with stdio_client(params) as (r, w):
                async with ClientSession(r, w) as session:
                    await session.initialize()
                    result = await session.call_tool("where", {})
                    return result.content[0].text
        finally:
            prep.cleanup()

    try:
        text = asyncio.run(asyncio.wait_for(call(), 60))
        assert text.startswith(f"{backend}; home refused"), text
        assert not (home / "written-by-mcp").exists()
    finally:
        sb.close()
