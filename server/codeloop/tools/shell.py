"""Shell tools: run_command (foreground or background), read_command_output and kill_process."""

from __future__ import annotations

import asyncio
import re
import signal
from pathlib import Path
from typing import Any

from pydantic import Field

from codeloop.core.ports import NullTerminal, SandboxRefused, Terminal
from codeloop.policy.types import PermissionRequest
from codeloop.tools.base import I, Tool, ToolContext, ToolError, ToolInput, ToolResult, elided_head, first_line, plural
from codeloop.tools.files import guarded_resolve
from codeloop.tools.processes import CommandRecord, ProcessManager, number_lines
from codeloop.tools.workspace import InvalidPath, PathOutsideWorkspace

# What a tool result shows of a command's output: its head and its tail (where
# test runners and compilers put their summaries), within MAX_RESULT_CHARS. The
# whole output is kept for read_command_output.
HEAD_LINES = 60
TAIL_LINES = 140
MAX_RESULT_CHARS = 10_000
HEAD_SHARE = 0.35
# Outputs at least this long name their id, so they can be paged again later.
NAME_ID_CHARS = 2_000
MAX_LINE_CHARS = 2000
PAGE_MAX_CHARS = 50_000
START_WAIT = 1.0  # seconds of first output a background start waits for


def _terminal(ctx: ToolContext) -> Terminal | None:
    """ctx.terminal unless it is the null one (then the manager's own terminal)."""
    return None if isinstance(ctx.terminal, NullTerminal) else ctx.terminal


def _processes(ctx: ToolContext) -> ProcessManager:
    if ctx.processes is None:
        raise ToolError("running commands is not available in this session")
    return ctx.processes


def _resolve_cwd(ctx: ToolContext, cwd: str | None) -> Path:
    if cwd is None or cwd.strip() in ("", "."):
        return ctx.workspace.root
    try:
        path = guarded_resolve(ctx, cwd)
    except InvalidPath as e:
        raise ToolError(f"cwd: {e}") from None
    except PathOutsideWorkspace as e:
        raise ToolError(f"{e}. Commands can only run inside the workspace.") from None
    try:
        is_dir = path.is_dir()
    except OSError as e:
        raise ToolError(f"cwd {cwd!r} cannot be used: {e.strerror or e}") from None
    if not is_dir:
        raise ToolError(f"cwd {cwd!r} is not a directory in the workspace")
    return path


def _invalid_input(ctx: ToolContext, command: str, cwd: str | None) -> str | None:
    """Why a command can never run as given (decided from the text alone), or None."""
    if "\x00" in command:
        return "the command contains a NUL byte, which no shell command can hold; nothing was run"
    if cwd is not None and cwd.strip() not in ("", "."):
        try:
            ctx.workspace.check_text(cwd)
        except InvalidPath as e:
            return f"cwd: {e}; nothing was run"
    return None


def _command_permission(ctx: ToolContext, command: str, cwd: str | None) -> PermissionRequest | None:
    """The Bash request; None when the call can never run (its run then says why, before
    starting anything): there is nothing to ask the user."""
    if _invalid_input(ctx, command, cwd) is not None:
        return None
    if ctx.processes is not None and ctx.processes.refusal() is not None:
        return None  # the sandbox refuses every command (fail closed): the run says why
    try:
        where = _resolve_cwd(ctx, cwd)
    except Exception:  # outside or unusable: decided (and refused) by the run
        where = ctx.workspace.root
    contained = ctx.processes is not None and ctx.processes.contained
    return PermissionRequest("Bash", command, where, sandboxed=contained)


# What a command that failed says when the sandbox stopped it (the note tells the model why).
_SANDBOX_SIGNS = re.compile(
    r"Read-only file system|Network is unreachable|Temporary failure in name resolution|"
    r"Could not resolve host|Name or service not known|getaddrinfo failed"
)
SANDBOX_NOTE = (
    "[This command ran in the sandbox: only the workspace and the temp dir are writable, "
    "there is no network, and the home's secrets are hidden. Work inside the workspace.]"
)


def _spawn_error(ctx: ToolContext, cwd: Path, e: Exception) -> ToolError:
    if isinstance(e, SandboxRefused):
        return ToolError(str(e))
    strerror = getattr(e, "strerror", None)
    return ToolError(f"could not start the command in {ctx.workspace.relative(cwd)}: {strerror or e}")


def _cut_line(line: str) -> str:
    if len(line) <= MAX_LINE_CHARS:
        return line
    return line[:MAX_LINE_CHARS] + f" [... {len(line) - MAX_LINE_CHARS} more characters]"


def cap_output(rec: CommandRecord) -> str:
    """The record's output for a tool result: head and tail when it is long."""
    return _capped(rec)[0]


# Runs of at least this many consecutive lines that differ only in their numbers (a test
# runner's PASSED lines, progress output, a repeated warning) are shown as their first
# lines, a note, and their last line; read_command_output still pages all of them.
SIMILAR_RUN = 8
SIMILAR_KEEP_HEAD = 2
_DIGITS = re.compile(r"\d+")
_SPACES = re.compile(r"\s+")


def _shape(line: str) -> str:
    """What a line looks like without its numbers: digits become 0 and runs of inner
    spaces one space (a test runner pads its percentages: "[  9%]", "[ 10%]", "[100%]")."""
    body = line.lstrip()
    return line[: len(line) - len(body)] + _SPACES.sub(" ", _DIGITS.sub("0", body))


def _collapse_similar(lines: list[str], first: int, rec_id: str) -> tuple[list[str], bool]:
    """``lines`` (the first is line ``first``) with long runs of similar lines folded."""
    out: list[str] = []
    folded = False
    i = 0
    shapes = [_shape(line) for line in lines]
    while i < len(lines):
        j = i + 1
        while j < len(lines) and shapes[j] == shapes[i]:
            j += 1
        if j - i >= SIMILAR_RUN and shapes[i].strip():
            keep = SIMILAR_KEEP_HEAD
            start, end = first + i + keep, first + j - 2  # 1-based numbers of the folded lines
            out += lines[i : i + keep]
            out.append(
                f"[... {end - start + 1} similar lines folded (lines {start}-{end}, differing only in their "
                f"numbers); read_command_output(id=\"{rec_id}\", offset={start}) shows them]"
            )
            out.append(lines[j - 1])
            folded = True
        else:
            out += lines[i:j]
        i = j
    return out, folded


def _capped(rec: CommandRecord) -> tuple[str, bool]:
    """``cap_output``, and whether it was cut (its note then names the record's id)."""
    first = rec.dropped_lines + 1  # number of lines[0]
    lines, folded = _collapse_similar([_cut_line(x) for x in rec.lines()], first, rec.id)
    total_chars = sum(len(x) + 1 for x in lines)
    if rec.dropped_lines == 0 and len(lines) <= HEAD_LINES + TAIL_LINES and total_chars <= MAX_RESULT_CHARS:
        return "\n".join(lines), folded
    budget = int(MAX_RESULT_CHARS * HEAD_SHARE)
    head: list[str] = []
    used = 0
    for line in lines[:HEAD_LINES]:
        if used + len(line) + 1 > budget and head:
            break
        head.append(line)
        used += len(line) + 1
    budget = MAX_RESULT_CHARS - used
    tail: list[str] = []
    used = 0
    for line in reversed(lines[len(head) :][-TAIL_LINES:]):
        if used + len(line) + 1 > budget and tail:
            break
        tail.append(line)
        used += len(line) + 1
    tail.reverse()
    cut = len(lines) - len(head) - len(tail)
    if folded:
        # line numbers no longer follow from the shown lines: name the first one cut
        resume = first + _source_index(lines, len(head), first)
        note = (
            f"[... {cut} lines cut; the full output is kept: call "
            f"read_command_output(id=\"{rec.id}\", offset={resume}) to page through it]"
        )
    elif rec.dropped_lines:
        # the head we have is no longer the first lines of the output
        note = (
            f"[... {cut} lines cut (the first {rec.dropped_lines} are no longer kept); "
            f"call read_command_output(id=\"{rec.id}\", offset={first + len(head)}) "
            "to page through the rest]"
        )
    else:
        note = (
            f"[... {cut} lines cut; the full output is kept: call "
            f"read_command_output(id=\"{rec.id}\", offset={len(head) + 1}) to page through it]"
        )
    return "\n".join([*head, note, *tail]), True


def _source_index(shown: list[str], index: int, first: int) -> int:
    """The 0-based position in the record of the ``index``-th shown line (folds counted)."""
    pos = 0
    for line in shown[:index]:
        m = re.match(r"^\[\.\.\. (\d+) similar lines folded", line)
        pos += int(m.group(1)) if m else 1
    return pos


def describe_exit(rec: CommandRecord) -> str:
    code = rec.exit_code
    if code is not None and code < 0:
        try:
            name = signal.Signals(-code).name
        except ValueError:
            name = f"signal {-code}"
        return f"(terminated by {name})"
    return ""


# Where the shell tools' own lines name an output id: the cut-output note, the exit
# line of a long output, a background start's first line. Only these: the output itself
# may mention other ids.
_OWN_ID = re.compile(
    r'^(?:\[\.\.\. .*read_command_output\(id="|exit code: .*\(output id |Started )((?:cmd|bg)-\d+)', re.M
)
MORE_HINT = "call read_command_output with the output id and an offset"


def command_note(tool: str, args: dict[str, Any], text: str, ctx: ToolContext) -> str:
    """The note for an elided result of a shell tool: what ran, how it ended, and
    whether its output can still be paged."""
    ids = ([args["id"]] if isinstance(args.get("id"), str) else []) + _OWN_ID.findall(text)
    what = f"`{args['command']}`" if isinstance(args.get("command"), str) else tool
    exit_line = next((ln for ln in reversed(text.splitlines()) if ln.startswith("exit code:")), "")
    ended = f" ({exit_line})" if exit_line else ""
    pm = ctx.processes
    kept = next((i for i in ids if pm is not None and pm.get(i) is not None), None)
    if kept is not None:
        how = f'its output is still kept: call read_command_output with id="{kept}" (and an offset) to page it'
    else:
        how = "its output is no longer kept: run the command again if you need it"
    return f"{elided_head(text)} It was the output of {what}{ended}; {how}.]"


def _exit_summary(text: str) -> str:
    """"exit 0 · 3 lines" from a run_command result."""
    lines = text.splitlines()
    exit_line = next((ln for ln in reversed(lines) if ln.startswith("exit code:")), "")
    body = [ln for ln in lines if not ln.startswith("exit code:") and not ln.startswith("[")]
    if body == ["(no output)"]:
        body = []
    status = exit_line.removeprefix("exit code: ").split(" (output id")[0] or "?"
    if "timed out" in text and "[Command timed out" in text:
        status = "timed out"
    elif status.startswith("None"):
        status = "killed"
    else:
        status = f"exit {status}"
    return f"{status} · {plural(len(body), 'line')}"


class _ShellTool(Tool[I]):
    """What the shell tools share: their output is paged with read_command_output."""

    def more_hint(self, args: Any) -> str:
        return MORE_HINT

    def elided_note(self, args: dict[str, Any], text: str, ctx: ToolContext) -> str:
        return command_note(self.name, args, text, ctx)


class RunCommand(_ShellTool["RunCommand.Input"]):
    name = "run_command"
    claude_names = ("Bash",)
    claude_fields = {"timeout": ("timeout", "ms"), "background": ("run_in_background", "same")}
    description = (
        "Run a bash command in the workspace; returns its output and exit code. No stdin. Long output "
        "is shortened (page it with read_command_output). Servers and watchers: background=true."
    )
    read_only = False
    kind = "Bash"

    class Input(ToolInput):
        command: str
        timeout: float | None = Field(None, gt=0, le=600, description="Seconds before it is killed (default 120).")
        cwd: str | None = Field(None, description="Folder to run in, relative to the root.")
        background: bool = Field(False, description="Run in the background: returns its id and first output.")

    def permission(self, args: Input, ctx: ToolContext) -> PermissionRequest | None:
        return _command_permission(ctx, args.command, args.cwd)

    def summary(self, args: Input) -> str:
        return f"{args.command} (background)" if args.background else args.command

    def outcome(self, args: Input, result: ToolResult) -> str:
        if not result.ok or args.background:
            return first_line(result.text)
        return _exit_summary(result.text)

    async def run(self, args: Input, ctx: ToolContext) -> str:
        if not args.command.strip():
            raise ToolError("command is empty")
        invalid = _invalid_input(ctx, args.command, args.cwd)
        if invalid is not None:
            raise ToolError(invalid)
        cwd = _resolve_cwd(ctx, args.cwd)
        pm = _processes(ctx)
        timeout = args.timeout if args.timeout is not None else ctx.command_timeout
        refused = pm.refusal()
        if refused is not None:
            raise ToolError(refused)
        if args.background:
            return await _start_background(ctx, pm, args.command, cwd)
        try:
            rec = await pm.run(args.command, cwd, timeout, terminal=_terminal(ctx), call_id=ctx.call_id)
        except (OSError, SandboxRefused) as e:
            raise _spawn_error(ctx, cwd, e) from None
        parts = []
        out, cut = _capped(rec)
        parts.append(out if out.strip() else "(no output)")
        timeout_text = f"{timeout:g}"
        if rec.timed_out:
            parts.append(
                f"[Command timed out after {timeout_text}s; its process group was killed. "
                "Use a larger timeout (max 600), or background=true for long-running programs.]"
            )
        elif rec.killed:
            parts.append("[Command was killed.]")
        if rec.leftovers_killed:
            parts.append(
                "[The command left processes running in the background that kept its output "
                "open; they were stopped. Run servers and other long-running programs with background=true.]"
            )
        if rec.sandboxed and _SANDBOX_SIGNS.search(out):
            parts.append(SANDBOX_NOTE)
        extra = describe_exit(rec)
        if not cut and len(out) >= NAME_ID_CHARS:
            extra = f"{extra} (output id {rec.id})".strip()
        parts.append(f"exit code: {rec.exit_code}" + (f" {extra}" if extra else ""))
        return "\n".join(parts)


class ReadCommandOutput(_ShellTool["ReadCommandOutput.Input"]):
    name = "read_command_output"
    claude_names = ("BashOutput",)
    claude_fields = {"id": ("bash_id", "same")}
    description = (
        "Page the kept output of a command (\"cmd-3\") or background process (\"bg-1\") and its status; "
        "without an id, list them."
    )
    read_only = True
    kind = None

    class Input(ToolInput):
        id: str | None = None
        offset: int = Field(1, description="First line (1-based); negative counts from the end (-50: the last 50).")
        limit: int = Field(200, ge=1, le=2000, description="Max lines.")

    def summary(self, args: Input) -> str:
        return args.id or "list"

    async def run(self, args: Input, ctx: ToolContext) -> str:
        pm = _processes(ctx)
        if args.id is None or not args.id.strip():
            return list_records(pm)
        rec = pm.get(args.id)
        if rec is None:
            known = ", ".join(r.id for r in pm.records()) or "none"
            raise ToolError(
                f"no stored output with id {args.id!r} (only the last {pm.max_records} commands are kept). "
                f"Known ids: {known}."
            )
        if args.offset == 0:
            raise ToolError("offset 0 is not a line: use 1 for the first line, -50 for the last 50")
        await asyncio.sleep(0)  # let pending output land
        offset = args.offset
        limit = args.limit
        if offset < 0:
            offset = max(1, rec.line_count + offset + 1)
            limit = min(limit, -args.offset)
        head = ""
        if rec.background:
            head = f"{rec.id}: {rec.status()} (pid {rec.pid}, {rec.runtime():.0f}s): {_one_line(rec.command)}\n"
            if rec.line_count == 0:
                return head + "(no output yet)"
        return head + page_output(rec, offset, limit)


def page_output(rec: CommandRecord, offset: int, limit: int) -> str:
    total = rec.line_count
    lines = rec.lines()
    first = rec.dropped_lines + 1
    header = []
    if total == 0:
        return f"{rec.id} has produced no output ({rec.status()})."
    if offset > total:
        raise ToolError(f"{rec.id} has {total} lines of output; offset {offset} is past the end.")
    if offset < first:
        header.append(
            f"[lines 1-{first - 1} of {rec.id} are no longer kept (output is capped); starting at line {first}]"
        )
        offset = first
    start = offset - first
    chosen: list[str] = []
    used = 0
    for line in lines[start : start + limit]:
        line = _cut_line(line)
        if used + len(line) > PAGE_MAX_CHARS and chosen:
            break
        chosen.append(line)
        used += len(line) + 1
    end = offset + len(chosen) - 1
    out = header + [number_lines(chosen, offset)]
    remaining = total - end
    if remaining > 0:
        out.append(
            f"... {remaining} more lines. Call read_command_output with id=\"{rec.id}\", offset={end + 1} to continue."
        )
    out.append(f"[{rec.id}: {rec.status()}; lines {offset}-{end} of {total}]")
    return "\n".join(out)


async def _start_background(ctx: ToolContext, pm: ProcessManager, command: str, cwd: Path) -> str:
    """run_command with background=true: start it, show its first output, return its id."""
    try:
        rec = await pm.start(command, cwd, terminal=_terminal(ctx))
    except (OSError, SandboxRefused) as e:
        raise _spawn_error(ctx, cwd, e) from None
    ended = await pm.wait(rec, getattr(pm, "start_wait", START_WAIT))
    out = cap_output(rec)
    lines = [f"Started {rec.id} (pid {rec.pid}): {rec.command}"]
    lines.append(out if out.strip() else "(no output yet)")
    if ended:
        lines.append(f"[{rec.id} already {rec.status()}.]" + (f" {describe_exit(rec)}" if describe_exit(rec) else ""))
    else:
        lines.append(
            f"[{rec.id} is running. read_command_output(id=\"{rec.id}\", offset=-50) shows its latest output; "
            f"kill_process(id=\"{rec.id}\") stops it.]"
        )
    return "\n".join(lines)


def list_records(pm: ProcessManager) -> str:
    """The background processes and the recent commands (read_command_output without an id)."""
    recs = pm.records()
    if not recs:
        return "No commands have run in this session."
    bg = [r for r in recs if r.background]
    fg = [r for r in recs if not r.background]
    out = []
    if bg:
        out.append("Background processes:")
        for r in bg:
            out.append(f"  {r.id}  pid {r.pid}  {r.status()}  {r.runtime():.0f}s  {r.command}")
    else:
        out.append("No background processes.")
    if fg:
        out.append("Recent commands (their output is kept):")
        for r in fg[-10:]:
            out.append(f"  {r.id}  {r.status()}  {r.line_count} lines  {_one_line(r.command)}")
    return "\n".join(out)


def _one_line(command: str) -> str:
    first = command.strip().splitlines()[0] if command.strip() else ""
    if len(first) > 100:
        first = first[:97] + "..."
    return first + (" ..." if "\n" in command.strip() else "")


class KillProcess(Tool["KillProcess.Input"]):
    name = "kill_process"
    claude_names = ("KillShell", "KillBash")
    claude_fields = {"id": ("shell_id", "same")}
    description = "Stop a background process and what it started."
    read_only = False
    kind = None

    class Input(ToolInput):
        id: str

    def summary(self, args: Input) -> str:
        return args.id

    async def run(self, args: Input, ctx: ToolContext) -> str:
        pm = _processes(ctx)
        rec = pm.get(args.id)
        if rec is None:
            known = ", ".join(r.id for r in pm.background()) or "none"
            raise ToolError(f"no process with id {args.id!r}. Background processes: {known}.")
        if not rec.running:
            return f"{rec.id} was not running: {rec.status()}."
        await pm.kill(rec.id)
        extra = describe_exit(rec)
        return f"Killed {rec.id} ({rec.command}): {rec.status()}" + (f" {extra}" if extra else "") + "."


