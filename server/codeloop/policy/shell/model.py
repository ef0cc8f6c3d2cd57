"""The data of the shell analysis: words, redirections, parts, findings."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Literal


@dataclass
class Word:
    """One shell word, unquoted the way bash would (``r""m`` -> ``rm``)."""

    text: str
    params: tuple[str, ...] = ()  # parameter expansions it contains ($X, ${X})
    subst: bool = False  # contains $(...), `...`, <(...) or >(...)
    tilde: bool = False  # starts with an unquoted ~

    @property
    def static(self) -> bool:
        return not self.params and not self.subst and not self.tilde


@dataclass
class Redirect:
    op: str  # '>', '>>', '>|', '&>', '<', '<<', '<>', '>&', ...
    fd: int | None
    target: Word | None  # None for a file-descriptor duplication (2>&1)
    heredoc: str | None = None

    @property
    def writes(self) -> bool:
        return self.target is not None and self.op in (">", ">>", ">|", "&>", "&>>", "<>", ">&")

    @property
    def reads(self) -> bool:
        return self.target is not None and self.op in ("<", "<>")


@dataclass
class Part:
    """One simple command that would run."""

    words: list[Word]  # argv, without leading assignments
    assignments: list[str] = field(default_factory=list)
    redirects: list[Redirect] = field(default_factory=list)
    text: str = ""
    cwd: Path | None = None  # None: not known statically (after `cd $X`)
    env: dict[str, str] = field(default_factory=dict)  # statically known variables
    origin: str = "command"  # command, substitution, bash -c, eval, xargs, find -exec, unparsed...
    depth: int = 0
    open_args: bool = False  # more arguments are appended at run time (xargs, find -exec)
    transparent: bool = False  # only runs its inner parts (bash -c 'static', eval, xargs)
    pipeline: int | None = None  # parts of one pipeline share an id
    stage: int = 0  # position in the pipeline
    reads_stdin_code: bool = False  # a shell/interpreter executing its standard input
    dynamic_code: bool = False  # runs a code string we could not resolve
    error: str | None = None  # an inner string that did not parse

    @property
    def argv(self) -> list[str]:
        return [w.text for w in self.words]

    @property
    def full_words(self) -> list[str]:
        return self.assignments + self.argv

    def __repr__(self) -> str:  # pragma: no cover - debugging aid
        return f"Part({self.full_words!r}, origin={self.origin!r}, cwd={self.cwd})"


@dataclass
class _Scope:
    """What the parser knows at a point of the command: the directory and static variables."""

    cwd: Path | None
    env: dict[str, str]

    def copy(self) -> "_Scope":
        return _Scope(self.cwd, dict(self.env))


@dataclass
class ParsedCommand:
    source: str
    parts: list[Part] = field(default_factory=list)
    error: str | None = None  # the top level (or an inner string) did not parse
    fork_bombs: list[str] = field(default_factory=list)  # names of self-spawning functions

    @property
    def ok(self) -> bool:
        return self.error is None


Level = Literal["catastrophic", "risky", "write", "read"]


@dataclass(frozen=True)
class Finding:
    """Something the policy must weigh.

    level:
      catastrophic  refused in every mode, whatever the rules say.
      risky         asked in every mode but bypass unless an allow rule names the part.
      write         the command writes ``path`` (redirection, cp/mv/tee/rm/...):
                    ``code`` is inside | outside | rc | protected | unknown.
      read          the command reads the secret file ``path``.
    """

    level: Level
    code: str
    message: str
    part: int | None = None  # index into ParsedCommand.parts
    path: Path | None = None


@dataclass
class Analysis:
    parsed: ParsedCommand
    findings: list[Finding]
    read_only: list[bool]  # per part, for plan mode
