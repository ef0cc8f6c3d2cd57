"""Focused agent turns started from a code action: fix a diagnostic, rewrite a
selection with an instruction, explain a selection. Pure text in, prompt out."""

from __future__ import annotations

import re
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


#: Lines that open a function, method or class in the common languages.
_DEFINITION = re.compile(
    r"^\s*(?:@\w|(?:export\s+)?(?:default\s+)?(?:pub(?:\([\w:]+\))?\s+)?(?:async\s+)?(?:static\s+)?"
    r"(?:def|class|function|fn|func|fun|sub|impl|trait|interface|struct|enum|module|local\s+function)\b)"
)
#: How far up the enclosing definition is looked for, and the longest block taken whole.
SCAN_LINES = 2000
MAX_BLOCK_LINES = 300


def _indent(line: str) -> int:
    return len(line) - len(line.lstrip(" \t"))


def enclosing_block(text: str, line: int) -> tuple[int, int] | None:
    """0-based [start, end) of the function or class around ``line``, by indentation: the
    nearest definition line above it (or on it) indented no deeper, to the first line after
    it indented no deeper (a closing ``}``/``end`` is included). None when there is none, or
    it is longer than ``MAX_BLOCK_LINES``."""
    lines = text.splitlines()
    if not 0 <= line < len(lines):
        return None
    here = lines[line]
    limit = _indent(here) if here.strip() else 10**6
    start = None
    for i in range(line, max(-1, line - SCAN_LINES), -1):
        candidate = lines[i]
        if not candidate.strip():
            continue
        ind = _indent(candidate)
        if _DEFINITION.match(candidate) and (ind <= limit or i == line) and not candidate.lstrip().startswith("@"):
            start = i
            break
        if candidate.strip():
            limit = min(limit, ind)
    if start is None:
        return None
    base = _indent(lines[start])
    definition = start
    while start > 0 and lines[start - 1].strip().startswith("@") and _indent(lines[start - 1]) == base:
        start -= 1  # decorators belong to the definition
    end = len(lines)
    for j in range(definition + 1, len(lines)):
        if lines[j].strip() and _indent(lines[j]) <= base and not lines[j].lstrip().startswith("@"):
            closing = lines[j].lstrip()[:1] in ("}", ")", "]") or lines[j].strip() in ("end", "end;", "};")
            end = j + 1 if closing else j
            break
    while end > start + 1 and not lines[end - 1].strip():
        end -= 1
    if not start <= line < max(end, line + 1) or line >= end or end - start > MAX_BLOCK_LINES:
        return None
    return start, end


def focus_span(text: str, span: Span) -> tuple[Span, str]:
    """A code action's range, made useful: a selection stays as it is; an empty range (a
    cursor) becomes the enclosing function or class, else the cursor's line. Returns the
    span and what it is ("selection", "function", "line")."""
    if (span.start_line, span.start_character) != (span.end_line, span.end_character):
        return span, "selection"
    block = enclosing_block(text, span.start_line)
    if block is not None:
        return Span(block[0], 0, block[1], 0), "function"
    lines = text.splitlines()
    width = len(lines[span.start_line]) if 0 <= span.start_line < len(lines) else 0
    return Span(span.start_line, 0, span.start_line, width), "line"


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


def _what(span: Span, scope: str, cursor: int | None) -> str:
    if scope == "function" and cursor is not None:
        return f"the cursor is on line {cursor + 1}, in the definition at lines {_lines(span)}"
    if scope == "line":
        return f"the cursor is on line {span.start_line + 1}"
    return f"lines {_lines(span)} are selected"


def ask_prompt(path: str, language: str, text: str, span: Span, instruction: str, dirty: bool = False,
               scope: str = "selection", cursor: int | None = None) -> str:
    unsaved = " (the file has unsaved changes; this is the editor's buffer)" if dirty else ""
    target = "the selected code" if scope == "selection" else ("that definition" if scope == "function" else "that line")
    return (
        f"In {path} ({language or 'plain text'}), {_what(span, scope, cursor)}{unsaved}:\n"
        f"```\n{selected_text(text, span)}\n```\n\n"
        f"Instruction: {instruction}\n\n"
        f"Apply it to {target} as an exact edit. Keep the rest of the file as it is. When done, "
        "say in one sentence what you changed."
    )


def explain_prompt(path: str, language: str, text: str, span: Span, scope: str = "selection",
                   cursor: int | None = None) -> str:
    where = f"lines {_lines(span)}" if scope != "line" else f"line {span.start_line + 1}"
    if scope == "function" and cursor is not None:
        where += f", where the cursor is (line {cursor + 1})"
    return (
        f"Explain what this code in {path} ({language or 'plain text'}), {where}, does, briefly and concretely:\n"
        f"```\n{selected_text(text, span)}\n```\n"
        "Do not edit any file. Read other files only if needed to explain it."
    )
