"""Text helpers shared by the tools."""

from __future__ import annotations


def numbered(n: int, line: str) -> str:
    """A line as read_file and read_command_output show it: its number, a tab, the line.
    (No ``cat -n`` padding: it costs a token or two per line and tells the model nothing.)"""
    return f"{n}\t{line}"


def split_lines(text: str) -> list[str]:
    """Lines without their terminators; a final newline does not add an empty line."""
    if text == "":
        return []
    lines = text.split("\n")
    if lines[-1] == "":
        lines.pop()
    return [line[:-1] if line.endswith("\r") else line for line in lines]
