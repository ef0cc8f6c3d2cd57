"""Code actions ("Fix with codeloop", "Ask codeloop…", "Explain with codeloop")
and the hover over lines with a pending proposal.

Listing actions never calls the model and does no I/O: it must answer in
milliseconds even in a 20k-line file. The work starts when the command runs.
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from lsprotocol import types as lsp
from pygls.exceptions import JsonRpcInvalidParams

from codeloop.lsp import methods as M
from codeloop.lsp.documents import uri_to_path
from codeloop.services import quickfix
from codeloop.services.proposals import ProposalService
from codeloop.runtime.turns import TurnContext

if TYPE_CHECKING:
    from pygls.lsp.server import LanguageServer

    from codeloop.lsp.app import App

SEVERITY = {1: "error", 2: "warning", 3: "information", 4: "hint"}


def _wants(only: list[str] | None, kind: str) -> bool:
    if not only:
        return True
    return any(kind == k or kind.startswith(k + ".") for k in only)


def _range_dict(r: lsp.Range) -> dict[str, Any]:
    return {
        "start": {"line": r.start.line, "character": r.start.character},
        "end": {"line": r.end.line, "character": r.end.character},
    }


def _diag_dict(d: lsp.Diagnostic) -> dict[str, Any]:
    return {
        "range": _range_dict(d.range),
        "message": d.message,
        "severity": int(d.severity) if d.severity is not None else 1,
        "source": d.source or "",
        "code": str(d.code) if d.code is not None else "",
    }


MAX_FIX_ACTIONS = 20  # a client that sends every diagnostic of the file gets the nearest ones


def _overlaps(d: lsp.Diagnostic, r: lsp.Range) -> bool:
    """Whether the diagnostic touches the requested lines (clients differ: VS Code sends those
    intersecting the range, Neovim those on the cursor's line; some send all of them)."""
    return d.range.start.line <= r.end.line and d.range.end.line >= r.start.line


def code_actions(params: lsp.CodeActionParams) -> list[lsp.CodeAction]:
    """The actions for a range. Pure and cheap: no model, no I/O, no document text."""
    uri = params.text_document.uri
    only = [str(k.value if hasattr(k, "value") else k) for k in (params.context.only or [])]
    r = params.range
    out: list[lsp.CodeAction] = []
    if _wants(only, lsp.CodeActionKind.QuickFix.value):
        diags = [d for d in params.context.diagnostics or [] if _overlaps(d, r)]
        if len(diags) > MAX_FIX_ACTIONS:
            diags.sort(key=lambda d: (abs(d.range.start.line - r.start.line), d.severity or 1))
            diags = diags[:MAX_FIX_ACTIONS]
        for d in diags:
            short = d.message.splitlines()[0] if d.message else "this problem"
            if len(short) > 60:
                short = short[:57] + "…"
            out.append(
                lsp.CodeAction(
                    title=f"Fix with codeloop: {short}",
                    kind=lsp.CodeActionKind.QuickFix,
                    diagnostics=[d],
                    command=lsp.Command(
                        title="Fix with codeloop", command=M.CMD_FIX, arguments=[{"uri": uri, "diagnostic": _diag_dict(d)}]
                    ),
                )
            )
    non_empty = (r.start.line, r.start.character) != (r.end.line, r.end.character)
    if non_empty:
        arg = {"uri": uri, "range": _range_dict(r)}
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


def _span(raw: Any) -> quickfix.Span:
    try:
        s, e = raw["start"], raw["end"]
        return quickfix.Span(int(s["line"]), int(s["character"]), int(e["line"]), int(e["character"]))
    except (KeyError, TypeError, ValueError) as err:
        raise JsonRpcInvalidParams("the range must look like {start: {line, character}, end: {line, character}}") from err


async def build_request(server: "LanguageServer", app: "App", command: str, args: list[Any]) -> FocusedRequest | None:
    if not args or not isinstance(args[0], dict) or not isinstance(args[0].get("uri"), str):
        raise JsonRpcInvalidParams(f"{command} takes an object {{uri, ...}} as its first argument")
    arg = args[0]
    path = uri_to_path(arg["uri"])
    if path is None:
        raise JsonRpcInvalidParams(f"not a file URI: {arg['uri']}")
    assert app.documents is not None and app.client is not None
    doc = app.documents.get(path)
    if doc is not None:
        text, language, dirty = doc.text, quickfix.language_of(path.suffix, doc.language_id), doc.dirty
    else:
        try:
            text = await asyncio.to_thread(path.read_text, encoding="utf-8")
        except (OSError, UnicodeDecodeError) as e:
            raise JsonRpcInvalidParams(f"cannot read {path}: {e}") from e
        language, dirty = quickfix.language_of(path.suffix), False
    rel = _rel(app.root, path)
    if command == M.CMD_FIX:
        diag = arg.get("diagnostic")
        if not isinstance(diag, dict) or "range" not in diag:
            raise JsonRpcInvalidParams("codeloop.fixDiagnostic needs {uri, diagnostic}")
        span = _span(diag["range"])
        message = str(diag.get("message", ""))
        prompt = quickfix.fix_prompt(
            rel, language, text, span, message, str(diag.get("source") or ""), str(diag.get("code") or ""), dirty,
        )
        return FocusedRequest(prompt, TurnContext(active_file=str(path)), f"Fixing {rel}:{span.start_line + 1}: {message}")
    span = _span(arg.get("range"))
    selection = quickfix.selected_text(text, span)
    ctx = TurnContext(active_file=str(path), selection=selection, selection_path=str(path))
    if command == M.CMD_EXPLAIN:
        return FocusedRequest(
            quickfix.explain_prompt(rel, language, text, span), ctx, f"Explaining {rel}:{span.start_line + 1}-{span.end_line + 1}"
        )
    instruction = arg.get("instruction") if isinstance(arg.get("instruction"), str) else None
    if not instruction:
        item = await server.window_show_message_request_async(
            lsp.ShowMessageRequestParams(
                type=lsp.MessageType.Info,
                message="Ask codeloop to do what with the selection?",
                actions=[lsp.MessageActionItem(title=t) for t in quickfix.PRESET_INSTRUCTIONS],
            )
        )
        instruction = getattr(item, "title", None) if item is not None else None
        if not instruction:
            return None
    return FocusedRequest(
        quickfix.ask_prompt(rel, language, text, span, instruction, dirty), ctx, f"{instruction} ({rel}:{span.start_line + 1})"
    )


def _rel(root: Path, path: Path) -> str:
    try:
        return path.relative_to(root).as_posix()
    except ValueError:
        return str(path)


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
