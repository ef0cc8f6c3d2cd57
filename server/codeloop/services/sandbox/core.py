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
import hashlib
import logging
import os
import shutil
import signal
import subprocess
import tempfile
import threading
import time
import weakref
from pathlib import Path
from typing import Any, Mapping, Sequence

from codeloop.services.sandbox import launcher as L
from codeloop.services.sandbox.backends import (
    Layout,
    bwrap_argv,
    landlock_argv,
    normalize_rlimits,
    rlimit_wrapper,
)
from codeloop.services.sandbox.limits import CommandCgroup, PidsCgroups
from codeloop.services.sandbox.model import BACKENDS, GUARANTEES, BackendProbe, Prepared, SandboxUnavailable
from codeloop.services.sandbox.placeholders import Placeholders
from codeloop.services.sandbox.probing import PROBE_LIMIT, PROBE_TIMEOUT, judge, prerequisites, probe_argv
from codeloop.services.sandbox.profile import (
    PROTECTED_DIRS,
    PROTECTED_FILES,
    Secret,
    hidden_secrets,
    real_home,
    scrub_env,
    secret_homes,
    workspace_plan,
)
from codeloop.services.sandbox.settings import SandboxSettings, parse_sandbox_setting
from codeloop.services.sandbox.status import SandboxStatus

log = logging.getLogger(__name__)

SECRETS_TTL = 5.0  # seconds between two looks for newly created secrets


# -- probing -------------------------------------------------------------------------------------

_PROBE_CACHE: dict[tuple, BackendProbe] = {}
_PROBE_LOCK = threading.Lock()


def _probe_backend(name: str, homes: list[Path], env: Mapping[str, str], bwrap: str | None) -> BackendProbe:
    t0 = time.perf_counter()
    pr = prerequisites(name, bwrap)
    if pr.reason:
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
            res: subprocess.CompletedProcess[str] | None
            try:
                res = sb.run(probe_argv(ws, outside, limit_kind), cwd=ws, env=dict(env), timeout=PROBE_TIMEOUT)
            except subprocess.TimeoutExpired:
                res = None
            if not judge(pr, res, ws, outside, limit_kind, limit_note):
                return pr
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


class Sandbox(SandboxStatus):
    """A probed sandbox for one workspace. See the module docstring."""

    workspace: Path
    real_home: Path
    homes: list[Path]
    readable: list[Path]  # extra paths kept visible for every command
    writable: list[Path]  # extra writable paths for every command
    _env: dict[str, str]
    _bwrap_path: str | None
    _temp_parent: Path | None
    _private_tmp: Path | None
    _state_dir: Path
    _placeholders: Placeholders
    _cgroups: PidsCgroups | None
    _secrets_cache: tuple[tuple[str, ...], float, list[Secret]] | None
    _closed: bool
    _lock: threading.Lock
    _resources: dict[str, Any]
    _finalizer: weakref.finalize

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
        self._private_tmp = None
        self._state_dir = state_dir or Placeholders.default_state_dir()
        self._placeholders = Placeholders(self._state_dir)
        self._cgroups = None
        self._limit_kind, self._limit_note = "none", ""
        self._probing = False
        self._secrets_cache = None
        self._closed = False
        self._lock = threading.Lock()
        # Released by close(), or when the sandbox is collected, or at exit.
        self._resources = {"placeholders": self._placeholders}
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
    def private_tmp(self) -> Path:
        with self._lock:
            if self._private_tmp is None:
                parent = str(self._temp_parent) if self._temp_parent else None
                self._private_tmp = Path(os.path.realpath(tempfile.mkdtemp(prefix="codeloop-sandbox-tmp-", dir=parent)))
                self._resources["tmp"] = self._private_tmp
            return self._private_tmp

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
        limits = normalize_rlimits(rlimits)
        base_env = dict(self._env if env is None else env)
        cwd_s = os.fspath(cwd)
        if not self.active:
            if self.refuses:
                raise SandboxUnavailable(self.refusal_message())
            if limits:
                argv = rlimit_wrapper(limits, self._env.get("PATH")) + argv
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
                prep.argv = landlock_argv(argv, lay, limits, nproc, cgroup.procs if cgroup is not None else None)
                t = str(lay.private_tmp)
                env2.update(TMPDIR=t, TMP=t, TEMP=t)
            env2["CODELOOP_SANDBOX"] = self.backend
        except BaseException:
            prep.cleanup()
            raise
        return prep

    def _secrets(self, env: Mapping[str, str]) -> list[Secret]:
        """The existing secrets, looked up again at most every few seconds."""
        key = tuple(env.get(v, "") for v in ("XDG_CONFIG_HOME", "XDG_DATA_HOME", "XDG_STATE_HOME"))
        now = time.monotonic()
        cached = self._secrets_cache
        if cached is None or cached[0] != key or now - cached[1] > SECRETS_TTL:
            cached = (key, now, hidden_secrets(self.homes, env))
            self._secrets_cache = cached
        return cached[2]

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
            inner = rlimit_wrapper(inner_limits, self._env.get("PATH"))
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


__all__ = [
    "BACKENDS", "GUARANTEES", "BackendProbe", "Prepared", "Sandbox", "SandboxUnavailable",
    "probe_backend", "PROTECTED_DIRS", "PROTECTED_FILES",
]
