"""The two backends as command lines: bubblewrap's argv, and the Landlock launcher's spec.

Both take a :class:`Layout` (what is writable, readable, hidden, protected) and return what to
run; neither starts anything. Probing (does it actually work here?) is in ``probing`` and
``core.probe_backend``.
"""

from __future__ import annotations

import os
import shutil
import sys
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Mapping

from codeloop.services.sandbox import launcher as L
from codeloop.services.sandbox.profile import Secret, WorkspacePlan, is_within

LAUNCHER = Path(L.__file__).resolve()
# Capabilities root keeps inside the sandbox, so that it can still write the workspace's files
# whatever their owner (as it could before). Never CAP_DAC_READ_SEARCH (open_by_handle_at).
ROOT_KEEP_CAPS = {"CAP_CHOWN": 0, "CAP_DAC_OVERRIDE": 1, "CAP_FOWNER": 3}
DEVICES_RW = ("/dev/null", "/dev/zero", "/dev/full", "/dev/random", "/dev/urandom", "/dev/tty", "/dev/ptmx")
# Mounted over in the bubblewrap view: a private /tmp (the sandbox's temp dir) and an empty /run
# (no daemon sockets: D-Bus, systemd, Docker, user agents under /run/user).
OVERLAID = ("/tmp", "/run")
PROC_READ_ONLY = ("/proc/sys", "/proc/sysrq-trigger", "/proc/fs", "/proc/irq", "/proc/bus")
RLIMIT_FLAGS = ("as", "core", "cpu", "data", "fsize", "memlock", "nofile", "nproc", "stack")


def python_executable() -> str:
    return os.path.realpath(sys.executable)


@dataclass
class Layout:
    workspace: Path
    cwd: Path
    private_tmp: Path
    homes: list[Path]
    secrets: list[Secret]
    plan: WorkspacePlan
    network: bool
    is_root: bool
    writable: list[Path] = field(default_factory=list)  # besides the workspace
    readable: list[Path] = field(default_factory=list)  # besides everything not hidden
    workspace_writable: bool = True  # False: the workspace is read-only too (code mode's programs)

    def all_writable(self) -> list[Path]:
        if not self.workspace_writable:
            return _dedupe(list(self.writable))
        return _dedupe([self.workspace, *self.writable, *self.plan.writable_outside])

    def runtime_paths(self) -> list[Path]:
        """What the launcher needs to run inside the sandbox, and codeloop's own environment
        (its venv, read-only): the check command and the tests run its interpreter, which the
        private /tmp would hide when the venv lives under /tmp."""
        exe = Path(python_executable())
        return _dedupe([LAUNCHER.parent, exe.parent, Path(sys.prefix), Path(sys.prefix).resolve(),
                        Path(sys.base_prefix).resolve()])


def _dedupe(paths: list[Path]) -> list[Path]:
    return list(dict.fromkeys(Path(os.path.normpath(str(p))) for p in paths))


def _depth(p: Path) -> int:
    return len(Path(p).parts)


def rlimit_args(rlimits: dict[str, tuple[int, int]]) -> list[str]:
    out = []
    for name, (soft, hard) in rlimits.items():
        if name.lower() not in RLIMIT_FLAGS:
            raise ValueError(f"unknown resource limit {name!r} (known: {', '.join(RLIMIT_FLAGS)})")
        out.append(f"--{name.lower()}={int(soft)}:{int(hard)}")
    return out


def normalize_rlimits(rlimits: Mapping[str, tuple[int, int] | int] | None) -> dict[str, tuple[int, int]]:
    """``{"cpu": 30, "as": (soft, hard)}`` as lower-case names with (soft, hard); ValueError on an
    unknown name."""
    out: dict[str, tuple[int, int]] = {}
    for name, value in (rlimits or {}).items():
        if isinstance(value, int):
            soft = hard = value
        else:
            soft, hard = value
        out[name.lower()] = (int(soft), int(hard))
    rlimit_args(out)  # validates the names
    return out


def rlimit_wrapper(limits: dict[str, tuple[int, int]], path: str | None) -> list[str]:
    """A command prefix that sets ``limits`` and execs the rest: ``prlimit`` when it is on
    ``path``, else the launcher."""
    prlimit = shutil.which("prlimit", path=path)
    if prlimit:
        return [prlimit, *rlimit_args(limits), "--"]
    spec = {"rlimits": {k.upper(): v for k, v in limits.items()}}
    return [python_executable(), "-I", "-S", str(LAUNCHER), L.encode_spec(spec), "--"]


# -- bubblewrap --------------------------------------------------------------------------------


def bwrap_argv(bwrap: str, lay: Layout, *, seccomp_fd: int | None) -> list[str]:
    """The bwrap command line up to (not including) ``--`` and the command."""
    a = [bwrap, "--new-session", "--die-with-parent", "--unshare-pid", "--unshare-ipc", "--unshare-uts",
         "--unshare-cgroup-try"]
    if not lay.network:
        a.append("--unshare-net")
    if lay.is_root:
        # bwrap keeps every capability for root unless told otherwise: drop them all.
        a += ["--cap-drop", "ALL"]
        for name in ROOT_KEEP_CAPS:
            a += ["--cap-add", name]
    else:
        a.append("--unshare-user")

    ops: list[tuple[int, int, list[str]]] = []  # (depth, order, args): parents are mounted first
    order = 0

    def op(target: Path | str, *args: str) -> None:
        nonlocal order
        order += 1
        ops.append((_depth(Path(target)), order, list(args)))

    op("/", "--ro-bind", "/", "/")
    op("/dev", "--dev", "/dev")
    op("/proc", "--proc", "/proc")
    # Kernel knobs in the new /proc stay writable for root otherwise (uid 0 owns them):
    # /proc/sys/kernel/core_pattern or .../modprobe would run a program outside the sandbox.
    for knob in PROC_READ_ONLY:
        if os.path.exists(knob):
            op(knob, "--ro-bind", knob, knob)
    op("/tmp", "--bind", str(lay.private_tmp), "/tmp")
    op("/run", "--tmpfs", "/run")
    if lay.network:
        resolv = os.path.realpath("/etc/resolv.conf")
        if is_within(resolv, "/run") and os.path.exists(resolv):
            op(resolv, "--ro-bind", resolv, resolv)
    writable = lay.all_writable()
    # What /tmp and /run cover but must stay visible (read-only unless writable).
    for p in _dedupe([*lay.homes, *lay.readable, *lay.runtime_paths()]):
        if any(is_within(p, o) for o in OVERLAID) and not any(is_within(p, w) for w in writable) and p.exists():
            op(p, "--ro-bind", str(p), str(p))
    for p in _dedupe([*writable, *(lay.plan.self_binds if lay.workspace_writable else [])]):
        if p.exists():
            op(p, "--bind", str(p), str(p))
    for p in lay.plan.read_only:
        if os.path.lexists(p):
            op(p, "--ro-bind", str(p), str(p))
    for ph in lay.plan.placeholders:
        if ph.path.is_dir():
            op(ph.path, "--ro-bind", str(ph.path), str(ph.path))
    remount: list[str] = []
    for s in lay.secrets:
        # A writable path inside a secret directory (the user chose it) is mounted after the
        # secret's empty tmpfs (it is deeper) and stays visible; the tmpfs goes read-only last.
        if s.is_dir:
            op(s.path, "--tmpfs", str(s.path))
            remount += ["--remount-ro", str(s.path)]
        else:
            op(s.path, "--ro-bind", "/dev/null", str(s.path))
    for _, _, args in sorted(ops, key=lambda t: (t[0], t[1])):
        a += args
    a += remount
    a += ["--chdir", str(lay.cwd)]
    if seccomp_fd is not None:
        a += ["--add-seccomp-fd", str(seccomp_fd)]
    return a


# -- Landlock ----------------------------------------------------------------------------------


def landlock_spec(abi: int, lay: Layout) -> dict:
    """The launcher's Landlock ruleset for ``lay``.

    Landlock only allows (a rule grants rights to a whole hierarchy, nothing can take them back
    beneath), so hiding ``~/.ssh`` means granting read access to everything *around* it: each
    directory on the way from ``/`` to a hidden path is expanded into its entries. Directory
    listing (READ_DIR) is granted everywhere: names are visible, contents are not.
    """
    fs = L.fs_access_for_abi(abi)
    read = L.FS_EXECUTE | L.FS_READ_FILE | L.FS_READ_DIR
    write = fs & ~(L.FS_MAKE_CHAR | L.FS_MAKE_BLOCK)  # no device nodes, ever
    dev_rw = (L.FS_READ_FILE | L.FS_WRITE_FILE | L.FS_IOCTL_DEV) & fs
    secrets = [s.path for s in lay.secrets]
    private_roots = [Path("/tmp"), Path("/dev")]  # the shared /tmp and raw devices: not readable
    writable = lay.all_writable() + [lay.private_tmp]
    rules: list[list] = [["/", L.FS_READ_DIR]]
    budget = [10_000]  # directories expanded, at most

    def grant_tree(p: Path, denied: list[Path], entry: os.DirEntry | None = None) -> None:
        """Read access to ``p`` and beneath, except the ``denied`` paths in it."""
        if p in denied:
            return
        if entry.is_symlink() if entry is not None else p.is_symlink():
            return  # its target is granted (or not) where it lives
        if not any(is_within(x, p) for x in denied):
            rules.append([str(p), read])
            return
        budget[0] -= 1
        if budget[0] <= 0 or not (entry.is_dir(follow_symlinks=False) if entry is not None else p.is_dir()):
            return
        try:
            entries = sorted(os.scandir(p), key=lambda x: x.name)
        except OSError:
            return
        for child in entries:
            grant_tree(Path(child.path), denied, child)

    grant_tree(Path("/"), secrets + private_roots)
    # Paths that must stay readable although under /tmp or /dev (a home or a shared directory
    # there): granted around the secrets in them, like the rest.
    for p in _dedupe([*lay.homes, *lay.readable, *lay.runtime_paths()]):
        if any(is_within(p, x) for x in private_roots) and p.exists():
            grant_tree(Path(os.path.realpath(p)), secrets)
    for dev in DEVICES_RW:
        if os.path.exists(dev):
            rules.append([dev, dev_rw])
    if os.path.isdir("/dev/pts"):
        rules.append(["/dev/pts", dev_rw | L.FS_READ_DIR])
    if os.path.isdir("/dev/shm"):
        rules.append(["/dev/shm", write])  # POSIX semaphores (multiprocessing) live there
    for p in _dedupe(writable):
        if p.exists():
            rules.append([str(p), write])
    spec = {"abi": abi, "handled_fs": fs, "rules": rules, "scoped": L.scopes_for_abi(abi)}
    if not lay.network:
        spec["handled_net"] = L.net_access_for_abi(abi)  # no TCP bind or connect at all
    return spec


def landlock_argv(argv: list[str], lay: Layout, limits: dict[str, tuple[int, int]], nproc: int | None,
                  cgroup_procs: Path | None) -> list[str]:
    """``argv`` run by the launcher under Landlock and seccomp for ``lay``, with ``limits``,
    ``nproc`` tasks of headroom and joining the cgroup whose ``cgroup.procs`` is given. The
    launcher dies with its spawner: call this where the command is spawned."""
    spec: dict[str, Any] = {
        "pdeathsig": True,
        "parent_pid": os.getpid(),  # the spawner: prepare() is called where the command is spawned
        "landlock": landlock_spec(L.landlock_abi(), lay),
        "seccomp": {"deny_unix": True, "deny_other_sockets": not lay.network},
        "chdir": str(lay.cwd),
    }
    if lay.is_root:
        spec["keep_caps"] = sorted(ROOT_KEEP_CAPS.values())
    if limits:
        spec["rlimits"] = {k.upper(): v for k, v in limits.items()}
    if nproc is not None and "nproc" not in limits:
        spec["nproc_headroom"] = nproc
    if cgroup_procs is not None:
        spec["cgroup_procs"] = str(cgroup_procs)
    return [python_executable(), "-I", "-S", str(LAUNCHER), L.encode_spec(spec), "--"] + argv
