"""The slash commands, each written once for every host.

A command is a function ``(host, arg) -> Reply`` over the ``CommandHost`` port:
the host gives the current session and the few things only it can do (start a
new conversation, resume one). ``dispatch`` parses a line and runs it.
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal, Protocol

from codeloop.commands.custom import for_workspace
from codeloop.commands import rewind as rewind_cmd
from codeloop.commands.parse import SlashCommand, parse_slash
from codeloop.config import Settings
from codeloop.context.custom_commands import CustomCommands
from codeloop.policy.engine import BYPASS_WARNING
from codeloop.policy.types import MODES, Mode

log = logging.getLogger(__name__)


@dataclass(frozen=True, slots=True)
class Reply:
    text: str
    level: Literal["info", "warning", "error"] = "info"
    exit: bool = False  # the REPL ends
    send: str | None = None  # a prompt to send to the agent as the user's message (custom commands)


class CommandSession(Protocol):
    """What the commands use of a session (``codeloop.runtime.session.AgentSession``)."""

    @property
    def id(self) -> str | None: ...

    @property
    def messages(self) -> list[dict[str, Any]]: ...

    root: Path  # the workspace (its custom commands)
    settings: Settings
    policy: Any  # .mode
    cost: Any  # .render()
    store: Any  # .latest()
    rewind: Any  # the rewind of the session (commands.rewind.Rewinding)

    async def compact(self, focus: str | None) -> Any: ...

    async def assembled_prompt(self) -> Any: ...

    def conversation_report(self) -> str: ...

    def update_settings(self, settings: Settings) -> None: ...

    def set_mode(self, mode: Mode) -> None: ...


class CommandHost(Protocol):
    """What a host offers the commands."""

    name: str  # "cli", "lsp", ...

    @property
    def session(self) -> CommandSession: ...

    async def new_session(self) -> CommandSession:
        """Start a new, empty conversation and make it current (the model and mode hold)."""
        ...

    async def resume(self, session_id: str) -> CommandSession:
        """Resume a saved session and make it current. Raises LookupError when unknown."""
        ...

    def rewind_ui(self) -> rewind_cmd.RewindUI | None:
        """How /rewind asks and shows (None: this host cannot ask)."""
        ...

    def rewind_port(self) -> Any:
        """Where /rewind restores files (the editor's buffers), or None for the disk."""
        ...


Handler = Callable[[CommandHost, str | None], Awaitable[Reply]]


@dataclass(frozen=True, slots=True)
class Command:
    name: str
    synopsis: str
    description: str
    run: Handler
    aliases: tuple[str, ...] = ()
    hosts: tuple[str, ...] = ()  # empty: every host
    # checks the argument before the command runs: an error text, or None
    check: Callable[[str | None], str | None] | None = None
    # the canonical form of the argument (e.g. a mode's spelling)
    normalize: Callable[[str], str] = field(default=lambda a: a)

    def offered_in(self, host: str) -> bool:
        return not self.hosts or host in self.hosts


# -- the commands ---------------------------------------------------------------


async def _clear(host: CommandHost, arg: str | None) -> Reply:
    new = await host.new_session()
    return Reply(f"Started a new session {new.id or '(not saved)'}. (The old one is kept in the history.)")


async def _compact(host: CommandHost, arg: str | None) -> Reply:
    session = host.session
    if not session.messages:
        return Reply("Nothing to compact yet.")
    result = await session.compact(arg or None)
    if result.ok:
        return Reply(
            f"Compacted: {result.tokens_before:,} → {result.tokens_after:,} tokens "
            f"({result.removed_count} messages summarised)."
        )
    return Reply(f"Compaction failed; the conversation is unchanged: {result.error}", "warning")


async def _context(host: CommandHost, arg: str | None) -> Reply:
    session = host.session
    assembled = await session.assembled_prompt()
    return Reply(assembled.render_report() + "\n\n" + session.conversation_report())


async def _cost(host: CommandHost, arg: str | None) -> Reply:
    return Reply(host.session.cost.render())


async def _model(host: CommandHost, arg: str | None) -> Reply:
    session = host.session
    if not arg:
        return Reply(f"Model: {session.settings.model} at {session.settings.base_url}")
    session.update_settings(session.settings.model_copy(update={"model": arg}))
    return Reply(f"Model set to {arg} for this session.")


def _mode_name(arg: str) -> str:
    return {m.lower(): m for m in MODES}.get(arg.lower(), arg)


def _check_mode(arg: str | None) -> str | None:
    if arg is not None and _mode_name(arg) not in MODES:
        return f"unknown mode {arg!r}; choose one of {', '.join(MODES)}"
    return None


async def _mode(host: CommandHost, arg: str | None) -> Reply:
    session = host.session
    if not arg:
        return Reply(f"Mode: {session.policy.mode}. Modes: {', '.join(MODES)}.")
    session.set_mode(arg)  # type: ignore[arg-type]  # checked by _check_mode
    if arg == "bypass":
        return Reply("Mode: bypass. " + BYPASS_WARNING[0].upper() + BYPASS_WARNING[1:], "warning")
    return Reply(f"Mode: {arg}.")


async def _resume(host: CommandHost, arg: str | None) -> Reply:
    store = host.session.store
    target = arg
    if not target:
        latest = store.latest() if store is not None else None
        target = latest.id if latest is not None else None
    if not target:
        return Reply("There is no session to resume.")
    try:
        opened = await host.resume(target)
    except LookupError as e:
        return Reply(f"Could not resume {target}: {e}", "error")
    return Reply(f"Resumed session {opened.id} ({len(opened.messages)} messages).")


async def _rewind(host: CommandHost, arg: str | None) -> Reply:
    try:
        level, text = await rewind_cmd.run(host.session.rewind, host.rewind_ui(), rewind_cmd.parse_args(arg),
                                           host.rewind_port())
    except ValueError as e:  # what cannot be rewound, said to the user
        return Reply(str(e), "warning")
    return Reply(text, level)  # type: ignore[arg-type]


async def _help(host: CommandHost, arg: str | None) -> Reply:
    return Reply(help_text(host.name, await custom_commands(host)))


async def _exit(host: CommandHost, arg: str | None) -> Reply:
    return Reply("", exit=True)


class McpControl(Protocol):
    """What /mcp uses of a host's MCP servers (``codeloop.runtime.mcp.WorkspaceMcp``); a
    host offers it as ``host.mcp`` (None or absent: no MCP in that host)."""

    def report(self) -> str: ...

    async def restart(self, name: str) -> str: ...

    async def set_consent(self, name: str, allowed: bool) -> str: ...


async def _mcp(host: CommandHost, arg: str | None) -> Reply:
    mcp: McpControl | None = getattr(host, "mcp", None)
    if mcp is None:
        return Reply("MCP servers are not available in this host.", "warning")
    verb, _, name = (arg or "").partition(" ")
    name = name.strip()
    if not verb:
        return Reply(mcp.report())
    if verb in ("restart", "allow", "deny") and name:
        text = await mcp.restart(name) if verb == "restart" else await mcp.set_consent(name, verb == "allow")
        return Reply(text)
    return Reply("Usage: /mcp, /mcp restart <name>, /mcp allow <name>, /mcp deny <name>.", "warning")


def _one_word(name: str) -> Callable[[str | None], str | None]:
    def check(arg: str | None) -> str | None:
        return f"/{name} takes one word, got {arg!r}" if arg is not None and " " in arg else None

    return check


COMMANDS: tuple[Command, ...] = (
    Command("clear", "", "start a new, empty conversation", _clear, aliases=("new",)),
    Command("compact", "[focus]", "summarise the conversation so far to free context (optional: what to keep)", _compact),
    Command("context", "", "show what the system prompt holds, with token counts per part", _context),
    Command("cost", "", "show tokens used and the cost of this turn and this session", _cost),
    Command("model", "[name]", "show the model, or switch to another", _model, check=_one_word("model")),
    Command("mode", "[" + "|".join(MODES) + "]", "show the permission mode, or switch", _mode,
            check=_check_mode, normalize=_mode_name),
    Command("resume", "[id]", "resume a saved session (the latest if no id)", _resume, check=_one_word("resume")),
    Command("mcp", "[restart|allow|deny <name>]", "show the MCP servers (state, tools, last error), or restart one",
            _mcp),
    Command("rewind", "[N] [--code-only|--conversation-only] [--yes]",
            "list the messages to rewind to, or put the code and/or the conversation back to before message N",
            _rewind, check=rewind_cmd.check),
    Command("help", "", "show this help", _help, aliases=("?",)),
    Command("exit", "", "leave", _exit, aliases=("quit",), hosts=("cli",)),
)


def _by_word() -> dict[str, Command]:
    out: dict[str, Command] = {}
    for c in COMMANDS:
        out[c.name] = c
        for a in c.aliases:
            out[a] = c
    return out


_BY_WORD = _by_word()


def lookup(word: str, host: str | None = None) -> Command | None:
    cmd = _BY_WORD.get(word.lower())
    if cmd is None or (host is not None and not cmd.offered_in(host)):
        return None
    return cmd


def commands_for(host: str) -> list[Command]:
    return [c for c in COMMANDS if c.offered_in(host)]


def help_text(host: str, custom: CustomCommands | None = None) -> str:
    rows = [
        f"  /{c.name}{(' ' + c.synopsis) if c.synopsis else ''}".ljust(40) + c.description for c in commands_for(host)
    ]
    text = "Commands:\n" + "\n".join(rows)
    if custom is not None and custom.commands:
        lines = [f"  /{name}{(' ' + c.argument_hint) if c.argument_hint else ''}".ljust(40)
                 + f"{c.description} {c.label}" for name, c in _custom_rows(custom) if lookup(name, host) is None]
        text += "\nCustom commands (Markdown files; the built-in commands above win):\n" + "\n".join(lines)
    return text + "\nAnything else is sent to the agent. Start a message with // to send a literal leading slash."


def _custom_rows(custom: CustomCommands) -> list[tuple[str, Any]]:
    """(what to type after the slash, the command) for each custom command."""
    names = [c.name for c in custom.commands]
    return [(c.name if names.count(c.name) == 1 or not c.namespace else c.qualified, c) for c in custom.commands]


async def custom_commands(host: CommandHost) -> CustomCommands | None:
    """The custom commands of the host's workspace, as the files say now (None: no workspace)."""
    root = getattr(host.session, "root", None)
    if root is None:
        return None
    return await for_workspace(root).get()


def parse(text: str, host: str) -> SlashCommand | None:
    """The slash command in ``text`` for this host (None: an ordinary message)."""
    def known(word: str) -> str | None:
        cmd = lookup(word, host)
        return cmd.name if cmd is not None else None

    parsed = parse_slash(text, known)
    if parsed is None or parsed.name == "unknown":
        return parsed
    cmd = lookup(parsed.name, host)
    assert cmd is not None
    error = cmd.check(parsed.arg) if cmd.check is not None else None
    if error is not None:
        return SlashCommand(parsed.name, parsed.arg, parsed.raw, error)
    arg = cmd.normalize(parsed.arg) if parsed.arg is not None else None
    return SlashCommand(parsed.name, arg, parsed.raw)


async def dispatch(text: str, host: CommandHost) -> Reply | None:
    """Run the slash command in ``text``; None when it is an ordinary message.
    A command's failure is a reply, never an exception."""
    parsed = parse(text, host.name)
    if parsed is None:
        return None
    if parsed.name == "unknown":
        custom = await custom_commands(host)
        command, why = custom.lookup(parsed.raw) if custom is not None else (None, None)
        if command is not None:
            return Reply(f"/{command.qualified} {command.label}", send=command.expand(parsed.arg))
        if why is not None:
            return Reply(why, "warning")
        return Reply(f"Unknown command /{parsed.raw}.\n" + help_text(host.name, custom), "warning")
    if parsed.error is not None:
        return Reply(parsed.error, "warning")
    cmd = lookup(parsed.name, host.name)
    assert cmd is not None
    try:
        return await cmd.run(host, parsed.arg)
    except Exception as e:  # a command's failure must not end the REPL or the server
        log.exception("/%s failed", cmd.name)
        return Reply(f"/{cmd.name} failed: {e}", "error")


def describe(host: str, custom: CustomCommands | None = None) -> Sequence[dict[str, str]]:
    """The table for a client (the panel's completion and help): the built-in commands,
    then the custom ones (``source`` says where they come from). ``custom``: from
    ``await custom_commands(host)``."""
    out = [{"name": c.name, "synopsis": c.synopsis, "description": c.description, "source": "built-in"}
           for c in commands_for(host)]
    for name, c in _custom_rows(custom) if custom is not None else []:
        if lookup(name, host) is None:  # a built-in command of that name wins
            out.append({"name": name, "synopsis": c.argument_hint or "", "description": c.description,
                        "source": c.label.strip("()")})
    return out


__all__ = [
    "COMMANDS", "Command", "CommandHost", "CommandSession", "Reply", "commands_for", "custom_commands", "describe",
    "dispatch",
    "help_text", "lookup", "parse",
]
