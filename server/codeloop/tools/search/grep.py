"""The grep tool: ripgrep (or the pure-Python fallback), then the open buffers."""

from __future__ import annotations

import asyncio
import json
import os
from pathlib import Path

from pydantic import Field

import codeloop.tools.search.rg as rg
from codeloop.policy.types import PermissionRequest
from codeloop.tools.base import Tool, ToolContext, ToolError, ToolInput, ToolResult, first_line, plural
from codeloop.tools.files import file_permission
from codeloop.tools.search.fs import read_beneath
from codeloop.tools.search.ignore import IgnoreMatcher, glob_spec, walk_files
from codeloop.tools.search.query import GrepMode, GrepQuery
from codeloop.tools.search.results import GREP_MAX_FILES, FileHits, format_grep, grep_text
from codeloop.tools.search.scope import check_argument, dropped_note, search_start, verify


async def _grep_rg(ctx: ToolContext, q: GrepQuery) -> tuple[dict[str, FileHits], bool]:
    # rg searches in parallel unless asked to sort (--sort path makes it single-threaded);
    # the results are sorted here. Only when the output is cut does it matter which files
    # came first: then search again, sorted, so the cut is the same every time.
    results, stopped = await _grep_rg_once(ctx, q, sort=False)
    if stopped:
        results, stopped = await _grep_rg_once(ctx, q, sort=True)
    return dict(sorted(results.items())), stopped


async def _grep_rg_once(ctx: ToolContext, q: GrepQuery, *, sort: bool) -> tuple[dict[str, FileHits], bool]:
    args = rg._base_rg_args() + ["--engine", "auto"] + (["--sort", "path"] if sort else [])
    if q.case_insensitive:
        args.append("-i")
    args += rg._globs(q.glob)
    results: dict[str, FileHits] = {}
    if q.mode == "content":
        args += ["--json"]
        if q.context:
            args += ["-C", str(q.context)]
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
            rel = rg._rel_from_rg(rg._json_text(data["path"]))
            hits = results.setdefault(rel, FileHits(rel))
            text = rg._json_text(data["lines"]).rstrip("\n").rstrip("\r")
            is_match = kind == "match"
            hits.lines.append((data.get("line_number") or 0, text, is_match))
            if is_match:
                hits.count += 1
            events += 1
            return events < rg.RG_MAX_EVENTS

        args += ["-e", q.pattern, "--", q.target]
        code, _, err, stopped = await rg._run_rg(args, ctx.workspace.root, on_line)
    elif q.mode == "files_with_matches":
        args += ["--files-with-matches", "--null", "-e", q.pattern, "--", q.target]
        code, out, err, stopped = await rg._run_rg(args, ctx.workspace.root)
        for item in out.split("\x00"):
            name = item.strip("\n")
            if name:
                rel = rg._rel_from_rg(name)
                results[rel] = FileHits(rel, count=1)
    else:
        args += ["--count", "--null", "-e", q.pattern, "--", q.target]
        code, out, err, stopped = await rg._run_rg(args, ctx.workspace.root)
        for item in out.split("\n"):
            if "\x00" in item:
                name, _, n = item.partition("\x00")
                rel = rg._rel_from_rg(name)
                results[rel] = FileHits(rel, count=int(n or 0))
    if q.glob:
        keep = set(await asyncio.to_thread(_filter_ignored, ctx, q.target, list(results)))
        results = {k: v for k, v in results.items() if k in keep}
    if code == 2 and not results and not stopped:
        msg = rg._rg_error(err)
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


def _read_searchable(root: Path, rel: str) -> str | None:
    data = read_beneath(root, rel)  # no symlink followed on the way
    if data is None or b"\x00" in data[:8192]:
        return None
    return data.decode("utf-8", errors="replace")


def _grep_python(ctx: ToolContext, q: GrepQuery) -> dict[str, FileHits]:
    regex = q.regex()
    root = ctx.workspace.root
    matcher = IgnoreMatcher(root)
    results: dict[str, FileHits] = {}
    for path in walk_files(root, q.start, matcher, q.glob):
        rel = path.relative_to(root).as_posix()
        text = _read_searchable(root, rel)
        if text is None:
            continue
        hits = grep_text(rel, text, regex, q.context, q.want_lines)
        if hits is not None:
            results[rel] = hits
    return results


def _in_scope(path: Path, start: Path, glob: str | None, matcher: IgnoreMatcher) -> bool:
    if path != start and start not in path.parents:
        return False
    if path != start:
        if matcher.ignored(path, False) and not matcher.ignored(start, start.is_dir()):
            return False
        spec = glob_spec(glob)
        if spec is not None and not spec.match_file(path.relative_to(start).as_posix()):
            return False
    return True


def _overlay_buffers(ctx: ToolContext, results: dict[str, FileHits], q: GrepQuery) -> dict[str, FileHits]:
    """Replace the disk results of files open with unsaved changes by their buffers'."""
    try:
        docs = [d for d in ctx.documents.open_documents() if d.dirty]
    except Exception:
        return results
    if not docs:
        return results
    regex = q.regex()
    matcher = IgnoreMatcher(ctx.workspace.root)
    for doc in docs:
        path = Path(os.path.realpath(doc.path))
        if not ctx.workspace.contains(path) or not _in_scope(path, q.start, q.glob, matcher):
            continue
        rel = ctx.workspace.relative(path)
        results.pop(rel, None)
        hits = grep_text(rel, doc.text, regex, q.context, q.want_lines)
        if hits is not None:
            results[rel] = hits
    return dict(sorted(results.items()))


class Grep(Tool["Grep.Input"]):
    name = "grep"
    claude_names = ("Grep",)
    claude_fields = {"path": ("path", "path"), "case_insensitive": ("-i", "same"), "context": ("-C", "same")}
    description = (
        "Search file contents with a regex (ripgrep syntax), respecting .gitignore: `path:line:text` "
        "lines, the matching files or counts."
    )
    read_only = True
    kind = "Read"
    activity = "search"
    guidance = "Search with grep, glob and list_dir rather than grep or find in run_command."

    class Input(ToolInput):
        pattern: str
        path: str = Field(".", description="File or folder to search.")
        glob: str | None = Field(None, description='Only files matching this glob ("*.py", "src/**/*.ts").')
        output_mode: GrepMode = Field("content", description="Lines, files or counts.")
        case_insensitive: bool = False
        context: int = Field(0, ge=0, le=20, description="Lines of context around each match.")

    def summary(self, args: Input) -> str:
        where = "" if args.path in (".", "") else f" in {args.path}"
        return args.pattern + where + (f" ({args.glob})" if args.glob else "")

    def outcome(self, args: Input, result: ToolResult) -> str:
        if not result.ok:
            return first_line(result.text)
        lines = [ln for ln in result.text.splitlines() if ln and not ln.startswith(("[", "("))]
        if args.output_mode == "content":
            files = {ln.split(":", 1)[0] for ln in lines if ":" in ln}
            return f"{plural(len(lines), 'line')} in {plural(len(files), 'file')}" if lines else "no matches"
        return plural(len(lines), "file") if lines else "no matches"

    def permission(self, args: Input, ctx: ToolContext) -> PermissionRequest | None:
        return file_permission("Read", args.path, ctx)

    async def run(self, args: Input, ctx: ToolContext) -> str:
        if args.pattern == "":
            raise ToolError("pattern is empty")
        check_argument("pattern", args.pattern)
        if args.glob is not None:
            check_argument("glob", args.glob)
        start = search_start(ctx, args.path)
        rel = start.rel
        q = GrepQuery(args.pattern, start.path, rel, args.glob, args.output_mode, args.case_insensitive, args.context)
        stopped = False
        dropped = 0
        if rg.find_rg() is not None:
            results, stopped = await _grep_rg(ctx, q)
        else:
            results = await asyncio.to_thread(_grep_python, ctx, q)
        results = await asyncio.to_thread(_overlay_buffers, ctx, results, q)
        if results:
            # what will be shown must still be inside (rg opens what it walks by name)
            kept, dropped = await asyncio.to_thread(verify, start, ctx.workspace.root, list(results), GREP_MAX_FILES)
            if dropped:
                results = {k: results[k] for k in kept}
        note = "\n" + dropped_note(dropped) if dropped else ""
        if not results:
            where = f" in {rel}" if rel != "." else ""
            filt = f" (files matching {args.glob!r})" if args.glob else ""
            return f"No matches for {args.pattern!r}{where}{filt}.{note}"
        return format_grep(results, args.output_mode, stopped) + note
