"""Shell words: static expansion, wrappers (sudo, env, timeout...) and option skipping.

Pure functions on ``Word`` lists and argv strings; nothing here parses or classifies.
"""

from __future__ import annotations

import re
from pathlib import Path

from codeloop.policy.shell.model import Word

# Command families: what runs code from a string or standard input, what downloads.
_SHELLS = {"sh", "bash", "zsh", "dash", "ksh", "mksh", "ash", "fish", "busybox"}
_INTERPRETERS = _SHELLS | {
    "python", "python2", "python3", "perl", "ruby", "node", "nodejs", "php", "pwsh",
    "powershell", "lua", "tclsh", "deno", "bun", "osascript", "source", ".",
}
_DOWNLOADERS = {"curl", "wget", "fetch", "aria2c", "http", "https", "xh", "lwp-request", "GET"}

_PARAM_RE = re.compile(r"\$\{([A-Za-z_][A-Za-z0-9_]*)\}|\$([A-Za-z_][A-Za-z0-9_]*)")


def expand_text(text: str, params: tuple[str, ...], tilde: bool, env: dict[str, str], home: Path) -> str | None:
    """The static value of a word, or None when it depends on run-time state."""
    if tilde:
        if text == "~" or text.startswith("~/"):
            text = str(home) + text[1:]
        else:
            return None  # ~user
    if params:
        found = list(_PARAM_RE.finditer(text))
        if not found:
            return None  # ${x:-y}, $'..' and other forms we do not evaluate
        for m in found:
            name = m.group(1) or m.group(2)
            if name not in env or not env[name]:
                return None
        text = _PARAM_RE.sub(lambda m: env[m.group(1) or m.group(2)], text)
        if "$" in text and re.search(r"\$[{A-Za-z_(]", text):
            return None
    return text


def expand_word(w: Word, env: dict[str, str], home: Path) -> str | None:
    if w.subst:
        return None
    return expand_text(w.text, w.params, w.tilde, env, home)


def base_name(cmd: str) -> str:
    return cmd.rsplit("/", 1)[-1] if "/" in cmd and not cmd.endswith("/") else cmd


# wrapper -> (options that take a value, does a positional come before the command)
_WRAPPERS: dict[str, tuple[set[str], int]] = {
    "sudo": ({"-u", "-g", "-h", "-p", "-C", "-D", "-r", "-t", "-U", "-T", "--user", "--group", "--host",
              "--prompt", "--close-from", "--chdir", "--role", "--type", "--other-user", "--command-timeout"}, 0),
    "doas": ({"-u", "-C"}, 0),
    "run0": ({"-u", "--user", "-g", "--group", "-D", "--chdir"}, 0),
    "pkexec": ({"--user"}, 0),
    "nice": ({"-n", "--adjustment"}, 0),
    "nohup": (set(), 0),
    "timeout": ({"-s", "--signal", "-k", "--kill-after"}, 1),
    "time": ({"-f", "--format", "-o", "--output"}, 0),
    "stdbuf": ({"-i", "-o", "-e", "--input", "--output", "--error"}, 0),
    "ionice": ({"-c", "--class", "-n", "--classdata", "-p", "--pid", "-P", "--pgid", "-u", "--uid"}, 0),
    "command": (set(), 0),
    "builtin": (set(), 0),
    "exec": ({"-a"}, 0),
    "env": ({"-u", "--unset", "-C", "--chdir", "-S", "--split-string"}, 0),
    "caffeinate": ({"-t", "-w"}, 0),
    "chronic": (set(), 0),
    "unbuffer": (set(), 0),
    "npx": ({"-p", "--package", "-c", "--call"}, 0),
    "pnpx": (set(), 0),
    "bunx": (set(), 0),
}
PRIVILEGE_WRAPPERS = {"sudo", "doas", "run0", "pkexec", "su"}
BENIGN_WRAPPERS = {"nice", "nohup", "timeout", "time", "stdbuf", "ionice", "command", "builtin", "chronic", "unbuffer", "caffeinate"}


def unwrap_one(words: list[Word]) -> tuple[list[Word], str] | None:
    """Strip one wrapper (``sudo -u x``, ``timeout 10``, ``env A=1``...): (rest, its name)."""
    if not words:
        return None
    name = base_name(words[0].text)
    if name not in _WRAPPERS:
        return None
    if name == "command" and any(x.text in ("-v", "-V") for x in words[1:2]):
        return None  # command -v X only prints
    with_value, positionals = _WRAPPERS[name]
    w = words
    i = 1
    while i < len(w):
        t = w[i].text
        if t == "--":
            i += 1
            break
        if name == "env" and re.match(r"^[A-Za-z_][A-Za-z0-9_]*=", t):
            i += 1
            continue
        if t.startswith("-") and t != "-":
            if name == "nice" and re.fullmatch(r"-\d+", t):
                i += 1
                continue
            opt = t.split("=", 1)[0]
            i += 1
            if opt in with_value and "=" not in t:
                i += 1
            continue
        if name == "env" and t == "-":
            i += 1
            continue
        break
    i += positionals
    rest = w[i:]
    if not rest:
        return None
    return rest, name


def unwrap(words: list[Word]) -> tuple[list[Word], list[str]]:
    """Strip wrappers (sudo, env, nice, nohup, timeout N, time, command, exec...).

    Returns the words of the command that really runs and the wrappers' names.
    ``command -v X`` is not a wrapper (it only prints), nor is ``env`` alone.
    """
    wrappers: list[str] = []
    w = list(words)
    for _ in range(16):
        step = unwrap_one(w)
        if step is None:
            break
        w, name = step
        wrappers.append(name)
    return w, wrappers


def _skip_options(args: list[Word], flags: set[str], with_value: set[str]) -> list[Word]:
    i = 0
    while i < len(args):
        t = args[i].text
        if t == "--":
            return args[i + 1:]
        if not t.startswith("-"):
            break
        i += 2 if t in with_value else 1
    return args[i:]


def _shell_c_string(args: list[Word]) -> Word | None:
    """The code string of ``sh -c 'code'`` (also ``-lc``, ``-ec``, ``-o x -c``)."""
    i = 0
    seen_c = False
    while i < len(args):
        t = args[i].text
        if t == "--":
            i += 1
            break
        if t in ("-o", "+o", "-O", "+O", "--rcfile", "--init-file"):
            i += 2
            continue
        if t.startswith("--"):
            i += 1
            continue
        if t.startswith(("-", "+")) and len(t) > 1:
            if "c" in t[1:]:
                seen_c = True
            i += 1
            continue
        break
    if seen_c and i < len(args):
        return args[i]
    return None


def _has_script_operand(args: list[Word], interpreter: bool = False) -> bool:
    """Does the shell/interpreter get a script (a file, -c, -e, -m) rather than stdin?"""
    i = 0
    while i < len(args):
        t = args[i].text
        if t == "-" or t == "-s":
            return False
        if t in ("-c", "-e", "-E", "-m", "-r", "--eval", "--print", "-p") and interpreter:
            return True
        if t in ("-o", "+o", "-O", "+O", "-W", "-X", "-I", "--rcfile", "--init-file", "--require", "-r"):
            i += 2
            continue
        if t.startswith(("-", "+")):
            if not interpreter and "c" in t[1:] and not t.startswith("--"):
                return True
            i += 1
            continue
        return True
    return False


_XARGS_VALUE = {"-a", "-d", "-E", "-I", "-L", "-n", "-P", "-s", "--arg-file", "--delimiter", "--eof",
                "--replace", "--max-lines", "--max-args", "--max-procs", "--max-chars", "--process-slot-var"}


def _xargs_command(args: list[Word]) -> list[Word]:
    i = 0
    while i < len(args):
        t = args[i].text
        if t == "--":
            return args[i + 1:]
        if not t.startswith("-") or t == "-":
            return args[i:]
        opt = t.split("=", 1)[0]
        if opt in _XARGS_VALUE and "=" not in t:
            i += 2
        else:
            i += 1
    return []


_FIND_NARROWING = {
    "-name", "-iname", "-path", "-ipath", "-wholename", "-iwholename", "-regex", "-iregex",
    "-newer", "-anewer", "-cnewer", "-mtime", "-mmin", "-atime", "-amin", "-ctime", "-cmin",
    "-size", "-empty", "-user", "-group", "-perm", "-inum", "-links", "-samefile", "-lname", "-ilname",
    "-uid", "-gid", "-nouser", "-nogroup", "-used", "-newerXY", "-context",
}
_FIND_EXEC = {"-exec", "-execdir", "-ok", "-okdir"}


def _find_info(args: list[Word]) -> tuple[list[Word], bool, list[list[Word]]]:
    """(start paths, has a narrowing test, commands run by -exec/-ok)."""
    starts: list[Word] = []
    i = 0
    while i < len(args) and args[i].text in ("-H", "-L", "-P", "-O0", "-O1", "-O2", "-O3", "-D"):
        i += 2 if args[i].text == "-D" else 1
    while i < len(args) and not args[i].text.startswith(("-", "(", "!")) and args[i].text not in ("(", "!"):
        starts.append(args[i])
        i += 1
    narrowed = False
    actions: list[list[Word]] = []
    while i < len(args):
        t = args[i].text
        if t in _FIND_NARROWING or t.startswith("-newer"):
            narrowed = True
        if t in _FIND_EXEC:
            cmd: list[Word] = []
            i += 1
            while i < len(args) and args[i].text not in (";", "+"):
                cmd.append(args[i])
                i += 1
            if cmd:
                actions.append(cmd)
        i += 1
    if not starts:
        starts = [Word(".")]
    return starts, narrowed, actions


_GIT_GLOBAL_VALUE = {"-C", "-c", "--git-dir", "--work-tree", "--namespace", "--exec-path", "--config-env", "--super-prefix"}


def git_subcommand(args: list[str]) -> tuple[str | None, list[str], list[str]]:
    """(subcommand, its arguments, the global options before it)."""
    i = 0
    globals_: list[str] = []
    while i < len(args):
        t = args[i]
        if t.startswith("-"):
            opt = t.split("=", 1)[0]
            globals_.append(t)
            if opt in _GIT_GLOBAL_VALUE and "=" not in t:
                if i + 1 < len(args):
                    globals_.append(args[i + 1])
                i += 2
            else:
                i += 1
            continue
        return t, args[i + 1:], globals_
    return None, [], globals_


def _short_flags(args: list[str]) -> tuple[set[str], list[str]]:
    """(flags, operands) for a GNU-style command; after `--` everything is an operand."""
    flags: set[str] = set()
    operands: list[str] = []
    done = False
    for a in args:
        if done:
            operands.append(a)
        elif a == "--":
            done = True
        elif a.startswith("--"):
            flags.add(a.split("=", 1)[0])
        elif a.startswith("-") and len(a) > 1:
            for ch in a[1:]:
                flags.add("-" + ch)
        else:
            operands.append(a)
    return flags, operands


def _operand_words(words: list[Word]) -> list[Word]:
    out: list[Word] = []
    done = False
    for w in words:
        if done:
            out.append(w)
        elif w.text == "--":
            done = True
        elif w.text.startswith("-") and len(w.text) > 1:
            continue
        else:
            out.append(w)
    return out


_HARMLESS_ENV = re.compile(r"^(LC_[A-Z]+|LANG|LANGUAGE|TZ|NO_COLOR|FORCE_COLOR|CLICOLOR|TERM|COLUMNS|LINES)=")


def _harmless_assignment(a: str) -> bool:
    return bool(_HARMLESS_ENV.match(a))


def _echo_substitution(text: str) -> str | None:
    """`$(echo rm)`, `` `printf rm` ``: the static value of a trivial substitution."""
    m = re.fullmatch(r"\$\(\s*(?:echo|printf)\s+(?:-n\s+|-e\s+)?['\"]?([\w./-]+)['\"]?\s*\)"
                     r"|`\s*(?:echo|printf)\s+(?:-n\s+)?['\"]?([\w./-]+)['\"]?\s*`", text)
    if m:
        return m.group(1) or m.group(2)
    return None
