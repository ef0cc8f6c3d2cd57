"""Sub-agent definitions: Markdown files with YAML front matter (pure: stdlib and PyYAML).

::

    ---
    name: reviewer                 # optional: the file name without .md
    description: Reviews a diff for bugs; use after a change   # required
    tools: Read, Grep, Glob        # a list or a comma-separated string; omitted: the parent's
    model: inherit                 # or a model name; omitted or inherit: the parent's
    maxTurns: 12                   # optional cap on the child's steps
    ---
    You are a careful reviewer. …  (the body is the sub-agent's system prompt)

Where (in this order; the FIRST definition of a name wins, later ones are *shadowed*):

1. ``<project>/.codeloop/agents/*.md``
2. ``<project>/.claude/agents/*.md``
3. ``<codeloop config home>/agents/*.md`` (``~/.config/codeloop/agents``)
4. ``<claude home>/agents/*.md`` (``~/.claude/agents``)

So a project's agent overrides the user's agent of the same name (the project knows its
code), and codeloop's own files override Claude Code's where both exist. Within one folder,
files are read in name order; a second file defining the same name is a problem.

``tools`` names may be Claude Code's (``Read``, ``Bash``, ``Edit``…) or codeloop's; they are
kept as written here, and ``codeloop.tools.registry.select_tools`` turns them
into codeloop tools against what the parent has (a child never gets more than its parent).
Other front matter keys (``color``, ``permissionMode``…) are kept in ``extra``.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal, Mapping, Protocol

from codeloop.context.front_matter import FrontMatterError, parse_document, read_capped, split_list

Scope = Literal["project", "user"]
Origin = Literal["codeloop", "claude"]
NAME_RE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]*$")
KNOWN_KEYS = frozenset({"name", "description", "tools", "disallowedTools", "model", "maxTurns"})
MAX_FILES_PER_DIR = 500


@dataclass(frozen=True, slots=True)
class DefProblem:
    """A definition file that is wrong. ``fatal``: the file was skipped."""

    path: Path
    message: str
    fatal: bool = True

    def __str__(self) -> str:
        return f"{self.path}: {self.message}"


@dataclass(frozen=True, slots=True)
class AgentDef:
    name: str
    description: str
    prompt: str  # the body: the sub-agent's system prompt
    tools: tuple[str, ...] | None  # None: the parent's tools; () : none
    model: str | None  # None: the parent's model ("inherit")
    max_turns: int | None
    path: Path
    scope: Scope
    origin: Origin
    disallowed_tools: tuple[str, ...] = ()
    extra: dict[str, Any] = field(default_factory=dict)


@dataclass
class AgentDefs:
    agents: dict[str, AgentDef] = field(default_factory=dict)  # by name, in precedence order
    problems: list[DefProblem] = field(default_factory=list)
    shadowed: list[AgentDef] = field(default_factory=list)  # valid, but a name defined earlier wins

    def get(self, name: str) -> AgentDef | None:
        return self.agents.get(name)


def agent_dirs(root: Path, config_home: Path | None = None,
               claude_home: Path | None = None) -> list[tuple[Path, Scope, Origin]]:
    """The folders definitions are read from, in precedence order (user ones when their home is given)."""
    dirs: list[tuple[Path, Scope, Origin]] = [
        (root / ".codeloop" / "agents", "project", "codeloop"),
        (root / ".claude" / "agents", "project", "claude"),
    ]
    if config_home is not None:
        dirs.append((config_home / "agents", "user", "codeloop"))
    if claude_home is not None:
        dirs.append((claude_home / "agents", "user", "claude"))
    return dirs


def parse_agent(text: str, path: Path, scope: Scope = "project", origin: Origin = "codeloop") -> tuple[AgentDef, str | None]:
    """One definition from its text; returns it and a non-fatal note. Raises FrontMatterError."""
    doc = parse_document(text)
    if not doc.has_front_matter:
        raise FrontMatterError("has no front matter: start the file with a --- block holding at least `description:`")
    meta = doc.meta
    name = meta.get("name", path.stem)
    if not isinstance(name, str) or not NAME_RE.match(name.strip()):
        raise FrontMatterError(f"name {name!r} is not a valid agent name (letters, digits, '-', '_', '.')")
    name = name.strip()
    desc = meta.get("description")
    if not isinstance(desc, str) or not desc.strip():
        raise FrontMatterError("needs a `description:` saying what the agent does and when to use it "
                               "(it is how the model chooses an agent)")
    tools_raw = meta.get("tools")
    tools: tuple[str, ...] | None
    if tools_raw is None or (isinstance(tools_raw, str) and tools_raw.strip() in ("", "*")):
        tools = None
    else:
        tools = split_list(tools_raw, "tools")
    disallowed = () if meta.get("disallowedTools") is None else split_list(meta["disallowedTools"], "disallowedTools")
    model_raw = meta.get("model")
    if model_raw is None:
        model = None
    elif isinstance(model_raw, str) and model_raw.strip():
        model = None if model_raw.strip() == "inherit" else model_raw.strip()
    else:
        raise FrontMatterError(f"model must be `inherit` or a model name, not {model_raw!r}")
    turns = meta.get("maxTurns")
    if turns is not None:
        if isinstance(turns, str) and turns.strip().isdigit():
            turns = int(turns.strip())
        if isinstance(turns, bool) or not isinstance(turns, int) or turns < 1:
            raise FrontMatterError(f"maxTurns must be a whole number of at least 1, not {meta.get('maxTurns')!r}")
    extra = {k: v for k, v in meta.items() if k not in KNOWN_KEYS}
    return AgentDef(name=name, description=desc.strip(),
                    prompt=doc.body.strip(), tools=tools, model=model, max_turns=turns, path=path,
                    scope=scope, origin=origin, disallowed_tools=disallowed, extra=extra), doc.note


def load_agent_defs(root: Path, config_home: Path | None = None, claude_home: Path | None = None, *,
                    dirs: list[tuple[Path, Scope, Origin]] | None = None) -> AgentDefs:
    """Every definition (blocking: call it in a thread). Pass the homes to include user agents."""
    out = AgentDefs()
    for folder, scope, origin in dirs if dirs is not None else agent_dirs(root, config_home, claude_home):
        try:
            if not folder.is_dir():
                continue
            files = sorted(p for p in folder.glob("*.md") if not p.name.startswith("."))
        except OSError as e:
            out.problems.append(DefProblem(folder, f"cannot be listed ({e})"))
            continue
        if len(files) > MAX_FILES_PER_DIR:
            out.problems.append(DefProblem(folder, f"holds {len(files)} files; only the first {MAX_FILES_PER_DIR} are read",
                                           fatal=False))
            files = files[:MAX_FILES_PER_DIR]
        here: dict[str, Path] = {}
        for path in files:
            try:
                if not path.is_file():
                    continue
                agent, note = parse_agent(read_capped(path), path, scope, origin)
            except (OSError, UnicodeDecodeError) as e:
                out.problems.append(DefProblem(path, f"cannot be read ({e}); skipped"))
                continue
            except FrontMatterError as e:
                out.problems.append(DefProblem(path, f"{e}; skipped"))
                continue
            if note:
                out.problems.append(DefProblem(path, note, fatal=False))
            if agent.name in here:
                out.problems.append(DefProblem(path, f"defines agent {agent.name!r} again (already defined by "
                                                     f"{here[agent.name].name} in the same folder); skipped"))
                continue
            here[agent.name] = path
            if agent.name in out.agents:
                out.shadowed.append(agent)
            else:
                out.agents[agent.name] = agent
    return out


class Described(Protocol):
    """Anything with an agent's name and description (an AgentDef, the runtime's blueprints)."""

    @property
    def name(self) -> str: ...

    @property
    def description(self) -> str: ...


def describe_for_model(agents: AgentDefs | Mapping[str, Described], limit: int = 300) -> str:
    """A compact list of the agents for the task tool's description: ``- name: description``."""
    items = agents.agents if isinstance(agents, AgentDefs) else agents
    lines = []
    for a in items.values():
        d = " ".join(a.description.split())
        if len(d) > limit:
            d = d[: limit - 1] + "…"
        lines.append(f"- {a.name}: {d}")
    return "\n".join(lines)
