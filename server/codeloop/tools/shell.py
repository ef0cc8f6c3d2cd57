"""Shell tools: run_command, read_command_output and the background processes."""

from __future__ import annotations

import asyncio
import signal
from pathlib import Path

from pydantic import Field

from codeloop.agent.ports import NullTerminal, Terminal
from codeloop.policy.types import PermissionRequest
from codeloop.tools.base import Tool, ToolContext, ToolError, ToolInput
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
START_WAIT = 1.0  # seconds of output start_process waits for


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
    try:
        where = _resolve_cwd(ctx, cwd)
    except Exception:  # outside or unusable: decided (and refused) by the run
        where = ctx.workspace.root
    return PermissionRequest("Bash", command, where)


def _cut_line(line: str) -> str:
    if len(line) <= MAX_LINE_CHARS:
        return line
    return line[:MAX_LINE_CHARS] + f" [... {len(line) - MAX_LINE_CHARS} more characters]"


def cap_output(rec: CommandRecord) -> str:
    """The record's output for a tool result: head and tail when it is long."""
    return _capped(rec)[0]


def _capped(rec: CommandRecord) -> tuple[str, bool]:
    """``cap_output``, and whether it was cut (its note then names the record's id)."""
    lines = [_cut_line(x) for x in rec.lines()]
    first = rec.dropped_lines + 1  # number of lines[0]
    total_chars = sum(len(x) + 1 for x in lines)
    if rec.dropped_lines == 0 and len(lines) <= HEAD_LINES + TAIL_LINES and total_chars <= MAX_RESULT_CHARS:
        return "\n".join(lines), False
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
    cut = rec.line_count - len(head) - len(tail)
    if rec.dropped_lines:
        # the head we have is no longer the first lines of the output
        note = (
            f"[... {cut} lines cut (the first {rec.dropped_lines} are no longer kept); "
            f"call read_command_output(id=\"{rec.id}\", offset={first + len(head)}, limit=200) "
            "to page through the rest]"
        )
    else:
        note = (
            f"[... {cut} lines cut; the full output is kept: call "
            f"read_command_output(id=\"{rec.id}\", offset={len(head) + 1}, limit=200) to page through it]"
        )
    return "\n".join([*head, note, *tail]), True


def describe_exit(rec: CommandRecord) -> str:
    code = rec.exit_code
    if code is not None and code < 0:
        try:
            name = signal.Signals(-code).name
        except ValueError:
            name = f"signal {-code}"
        return f"(terminated by {name})"
    return ""


class RunCommand(Tool["RunCommand.Input"]):
    name = "run_command"
    description = (
        "Run a shell command (bash) in the workspace and return its combined stdout/stderr "
        "and exit code. Use it for builds, tests, git, installing packages, etc. The command "
        "has no stdin: do not run interactive programs. It is killed after `timeout` seconds. "
        "Long output is cut in the middle; the full output can then be paged with "
        "read_command_output. For servers or watchers that never exit, use start_process instead."
    )
    read_only = False
    kind = "Bash"

    class Input(ToolInput):
        command: str = Field(description="The shell command line to run, e.g. `pytest -q tests/`.")
        timeout: float = Field(
            120, gt=0, le=600, description="Seconds before the command is killed (default 120, max 600)."
        )
        cwd: str | None = Field(
            None, description="Working directory, relative to the workspace root (default: the root)."
        )

    def permission(self, args: Input, ctx: ToolContext) -> PermissionRequest | None:
        return _command_permission(ctx, args.command, args.cwd)

    async def run(self, args: Input, ctx: ToolContext) -> str:
        if not args.command.strip():
            raise ToolError("command is empty")
        invalid = _invalid_input(ctx, args.command, args.cwd)
        if invalid is not None:
            raise ToolError(invalid)
        cwd = _resolve_cwd(ctx, args.cwd)
        pm = _processes(ctx)
        try:
            rec = await pm.run(args.command, cwd, args.timeout, terminal=_terminal(ctx))
        except OSError as e:
            raise ToolError(f"could not start the command in {ctx.workspace.relative(cwd)}: {e.strerror or e}") from None
        parts = []
        out, cut = _capped(rec)
        parts.append(out if out.strip() else "(no output)")
        timeout_text = f"{args.timeout:g}"
        if rec.timed_out:
            parts.append(
                f"[Command timed out after {timeout_text}s; its process group was killed. "
                "Use a larger timeout (max 600), or start_process for long-running programs.]"
            )
        elif rec.killed:
            parts.append("[Command was killed.]")
        if rec.leftovers_killed:
            parts.append(
                "[The command left processes running in the background that kept its output "
                "open; they were stopped. Use start_process for servers and other long-running programs.]"
            )
        extra = describe_exit(rec)
        if not cut and len(out) >= NAME_ID_CHARS:
            extra = f"{extra} (output id {rec.id})".strip()
        parts.append(f"exit code: {rec.exit_code}" + (f" {extra}" if extra else ""))
        return "\n".join(parts)


class ReadCommandOutput(Tool["ReadCommandOutput.Input"]):
    name = "read_command_output"
    description = (
        "Page through the full output of a recent run_command (id like \"cmd-3\") or a "
        "background process (id like \"bg-1\"), with line numbers. Use it when a command's "
        "output was cut."
    )
    read_only = True
    kind = None

    class Input(ToolInput):
        id: str = Field(description='The command id from the cut-output note, e.g. "cmd-3" or "bg-1".')
        offset: int = Field(1, ge=1, description="1-based line number to start at.")
        limit: int = Field(200, ge=1, le=2000, description="How many lines to return (max 2000).")

    def summary(self, args: Input) -> str:
        return args.id

    async def run(self, args: Input, ctx: ToolContext) -> str:
        pm = _processes(ctx)
        rec = pm.get(args.id)
        if rec is None:
            known = ", ".join(r.id for r in pm.records()) or "none"
            raise ToolError(
                f"no stored output with id {args.id!r} (only the last {pm.max_records} commands are kept). "
                f"Known ids: {known}."
            )
        return page_output(rec, args.offset, args.limit)


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


class StartProcess(Tool["StartProcess.Input"]):
    name = "start_process"
    description = (
        "Start a long-running command in the background (a dev server, a watcher) and return "
        "its id (like \"bg-1\") with its first second of output. Check on it with "
        "read_process_logs, stop it with kill_process. Background processes are stopped when "
        "the session ends."
    )
    read_only = False
    kind = "Bash"

    class Input(ToolInput):
        command: str = Field(description="The shell command line to start, e.g. `npm run dev`.")
        cwd: str | None = Field(
            None, description="Working directory, relative to the workspace root (default: the root)."
        )

    def permission(self, args: Input, ctx: ToolContext) -> PermissionRequest | None:
        return _command_permission(ctx, args.command, args.cwd)

    async def run(self, args: Input, ctx: ToolContext) -> str:
        if not args.command.strip():
            raise ToolError("command is empty")
        invalid = _invalid_input(ctx, args.command, args.cwd)
        if invalid is not None:
            raise ToolError(invalid)
        cwd = _resolve_cwd(ctx, args.cwd)
        pm = _processes(ctx)
        try:
            rec = await pm.start(args.command, cwd, terminal=_terminal(ctx))
        except OSError as e:
            raise ToolError(f"could not start the command in {ctx.workspace.relative(cwd)}: {e.strerror or e}") from None
        ended = await pm.wait(rec, getattr(pm, "start_wait", START_WAIT))
        out = cap_output(rec)
        lines = [f"Started {rec.id} (pid {rec.pid}): {rec.command}"]
        lines.append(out if out.strip() else "(no output yet)")
        if ended:
            lines.append(
                f"[{rec.id} already {rec.status()}.]" + (f" {describe_exit(rec)}" if describe_exit(rec) else "")
            )
        else:
            lines.append(
                f"[{rec.id} is running. read_process_logs(id=\"{rec.id}\") shows new output; "
                f"kill_process(id=\"{rec.id}\") stops it.]"
            )
        return "\n".join(lines)


class ListProcesses(Tool["ListProcesses.Input"]):
    name = "list_processes"
    description = "List the background processes started with start_process (and recent commands) with their status."
    read_only = True
    kind = None

    class Input(ToolInput):
        pass

    async def run(self, args: Input, ctx: ToolContext) -> str:
        pm = _processes(ctx)
        recs = pm.records()
        if not recs:
            return "No processes have been started in this session."
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
            out.append("Recent commands (output kept for read_command_output):")
            for r in fg[-10:]:
                out.append(f"  {r.id}  {r.status()}  {r.line_count} lines  {_one_line(r.command)}")
        return "\n".join(out)


def _one_line(command: str) -> str:
    first = command.strip().splitlines()[0] if command.strip() else ""
    if len(first) > 100:
        first = first[:97] + "..."
    return first + (" ..." if "\n" in command.strip() else "")


class ReadProcessLogs(Tool["ReadProcessLogs.Input"]):
    name = "read_process_logs"
    description = (
        "Show the most recent output of a background process (or a recent command) and "
        "whether it is still running or its exit code."
    )
    read_only = True
    kind = None

    class Input(ToolInput):
        id: str = Field(description='The process id returned by start_process, e.g. "bg-1".')
        lines: int = Field(50, ge=1, le=2000, description="How many of the most recent lines to show.")

    def summary(self, args: Input) -> str:
        return args.id

    async def run(self, args: Input, ctx: ToolContext) -> str:
        pm = _processes(ctx)
        rec = pm.get(args.id)
        if rec is None:
            known = ", ".join(r.id for r in pm.records()) or "none"
            raise ToolError(f"no process with id {args.id!r}. Known ids: {known}.")
        await asyncio.sleep(0)  # let pending output land
        total = rec.line_count
        start = max(1, total - args.lines + 1)
        head = f"{rec.id}: {rec.status()} (pid {rec.pid}, {rec.runtime():.0f}s): {_one_line(rec.command)}"
        if total == 0:
            return head + "\n(no output yet)"
        body = page_output(rec, start, args.lines)
        return head + "\n" + body


class KillProcess(Tool["KillProcess.Input"]):
    name = "kill_process"
    description = "Stop a background process (and everything it started) by its id, e.g. \"bg-1\"."
    read_only = False
    kind = None

    class Input(ToolInput):
        id: str = Field(description='The process id returned by start_process, e.g. "bg-1".')

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


SHELL_TOOLS: list[type[Tool]] = [  # type: ignore[type-arg]
    RunCommand,
    ReadCommandOutput,
    StartProcess,
    ListProcesses,
    ReadProcessLogs,
    KillProcess,
]
