"""Markdown files with a YAML front matter block (pure: stdlib and PyYAML).

::

    ---
    name: reviewer
    description: Reviews a diff
    ---
    The body.

The block is read with ``yaml.safe_load``. Many files written for Claude Code are not
valid YAML (a description with ``: `` in it, ``<example>`` blocks), and Claude Code reads
them anyway; when YAML refuses a block, it is read again as plain ``key: value`` lines
(indented lines continue the previous value) and the caller is told so in ``note``.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any

import yaml

MAX_FILE_BYTES = 256 * 1024
_FENCE = re.compile(r"^---[ \t]*$")
_END = re.compile(r"^(---|\.\.\.)[ \t]*$")
_KEY = re.compile(r"^([A-Za-z_][A-Za-z0-9_-]*)[ \t]*:(?:[ \t]+(.*)|[ \t]*)$")


class FrontMatterError(ValueError):
    """The file's front matter cannot be read; the message says why (no file name)."""


@dataclass(frozen=True, slots=True)
class Document:
    meta: dict[str, Any]
    body: str
    has_front_matter: bool
    note: str | None = None  # set when the block was not YAML and was read line by line
    raw_keys: tuple[str, ...] = ()  # the keys whose values were taken as plain text then


def _unquote(v: str) -> str:
    v = v.strip()
    if len(v) >= 2 and v[0] == v[-1] and v[0] in "\"'":
        return v[1:-1]
    return v


def _lines_as_mapping(block: str) -> tuple[dict[str, Any], list[str]]:
    """``key: value`` lines, each value read as YAML on its own, or as plain text when
    YAML refuses it. Returns the mapping and the keys read as plain text."""
    chunks: list[tuple[str, list[str]]] = []
    for line in block.split("\n"):
        if not line.strip() or (not chunks and line.lstrip().startswith("#")):
            continue
        m = _KEY.match(line)
        if m and not line[0].isspace():
            chunks.append((m.group(1), [m.group(2) or ""]))
        elif chunks and line[0].isspace():
            chunks[-1][1].append(line)
        elif line.lstrip().startswith("#"):
            continue
        else:
            raise FrontMatterError(f"front matter line {line.strip()[:60]!r} is neither `key: value` nor a continuation")
    meta: dict[str, Any] = {}
    raw: list[str] = []
    for key, parts in chunks:
        first, rest = parts[0], parts[1:]
        try:
            value = yaml.safe_load(f"{key}: {first}\n" + "\n".join(rest))[key] if (first or rest) else None
        except (yaml.YAMLError, TypeError, KeyError):
            value = _unquote("\n".join([first, *(r.strip() for r in rest)]).strip())
            raw.append(key)
        meta[key] = value
    return meta, raw


def parse_document(text: str) -> Document:
    """Split ``text`` into its front matter and body. Raises FrontMatterError."""
    if text.startswith("\ufeff"):
        text = text[1:]
    text = text.replace("\r\n", "\n").replace("\r", "\n")
    lines = text.split("\n")
    if not lines or not _FENCE.match(lines[0]):
        return Document({}, text, False)
    end = next((i for i in range(1, len(lines)) if _END.match(lines[i])), None)
    if end is None:
        raise FrontMatterError("the front matter starts with --- but has no closing --- line")
    block = "\n".join(lines[1:end])
    body = "\n".join(lines[end + 1:])
    try:
        meta = yaml.safe_load(block) if block.strip() else {}
    except yaml.YAMLError as e:
        try:
            meta, raw = _lines_as_mapping(block)
        except FrontMatterError as inner:
            raise FrontMatterError(f"the front matter is not valid YAML ({_yaml_msg(e)}), and {inner}") from None
        if not meta:
            raise FrontMatterError(f"the front matter is not valid YAML ({_yaml_msg(e)})") from None
        keys = ", ".join(raw) or "none"
        return Document(meta, body, True, raw_keys=tuple(raw),
                        note=f"the front matter is not valid YAML ({_yaml_msg(e)}); it was read line by line "
                             f"(taken as plain text: {keys})")
    if meta is None:
        meta = {}
    if not isinstance(meta, dict):
        raise FrontMatterError(f"the front matter must be a mapping of `key: value` lines, not a {type(meta).__name__}")
    return Document({str(k): v for k, v in meta.items()}, body, True)


def _yaml_msg(e: yaml.YAMLError) -> str:
    mark = getattr(e, "problem_mark", None)
    problem = getattr(e, "problem", None) or str(e).splitlines()[0]
    if mark is not None:
        return f"{problem} at line {mark.line + 2}"  # +1 for 1-based, +1 for the opening ---
    return str(problem)


def split_list(value: Any, what: str) -> tuple[str, ...]:
    """A list of names from a YAML list or a comma-separated string (Claude Code allows both).

    Commas inside parentheses do not split (``Bash(git add:*), Read``).
    """
    if isinstance(value, str):
        items: list[str] = []
        depth = 0
        cur = ""
        for ch in value:
            if ch == "(":
                depth += 1
            elif ch == ")":
                depth = max(0, depth - 1)
            if ch == "," and depth == 0:
                items.append(cur)
                cur = ""
            else:
                cur += ch
        items.append(cur)
        return tuple(i.strip() for i in items if i.strip())
    if isinstance(value, list):
        out: list[str] = []
        for i, item in enumerate(value):
            if not isinstance(item, str) or not item.strip():
                raise FrontMatterError(f"{what}[{i}] must be a non-empty name, not {item!r}")
            out.append(item.strip())
        return tuple(out)
    raise FrontMatterError(f"{what} must be a list or a comma-separated string, not {type(value).__name__}")


def read_capped(path) -> str:
    """The text of a definition file (blocking). Raises OSError, UnicodeDecodeError, FrontMatterError."""
    size = path.stat().st_size
    if size > MAX_FILE_BYTES:
        raise FrontMatterError(f"the file is too large ({size} bytes; at most {MAX_FILE_BYTES})")
    return path.read_text(encoding="utf-8")
