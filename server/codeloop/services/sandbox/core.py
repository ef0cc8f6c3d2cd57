"""The Sandbox: which backend works here, and how to run a command inside it.

Usage by a process runner::

    sandbox = Sandbox.probe(settings, workspace)          # once, at start-up (blocking: 0.1-0.3 s,
                                                           # call it through asyncio.to_thread)
    print(sandbox.describe())                              # one line for a banner
    prep = sandbox.prepare(["/bin/bash", "-c", cmd], cwd, env)   # may raise SandboxUnavailable;
                                                           # ~1 ms of file work: to_thread is best
    try:
        proc = await asyncio.create_subprocess_exec(
            *prep.argv, cwd=prep.cwd, env=prep.env, pass_fds=prep.pass_fds,
            start_new_session=True, stdout=..., stderr=...)
        ...
    finally:
        prep.cleanup()                                     # once the process group has ended

``prepare`` only builds an argv and an environment (``pass_fds`` are the caller's own, passed
through): no ``preexec_fn`` and no fds of its own, so it works with any spawner (asyncio,
``subprocess``, the MCP SDK's stdio client, which takes only a command and its arguments) and
with threads around. The process it starts is the sandbox's outermost process: killing its
process group (the runner's ``start_new_session``) kills the whole sandbox.
"""

from __future__ import annotations

import asyncio
import fcntl
import hashlib
import json
import logging
import os
import shutil
import signal
import subprocess
import tempfile
import threading
import time
import weakref
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Iterable, Mapping, Sequence

from codeloop.core.ports import SandboxRefused
from codeloop.services.sandbox import launcher as L
from codeloop.services.sandbox.backends import (
    LAUNCHER,
    ROOT_KEEP_CAPS,
    Layout,
    bwrap_argv,
    landlock_spec,
    python_executable,
    rlimit_args,
)
from codeloop.services.sandbox.limits import CommandCgroup, PidsCgroups
from codeloop.services.sandbox.profile import (
    PROTECTED_DIRS,
    PROTECTED_FILES,
    hidden_secrets,
    real_home,
    scrub_env,
    secret_homes,
    workspace_plan,
)
from codeloop.services.sandbox.settings import SandboxSettings, parse_sandbox_setting

log = logging.getLogger(__name__)

BACKENDS: tuple[str, ...] = ("bubblewrap", "landlock")
PROBE_TIMEOUT = 20.0
SECRETS_TTL = 5.0  # seconds between two looks for newly created secrets

# What each backend can guarantee (a guarantee is only claimed when it holds: see guarantees()).
GUARANTEES: dict[str, str] = {
    "fs": "the filesystem is read-only outside the workspace and the private temp dir",
    "tmp": "a private temp dir (TMPDIR); the shared /tmp is not written",
    "shm": "a private /dev/shm",
    "secrets": "the home directories' secrets (~/.ssh, ~/.aws, ...) cannot be read",
    "devices": "no raw devices (disks, memory)",
    "workspace-config": ".git/hooks, .git/config, .codeloop/, .vscode/, .claude/ and .mcp.json are "
                        "read-only and cannot be created",
    "network": "no network",
    "sockets": "no Unix sockets to daemons (Docker, D-Bus, systemd, ssh/gpg agents)",
    "pid-namespace": "own PID namespace: nothing outside is visible or can be signalled, and "
                     "everything dies with the sandbox",
    "signals": "cannot signal processes outside the sandbox",
    "process-limit": "a cap on the number of tasks (fork bombs)",
}


class SandboxUnavailable(SandboxRefused):
    """``mode: on`` and no backend works: the command must not run (fail closed)."""


@dataclass
class BackendProbe:
    name: str
    ok: bool
    reason: str = ""  # why it is unavailable
    fix: str = ""  # how to make it available
    version: str = ""
    limit: str = "none"  # the verified process-limit mechanism: cgroup | rlimit-userns | rlimit | none
    limit_note: str = ""  # why there is no process limit, if there is none
    seconds: float = 0.0

    def summary(self) -> str:
        if self.ok:
            return f"{self.name} {self.version}".strip()
        return f"{self.name}: {self.reason}" + (f" (fix: {self.fix})" if self.fix else "")


@dataclass
class Prepared:
    """What to spawn: ``argv`` with ``env`` in ``cwd``, passing ``pass_fds``, in a new session.
    Call :meth:`cleanup` once the process (group) has ended, or if spawning failed."""

    argv: list[str]
    env: dict[str, str]
    cwd: str
    pass_fds: tuple[int, ...] = ()
    backend: str = "none"
    preexec_fn: None = None  # always None: everything is in argv
    start_new_session: bool = True
    cgroup: CommandCgroup | None = None
    removed_env: list[str] = field(default_factory=list)
    _cleanups: list[Callable[[], None]] = field(default_factory=list, repr=False)
    _done: bool = field(default=False, repr=False)

    @property
    def sandboxed(self) -> bool:
        return self.backend != "none"

    def cleanup(self) -> None:
        if self._done:
            return
        self._done = True
        for fn in reversed(self._cleanups):
            try:
                fn()
            except Exception:
                log.exception("sandbox cleanup failed")

    def __enter__(self) -> "Prepared":
        return self

    def __exit__(self, *exc: Any) -> None:
        self.cleanup()


# -- placeholders for missing protected paths ----------------------------------------------------


class Placeholders:
    """Empty directories made as mount points for missing protected paths (``.vscode``, ``.mcp.json``
    ...) so that a sandboxed command cannot create them.

    Counted per path. When the last command using one ends it is removed after ``idle`` seconds
    without a new command (so that they do not flicker in the editor at every command), or at
    ``close()``; only if still empty (anything the user put there stays). ``.git/hooks`` is
    persistent (git's own directory). A registry in the temp dir lets the next start remove the
    ones a crashed process left behind."""

    def __init__(self, state_dir: Path, idle: float = 30.0) -> None:
        self.state_dir = state_dir
        self.registry = state_dir / "placeholders.json"
        self.idle = idle
        self._lock = threading.Lock()
        self._counts: dict[str, int] = {}
        self._idle_since: dict[str, float] = {}

    @staticmethod
    def default_state_dir() -> Path:
        return Path(tempfile.gettempdir()) / f"codeloop-sandbox-state-{os.getuid()}"

    def _ensure_dir(self) -> bool:
        try:
            os.makedirs(self.state_dir, mode=0o700, exist_ok=True)
            st = os.lstat(self.state_dir)
            return st.st_uid == os.getuid() and not os.path.islink(self.state_dir)
        except OSError:
            return False

    def _update(self, fn: Callable[[dict[str, int]], None]) -> None:
        if not self._ensure_dir():
            return
        try:
            with open(self.state_dir / "placeholders.lock", "w") as lock:
                fcntl.flock(lock, fcntl.LOCK_EX)
                try:
                    data = json.loads(self.registry.read_text())
                except (OSError, ValueError):
                    data = {}
                fn(data)
                tmp = self.registry.with_suffix(f".{os.getpid()}.tmp")
                tmp.write_text(json.dumps(data))
                os.replace(tmp, self.registry)
        except OSError as e:
            log.warning("sandbox placeholder registry: %s", e)

    def prune_stale(self) -> None:
        """Remove the (empty) placeholders of codeloop processes that are gone."""
        def fn(data: dict[str, int]) -> None:
            for path, pid in list(data.items()):
                if pid == os.getpid() or _pid_alive(pid):
                    continue
                try:
                    os.rmdir(path)
                except OSError:
                    pass
                del data[path]

        if self.registry.exists():
            self._update(fn)

    def acquire(self, paths: Iterable[Path], persistent: Iterable[Path] = ()) -> list[str]:
        """Make the missing ``paths`` (empty directories); returns the keys to release."""
        held: list[str] = []
        new: list[str] = []
        keep = {str(p) for p in persistent}
        with self._lock:
            for p in paths:
                key = str(p)
                if key in self._counts:
                    self._counts[key] += 1
                    self._idle_since.pop(key, None)
                    held.append(key)
                    continue
                if os.path.lexists(p):
                    continue  # it appeared meanwhile: it is protected as an existing path
                try:
                    os.mkdir(p, 0o755)
                except OSError as e:
                    log.warning("sandbox: cannot make the mount point %s: %s", p, e)
                    continue
                if key in keep:
                    continue
                self._counts[key] = 1
                held.append(key)
                new.append(key)
        if new:
            pid = os.getpid()
            self._update(lambda data: data.update({k: pid for k in new}))
        self.sweep()
        return held

    def release(self, keys: Iterable[str]) -> None:
        now = time.monotonic()
        with self._lock:
            for key in keys:
                if key in self._counts:
                    self._counts[key] -= 1
                    if self._counts[key] <= 0:
                        self._counts[key] = 0
                        self._idle_since[key] = now
        self.sweep()

    def sweep(self, max_idle: float | None = None) -> None:
        """Remove the placeholders no command has used for ``max_idle`` seconds."""
        max_idle = self.idle if max_idle is None else max_idle
        now = time.monotonic()
        gone: list[str] = []
        with self._lock:
            for key, since in list(self._idle_since.items()):
                if now - since < max_idle or self._counts.get(key):
                    continue
                try:
                    os.rmdir(key)  # only if still empty
                except OSError:
                    pass
                del self._idle_since[key]
                self._counts.pop(key, None)
                gone.append(key)
        if gone:
            self._update(lambda data: [data.pop(k, None) for k in gone])

    def close(self) -> None:
        with self._lock:
            now = time.monotonic()
            for key, n in self._counts.items():
                if n <= 0:
                    self._idle_since.setdefault(key, now)
        self.sweep(max_idle=0)


def _pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


# -- probing -------------------------------------------------------------------------------------

_PROBE_CACHE: dict[tuple, BackendProbe] = {}
_PROBE_LOCK = threading.Lock()


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


_PROBE_SCRIPT = r"""
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


def _probe_backend(name: str, homes: list[Path], env: Mapping[str, str], bwrap: str | None) -> BackendProbe:
    t0 = time.perf_counter()
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
            import errno as E

            if e.errno == E.ENOSYS:
                pr.reason = f"the kernel ({os.uname().release}) has no Landlock"
                pr.fix = "Linux 5.13 or newer built with CONFIG_SECURITY_LANDLOCK"
            elif e.errno == E.EOPNOTSUPP:
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

    with tempfile.TemporaryDirectory(prefix="codeloop-sandbox-probe-") as tmp:
        root = Path(os.path.realpath(tmp))
        ws, outside = root / "ws", root / "outside"
        ws.mkdir()
        outside.mkdir()
        sb = Sandbox._make(SandboxSettings(mode="on", max_processes=PROBE_LIMIT), ws, homes[0], homes, name,
                           {name: pr}, env=env, bwrap=bwrap, readable=[outside], temp_dir=root,
                           state_dir=root / "state")
        sb._probing = True
        try:
            limit_kind, limit_note = sb._limit_kind, sb._limit_note
            try:
                res = sb.run([python_executable(), "-I", "-S", "-c", _PROBE_SCRIPT, str(ws), str(outside),
                              str(PROBE_LIMIT if limit_kind != "none" else 0)], cwd=ws, env=dict(env),
                             timeout=PROBE_TIMEOUT)
            except subprocess.TimeoutExpired:
                pr.reason = f"a trivial sandboxed command did not finish in {PROBE_TIMEOUT:.0f} s"
                return pr
            out = res.stdout.strip().splitlines()[-1:] if res.stdout else []
            try:
                data = json.loads(out[0]) if out else None
            except ValueError:
                data = None
            if res.returncode != 0 or not data:
                err = (res.stderr or res.stdout).strip().splitlines()
                last = err[-1] if err else f"exit code {res.returncode}"
                pr.reason = f"a trivial sandboxed command failed: {last}"
                if name == "bubblewrap" and any(k in last.lower() for k in (
                        "namespace", "uid map", "operation not permitted", "permission denied", "setting up")):
                    pr.fix = _userns_hint()
                return pr
            if data.get("outside") or (outside / "escaped").exists() or not (ws / "probe").exists():
                pr.reason = "a sandboxed command could write outside the workspace: the sandbox does not hold"
                return pr
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
        finally:
            sb.close()
    pr.seconds = round(time.perf_counter() - t0, 3)
    return pr


def probe_backend(name: str, *, homes: list[Path] | None = None, env: Mapping[str, str] | None = None,
                  cache: bool = True) -> BackendProbe:
    """Does backend ``name`` work here? Runs a trivial sandboxed command (and a bounded fork test
    of the process limit). Cached per process."""
    env = dict(os.environ if env is None else env)
    bwrap = shutil.which("bwrap", path=env.get("PATH")) if name == "bubblewrap" else None
    key = (name, os.geteuid(), bwrap)
    with _PROBE_LOCK:
        if cache and key in _PROBE_CACHE:
            return _PROBE_CACHE[key]
    homes = homes or secret_homes(real_home(), env, all_users=os.geteuid() == 0)
    pr = _probe_backend(name, homes, env, bwrap)
    log.info("sandbox probe: %s", pr.summary())
    with _PROBE_LOCK:
        _PROBE_CACHE[key] = pr
    return pr


# -- the sandbox -----------------------------------------------------------------------------------


class Sandbox:
    """A probed sandbox for one workspace. See the module docstring."""

    def __init__(self) -> None:  # use Sandbox.probe()
        raise TypeError("use Sandbox.probe(settings, workspace)")

    @classmethod
    def _make(cls, settings: SandboxSettings, workspace: Path, real: Path, homes: list[Path], backend: str,
              probes: dict[str, BackendProbe], *, env: Mapping[str, str] | None, bwrap: str | None = None,
              readable: Sequence[Path] = (), writable: Sequence[Path] = (), temp_dir: Path | None = None,
              state_dir: Path | None = None) -> "Sandbox":
        self = object.__new__(cls)
        self.settings = settings
        self.mode = settings.mode
        self.network = settings.network
        self.workspace = Path(os.path.realpath(workspace))
        self.real_home = Path(real)
        self.homes = homes
        self.backend = backend
        self.probes = probes
        self._env = dict(os.environ if env is None else env)
        self._bwrap_path = bwrap or shutil.which("bwrap", path=self._env.get("PATH"))
        self.readable = [Path(os.path.realpath(p)) for p in readable]
        self.writable = [Path(os.path.realpath(p)) for p in writable]
        self._temp_parent = temp_dir
        self._private_tmp: Path | None = None
        self._state_dir = state_dir or Placeholders.default_state_dir()
        self._placeholders = Placeholders(self._state_dir)
        self._cgroups: PidsCgroups | None = None
        self._limit_kind, self._limit_note = "none", ""
        self._probing = False
        self._secrets_cache: tuple | None = None
        self._closed = False
        self._lock = threading.Lock()
        # Released by close(), or when the sandbox is collected, or at exit.
        self._resources: dict[str, Any] = {"placeholders": self._placeholders}
        self._finalizer = weakref.finalize(self, _release_resources, self._resources)
        if backend != "none":
            self._setup_limits()
            self._resources["cgroups"] = self._cgroups
            self._placeholders.prune_stale()
        return self

    @classmethod
    def probe(cls, settings: SandboxSettings | str | dict | bool | None, workspace: Path | str,
              real_home_dir: Path | str | None = None, *, env: Mapping[str, str] | None = None,
              backends: Sequence[str] = BACKENDS, cache: bool = True, readable: Sequence[Path | str] = (),
              writable: Sequence[Path | str] = (), temp_dir: Path | str | None = None,
              state_dir: Path | str | None = None) -> "Sandbox":
        """Pick the first backend of ``backends`` that works here (none when the mode is off).

        ``real_home_dir``: the home whose secrets are hidden (default: from the passwd database;
        tests pass a fake one). ``env``: the environment commands get by default (default:
        ``os.environ``); its ``HOME`` is hidden too when it differs. ``readable``/``writable``:
        extra paths to keep visible / make writable for every command. Blocking: call it through
        ``asyncio.to_thread`` from async code."""
        if not isinstance(settings, SandboxSettings):
            settings, problems = parse_sandbox_setting(settings)
            for p in problems:
                log.warning("%s", p)
        env = dict(os.environ if env is None else env)
        uid = os.getuid()
        real = Path(real_home_dir) if real_home_dir is not None else real_home(uid)
        homes = secret_homes(real, env, all_users=(os.geteuid() == 0 and real_home_dir is None))
        probes: dict[str, BackendProbe] = {}
        chosen = "none"
        if settings.mode != "off":
            for name in backends:
                pr = probe_backend(name, homes=homes, env=env, cache=cache)
                probes[name] = pr
                if pr.ok:
                    chosen = name
                    break
        sb = cls._make(settings, Path(workspace), real, homes, chosen, probes, env=env,
                       readable=[Path(p) for p in readable], writable=[Path(p) for p in writable],
                       temp_dir=Path(temp_dir) if temp_dir else None,
                       state_dir=Path(state_dir) if state_dir else None)
        if chosen == "none" and settings.mode == "auto":
            log.warning("%s", sb.describe())
        return sb

    # -- state

    @property
    def active(self) -> bool:
        return self.backend != "none"

    @property
    def refuses(self) -> bool:
        """``mode: on`` with no working backend: every prepare() raises SandboxUnavailable."""
        return self.mode == "on" and not self.active

    @property
    def unavailable_reason(self) -> str | None:
        """Why the preferred backend(s) could not be used (None if the first choice works or the
        sandbox is off by setting)."""
        failed = [p for p in self.probes.values() if not p.ok]
        if not failed:
            return None
        return "; ".join(p.summary() for p in failed)

    @property
    def auto_allow(self) -> bool:
        """Whether the policy may run an *unknown* command without asking because it is
        sandboxed (``autoAllow``): only when the sandbox really contains it, i.e. it cannot
        plant a git hook or an editor/agent config in the workspace (bubblewrap, not Landlock)
        and cannot send the workspace anywhere (network off)."""
        g = self.guarantees()
        return bool(self.settings.auto_allow and "workspace-config" in g and "network" in g)

    @property
    def process_limit(self) -> int | None:
        """The task cap of each sandboxed command, when one verifiably holds."""
        return self.settings.max_processes if self.active and self._limit_active() else None

    @property
    def private_tmp(self) -> Path:
        with self._lock:
            if self._private_tmp is None:
                parent = str(self._temp_parent) if self._temp_parent else None
                self._private_tmp = Path(os.path.realpath(tempfile.mkdtemp(prefix="codeloop-sandbox-tmp-", dir=parent)))
                self._resources["tmp"] = self._private_tmp
            return self._private_tmp

    def guarantees(self) -> dict[str, str]:
        """The guarantees that hold for commands run through prepare() (id -> description)."""
        if not self.active:
            return {}
        keys = ["fs", "tmp", "secrets", "devices", "sockets"]
        if self.backend == "bubblewrap":
            keys += ["workspace-config", "pid-namespace", "signals", "shm"]
            if not self.network:
                keys.append("network")
        else:
            if not self.network:
                keys.append("network")  # seccomp refuses non-Unix sockets; Landlock (ABI 4+) TCP too
            if L.landlock_abi() >= 6:
                keys.append("signals")
        if self._limit_active():
            keys.append("process-limit")
        return {k: GUARANTEES[k] for k in GUARANTEES if k in keys}

    def limitations(self) -> list[str]:
        """What the active backend cannot do, in words."""
        if not self.active:
            return ["commands run unsandboxed"]
        out: list[str] = []
        if self.backend == "landlock":
            out += [
                "no PID namespace: other processes are visible, and a command's descendants that "
                "leave its process group are not killed with it",
                "inside the workspace nothing is protected: Landlock cannot make .git/hooks, .git/config, "
                ".codeloop/, .vscode/, .claude/ or .mcp.json read-only inside a writable directory",
                "no private loopback: with the network off, localhost is refused too",
                "/dev/shm is shared with the host (POSIX semaphores need it)",
            ]
            if L.landlock_abi() < 6:
                out.append(f"Landlock ABI {L.landlock_abi()} cannot stop signals to the user's other processes")
        if self.network:
            out.append("network on: the host's network and localhost services are reachable")
        probe = self.probes[self.backend]
        if not self._limit_active():
            out.append(f"no process limit: {probe.limit_note or self._limit_note}")
        return out

    def describe(self) -> str:
        """One line for a banner, the panel header or /context."""
        if self.mode == "off":
            return "sandbox: off (setting) — commands run unsandboxed"
        if not self.active:
            why = self.unavailable_reason or "no backend"
            if self.mode == "on":
                return f"sandbox: on, but unavailable — commands are refused ({why})"
            return f"sandbox: none — commands run unsandboxed because no sandbox works here ({why})"
        probe = self.probes[self.backend]
        name = "bubblewrap" if self.backend == "bubblewrap" else "Landlock"
        parts = [f"{name} {probe.version}".strip()]
        if self.backend == "bubblewrap":
            parts.append("workspace + private /tmp writable, home secrets hidden, workspace config read-only")
            parts.append("network on" if self.network else "network off")
            parts.append("own PID namespace")
        else:
            parts.append("workspace + private TMPDIR writable, home secrets hidden")
            g = self.guarantees()
            parts.append("network on" if self.network else ("network off" if "network" in g else "network NOT blocked"))
            parts.append("no PID namespace, workspace config not protected")
        limit = self.process_limit
        parts.append(f"≤ {limit} tasks" if limit else "no process limit")
        return "sandbox: " + ", ".join(parts)

    def refusal_message(self) -> str:
        lines = ['The sandbox is on (setting "sandbox": "on") but no sandbox works here, so the command was not run.']
        for p in self.probes.values():
            lines.append(f"- {p.summary()}")
        lines.append("Fix one of these, or set \"sandbox\" to \"auto\" or \"off\" to run commands unsandboxed.")
        return "\n".join(lines)

    def info(self) -> dict[str, Any]:
        """A JSON-able summary (for /context, the panel, logs)."""
        return {
            "mode": self.mode,
            "backend": self.backend,
            "network": self.network,
            "description": self.describe(),
            "guarantees": sorted(self.guarantees()),
            "limitations": self.limitations() if self.mode != "off" else [],
            "processLimit": self.process_limit,
            "autoAllow": self.auto_allow,
            "unavailable": {p.name: p.summary() for p in self.probes.values() if not p.ok},
        }

    # -- process limits

    def _setup_limits(self) -> None:
        if os.geteuid() == 0:
            mgr, why = PidsCgroups.find()
            if mgr is not None:
                self._cgroups = mgr
                self._limit_kind = "cgroup"
            else:
                self._limit_note = f"running as root, where RLIMIT_NPROC does not apply, and {why}"
        elif self.backend == "bubblewrap":
            self._limit_kind = "rlimit-userns"
        else:
            self._limit_kind = "rlimit"

    def _limit_active(self) -> bool:
        if self._probing:
            return self._limit_kind != "none"
        probe = self.probes.get(self.backend)
        return probe is not None and probe.limit != "none"

    # -- preparing a command

    def prepare(self, argv: Sequence[str], cwd: Path | str, env: Mapping[str, str] | None = None, *,
                network: bool | None = None, rlimits: Mapping[str, tuple[int, int] | int] | None = None,
                pass_fds: Sequence[int] = (), readable: Sequence[Path | str] = (),
                writable: Sequence[Path | str] = (), max_processes: int | None = None,
                workspace_writable: bool = True) -> Prepared:
        """The argv/env/fds that run ``argv`` in ``cwd`` inside the sandbox.

        ``env``: the command's environment (default: the sandbox's); credentials are removed and
        TMPDIR points at the private temp dir. ``network``: override the setting for this command.
        ``rlimits``: extra resource limits, e.g. ``{"cpu": 30, "as": 2 << 30}`` (applied in every
        mode, sandboxed or not). ``readable``/``writable``: extra paths for this command.
        ``workspace_writable=False``: the workspace is read-only too (code mode's programs,
        whose edits must be tool calls, reviewed like any other).
        Raises SandboxUnavailable when the mode is on and no backend works; ValueError on bad
        arguments. Blocking but quick (stats and a few small writes)."""
        if self._closed:
            raise RuntimeError("the sandbox has been closed")
        argv = [os.fspath(a) for a in argv]
        if not argv:
            raise ValueError("empty argv")
        limits = _normalize_rlimits(rlimits)
        base_env = dict(self._env if env is None else env)
        cwd_s = os.fspath(cwd)
        if not self.active:
            if self.refuses:
                raise SandboxUnavailable(self.refusal_message())
            if limits:
                argv = self._rlimit_wrapper(limits) + argv
            return Prepared(argv=argv, env=base_env, cwd=cwd_s, pass_fds=tuple(pass_fds), backend="none")

        net = self.network if network is None else bool(network)
        plan = workspace_plan(self.workspace)
        lay = Layout(
            workspace=self.workspace,
            cwd=Path(os.path.realpath(cwd_s)),
            private_tmp=self.private_tmp,
            homes=[Path(os.path.realpath(h)) for h in self.homes if os.path.isdir(h)],
            secrets=self._secrets(base_env),
            plan=plan,
            network=net,
            is_root=os.geteuid() == 0,
            writable=self.writable + [Path(os.path.realpath(p)) for p in writable],
            # A read-only workspace under /tmp must stay visible (bubblewrap mounts a private
            # /tmp there; Landlock does not grant the shared /tmp).
            readable=self.readable + [Path(os.path.realpath(p)) for p in readable]
            + ([] if workspace_writable else [self.workspace]),
            workspace_writable=workspace_writable,
        )
        env2, removed = scrub_env(base_env)
        prep = Prepared(argv=[], env=env2, cwd=str(lay.cwd), pass_fds=tuple(pass_fds), backend=self.backend,
                        removed_env=removed)
        try:
            n = int(max_processes or self.settings.max_processes)
            cgroup = None
            if self._limit_active() and self._limit_kind == "cgroup" and self._cgroups is not None:
                cgroup = self._cgroups.new(n)
                prep.cgroup = cgroup
                mgr = self._cgroups
                prep._cleanups.append(lambda: mgr.release(cgroup))
            nproc = n if self._limit_active() and self._limit_kind in ("rlimit", "rlimit-userns") else None
            if self.backend == "bubblewrap":
                prep.argv = self._bwrap(argv, lay, prep, limits, nproc, cgroup)
                env2.update(TMPDIR="/tmp", TMP="/tmp", TEMP="/tmp")
            else:
                prep.argv = self._landlock(argv, lay, limits, nproc, cgroup)
                t = str(lay.private_tmp)
                env2.update(TMPDIR=t, TMP=t, TEMP=t)
            env2["CODELOOP_SANDBOX"] = self.backend
        except BaseException:
            prep.cleanup()
            raise
        return prep

    def _secrets(self, env: Mapping[str, str]) -> list:
        """The existing secrets, looked up again at most every few seconds."""
        key = tuple(env.get(v, "") for v in ("XDG_CONFIG_HOME", "XDG_DATA_HOME", "XDG_STATE_HOME"))
        now = time.monotonic()
        cached = self._secrets_cache
        if cached is None or cached[0] != key or now - cached[1] > SECRETS_TTL:
            cached = (key, now, hidden_secrets(self.homes, env))
            self._secrets_cache = cached
        return cached[2]

    def _rlimit_wrapper(self, limits: dict[str, tuple[int, int]]) -> list[str]:
        prlimit = shutil.which("prlimit", path=self._env.get("PATH"))
        if prlimit:
            return [prlimit, *rlimit_args(limits), "--"]
        spec = {"rlimits": {k.upper(): v for k, v in limits.items()}}
        return [python_executable(), "-I", "-S", str(LAUNCHER), L.encode_spec(spec), "--"]

    def _bwrap(self, argv: list[str], lay: Layout, prep: Prepared, limits: dict[str, tuple[int, int]],
               nproc: int | None, cgroup: CommandCgroup | None) -> list[str]:
        if not self._bwrap_path:
            raise SandboxUnavailable("bwrap is no longer on PATH")
        filter_file = self._seccomp_file()
        # The filter reaches bwrap on an fd the wrapper shell opens: the argv is self-contained
        # (no fds to pass), so any spawner works, the MCP SDK's stdio client included.
        fd = next(n for n in range(9, 2, -1) if n not in prep.pass_fds)

        # A read-only workspace needs no mount points: nothing can be created in it.
        holders = lay.plan.placeholders if lay.workspace_writable else []
        made = self._placeholders.acquire(
            [ph.path for ph in holders], persistent=[ph.path for ph in holders if ph.persistent])
        if made:
            prep._cleanups.append(lambda: self._placeholders.release(made))

        inner: list[str] = []
        inner_limits = dict(limits)
        if nproc is not None and "nproc" not in inner_limits:
            inner_limits["nproc"] = (nproc, nproc)  # set inside the user namespace: counts only the sandbox
        if inner_limits:
            inner = self._rlimit_wrapper(inner_limits)
        join = 'echo 0 > "$1" || exit 126; ' if cgroup is not None else ""
        outer = ["/bin/sh", "-c", f'{join}shift; exec "$@" {fd}< "$0"', str(filter_file),
                 str(cgroup.procs) if cgroup is not None else "-"]
        return outer + bwrap_argv(self._bwrap_path, lay, seccomp_fd=fd) + ["--"] + inner + argv

    def _seccomp_file(self) -> Path:
        """The bubblewrap seccomp program, written once in the state dir (which no sandboxed
        command can write: it is under the host's /tmp, or wherever the caller put it)."""
        program = L.seccomp_program(deny_unix=True, deny_other_sockets=False)
        name = f"seccomp-{hashlib.sha256(program).hexdigest()[:16]}.bpf"
        path = self._state_dir / name
        with self._lock:
            try:
                if path.read_bytes() == program:
                    return path
            except OSError:
                pass
            if not self._placeholders._ensure_dir():
                raise SandboxUnavailable(f"the sandbox state directory {self._state_dir} is not usable")
            tmp = path.with_name(f".{name}.{os.getpid()}")
            tmp.write_bytes(program)
            os.replace(tmp, path)
        return path

    def _landlock(self, argv: list[str], lay: Layout, limits: dict[str, tuple[int, int]], nproc: int | None,
                  cgroup: CommandCgroup | None) -> list[str]:
        abi = L.landlock_abi()
        spec: dict[str, Any] = {
            "pdeathsig": True,
            "parent_pid": os.getpid(),  # the spawner: prepare() is called where the command is spawned
            "landlock": landlock_spec(abi, lay),
            "seccomp": {"deny_unix": True, "deny_other_sockets": not lay.network},
            "chdir": str(lay.cwd),
        }
        if lay.is_root:
            spec["keep_caps"] = sorted(ROOT_KEEP_CAPS.values())
        if limits:
            spec["rlimits"] = {k.upper(): v for k, v in limits.items()}
        if nproc is not None and "nproc" not in limits:
            spec["nproc_headroom"] = nproc
        if cgroup is not None:
            spec["cgroup_procs"] = str(cgroup.procs)
        return [python_executable(), "-I", "-S", str(LAUNCHER), L.encode_spec(spec), "--"] + argv

    # -- running (tests, the benchmark, probing)

    def run(self, argv: Sequence[str], cwd: Path | str, *, env: Mapping[str, str] | None = None,
            timeout: float = 60.0, input: str | None = None, **prepare_kw: Any) -> subprocess.CompletedProcess[str]:
        """Run ``argv`` in the sandbox and wait (text output). On timeout the whole sandbox is
        killed and ``subprocess.TimeoutExpired`` raised."""
        prep = self.prepare(argv, cwd, env, **prepare_kw)
        try:
            proc = subprocess.Popen(prep.argv, cwd=prep.cwd, env=prep.env, pass_fds=prep.pass_fds,
                                    start_new_session=True, text=True, stdout=subprocess.PIPE,
                                    stderr=subprocess.PIPE,
                                    stdin=subprocess.PIPE if input is not None else subprocess.DEVNULL)
            try:
                out, err = proc.communicate(input, timeout=timeout)
            except subprocess.TimeoutExpired:
                _kill_group(proc.pid)
                prep.cleanup()
                try:
                    proc.communicate(timeout=5)
                except subprocess.TimeoutExpired:
                    pass
                raise
            return subprocess.CompletedProcess(prep.argv, proc.returncode, out, err)
        finally:
            prep.cleanup()

    async def arun(self, argv: Sequence[str], cwd: Path | str, *, env: Mapping[str, str] | None = None,
                   timeout: float = 60.0, **prepare_kw: Any) -> subprocess.CompletedProcess[str]:
        """The asyncio version of :meth:`run` (the way a process runner would do it)."""
        prep = await asyncio.to_thread(self.prepare, argv, cwd, env, **prepare_kw)
        try:
            proc = await asyncio.create_subprocess_exec(
                *prep.argv, cwd=prep.cwd, env=prep.env, pass_fds=prep.pass_fds, start_new_session=True,
                stdin=asyncio.subprocess.DEVNULL, stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE)
            try:
                out, err = await asyncio.wait_for(proc.communicate(), timeout)
            except TimeoutError:
                _kill_group(proc.pid)
                await proc.wait()
                raise subprocess.TimeoutExpired(prep.argv, timeout) from None
            return subprocess.CompletedProcess(prep.argv, proc.returncode or 0,
                                               out.decode(errors="replace"), err.decode(errors="replace"))
        finally:
            await asyncio.to_thread(prep.cleanup)

    def close(self) -> None:
        if self._closed:
            return
        self._closed = True
        self._finalizer()

    def __enter__(self) -> "Sandbox":
        return self

    def __exit__(self, *exc: Any) -> None:
        self.close()


def _release_resources(res: dict[str, Any]) -> None:
    for name, fn in (("cgroups", lambda c: c.close()), ("placeholders", lambda p: p.close()),
                     ("tmp", lambda t: shutil.rmtree(t, ignore_errors=True))):
        obj = res.get(name)
        if obj is not None:
            try:
                fn(obj)
            except Exception:
                log.exception("sandbox: releasing %s failed", name)


def _kill_group(pgid: int) -> None:
    try:
        os.killpg(pgid, signal.SIGKILL)
    except OSError:
        pass


def _normalize_rlimits(rlimits: Mapping[str, tuple[int, int] | int] | None) -> dict[str, tuple[int, int]]:
    out: dict[str, tuple[int, int]] = {}
    for name, value in (rlimits or {}).items():
        if isinstance(value, int):
            soft = hard = value
        else:
            soft, hard = value
        out[name.lower()] = (int(soft), int(hard))
    rlimit_args(out)  # validates the names
    return out


__all__ = [
    "BACKENDS", "GUARANTEES", "BackendProbe", "Prepared", "Sandbox", "SandboxUnavailable",
    "probe_backend", "PROTECTED_DIRS", "PROTECTED_FILES",
]
