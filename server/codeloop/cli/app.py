"""The headless host: builds sessions and runs ``codeloop run``, ``codeloop chat``
and ``codeloop context``. Slash commands in ``chat`` go to the command layer, as in
every host."""

from __future__ import annotations

import argparse
import asyncio
import logging
import signal
import sys
from pathlib import Path
from typing import Any

from codeloop import __version__
from codeloop.cli.console import ConsoleSink, TerminalApprover, ask_line, terminal_confirm
from codeloop.commands.table import dispatch
from codeloop.config import Settings
from codeloop.context.store import SessionStore
from codeloop.core.events import ErrorEvent, Notice, TurnEnd
from codeloop.core.ports import DenyAll
from codeloop.edits.change import ChangeSet
from codeloop.edits.disk import DiskChangeApplier
from codeloop.policy.engine import BYPASS_WARNING
from codeloop.policy.types import MODES
from codeloop.runtime.sandboxing import sandbox_for
from codeloop.runtime.session import AgentSession, Ports
from codeloop.runtime.settings import load_settings
from codeloop.services.diagnostics import CheckedApplier, DiagnosticsService

EXIT_OK = 0
EXIT_ERROR = 1
EXIT_MAX_TURNS = 3
EXIT_CANCELLED = 130


NO_TTY = (
    "no terminal is attached to confirm it, so it was refused. Rerun codeloop with --yes to "
    "allow edits and commands, or add a rule that allows this in .codeloop/settings.json."
)


def settings_from_args(args: argparse.Namespace) -> tuple[Settings, list[str]]:
    flags: dict[str, Any] = {
        "model": args.model,
        "base_url": args.base_url,
        "max_turns": args.max_turns,
        "mode": args.mode,
        "context_window": getattr(args, "context_window", None),
        "sandbox": getattr(args, "sandbox", None),
    }
    if args.yes and not args.mode:
        flags["mode"] = "bypass"
    return load_settings(Path(args.cwd).resolve(), {k: v for k, v in flags.items() if v is not None})


def build_session(args: argparse.Namespace, sink: ConsoleSink, resume: str | None = None,
                  persist: bool = True) -> AgentSession:
    settings, problems = settings_from_args(args)
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
    # reports new errors after each write, and answers the diagnostics tool.
    checker = DiagnosticsService(root, check_command=settings.check_command, sandbox=sandbox_for(settings, root))
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
        sink.emit(Notice(BYPASS_WARNING, "warning"))
    return session


class ReplHost:
    """The command layer's view of ``codeloop chat``: one current session at a time."""

    name = "cli"

    def __init__(self, args: argparse.Namespace, sink: ConsoleSink, session: AgentSession) -> None:
        self.args = args
        self.sink = sink
        self._session = session

    @property
    def session(self) -> AgentSession:
        return self._session

    async def _switch(self, resume: str | None) -> AgentSession:
        previous = self._session
        session = build_session(self.args, self.sink, resume=resume)
        await previous.close()
        # /model and /mode hold for the whole REPL, not just one conversation.
        session.update_settings(
            session.settings.model_copy(update={"model": previous.settings.model, "mode": previous.policy.mode})
        )
        self._session = session
        return session

    async def new_session(self) -> AgentSession:
        return await self._switch(None)

    async def resume(self, session_id: str) -> AgentSession:
        try:
            return await self._switch(session_id)
        except (FileNotFoundError, KeyError, ValueError) as e:
            raise LookupError(f"no session {session_id!r} in this workspace ({e})") from e


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


async def banner(session: AgentSession, sink: ConsoleSink) -> None:
    """Which sandbox runs the commands (probed now); when none does, the session's warning
    says so instead."""
    await session.start()
    if session.sandbox.active or session.sandbox.settings.mode == "off":
        sink.line(sink.style("2", session.sandbox.describe()))


async def cmd_run(args: argparse.Namespace) -> int:
    sink = ConsoleSink()
    session = build_session(args, sink)
    try:
        await banner(session, sink)
        end = await _run_turn(session, args.task)
        if session.cost.session_cost() is not None:
            sink.line(sink.style("2", session.cost.render_short()))
        return _exit_code(end)
    finally:
        await session.close()


async def cmd_chat(args: argparse.Namespace) -> int:
    sink = ConsoleSink()
    resume = None
    if args.resume is not None or args.continue_:
        resume = await _pick_session(args, sink)
        if resume is False:
            return EXIT_ERROR
    host = ReplHost(args, sink, build_session(args, sink, resume=resume or None))
    await banner(host.session, sink)
    if resume:
        sink.line(sink.style("2", f"Resumed session {host.session.id} ({len(host.session.messages)} messages)."))
    sink.line(sink.style("2", "codeloop chat: type a message, /help for commands, Ctrl-D to quit, Ctrl-C stops a turn."))
    last = EXIT_OK
    try:
        while True:
            line = await ask_line("> ")
            if line is None:
                sink.line("")
                return last
            text = line.strip()
            if not text:
                continue
            reply = await dispatch(text, host)
            if reply is not None and reply.exit:
                return last
            if reply is not None and reply.send is None:
                if reply.level == "error":
                    sink.emit(ErrorEvent(reply.text))
                elif reply.level == "warning":
                    sink.emit(Notice(reply.text, "warning"))
                else:
                    sink.line(reply.text)
                continue
            end = await _run_turn(host.session, reply.send if reply is not None and reply.send else text)
            last = _exit_code(end)
    finally:
        await host.session.close()


async def _pick_session(args: argparse.Namespace, sink: ConsoleSink) -> Any:
    settings, _ = settings_from_args(args)
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
    session = build_session(args, sink, persist=False)  # showing the prompt leaves no session behind
    try:
        assembled = await session.assembled_prompt()
        print(assembled.render_report())
        if args.full:
            print(assembled.text)
        return EXIT_OK
    finally:
        await session.close()


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
        sp.add_argument("--sandbox", choices=("auto", "on", "off"),
                        help="run commands in the OS sandbox: auto (where one works, the default), on "
                             "(refuse to run them unsandboxed), off")
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


def run(args: argparse.Namespace) -> int:
    """Run a parsed headless subcommand (run, chat, context)."""
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
