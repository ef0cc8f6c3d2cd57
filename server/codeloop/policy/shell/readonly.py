"""The built-in read-only classifier (plan mode): which commands only look."""

from __future__ import annotations

from codeloop.policy.shell.words import _short_flags

_READ_ONLY = {
    "ls", "cat", "head", "tail", "wc", "grep", "egrep", "fgrep", "rg", "ag", "ack", "pwd", "echo", "printf",
    "which", "type", "whereis", "file", "stat", "du", "df", "tree", "less", "more", "bat", "cut", "tr", "diff",
    "cmp", "comm", "basename", "dirname", "realpath", "readlink", "whoami", "id", "uname", "printenv",
    "true", "false", "test", "[", "[[", "nl", "od", "hexdump", "strings", "sha1sum", "sha256sum", "sha512sum",
    "md5sum", "md5", "shasum", "cksum", "b2sum", "jq", "cd", "pushd", "popd", "dirs", "column", "fold", "rev",
    "tac", "paste", "expand", "unexpand", "seq", "sleep", "uptime", "free", "ps", "groups", "locale", "tty",
    "lsb_release", "nproc", "arch", "look", "fmt", "zcat", "zgrep", "xzcat", "bzcat", "lscpu", "lsblk",
    "getconf", "cal", "env", "sort", "uniq", "xxd", "date", "hostname", "command", "man", "info", "help",
    "wait", "fd", "fdfind", "dust", "exa", "eza", "jobs", "history", "yq", "tldr", "dig", "nslookup",
    "host", "ping", "sha224sum", "sha384sum", "base64", "numfmt", "join", "csplit", "split", "find",
}


def is_read_only_command(name: str, argv: list[str]) -> bool:
    """The built-in read-only classifier used by plan mode (after unwrapping)."""
    if name not in _READ_ONLY:
        return False
    flags, operands = _short_flags(argv)
    if name == "sort" and ("-o" in flags or "--output" in flags):
        return False
    if name == "uniq" and len(operands) > 1:
        return False
    if name == "tree" and ("-o" in flags):
        return False
    if name == "xxd" and ("-r" in flags or len(operands) > 1):
        return False
    if name == "date" and ("-s" in flags or "--set" in flags):
        return False
    if name == "hostname" and operands:
        return False
    if name == "env" and operands:
        return False  # env CMD: unwrap() handles the command; env alone prints
    if name == "command" and not ({"-v", "-V"} & flags):
        return False
    if name in ("rg",) and ("--pre" in flags):
        return False
    if name == "yq" and ("-i" in flags or "--inplace" in flags):
        return False
    if name in ("split", "csplit"):
        return False
    if name == "base64" and ("-o" in flags or "--output" in flags):
        return False
    if name == "find":
        return not any(a in argv for a in ("-delete", "-fprint", "-fprint0", "-fprintf", "-fls"))
    return True


_GIT_RO = {
    "status", "log", "diff", "show", "rev-parse", "ls-files", "ls-tree", "blame", "grep", "shortlog",
    "describe", "cat-file", "show-ref", "merge-base", "rev-list", "count-objects", "name-rev", "whatchanged",
    "version", "help", "ls-remote", "annotate", "show-branch", "cherry", "check-ignore", "var", "diff-tree",
    "diff-files", "diff-index", "for-each-ref", "verify-commit", "verify-tag", "range-diff",
}


def _git_read_only(sub: str | None, rest: list[str]) -> bool:
    if sub is None:
        return True
    flags, operands = _short_flags(rest)
    if any(r.startswith("--output") for r in rest) or "--ext-diff" in rest:
        return False
    if sub in _GIT_RO:
        return True
    if sub == "branch":
        if flags & {"-d", "-D", "-m", "-M", "-c", "-C", "-f", "--delete", "--move", "--copy", "--force",
                    "--set-upstream-to", "-u", "--unset-upstream", "--edit-description", "--track", "-t"}:
            return False
        listing = flags & {"-l", "--list", "-a", "--all", "-r", "--remotes", "--contains", "--no-contains",
                           "--merged", "--no-merged", "--points-at"}
        return not operands or bool(listing)
    if sub == "tag":
        if flags & {"-d", "--delete", "-a", "-s", "-f", "-m", "-F", "-u", "--annotate", "--sign", "--force"}:
            return False
        return not operands or bool(flags & {"-l", "--list"})
    if sub == "remote":
        return not operands or operands[0] in ("show", "get-url") or (flags <= {"-v", "--verbose"} and not operands)
    if sub == "config":
        return bool(flags & {"--get", "--get-all", "--list", "-l", "--get-regexp", "--show-origin"}) or operands[:1] in (["get"], ["list"])
    if sub == "stash":
        return operands[:1] in (["list"], ["show"])
    if sub == "reflog":
        return not operands or operands[0] in ("show",)
    if sub == "worktree":
        return operands[:1] == ["list"]
    if sub == "submodule":
        return operands[:1] == ["status"] or not operands
    return False
