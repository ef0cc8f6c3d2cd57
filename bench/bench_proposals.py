"""4. Proposals on a large file.

A 20,000-line Python file and 10 scattered edits (renames inside a line, an inserted
line, a deleted line, a replaced block). We time what the language server does to turn
the ChangeSet into a proposal: ``build_file_proposal`` (hunks, unified diff, per-hunk
diffs, minimal TextEdits) plus the LSP WorkspaceEdit (``codeloop.lsp.editing.workspace_edit``)
serialised as it goes on the wire. The TextEdits are compared with a whole-file
replace: their number and total size (replaced range text + new text).
"""

from __future__ import annotations

import json
import random
import statistics
import tempfile
import time
from pathlib import Path
from typing import Any

from common import result, row

from codeloop.edits.change import FileChange
from codeloop.edits.textedits import apply_text_edits, offset_at
from codeloop.services.proposals import EditOp, build_file_proposal
from codeloop.tools.workspace import Workspace

LINES = 20_000
EDITS = 10


def make_file(n: int) -> str:
    out = []
    for i in range(n // 4):
        out.append(f"def handler_{i}(request, value={i}):\n")
        out.append(f"    result = compute(request, value) + {i % 97}\n")
        out.append("    return result\n")
        out.append("\n")
    return "".join(out)


def scatter_edits(text: str, k: int, seed: int = 7) -> str:
    lines = text.splitlines(keepends=True)
    rng = random.Random(seed)
    spots = sorted(rng.sample(range(10, len(lines) - 10, 4), k), reverse=True)  # back to front
    for j, at in enumerate(spots):
        kind = j % 4
        if kind == 0:  # rename inside a line
            lines[at] = lines[at].replace("handler_", "endpoint_")
        elif kind == 1:  # insert a line
            lines.insert(at + 1, "    log.debug('value %s', value)\n")
        elif kind == 2:  # delete a line
            del lines[at + 1]
        else:  # replace a small block
            lines[at + 1 : at + 3] = ["    result = await compute_async(request, value)\n", "    return result or None\n"]
    return "".join(lines)


class _Docs:
    def uri(self, path: Path) -> str:
        return path.as_uri()


def edit_size(old: str, e: Any) -> int:
    """Characters an edit touches: the replaced range plus its new text."""
    a, b = offset_at(old, e.start), offset_at(old, e.end)
    return (b - a) + len(e.new_text)


def main(quick: bool = False) -> dict[str, Any]:
    from pygls.protocol import default_converter

    from codeloop.lsp.editing import workspace_edit

    repeats = 3 if quick else 20
    old = make_file(LINES)
    new = scatter_edits(old, EDITS)
    converter = default_converter()
    times: list[float] = []
    wire_sizes: list[int] = []
    with tempfile.TemporaryDirectory(prefix="codeloop-bench-") as tmp:
        root = Path(tmp)
        path = root / "big.py"
        path.write_text(old)
        ws = Workspace(root)
        change = FileChange(path, old, new, base_version=3)
        proposal = None
        for _ in range(repeats + 1):
            t0 = time.perf_counter()
            proposal = build_file_proposal(ws, change, "utf-16")
            edit = workspace_edit([EditOp(path, 3, proposal.edits)], _Docs().uri)
            wire = json.dumps(converter.unstructure(edit))
            times.append(time.perf_counter() - t0)
            wire_sizes.append(len(wire))
    times = times[1:]  # the first run warms caches
    assert proposal is not None
    edits = proposal.edits
    assert apply_text_edits(old, edits) == new, "the TextEdits do not reproduce the new text"
    sizes = [edit_size(old, e) for e in edits]
    whole = len(old) + len(new)
    spans = [e.end.line - e.start.line + 1 for e in edits]
    p50 = statistics.median(times) * 1000
    local = len(edits) <= EDITS and max(spans) <= 3
    rows = [
        row("proposal compute (diff + TextEdits + WorkspaceEdit JSON), median", round(p50, 2), "ms",
            target="< 50 ms", met=p50 < 50),
        row("proposal compute, max", round(max(times) * 1000, 2), "ms"),
        row("TextEdits", len(edits), "", reference=1, target=f"≤ {EDITS}, each around one change", met=local),
        row("TextEdits total size (range + new text)", sum(sizes), "chars", reference=whole,
            target="edits only around the changes", met=local and sum(sizes) < 0.01 * whole),
        row("WorkspaceEdit on the wire", wire_sizes[-1], "bytes", reference=len(json.dumps(new))),
    ]
    notes = [
        f"File: {LINES} lines, {len(old):,} chars; {EDITS} scattered edits; {len(proposal.hunks)} hunks; "
        f"unified diff {len(proposal.diff):,} chars. Reference for sizes: one whole-file replace.",
        f"Lines spanned per TextEdit: {spans}.",
    ]
    return result("proposals", "Proposals on a large file", rows, notes,
                  times_ms=[round(t * 1000, 3) for t in times], edits=len(edits), edit_sizes=sizes,
                  whole_file_chars=whole, hunks=len(proposal.hunks), diff_chars=len(proposal.diff))


if __name__ == "__main__":
    print(json.dumps(main(quick=True), indent=2))
