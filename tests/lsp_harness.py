"""A scriptable editor for driving the real ``codeloop lsp`` over JSON-RPC (pytest-lsp).

It behaves like a real editor: it keeps documents with versions, applies
``workspace/applyEdit`` to its buffers (refusing a stale version, like VS Code),
sends the resulting ``didChange``, saves on request, and answers reviews and
approvals through handlers each test sets.
"""

from __future__ import annotations

import asyncio
import sys
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from lsprotocol import types as lsp
from pygls.protocol import JsonRPCNotification, JsonRPCRequestMessage, JsonRPCResponseMessage, default_converter
from pytest_lsp import ClientServerConfig, LanguageClient
from pytest_lsp.client import register_lsp_features

from codeloop.edits.textedits import Pos, TextEdit, apply_text_edits

VSCODE_LIKE = {"proposalReview": True, "approvals": True, "events": True, "diagnostics": True, "save": True}


def _converter():
    conv = default_converter()
    keep = lambda obj, cls: cls(**obj)  # noqa: E731  custom messages stay dicts
    for cls in (JsonRPCRequestMessage, JsonRPCResponseMessage, JsonRPCNotification):
        conv.register_structure_hook(cls, keep)
    return conv


def _plain(value: Any) -> Any:
    if isinstance(value, dict):
        return {k: _plain(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_plain(v) for v in value]
    return value


@dataclass
class Doc:
    uri: str
    text: str
    version: int
    language: str = "python"


@dataclass
class Editor:
    client: LanguageClient
    root: Path
    docs: dict[str, Doc] = field(default_factory=dict)
    events: list[dict[str, Any]] = field(default_factory=list)
    terminal: list[tuple[str, dict[str, Any]]] = field(default_factory=list)
    reviews: list[dict[str, Any]] = field(default_factory=list)
    approvals: list[dict[str, Any]] = field(default_factory=list)
    applied_edits: list[dict[str, Any]] = field(default_factory=list)
    message_requests: list[lsp.ShowMessageRequestParams] = field(default_factory=list)
    resolved: list[dict[str, Any]] = field(default_factory=list)
    # Handlers a test sets. They may be async.
    on_review: Callable[[dict[str, Any]], Any] = lambda p: {"decision": "accept"}
    on_approval: Callable[[dict[str, Any]], Any] = lambda p: {"answer": "allow_once"}
    on_message_request: Callable[[lsp.ShowMessageRequestParams], Any] = lambda p: None
    before_apply: Callable[[dict[str, Any]], Any] | None = None
    # A stale versioned edit: "refuse" answers applied: false (VS Code); "drop" answers
    # applied: true and applies nothing (Neovim's "Buffer … newer than edits").
    stale_edits: str = "refuse"
    diagnostics_for: Callable[[str], list[dict[str, Any]]] = lambda uri: []
    _changed: asyncio.Event = field(default_factory=asyncio.Event)

    # -- documents ---------------------------------------------------------------

    def uri(self, rel: str) -> str:
        return (self.root / rel).resolve().as_uri()

    def open(self, rel: str, text: str | None = None, language: str = "python") -> Doc:
        uri = self.uri(rel)
        if text is None:
            text = (self.root / rel).read_text()
        doc = Doc(uri, text, 1, language)
        self.docs[uri] = doc
        self.client.text_document_did_open(
            lsp.DidOpenTextDocumentParams(text_document=lsp.TextDocumentItem(uri=uri, language_id=language, version=1, text=text))
        )
        return doc

    def type_text(self, rel_or_uri: str, edits: list[TextEdit]) -> Doc:
        """The user types: apply edits to the buffer and send an incremental didChange."""
        uri = rel_or_uri if rel_or_uri.startswith("file:") else self.uri(rel_or_uri)
        doc = self.docs[uri]
        doc.text = apply_text_edits(doc.text, edits)
        doc.version += 1
        # Incremental changes are applied in order; send them back to front so ranges hold.
        changes = [
            lsp.TextDocumentContentChangePartial(
                range=lsp.Range(
                    start=lsp.Position(line=e.start.line, character=e.start.character),
                    end=lsp.Position(line=e.end.line, character=e.end.character),
                ),
                text=e.new_text,
            )
            for e in sorted(edits, key=lambda e: (e.start.line, e.start.character), reverse=True)
        ]
        self.client.text_document_did_change(
            lsp.DidChangeTextDocumentParams(
                text_document=lsp.VersionedTextDocumentIdentifier(uri=uri, version=doc.version), content_changes=changes
            )
        )
        return doc

    def insert_line(self, rel: str, line: int, text: str) -> Doc:
        return self.type_text(rel, [TextEdit(Pos(line, 0), Pos(line, 0), text)])

    def save(self, uri: str) -> None:
        doc = self.docs[uri]
        path = Path(uri.removeprefix("file://"))
        path.write_text(doc.text)
        self.client.text_document_did_save(
            lsp.DidSaveTextDocumentParams(text_document=lsp.TextDocumentIdentifier(uri=uri), text=doc.text)
        )

    # -- chat ---------------------------------------------------------------------

    async def chat(self, text: str, session_id: str | None = None, **extra: Any) -> dict[str, Any]:
        params: dict[str, Any] = {"text": text, **extra}
        if session_id:
            params["sessionId"] = session_id
        result = await self.client.protocol.send_request_async("codeloop/chat/start", params)
        return dict(result)

    def turn_events(self, turn_id: str) -> list[dict[str, Any]]:
        return [e["event"] for e in self.events if e.get("turnId") == turn_id]

    async def wait_for(self, predicate: Callable[[], Any], timeout: float = 30.0, what: str = "condition") -> Any:
        deadline = asyncio.get_running_loop().time() + timeout
        while True:
            value = predicate()
            if value:
                return value
            remaining = deadline - asyncio.get_running_loop().time()
            if remaining <= 0:
                raise AssertionError(f"timed out waiting for {what}; events: {[e['event'].get('type') for e in self.events][-30:]}")
            self._changed.clear()
            try:
                await asyncio.wait_for(self._changed.wait(), min(remaining, 0.2))
            except TimeoutError:
                pass

    async def turn_end(self, turn_id: str, timeout: float = 60.0) -> dict[str, Any]:
        return await self.wait_for(
            lambda: next((e for e in self.turn_events(turn_id) if e["type"] == "turnEnd"), None),
            timeout,
            f"turnEnd of {turn_id}",
        )

    def text_of(self, turn_id: str) -> str:
        return "".join(e["text"] for e in self.turn_events(turn_id) if e["type"] == "textDelta")

    def poke(self) -> None:
        self._changed.set()


async def _maybe_await(value: Any) -> Any:
    if isinstance(value, Awaitable):
        return await value
    return value


def start_config(env: dict[str, str]) -> ClientServerConfig:
    def factory() -> LanguageClient:
        client = LanguageClient(converter_factory=_converter)
        register_lsp_features(client)
        return client

    return ClientServerConfig(server_command=[sys.executable, "-m", "codeloop", "lsp"], client_factory=factory, server_env=env)


def install_handlers(editor: Editor) -> None:
    client = editor.client

    @client.feature("codeloop/event")
    def on_event(params: Any) -> None:
        editor.events.append(_plain(params))
        editor.poke()

    for name in ("started", "output", "exited"):

        def make(kind: str):
            def on_terminal(params: Any) -> None:
                editor.terminal.append((kind, _plain(params)))
                editor.poke()

            return on_terminal

        client.feature(f"codeloop/terminal/{name}")(make(name))

    @client.feature("codeloop/proposal/resolved")
    def on_resolved(params: Any) -> None:
        editor.resolved.append(_plain(params))
        editor.poke()

    @client.feature("codeloop/proposal/review")
    async def on_review(params: Any) -> Any:
        params = _plain(params)
        editor.reviews.append(params)
        editor.poke()
        return await _maybe_await(editor.on_review(params))

    @client.feature("codeloop/approval/request")
    async def on_approval(params: Any) -> Any:
        params = _plain(params)
        editor.approvals.append(params)
        editor.poke()
        return await _maybe_await(editor.on_approval(params))

    @client.feature("codeloop/document/save")
    def on_save(params: Any) -> Any:
        saved = []
        for uri in _plain(params)["uris"]:
            if uri in editor.docs:
                editor.save(uri)
                saved.append(uri)
        return {"saved": saved}

    @client.feature("codeloop/diagnostics/get")
    def on_diagnostics(params: Any) -> Any:
        out = {}
        for entry in _plain(params)["uris"]:
            out[entry["uri"]] = editor.diagnostics_for(entry["uri"])
        return {"diagnostics": out}

    @client.feature(lsp.WINDOW_SHOW_MESSAGE_REQUEST)
    async def on_message_request(params: lsp.ShowMessageRequestParams) -> Any:
        editor.message_requests.append(params)
        editor.poke()
        title = await _maybe_await(editor.on_message_request(params))
        return lsp.MessageActionItem(title=title) if title else None

    @client.feature(lsp.WORKSPACE_APPLY_EDIT)
    async def on_apply(params: lsp.ApplyWorkspaceEditParams) -> lsp.ApplyWorkspaceEditResult:
        raw = client.protocol._converter.unstructure(params)
        editor.applied_edits.append(raw)
        editor.poke()
        if editor.before_apply is not None:
            veto = await _maybe_await(editor.before_apply(raw))
            if veto is False:
                return lsp.ApplyWorkspaceEditResult(applied=False, failure_reason="the document changed")
        # Check every version first (all or nothing), like VS Code.
        for change in params.edit.document_changes or []:
            if isinstance(change, lsp.TextDocumentEdit):
                doc = editor.docs.get(change.text_document.uri)
                version = change.text_document.version
                if doc is not None and version is not None and version != doc.version:
                    if editor.stale_edits == "drop":
                        return lsp.ApplyWorkspaceEditResult(applied=True)
                    return lsp.ApplyWorkspaceEditResult(applied=False, failure_reason=f"version {version} != {doc.version}")
        for change in params.edit.document_changes or []:
            if isinstance(change, lsp.CreateFile):
                if change.uri not in editor.docs:
                    editor.open(Path(change.uri.removeprefix("file://")).relative_to(editor.root).as_posix(), "")
            elif isinstance(change, lsp.TextDocumentEdit):
                uri = change.text_document.uri
                if uri not in editor.docs:
                    rel = Path(uri.removeprefix("file://")).relative_to(editor.root).as_posix()
                    editor.open(rel)
                edits = [
                    TextEdit(Pos(e.range.start.line, e.range.start.character), Pos(e.range.end.line, e.range.end.character), e.new_text)
                    for e in change.edits
                ]
                editor.type_text(uri, edits)
        return lsp.ApplyWorkspaceEditResult(applied=True)


def capabilities(codeloop: dict[str, bool] | None, *, apply_edit: bool = True, progress: bool = True,
                 show_document: bool = False) -> lsp.ClientCapabilities:
    return lsp.ClientCapabilities(
        workspace=lsp.WorkspaceClientCapabilities(
            apply_edit=apply_edit,
            workspace_edit=lsp.WorkspaceEditClientCapabilities(
                document_changes=True,
                resource_operations=[lsp.ResourceOperationKind.Create],
            ),
        ),
        window=lsp.WindowClientCapabilities(
            work_done_progress=progress,
            show_document=lsp.ShowDocumentClientCapabilities(support=True) if show_document else None,
        ),
        experimental={"codeloop": codeloop} if codeloop else None,
    )


async def start_editor(root: Path, env: dict[str, str], codeloop: dict[str, bool] | None = VSCODE_LIKE,
                       settings: dict[str, Any] | None = None, **caps: Any) -> Editor:
    client = await start_config(env).start()
    editor = Editor(client, root)
    install_handlers(editor)
    await client.initialize_session(
        lsp.InitializeParams(
            capabilities=capabilities(codeloop, **caps),
            root_uri=root.resolve().as_uri(),
            workspace_folders=[lsp.WorkspaceFolder(uri=root.resolve().as_uri(), name="ws")],
            initialization_options={"settings": settings or {}},
        )
    )
    return editor


async def stop_editor(editor: Editor) -> None:
    try:
        await asyncio.wait_for(editor.client.shutdown_session(), 15)
    finally:
        await editor.client.stop()
