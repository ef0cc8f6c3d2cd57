"""Running ripgrep: finding the binary, the common flags, reading its output."""

from __future__ import annotations

import asyncio
import base64
import os
import shutil
import sys
from functools import lru_cache
from pathlib import Path
from typing import Any, Callable

from codeloop.tools.base import ToolError

RG_TIMEOUT = 60.0
RG_MAX_EVENTS = 200_000  # stop reading rg's output after this many matches/context lines


@lru_cache(maxsize=1)
def _find_rg_cached() -> str | None:
    found = shutil.which("rg")
    if found:
        return found
    beside = Path(sys.executable).parent / "rg"
    if beside.is_file() and os.access(beside, os.X_OK):
        return str(beside)
    return None


def find_rg() -> str | None:
    """The ripgrep binary, or None (then the pure-Python fallback is used)."""
    return _find_rg_cached()


async def _run_rg(args: list[str], cwd: Path,
                  on_line: Callable[[bytes], bool | None] | None = None) -> tuple[int, str, str, bool]:
    """Run rg; returns (exit code, stdout (unless on_line consumed it), stderr, stopped early)."""
    rg = find_rg()
    assert rg is not None
    try:
        proc = await asyncio.create_subprocess_exec(
            rg,
            *args,
            cwd=str(cwd),
            stdin=asyncio.subprocess.DEVNULL,
            stdout=asyncio.subprocess.PIPE,
            stderr=asyncio.subprocess.PIPE,
        )
    except (OSError, ValueError) as e:  # an argument too long for the system, ...
        raise ToolError(f"could not run ripgrep: {getattr(e, 'strerror', None) or e}") from None
    assert proc.stdout is not None and proc.stderr is not None
    stopped = False
    chunks: list[bytes] = []

    async def read_out() -> None:
        nonlocal stopped
        assert proc.stdout is not None
        while True:
            if on_line is None:
                # No line handler: read in blocks (NUL-separated output has no newlines,
                # and readline() fails past its 64 kB limit).
                block = await proc.stdout.read(1 << 16)
                if not block:
                    return
                chunks.append(block)
                continue
            try:
                line = await proc.stdout.readline()
            except ValueError:  # a line longer than the stream limit
                line = await proc.stdout.read(1 << 16)
            if not line:
                return
            if on_line(line) is False:
                stopped = True
                proc.kill()
                return

    try:
        _, err = await asyncio.wait_for(asyncio.gather(read_out(), proc.stderr.read()), RG_TIMEOUT)
        await proc.wait()
    except TimeoutError:
        proc.kill()
        await proc.wait()
        raise ToolError(
            f"the search took longer than {RG_TIMEOUT:.0f}s and was stopped; narrow it with path= or glob="
        ) from None
    except asyncio.CancelledError:
        if proc.returncode is None:
            proc.kill()
        raise
    return proc.returncode or 0, b"".join(chunks).decode("utf-8", "replace"), err.decode("utf-8", "replace"), stopped


def _rel_from_rg(name: str) -> str:
    return name[2:] if name.startswith("./") else name


def _json_text(obj: dict[str, Any]) -> str:
    if "text" in obj:
        return obj["text"]
    return base64.b64decode(obj.get("bytes", "")).decode("utf-8", "replace")


def _rg_error(stderr: str) -> str:
    lines = [x for x in stderr.strip().splitlines() if x.strip() and set(x.strip()) != {"~"}]
    return "\n".join(lines[:12])


def _base_rg_args() -> list[str]:
    return ["--no-config", "--color", "never", "--no-require-git", "--hidden", "--no-messages"]


def _globs(glob: str | None) -> list[str]:
    out = []
    if glob:
        out += ["-g", glob]
    out += ["-g", "!.git"]
    return out


def _name_prefilter(glob: str | None) -> list[str]:
    """rg arguments that keep only files whose name could match ``glob``'s last part.
    A file type, not -g: types filter after the ignore rules, -g overrides them. Only
    for plain name globs (letters, * and ?), whose meaning is the same in rg and in
    gitignore; the glob itself is still matched in Python."""
    if not glob or glob.startswith("!"):
        return []
    name = glob.rstrip("/").rsplit("/", 1)[-1] if not glob.endswith("/") else ""
    if not name or name == "**" or any(ch in name for ch in "[]{}\\,:"):
        return []
    return ["--type-add", f"codeloopglob:{name}", "--type", "codeloopglob"]
