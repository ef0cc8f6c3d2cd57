"""Slash commands, parsed the same way by the REPL and the chat panel."""

from __future__ import annotations

from dataclasses import dataclass

from codeloop.policy.types import MODES


@dataclass(frozen=True, slots=True)
class SlashCommand:
    name: str  # a known command, or "unknown"
    arg: str | None = None  # the rest of the line, stripped; None when empty
    raw: str = ""  # the command word as typed (for "unknown command /foo")
    error: str | None = None  # a bad argument (e.g. /mode fly); the caller shows it


# name -> (argument synopsis, description)
COMMANDS: dict[str, tuple[str, str]] = {
    "clear": ("", "start a new, empty conversation"),
    "compact": ("[focus]", "summarise the conversation so far to free context (optional: what to keep)"),
    "context": ("", "show what the system prompt holds, with token counts per part"),
    "cost": ("", "show tokens used and the cost of this turn and this session"),
    "model": ("[name]", "show the model, or switch to another"),
    "mode": ("[" + "|".join(MODES) + "]", "show the permission mode, or switch"),
    "resume": ("[id]", "resume a saved session (the latest if no id)"),
    "help": ("", "show this help"),
    "exit": ("", "leave (the REPL only)"),
}
ALIASES = {"quit": "exit", "?": "help", "new": "clear"}

HELP_TEXT = "Commands:\n" + "\n".join(
    f"  /{name}{(' ' + syn) if syn else ''}".ljust(40) + desc for name, (syn, desc) in COMMANDS.items()
) + "\nAnything else is sent to the agent. Start a message with // to send a literal leading slash."


def parse_slash(text: str) -> SlashCommand | None:
    """The command in ``text``, or None when it is an ordinary message.

    A message is a command when its first non-blank character is ``/`` followed by
    a word (``/compact keep the API notes``). A path such as ``/usr/bin/env`` or a
    leading ``//`` is an ordinary message.
    """
    stripped = text.strip()
    if not stripped.startswith("/") or stripped.startswith("//"):
        return None
    word, _, rest = stripped[1:].partition(" ")
    if "\n" in word:
        word, _, more = word.partition("\n")
        rest = more + (" " + rest if rest else "")
    if not word or "/" in word:
        return None  # "/" alone, or a path
    arg = rest.strip() or None
    name = ALIASES.get(word.lower(), word.lower())
    if name not in COMMANDS:
        return SlashCommand("unknown", arg, raw=word)
    if name == "mode" and arg is not None:
        match = {m.lower(): m for m in MODES}.get(arg.lower())
        if match is None:
            return SlashCommand(name, arg, raw=word, error=f"unknown mode {arg!r}; choose one of {', '.join(MODES)}")
        arg = match
    if name in ("model", "resume") and arg is not None and " " in arg:
        return SlashCommand(name, arg, raw=word, error=f"/{name} takes one word, got {arg!r}")
    return SlashCommand(name, arg, raw=word)
