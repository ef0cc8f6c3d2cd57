"""The headless entry point: ``codeloop run``, ``codeloop chat``, ``codeloop context``
and ``codeloop lsp``."""

from __future__ import annotations

import argparse
import asyncio
import logging
import os
import signal
import sys
from pathlib import Path
from typing import Any, TextIO

from codeloop import __version__
from codeloop.agent.events import (
    ErrorEvent,
    Event,
    Notice,
    Retry,
    TextDelta,
    ToolCallFinished,
    ToolCallStarted,
    TurnEnd,
)
from codeloop.agent.ports import ApprovalDecision, ApprovalRequest, DenyAll
from codeloop.config import Settings, build_settings, env_overrides
from codeloop.edits.change import ChangeSet
from codeloop.policy.types import MODES

EXIT_OK = 0
EXIT_ERROR = 1
EXIT_MAX_TURNS = 3
EXIT_CANCELLED = 130


class Style:
    def __init__(self, stream: TextIO) -> None:
        self.on = stream.isatty() and os.environ.get("NO_COLOR") is None

    def __call__(self, code: str, text: str) -> str:
        return f"\x1b[{code}m{text}\x1b[0m" if self.on else text


class ConsoleSink:
    """Prints the loop's events as they happen."""

    def __init__(self, out: TextIO = sys.stdout, err: TextIO = sys.stderr) -> None:
        self.out = out
        self.err = err
        self.style = Style(out)
        self.at_line_start = True
        self.last_end: TurnEnd | None = None

    def _line(self, text: str) -> None:
        if not self.at_line_start:
            self.out.write("\n")
        self.out.write(text + "\n")
        self.out.flush()
        self.at_line_start = True

    def emit(self, event: Event) -> None:
        s = self.style
        if isinstance(event, TextDelta):
            self.out.write(event.text)
            self.out.flush()
            self.at_line_start = event.text.endswith("\n")
        elif isinstance(event, ToolCallStarted):
            self._line(s("36", f"● {event.name}") + (f"({event.summary})" if event.summary else ""))
        elif isinstance(event, ToolCallFinished):
            mark = s("32", "⎿") if event.ok else s("31", "⎿ ✗")
            self._line(f"  {mark} {event.summary}")
        elif isinstance(event, Retry):
            self._line(s("33", f"  ↻ retry {event.attempt}/{event.max_attempts} in {event.delay:.1f}s: {event.reason}"))
        elif isinstance(event, Notice):
            self._line(s("33" if event.level == "warning" else "2", f"  ℹ {event.message}"))
        elif isinstance(event, ErrorEvent):
            if not self.at_line_start:
                self.out.write("\n")
                self.at_line_start = True
            self.err.write(s("31", f"error: {event.message}") + "\n")
            self.err.flush()
        elif isinstance(event, TurnEnd):
            self.last_end = event
            if not self.at_line_start:
                self._line("")
            if event.status in ("max_turns", "cancelled"):
                self._line(s("33", event.message))
            tokens = f"{event.prompt_tokens:,} in / {event.completion_tokens:,} out"
            if event.cached_tokens:
                tokens += f" ({event.cached_tokens:,} cached)"
            cost = f", ${event.cost:.4f}" if event.cost is not None else ""
            if event.prompt_tokens or event.completion_tokens:
                self._line(s("2", f"[{tokens}{cost}]"))


async def _ask_line(prompt: str) -> str | None:
    try:
        return await asyncio.to_thread(input, prompt)
    except EOFError:
        return None


class TerminalApprover:
    """Asks at the terminal before a command runs (or a secret is read)."""

    def __init__(self, sink: ConsoleSink) -> None:
        self.sink = sink

    async def approve(self, request: ApprovalRequest) -> ApprovalDecision:
        what = {"Bash": "Run", "Read": "Read", "Edit": "Edit", "Write": "Write"}[request.kind]
        self.sink._line(self.sink.style("1", f"? {what}: {request.target}") + f"  (in {request.cwd}; {request.reason})")
        choices = "[y]es / [a]lways / [n]o, or type a reason to deny: "
        answer = await _ask_line(choices)
        if answer is None:
            return ApprovalDecision("deny", "no answer (end of input)")
        a = answer.strip()
        if a.lower() in ("y", "yes", ""):
            return ApprovalDecision("allow_once")
        if a.lower() in ("a", "always"):
            return ApprovalDecision("allow_always")
        if a.lower() in ("n", "no"):
            return ApprovalDecision("deny")
        return ApprovalDecision("deny", a)


def terminal_confirm(sink: ConsoleSink):
    from codeloop.edits.diff import unified_diff

    async def confirm(changes: ChangeSet) -> bool | str:
        for c in changes.changes:
            rel = c.path.name
            try:
                rel = str(c.path.relative_to(Path.cwd()))
            except ValueError:
                rel = str(c.path)
            diff = unified_diff(c.old_text, c.new_text, rel)
            for line in diff.splitlines():
                color = "32" if line.startswith("+") else "31" if line.startswith("-") else "36" if line.startswith("@@") else "0"
                sink._line(sink.style(color, line))
        answer = await _ask_line("Apply this change? [y]es / [n]o, or type feedback to reject: ")
        if answer is None:
            return "no answer (end of input)"
        a = answer.strip()
        if a.lower() in ("y", "yes", ""):
            return True
        if a.lower() in ("n", "no"):
            return False
        return a

    return confirm


NO_TTY = (
    "no terminal is attached to confirm it, so it was refused. Rerun codeloop with --yes to "
    "allow edits and commands, or add a rule that allows this in .codeloop/settings.json."
)


# Settings a project's .codeloop/settings.json may set for the CLI. Anything that could
# send the key elsewhere, loosen permissions or run a command is left to the user.
PROJECT_SETTING_KEYS = (
    "prices",
    "contextWindow",
    "compactThreshold",
    "stepOutputShare",
    "keepToolOutput",
    "maxTurns",
    "commandTimeout",
    "requestTimeout",
    "maxRetries",
    "sessionStorage",
)


def _read_settings_file(path: Path, problems: list[str]) -> dict[str, Any]:
    import json

    try:
        if not path.is_file():
            return {}
        data = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError) as e:
        problems.append(f"{path}: could not read settings ({e}); ignoring it")
        return {}
    if not isinstance(data, dict):
        problems.append(f"{path}: settings must be a JSON object; ignoring it")
        return {}
    return {k: v for k, v in data.items() if k != "permissions"}  # the policy reads those itself


def file_settings(root: Path) -> tuple[dict[str, Any], list[str]]:
    """Non-permission settings for the CLI: the user's ``settings.json`` (every setting
    but ``permissions``), then the project's ``.codeloop/settings.json`` and
    ``settings.local.json`` (only ``PROJECT_SETTING_KEYS``)."""
    from codeloop.policy.sources import default_config_home

    problems: list[str] = []
    merged = _read_settings_file(default_config_home() / "settings.json", problems)
    for name in ("settings.json", "settings.local.json"):
        data = _read_settings_file(root / ".codeloop" / name, problems)
        merged.update({k: v for k, v in data.items() if k in PROJECT_SETTING_KEYS})
    return merged, problems


def _settings_from_args(args: argparse.Namespace) -> tuple[Settings, list[str]]:
    flags: dict[str, Any] = {
        "model": args.model,
        "base_url": args.base_url,
        "max_turns": args.max_turns,
        "mode": args.mode,
        "context_window": getattr(args, "context_window", None),
    }
    if args.yes and not args.mode:
        flags["mode"] = "bypass"
    from_files, problems = file_settings(Path(args.cwd).resolve())
    settings, more = build_settings(from_files, env_overrides(), flags)
    return settings, problems + more


def _build_session(args: argparse.Namespace, sink: ConsoleSink, resume: str | None = None, persist: bool = True):
    from codeloop.agent.session import AgentSession, Ports
    from codeloop.edits.disk import DiskChangeApplier

    settings, problems = _settings_from_args(args)
    for p in problems:
        sink.emit(Notice(p, "warning"))
    root = Path(args.cwd).resolve()
    interactive = sys.stdin.isatty() and not args.yes
    if args.yes:
        approver: Any = DenyAll(NO_TTY)  # bypass mode never asks; deny is the safe fallback
        applier = DiskChangeApplier(None, root=root)
    elif interactive:
        approver = TerminalApprover(sink)
        applier = DiskChangeApplier(terminal_confirm(sink), root=root)
    else:
        approver = DenyAll(NO_TTY)

        async def refuse(_changes: ChangeSet) -> str:
            return NO_TTY

        applier = DiskChangeApplier(refuse, root=root)
    # No editor here: the check command (settings.checkCommand, else pyflakes for Python)
    # reports new errors after each write, and answers get_diagnostics.
    from codeloop.services.diagnostics import CheckedApplier, DiagnosticsService

    checker = DiagnosticsService(root, check_command=settings.check_command)
    changes = CheckedApplier(applier, checker, applier.display)
    session = AgentSession(
        settings, root, Ports(sink=sink, approver=approver, changes=changes, diagnostics=checker),
        resume=resume, persist=persist,
    )
    for p in session.policy.problems:
        sink.emit(Notice(p, "warning"))
    for w in session.load_warnings:
        sink.emit(Notice(w, "warning"))
    if session.settings.mode == "bypass" and not args.yes:
        sink.emit(Notice("bypass mode: edits and commands run without asking (catastrophic commands are still refused).", "warning"))
    return session


async def _run_turn(session: Any, text: str) -> TurnEnd | None:
    """Run a turn; Ctrl-C cancels the turn (not the program)."""
    loop = asyncio.get_running_loop()
    task = asyncio.ensure_future(session.send(text))
    installed = False
    try:
        loop.add_signal_handler(signal.SIGINT, task.cancel)
        installed = True
    except (NotImplementedError, RuntimeError):
        pass
    try:
        return await task
    except asyncio.CancelledError:
        if task.cancelled():
            return None
        raise
    finally:
        if installed:
            loop.remove_signal_handler(signal.SIGINT)


def _exit_code(end: TurnEnd | None) -> int:
    if end is None or end.status == "cancelled":
        return EXIT_CANCELLED
    return {"done": EXIT_OK, "error": EXIT_ERROR, "max_turns": EXIT_MAX_TURNS}.get(end.status, EXIT_ERROR)


async def cmd_run(args: argparse.Namespace) -> int:
    sink = ConsoleSink()
    session = _build_session(args, sink)
    try:
        end = await _run_turn(session, args.task)
        if session.cost.session_cost() is not None:
            sink._line(sink.style("2", session.cost.render_short()))
        return _exit_code(end)
    finally:
        await session.close()


async def cmd_chat(args: argparse.Namespace) -> int:
    from codeloop.context.slash import HELP_TEXT, parse_slash

    sink = ConsoleSink()
    resume = None
    if args.resume is not None or args.continue_:
        resume = await _pick_session(args, sink)
        if resume is False:
            return EXIT_ERROR
    session = _build_session(args, sink, resume=resume or None)
    if resume:
        sink._line(sink.style("2", f"Resumed session {session.id} ({len(session.messages)} messages)."))
    sink._line(sink.style("2", "codeloop chat: type a message, /help for commands, Ctrl-D to quit, Ctrl-C stops a turn."))
    last = EXIT_OK
    try:
        while True:
            line = await _ask_line("> ")
            if line is None:
                sink._line("")
                return last
            text = line.strip()
            if not text:
                continue
            cmd = parse_slash(text)
            if cmd is not None:
                if cmd.name in ("exit", "quit"):
                    return last
                if cmd.name == "help" or cmd.name == "unknown":
                    sink._line(HELP_TEXT)
                    continue
                if cmd.name in ("clear", "resume"):
                    target = None
                    if cmd.name == "resume":
                        target = cmd.arg or (session.store.latest().id if session.store and session.store.latest() else None)
                        if not target:
                            sink._line("No session to resume.")
                            continue
                    await session.close()
                    previous = session
                    try:
                        session = _build_session(args, sink, resume=target)
                    except Exception as e:
                        sink.emit(ErrorEvent(f"could not open session {target}: {e}"))
                        session = _build_session(args, sink)
                    # /model and /mode hold for the whole REPL, not just one conversation.
                    session.update_settings(
                        session.settings.model_copy(update={"model": previous.settings.model, "mode": previous.policy.mode})
                    )
                    sink._line(f"Session {session.id} ({len(session.messages)} messages).")
                    continue
                try:
                    reply = await session.slash(cmd)
                except Exception as e:  # a command's failure must not end the REPL
                    logging.getLogger(__name__).exception("/%s failed", cmd.name)
                    sink.emit(ErrorEvent(f"/{cmd.name} failed: {e}"))
                    continue
                if cmd.name == "mode" and (cmd.arg or "").strip() == "bypass":
                    sink.emit(Notice(reply, "warning"))
                else:
                    sink._line(reply)
                continue
            end = await _run_turn(session, text)
            last = _exit_code(end)
    finally:
        await session.close()


async def _pick_session(args: argparse.Namespace, sink: ConsoleSink) -> Any:
    from codeloop.context.sessions import SessionStore

    settings, _ = _settings_from_args(args)
    store = SessionStore(Path(args.cwd).resolve(), storage=settings.session_storage)
    if args.resume:
        return args.resume
    latest = store.latest()
    if latest is None:
        sink.emit(ErrorEvent("There is no earlier session in this workspace to continue."))
        return False
    return latest.id


async def cmd_context(args: argparse.Namespace) -> int:
    sink = ConsoleSink()
    session = _build_session(args, sink, persist=False)  # showing the prompt leaves no session behind
    try:
        assembled = await session.assembled_prompt()
        print(assembled.render_report())
        if args.full:
            print(assembled.text)
        return EXIT_OK
    finally:
        await session.close()


def cmd_lsp(args: argparse.Namespace) -> int:
    from codeloop.lsp.app import run_stdio

    return run_stdio()


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="codeloop", description="A coding agent for any OpenAI-compatible model.")
    p.add_argument("--version", action="version", version=f"codeloop {__version__}")
    sub = p.add_subparsers(dest="command", required=True)

    def common(sp: argparse.ArgumentParser) -> None:
        sp.add_argument("--cwd", default=".", help="the workspace folder (default: the current directory)")
        sp.add_argument("--model", help="model name (default: $CODELOOP_MODEL)")
        sp.add_argument("--base-url", dest="base_url", help="OpenAI-compatible endpoint (default: $OPENAI_BASE_URL)")
        sp.add_argument("--max-turns", dest="max_turns", type=int, help="max model calls per turn (default 50)")
        sp.add_argument("--mode", choices=MODES, help="permission mode (default: ask)")
        sp.add_argument("--yes", "-y", action="store_true", help="apply edits and run commands without asking")
        sp.add_argument(
            "--context-window",
            dest="context_window",
            type=int,
            metavar="TOKENS",
            help="the model's context window; compaction starts near it (default: a table of known models, else 32k)",
        )
        sp.add_argument("--verbose", "-v", action="store_true", help="log to stderr")

    run = sub.add_parser("run", help="run one task and exit")
    run.add_argument("task")
    common(run)
    chat = sub.add_parser("chat", help="an interactive conversation")
    common(chat)
    chat.add_argument("--resume", nargs="?", const="", default=None, metavar="ID", help="resume a session (the latest without an id)")
    chat.add_argument("--continue", dest="continue_", action="store_true", help="continue the latest session")
    ctx = sub.add_parser("context", help="show the assembled system prompt with per-part token counts")
    common(ctx)
    ctx.add_argument("--full", action="store_true", help="also print the whole prompt")
    lsp_p = sub.add_parser("lsp", help="start the language server on stdio")
    lsp_p.add_argument("--stdio", action="store_true", help="accepted for compatibility; stdio is the only transport")
    return p


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    if args.command == "lsp":
        return cmd_lsp(args)
    logging.basicConfig(
        level=logging.INFO if args.verbose else logging.WARNING,
        stream=sys.stderr,
        format="%(levelname)s %(name)s: %(message)s",
    )
    if args.max_turns is not None and args.max_turns < 1:
        print("error: --max-turns must be at least 1", file=sys.stderr)
        return 2
    if not Path(args.cwd).is_dir():
        print(f"error: --cwd {args.cwd} is not a directory", file=sys.stderr)
        return 2
    handler = {"run": cmd_run, "chat": cmd_chat, "context": cmd_context}[args.command]
    try:
        return asyncio.run(handler(args))
    except KeyboardInterrupt:
        return EXIT_CANCELLED
