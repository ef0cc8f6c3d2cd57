"""Claude Code's tool names and the codeloop tools they stand for (pure, stdlib only).

Configs written for Claude Code name its tools (``Bash``, ``Edit``, ``Write``…): hook
matchers in ``.claude/settings.json``, ``tools:`` lists of ``.claude/agents/*.md``,
``allowed-tools`` of ``.claude/commands/*.md``. This one table says which codeloop tool
each of those names selects, so existing files work as they are and a name written in
codeloop's own terms works too.

``CLAUDE_ALIASES[codeloop_tool]`` lists Claude Code names of that tool; the first is the
one a Claude Code hook is shown as ``tool_name``, the others only select it (a matcher
``MultiEdit`` selects ``edit_file`` too). Tools not in the table (``get_diagnostics``,
``list_processes``, MCP tools ``mcp__server__tool``) are known by their own name only.
"""

from __future__ import annotations

from collections.abc import Iterable

CLAUDE_ALIASES: dict[str, tuple[str, ...]] = {
    "run_command": ("Bash",),
    "start_process": ("Bash",),  # Claude Code's Bash with run_in_background
    "read_command_output": ("BashOutput",),
    "read_process_logs": ("BashOutput",),
    "kill_process": ("KillShell", "KillBash"),
    "read_file": ("Read",),
    "write_file": ("Write",),
    "edit_file": ("Edit", "MultiEdit"),
    "apply_patch": ("Edit", "MultiEdit", "Write"),  # a patch edits and creates files
    "grep": ("Grep",),
    "glob": ("Glob",),
    "list_dir": ("LS",),
    "task": ("Task",),
    "todo_write": ("TodoWrite",),
    "web_fetch": ("WebFetch",),
    "web_search": ("WebSearch",),
}


def _reverse() -> dict[str, tuple[str, ...]]:
    out: dict[str, list[str]] = {}
    for tool, names in CLAUDE_ALIASES.items():
        for name in names:
            out.setdefault(name, []).append(tool)
    return {k: tuple(v) for k, v in out.items()}


# Claude Code name -> the codeloop tools it selects, in table order.
CODELOOP_TOOLS_OF: dict[str, tuple[str, ...]] = _reverse()


def claude_name(tool: str) -> str | None:
    """The Claude Code name a hook written for Claude Code sees for ``tool``, if any."""
    names = CLAUDE_ALIASES.get(tool)
    return names[0] if names else None


def names_for_matching(tool: str) -> tuple[str, ...]:
    """Every name a matcher may use to select ``tool``: its own, then its Claude Code aliases.

    A Claude Code name given as ``tool`` (a caller that only knows that one) also brings
    the codeloop tools it stands for.
    """
    names = [tool, *CLAUDE_ALIASES.get(tool, ())]
    for t in CODELOOP_TOOLS_OF.get(tool, ()):
        if t not in names:
            names.append(t)
    return tuple(dict.fromkeys(names))


def resolve_tool_names(names: Iterable[str], available: Iterable[str]) -> tuple[list[str], list[str]]:
    """codeloop tools selected by ``names`` (codeloop or Claude Code names, MCP names as is).

    Returns ``(tools, unknown)``: the selected tools that are in ``available``, in the
    order of ``available``; and the names that select none of them (for a clear problem).
    ``Bash`` selects run_command and start_process; ``Edit`` selects edit_file and
    apply_patch (both edit files), and so on through :data:`CLAUDE_ALIASES`.
    """
    avail = list(dict.fromkeys(available))
    avail_set = set(avail)
    chosen: set[str] = set()
    unknown: list[str] = []
    for name in names:
        hit = {name} & avail_set
        hit |= set(CODELOOP_TOOLS_OF.get(name, ())) & avail_set
        if hit:
            chosen |= hit
        else:
            unknown.append(name)
    return [t for t in avail if t in chosen], unknown
