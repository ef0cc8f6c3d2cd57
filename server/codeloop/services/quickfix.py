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
#: A buffer up to this many lines goes into a fix prompt whole; a longer one as an excerpt.
WHOLE_FILE_LINES = 150

_LANGUAGES = {
    "py": "python", "pyi": "python", "js": "javascript", "mjs": "javascript", "cjs": "javascript",
    "ts": "typescript", "tsx": "typescriptreact", "jsx": "javascriptreact", "rs": "rust", "go": "go",
    "rb": "ruby", "java": "java", "kt": "kotlin", "c": "c", "h": "c", "cc": "cpp", "cpp": "cpp",
    "hpp": "cpp", "cs": "csharp", "sh": "shellscript", "md": "markdown", "json": "json",
    "toml": "toml", "yaml": "yaml", "yml": "yaml", "lua": "lua", "php": "php", "swift": "swift",
}


def language_of(suffix: str, language_id: str = "") -> str:
    """The editor's languageId, else a guess from the file suffix ("py" -> "python")."""
    if language_id:
        return language_id
    ext = suffix.lstrip(".").lower()
    return _LANGUAGES.get(ext, ext)


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


def _lines(span: Span) -> str:
    """1-based line range of a selection; one that ends at column 0 does not include that line."""
    last = span.end_line - 1 if span.end_character == 0 and span.end_line > span.start_line else span.end_line
    return f"{span.start_line + 1}-{last + 1}"


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
    """The diagnostic, where it is, the file's path and language, and the buffer's text
    (whole when short, else the lines around the diagnostic)."""
    where = f"line {span.start_line + 1}, column {span.start_character + 1}"
    origin = f" ({source}{' ' + code if code else ''})" if source or code else ""
    unsaved = " The file has unsaved changes in the editor; this is the editor's buffer, not the disk." if dirty else ""
    n = len(text.splitlines())
    if n <= WHOLE_FILE_LINES:
        shown = f"The whole file ({n} lines):{unsaved}\n```\n{numbered_excerpt(text, 0, n, 0)}\n```"
    else:
        shown = (
            f"The code around it (the file has {n} lines):{unsaved}\n"
            f"```\n{numbered_excerpt(text, span.start_line, span.end_line)}\n```"
        )
    return (
        f"Fix this diagnostic in {path} ({language or 'plain text'}) at {where}{origin}:\n\n"
        f"    {message}\n\n"
        f"{shown}\n\n"
        "Make the smallest correct change, as an exact edit of those lines (read more of the file first if you need "
        "to). Do not change unrelated code. When done, say in one sentence what you changed."
    )


def ask_prompt(path: str, language: str, text: str, span: Span, instruction: str, dirty: bool = False) -> str:
    unsaved = " (the file has unsaved changes; this is the editor's buffer)" if dirty else ""
    return (
        f"In {path} ({language or 'plain text'}), lines {_lines(span)} are selected{unsaved}:\n"
        f"```\n{selected_text(text, span)}\n```\n\n"
        f"Instruction: {instruction}\n\n"
        "Apply it to the selected code as an exact edit. Keep the rest of the file as it is. When done, "
        "say in one sentence what you changed."
    )


def explain_prompt(path: str, language: str, text: str, span: Span) -> str:
    return (
        f"Explain what this code in {path} ({language or 'plain text'}), lines "
        f"{_lines(span)}, does, briefly and concretely:\n"
        f"```\n{selected_text(text, span)}\n```\n"
        "Do not edit any file. Read other files only if needed to explain it."
    )
