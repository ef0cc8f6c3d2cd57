"""MCP server configuration: where servers are defined, merged, expanded and checked.

Layers, weakest first; a later layer's definition of a name replaces an earlier one's:

1. user: ``mcpServers`` in ``<config home>/settings.json`` (``$XDG_CONFIG_HOME/codeloop``
   or ``~/.config/codeloop``, as ``codeloop.policy.sources.default_config_home``);
2. project: ``.mcp.json`` at the workspace root, Claude Code's format::

       {"mcpServers": {
          "git":  {"command": "uvx", "args": ["mcp-server-git"], "env": {"A": "${A:-x}"}},
          "docs": {"type": "http", "url": "https://example.com/mcp",
                   "headers": {"Authorization": "Bearer ${DOCS_TOKEN}"}},
          "old":  {"type": "sse", "url": "https://example.com/sse"}}}

3. project: ``.vscode/mcp.json``, VS Code's format (its ``servers`` key, ``"type": "stdio"``,
   ``cwd``, ``envFile``, ``${workspaceFolder}``, ``${env:NAME}``);
4. editor: the editor's ``mcpServers`` setting, passed in as a dict.

``${VAR}`` and ``${VAR:-default}`` (Claude Code), and ``${env:VAR}``, ``${workspaceFolder}``,
``${userHome}``, ``${pathSeparator}`` (VS Code) are expanded in ``command``, ``args``,
``env``, ``cwd``, ``url`` and ``headers``, in every layer. A ``${VAR}`` that is not set and
has no default is an error for that server (Claude Code does the same); ``${env:VAR}``
unset is empty (VS Code does the same). ``${input:...}`` prompts are not supported.

A broken file or entry is a :class:`ConfigProblem` naming the file (with its line when it
can be found) and the server; the other servers are unaffected. Each
:class:`ServerConfig` knows its ``source`` ("user" | "project" | "editor"): a project's
servers need the user's consent before they start (see ``consent.py``).
"""

from __future__ import annotations

import json
import logging
import os
import re
import shlex
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

from codeloop.policy.sources import MAX_SETTINGS_BYTES, default_config_home

log = logging.getLogger(__name__)

SourceName = Literal["user", "project", "editor"]
TransportName = Literal["stdio", "http", "sse"]

PROJECT_FILE = ".mcp.json"
VSCODE_FILE = ".vscode/mcp.json"
EDITOR_ORIGIN = "editor settings (mcpServers)"

_TYPES: dict[str, TransportName] = {
    "stdio": "stdio",
    "http": "http",
    "streamable-http": "http",
    "streamableHttp": "http",
    "streamable_http": "http",
    "sse": "sse",
}
_VAR = re.compile(r"\$\{([^}]*)\}")
_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")


@dataclass(frozen=True)
class ServerConfig:
    """One MCP server, as configured (variables expanded)."""

    name: str
    transport: TransportName
    source: SourceName
    origin: str  # the file it came from, or EDITOR_ORIGIN
    command: str | None = None
    args: tuple[str, ...] = ()
    env: Mapping[str, str] = field(default_factory=dict)
    cwd: str | None = None
    url: str | None = None
    headers: Mapping[str, str] = field(default_factory=dict)
    disabled: bool = False
    # The entry as written, before expansion: what a project consent is bound to.
    raw: Mapping[str, Any] = field(default_factory=dict, compare=False, repr=False)

    @property
    def needs_consent(self) -> bool:
        """A project's servers run commands from a repository: the user must agree first."""
        return self.source == "project"

    def command_line(self) -> str:
        """The command (stdio) or URL (http, sse), for display."""
        if self.transport == "stdio":
            return shlex.join([self.command or "", *self.args])
        return self.url or ""

    def describe(self) -> str:
        """One line for a consent prompt or ``/mcp``: what starting this server does."""
        if self.transport == "stdio":
            text = f"runs `{self.command_line()}`"
            if self.env:
                text += f" with {', '.join(sorted(self.env))} set"
            if self.cwd:
                text += f" in {self.cwd}"
            return text
        text = f"connects to {self.url} ({'Streamable HTTP' if self.transport == 'http' else 'SSE'})"
        if self.headers:
            text += f" sending {', '.join(sorted(self.headers))}"
        return text


@dataclass(frozen=True)
class ConfigProblem:
    origin: str  # file (with :line when known) or EDITOR_ORIGIN
    server: str | None
    message: str

    def __str__(self) -> str:
        if self.server is None:
            return f"{self.origin}: {self.message}"
        return f"{self.origin}: MCP server {self.server!r}: {self.message}"


@dataclass
class McpConfig:
    servers: list[ServerConfig] = field(default_factory=list)
    problems: list[ConfigProblem] = field(default_factory=list)

    def by_name(self) -> dict[str, ServerConfig]:
        return {s.name: s for s in self.servers}


class _EntryError(ValueError):
    pass


# -- expansion ----------------------------------------------------------------------------


@dataclass
class _Expander:
    environ: Mapping[str, str]
    root: Path
    home: str

    def __call__(self, text: str) -> str:
        missing: list[str] = []

        def sub(m: re.Match[str]) -> str:
            inner = m.group(1)
            if inner == "workspaceFolder" or inner == "workspaceRoot":
                return str(self.root)
            if inner == "userHome":
                return self.home
            if inner == "pathSeparator" or inner == "/":
                return os.sep
            if inner.startswith("env:"):
                return self.environ.get(inner[4:], "")
            if inner.startswith("input:"):
                raise _EntryError(f"${{{inner}}}: VS Code input prompts are not supported; "
                                  f"use an environment variable (${{VAR}}) instead")
            name, sep, default = inner.partition(":-")
            if not _NAME.fullmatch(name):
                raise _EntryError(f"${{{inner}}} is not a variable reference (${{VAR}} or ${{VAR:-default}})")
            value = self.environ.get(name)
            if sep:
                return value if value else default
            if value is None:
                missing.append(name)
                return ""
            return value

        out = _VAR.sub(sub, text)
        if missing:
            raise _EntryError(f"environment variable{'s' if len(missing) > 1 else ''} "
                              f"{', '.join(dict.fromkeys(missing))} not set (use ${{VAR:-default}} for a default)")
        return out


# -- one entry ----------------------------------------------------------------------------


def _str_map(value: Any, key: str, expand: _Expander) -> dict[str, str]:
    if value is None:
        return {}
    if not isinstance(value, dict):
        raise _EntryError(f'"{key}" must be an object of strings, not {type(value).__name__}')
    out: dict[str, str] = {}
    for k, v in value.items():
        if isinstance(v, bool) or not isinstance(v, (str, int, float)):
            raise _EntryError(f'"{key}.{k}" must be a string, not {type(v).__name__}')
        out[str(k)] = expand(str(v))
    return out


def _read_env_file(path: Path) -> dict[str, str]:
    """KEY=VALUE lines (``#`` comments, optional ``export``, optional quotes)."""
    out: dict[str, str] = {}
    try:
        text = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as e:
        raise _EntryError(f'"envFile" {path} cannot be read ({e})') from None
    for line in text.splitlines():
        line = line.strip()
        if not line or line.startswith("#"):
            continue
        line = line.removeprefix("export ").strip()
        key, sep, value = line.partition("=")
        if not sep or not _NAME.fullmatch(key.strip()):
            continue
        value = value.strip()
        if len(value) >= 2 and value[0] == value[-1] and value[0] in "'\"":
            value = value[1:-1]
        out[key.strip()] = value
    return out


def parse_entry(name: str, entry: Any, *, source: SourceName, origin: str, root: Path,
                environ: Mapping[str, str], home: str | None = None) -> ServerConfig:
    """One server's entry → ServerConfig. Raises ValueError with a message for the user."""
    if not isinstance(name, str) or not name.strip():
        raise ValueError("a server needs a non-empty name")
    if not isinstance(entry, dict):
        raise ValueError(f"the entry must be an object, not {type(entry).__name__}")
    expand = _Expander(environ, root, home if home is not None else str(Path.home()))
    kind = entry.get("type", entry.get("transport"))
    if kind is None:
        if "command" in entry:
            kind = "stdio"
        elif "url" in entry:
            kind = "http"
        else:
            raise _EntryError('needs "command" (a stdio server) or "url" (an HTTP server)')
    if not isinstance(kind, str) or kind not in _TYPES:
        raise _EntryError(f'"type" must be "stdio", "http" or "sse", not {kind!r}')
    transport = _TYPES[kind]
    disabled = entry.get("disabled") is True
    if transport == "stdio":
        command = entry.get("command")
        if not isinstance(command, str) or not command.strip():
            raise _EntryError('a stdio server needs "command" (a string)')
        args = entry.get("args", [])
        if args is None:
            args = []
        if not isinstance(args, list) or not all(isinstance(a, (str, int, float)) and not isinstance(a, bool) for a in args):
            raise _EntryError('"args" must be a list of strings')
        env: dict[str, str] = {}
        env_file = entry.get("envFile")
        if env_file is not None:
            if not isinstance(env_file, str):
                raise _EntryError('"envFile" must be a string (a path)')
            p = Path(expand(env_file))
            env.update(_read_env_file(p if p.is_absolute() else root / p))
        env.update(_str_map(entry.get("env"), "env", expand))
        cwd = entry.get("cwd")
        if cwd is not None and not isinstance(cwd, str):
            raise _EntryError('"cwd" must be a string')
        cwd_s = None
        if cwd:
            c = Path(expand(cwd))
            cwd_s = str(c if c.is_absolute() else root / c)
        return ServerConfig(
            name=name, transport="stdio", source=source, origin=origin, command=expand(command),
            args=tuple(expand(str(a)) for a in args), env=env, cwd=cwd_s, disabled=disabled, raw=dict(entry),
        )
    url = entry.get("url")
    if not isinstance(url, str) or not url.strip():
        raise _EntryError(f'an {transport} server needs "url" (a string)')
    url = expand(url).strip()
    if not re.match(r"https?://", url):
        raise _EntryError(f'"url" must start with http:// or https://, not {url[:40]!r}')
    headers = _str_map(entry.get("headers"), "headers", expand)
    return ServerConfig(name=name, transport=transport, source=source, origin=origin, url=url,
                        headers=headers, disabled=disabled, raw=dict(entry))


def _line_of(text: str | None, name: str) -> int | None:
    if not text:
        return None
    m = re.search(re.escape(json.dumps(name)) + r"\s*:", text)
    return text.count("\n", 0, m.start()) + 1 if m else None


def parse_servers(data: Any, *, source: SourceName, origin: str, root: Path, environ: Mapping[str, str],
                  text: str | None = None, home: str | None = None) -> tuple[list[ServerConfig], list[ConfigProblem]]:
    """The servers of one ``{"name": entry, ...}`` object."""
    servers: list[ServerConfig] = []
    problems: list[ConfigProblem] = []
    if data is None:
        return servers, problems
    if not isinstance(data, dict):
        problems.append(ConfigProblem(origin, None, f"the servers must be an object of name: entry, not {type(data).__name__}"))
        return servers, problems
    for name, entry in data.items():
        line = _line_of(text, name)
        where = f"{origin}:{line}" if line else origin
        try:
            servers.append(parse_entry(name, entry, source=source, origin=origin, root=root, environ=environ, home=home))
        except ValueError as e:
            problems.append(ConfigProblem(where, name if isinstance(name, str) else None, str(e)))
    return servers, problems


def _read_json(path: Path) -> tuple[Any, str | None, ConfigProblem | None]:
    """(data, text, problem); (None, None, None) when the file does not exist."""
    try:
        if not path.is_file():
            return None, None, None
        if path.stat().st_size > MAX_SETTINGS_BYTES:
            return None, None, ConfigProblem(str(path), None, "the file is too large; its MCP servers are ignored")
        text = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as e:
        return None, None, ConfigProblem(str(path), None, f"cannot be read ({e}); its MCP servers are ignored")
    if not text.strip():
        return None, text, None
    try:
        return json.loads(text), text, None
    except json.JSONDecodeError as e:
        return None, text, ConfigProblem(f"{path}:{e.lineno}", None,
                                         f"invalid JSON ({e.msg}, column {e.colno}); its MCP servers are ignored")


def _servers_of_file(path: Path, key: str, *, source: SourceName, root: Path, environ: Mapping[str, str],
                     home: str | None) -> tuple[list[ServerConfig], list[ConfigProblem]]:
    data, text, problem = _read_json(path)
    if problem is not None:
        return [], [problem]
    if data is None:
        return [], []
    if not isinstance(data, dict):
        return [], [ConfigProblem(f"{path}:1", None, f"must be a JSON object, not {type(data).__name__}; "
                                  f"its MCP servers are ignored")]
    return parse_servers(data.get(key), source=source, origin=str(path), root=root, environ=environ,
                         text=text, home=home)


def load_config(root: Path, *, editor: Mapping[str, Any] | None = None, config_home: Path | None = None,
                environ: Mapping[str, str] | None = None, home: str | None = None) -> McpConfig:
    """Every configured server, merged (later layers win per name), with the problems found.

    ``editor`` is the value of the editor's ``mcpServers`` setting (``{"name": entry}``).
    ``config_home`` defaults to ``default_config_home()``, ``environ`` to ``os.environ``.
    Reads a few small files: from async code, call it with ``asyncio.to_thread``.
    """
    root = Path(root)
    env = dict(os.environ) if environ is None else dict(environ)
    cfg_home = Path(config_home) if config_home is not None else default_config_home()
    layers: list[tuple[list[ServerConfig], list[ConfigProblem]]] = [
        _servers_of_file(cfg_home / "settings.json", "mcpServers", source="user", root=root, environ=env, home=home),
        _servers_of_file(root / PROJECT_FILE, "mcpServers", source="project", root=root, environ=env, home=home),
        _servers_of_file(root / VSCODE_FILE, "servers", source="project", root=root, environ=env, home=home),
    ]
    if editor is not None:
        layers.append(parse_servers(dict(editor) if isinstance(editor, Mapping) else editor, source="editor",
                                    origin=EDITOR_ORIGIN, root=root, environ=env, home=home))
    merged: dict[str, ServerConfig] = {}
    problems: list[ConfigProblem] = []
    for servers, layer_problems in layers:
        for s in servers:
            merged[s.name] = s  # keeps the position where the name first appeared
        for p in layer_problems:
            # A broken definition replaces the earlier one: that server does not start.
            if p.server is not None:
                merged.pop(p.server, None)
            problems.append(p)
    for p in problems:
        log.warning("%s", p)
    return McpConfig(servers=list(merged.values()), problems=problems)
