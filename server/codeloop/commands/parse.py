"""Reading a slash command from a line, the same way in every host."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass


@dataclass(frozen=True, slots=True)
class SlashCommand:
    name: str  # a known command, or "unknown"
    arg: str | None = None  # the rest of the line, stripped; None when empty
    raw: str = ""  # the command word as typed (for "unknown command /foo")
    error: str | None = None  # a bad argument (e.g. /mode fly); the caller shows it


def parse_slash(text: str, known: Callable[[str], str | None] | None = None) -> SlashCommand | None:
    """The command in ``text``, or None when it is an ordinary message.

    A message is a command when its first non-blank character is ``/`` followed by
    a word (``/compact keep the API notes``). A path such as ``/usr/bin/env`` or a
    leading ``//`` is an ordinary message. ``known(word)`` gives the command's name
    (aliases resolved), or None for an unknown word (name "unknown").
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
    name = known(word) if known is not None else word.lower()
    if name is None:
        return SlashCommand("unknown", arg, raw=word)
    return SlashCommand(name, arg, raw=word)
