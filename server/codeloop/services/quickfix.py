"""Focused agent turns started from a code action: fix a diagnostic, rewrite a
selection with an instruction, explain a selection. Pure text in, prompt out."""

from __future__ import annotations

from dataclasses import dataclass

PRESET_INSTRUCTIONS = [
    "Simplify this code",
    "Add error handling",
    "Add docstrings and comments",
    "Write unit tests for this",
]

CONTEXT_LINES = 20


@dataclass(frozen=True, slots=True)
class Span:
    start_line: int  # 0-based
    start_character: int
    end_line: int
    end_character: int


def numbered_excerpt(text: str, start: int, end: int, context: int = CONTEXT_LINES) -> str:
    lines = text.splitlines()
    lo = max(0, start - context)
    hi = min(len(lines), end + context + 1)
    width = len(str(hi))
    return "\n".join(f"{i + 1:>{width}}\t{lines[i]}" for i in range(lo, hi))


def selected_text(text: str, span: Span) -> str:
    lines = text.splitlines(keepends=True)
    if not lines:
        return ""
    if span.start_line == span.end_line:
        return lines[span.start_line][span.start_character : span.end_character] if span.start_line < len(lines) else ""
    parts = [lines[span.start_line][span.start_character :]] if span.start_line < len(lines) else []
    parts += lines[span.start_line + 1 : span.end_line]
    if span.end_line < len(lines):
        parts.append(lines[span.end_line][: span.end_character])
    return "".join(parts)


def fix_prompt(path: str, language: str, text: str, span: Span, message: str, source: str = "", code: str = "",
               dirty: bool = False) -> str:
    where = f"line {span.start_line + 1}, column {span.start_character + 1}"
    origin = f" ({source}{' ' + code if code else ''})" if source or code else ""
    unsaved = " The file has unsaved changes in the editor; the text below is the editor's buffer." if dirty else ""
    return (
        f"Fix this diagnostic in {path} ({language or 'plain text'}) at {where}{origin}:\n\n"
        f"    {message}\n\n"
        f"The code around it:{unsaved}\n```\n{numbered_excerpt(text, span.start_line, span.end_line)}\n```\n\n"
        "Make the smallest correct change with edit_file (read more of the file first if you need "
        "to). Do not change unrelated code. When done, say in one sentence what you changed."
    )


def ask_prompt(path: str, language: str, text: str, span: Span, instruction: str) -> str:
    return (
        f"In {path} ({language or 'plain text'}), lines {span.start_line + 1}-{span.end_line + 1} are selected:\n"
        f"```\n{selected_text(text, span)}\n```\n\n"
        f"Instruction: {instruction}\n\n"
        "Apply it to the selected code with edit_file. Keep the rest of the file as it is. When done, "
        "say in one sentence what you changed."
    )


def explain_prompt(path: str, language: str, text: str, span: Span) -> str:
    return (
        f"Explain what this code in {path} ({language or 'plain text'}), lines "
        f"{span.start_line + 1}-{span.end_line + 1}, does, briefly and concretely:\n"
        f"```\n{selected_text(text, span)}\n```\n"
        "Do not edit any file. Read other files only if needed to explain it."
    )
