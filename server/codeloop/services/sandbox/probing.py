"""What probing a backend checks and how its answer is read: the prerequisites (bwrap installed,
Landlock in the kernel), the trivial command a probe runs in the sandbox (it writes in the
workspace, tries to write outside, forks up to three times the process limit), the verdict on
its output, and the hints that say how to make a backend work. ``core.probe_backend`` runs it."""

from __future__ import annotations

import errno
import json
import os
import subprocess
from pathlib import Path

from codeloop.services.sandbox import launcher as L
from codeloop.services.sandbox.backends import python_executable
from codeloop.services.sandbox.model import BackendProbe

PROBE_TIMEOUT = 20.0


def _read(path: str) -> str:
    try:
        return Path(path).read_text().strip()
    except OSError:
        return ""


def _in_container() -> str:
    if os.path.exists("/.dockerenv"):
        return "docker"
    if os.path.exists("/run/.containerenv"):
        return "podman"
    cg = _read("/proc/1/cgroup")
    for word in ("docker", "kubepods", "containerd", "lxc"):
        if word in cg:
            return word
    return ""


def _userns_hint() -> str:
    if _read("/proc/sys/kernel/apparmor_restrict_unprivileged_userns") == "1":
        return ("Ubuntu's AppArmor restricts unprivileged user namespaces: install an AppArmor profile "
                "for bwrap (e.g. the apparmor package's extras bwrap-userns-restrict in /etc/apparmor.d, "
                "then reload AppArmor) or set sysctl kernel.apparmor_restrict_unprivileged_userns=0")
    if _read("/proc/sys/kernel/unprivileged_userns_clone") == "0":
        return "enable unprivileged user namespaces: sysctl kernel.unprivileged_userns_clone=1"
    if _read("/proc/sys/user/max_user_namespaces") == "0":
        return "enable user namespaces: sysctl user.max_user_namespaces=15000"
    where = _in_container()
    if where:
        return (f"inside a container ({where}) the default seccomp/AppArmor profile blocks the namespaces "
                "bubblewrap needs: run it with --security-opt seccomp=unconfined --security-opt "
                "apparmor=unconfined (or --privileged), or rely on Landlock")
    return "allow user namespaces for bwrap (see the bubblewrap documentation for your distribution)"


def _bwrap_version(bwrap: str) -> str:
    try:
        out = subprocess.run([bwrap, "--version"], capture_output=True, text=True, timeout=5).stdout
        return out.strip().split()[-1] if out.strip() else ""
    except (OSError, subprocess.TimeoutExpired):
        return ""


PROBE_SCRIPT = r"""
import json, os, sys, time
ws, outside, limit = sys.argv[1], sys.argv[2], int(sys.argv[3])
res = {}
with open(os.path.join(ws, "probe"), "w") as f:
    f.write("ok")
res["ws"] = True
try:
    with open(os.path.join(outside, "escaped"), "w") as f:
        f.write("x")
    res["outside"] = True
except OSError:
    res["outside"] = False
pids, err = [], None
if limit:
    for _ in range(limit * 3):
        try:
            pid = os.fork()
        except OSError as e:
            err = e.errno
            break
        if pid == 0:
            time.sleep(5)
            os._exit(0)
        pids.append(pid)
    for pid in pids:
        os.kill(pid, 9)
    for pid in pids:
        os.waitpid(pid, 0)
res["forked"], res["fork_errno"] = len(pids), err
print(json.dumps(res))
"""
PROBE_LIMIT = 16


def prerequisites(name: str, bwrap: str | None) -> BackendProbe:
    """The probe of ``name`` before any command runs: its version, or (``reason``, ``fix``) when
    it cannot work here at all. ``ok`` stays False: only a command that ran can set it."""
    pr = BackendProbe(name=name, ok=False)
    if name == "bubblewrap":
        if not bwrap:
            pr.reason = "bubblewrap is not installed (no bwrap on PATH)"
            pr.fix = "install the bubblewrap package (apt install bubblewrap, dnf install bubblewrap, pacman -S bubblewrap)"
            return pr
        pr.version = _bwrap_version(bwrap)
    elif name == "landlock":
        try:
            abi = L.landlock_abi()
        except OSError as e:
            if e.errno == errno.ENOSYS:
                pr.reason = f"the kernel ({os.uname().release}) has no Landlock"
                pr.fix = "Linux 5.13 or newer built with CONFIG_SECURITY_LANDLOCK"
            elif e.errno == errno.EOPNOTSUPP:
                pr.reason = "Landlock is built into the kernel but not enabled"
                pr.fix = "add landlock to the lsm= kernel boot parameter"
            else:
                pr.reason = f"the Landlock system calls are blocked ({e.strerror})"
                pr.fix = "a container's seccomp profile may block them: allow landlock_* syscalls"
            return pr
        pr.version = f"ABI {abi}"
    else:
        pr.reason = f"unknown backend {name!r}"
    return pr


def probe_argv(ws: Path, outside: Path, limit_kind: str) -> list[str]:
    """The probe command: PROBE_SCRIPT with the workspace, the outside dir and the fork budget."""
    return [python_executable(), "-I", "-S", "-c", PROBE_SCRIPT, str(ws), str(outside),
            str(PROBE_LIMIT if limit_kind != "none" else 0)]


def judge(pr: BackendProbe, res: subprocess.CompletedProcess[str] | None, ws: Path, outside: Path,
          limit_kind: str, limit_note: str) -> bool:
    """Fill ``pr`` from the probe command's result (None: it timed out). False when the backend
    does not work (``pr.reason`` says why)."""
    if res is None:
        pr.reason = f"a trivial sandboxed command did not finish in {PROBE_TIMEOUT:.0f} s"
        return False
    out = res.stdout.strip().splitlines()[-1:] if res.stdout else []
    try:
        data = json.loads(out[0]) if out else None
    except ValueError:
        data = None
    if res.returncode != 0 or not data:
        err = (res.stderr or res.stdout).strip().splitlines()
        last = err[-1] if err else f"exit code {res.returncode}"
        pr.reason = f"a trivial sandboxed command failed: {last}"
        if pr.name == "bubblewrap" and any(k in last.lower() for k in (
                "namespace", "uid map", "operation not permitted", "permission denied", "setting up")):
            pr.fix = _userns_hint()
        return False
    if data.get("outside") or (outside / "escaped").exists() or not (ws / "probe").exists():
        pr.reason = "a sandboxed command could write outside the workspace: the sandbox does not hold"
        return False
    pr.ok = True
    if limit_kind != "none":
        forked = int(data.get("forked") or 0)
        if forked < PROBE_LIMIT * 3 and forked <= PROBE_LIMIT:
            pr.limit = limit_kind
        else:
            pr.limit_note = (f"the process limit ({limit_kind}) did not hold: {forked} of "
                             f"{PROBE_LIMIT * 3} forks succeeded under a limit of {PROBE_LIMIT}")
    else:
        pr.limit_note = limit_note
    return True
