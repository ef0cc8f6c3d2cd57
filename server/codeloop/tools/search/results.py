"""Grep results and how they are shown to the model (caps, context, cut lines)."""

from __future__ import annotations

import re
from dataclasses import dataclass, field

from codeloop.tools.search.query import GrepMode

GREP_MAX_LINES = 200
GREP_MAX_FILES = 200
LINE_MAX_CHARS = 500


@dataclass
class FileHits:
    path: str  # workspace-relative
    lines: list[tuple[int, str, bool]] = field(default_factory=list)  # (number, text, is_match)
    count: int = 0  # matching lines


def grep_text(rel: str, text: str, regex: re.Pattern[str], context: int, want_lines: bool) -> FileHits | None:
    """Search one text like rg does (line by line); None when nothing matches."""
    lines = text.split("\n")
    if lines and lines[-1] == "":
        lines.pop()
    lines = [x[:-1] if x.endswith("\r") else x for x in lines]
    matched = [i for i, line in enumerate(lines) if regex.search(line)]
    if not matched:
        return None
    hits = FileHits(rel, count=len(matched))
    if want_lines:
        keep: dict[int, bool] = {}
        for i in matched:
            for j in range(max(0, i - context), min(len(lines), i + context + 1)):
                keep.setdefault(j, False)
            keep[i] = True
        hits.lines = [(i + 1, lines[i], keep[i]) for i in sorted(keep)]
    return hits


def _cut(text: str) -> str:
    if len(text) <= LINE_MAX_CHARS:
        return text
    return text[:LINE_MAX_CHARS] + f" [... {len(text) - LINE_MAX_CHARS} more characters]"


def format_grep(results: dict[str, FileHits], mode: GrepMode, stopped: bool) -> str:
    total_matches = sum(h.count for h in results.values())
    nfiles = len(results)
    narrow = (
        "Narrow the search with a more specific pattern, path= or glob=, "
        'or use output_mode="files_with_matches".'
    )
    at_least = "at least " if stopped else ""
    if mode == "files_with_matches":
        names = list(results)
        out = names[:GREP_MAX_FILES]
        if len(names) > GREP_MAX_FILES:
            out.append(f"[{len(names) - GREP_MAX_FILES} more files cut ({at_least}{nfiles} files match). {narrow}]")
        return "\n".join(out)
    if mode == "count":
        items = list(results.values())
        out = [f"{h.path}:{h.count}" for h in items[:GREP_MAX_FILES]]
        if len(items) > GREP_MAX_FILES:
            out.append(f"[{len(items) - GREP_MAX_FILES} more files cut.]")
        out.append(f"[{at_least}{total_matches} matching lines in {nfiles} files]")
        return "\n".join(out)
    out = []
    shown = 0
    total_lines = sum(len(h.lines) for h in results.values())
    for h in results.values():
        prev = None
        for number, text, is_match in h.lines:
            if shown >= GREP_MAX_LINES:
                break
            if prev is not None and number != prev + 1 and any(not m for _, _, m in h.lines):
                out.append("--")
            sep = ":" if is_match else "-"
            out.append(f"{h.path}{sep}{number}{sep}{_cut(text)}")
            prev = number
            shown += 1
        if shown >= GREP_MAX_LINES:
            break
    if total_lines > shown or stopped:
        out.append(
            f"[{total_lines - shown} more lines cut; {at_least}{total_matches} matching lines in "
            f"{nfiles} files in total. {narrow}]"
        )
    return "\n".join(out)
