"""Tool names the model sees: ``mcp__<server>__<tool>``.

Characters outside ``[A-Za-z0-9_-]`` become ``_`` (Claude Code's rule). OpenAI's function
names must match ``^[a-zA-Z0-9_-]{1,64}$`` (the ``openai`` client documents "a maximum
length of 64"; longer names are rejected with a 400), so a longer name is cut to 55
characters and ends with ``_`` and 8 hex digits of a hash of the whole name. Two tools
whose names come out the same (``a.b`` and ``a_b``, or servers ``my.srv`` and ``my_srv``)
get ``_2``, ``_3``, ... in the order they were first seen; a name, once given, stays the
tool's for the life of the registry, so a ``tools/list_changed`` never renames a tool the
model already knows.

Never parse a qualified name back into server and tool (both may contain ``__``, and the
name may be cut): keep the mapping (``McpToolInfo.server`` / ``.name``).
"""

from __future__ import annotations

import hashlib
import re

PREFIX = "mcp__"
SEPARATOR = "__"
MAX_NAME = 64
_UNSAFE = re.compile(r"[^A-Za-z0-9_-]")


def sanitize(part: str) -> str:
    return _UNSAFE.sub("_", part) or "_"


def _fit(name: str, limit: int = MAX_NAME) -> str:
    if len(name) <= limit:
        return name
    digest = hashlib.sha256(name.encode()).hexdigest()[:8]
    return name[: limit - 9] + "_" + digest


def server_prefix(server: str) -> str:
    """``mcp__<server>__``: what Claude Code-style rules (``mcp__server``) match on."""
    return f"{PREFIX}{sanitize(server)}{SEPARATOR}"


def qualified_name(server: str, tool: str) -> str:
    """The name before collision handling (at most 64 characters)."""
    return _fit(f"{server_prefix(server)}{sanitize(tool)}")


class NameRegistry:
    """Gives each (server, tool) a unique, stable, valid function name."""

    def __init__(self, reserved: set[str] | None = None) -> None:
        self._by_key: dict[tuple[str, str], str] = {}
        self._taken: set[str] = set(reserved or ())

    def name_for(self, server: str, tool: str) -> str:
        key = (server, tool)
        got = self._by_key.get(key)
        if got is not None:
            return got
        base = qualified_name(server, tool)
        name = base
        n = 2
        while name in self._taken:
            suffix = f"_{n}"
            name = _fit(base, MAX_NAME - len(suffix)) + suffix if len(base) + len(suffix) > MAX_NAME else base + suffix
            n += 1
        self._by_key[key] = name
        self._taken.add(name)
        return name

    def known(self, server: str, tool: str) -> str | None:
        return self._by_key.get((server, tool))
