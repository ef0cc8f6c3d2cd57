"""Recording findings: what a command writes, reads, or does that the policy must weigh."""

from __future__ import annotations

import os
import re
from pathlib import Path

from codeloop.policy.shell.model import Finding, Level, Part, Word
from codeloop.policy.shell.paths import BLOCK_DEVICE_RE, HARMLESS_DEVICES, _has_glob, is_shell_rc, target_class
from codeloop.policy.shell.secret_paths import is_secret_path
from codeloop.policy.shell.words import expand_word

_OUTPUT_LONG = {"--output", "--output-file", "--output-document", "--log-file", "--outfile", "--out-file"}
_DASH_O_WRITERS = {"sort", "gcc", "g++", "cc", "c++", "clang", "clang++", "curl", "wget", "tree", "base64",
                   "pandoc", "ld", "rustc", "go", "nvcc", "gfortran", "zig", "as", "objcopy", "uniq"}

_NON_READERS = {"echo", "printf", "ls", "rm", "rmdir", "touch", "mkdir", "test", "[", "[[", "stat", "chmod",
                "chown", "chgrp", "cd", "which", "type", "basename", "dirname", "realpath", "readlink", "true",
                "false", "unlink", "shred", "du", "file"}


class Recorder:
    """Collects the findings of one command; checkers (``checkers.CHECKERS``) report
    through it: a write, a read of a secret, a catastrophic or risky command."""

    def __init__(self, root: Path, home: Path) -> None:
        self.root = root
        self.home = home
        self.findings: list[Finding] = []

    def add(self, level: Level, code: str, message: str, part: int | None, path: Path | None = None) -> None:
        self.findings.append(Finding(level, code, message, part, path))

    def value(self, w: Word, part: Part) -> str | None:
        return expand_word(w, part.env, self.home)

    def classify_target(self, w: Word, part: Part) -> tuple[str, Path | None]:
        value = self.value(w, part)
        if value is None:
            # `$UNSET/`, `$X/*`: expands to `/` or `/*` when X is empty
            if re.fullmatch(r"\$\{?[A-Za-z_][A-Za-z0-9_]*\}?/\*?", w.text) or w.subst and w.text.endswith("/*"):
                return "unresolved-root", None
            return "dynamic", None
        return target_class(value, part.cwd, self.root, self.home)

    def write_target(self, i: int, part: Part, w: Word | None, how: str, is_redirect: bool = False) -> bool:
        """Record a write; return True if it is harmless (for plan mode: /dev/null...)."""
        if w is None:
            return True
        value = self.value(w, part)
        if value is None:
            self.add("write", "unknown", f"{how} writes to {w.text!r}, which is only known when it runs", i)
            return False
        if value.startswith("/dev/") or value in HARMLESS_DEVICES:
            norm = os.path.normpath(value)
            if norm in HARMLESS_DEVICES or norm.startswith("/dev/fd/") or norm.startswith("/dev/pts/"):
                return True
            if BLOCK_DEVICE_RE.match(norm):
                self.add("catastrophic", "device-write", f"{how} overwrites the device {norm}", i, Path(norm))
                return False
            self.add("write", "outside", f"{how} writes to the device {norm}", i, Path(norm))
            return False
        if _has_glob(value) and not is_redirect:
            cls, path = target_class(value, part.cwd, self.root, self.home)
            if path is None:
                self.add("write", "unknown", f"{how} writes to {w.text!r}, relative to an unknown directory", i)
                return False
            self.add("write", "inside" if cls == "inside" or cls == "workspace" else "outside",
                     f"{how} writes to {value}", i, path)
            return False
        if value.startswith("/"):
            path = Path(os.path.normpath(value))
        elif part.cwd is None:
            self.add("write", "unknown", f"{how} writes to {w.text!r}, relative to an unknown directory", i)
            return False
        else:
            path = Path(os.path.normpath(os.path.join(part.cwd, value)))
        if is_shell_rc(path, self.home):
            self.add("write", "rc", f"{how} writes to the shell startup file {path}", i, path)
        elif path == self.root or self.root in path.parents:
            self.add("write", "inside", f"{how} writes to {path}", i, path)
        else:
            self.add("write", "outside", f"{how} writes to {path}, outside the workspace", i, path)
        return False

    def read_target(self, i: int, part: Part, w: Word) -> None:
        value = self.value(w, part)
        if value is None:
            return
        if value.startswith("/"):
            path = Path(os.path.normpath(value))
        elif part.cwd is None:
            path = Path(os.path.normpath(os.path.join(self.root, value)))
        else:
            path = Path(os.path.normpath(os.path.join(part.cwd, value)))
        if is_secret_path(path, self.home):
            self.add("read", "secret", f"reads {value!r}, which may hold secrets", i, path)

    def secret_reads(self, i: int, part: Part, name: str, args: list[Word]) -> None:
        if name in _NON_READERS:
            return
        for w in args:
            text = w.text
            if text.startswith("-") and "=" in text:
                w = Word(text.split("=", 1)[1], w.params, w.subst, text.split("=", 1)[1].startswith("~"))
            elif text.startswith("-"):
                continue
            elif text.startswith("@"):
                w = Word(text[1:], w.params, w.subst)
            self.read_target(i, part, w)

    def output_options(self, i: int, part: Part, name: str, args: list[Word], argv: list[str]) -> None:
        """Files named by output options: `--output=f`, `sort -o f`, `curl -o f`, `gcc -o f`..."""
        for j, a in enumerate(argv):
            opt, eq, value = a.partition("=")
            target: Word | None = None
            if opt in _OUTPUT_LONG:
                if eq:
                    target = Word(value, args[j].params, args[j].subst, value.startswith("~"))
                elif j + 1 < len(args):
                    target = args[j + 1]
            elif name in _DASH_O_WRITERS and (a == "-o" or (name in ("wget",) and a == "-O")):
                if j + 1 < len(args):
                    target = args[j + 1]
            elif name in _DASH_O_WRITERS and a.startswith("-o") and len(a) > 2 and name not in ("curl", "wget"):
                target = Word(a[2:])
            if target is not None and target.text != "-":
                self.write_target(i, part, target, f"{name} {opt}")

    def has_output_option(self, name: str, argv: list[str]) -> bool:
        return any(a.split("=", 1)[0] in _OUTPUT_LONG for a in argv) or (
            name in _DASH_O_WRITERS and any(a == "-o" or a.startswith("-o") and name != "curl" and len(a) > 2 for a in argv))
