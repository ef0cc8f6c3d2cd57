"""apply_patch: apply a unified diff (one or more files) all or nothing.

Hunks are located by their content (context and removed lines), searching
nearest to the line their header names first, so line-number drift is fine.
The patch is parsed with ``unidiff`` after a tolerant clean-up (code fences,
wrong hunk counts, blank context lines that lost their leading space).
"""

from __future__ import annotations

import asyncio
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import unidiff

from codeloop.edits.change import FileChange
from codeloop.policy.types import PermissionRequest
from codeloop.tools.base import Tool, ToolContext, ToolError, ToolInput
from codeloop.tools.claude import absolute
from codeloop.tools.files import _existing_text, land, resolve_path, try_resolve
from codeloop.tools.text import split_lines

HUNK_RE = re.compile(r"^@@ -(\d+)(?:,(\d+))? \+(\d+)(?:,(\d+))? @@(.*)$")
DEV_NULL = "/dev/null"


class PatchError(ToolError):
    pass


# -- clean-up before parsing


def _is_file_header(lines: list[str], i: int) -> bool:
    return lines[i].startswith("--- ") and i + 1 < len(lines) and lines[i + 1].startswith("+++ ")


def normalize_patch(text: str) -> str:
    """Make a model-written diff parseable: drop fences, fix hunk line counts."""
    text = text.replace("\r\n", "\n")
    lines = text.split("\n")
    # drop markdown fences and anything before the first header
    lines = [x for x in lines if not x.strip().startswith("```")]
    out: list[str] = []
    i = 0
    while i < len(lines):
        line = lines[i]
        if not line.startswith("@@"):
            out.append(line)
            i += 1
            continue
        m = HUNK_RE.match(line)
        if m:
            old_start, old_len = int(m.group(1)), m.group(2)
            new_start, new_len = int(m.group(3)), m.group(4)
            tail = m.group(5)
            declared = (int(old_len) if old_len is not None else 1, int(new_len) if new_len is not None else 1)
        else:  # "@@" or "@@ something @@" without numbers: position unknown
            old_start, new_start, tail, declared = 1, 1, "", (-1, -1)
        body: list[str] = []
        j = i + 1
        while j < len(lines):
            b = lines[j]
            if b.startswith("@@") or b.startswith("diff ") or _is_file_header(lines, j):
                break
            if b == "" or b[0] in " -+\\":
                body.append(b)
                j += 1
                continue
            break
        # trailing blank lines: blank context only if the declared counts want them
        trailing = 0
        while trailing < len(body) and body[len(body) - 1 - trailing] == "":
            trailing += 1
        core = body[: len(body) - trailing]
        o = sum(1 for b in core if b == "" or b[0] in " -")
        n = sum(1 for b in core if b == "" or b[0] in " +")
        keep = 0
        for k in range(1, trailing + 1):
            if declared == (o + k, n + k):
                keep = k
        body = core + [""] * keep
        o += keep
        n += keep
        body = [" " if b == "" else b for b in body]
        if o == 0:
            old_start = max(0, old_start if m else 0)
        elif old_start == 0:
            old_start = 1
        if n == 0:
            new_start = max(0, new_start)
        elif new_start == 0:
            new_start = 1
        out.append(f"@@ -{old_start},{o} +{new_start},{n} @@{tail}")
        out.extend(body)
        i = j
    return "\n".join(out).strip("\n") + "\n"


# -- paths


def strip_prefixes(ctx: ToolContext, source: str, target: str) -> tuple[str | None, str | None]:
    """Workspace paths (None for /dev/null) of a file diff's two sides, without a/ b/."""
    src = None if source == DEV_NULL else source
    tgt = None if target == DEV_NULL else target
    prefixed = (src is None or src.startswith("a/")) and (tgt is None or tgt.startswith("b/"))

    def strip(name: str | None) -> str | None:
        if name is None:
            return None
        if name.startswith(("a/", "b/")) and (prefixed or not _exists(ctx.workspace.root / name)):
            return name[2:]
        return name

    return strip(src), strip(tgt)


def _exists(path: Path) -> bool:
    try:
        return path.exists()
    except (OSError, ValueError):  # a NUL byte, a name too long: resolving it says why
        return False


def _patch_paths(patch: str) -> list[str]:
    """Cheap path listing (for permission requests)."""
    paths: list[str] = []
    lines = patch.replace("\r\n", "\n").split("\n")
    for i, line in enumerate(lines):
        if _is_file_header(lines, i):
            src = line[4:].split("\t")[0].strip()
            tgt = lines[i + 1][4:].split("\t")[0].strip()
            name = tgt if tgt != DEV_NULL else src
            if name.startswith(("a/", "b/")):
                name = name[2:]
            if name not in paths:
                paths.append(name)
    return paths


# -- applying


@dataclass
class FileState:
    path: Path
    display: str
    original: str | None
    version: int | None
    lines: list[str]
    eol: bool  # ends with a newline
    hunks_done: int = 0
    log: list[str] = field(default_factory=list)

    def text(self) -> str:
        if not self.lines:
            return ""
        return "\n".join(self.lines) + ("\n" if self.eol else "")


@dataclass
class ParsedHunk:
    header: str
    source_start: int
    source_length: int
    old: list[str]
    new: list[str]
    old_no_eol: bool
    new_no_eol: bool


def _parse_hunk(h: unidiff.patch.Hunk) -> ParsedHunk:
    old: list[str] = []
    new: list[str] = []
    old_no_eol = new_no_eol = False
    last_type = ""
    for line in h:
        value = line.value
        if value.endswith("\n"):
            value = value[:-1]
        if value.endswith("\r"):
            value = value[:-1]
        t = line.line_type
        if t == " ":
            old.append(value)
            new.append(value)
        elif t == "-":
            old.append(value)
        elif t == "+":
            new.append(value)
        elif t == "\\":
            if last_type in (" ", "-"):
                old_no_eol = True
            if last_type in (" ", "+"):
                new_no_eol = True
            continue
        last_type = t
    header = f"@@ -{h.source_start},{h.source_length} +{h.target_start},{h.target_length} @@"
    return ParsedHunk(header, h.source_start, h.source_length, old, new, old_no_eol, new_no_eol)


def _find(lines: list[str], old: list[str], expected: int, lo: int) -> int | None:
    """Index where ``old`` matches exactly, nearest ``expected``, not before ``lo``."""
    m = len(old)
    hi = len(lines) - m
    if hi < lo:
        return None
    best: int | None = None
    best_dist = 0
    first = old[0]
    for p in range(lo, hi + 1):
        if lines[p] != first:
            continue
        if lines[p : p + m] == old:
            dist = abs(p - expected)
            if best is None or dist < best_dist:
                best, best_dist = p, dist
            elif p > expected:
                break
    return best


def _why_not(lines: list[str], old: list[str], expected: int, lo: int, new: list[str] | None = None) -> str:
    m = len(old)
    if new and new != old:
        applied = _find(lines, new, expected, 0)
        if applied is not None:
            return f"it looks already applied (its resulting lines are at line {applied + 1})"
    earlier = _find(lines, old, expected, 0) if lo > 0 else None
    if earlier is not None:
        return (
            f"its lines only match at line {earlier + 1}, before the previous hunk; "
            "hunks must be in file order and must not overlap"
        )
    best_p, best_score = -1, 0
    for p in range(0, max(0, len(lines) - m) + 1):
        window = lines[p : p + m]
        score = sum(1 for a, b in zip(window, old) if a == b)
        if score > best_score or (score == best_score and score and abs(p - expected) < abs(best_p - expected)):
            best_p, best_score = p, score
    if best_score == 0:
        stripped_hits = [
            i + 1 for i, line in enumerate(lines) if old and line.strip() and line.strip() == old[0].strip()
        ]
        if stripped_hits:
            return (
                "its context/removed lines were not found; the first one appears with different "
                f"whitespace at line(s) {', '.join(map(str, stripped_hits[:5]))}"
            )
        return "none of its context/removed lines were found in the file"
    for k, (a, b) in enumerate(zip(lines[best_p : best_p + m], old)):
        if a != b:
            return (
                f"the closest place is line {best_p + 1} ({best_score} of {m} lines match); "
                f"line {best_p + k + 1} of the file is {a!r} but the patch expects {b!r}"
            )
    return (
        f"the closest place is line {best_p + 1}, but the file ends after "
        f"{len(lines) - best_p} of the hunk's {m} lines"
    )


def _apply_hunk(state: FileState, hunk: ParsedHunk, index: int, total_hunks: int, shift: int, lo: int) -> tuple[int, int]:
    """Apply one hunk to state.lines; returns (new shift, end of the new region)."""
    lines = state.lines
    if hunk.source_length == 0 or not hunk.old:
        expected = hunk.source_start + shift  # insert after line source_start
        pos = min(max(expected, lo), len(lines))
    else:
        expected = hunk.source_start - 1 + shift
        found = _find(lines, hunk.old, expected, lo)
        if found is None:
            raise PatchError(
                f"hunk {index} of {state.display} ({hunk.header}) did not match: "
                + _why_not(lines, hunk.old, expected, lo, hunk.new)
                + ". Nothing was changed. Read the file again and send a corrected patch "
                "(or use edit_file)."
            )
        pos = found
    end_old = pos + len(hunk.old)
    at_eof = end_old >= len(lines)
    lines[pos:end_old] = hunk.new
    if at_eof and (hunk.old_no_eol or hunk.new_no_eol):
        state.eol = not hunk.new_no_eol
    new_shift = shift + (pos - expected if hunk.old else 0) + len(hunk.new) - len(hunk.old)
    return new_shift, pos + len(hunk.new)


def build_changes(ctx: ToolContext, patch_text: str) -> list[FileChange]:
    """Blocking: parse and apply the patch in memory; FileChanges for every file."""
    if not patch_text.strip():
        raise PatchError("the patch is empty")
    normalized = normalize_patch(patch_text)
    try:
        patch = unidiff.PatchSet(normalized)
    except unidiff.UnidiffParseError as e:
        raise PatchError(f"could not parse the patch as a unified diff: {e}") from None
    if len(patch) == 0:
        raise PatchError(
            "no file diffs found. Send a unified diff with '--- a/path' and '+++ b/path' "
            "header lines followed by '@@ -l,n +l,n @@' hunks."
        )
    states: dict[Path, FileState] = {}
    order: list[Path] = []
    for pf in patch:
        source = pf.source_file.split("\t")[0].strip()
        target = pf.target_file.split("\t")[0].strip()
        src_rel, tgt_rel = strip_prefixes(ctx, source, target)
        if tgt_rel is None or pf.is_removed_file:
            raise PatchError(
                f"the patch deletes {src_rel}; apply_patch does not delete files. "
                "Use run_command (e.g. `rm path` or `git rm path`) for that. Nothing was changed."
            )
        rel = tgt_rel
        if src_rel is not None and src_rel != tgt_rel:
            raise PatchError(
                f"the patch renames {src_rel} to {tgt_rel}; renames are not supported. Move the "
                "file with run_command (e.g. `git mv`), then patch it. Nothing was changed."
            )
        path = resolve_path(ctx, rel)
        display = ctx.workspace.relative(path)
        state = states.get(path)
        if state is None:
            old, version = _existing_text(ctx, path, display)
            if pf.is_added_file or src_rel is None:
                if old is not None and old.strip():
                    raise PatchError(
                        f"the patch creates {display}, but that file already exists. "
                        "Send a diff against its current content instead. Nothing was changed."
                    )
            elif old is None:
                raise PatchError(f"{display} does not exist (use '--- /dev/null' to create a file). Nothing was changed.")
            base = old or ""
            state = FileState(
                path=path,
                display=display,
                original=old,
                version=version,
                lines=split_lines(base),
                eol=base.endswith("\n") or base == "",
            )
            states[path] = state
            order.append(path)
        shift, lo = 0, 0
        hunks = [_parse_hunk(h) for h in pf]
        for i, hunk in enumerate(hunks, 1):
            shift, lo = _apply_hunk(state, hunk, i, len(hunks), shift, lo)
    changes: list[FileChange] = []
    for path in order:
        st = states[path]
        new_text = st.text()
        if st.original is not None and new_text == st.original:
            continue
        changes.append(FileChange(path=path, old_text=st.original, new_text=new_text, base_version=st.version))
    return changes


class ApplyPatch(Tool["ApplyPatch.Input"]):
    name = "apply_patch"
    description = (
        "Apply a unified diff to one or more files, all or nothing: '--- a/path', '+++ b/path' ('--- "
        "/dev/null' creates a file), hunks '@@ -l,n +l,n @@' with ~3 lines of context. Context and removed "
        "lines must match; line numbers may be off. No deletes or renames (use run_command)."
    )
    read_only = False
    kind = "Edit"
    large_arguments = ("patch",)

    class Input(ToolInput):
        patch: str

    # A patch edits and creates files: Claude Code's Edit (and Write) hooks see it, as an
    # Edit with the patch and every file it touches (``file_path`` too when there is one).
    claude_names = ("Edit", "MultiEdit", "Write")

    def summary(self, args: Input) -> str:
        return ", ".join(_patch_paths(args.patch)) or "(patch)"

    def claude_input(self, args: Mapping[str, Any], root: Path) -> dict[str, Any]:
        files = list(dict.fromkeys(absolute(p, root) for p in _patch_paths(str(args.get("patch", "")))))
        out = {**args, "file_paths": files}
        if len(files) == 1:
            out["file_path"] = files[0]
        return out

    def from_claude_input(self, data: Mapping[str, Any], root: Path) -> dict[str, Any]:
        return {k: v for k, v in data.items() if k not in ("file_path", "file_paths")}

    def permission(self, args: Input, ctx: ToolContext) -> PermissionRequest:
        paths = _patch_paths(args.patch)
        first = try_resolve(ctx, paths[0]) if paths else None
        return PermissionRequest("Edit", ", ".join(paths) or "(patch)", ctx.workspace.root, first)

    async def run(self, args: Input, ctx: ToolContext) -> str:
        changes = await asyncio.to_thread(build_changes, ctx, args.patch)
        if not changes:
            return "The patch changes nothing: every file already has this content."
        return await land(ctx, self.name, changes)
