"""What the model is told about its context, arranged for providers' prompt caches.

- The system prompt (``system()``): the static instructions and each tool's guidance,
  then the session context: environment, the project memory files, the branch and
  recent commits. Built once per session; it changes only at a deliberate rewrite
  point (a compaction), so every request of a session shares it as a cached prefix.
- Each user message carries a context block (``turn_context()``) with what changed
  since the last block: the git status, the editor's files and selection, the mode.
- A memory file of a folder touched later (``new_memory()``) goes with the tool
  result that touched it.

Each part is held to a token budget: when it does not fit, the lowest-priority parts
are cut or left out, and the prompt says what was left out.
"""

from __future__ import annotations

import asyncio
import datetime as _dt
import logging
import os
import platform
from dataclasses import dataclass, field
from pathlib import Path

from codeloop.context.tokens import TOKENIZER_NAME, count_tokens

log = logging.getLogger(__name__)

MEMORY_FILES = ("AGENTS.md", "CLAUDE.md")
GIT_TIMEOUT = 2.0
GIT_STATUS_LINES = 30
GIT_LOG_COUNT = 5
OPEN_FILES_MAX = 40
# The block of context a user message carries (what changed since the last one); hosts
# strip it when they show the message.
TURN_CONTEXT_OPEN = "<codeloop-context>"
TURN_CONTEXT_CLOSE = "</codeloop-context>"
# Starts a project memory file added to the tool result that first touched its folder.
MEMORY_MARK = "[Project memory:"
# A part cut to fit keeps at least this many tokens; below that it is dropped.
MIN_PART_TOKENS = 80
# Room kept for the "left out" note.
NOTE_RESERVE = 80

STATIC_PROMPT = """\
You are codeloop, a coding agent working in the user's project through tools, in their editor or \
terminal.

# How you work
- Understand before you change: find the relevant code and read a file before you edit it; never \
guess at what a file you have not read holds.
- Keep changes focused on what was asked; follow the project's conventions and its memory files \
(AGENTS.md, CLAUDE.md) below.
- Verify your work by running it (the tests, the build, a linter, the program); if something \
fails, fix it and run again.
- Never claim that something works, passes or is fixed unless you ran it and saw it. If you \
could not verify, say so plainly.
- Do not undo or overwrite changes you did not make, and ask before destructive actions \
(deleting files, resetting history, force pushes) the user did not ask for.
- If a tool call is denied, do not retry it as is: adjust, or ask the user.

# How you answer
- Be brief and direct. Lead with the result; no preamble, no restating the question.
- Refer to code as path:line. Show code only when it helps; never paste whole files back.
- When done, say in a few lines what you changed and how you verified it, and anything left open.
- If the request is ambiguous or risky, ask one short question instead of guessing.
"""


@dataclass(frozen=True, slots=True)
class EditorContext:
    open_files: list[str] = field(default_factory=list)
    active_file: str | None = None  # the file in the focused editor
    selection: str | None = None
    selection_path: str | None = None
    diagnostics_summary: str | None = None


@dataclass(slots=True)
class PromptPart:
    name: str
    text: str
    tokens: int
    included: bool
    note: str = ""  # "", "truncated from N tokens", "left out: over budget", ...


@dataclass(slots=True)
class AssembledPrompt:
    text: str
    parts: list[PromptPart]
    budget_tokens: int
    tokenizer: str = TOKENIZER_NAME

    @property
    def tokens(self) -> int:
        return count_tokens(self.text)

    @property
    def static_tokens(self) -> int:
        return sum(p.tokens for p in self.parts if p.name == "static instructions")

    @property
    def dynamic_tokens(self) -> int:
        return sum(p.tokens for p in self.parts if p.included and p.name != "static instructions")

    def render_report(self) -> str:
        """A per-part token table, for ``/context`` and ``codeloop context``."""
        width = max([len(p.name) for p in self.parts] + [12])
        lines = [f"{'part'.ljust(width)}  {'tokens':>7}  status"]
        lines.append("-" * (width + 24))
        for p in self.parts:
            status = "included" if p.included else "left out"
            if p.note:
                status += f" ({p.note})"
            lines.append(f"{p.name.ljust(width)}  {p.tokens:>7}  {status}")
        lines.append("-" * (width + 24))
        lines.append(
            f"{'dynamic'.ljust(width)}  {self.dynamic_tokens:>7}  of a {self.budget_tokens}-token budget"
        )
        lines.append(f"{'total'.ljust(width)}  {self.tokens:>7}  system prompt")
        lines.append(f"tokenizer: {self.tokenizer}")
        return "\n".join(lines)


@dataclass(slots=True)
class _Candidate:
    name: str
    text: str
    priority: int  # higher survives longer
    order: int  # position in the prompt


class PromptBuilder:
    def __init__(self, root: Path, budget_tokens: int = 6000, guidance: list[str] | None = None) -> None:
        """``guidance``: one line per tool that has advice for the model (the tools' own
        words); it joins the static part, so it stays the same for the whole session."""
        self.root = Path(root).resolve()
        self.budget_tokens = budget_tokens
        self._shown_memory: set[str] = set()  # memory files the model has been shown
        self._last_turn: dict[str, str] = {}  # the parts of the last turn context block
        self.static = STATIC_PROMPT
        if guidance:
            self.static += "\n# Tools\n" + "".join(f"- {g}\n" for g in guidance)
        self._touched_dirs: list[Path] = []  # first-touched order, deduplicated

    def touch(self, path: Path) -> None:
        """Record a file the agent read or changed (its folders' memory files join the prompt)."""
        p = Path(path)
        if not p.is_absolute():
            p = self.root / p
        try:
            d = p.resolve().parent
        except OSError:
            return
        if (d == self.root or self.root in d.parents) and d not in self._touched_dirs:
            self._touched_dirs.append(d)

    @property
    def touched_dirs(self) -> list[Path]:
        return list(self._touched_dirs)

    async def build(self, editor: EditorContext | None = None, mode_note: str | None = None) -> AssembledPrompt:
        """Everything the model is told about its context: the session's system prompt and
        what the next turn's context block would hold (``/context``, ``codeloop context``)."""
        git_text, status_text, memory = await asyncio.gather(
            self._git(), self._git_status(), asyncio.to_thread(self._memory_files)
        )
        cands = self._stable_candidates(git_text, memory) + self._turn_candidates(status_text, editor, mode_note)
        return self._assemble(cands)

    async def system(self) -> AssembledPrompt:
        """The system prompt for the session: the static instructions and tool guidance, the
        environment, the project memory of the root and of the folders touched so far, the
        branch and recent commits. It is built once and stays byte for byte the same until a
        deliberate rewrite point (a compaction), so providers' prompt caches keep it; what
        changes (git status, the editor, the mode) goes into each turn's context block."""
        git_text, memory = await asyncio.gather(self._git(), asyncio.to_thread(self._memory_files))
        self._shown_memory = {rel for rel, _, _ in memory}
        return self._assemble(self._stable_candidates(git_text, memory))

    async def turn_context(self, editor: EditorContext | None = None, mode_note: str | None = None) -> str | None:
        """The context block for a new user message: what changed since the last block (the
        git status, the editor's files and selection, the mode); None when nothing did."""
        status_text = await self._git_status()
        cands = self._turn_candidates(status_text, editor, mode_note)
        parts = self._fit(cands)
        texts = {c.name: p.text for c, p in parts if p.included}
        changed = [name for name, text in texts.items() if self._last_turn.get(name) != text]
        dropped = [name for name in self._last_turn if name not in texts]
        self._last_turn = texts
        if not changed and not dropped:
            return None
        ordered = [p.text for c, p in sorted(parts, key=lambda cp: cp[0].order) if p.included and c.name in changed]
        if dropped:
            gone = ", ".join(sorted(dropped))
            ordered.append(f"(No longer in effect: {gone}.)\n")
        return TURN_CONTEXT_OPEN + "\n" + "".join(s.rstrip("\n") + "\n" for s in ordered) + TURN_CONTEXT_CLOSE

    def mark_memory_shown(self) -> None:
        """Every memory file in scope now counts as shown (a resumed session: the system
        prompt or the history already carries them)."""
        self._shown_memory.update(rel for rel, _, _ in self._memory_files())

    def new_memory(self, path: Path) -> str | None:
        """Touch ``path``; the memory files of folders that come into scope with it and the
        model has not been shown yet, as a block to add to the tool result, or None."""
        self.touch(path)
        memory = self._memory_files()
        fresh = [(rel, text) for rel, text, nested in memory if nested and rel not in self._shown_memory]
        if not fresh:
            return None
        self._shown_memory.update(rel for rel, _ in fresh)
        return "".join(f"{MEMORY_MARK} {rel}; it applies to the files under its folder]\n{text.strip()}\n" for rel, text in fresh)

    def _stable_candidates(self, git_text: str | None, memory: list[tuple[str, str, bool]]) -> list[_Candidate]:
        cands: list[_Candidate] = [_Candidate("environment", self._environment(), 100, 0)]
        for i, (rel, text, nested) in enumerate(memory):
            header = f"# Project memory: {rel}\n"
            cands.append(_Candidate(f"memory {rel}", header + text.strip() + "\n", 60 if nested else 90, 10 + i))
        if git_text:
            cands.append(_Candidate("git", git_text, 50, 200))
        return cands

    def _turn_candidates(self, status_text: str | None, editor: EditorContext | None,
                         mode_note: str | None) -> list[_Candidate]:
        cands: list[_Candidate] = []
        if status_text:
            cands.append(_Candidate("git status", status_text, 45, 250))
        if editor is not None:
            if editor.selection:
                where = f" in {editor.selection_path}" if editor.selection_path else ""
                cands.append(
                    _Candidate("editor selection", f"# The user's selection{where}\n```\n{editor.selection}\n```\n", 70, 301)
                )
            if editor.diagnostics_summary:
                cands.append(
                    _Candidate("diagnostics", f"# Diagnostics in the editor\n{editor.diagnostics_summary.strip()}\n", 40, 302)
                )
            if editor.open_files or editor.active_file:
                files = editor.open_files[:OPEN_FILES_MAX]
                more = len(editor.open_files) - len(files)
                lines = [f"- {f}" + (" (the active editor)" if f == editor.active_file else "") for f in files]
                if editor.active_file and editor.active_file not in files:
                    lines.insert(0, f"- {editor.active_file} (the active editor)")
                body = "\n".join(lines) + (f"\n- ... and {more} more" if more else "")
                cands.append(_Candidate("open files", f"# Files open in the editor\n{body}\n", 20, 300))
        if mode_note:
            cands.append(_Candidate("mode", f"# Permission mode\n{mode_note.strip()}\n", 95, 400))
        return cands

    def _assemble(self, cands: list[_Candidate]) -> AssembledPrompt:
        parts = self._fit(cands)
        included = [p for _, p in sorted(parts, key=lambda cp: cp[0].order) if p.included]
        left_out = [p for _, p in parts if not p.included or p.note]
        sections = [self.static, "# Context (this session)\n"] + [p.text for p in included]
        if left_out:
            names = "; ".join(f"{p.name} ({p.note})" for p in left_out)
            note = (
                f"# Left out to save context\n{names}. Use your tools (read, search, run) "
                f"if you need what was left out.\n"
            )
            sections.append(note)
        text = "\n".join(s.rstrip("\n") + "\n" for s in sections)
        static = PromptPart("static instructions", self.static, count_tokens(self.static), True, "cached prefix")
        ordered = [static] + [p for _, p in sorted(parts, key=lambda cp: cp[0].order)]
        return AssembledPrompt(text=text, parts=ordered, budget_tokens=self.budget_tokens)

    # -- budget --------------------------------------------------------------------

    def _fit(self, cands: list[_Candidate]) -> list[tuple[_Candidate, PromptPart]]:
        out: list[tuple[_Candidate, PromptPart]] = []
        total = sum(count_tokens(c.text) for c in cands)
        room = self.budget_tokens if total <= self.budget_tokens else self.budget_tokens - NOTE_RESERVE
        for c in sorted(cands, key=lambda c: (-c.priority, c.order)):
            tokens = count_tokens(c.text)
            if tokens <= room:
                out.append((c, PromptPart(c.name, c.text, tokens, True)))
                room -= tokens
            elif room >= MIN_PART_TOKENS:
                cut = _truncate(c.text, room - 20)
                cut += f"\n[... cut to fit the context budget: {tokens} tokens in full]\n"
                cut_tokens = count_tokens(cut)
                out.append((c, PromptPart(c.name, cut, cut_tokens, True, f"truncated from {tokens} tokens")))
                room -= cut_tokens
            else:
                out.append((c, PromptPart(c.name, c.text, tokens, False, f"{tokens} tokens, over budget")))
        return out

    # -- the parts -----------------------------------------------------------------

    def _environment(self) -> str:
        if os.name == "nt":
            shell = os.environ.get("COMSPEC", "cmd.exe")
        else:
            shell = os.environ.get("SHELL", "/bin/sh")
        system = f"{platform.system()} {platform.release()}".strip()
        return (
            "# Environment\n"
            f"- OS: {system}\n"
            f"- Shell: {shell}\n"
            f"- Working directory (the workspace root): {self.root}\n"
            f"- Date: {_dt.date.today().isoformat()}\n"
        )

    def _memory_files(self) -> list[tuple[str, str, bool]]:
        """(relative path, text, nested?) of the memory files to include, root first."""
        dirs: list[Path] = [self.root]
        for d in self._touched_dirs:
            chain = []
            cur = d
            while cur != self.root and self.root in cur.parents:
                chain.append(cur)
                cur = cur.parent
            for c in reversed(chain):  # parents before children
                if c not in dirs:
                    dirs.append(c)
        out: list[tuple[str, str, bool]] = []
        for d in dirs:
            for name in MEMORY_FILES:
                f = d / name
                try:
                    if not f.is_file():
                        continue
                    text = f.read_text(encoding="utf-8", errors="replace")
                except OSError as e:
                    log.debug("could not read %s: %s", f, e)
                    continue
                if text.strip():
                    out.append((f.relative_to(self.root).as_posix(), text, d != self.root))
        return out

    async def _git(self) -> str | None:
        """The branch and the recent commits (the session-stable part)."""
        branch, log_out = await asyncio.gather(
            _run_git(self.root, "rev-parse", "--abbrev-ref", "HEAD"),
            _run_git(self.root, "log", "--oneline", "--no-decorate", f"-n{GIT_LOG_COUNT}"),
        )
        if branch is None and log_out is None:
            inside = await _run_git(self.root, "rev-parse", "--is-inside-work-tree")
            if inside is None:
                return None
        body = ["# Git", f"- Branch at the start of the session: {(branch or '').strip() or '(no commits yet)'}"]
        if log_out and log_out.strip():
            body.append("- Recent commits:")
            body.extend(f"    {line}" for line in log_out.strip().splitlines())
        return "\n".join(body) + "\n"

    async def _git_status(self) -> str | None:
        """The working tree's status now (the per-turn part)."""
        status = await _run_git(self.root, "status", "--short", "--branch", "--untracked-files=normal")
        if status is None:
            return None
        lines = status.splitlines()
        branch = lines[0][3:] if lines and lines[0].startswith("## ") else "(unknown)"
        changes = lines[1:] if lines and lines[0].startswith("## ") else lines
        shown = changes[:GIT_STATUS_LINES]
        more = len(changes) - len(shown)
        body = ["# Git status now", f"- Branch: {branch}"]
        if changes:
            body.append("- Status (git status --short):")
            body.extend(f"    {line}" for line in shown)
            if more:
                body.append(f"    ... and {more} more")
        else:
            body.append("- Status: clean")
        return "\n".join(body) + "\n"


async def _run_git(root: Path, *args: str) -> str | None:
    """stdout of ``git args`` in ``root``, or None (not a repo, no git, too slow)."""
    env = dict(os.environ, GIT_OPTIONAL_LOCKS="0", GIT_TERMINAL_PROMPT="0", LC_ALL="C")
    try:
        proc = await asyncio.create_subprocess_exec(
            "git",
            "-C",
            str(root),
            "--no-pager",
            *args,
            stdin=asyncio.subprocess.DEVNULL,
            stdout=asyncio.subprocess.PIPE,
            stderr=asyncio.subprocess.DEVNULL,
            env=env,
        )
    except OSError:
        return None
    try:
        out, _ = await asyncio.wait_for(proc.communicate(), GIT_TIMEOUT)
    except asyncio.TimeoutError:
        proc.kill()
        await proc.wait()
        log.debug("git %s timed out", args[0])
        return None
    if proc.returncode != 0:
        return None
    return out.decode("utf-8", errors="replace")


def _truncate(text: str, max_tokens: int) -> str:
    """The longest line-aligned head of ``text`` within ``max_tokens``."""
    if max_tokens <= 0:
        return ""
    total = count_tokens(text)
    if total <= max_tokens:
        return text
    guess = int(len(text) * max_tokens / total)
    # Shrink the proportional guess until it fits, then back up to a line end.
    while guess > 0 and count_tokens(text[:guess]) > max_tokens:
        guess = int(guess * 0.9)
    lo = guess
    head = text[:lo]
    nl = head.rfind("\n")
    if nl > len(head) // 2:
        head = head[: nl + 1]
    return head
