"""Code actions ("Fix with codeloop", "Ask codeloop…", "Explain with codeloop") and the
hover over lines with a pending proposal.

Listing actions never calls the model and does no I/O: it must answer in milliseconds
even in a 20k-line file. The diagnostics it offers fixes for are the ones the client sent,
plus codeloop's own (``problems.OwnDiagnostics``, checked in the background) for clients
that send none. Ask and Explain are offered on a selection and on a cursor; the range is
resolved when the command runs (a cursor means the enclosing function, or its line).
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from lsprotocol import types as lsp
from pygls.exceptions import JsonRpcInvalidParams

from codeloop.core.ports import DiagnosticInfo, Documents
from codeloop.lsp import methods as M
from codeloop.lsp import wire
from codeloop.lsp.documents import uri_to_path
from codeloop.services import quickfix
from codeloop.services.proposals import ProposalService
from codeloop.runtime.turns import TurnContext

MAX_FIX_ACTIONS = 20  # a client that sends every diagnostic of the file gets the nearest ones

OwnProblems = Callable[[Path | None, int, int], list[DiagnosticInfo]]


def _wants(only: list[str], kind: str) -> bool:
    if not only:
        return True
    return any(kind == k or kind.startswith(k + ".") for k in only)


_SEVERITY = {"error": 1, "warning": 2, "information": 3, "hint": 4}


def _fix(uri: str, d: lsp.Diagnostic | DiagnosticInfo, own_source: str) -> tuple[str, dict[str, object], lsp.Diagnostic]:
    """(message, the command's argument, the LSP diagnostic) for one problem."""
    if isinstance(d, DiagnosticInfo):
        severity = _SEVERITY.get(d.severity, 1)
        start, end = (d.line, d.character), (d.end_line, max(d.end_character, d.character))
        source, code = d.source or own_source, d.code
        diag = lsp.Diagnostic(
            range=lsp.Range(start=lsp.Position(line=start[0], character=start[1]), end=lsp.Position(line=end[0], character=end[1])),
            message=d.message, severity=lsp.DiagnosticSeverity(severity), source=source or None, code=code or None,
        )
    else:
        severity = int(d.severity) if d.severity is not None else 1
        start = (d.range.start.line, d.range.start.character)
        end = (d.range.end.line, d.range.end.character)
        source, code, diag = d.source or "", str(d.code) if d.code is not None else "", d
    return d.message, wire.fix_args(uri, start, end, d.message, severity, source, code), diag


def _touches(d: lsp.Diagnostic | DiagnosticInfo, r: lsp.Range) -> bool:
    """Whether the diagnostic touches the requested lines (clients differ: VS Code sends those
    intersecting the range, Neovim those on the cursor's line; some send all of them)."""
    if isinstance(d, DiagnosticInfo):
        return d.line <= r.end.line and d.end_line >= r.start.line
    return d.range.start.line <= r.end.line and d.range.end.line >= r.start.line


def _line_of(d: lsp.Diagnostic | DiagnosticInfo) -> int:
    return d.line if isinstance(d, DiagnosticInfo) else d.range.start.line


def _message_of(d: lsp.Diagnostic | DiagnosticInfo) -> str:
    return " ".join(d.message.split())


def _severity_of(d: lsp.Diagnostic | DiagnosticInfo) -> int:
    if isinstance(d, DiagnosticInfo):
        return _SEVERITY.get(d.severity, 1)
    return int(d.severity) if d.severity is not None else 1


def trim_params(params: dict[str, Any]) -> None:
    """Before pygls parses a ``textDocument/codeAction`` request: only the diagnostics on the
    requested lines stay (``_touches``; a client that sends all 200 of a file's diagnostics
    with every cursor move would otherwise have them all turned into objects). Malformed
    entries stay, for the parser to report."""
    context = params.get("context")
    rng = params.get("range")
    if not isinstance(context, dict) or not isinstance(rng, dict):
        return
    diagnostics = context.get("diagnostics")
    if not isinstance(diagnostics, list) or len(diagnostics) <= MAX_FIX_ACTIONS:
        return
    first, last = rng["start"]["line"], rng["end"]["line"]
    if not isinstance(first, int) or not isinstance(last, int):
        return

    def keep(d: Any) -> bool:
        try:
            r = d["range"]
            return bool(r["start"]["line"] <= last and r["end"]["line"] >= first)
        except (TypeError, KeyError):
            return True

    context["diagnostics"] = [d for d in diagnostics if keep(d)]


def code_actions(params: lsp.CodeActionParams, own: OwnProblems | None = None, own_source: str = "") -> list[lsp.CodeAction]:
    """The actions for a range. Cheap: no model, no I/O, no document text; only the
    diagnostics on the requested lines are converted."""
    uri = params.text_document.uri
    only = [str(getattr(k, "value", k)) for k in (params.context.only or [])]
    r = params.range
    out: list[lsp.CodeAction] = []
    if _wants(only, lsp.CodeActionKind.QuickFix.value):
        found: list[lsp.Diagnostic | DiagnosticInfo] = [d for d in params.context.diagnostics or [] if _touches(d, r)]
        if own is not None:
            seen = {(_line_of(d), _message_of(d)) for d in found}
            for info in own(uri_to_path(uri), r.start.line, r.end.line):
                key = (_line_of(info), _message_of(info))
                if key not in seen:
                    seen.add(key)
                    found.append(info)
        if len(found) > MAX_FIX_ACTIONS:
            found.sort(key=lambda d: (abs(_line_of(d) - r.start.line), _severity_of(d)))
            found = found[:MAX_FIX_ACTIONS]
        for item in found:
            message, arg, diag = _fix(uri, item, own_source)
            short = message.splitlines()[0] if message else "this problem"
            if len(short) > 60:
                short = short[:57] + "…"
            out.append(
                lsp.CodeAction(
                    title=f"Fix with codeloop: {short}",
                    kind=lsp.CodeActionKind.QuickFix,
                    diagnostics=[diag],
                    command=lsp.Command(title="Fix with codeloop", command=M.CMD_FIX, arguments=[arg]),
                )
            )
    rng = {"start": {"line": r.start.line, "character": r.start.character}, "end": {"line": r.end.line, "character": r.end.character}}
    arg = {"uri": uri, "range": rng}  # dump(FocusArgs(uri, range)), checked by tests/test_wire_protocol_ts.py
    if _wants(only, lsp.CodeActionKind.RefactorRewrite.value):
        out.append(
            lsp.CodeAction(
                title="Ask codeloop…",
                kind=lsp.CodeActionKind.RefactorRewrite,
                command=lsp.Command(title="Ask codeloop…", command=M.CMD_ASK, arguments=[arg]),
            )
        )
    if not only:
        out.append(
            lsp.CodeAction(
                title="Explain with codeloop",
                command=lsp.Command(title="Explain with codeloop", command=M.CMD_EXPLAIN, arguments=[arg]),
            )
        )
    return out


@dataclass
class FocusedRequest:
    prompt: str
    context: TurnContext
    title: str = ""  # the progress title
    session_id: str | None = None


def _span(r: wire.Range) -> quickfix.Span:
    return quickfix.Span(r.start.line, r.start.character, r.end.line, r.end.character)


def _rel(root: Path, path: Path) -> str:
    try:
        return path.relative_to(root).as_posix()
    except ValueError:
        return str(path)


Ask = Callable[[str, list[str]], Awaitable[str | None]]


async def build_request(command: str, raw: list[object], documents: Documents, root: Path, ask: Ask,
                        ready: Callable[[Path], Awaitable[None]]) -> FocusedRequest | None:
    """The turn a code action's command starts; None when the user dismissed the question."""
    model = wire.COMMAND_ARGS[command]
    if not raw:
        raise JsonRpcInvalidParams(f"{command} takes an object {{uri, ...}} as its first argument")
    arg = wire.parse(model, raw[0], f"{command} argument")
    path = uri_to_path(arg.uri)
    if path is None:
        raise JsonRpcInvalidParams(f"not a file URI: {arg.uri}")
    await ready(path)
    doc = documents.get(path)
    if doc is not None:
        text, language, dirty = doc.text, quickfix.language_of(path.suffix, doc.language_id), doc.dirty
    else:
        try:
            text = await asyncio.to_thread(path.read_text, encoding="utf-8")
        except (OSError, UnicodeDecodeError) as e:
            raise JsonRpcInvalidParams(f"cannot read {path}: {e}") from e
        language, dirty = quickfix.language_of(path.suffix), False
    rel = _rel(root, path)
    if isinstance(arg, wire.FixDiagnosticArgs):
        d = arg.diagnostic
        span = _span(d.range)
        code = "" if d.code is None else str(d.code)
        prompt = quickfix.fix_prompt(rel, language, text, span, d.message, d.source or "", code, dirty)
        title = f"Fixing {rel}:{span.start_line + 1}: {d.message}"
        return FocusedRequest(prompt, TurnContext(active_file=str(path)), title, arg.session_id)
    assert isinstance(arg, wire.FocusArgs)
    cursor = arg.range.start.line
    span, scope = quickfix.focus_span(text, _span(arg.range))
    selection = quickfix.selected_text(text, span)
    ctx = TurnContext(active_file=str(path), selection=selection, selection_path=str(path))
    if command == M.CMD_EXPLAIN:
        prompt = quickfix.explain_prompt(rel, language, text, span, scope, cursor)
        return FocusedRequest(prompt, ctx, f"Explaining {rel}:{span.start_line + 1}-{max(span.end_line, span.start_line + 1)}",
                              arg.session_id)
    instruction = arg.instruction
    if not instruction:
        what = {"selection": "the selection", "function": "this function", "line": "this line"}[scope]
        instruction = await ask(f"Ask codeloop to do what with {what}?", list(quickfix.PRESET_INSTRUCTIONS))
        if not instruction:
            return None
    prompt = quickfix.ask_prompt(rel, language, text, span, instruction, dirty, scope, cursor)
    return FocusedRequest(prompt, ctx, f"{instruction} ({rel}:{span.start_line + 1})", arg.session_id)


def pending_hover(proposals: ProposalService, params: lsp.HoverParams) -> lsp.Hover | None:
    """Over a line a pending proposal would change, show that hunk."""
    if not proposals.pending:
        return None
    path = uri_to_path(params.text_document.uri)
    line = params.position.line
    for proposal in proposals.pending.values():
        for f in proposal.files:
            if f.path != path:
                continue
            for h in f.hunk_views:
                if h.old_start <= line < h.old_start + max(1, h.old_lines):
                    return lsp.Hover(
                        contents=lsp.MarkupContent(
                            kind=lsp.MarkupKind.Markdown,
                            value=f"**codeloop proposal {proposal.id}**, hunk {h.id + 1} (pending review)\n\n```diff\n{h.diff}\n```",
                        )
                    )
    return None
