"""Each MCP server's log file: its stderr, plus codeloop's notes about it.

``<workspace>/.codeloop/mcp-logs/<server>.log`` by default. The server's stderr is written
there by the process itself (never to the user's terminal); codeloop appends lines that
start with ``[codeloop ...]`` (starts, exits, junk on stdout, server log messages). A file
over 2 MB is moved to ``<server>.log.1`` when the server starts again.
"""

from __future__ import annotations

import datetime as _dt
import logging
import os
import re
from pathlib import Path

log = logging.getLogger(__name__)

LOG_DIR = Path(".codeloop") / "mcp-logs"
ROTATE_BYTES = 2 * 1024 * 1024
TAIL_BYTES = 4096
TAIL_LINES = 20
def log_file_name(server: str) -> str:
    safe = re.sub(r"[^A-Za-z0-9_.-]", "_", server).lstrip(".") or "_"
    return f"{safe}.log"


class ServerLog:
    """One server's log file. Writes are small appends (no await needed)."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self._start = 0  # where this run of the server began in the file

    def begin(self, what: str) -> None:
        """A new run of the server: rotate a big file, remember where this run starts."""
        try:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            if self.path.exists() and self.path.stat().st_size > ROTATE_BYTES:
                os.replace(self.path, self.path.with_name(self.path.name + ".1"))
            self._start = self.path.stat().st_size if self.path.exists() else 0
        except OSError as e:
            log.warning("MCP log %s: %s", self.path, e)
            self._start = 0
        self.note(what)

    def note(self, text: str) -> None:
        stamp = _dt.datetime.now().strftime("%H:%M:%S")
        line = f"[codeloop {stamp}] {text.rstrip()}\n"
        try:
            fd = os.open(self.path, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o600)
            try:
                os.write(fd, line.encode("utf-8", "replace"))
            finally:
                os.close(fd)
        except OSError as e:
            log.debug("MCP log %s: %s", self.path, e)

    def tail(self, max_lines: int = TAIL_LINES, server_only: bool = True) -> str:
        """The last lines of this run (the server's own stderr when ``server_only``)."""
        try:
            with self.path.open("rb") as f:
                f.seek(0, os.SEEK_END)
                end = f.tell()
                start = max(self._start, end - TAIL_BYTES)
                f.seek(start)
                data = f.read(end - start)
        except OSError:
            return ""
        lines = data.decode("utf-8", "replace").splitlines()
        if start > self._start and lines:
            lines = lines[1:]  # a cut first line
        if server_only:
            lines = [x for x in lines if not x.startswith("[codeloop ")]
        return "\n".join(lines[-max_lines:])
