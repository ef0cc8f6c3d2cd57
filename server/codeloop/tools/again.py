"""How to get a tool's result again: the note that stands in for an old result
elided from the context (``codeloop.context.elision``)."""

from __future__ import annotations

import json
import re
from typing import Any

from codeloop.tools.processes import ProcessManager

# Where the shell tools' own lines name an output id (shell.py): the cut-output note,
# the exit line of a long output, start_process's first line. Only these: the output
# itself may mention other ids.
_OWN_ID = re.compile(
    r'^(?:\[\.\.\. .*read_command_output\(id="|exit code: .*\(output id |Started )((?:cmd|bg)-\d+)', re.M
)
_COMMAND_TOOLS = ("run_command", "read_command_output", "read_process_logs", "start_process")


def elided_note(tool: str, args: dict[str, Any], text: str, processes: ProcessManager | None = None) -> str:
    """One line: what the result was, and exactly how to get it again."""
    size = f"{len(text):,} characters, {text.count(chr(10)) + 1:,} lines"
    head = f"[Old result elided to keep the context small ({size})."
    if tool == "read_file":
        path = args.get("path", "?")
        call: dict[str, Any] = {"path": path}
        for key in ("offset", "limit"):
            if key in args:
                call[key] = args[key]
        return (
            f"{head} It was read_file of {path}; the file may have changed since. To see it, call "
            f"read_file with {json.dumps(call)}.]"
        )
    if tool in _COMMAND_TOOLS:
        ids = ([args["id"]] if isinstance(args.get("id"), str) else []) + _OWN_ID.findall(text)
        what = f"`{args['command']}`" if isinstance(args.get("command"), str) else tool
        exit_line = next((ln for ln in reversed(text.splitlines()) if ln.startswith("exit code:")), "")
        ended = f" ({exit_line})" if exit_line else ""
        kept = next((i for i in ids if processes is not None and processes.get(i) is not None), None)
        if kept is not None:
            how = f'its output is still kept: call read_command_output with id="{kept}" (and an offset) to page it'
        else:
            how = "its output is no longer kept: run the command again if you need it"
        return f"{head} It was the output of {what}{ended}; {how}.]"
    shown = json.dumps(args, ensure_ascii=False)
    if len(shown) > 300:
        shown = shown[:300] + "…"
    return f"{head} It was {tool or 'a tool'} with {shown}; call it again with the same arguments to see it.]"


__all__ = ["elided_note"]
