"""Classification: the findings of a parsed command, part by part.

Every part is unwrapped (sudo, env, timeout...), its redirections recorded, its
command name resolved when it is dynamic, and then checked by the checker of its
name (``checkers.CHECKERS``).
"""

from __future__ import annotations

import logging
import re
from pathlib import Path

from codeloop.policy.shell.checkers import check
from codeloop.policy.shell.findings import Recorder
from codeloop.policy.shell.model import Analysis, Finding, ParsedCommand, Part, Word
from codeloop.policy.shell.parser import parse_command
from codeloop.policy.shell.paths import _CLASS_TEXT, BLOCK_DEVICE_RE, CATASTROPHIC_CLASSES
from codeloop.policy.shell.words import (
    _DOWNLOADERS,
    _INTERPRETERS,
    PRIVILEGE_WRAPPERS,
    _echo_substitution,
    _harmless_assignment,
    _operand_words,
    _short_flags,
    base_name,
    unwrap,
)

log = logging.getLogger("codeloop.policy.shell")


class _Classifier(Recorder):
    def __init__(self, parsed: ParsedCommand, root: Path, home: Path) -> None:
        super().__init__(root, home)
        self.parsed = parsed
        self.read_only: list[bool] = []

    def run(self) -> Analysis:
        parsed = self.parsed
        for name in parsed.fork_bombs:
            self.add("catastrophic", "fork-bomb",
                     f"defines a fork bomb (the function {name!r} spawns copies of itself)", None)
        if parsed.error is not None:
            self.add("risky", "parse-error",
                     f"the command could not be analysed ({parsed.error}), so it needs approval", None)
        for i, part in enumerate(parsed.parts):
            self.read_only.append(self.part(i, part))
        return Analysis(parsed, self.findings, self.read_only)

    def part(self, i: int, part: Part) -> bool:
        """Add the findings of one part; return whether it is read-only."""
        read_only = True
        for r in part.redirects:
            if r.writes and not self.write_target(i, part, r.target, "redirection", is_redirect=True):
                read_only = False
            elif r.reads and r.target is not None:
                self.read_target(i, part, r.target)
        eff, wrappers = unwrap(part.words)
        if any(w in PRIVILEGE_WRAPPERS for w in wrappers):
            self.add("risky", "sudo", f"runs with elevated privileges ({', '.join(sorted(set(wrappers) & PRIVILEGE_WRAPPERS))})", i)
            read_only = False
        if part.dynamic_code:
            self.add("risky", "dynamic-code",
                     "runs code that cannot be resolved before it runs (a variable or substitution in the script)", i)
            read_only = False
        if part.reads_stdin_code:
            read_only = False
            if self._fed_by_download(part):
                self.add("risky", "download-exec", "pipes a download into a shell or interpreter", i)
        if not eff:
            return read_only
        if part.assignments and not all(_harmless_assignment(a) for a in part.assignments):
            read_only = False
        if "env" in wrappers and any(re.match(r"^[A-Za-z_][A-Za-z0-9_]*=", w.text) for w in part.words):
            read_only = False
        cmd_word = eff[0]
        if not cmd_word.static and not (cmd_word.tilde and not cmd_word.params and not cmd_word.subst):
            resolved = self.value(cmd_word, part)
            if resolved is None:
                resolved = _echo_substitution(cmd_word.text)
            if resolved is None:
                self.add("risky", "dynamic-command",
                         f"the command name {cmd_word.text!r} is only known when it runs", i)
                self.dynamic_catastrophe(i, part, eff)
                return False
            eff = [Word(resolved)] + eff[1:]
        name = base_name(eff[0].text)
        args = eff[1:]
        argv = [w.text for w in args]
        if part.transparent:
            self.interpreter_download(i, part, name, args)
            return read_only
        ro = self.command(i, part, name, args, argv)
        self.interpreter_download(i, part, name, args)
        self.secret_reads(i, part, name, args)
        return read_only and ro

    def _fed_by_download(self, part: Part) -> bool:
        if part.pipeline is None:
            return False
        for p in self.parsed.parts:
            if p.pipeline == part.pipeline and p.stage < part.stage:
                eff, _ = unwrap(p.words)
                if eff and base_name(eff[0].text) in _DOWNLOADERS:
                    return True
        return False

    def interpreter_download(self, i: int, part: Part, name: str, args: list[Word]) -> None:
        """`bash <(curl ...)`, `sh -c "$(curl ...)"`, `eval "$(wget -O- ...)"`, `. <(curl ...)`."""
        if name not in _INTERPRETERS and name not in ("eval",):
            return
        if not any(w.subst for w in args):
            return
        for w in args:
            if w.subst and re.search(r"(^|[\s(`|;&])(" + "|".join(map(re.escape, _DOWNLOADERS)) + r")\s", w.text + " "):
                self.add("risky", "download-exec", f"runs code downloaded by {w.text!r}", i)
                return

    def dynamic_catastrophe(self, i: int, part: Part, eff: list[Word]) -> None:
        """`$(x) -rf /`: the name is unknown, but if the arguments would be catastrophic for
        rm/chmod/dd, refuse."""
        args = eff[1:]
        argv = [w.text for w in args]
        flags, _ = _short_flags(argv)
        if flags & {"-r", "-R", "--recursive"}:
            for w in _operand_words(args):
                cls, path = self.classify_target(w, part)
                if cls in CATASTROPHIC_CLASSES:
                    self.add("catastrophic", "dynamic-rm",
                             f"runs an unknown command with recursive flags on {_CLASS_TEXT[cls]} ({w.text})", i, path)
                    return
        for a in argv:
            if a.startswith("of=") and BLOCK_DEVICE_RE.match(a[3:]):
                self.add("catastrophic", "device-write", f"writes to the device {a[3:]}", i, Path(a[3:]))
                return

    def command(self, i: int, part: Part, name: str, args: list[Word], argv: list[str]) -> bool:
        return check(self, i, part, name, args, argv)


def analyze(cmd: str, cwd: Path, root: Path, home: Path) -> Analysis:
    """Parse and classify ``cmd``. Never raises."""
    root = Path(root)
    home = Path(home)
    parsed = parse_command(cmd, cwd=cwd, home=home, root=root)
    try:
        return _Classifier(parsed, root, home).run()
    except Exception as e:
        log.exception("shell classification failed on %r", cmd)
        parsed.error = parsed.error or f"classification failed: {type(e).__name__}"
        finding = Finding("risky", "parse-error", "the command could not be analysed, so it needs approval", None)
        return Analysis(parsed, [finding], [False] * len(parsed.parts))


def classify(cmd: str, cwd: Path, root: Path, home: Path) -> list[Finding]:
    """The findings for ``cmd`` run in ``cwd`` inside the workspace ``root``."""
    return analyze(cmd, cwd, root, home).findings
