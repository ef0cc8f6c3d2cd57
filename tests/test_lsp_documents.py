"""The language server's documents: ``FastTextDocument`` applies an incremental change by
slicing the text; it must give exactly what pygls' own ``TextDocument`` gives (lines split the
same way, UTF-16 positions, out-of-range positions clamped or dropped the same way), for any
text and any change. And ``trim_params``: the code-action request keeps only the diagnostics
its handler would look at."""

from __future__ import annotations

from hypothesis import given, settings
from hypothesis import strategies as st
from lsprotocol import types as lsp
from pygls.workspace import PositionCodec, TextDocument

from codeloop.lsp.actions import MAX_FIX_ACTIONS, trim_params
from codeloop.lsp.documents import FastTextDocument, use_fast_documents

PIECES = st.sampled_from(["a", "bc", "\n", "\r\n", "\r", "é", "😀", " ", "x\n", "\u2028", "\t"])
TEXT = st.lists(PIECES, max_size=40).map("".join)
POSITION = st.builds(lambda line, ch: lsp.Position(line=line, character=ch), st.integers(0, 14), st.integers(0, 9))
ENCODING = st.sampled_from([lsp.PositionEncodingKind.Utf16, lsp.PositionEncodingKind.Utf8, lsp.PositionEncodingKind.Utf32])


@settings(max_examples=1500, deadline=None)
@given(TEXT, POSITION, POSITION, TEXT, ENCODING, st.booleans())
def test_an_incremental_change_gives_what_pygls_gives(source, a, b, text, encoding, ordered):
    if ordered and (b.line, b.character) < (a.line, a.character):
        a, b = b, a
    change = lsp.TextDocumentContentChangePartial(range=lsp.Range(start=a, end=b), text=text)
    ours = FastTextDocument("file:///x.py", source, position_codec=PositionCodec(encoding))
    theirs = TextDocument("file:///x.py", source, position_codec=PositionCodec(encoding))
    ours.apply_change(change)
    theirs.apply_change(change)
    assert ours.source == theirs.source


def test_a_change_in_a_20k_line_file_lands_where_it_should():
    source = "".join(f"line {i} é😀\n" for i in range(20_000))
    doc = FastTextDocument("file:///big.py", source)
    doc.apply_change(lsp.TextDocumentContentChangePartial(
        range=lsp.Range(start=lsp.Position(line=12_345, character=5), end=lsp.Position(line=12_346, character=0)),
        text="X\n"))
    lines = doc.source.splitlines()
    assert len(lines) == 20_000 and lines[12_345] == "line X" and lines[12_346] == "line 12346 é😀"


def test_the_workspace_makes_fast_documents():
    from pygls.workspace import Workspace

    ws = Workspace(None, sync_kind=lsp.TextDocumentSyncKind.Incremental)
    use_fast_documents(ws)
    ws.put_text_document(lsp.TextDocumentItem(uri="file:///a.py", language_id="python", version=1, text="a\nb\n"))
    doc = ws.get_text_document("file:///a.py")
    assert isinstance(doc, FastTextDocument)
    ws.update_text_document(lsp.VersionedTextDocumentIdentifier(uri="file:///a.py", version=2), lsp.TextDocumentContentChangePartial(
        range=lsp.Range(start=lsp.Position(line=1, character=0), end=lsp.Position(line=1, character=1)), text="B"))
    assert ws.get_text_document("file:///a.py").source == "a\nB\n"


def _diag(line: int) -> dict:
    return {"range": {"start": {"line": line, "character": 0}, "end": {"line": line, "character": 3}}, "message": f"m{line}"}


def test_trim_keeps_only_the_diagnostics_on_the_requested_lines():
    params = {"textDocument": {"uri": "file:///a.py"},
              "range": {"start": {"line": 40, "character": 0}, "end": {"line": 42, "character": 0}},
              "context": {"diagnostics": [_diag(i) for i in range(200)] + [{"range": "broken"}]}}
    trim_params(params)
    kept = params["context"]["diagnostics"]
    assert [d["message"] for d in kept if isinstance(d.get("range"), dict)] == ["m40", "m41", "m42"]
    assert {"range": "broken"} in kept  # left for the parser to report


def test_trim_leaves_a_short_list_and_odd_params_alone():
    few = [_diag(i) for i in range(MAX_FIX_ACTIONS)]
    params = {"range": {"start": {"line": 0, "character": 0}, "end": {"line": 0, "character": 0}}, "context": {"diagnostics": list(few)}}
    trim_params(params)
    assert params["context"]["diagnostics"] == few
    odd = {"range": None, "context": {"diagnostics": [_diag(1)] * 50}}
    trim_params(odd)
    assert len(odd["context"]["diagnostics"]) == 50
