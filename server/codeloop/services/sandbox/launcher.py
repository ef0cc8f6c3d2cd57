"""The in-child half of the sandbox: kernel restrictions applied to a process before it execs.

This module is both imported (by the parent, to build seccomp programs and probe Landlock) and
run as a script in the child, before the command::

    python -I -S launcher.py SPEC -- COMMAND ARGS...

It must therefore import nothing but the standard library (no ``codeloop``, no ``site``). In
order, it: joins a pids cgroup, sets resource limits, arms the parent-death signal, drops
capabilities (when running as root), sets ``no_new_privs``, applies a Landlock ruleset, installs
a seccomp filter, and ``execvp``s the command. Any failure is fatal: it prints
``codeloop sandbox: ...`` to stderr and exits with 126, and the command never runs
unrestricted (fail closed).

SPEC is :func:`encode_spec` of a dict (``marshal`` in hex: the launcher runs on the same
interpreter, and importing ``json`` would cost it more than everything else it does). Keys,
all optional::

    {"cgroup_procs": "/sys/fs/cgroup/.../cgroup.procs",
     "rlimits": {"NPROC": [soft, hard], "CPU": [s, h], "AS": [...], ...},
     "nproc_headroom": 512,           # RLIMIT_NPROC = the uid's current tasks + this
     "pdeathsig": true,               # SIGKILL when the parent dies ("parent_pid": who it is)
     "keep_caps": [0, 1, 3],          # as root: the capabilities that survive (others dropped)
     "landlock": {"abi": 7, "handled_fs": int, "handled_net": int, "scoped": int,
                  "rules": [[path, access], ...]},
     "seccomp": {"deny_unix": true, "deny_other_sockets": true},
     "chdir": "/path"}

No function here touches the parent's process: the ``apply_*`` functions are meant for the
child only (or a throwaway probe child).
"""

from __future__ import annotations

import ctypes
import errno
import marshal
import os
import struct
import sys

# -- Landlock (include/uapi/linux/landlock.h) ---------------------------------------------------

SYS_LANDLOCK_CREATE_RULESET = 444  # the same number on every architecture
SYS_LANDLOCK_ADD_RULE = 445
SYS_LANDLOCK_RESTRICT_SELF = 446
LANDLOCK_CREATE_RULESET_VERSION = 1 << 0
LANDLOCK_RULE_PATH_BENEATH = 1

FS_EXECUTE = 1 << 0
FS_WRITE_FILE = 1 << 1
FS_READ_FILE = 1 << 2
FS_READ_DIR = 1 << 3
FS_REMOVE_DIR = 1 << 4
FS_REMOVE_FILE = 1 << 5
FS_MAKE_CHAR = 1 << 6
FS_MAKE_DIR = 1 << 7
FS_MAKE_REG = 1 << 8
FS_MAKE_SOCK = 1 << 9
FS_MAKE_FIFO = 1 << 10
FS_MAKE_BLOCK = 1 << 11
FS_MAKE_SYM = 1 << 12
FS_REFER = 1 << 13  # ABI 2
FS_TRUNCATE = 1 << 14  # ABI 3
FS_IOCTL_DEV = 1 << 15  # ABI 5

NET_BIND_TCP = 1 << 0  # ABI 4
NET_CONNECT_TCP = 1 << 1

SCOPE_ABSTRACT_UNIX_SOCKET = 1 << 0  # ABI 6
SCOPE_SIGNAL = 1 << 1

FILE_ACCESS = FS_EXECUTE | FS_WRITE_FILE | FS_READ_FILE | FS_TRUNCATE | FS_IOCTL_DEV


def fs_access_for_abi(abi: int) -> int:
    """Every filesystem right the kernel's Landlock ABI knows."""
    mask = (1 << 13) - 1  # ABI 1: EXECUTE .. MAKE_SYM
    if abi >= 2:
        mask |= FS_REFER
    if abi >= 3:
        mask |= FS_TRUNCATE
    if abi >= 5:
        mask |= FS_IOCTL_DEV
    return mask


def net_access_for_abi(abi: int) -> int:
    return NET_BIND_TCP | NET_CONNECT_TCP if abi >= 4 else 0


def scopes_for_abi(abi: int) -> int:
    return SCOPE_ABSTRACT_UNIX_SOCKET | SCOPE_SIGNAL if abi >= 6 else 0


_libc = None


def libc() -> ctypes.CDLL:
    global _libc
    if _libc is None:
        _libc = ctypes.CDLL(None, use_errno=True)
        _libc.syscall.restype = ctypes.c_long
        _libc.prctl.restype = ctypes.c_int
        _libc.prctl.argtypes = [ctypes.c_int, ctypes.c_ulong, ctypes.c_ulong, ctypes.c_ulong, ctypes.c_ulong]
    return _libc


def _check(ret: int, what: str) -> int:
    if ret < 0:
        e = ctypes.get_errno()
        raise OSError(e, f"{what}: {os.strerror(e)}")
    return ret


def landlock_abi() -> int:
    """The kernel's Landlock ABI version; raises OSError (ENOSYS: kernel without Landlock,
    EOPNOTSUPP: Landlock built in but not enabled at boot)."""
    ret = libc().syscall(ctypes.c_long(SYS_LANDLOCK_CREATE_RULESET), None, ctypes.c_size_t(0),
                         ctypes.c_uint32(LANDLOCK_CREATE_RULESET_VERSION))
    return _check(ret, "landlock_create_ruleset")


def apply_landlock(spec: dict) -> None:
    abi = int(spec["abi"])
    handled_fs = int(spec.get("handled_fs", 0))
    handled_net = int(spec.get("handled_net", 0)) if abi >= 4 else 0
    scoped = int(spec.get("scoped", 0)) if abi >= 6 else 0
    if abi >= 6:
        attr = struct.pack("=QQQ", handled_fs, handled_net, scoped)
    elif abi >= 4:
        attr = struct.pack("=QQ", handled_fs, handled_net)
    else:
        attr = struct.pack("=Q", handled_fs)
    buf = ctypes.create_string_buffer(attr, len(attr))
    lc = libc()
    fd = _check(lc.syscall(ctypes.c_long(SYS_LANDLOCK_CREATE_RULESET), buf, ctypes.c_size_t(len(attr)),
                           ctypes.c_uint32(0)), "landlock_create_ruleset")
    try:
        for path, access in spec.get("rules", ()):
            access = int(access) & handled_fs
            if not access:
                continue
            try:
                pfd = os.open(os.fsencode(path), os.O_PATH | os.O_CLOEXEC | os.O_NOFOLLOW)
            except FileNotFoundError:
                continue  # gone since the parent listed it: nothing to allow
            try:
                if not os.path.isdir(f"/proc/self/fd/{pfd}"):
                    access &= FILE_ACCESS
                rule = ctypes.create_string_buffer(struct.pack("=Qi", access, pfd), 12)
                _check(lc.syscall(ctypes.c_long(SYS_LANDLOCK_ADD_RULE), ctypes.c_int(fd),
                                  ctypes.c_int(LANDLOCK_RULE_PATH_BENEATH), rule, ctypes.c_uint32(0)),
                       f"landlock_add_rule({path})")
            finally:
                os.close(pfd)
        _check(lc.syscall(ctypes.c_long(SYS_LANDLOCK_RESTRICT_SELF), ctypes.c_int(fd), ctypes.c_uint32(0)),
               "landlock_restrict_self")
    finally:
        os.close(fd)


# -- seccomp -----------------------------------------------------------------------------------

AUDIT_ARCH = {"x86_64": 0xC000003E, "aarch64": 0xC00000B7}
SYSCALLS = {  # the numbers the filter looks at
    "x86_64": {"socket": 41, "io_uring_setup": 425, "io_uring_enter": 426, "io_uring_register": 427},
    "aarch64": {"socket": 198, "io_uring_setup": 425, "io_uring_enter": 426, "io_uring_register": 427},
}
X32_SYSCALL_BIT = 0x40000000
AF_UNIX = 1

_BPF_LD_W_ABS = 0x20
_BPF_JEQ_K = 0x15
_BPF_JGE_K = 0x35
_BPF_RET_K = 0x06
RET_ALLOW = 0x7FFF0000
RET_KILL_PROCESS = 0x80000000
RET_ERRNO = 0x00050000


def encode_spec(spec: dict) -> str:
    return marshal.dumps(spec).hex()


def decode_spec(text: str) -> dict:
    spec = marshal.loads(bytes.fromhex(text))
    if not isinstance(spec, dict):
        raise ValueError("the spec is not a dict")
    return spec


def machine() -> str:
    m = os.uname().machine.lower()
    return {"amd64": "x86_64", "arm64": "aarch64"}.get(m, m)


def seccomp_program(deny_unix: bool = True, deny_other_sockets: bool = False, arch: str | None = None) -> bytes:
    """A classic-BPF seccomp program (an array of ``struct sock_filter``), as bwrap's
    ``--add-seccomp-fd`` and ``PR_SET_SECCOMP`` take it.

    - another architecture's syscalls (a 32-bit binary) kill the process: their numbers differ
      and this filter could not vouch for them; x32 syscalls fail with ENOSYS;
    - io_uring fails with EPERM (its socket/connect operations would bypass this filter);
    - ``socket(AF_UNIX, ...)`` fails with EACCES when ``deny_unix`` (``socketpair`` still works),
      so no daemon's socket (Docker, D-Bus, systemd, an ssh or gpg agent) can be reached;
    - ``socket()`` of any other family fails with EACCES when ``deny_other_sockets``.
    """
    arch = arch or machine()
    if arch not in AUDIT_ARCH:
        raise OSError(errno.ENOTSUP, f"no seccomp filter for the {arch} architecture")
    nr = SYSCALLS[arch]
    eacces = RET_ERRNO | errno.EACCES
    prog: list[tuple[int, int, int, int]] = []

    def stmt(code: int, k: int) -> None:
        prog.append((code, 0, 0, k))

    def jump(code: int, k: int, jt: int, jf: int) -> None:
        prog.append((code, jt, jf, k))

    stmt(_BPF_LD_W_ABS, 4)  # seccomp_data.arch
    jump(_BPF_JEQ_K, AUDIT_ARCH[arch], 1, 0)
    stmt(_BPF_RET_K, RET_KILL_PROCESS)
    stmt(_BPF_LD_W_ABS, 0)  # seccomp_data.nr
    if arch == "x86_64":
        jump(_BPF_JGE_K, X32_SYSCALL_BIT, 0, 1)
        stmt(_BPF_RET_K, RET_ERRNO | errno.ENOSYS)
    for name in ("io_uring_setup", "io_uring_enter", "io_uring_register"):
        jump(_BPF_JEQ_K, nr[name], 0, 1)
        stmt(_BPF_RET_K, RET_ERRNO | errno.EPERM)
    if deny_unix or deny_other_sockets:
        jump(_BPF_JEQ_K, nr["socket"], 1, 0)
        stmt(_BPF_RET_K, RET_ALLOW)
        stmt(_BPF_LD_W_ABS, 16)  # seccomp_data.args[0], low 32 bits (little-endian)
        jump(_BPF_JEQ_K, AF_UNIX, 0, 1)
        stmt(_BPF_RET_K, eacces if deny_unix else RET_ALLOW)
        stmt(_BPF_RET_K, eacces if deny_other_sockets else RET_ALLOW)
    else:
        stmt(_BPF_RET_K, RET_ALLOW)
    return b"".join(struct.pack("=HBBI", *ins) for ins in prog)


PR_SET_PDEATHSIG = 1
PR_CAPBSET_DROP = 24
PR_SET_SECUREBITS = 28
PR_SET_NO_NEW_PRIVS = 38
PR_CAP_AMBIENT = 47
PR_CAP_AMBIENT_RAISE = 2
PR_SET_SECCOMP = 22
SECCOMP_MODE_FILTER = 2


class _SockFprog(ctypes.Structure):
    _fields_ = [("len", ctypes.c_ushort), ("filter", ctypes.c_void_p)]


def set_no_new_privs() -> None:
    _check(libc().prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0), "prctl(PR_SET_NO_NEW_PRIVS)")


def apply_seccomp(program: bytes) -> None:
    buf = ctypes.create_string_buffer(program, len(program))
    fprog = _SockFprog(len(program) // 8, ctypes.cast(buf, ctypes.c_void_p))
    _check(libc().prctl(PR_SET_SECCOMP, SECCOMP_MODE_FILTER, ctypes.addressof(fprog), 0, 0),
           "prctl(PR_SET_SECCOMP)")


# -- capabilities (as root) --------------------------------------------------------------------

SECBIT_NOROOT = 1 << 0
SECBIT_NOROOT_LOCKED = 1 << 1
SECBIT_NO_SETUID_FIXUP = 1 << 2
SECBIT_NO_SETUID_FIXUP_LOCKED = 1 << 3
SECBIT_KEEP_CAPS_LOCKED = 1 << 5
SECBIT_NO_CAP_AMBIENT_RAISE_LOCKED = 1 << 7
_LINUX_CAPABILITY_VERSION_3 = 0x20080522
SYS_CAPSET = {"x86_64": 126, "aarch64": 91}


def last_cap() -> int:
    try:
        with open("/proc/sys/kernel/cap_last_cap") as f:
            return int(f.read().strip())
    except (OSError, ValueError):
        return 40


def drop_capabilities(keep: list[int]) -> None:
    """Root loses every capability but ``keep``, now and across exec (securebits NOROOT,
    the kept ones carried as ambient capabilities)."""
    lc = libc()
    keep_mask = 0
    for c in keep:
        keep_mask |= 1 << c
    bits = (SECBIT_NOROOT | SECBIT_NOROOT_LOCKED | SECBIT_NO_SETUID_FIXUP | SECBIT_NO_SETUID_FIXUP_LOCKED
            | SECBIT_KEEP_CAPS_LOCKED)
    _check(lc.prctl(PR_SET_SECUREBITS, bits, 0, 0, 0), "prctl(PR_SET_SECUREBITS)")
    for c in range(last_cap() + 1):
        if c not in keep:
            r = lc.prctl(PR_CAPBSET_DROP, c, 0, 0, 0)
            if r < 0 and ctypes.get_errno() != errno.EINVAL:
                _check(r, f"prctl(PR_CAPBSET_DROP, {c})")
    header = (ctypes.c_uint32 * 2)(_LINUX_CAPABILITY_VERSION_3, 0)
    lo, hi = keep_mask & 0xFFFFFFFF, keep_mask >> 32
    data = (ctypes.c_uint32 * 6)(lo, lo, lo, hi, hi, hi)  # effective, permitted, inheritable x2
    nr = SYS_CAPSET.get(machine())
    if nr is None:
        raise OSError(errno.ENOTSUP, "capset: unknown architecture")
    _check(lc.syscall(ctypes.c_long(nr), header, data), "capset")
    for c in keep:
        _check(lc.prctl(PR_CAP_AMBIENT, PR_CAP_AMBIENT_RAISE, c, 0, 0), f"prctl(PR_CAP_AMBIENT_RAISE, {c})")


# -- process limits ----------------------------------------------------------------------------


def uid_tasks(uid: int) -> int:
    """Tasks (threads) of ``uid``, which RLIMIT_NPROC counts, from /proc."""
    count = 0
    try:
        names = os.listdir("/proc")
    except OSError:
        return 0
    for name in names:
        if not name.isdigit():
            continue
        try:
            with open(f"/proc/{name}/status", "rb") as f:
                status = f.read()
        except OSError:
            continue
        real_uid = threads = None
        for line in status.splitlines():
            if line.startswith(b"Uid:"):
                real_uid = int(line.split()[1])
            elif line.startswith(b"Threads:"):
                threads = int(line.split()[1])
        if real_uid == uid:
            count += threads or 1
    return count


def apply_rlimits(limits: dict) -> None:
    import resource

    for name, (soft, hard) in limits.items():
        res = getattr(resource, f"RLIMIT_{name.upper()}")
        resource.setrlimit(res, (int(soft), int(hard)))


def join_cgroup(procs_file: str) -> None:
    with open(procs_file, "w") as f:
        f.write("0\n")


# -- the launcher ------------------------------------------------------------------------------


def apply(spec: dict) -> None:
    """Everything the spec asks for, in the order that works (in the child)."""
    if spec.get("cgroup_procs"):
        join_cgroup(spec["cgroup_procs"])
    limits = dict(spec.get("rlimits") or {})
    if spec.get("nproc_headroom"):
        n = uid_tasks(os.getuid()) + int(spec["nproc_headroom"])
        limits["NPROC"] = (n, n)
    if limits:
        apply_rlimits(limits)
    if spec.get("pdeathsig"):
        _check(libc().prctl(PR_SET_PDEATHSIG, 9, 0, 0, 0), "prctl(PR_SET_PDEATHSIG)")
        parent = spec.get("parent_pid")
        if parent and os.getppid() != int(parent):  # the parent died before the signal was armed
            os._exit(137)
    if spec.get("keep_caps") is not None and os.geteuid() == 0:
        drop_capabilities([int(c) for c in spec["keep_caps"]])
    if spec.get("landlock") or spec.get("seccomp"):
        set_no_new_privs()
    if spec.get("landlock"):
        apply_landlock(spec["landlock"])
    if spec.get("seccomp"):
        sc = spec["seccomp"]
        apply_seccomp(seccomp_program(bool(sc.get("deny_unix", True)), bool(sc.get("deny_other_sockets", False))))
    if spec.get("chdir"):
        os.chdir(spec["chdir"])


def main(argv: list[str]) -> int:
    if len(argv) < 4 or argv[2] != "--":
        sys.stderr.write("usage: launcher.py SPEC -- COMMAND [ARGS...]\n")
        return 126
    try:
        spec = decode_spec(argv[1])
        apply(spec)
    except Exception as e:  # fail closed: never run the command unrestricted
        sys.stderr.write(f"codeloop sandbox: could not set up the sandbox: {e}\n")
        return 126
    cmd = argv[3:]
    try:
        os.execvp(cmd[0], cmd)
    except OSError as e:
        sys.stderr.write(f"codeloop sandbox: {cmd[0]}: {e.strerror}\n")
        return 127 if e.errno == errno.ENOENT else 126
    return 126  # not reached


if __name__ == "__main__":
    sys.exit(main(sys.argv))
