"""File tools: read_file, write_file, edit_file.

Reads go through ``ctx.read_text`` (the editor's buffer wins over the disk).
Mutations compute the whole new text and hand a ChangeSet to ``ctx.changes``;
the host decides how it lands (disk write, or a reviewed editor proposal).
"""

from __future__ import annotations

import asyncio
import base64
import json
import os
from pathlib import Path
from typing import Any

from pydantic import Field

from codeloop.edits.change import ChangeSet, FileChange
from codeloop.policy.types import PermissionRequest
from codeloop.tools.base import (
    Image,
    Tool,
    ToolContext,
    ToolError,
    ToolInput,
    ToolOutput,
    ToolResult,
    elided_head,
    first_line,
    plural,
)
from codeloop.tools.text import numbered, split_lines
from codeloop.tools.workspace import InvalidPath, PathOutsideWorkspace

MAX_LINES = 2000
# What one read shows at most: a first look at a file (no limit given) shows up to
# FIRST_LOOK_CHARS, and says how to continue; a read of a range the model chose (a limit
# given) up to MAX_CHARS. Both are below the per-call output budget (30k), so reads end on
# whole lines the memo can track.
FIRST_LOOK_CHARS = 8_000
MAX_CHARS = 24_000
MAX_LINE_CHARS = 2000
MAX_FILE_BYTES = 20 * 1024 * 1024
BINARY_SNIFF = 8192


def resolve_path(ctx: ToolContext, path: str) -> Path:
    """Resolve a path the model gave, or raise a ToolError it can read."""
    try:
        return guarded_resolve(ctx, path)
    except InvalidPath as e:
        raise ToolError(str(e)) from None
    except PathOutsideWorkspace as e:
        raise ToolError(f"{e}. Only files inside the workspace can be used.") from None


def guarded_resolve(ctx: ToolContext, path: str) -> Path:
    """``ctx.workspace.resolve`` plus a second check of the result.

    Workspace.resolve can be fooled by a symlink loop earlier in the path
    (``loop/../out`` comes back as ``<root>/out`` although ``out`` links outside),
    so the resolved path is resolved again and must still be inside.
    """
    real = ctx.workspace.resolve(path)
    if not ctx.workspace.contains(real):
        raise PathOutsideWorkspace(
            f"path {path!r} resolves to {os.path.realpath(real)}, which is outside the workspace {ctx.workspace.root}"
        )
    return real


def try_resolve(ctx: ToolContext, path: str) -> Path | None:
    try:
        return guarded_resolve(ctx, path)
    except Exception:  # outside, invalid, or a filesystem error: the policy sees no path
        return None


def file_permission(kind: str, target: str, ctx: ToolContext) -> PermissionRequest | None:
    """The request for a call on ``target``; None when ``target`` cannot name any file
    (a NUL byte, a name too long...): nothing to ask, the call itself then fails with
    the reason before touching anything (its run resolves the same text)."""
    try:
        ctx.workspace.check_text(target)
    except InvalidPath:
        return None
    return PermissionRequest(kind, target, ctx.workspace.root, try_resolve(ctx, target))  # type: ignore[arg-type]


def _read_for_tool(ctx: ToolContext, path: Path, display: str) -> tuple[str, int | None]:
    """Blocking: the text of ``path`` (buffer first), refusing binaries and huge files."""
    doc = ctx.documents.get(path)
    if doc is None:
        if not path.exists():
            raise ToolError(f"file not found: {display}")
        if path.is_dir():
            raise ToolError(f"{display} is a directory, not a file; use list_dir to see what it contains")
        if not path.is_file():
            raise ToolError(f"{display} is not a regular file")
        size = path.stat().st_size
        if size > MAX_FILE_BYTES:
            raise ToolError(
                f"{display} is {size // (1024 * 1024)} MB, too large to read; use grep to find "
                "what you need, or run_command with head/sed to view parts of it"
            )
    try:
        text, version = ctx.read_text(path)
    except UnicodeDecodeError:
        raise ToolError(f"{display} is a binary file (not UTF-8 text); it cannot be read as text") from None
    except IsADirectoryError:
        raise ToolError(f"{display} is a directory, not a file; use list_dir") from None
    except FileNotFoundError:
        raise ToolError(f"file not found: {display}") from None
    except OSError as e:
        raise ToolError(f"cannot read {display}: {e.strerror or e}") from None
    if "\x00" in text[:BINARY_SNIFF]:
        raise ToolError(f"{display} is a binary file (it contains NUL bytes); it cannot be read as text")
    return text, version


async def read_text_for_tool(ctx: ToolContext, path: Path, display: str) -> tuple[str, int | None]:
    return await asyncio.to_thread(_read_for_tool, ctx, path, display)


def _existing_text(ctx: ToolContext, path: Path, display: str) -> tuple[str | None, int | None]:
    """Blocking: (current text or None when the file does not exist, buffer version)."""
    doc = ctx.documents.get(path)
    if doc is None and not path.exists():
        return None, None
    if doc is None and path.is_dir():
        raise ToolError(f"{display} is a directory")
    try:
        return ctx.read_text(path)
    except UnicodeDecodeError:
        raise ToolError(
            f"{display} exists and is not UTF-8 text; refusing to overwrite a binary file"
        ) from None
    except FileNotFoundError:
        return None, None
    except OSError as e:
        raise ToolError(f"cannot read {display}: {e.strerror or e}") from None


async def land(ctx: ToolContext, tool: str, changes: list[FileChange]) -> str:
    """Hand the changes to the host's applier and turn the outcome into a result."""
    cs = ChangeSet(tool=tool, changes=tuple(changes), review=ctx.review_edits, call_id=ctx.call_id)
    outcome = await ctx.changes.apply(cs)
    if outcome.status == "error":
        raise ToolError(outcome.message)
    return outcome.message


IMAGE_TYPES = {".png": "image/png", ".jpg": "image/jpeg", ".jpeg": "image/jpeg", ".gif": "image/gif", ".webp": "image/webp"}
MAX_IMAGE_BYTES = 5 * 1024 * 1024
AGAIN = 'read_file with "fresh": true'


def _read_image(path: Path, display: str) -> tuple[bytes, int]:
    size = path.stat().st_size
    if size > MAX_IMAGE_BYTES:
        raise ToolError(
            f"{display} is an image of {size // 1024:,} KB, larger than the "
            f"{MAX_IMAGE_BYTES // (1024 * 1024)} MB that can be sent to the model"
        )
    return path.read_bytes(), size


class ReadFile(Tool["ReadFile.Input"]):
    name = "read_file"
    description = (
        "Read a file as numbered lines (`n\\ttext`; the numbers are not in the file), up to 2000 per call "
        "(page with offset/limit), as the editor has it (unsaved edits included). Images too, for models "
        "that take them."
    )
    read_only = True
    kind = "Read"
    claude_names = ("Read",)
    claude_fields = {"path": ("file_path", "path")}
    guidance = "Read files with read_file rather than cat or sed in run_command."

    class Input(ToolInput):
        path: str = Field(description="Relative to the workspace root.")
        offset: int = Field(1, ge=1, description="First line (1-based).")
        limit: int = Field(MAX_LINES, ge=1, description="Max lines.")
        fresh: bool = Field(False, description="Send the text even if it is unchanged since you read it.")

    def permission(self, args: Input, ctx: ToolContext) -> PermissionRequest | None:
        return file_permission("Read", args.path, ctx)

    def summary(self, args: Input) -> str:
        if args.offset > 1 or args.limit < MAX_LINES:
            return f"{args.path}:{args.offset}" + (f"-{args.offset + args.limit - 1}" if args.limit < MAX_LINES else "")
        return args.path

    def outcome(self, args: Input, result: ToolResult) -> str:
        if not result.ok:
            return first_line(result.text)
        if result.images:
            return "read an image"
        text = result.text
        if text.startswith("(unchanged since your read"):
            return "unchanged since the last read"
        if " changed since your read" in text.split("\n", 1)[0]:
            return "changed lines since the last read"
        lines = sum(1 for ln in text.splitlines() if ln[:1].isdigit() and "\t" in ln)
        return f"read {plural(lines, 'line')}" if lines else first_line(text)

    def more_hint(self, args: Input) -> str:
        return f"call read_file with path={args.path!r} and a later offset (or a smaller limit)"

    def fitted(self, args: Input, full: str, shown: str, ctx: ToolContext) -> None:
        if shown != full and ctx.read_memo is not None:
            # The model did not see the whole range: the next read must not say "unchanged".
            path = try_resolve(ctx, args.path)
            if path is not None:
                ctx.read_memo.forget(path)

    def touched(self, args: Input, ctx: ToolContext) -> list[Path]:
        path = try_resolve(ctx, args.path)
        return [path] if path is not None else []

    def dropped(self, args: dict[str, Any], ctx: ToolContext) -> None:
        # The model no longer holds that read: a re-read must not answer "unchanged,
        # see above" or send a diff against it.
        path = args.get("path")
        real = try_resolve(ctx, path) if isinstance(path, str) else None
        if real is not None and ctx.read_memo is not None:
            ctx.read_memo.forget(real)

    def elided_note(self, args: dict[str, Any], text: str, ctx: ToolContext) -> str:
        path = args.get("path", "?")
        call: dict[str, Any] = {"path": path}
        for key in ("offset", "limit"):
            if key in args:
                call[key] = args[key]
        return (
            f"{elided_head(text)} It was read_file of {path}; the file may have changed since. To see it, call "
            f"read_file with {json.dumps(call)}.]"
        )

    async def run(self, args: Input, ctx: ToolContext) -> str | ToolOutput:
        path = resolve_path(ctx, args.path)
        display = ctx.workspace.relative(path)
        mime = IMAGE_TYPES.get(path.suffix.lower())
        if mime is not None and ctx.documents.get(path) is None and path.is_file():
            if not ctx.images:
                raise ToolError(
                    f"{display} is an image, and the model in use does not take images (the `images` "
                    "setting); describe what you need from it to the user instead"
                )
            data, size = await asyncio.to_thread(_read_image, path, display)
            return ToolOutput(
                f"{display}: {mime} image, {size / 1024:,.0f} KB (shown below).",
                (Image(mime, base64.b64encode(data).decode("ascii"), display),),
            )
        text, version = await read_text_for_tool(ctx, path, display)
        header: list[str] = []
        if version is not None:
            doc = ctx.documents.get(path)
            dirty = bool(doc is not None and doc.dirty)
            header.append(f"(editor buffer, version {version}{', unsaved changes' if dirty else ''})")
        lines = split_lines(text)
        total = len(lines)
        if total == 0:
            return "\n".join([*header, f"({display} is empty)"])
        if args.offset > total:
            raise ToolError(
                f"offset {args.offset} is past the end of {display}, which has {total} lines"
            )
        limit = min(args.limit, MAX_LINES)
        max_chars = MAX_CHARS if "limit" in args.model_fields_set or ctx.for_program else FIRST_LOOK_CHARS
        out: list[str] = []
        used = 0
        n = args.offset
        for line in lines[args.offset - 1 : args.offset - 1 + limit]:
            if len(line) > MAX_LINE_CHARS:
                line = line[:MAX_LINE_CHARS] + f" [... line cut, {len(line) - MAX_LINE_CHARS} more characters]"
            entry = numbered(n, line)
            if used + len(entry) + 1 > max_chars and out:
                break
            out.append(entry)
            used += len(entry) + 1
            n += 1
        last = n - 1
        remaining = total - last
        if remaining > 0:
            out.append(f"... {remaining} more lines. Call read_file with offset={last + 1} to continue.")
        if ctx.read_memo is not None and last >= args.offset:
            shown = last - args.offset + 1
            if not args.fresh:
                # Already seen and unchanged: a note; changed since: only what changed.
                short = ctx.read_memo.recall(path, text, args.offset, shown, AGAIN)
                if short is not None:
                    if remaining > 0:
                        short += f"\n... {remaining} more lines. Call read_file with offset={last + 1} to continue."
                    return "\n".join(header + [short])
            ctx.read_memo.remember(path, text, args.offset, shown)
        return "\n".join(header + out)


class WriteFile(Tool["WriteFile.Input"]):
    name = "write_file"
    description = (
        "Create a file or replace all of it (parent folders are created). To change part of a file, "
        "use edit_file or apply_patch."
    )
    read_only = False
    kind = "Write"
    claude_names = ("Write",)
    claude_fields = {"path": ("file_path", "path")}
    large_arguments = ("content",)

    class Input(ToolInput):
        path: str = Field(description="Relative to the workspace root.")
        content: str

    def permission(self, args: Input, ctx: ToolContext) -> PermissionRequest | None:
        return file_permission("Write", args.path, ctx)

    def summary(self, args: Input) -> str:
        return args.path

    async def run(self, args: Input, ctx: ToolContext) -> str:
        path = resolve_path(ctx, args.path)
        display = ctx.workspace.relative(path)
        if path == ctx.workspace.root:
            raise ToolError("path must name a file, not the workspace root")
        old, version = await asyncio.to_thread(_existing_text, ctx, path, display)
        if old is not None and old == args.content:
            return f"{display} already has exactly this content; nothing to write."
        change = FileChange(path=path, old_text=old, new_text=args.content, base_version=version)
        return await land(ctx, self.name, [change])


def _line_of(text: str, index: int) -> int:
    return text.count("\n", 0, index) + 1


def _occurrence_lines(text: str, needle: str, limit: int = 50) -> list[int]:
    lines: list[int] = []
    start = 0
    while len(lines) < limit:
        i = text.find(needle, start)
        if i < 0:
            break
        lines.append(_line_of(text, i))
        start = i + max(1, len(needle))
    return lines


def _norm(line: str) -> str:
    return " ".join(line.split())


def _near_misses(text: str, old: str) -> str:
    """Hints for an old_string that was not found: similar blocks, or its first line."""
    file_lines = split_lines(text)
    old_lines = [_norm(x) for x in split_lines(old)]
    while old_lines and old_lines[0] == "":
        old_lines.pop(0)
    while old_lines and old_lines[-1] == "":
        old_lines.pop()
    if not old_lines:
        return ""
    normed = [_norm(x) for x in file_lines]
    hits: list[int] = []
    n = len(old_lines)
    for i in range(len(normed) - n + 1):
        if normed[i] == old_lines[0] and normed[i : i + n] == old_lines:
            hits.append(i + 1)
            if len(hits) >= 10:
                break
    if hits:
        where = ", ".join(str(h) for h in hits)
        return (
            f" A block that differs only in whitespace/indentation starts at line(s) {where}; "
            "read those lines with read_file and copy them exactly."
        )
    first = old_lines[0]
    if first:
        firsts = [i + 1 for i, line in enumerate(normed) if first in line][:10]
        if firsts:
            where = ", ".join(str(h) for h in firsts)
            return (
                f" The first line of old_string appears at line(s) {where}, but the following "
                "lines differ; read that part of the file again and copy it exactly."
            )
    return ""


class EditFile(Tool["EditFile.Input"]):
    name = "edit_file"
    description = (
        "Replace exact text in a file. old_string must match exactly (whitespace included, no line-number "
        "prefixes) and be unique unless replace_all; include enough context lines."
    )
    read_only = False
    kind = "Edit"
    claude_names = ("Edit", "MultiEdit")
    claude_fields = {"path": ("file_path", "path")}
    large_arguments = ("new_string", "old_string")

    def summary(self, args: "EditFile.Input") -> str:
        return args.path

    class Input(ToolInput):
        path: str = Field(description="Relative to the workspace root.")
        old_string: str
        new_string: str
        replace_all: bool = False

    def permission(self, args: Input, ctx: ToolContext) -> PermissionRequest | None:
        return file_permission("Edit", args.path, ctx)

    async def run(self, args: Input, ctx: ToolContext) -> str:
        path = resolve_path(ctx, args.path)
        display = ctx.workspace.relative(path)
        if args.old_string == args.new_string:
            raise ToolError("old_string and new_string are identical; there is nothing to change")
        if args.old_string == "":
            raise ToolError("old_string is empty; to create or overwrite a whole file use write_file")
        text, version = await read_text_for_tool(ctx, path, display)
        old, new = args.old_string, args.new_string
        count = text.count(old)
        if count == 0 and "\r\n" in text and "\r\n" not in old:
            # the file uses CRLF line endings; the model wrote LF
            crlf_old = old.replace("\n", "\r\n")
            if text.count(crlf_old):
                old, new = crlf_old, new.replace("\r\n", "\n").replace("\n", "\r\n")
                count = text.count(old)
        if count == 0:
            hint = _near_misses(text, args.old_string)
            raise ToolError(
                f"old_string was not found in {display}."
                + (hint or " Read the file again and copy the text exactly, including whitespace.")
            )
        if count > 1 and not args.replace_all:
            lines = _occurrence_lines(text, old)
            where = ", ".join(str(n) for n in lines)
            raise ToolError(
                f"old_string occurs {count} times in {display} (starting at lines {where}). "
                "Include more surrounding lines to make it unique, or set replace_all=true to replace every occurrence."
            )
        new_text = text.replace(old, new) if args.replace_all else text.replace(old, new, 1)
        change = FileChange(path=path, old_text=text, new_text=new_text, base_version=version)
        return await land(ctx, self.name, [change])
