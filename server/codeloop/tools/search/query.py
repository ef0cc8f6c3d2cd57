"""A grep call as the search engines see it (ripgrep, the fallback, open buffers)."""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

from codeloop.tools.base import ToolError

GrepMode = Literal["content", "files_with_matches", "count"]


@dataclass(frozen=True)
class GrepQuery:
    pattern: str
    start: Path  # the real path searched, inside the workspace
    target: str  # ``start`` relative to the workspace root ("." for the root): what rg is given
    glob: str | None = None
    mode: GrepMode = "content"
    case_insensitive: bool = False
    context: int = 0

    @property
    def want_lines(self) -> bool:
        return self.mode == "content"

    def regex(self) -> re.Pattern[str]:
        """The pattern for Python's ``re`` (the fallback and open buffers)."""
        try:
            return re.compile(self.pattern, re.IGNORECASE if self.case_insensitive else 0)
        except re.error as e:
            raise ToolError(f"invalid regular expression {self.pattern!r}: {e}") from None
