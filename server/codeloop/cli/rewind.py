"""``codeloop rewind``: list, preview and apply rewinds of a saved session (the latest of
the workspace unless ``--session``), with the same flow as ``/rewind`` (the command
layer): at a terminal it asks what to rewind and, per file the user changed since, what
to do; ``--yes`` asks nothing (a file changed since is kept, or rebased with
``--rebase``; never reset)."""

from __future__ import annotations

import argparse
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

from codeloop.cli.console import ConsoleSink, TerminalChoices
from codeloop.commands import rewind as rewind_cmd
from codeloop.context.store import SessionStore
from codeloop.core.events import ErrorEvent

EXIT_OK, EXIT_ERROR, EXIT_USAGE = 0, 1, 2
CHOICES = ("restore", "keep", "rebase")


def add_parser(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("rewind", help="list, preview or apply a rewind of a session (code and/or conversation)",
                       description="Rewind the code and/or the conversation of a session to before one of its "
                                   "user messages. Without an action: list.")
    p.add_argument("action", nargs="?", choices=("list", "preview", "apply"), default="list")
    p.add_argument("target", nargs="?", help="the message number (as listed) or a checkpoint id; default: the last message")
    p.add_argument("--session", help="the session (default: the latest of the workspace)")
    p.add_argument("--cwd", default=".", help="the workspace folder (default: the current directory)")
    scope = p.add_mutually_exclusive_group()
    scope.add_argument("--code-only", dest="code_only", action="store_true", help="rewind the files, not the conversation")
    scope.add_argument("--conversation-only", dest="conversation_only", action="store_true",
                       help="rewind the conversation, not the files")
    p.add_argument("--yes", "-y", action="store_true",
                   help="ask nothing: files changed since the session's change are kept (or rebased with --rebase)")
    p.add_argument("--rebase", action="store_true",
                   help="files changed since: undo the session's changes on top of the later edits instead of keeping them")
    p.add_argument("--choose", action="append", default=[], metavar="PATH=CHOICE",
                   help="what to do with one file: restore, keep or rebase (repeatable)")
    p.add_argument("--verbose", "-v", action="store_true", help="log to stderr")
    # what the session builder reads (no model is called)
    p.set_defaults(model=None, base_url=None, max_turns=None, mode=None, context_window=None)


def _choices(raw: list[str]) -> dict[str, str]:
    out = {}
    for item in raw:
        path, sep, choice = item.rpartition("=")
        if not sep or not path or choice not in CHOICES:
            raise ValueError(f"--choose takes PATH=restore|keep|rebase, got {item!r}")
        out[path.strip().removeprefix("./")] = choice
    return out


async def cmd_rewind(args: argparse.Namespace, build_session: Callable[..., Any],
                     settings_from_args: Callable[..., Any]) -> int:
    """``build_session``/``settings_from_args``: the CLI host's own (``cli.app``)."""
    sink = ConsoleSink()
    root = Path(args.cwd).resolve()
    try:
        choices = _choices(args.choose)
    except ValueError as e:
        print(f"error: {e}", file=sys.stderr)
        return EXIT_USAGE
    interactive = sys.stdin.isatty() and not args.yes
    if args.action == "apply" and not interactive and not args.yes:
        print("error: no terminal is attached to ask what to rewind. Rerun with --yes (files changed since the "
              "session's change are kept; --rebase undoes the session's changes on top of them; --choose "
              "PATH=restore|keep|rebase for one file), or run it at a terminal.", file=sys.stderr)
        return EXIT_USAGE
    settings, _ = settings_from_args(args)
    sid = args.session
    if not sid:
        latest = SessionStore(root, storage=settings.session_storage).latest()
        if latest is None:
            sink.emit(ErrorEvent("There is no session in this workspace to rewind."))
            return EXIT_ERROR
        sid = latest.id
    try:
        session = build_session(args, sink, resume=sid)
    except (FileNotFoundError, KeyError, ValueError) as e:
        sink.emit(ErrorEvent(f"no session {sid!r} in this workspace ({e})"))
        return EXIT_ERROR
    try:
        cps = await session.checkpoints.service()
        if cps is not None and cps.open_elsewhere and args.action == "apply":
            sink.emit(ErrorEvent(f"Session {sid} is open in another codeloop process; stop it (or use /rewind "
                                 "there) before rewinding it here."))
            return EXIT_ERROR
        ra = rewind_cmd.RewindArgs(
            target=args.target, yes=args.yes, rebase=args.rebase, choices=choices,
            code=False if args.conversation_only else (True if args.code_only else None),
            conversation=False if args.code_only else (True if args.conversation_only else None),
            preview_only=args.action == "preview",
        )
        if args.action == "list":
            ra = rewind_cmd.RewindArgs()
            sink.line(sink.style("2", f"Session {sid}"))
        elif args.action == "apply" and args.target is None:
            ra.target = "last"
        try:
            level, text = await rewind_cmd.run(session.rewind, TerminalChoices(sink) if interactive else None, ra)
        except ValueError as e:
            sink.emit(ErrorEvent(str(e)))
            return EXIT_ERROR
        TerminalChoices(sink).show(text)
        return EXIT_OK
    finally:
        await session.close()
