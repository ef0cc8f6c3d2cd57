"""get_diagnostics: the errors and warnings the editor's language servers (or the
configured check command) report for some files."""

from __future__ import annotations

from pathlib import Path
from typing import Literal

from pydantic import Field

from codeloop.core.ports import DiagnosticInfo
from codeloop.tools.base import Tool, ToolContext, ToolError, ToolInput
from codeloop.tools.files import resolve_path

MAX_PATHS = 50
MAX_PER_FILE = 100
_RANK = {"error": 0, "warning": 1, "information": 2, "hint": 3}


def _line(rel: str, d: DiagnosticInfo) -> str:
    tag = " ".join(x for x in (d.source, d.code) if x)
    return f"  {d.line + 1}:{d.character + 1} {d.severity}: {d.message}" + (f" [{tag}]" if tag else "")


class GetDiagnostics(Tool["GetDiagnostics.Input"]):
    name = "get_diagnostics"
    description = (
        "Errors and warnings from the editor's language servers or the check command (after editing, say). "
        "Without paths: the open files. Lines are 1-based."
    )
    read_only = True
    kind = None

    class Input(ToolInput):
        paths: list[str] = Field(default_factory=list, description="Files, relative to the root.")
        min_severity: Literal["error", "warning", "information", "hint"] = Field(
            "hint", description="The least severe to include."
        )

    def summary(self, args: "GetDiagnostics.Input") -> str:
        return ", ".join(args.paths[:3]) + (" …" if len(args.paths) > 3 else "") if args.paths else "open files"

    async def run(self, args: "GetDiagnostics.Input", ctx: ToolContext) -> str:
        if ctx.diagnostics is None:
            raise ToolError(
                "no diagnostics are available here: the editor forwards none and no check command "
                "applies. Run the project's linter or tests with run_command instead."
            )
        if len(args.paths) > MAX_PATHS:
            raise ToolError(f"at most {MAX_PATHS} paths per call")
        if args.paths:
            paths: list[Path] = []
            for raw in args.paths:
                p = resolve_path(ctx, raw)
                if not p.is_file() and ctx.documents.get(p) is None:
                    raise ToolError(f"file not found: {raw}")
                if p not in paths:
                    paths.append(p)
        else:
            paths = [d.path for d in ctx.documents.open_documents()][:MAX_PATHS]
            if not paths:
                raise ToolError("no files are open in the editor; give the paths to check")
        found = await ctx.diagnostics.diagnostics(paths)
        limit = _RANK[args.min_severity]
        out: list[str] = []
        for p in paths:
            rel = ctx.workspace.relative(p)
            if p not in found:
                out.append(f"{rel}: no diagnostics available (no language server or check command covers this file)")
                continue
            items = sorted((d for d in found[p] if _RANK.get(d.severity, 0) <= limit), key=lambda d: (d.line, d.character))
            if not items:
                out.append(f"{rel}: no problems")
                continue
            errors = sum(1 for d in items if d.severity == "error")
            out.append(f"{rel}: {len(items)} problem(s), {errors} error(s)")
            out += [_line(rel, d) for d in items[:MAX_PER_FILE]]
            if len(items) > MAX_PER_FILE:
                out.append(f"  … and {len(items) - MAX_PER_FILE} more")
        return "\n".join(out)
