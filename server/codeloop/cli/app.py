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
from codeloop.cli import rewind as rewind_cli
from codeloop.cli.console import ConsoleSink, TerminalApprover, TerminalChoices, TerminalConsent, ask_line, terminal_confirm
from codeloop.commands.custom import expand as expand_custom
from codeloop.commands.table import dispatch
from codeloop.config import Settings
from codeloop.context.store import SessionStore
from codeloop.core.events import ErrorEvent, Notice, TurnEnd
from codeloop.core.ports import DenyAll
from codeloop.edits.change import ChangeSet
from codeloop.edits.disk import DiskChangeApplier
from codeloop.policy import PermissionPolicy
from codeloop.policy.engine import BYPASS_WARNING
from codeloop.policy.types import MODES
from codeloop.runtime.mcp import WorkspaceMcp, open_workspace
from codeloop.runtime.sandboxing import sandbox_for
from codeloop.runtime.session import AgentSession, Ports
from codeloop.runtime.settings import load_settings
from codeloop.runtime.trust import ProjectTrust
from codeloop.services.diagnostics import CheckedApplier, DiagnosticsService
from codeloop.services.mcp import cannot_ask

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


class CliWorkspace:
    """What one ``codeloop`` process holds for its workspace, whichever session is current:
    the project trust (one prompt lock for every question) and the MCP servers."""

    def __init__(self, args: argparse.Namespace, sink: ConsoleSink) -> None:
        settings, _ = settings_from_args(args)
        self.root = Path(args.cwd).resolve()
        self.interactive = sys.stdin.isatty() and not args.yes
        self.lock = asyncio.Lock()
        ask: Any = TerminalConsent(sink, self.lock) if self.interactive else cannot_ask
        self.trust = ProjectTrust(self.root, trust_project=bool(getattr(args, "trust_project", False)
                                                                 or settings.trust_project),
                                  ask=ask, notify=lambda m: sink.emit(Notice(m, "warning")))
        self.mcp = WorkspaceMcp(self.root, settings, self.trust, notify=lambda m: sink.emit(Notice(m, "warning")))
        self.sink = sink

    async def open(self) -> None:
        """Consent first (asked now, at the terminal, before any prompt), then the servers
        start in the background: the first turn does not wait for them."""
        await open_workspace(self.trust, self.mcp, wait_for_answers=True)
        for s in self.mcp.states():
            if s.status == "needs-consent":
                self.sink.emit(Notice(
                    f"The project's MCP server {s.name!r} ({s.origin}) was not started: a project's servers run only "
                    f"with your consent. Run codeloop in a terminal to answer, or pass --trust-project.", "warning"))

    async def close(self) -> None:
        await self.mcp.close()
        await self.trust.close()


def build_session(args: argparse.Namespace, sink: ConsoleSink, resume: str | None = None,
                  persist: bool = True, workspace: CliWorkspace | None = None,
                  start_source: str | None = None) -> AgentSession:
    settings, problems = settings_from_args(args)
    for p in problems:
        sink.emit(Notice(p, "warning"))
    root = Path(args.cwd).resolve()
    interactive = sys.stdin.isatty() and not args.yes
    if args.yes:
        approver: Any = DenyAll(NO_TTY)  # bypass mode never asks; deny is the safe fallback
        applier = DiskChangeApplier(None, root=root)
    elif interactive:
        approver = TerminalApprover(sink, workspace.lock if workspace is not None else None)
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
    # The project's own allow rules apply once the project is trusted (runtime/trust.py).
    policy = PermissionPolicy(root, mode=settings.mode, user_settings=settings.permissions,
                              gate=workspace.trust if workspace is not None else None)
    session = AgentSession(
        settings, root, Ports(sink=sink, approver=approver, changes=changes, diagnostics=checker),
        resume=resume, persist=persist, policy=policy, start_source=start_source,
        project_trust=workspace.trust if workspace is not None else None,
    )
    if workspace is not None:
        workspace.mcp.attach(session)
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

    def __init__(self, args: argparse.Namespace, sink: ConsoleSink, session: AgentSession,
                 workspace: CliWorkspace | None = None) -> None:
        self.args = args
        self.sink = sink
        self._session = session
        self.workspace = workspace

    @property
    def session(self) -> AgentSession:
        return self._session

    @property
    def mcp(self) -> WorkspaceMcp | None:
        return self.workspace.mcp if self.workspace is not None else None

    async def _switch(self, resume: str | None) -> AgentSession:
        previous = self._session
        session = build_session(self.args, self.sink, resume=resume, workspace=self.workspace,
                                start_source=None if resume else "clear")
        WorkspaceMcp.detach(previous)
        await previous.close("clear" if resume is None else "other")
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

    def rewind_ui(self) -> TerminalChoices:
        return TerminalChoices(self.sink)

    def rewind_port(self) -> None:
        return None  # no editor: files are written atomically on disk


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
    workspace = CliWorkspace(args, sink)
    try:
        await workspace.open()
        session = build_session(args, sink, workspace=workspace)
        try:
            await banner(session, sink)
            # A custom command (/fix-issue 12) stands for its prompt; built-in commands are the chat's.
            end = await _run_turn(session, await expand_custom(args.task, session.root) or args.task)
            if session.cost.session_cost() is not None:
                sink.line(sink.style("2", session.cost.render_short()))
            return _exit_code(end)
        finally:
            await session.close()
    finally:
        await workspace.close()


async def cmd_chat(args: argparse.Namespace) -> int:
    sink = ConsoleSink()
    resume = None
    if args.resume is not None or args.continue_:
        resume = await _pick_session(args, sink)
        if resume is False:
            return EXIT_ERROR
    workspace = CliWorkspace(args, sink)
    try:
        await workspace.open()
        host = ReplHost(args, sink, build_session(args, sink, resume=resume or None, workspace=workspace), workspace)
        await banner(host.session, sink)
        return await _repl(args, sink, host, resume)
    finally:
        await workspace.close()


async def _repl(args: argparse.Namespace, sink: ConsoleSink, host: ReplHost, resume: Any) -> int:
    if resume:
        sink.line(sink.style("2", f"Resumed session {host.session.id} ({len(host.session.messages)} messages)."))
        if host.session.todos.items:
            sink.emit(host.session.todos.event())
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
        await host.session.close("prompt_input_exit")


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


async def cmd_mcp(args: argparse.Namespace) -> int:
    """``codeloop mcp list``: start the configured servers (those allowed: nothing is asked),
    wait for them, print their state and tools, stop them."""
    sink = ConsoleSink()
    root = Path(args.cwd).resolve()
    settings, problems = load_settings(root, {})
    for p in problems:
        sink.emit(Notice(p, "warning"))
    trust = ProjectTrust(root, trust_project=args.trust_project or settings.trust_project, ask=cannot_ask)
    # One attempt each: a listing shows a failure, it does not retry it.
    mcp = WorkspaceMcp(root, settings, trust, notify=lambda m: sink.emit(Notice(m, "warning")), max_failures=1)
    try:
        await trust.load()
        await mcp.start()
        if mcp.manager is not None:
            await mcp.manager.wait_settled(args.timeout if args.timeout is not None else settings.mcp_startup_timeout)
        sink.line(mcp.report(commands=False))
        if args.tools:
            for info in mcp.tools():
                sink.line(f"  {info.qualified_name}: {info.description.splitlines()[0] if info.description else ''}")
        return EXIT_OK
    finally:
        await mcp.close()
        await trust.close()
async def cmd_rewind(args: argparse.Namespace) -> int:
    return await rewind_cli.cmd_rewind(args, build_session, settings_from_args)


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
        sp.add_argument("--trust-project", dest="trust_project", action="store_true",
                        help="for this run, trust the project's own MCP servers, hooks and allow rules without "
                             "asking (what you refused stays refused; --yes does not imply this)")
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
    mcp_p = sub.add_parser("mcp", help="the MCP servers of this workspace")
    mcp_sub = mcp_p.add_subparsers(dest="mcp_command", required=True)
    mcp_list = mcp_sub.add_parser("list", help="start the configured servers, show their state and tools, stop them")
    mcp_list.add_argument("--cwd", default=".", help="the workspace folder (default: the current directory)")
    mcp_list.add_argument("--trust-project", dest="trust_project", action="store_true",
                          help="start the project's servers that need your consent, for this listing")
    mcp_list.add_argument("--timeout", type=float, default=None, metavar="SECONDS",
                          help="how long to wait for the servers to start (default: the mcpStartupTimeout setting)")
    mcp_list.add_argument("--tools", action="store_true", help="also list each server's tools")
    mcp_list.add_argument("--verbose", "-v", action="store_true", help="log to stderr")
    rewind_cli.add_parser(sub)
    lsp_p = sub.add_parser("lsp", help="start the language server on stdio")
    lsp_p.add_argument("--stdio", action="store_true", help="accepted for compatibility; stdio is the only transport")
    acp_p = sub.add_parser("acp", help="start the Agent Client Protocol agent on stdio (Zed, JetBrains, Neovim, Emacs)")
    acp_p.add_argument("--model", help="model name (default: $CODELOOP_MODEL)")
    acp_p.add_argument("--base-url", dest="base_url", help="OpenAI-compatible endpoint (default: $OPENAI_BASE_URL)")
    acp_p.add_argument("--mode", choices=MODES, help="the permission mode new sessions start in (default: ask)")
    acp_p.add_argument("--max-turns", dest="max_turns", type=int, help="max model calls per turn (default 50)")
    acp_p.add_argument("--trust-project", dest="trust_project", action="store_true",
                       help="trust the workspaces' own MCP servers, hooks and allow rules without asking")
    return p


def run(args: argparse.Namespace) -> int:
    """Run a parsed headless subcommand (run, chat, context, mcp)."""
    logging.basicConfig(
        level=logging.INFO if args.verbose else logging.WARNING,
        stream=sys.stderr,
        format="%(levelname)s %(name)s: %(message)s",
    )
    if getattr(args, "max_turns", None) is not None and args.max_turns < 1:
        print("error: --max-turns must be at least 1", file=sys.stderr)
        return 2
    if not Path(args.cwd).is_dir():
        print(f"error: --cwd {args.cwd} is not a directory", file=sys.stderr)
        return 2
    handler = {"run": cmd_run, "chat": cmd_chat, "context": cmd_context, "mcp": cmd_mcp, "rewind": cmd_rewind}[args.command]
    try:
        return asyncio.run(handler(args))
    except KeyboardInterrupt:
        return EXIT_CANCELLED
