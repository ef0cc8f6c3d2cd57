"""Per-command checkers: what each command does that the policy must weigh.

``CHECKERS`` maps a command name (after unwrapping sudo, env, timeout...) to its
checker. A checker gets the command (``Cmd``), reports findings through
``cmd.rec`` (a ``findings.Recorder``) and returns whether the command is
read-only (for plan mode). Names without an entry get ``check_default``: the
read-only classifier.

To teach the classifier a new command: write one ``check_*`` function and add one
entry to ``CHECKERS``.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Callable

from codeloop.policy.shell.findings import Recorder
from codeloop.policy.shell.model import Part, Word
from codeloop.policy.shell.paths import _CLASS_TEXT, CATASTROPHIC_CLASSES
from codeloop.policy.shell.readonly import _git_read_only, is_read_only_command
from codeloop.policy.shell.words import _find_info, _operand_words, _short_flags, git_subcommand

POWER_COMMANDS = {"shutdown", "reboot", "halt", "poweroff"}

_PUBLISH = {
    ("npm", "publish"), ("npm", "unpublish"), ("yarn", "publish"), ("yarn", "npm"), ("pnpm", "publish"),
    ("bun", "publish"), ("twine", "upload"), ("cargo", "publish"), ("cargo", "yank"), ("poetry", "publish"),
    ("gem", "push"), ("gem", "yank"), ("docker", "push"), ("podman", "push"), ("buildah", "push"),
    ("flit", "publish"), ("hatch", "publish"), ("uv", "publish"), ("pdm", "publish"), ("vsce", "publish"),
    ("ovsx", "publish"), ("helm", "push"), ("mvn", "deploy"), ("gradle", "publish"), ("dotnet", "nuget"),
    ("nuget", "push"), ("pod", "trunk"), ("swift", "package-registry"), ("gh", "release"), ("jsr", "publish"),
    ("deno", "publish"), ("mix", "hex.publish"), ("lein", "deploy"), ("conda", "upload"), ("anaconda", "upload"),
}
_GIT_EXEC_CONFIG = re.compile(
    r"^(core\.(pager|sshcommand|editor|fsmonitor|hookspath|askpass|gitproxy)|alias\.|pager\.|diff\.external|"
    r"sequence\.editor|credential\.|gpg\.|.*\.(command|textconv|clean|smudge|process|cmd|tool|helper)$|"
    r"uploadpack\.|receive\.|remote\..*\.(uploadpack|receivepack)|protocol\.)"
)


@dataclass(slots=True)
class Cmd:
    """One command to check: the part (index ``i``), its name and arguments."""

    rec: Recorder
    i: int
    part: Part
    name: str
    args: list[Word]
    argv: list[str]  # the arguments' texts
    flags: set[str]  # `_short_flags(argv)`
    operands: list[str]


Checker = Callable[[Cmd], bool]


def check_default(c: Cmd) -> bool:
    return is_read_only_command(c.name, c.argv) and not c.rec.has_output_option(c.name, c.argv)


# -- deleting, changing permissions, disks, the machine -----------------------


def check_delete(c: Cmd) -> bool:
    recursive = c.name == "rimraf" or bool(c.flags & {"-r", "-R", "--recursive"}) or c.name == "del-cli"
    for w in _operand_words(c.args):
        cls, path = c.rec.classify_target(w, c.part)
        if recursive and cls in CATASTROPHIC_CLASSES:
            c.rec.add("catastrophic", "rm-root", f"recursively deletes {_CLASS_TEXT[cls]} ({w.text})", c.i, path)
        elif recursive and cls == "unresolved-root":
            c.rec.add("risky", "rm-unresolved",
                      f"recursively deletes {w.text!r}, which is `/` if the variable is empty", c.i)
        elif cls == "dynamic" and recursive:
            c.rec.add("risky", "rm-dynamic", f"recursively deletes {w.text!r}, only known when it runs", c.i)
        else:
            c.rec.write_target(c.i, c.part, w, "delete")
    return False


def check_find(c: Cmd) -> bool:
    starts, narrowed, actions = _find_info(c.args)
    deletes = "-delete" in c.argv
    writes = any(a in c.argv for a in ("-fprint", "-fprint0", "-fprintf", "-fls"))
    for j, a in enumerate(c.argv):
        if a in ("-fprint", "-fprint0", "-fprintf", "-fls") and j + 1 < len(c.args):
            c.rec.write_target(c.i, c.part, c.args[j + 1], f"find {a}")
    if deletes:
        for w in starts:
            cls, path = c.rec.classify_target(w, c.part)
            if cls in CATASTROPHIC_CLASSES and not narrowed:
                c.rec.add("catastrophic", "find-delete", f"deletes everything under {_CLASS_TEXT[cls]} ({w.text})", c.i, path)
            elif cls in CATASTROPHIC_CLASSES - {"workspace"} or cls in ("outside", "dynamic", "unresolved-root", "unknown"):
                c.rec.add("risky", "find-delete-outside", f"deletes files under {w.text}, outside the workspace", c.i, path)
    return not deletes and not writes


def check_chmod(c: Cmd) -> bool:
    recursive = bool(c.flags & {"-R", "--recursive"}) or (c.name == "setfacl" and "-R" in c.flags)
    ops = _operand_words(c.args)[1:] if c.name != "chattr" else _operand_words(c.args)
    for w in ops:
        cls, path = c.rec.classify_target(w, c.part)
        if recursive and cls in CATASTROPHIC_CLASSES:
            c.rec.add("catastrophic", "chmod-root",
                      f"recursively changes permissions/ownership of {_CLASS_TEXT[cls]} ({w.text})", c.i, path)
        else:
            c.rec.write_target(c.i, c.part, w, "change")
    return False


def check_mkfs(c: Cmd) -> bool:
    c.rec.add("catastrophic", "mkfs", f"formats a filesystem ({c.name})", c.i)
    return False


def check_partition(c: Cmd) -> bool:
    c.rec.add("risky", "partition", f"changes disk partitions ({c.name})", c.i)
    return False


def check_dd(c: Cmd) -> bool:
    for a in c.args:
        if a.text.startswith("of="):
            c.rec.write_target(c.i, c.part, Word(a.text[3:], a.params, a.subst, a.text[3:].startswith("~")), "dd")
    return False


def check_power(c: Cmd) -> bool:
    c.rec.add("catastrophic", "power", f"stops or restarts the machine ({c.name})", c.i)
    return False


def check_init(c: Cmd) -> bool:
    if any(a in ("0", "6") for a in c.argv):
        c.rec.add("catastrophic", "power", f"stops or restarts the machine ({c.name} {' '.join(c.argv)})", c.i)
        return False
    return check_default(c)


def check_systemctl(c: Cmd) -> bool:
    if any(a in ("poweroff", "reboot", "halt", "kexec", "emergency", "rescue", "soft-reboot") for a in c.operands):
        c.rec.add("catastrophic", "power", "stops or restarts the machine (systemctl)", c.i)
        return False
    return check_default(c)


def check_kill(c: Cmd) -> bool:
    if "1" in c.operands or "-1" in c.argv:
        c.rec.add("catastrophic", "kill-all", "kills init or every process", c.i)
        return False
    return check_default(c)


def check_su(c: Cmd) -> bool:
    c.rec.add("risky", "sudo", "runs as another user (su)", c.i)
    return False


# -- git and publishing ---------------------------------------------------------


def check_git(c: Cmd) -> bool:
    sub, rest, globals_ = git_subcommand(c.argv)
    flags, operands = _short_flags(rest)
    if sub == "push":
        forced = flags & {"-f", "--force", "--force-with-lease", "--force-if-includes", "--mirror", "--delete", "-d"}
        if forced or any(o.startswith("+") for o in operands) or any(o.startswith(":") and len(o) > 1 for o in operands):
            c.rec.add("risky", "force-push", "force-pushes (or deletes) remote history", c.i)
        return False
    if sub == "reset" and "--hard" in flags:
        c.rec.add("risky", "reset-hard", "git reset --hard discards uncommitted work", c.i)
        return False
    if sub == "clean" and (flags & {"-f", "--force"}):
        c.rec.add("risky", "git-clean", "git clean -f deletes untracked files", c.i)
        return False
    if sub in ("checkout", "restore") and ("." in operands or "--" in rest and rest[-1:] == ["."]) and sub == "checkout" and "--" in rest:
        c.rec.add("risky", "discard", "discards uncommitted changes", c.i)
        return False
    for j, g in enumerate(globals_):
        if g == "-c" and j + 1 < len(globals_):
            key = globals_[j + 1].split("=", 1)[0].lower()
            if _GIT_EXEC_CONFIG.search(key):
                c.rec.add("risky", "git-config-exec", f"sets git config {key!r}, which runs a command", c.i)
    if "-c" in globals_ or "--exec-path" in [g.split("=")[0] for g in globals_] or "--config-env" in [g.split("=")[0] for g in globals_]:
        return False
    return _git_read_only(sub, rest)


def check_publish(c: Cmd) -> bool:
    for a, b in _PUBLISH:
        if c.name == a and c.operands[:1] == [b]:
            c.rec.add("risky", "publish", f"publishes a package or image ({c.name} {b})", c.i)
            return False
    return check_default(c)


def check_python(c: Cmd) -> bool:
    argv = c.argv
    if len(argv) >= 3 and argv[0] == "-m" and argv[1] == "twine" and argv[2] == "upload":
        c.rec.add("risky", "publish", "publishes a package (twine upload)", c.i)
        return False
    return check_default(c)


# -- writers ----------------------------------------------------------------------


def check_tee(c: Cmd) -> bool:
    for w in _operand_words(c.args):
        c.rec.write_target(c.i, c.part, w, "tee")
    return False


def check_copy(c: Cmd) -> bool:
    """cp, mv, install, ln, rsync, scp: the destination is written; mv also removes its
    sources, cp/rsync/scp read theirs."""
    name, args, argv = c.name, c.args, c.argv
    ops = _operand_words(args)
    target_dir = None
    for j, a in enumerate(argv):
        if a in ("-t", "--target-directory") and j + 1 < len(args):
            target_dir = args[j + 1]
        elif a.startswith("--target-directory="):
            target_dir = Word(a.split("=", 1)[1])
    dests = [target_dir] if target_dir is not None else ops[-1:] if len(ops) >= 2 else []
    for w in dests:
        if name in ("rsync", "scp") and ":" in w.text:
            continue
        c.rec.write_target(c.i, c.part, w, name)
    if name == "mv":
        for w in (ops if target_dir is not None else ops[:-1]):
            cls, path = c.rec.classify_target(w, c.part)
            if cls in CATASTROPHIC_CLASSES:
                c.rec.add("catastrophic", "mv-root", f"moves {_CLASS_TEXT[cls]} away ({w.text})", c.i, path)
            else:
                c.rec.write_target(c.i, c.part, w, "move")
    if name in ("cp", "rsync", "scp"):
        for w in ops[:-1] if target_dir is None else ops:
            c.rec.read_target(c.i, c.part, w)
    return False


def check_in_place(c: Cmd) -> bool:
    """sed -i, perl -i, ruby -i: the files are rewritten."""
    argv = c.argv
    in_place = (a == "-i" or a.startswith("-i") or a.startswith("--in-place")
                for a in argv if not a.startswith("--") or a.startswith("--in-place"))
    if not any(in_place):
        return check_default(c)
    ops = _operand_words(c.args)
    script_given = any(a in ("-e", "--expression", "-f", "--file") for a in argv)
    files = ops if script_given else ops[1:]
    for w in files:
        c.rec.write_target(c.i, c.part, w, f"{c.name} -i")
    return False


def check_create(c: Cmd) -> bool:
    """truncate, touch, mkdir, mkfifo, mknod: every operand is written."""
    for w in _operand_words(c.args):
        if c.name == "truncate" and w.text.isdigit():
            continue
        c.rec.write_target(c.i, c.part, w, c.name)
    return False


def check_not_read_only(c: Cmd) -> bool:
    """time (its command is checked as a part of its own), curl and wget (output options)."""
    return False


def _table(*groups: tuple[tuple[str, ...], Checker]) -> dict[str, Checker]:
    table: dict[str, Checker] = {}
    for names, checker in groups:
        for name in names:
            if name in table:
                raise ValueError(f"two checkers for {name!r}")
            table[name] = checker
    return table


CHECKERS: dict[str, Checker] = _table(
    (("rm", "rimraf", "del-cli", "trash", "rmdir", "unlink", "shred"), check_delete),
    (("find",), check_find),
    (("chmod", "chown", "chgrp", "chattr", "setfacl"), check_chmod),
    (("mke2fs", "mkswap", "wipefs", "mkdosfs", "mkntfs", "newfs"), check_mkfs),
    (("fdisk", "sfdisk", "parted", "gdisk", "sgdisk", "cfdisk", "blkdiscard"), check_partition),
    (("dd",), check_dd),
    (tuple(sorted(POWER_COMMANDS)), check_power),
    (("init", "telinit"), check_init),
    (("systemctl",), check_systemctl),
    (("kill", "pkill", "killall"), check_kill),
    (("su",), check_su),
    (("git",), check_git),
    (tuple(sorted({a for a, _ in _PUBLISH})), check_publish),
    (("python", "python3", "python2"), check_python),
    (("tee",), check_tee),
    (("cp", "mv", "install", "ln", "rsync", "scp"), check_copy),
    (("sed", "perl", "ruby"), check_in_place),
    (("truncate", "touch", "mkdir", "mkfifo", "mknod"), check_create),
    (("time", "curl", "wget"), check_not_read_only),
)
# Name prefixes (mkfs.ext4, mkfs.vfat...), tried when a name has no entry of its own.
PREFIX_CHECKERS: tuple[tuple[str, Checker], ...] = (("mkfs", check_mkfs),)
# Checkers run without the generic scan of output options (`--output=F`, `-o F`).
WITHOUT_OUTPUT_OPTIONS: frozenset[Checker] = frozenset({check_delete})


def checker_for(name: str) -> Checker:
    found = CHECKERS.get(name)
    if found is not None:
        return found
    for prefix, checker in PREFIX_CHECKERS:
        if name.startswith(prefix):
            return checker
    return check_default


def check(rec: Recorder, i: int, part: Part, name: str, args: list[Word], argv: list[str]) -> bool:
    """Run the checker of ``name``; whether the command is read-only."""
    flags, operands = _short_flags(argv)
    checker = checker_for(name)
    if checker not in WITHOUT_OUTPUT_OPTIONS:
        rec.output_options(i, part, name, args, argv)
    return checker(Cmd(rec, i, part, name, args, argv, flags, operands))
