"""6. Token efficiency and cost as providers bill it: prompt tokens and characters
summed over a scripted session, codeloop against a naive loop that resends everything
untruncated and against the seed peer openclaude-ollama, run side by side against the
same scripted model.

Billing: providers (OpenAI, Anthropic, DeepSeek, Gemini, vLLM/SGLang prefix caching)
serve the longest prefix a request shares with an earlier one from cache, at a fraction
of the price. Here a request's cached part is the longest prefix (in characters of its
tools, then its messages, serialized as JSON) it shares with any earlier request of the
same loop, and cached input is billed at 10% (CACHED_PRICE): billed = uncached + 0.1 x
cached.

The session (30 tool steps in 3 user turns of 10): a 3,000-line file read 6 times with
small edits between the reads (two re-reads come right after an edit, while the earlier
read is still in the context; the others later), a command printing 4,000 lines run 6
times, one grep, and small steps (list_dir, glob, reads of small files; the last step
of turn 2 re-reads an unchanged small file). The scripted model sends the same calls to
both loops.

Tokens are counted with ``codeloop.context.tokens.count_messages`` on the request
bodies the scripted model actually received (messages and tool schemas), for both.

codeloop: a real ``AgentSession`` with default settings (budgets, read memo, elision of
old results, compaction), model "gpt-4o" (128k window). The naive loop (below): the same
system prompt, tool schemas and line numbering, tools that return everything (whole
files, whole command output), no budgets, memo, elision or compaction.

Besides the sums, the benchmark checks that the model can still get any line: every cut
result says exactly how to get the rest; every elided result says exactly how to get it
again; the re-read of an unchanged file says so; a re-read after an edit sends what
changed while the earlier read is in the context, and the whole range once it is not.
"""

from __future__ import annotations

import asyncio
import json
import os
import re
import subprocess
import sys
import tempfile
from pathlib import Path
from typing import Any

from common import result, row
from scripted_model import Call, Keyed, Script, ScriptedModel, Text, ToolCalls

from codeloop.core.events import Event
from codeloop.core.ports import ApprovalDecision, ApprovalRequest
from codeloop.runtime.session import AgentSession, Ports
from codeloop.config import Settings
from codeloop.context.tokens import TOKENIZER_NAME, count_message, count_messages
from codeloop.edits.disk import DiskChangeApplier
from codeloop.tools.text import numbered

MODEL = "gpt-4o"
CACHED_PRICE = 0.1  # cached input, as a share of the input price
PEER = Path(__file__).resolve().parents[2] / "shared" / "peers" / "openclaude-ollama"
BIG = "app/big.py"
BIG_LINES = 3000
LOG_LINES = 4000
SMALL = [f"app/util{i}.py" for i in range(8)]


# -- the workspace and the session ------------------------------------------------------------


def make_workspace(base: Path) -> Path:
    root = base / "ws"
    (root / "app").mkdir(parents=True)
    big = []
    for i in range(BIG_LINES // 6):
        big += [
            f"def process_item_{i}(item, config):\n",
            f"    \"\"\"Handle item {i} according to the configuration.\"\"\"\n",
            f"    value = item.get('field_{i % 37}', {i})\n",
            "    if value is None:\n",
            f"        raise ValueError('missing field for item {i}')\n",
            f"    return transform(value, config.scale * {i % 11})\n",
        ]
    (root / BIG).write_text("".join(big))
    for k, rel in enumerate(SMALL):
        (root / rel).write_text("".join(f"def helper_{k}_{j}(x):\n    return x * {j}\n\n" for j in range(27)))
    (root / "tools").mkdir()
    (root / "tools" / "report.py").write_text(
        "for i in range(%d):\n    print(f'test_module_{i // 40}.py::test_case_{i} PASSED  [{i * 100 // %d:3d}%%]')\n"
        % (LOG_LINES, LOG_LINES)
    )
    git = ["git", "-c", "user.name=bench", "-c", "user.email=bench@example.invalid"]
    subprocess.run(git + ["init", "-q"], cwd=root, check=True)
    subprocess.run(git + ["add", "-A"], cwd=root, check=True)
    subprocess.run(git + ["commit", "-qm", "init"], cwd=root, check=True)
    return root


def _edit(n: int) -> Call:
    i = 100 + n * 97  # scattered through the file
    return Call("edit_file", {"path": BIG, "old_string": f"    value = item.get('field_{i % 37}', {i})\n",
                              "new_string": f"    value = item.get('field_{i % 37}', default={i})\n"})


def session_steps() -> list[list[Call]]:
    """Some re-reads of the big file come right after an edit (the earlier read is
    still in the context: codeloop sends what changed), others come later (the
    earlier read was elided: codeloop sends the file again)."""
    read_big = Call("read_file", {"path": BIG})
    cmd = Call("run_command", {"command": f"{sys.executable} tools/report.py"})
    small = [Call("read_file", {"path": p}) for p in SMALL]
    return [
        [Call("list_dir", {"path": "."}), Call("glob", {"pattern": "**/*.py"}), read_big, _edit(0), read_big,
         small[0], cmd, Call("grep", {"pattern": "def process_item_1\\d\\b"}), small[1], cmd],
        [small[2], _edit(1), read_big, _edit(2), read_big, cmd, Call("list_dir", {"path": "app"}), small[3], cmd,
         small[1]],  # the last one re-reads an unchanged file
        [_edit(3), read_big, cmd, Call("glob", {"pattern": "app/*.py"}), small[5], _edit(4), read_big, cmd,
         small[6], small[7]],
    ]


def scenario() -> Keyed:
    turns = session_steps()
    branches = {}
    for t, calls in enumerate(turns):
        steps: list[Any] = [ToolCalls([c]) for c in calls] + [Text(f"Turn {t + 1} done.")]
        branches[f"turn {t + 1}:"] = Script(steps, name=f"turn {t + 1}")
    # A compaction request (no tools) gets a summary whatever the user message.
    return _SummaryFirst(Keyed(branches))


class _SummaryFirst:
    def __init__(self, inner: Keyed) -> None:
        self.inner = inner

    def __call__(self, req: Any) -> Any:
        if not req.tools:
            return Text("Summary: reading and editing app/big.py, running tools/report.py; all tests pass.")
        return self.inner(req)


USER = ["turn 1: look around, then improve app/big.py and run the report",
        "turn 2: continue with the next edits",
        "turn 3: finish the edits and check again"]


# -- codeloop ------------------------------------------------------------------------------------


class _Sink:
    def __init__(self) -> None:
        self.notices: list[str] = []

    def emit(self, event: Event) -> None:
        if event.type == "notice":
            self.notices.append(getattr(event, "message", ""))


class _Allow:
    async def approve(self, request: ApprovalRequest) -> ApprovalDecision:
        return ApprovalDecision("allow_once")


async def run_codeloop(root: Path, base_url: str, batch: int | None = None, headroom: float | None = None,
                       keep: int | None = None) -> list[str]:
    extra = {"keep_tool_output": keep} if keep is not None else {}
    settings = Settings(model=MODEL, base_url=base_url, api_key="sk-bench", mode="bypass", max_retries=0, **extra)
    sink = _Sink()
    session = AgentSession(settings, root, Ports(sink=sink, approver=_Allow(), changes=DiskChangeApplier(root=root)))
    if batch is not None:
        session.view.batch = batch
    if headroom is not None:
        session.view.headroom = headroom
    try:
        for text in USER:
            end = await session.send(text)
            if end.status != "done":
                raise RuntimeError(f"codeloop turn ended {end.status}: {end.message}")
    finally:
        await session.close()
    return sink.notices


# -- the naive loop ---------------------------------------------------------------------------


async def naive_tool(root: Path, name: str, args: dict[str, Any]) -> str:
    """Everything, untruncated."""
    if name == "read_file":
        text = (root / args["path"]).read_text()
        return "\n".join(numbered(n, line) for n, line in enumerate(text.splitlines(), 1))
    if name == "edit_file":
        p = root / args["path"]
        p.write_text(p.read_text().replace(args["old_string"], args["new_string"], 1))
        return f"Edited {args['path']}."
    if name == "run_command":
        proc = await asyncio.create_subprocess_shell(args["command"], cwd=root, stdout=asyncio.subprocess.PIPE,
                                                     stderr=asyncio.subprocess.STDOUT)
        out, _ = await proc.communicate()
        return out.decode() + f"\nexit code: {proc.returncode}"
    from codeloop.tools.search import find_rg

    rg = find_rg() or "rg"
    if name == "grep":
        argv = [rg, "-n", "-e", args["pattern"], args.get("path", ".")]
    elif name == "glob":
        argv = [rg, "--files", "-g", args["pattern"], args.get("path", ".")]
    elif name == "list_dir":
        argv = ["ls", "-p", args.get("path", ".")]
    else:
        return f"unknown tool {name}"
    proc = await asyncio.create_subprocess_exec(*argv, cwd=root, stdout=asyncio.subprocess.PIPE)
    out, _ = await proc.communicate()
    return out.decode()


async def run_naive(root: Path, base_url: str, system: str, tools: list[dict[str, Any]]) -> None:
    from openai import AsyncOpenAI

    client = AsyncOpenAI(base_url=base_url, api_key="sk-bench", max_retries=0)
    messages: list[dict[str, Any]] = [{"role": "system", "content": system}]
    for text in USER:
        messages.append({"role": "user", "content": text})
        while True:
            resp = await client.chat.completions.create(model=MODEL, messages=messages, tools=tools)
            msg = resp.choices[0].message
            calls = msg.tool_calls or []
            entry: dict[str, Any] = {"role": "assistant", "content": msg.content}
            if calls:
                entry["tool_calls"] = [{"id": c.id, "type": "function",
                                        "function": {"name": c.function.name, "arguments": c.function.arguments}}
                                       for c in calls]
            messages.append(entry)
            if not calls:
                break
            for c in calls:
                out = await naive_tool(root, c.function.name, json.loads(c.function.arguments))
                messages.append({"role": "tool", "tool_call_id": c.id, "content": out})
    await client.close()


# -- the peer: openclaude-ollama --------------------------------------------------------------


def peer_call(call: Call) -> Call:
    """The same step in the peer's tool names (Read, Write, Edit, Bash, Grep, Glob)."""
    a = call.arguments
    if call.name == "read_file":
        return Call("Read", {"path": a["path"]})
    if call.name == "edit_file":
        return Call("Edit", {"file_path": a["path"], "old_string": a["old_string"], "new_string": a["new_string"]})
    if call.name == "write_file":
        return Call("Write", {"file_path": a["path"], "content": a["content"]})
    if call.name == "run_command":
        return Call("Bash", {"command": a["command"]})
    if call.name == "grep":
        return Call("Grep", {"pattern": a["pattern"], **({"path": a["path"]} if "path" in a else {})})
    if call.name == "glob":
        return Call("Glob", {"pattern": a["pattern"]})
    if call.name == "list_dir":
        return Call("Bash", {"command": f"ls -p {a.get('path', '.')}"})
    raise ValueError(call.name)


def peer_scenario() -> Any:
    branches = {}
    for t, calls in enumerate(session_steps()):
        steps: list[Any] = [ToolCalls([peer_call(c)]) for c in calls] + [Text(f"Turn {t + 1} done.")]
        branches[f"turn {t + 1}:"] = Script(steps, name=f"peer turn {t + 1}")
    return _SummaryFirst(Keyed(branches))


def peer_available() -> bool:
    return (PEER / "src" / "agent.py").is_file()


def run_peer(root: Path, base_url: str) -> None:
    """The peer's own REPL (python -m src), one line per user turn, as its NOTE.md says."""
    env = {**os.environ, "OPENAI_BASE_URL": base_url, "OPENAI_API_KEY": "x", "MODEL": MODEL,
           "PYTHONPATH": str(PEER)}
    proc = subprocess.run([sys.executable, "-m", "src", "--max-turns", "40", "--quiet"], cwd=root, env=env,
                          input="\n".join(USER) + "\n", capture_output=True, text=True, timeout=600)
    if proc.returncode != 0:
        raise RuntimeError(f"the peer failed ({proc.returncode}): {proc.stderr[-2000:]}")


# -- measuring ---------------------------------------------------------------------------------


def serialized(body: dict[str, Any]) -> str:
    """A request as a provider's prefix cache sees it: the tools, then the messages."""
    head = json.dumps(body.get("tools") or [], ensure_ascii=False, separators=(",", ":"))
    return head + "".join(json.dumps(m, ensure_ascii=False, separators=(",", ":")) for m in body.get("messages", []))


def billing(model: ScriptedModel) -> dict[str, Any]:
    """Characters sent, served from cache (longest prefix shared with an earlier request)
    and billed (uncached + CACHED_PRICE x cached), over the session."""
    seen: list[str] = []
    sent = cached = 0
    for r in model.chat_requests:
        text = serialized(r.body)
        best = max((len(os.path.commonprefix([text, earlier])) for earlier in seen), default=0)
        seen.append(text)
        sent += len(text)
        cached += best
    uncached = sent - cached
    return {"sent": sent, "cached": cached, "uncached": uncached, "billed": uncached + CACHED_PRICE * cached,
            "hit_rate": cached / sent if sent else 0.0, "requests": len(model.chat_requests)}



def request_tokens(model: ScriptedModel) -> list[int]:
    return [count_messages(r.body.get("messages", []), r.body.get("tools")) for r in model.chat_requests]


ELIDED = "[Old result elided"


def checks(model: ScriptedModel) -> dict[str, Any]:
    """Can the model still get every line? Look at the tool results codeloop sent."""
    last = model.chat_requests[-1]
    calls: dict[str, tuple[str, dict[str, Any]]] = {}
    results: list[tuple[str, dict[str, Any], str]] = []
    seen_ids: set[str] = set()
    big_rereads: list[tuple[bool, str]] = []  # (the earlier read was in the request that asked, result)
    small_reread_in_view = False
    notes: set[str] = set()
    previous: list[dict[str, Any]] = []
    for r in model.chat_requests:
        for m in r.messages:
            for c in m.get("tool_calls") or []:
                calls[c["id"]] = (c["function"]["name"], json.loads(c["function"]["arguments"] or "{}"))
            text = m.get("content") if isinstance(m.get("content"), str) else ""
            if m.get("role") == "tool" and text.startswith(ELIDED):
                notes.add(text)
            if m.get("role") == "tool" and m["tool_call_id"] not in seen_ids:
                seen_ids.add(m["tool_call_id"])
                name, args = calls.get(m["tool_call_id"], ("?", {}))
                results.append((name, args, text))
                if name == "read_file" and args.get("path") == BIG and any(
                    n == "read_file" and a.get("path") == BIG for n, a, _ in results[:-1]
                ):
                    # The latest whole read of it in the request that asked: verbatim, or elided?
                    whole_reads = [
                        str(p.get("content")) for p in previous
                        if p.get("role") == "tool" and calls.get(p["tool_call_id"]) == ("read_file", {"path": BIG})
                        and not str(p.get("content")).startswith("(")  # not a diff or an "unchanged" note
                    ]
                    in_view = bool(whole_reads) and not whole_reads[-1].startswith(ELIDED)
                    big_rereads.append((in_view, text))
                if name == "read_file" and args.get("path") == SMALL[1]:
                    earlier = [str(p.get("content")) for p in previous if p.get("role") == "tool"
                               and calls.get(p["tool_call_id"]) == ("read_file", {"path": SMALL[1]})]
                    small_reread_in_view = bool(earlier) and not earlier[-1].startswith(ELIDED)
        previous = r.messages
    how = re.compile(r"(offset=\d+|read_command_output|later offset|\"fresh\": true|fresh=true)")
    cut_results = [(n, a, t) for n, a, t in results if ("left out" in t or "lines cut" in t or "more lines" in t)]
    cut_ok = all(how.search(t) for _, _, t in cut_results)
    again = re.compile(r"(call read_file with \{\"path\"|call read_command_output with id=|call it again)")
    # The re-read of an unchanged small file: "unchanged" while the earlier read is in the
    # context, the whole text once it was elided (the model no longer holds it).
    small1 = [t for n, a, t in results if n == "read_file" and a.get("path") == SMALL[1]]
    unchanged_note = len(small1) >= 2 and (
        "unchanged" in small1[-1] if small_reread_in_view else small1[-1].startswith("1\t")
    )
    as_diff = [t for in_view, t in big_rereads if in_view]
    whole = [t for in_view, t in big_rereads if not in_view]
    return {
        "tool_results": len(results),
        "cut_results": len(cut_results),
        "cut_results_say_how_to_get_more": cut_ok,
        "elided_results": len(notes),
        "elided_say_how_to_get_again": all(again.search(t) for t in notes),
        "reread_unchanged_says_so": unchanged_note,
        "rereads_in_view": len(as_diff),
        "rereads_in_view_as_diff": sum(1 for t in as_diff if "changed since your read" in t),
        "rereads_elided": len(whole),
        "rereads_elided_sent_whole": sum(1 for t in whole if t.startswith("1\t") and "changed since" not in t),
        "big_read_chars": [len(t) for n, a, t in results if n == "read_file" and a.get("path") == BIG],
        "compacted": any(m.get("content", "").startswith("[Summary of the earlier") for m in last.messages
                         if isinstance(m.get("content"), str)),
    }


def biggest(model: ScriptedModel, n: int = 5) -> list[dict[str, Any]]:
    last = model.chat_requests[-1].messages
    sized = sorted(((count_message(m), i, m) for i, m in enumerate(last)), key=lambda x: -x[0])[:n]
    return [{"index": i, "role": m.get("role"), "tokens": t, "start": str(m.get("content") or "")[:80]}
            for t, i, m in sized]


def measure_codeloop(tmp: Path, batch: int | None = None, headroom: float | None = None,
                     keep: int | None = None) -> tuple[ScriptedModel, list[str], Path]:
    root = make_workspace(tmp)
    model = ScriptedModel(scenario(), models=[MODEL])
    with model:
        notices = asyncio.run(run_codeloop(root, model.base_url, batch, headroom, keep))
    return model, notices, root


# (batch tokens, headroom) points of the sweep; (0, 1.0) elides as soon as a result is due.
SWEEP = [(0, 1.0), (4_000, 1.0), (8_000, 0.75), (8_000, 0.5), (16_000, 0.5), (24_000, 0.5), (32_000, 0.5)]


def main(quick: bool = False) -> dict[str, Any]:
    # The session is small enough to run whole in quick mode too (a few seconds).
    with tempfile.TemporaryDirectory(prefix="codeloop-bench-") as tmp:
        ours_model, notices, ours_root = measure_codeloop(Path(tmp) / "a")
        ours = request_tokens(ours_model)
        first = ours_model.chat_requests[0].body
        system = next(m["content"] for m in first["messages"] if m["role"] == "system")
        tools = first["tools"]
        check = checks(ours_model)
        top_ours = biggest(ours_model)
        failures = list(ours_model.failures)
        bill_ours = billing(ours_model)
        naive_root = make_workspace(Path(tmp) / "b")
        with ScriptedModel(scenario(), models=[MODEL]) as naive_model:
            asyncio.run(run_naive(naive_root, naive_model.base_url, system, tools))
            naive = request_tokens(naive_model)
            failures += naive_model.failures
        bill_naive = billing(naive_model)
        same_files = (ours_root / BIG).read_text() == (naive_root / BIG).read_text()
        bill_peer = None
        if peer_available():
            peer_root = make_workspace(Path(tmp) / "c")
            with ScriptedModel(peer_scenario(), models=[MODEL]) as peer_model:
                run_peer(peer_root, peer_model.base_url)
                failures += peer_model.failures
            bill_peer = billing(peer_model)
        # The same session with elision as soon as a result is due (batch 0): it elides old
        # results several times, so it proves that every elided result says how to get it
        # again and that re-reads after an elision are sent whole.
        eager_model, _, _ = measure_codeloop(Path(tmp) / "e", 0, 1.0)
        failures += eager_model.failures
        eager = checks(eager_model)
        sweep = []
        if not quick:
            for i, (batch, headroom) in enumerate(SWEEP):
                m, _, _ = measure_codeloop(Path(tmp) / f"s{i}", batch, headroom)
                failures += m.failures
                b = billing(m)
                sweep.append({"batch": batch, "headroom": headroom, **b, "tokens": sum(request_tokens(m))})
    if failures:
        raise RuntimeError(f"scripted model failures: {failures}")
    total_ours, total_naive = sum(ours), sum(naive)
    ratio = total_ours / total_naive
    billed_vs_naive = bill_ours["billed"] / bill_naive["billed"]
    rows = [
        row("prompt tokens over the session", total_ours, "tokens", reference=total_naive,
            target="≤ 0.03× the naive loop", met=ratio <= 0.03),
        row("prompt characters sent", bill_ours["sent"], "chars", reference=bill_naive["sent"],
            target="≤ 0.03× the naive loop", met=bill_ours["sent"] <= 0.03 * bill_naive["sent"]),
        row("billed input (cached at 10%)", round(bill_ours["billed"]), "chars", reference=round(bill_naive["billed"]),
            target="≤ 0.04× the naive loop", met=billed_vs_naive <= 0.04),
        row("served from cache", f"{bill_ours['hit_rate']:.0%}", "", reference=f"{bill_naive['hit_rate']:.0%}",
            target="≥ 90%", met=bill_ours["hit_rate"] >= 0.9),
    ]
    if bill_peer is not None:
        rows += [
            row("billed input vs openclaude-ollama", round(bill_ours["billed"]), "chars",
                reference=round(bill_peer["billed"]), target="≤ 0.5× openclaude-ollama",
                met=bill_ours["billed"] <= 0.5 * bill_peer["billed"]),
        ]
    rows += [
        row("model requests", len(ours), "", reference=len(naive)),
        row("largest request", max(ours), "tokens", reference=max(naive)),
    ]
    yes = {True: "yes", False: "no"}
    c = check
    rows += [
        row(f"cut results ({c['cut_results']}) say exactly how to get the rest",
            yes[c["cut_results_say_how_to_get_more"]], target="yes", met=c["cut_results_say_how_to_get_more"]),
        row(f"elided old results ({c['elided_results']}; {eager['elided_results']} when eliding at once) say "
            "exactly how to get them again",
            yes[c["elided_say_how_to_get_again"] and eager["elided_say_how_to_get_again"]], target="yes",
            met=c["elided_say_how_to_get_again"] and eager["elided_say_how_to_get_again"] and eager["elided_results"] > 0),
        row("re-read of an unchanged file: says so while the earlier read is in the context, else sent whole",
            yes[c["reread_unchanged_says_so"]], target="yes", met=c["reread_unchanged_says_so"]),
        row(f"re-reads of {BIG} after an edit, earlier read still in the context: sent as what changed",
            f"{c['rereads_in_view_as_diff']} of {c['rereads_in_view']}", target="all",
            met=c["rereads_in_view"] > 0 and c["rereads_in_view_as_diff"] == c["rereads_in_view"]),
        row(f"re-reads of {BIG} after the earlier read was elided (when eliding at once): sent whole",
            f"{eager['rereads_elided_sent_whole']} of {eager['rereads_elided']}", target="all",
            met=eager["rereads_elided"] > 0 and eager["rereads_elided_sent_whole"] == eager["rereads_elided"]
            and c["rereads_elided_sent_whole"] == c["rereads_elided"]),
    ]
    loops = {"naive loop": bill_naive, "codeloop": bill_ours}
    if bill_peer is not None:
        loops["openclaude-ollama"] = bill_peer
    table = ["| loop | requests | prompt chars sent | served from cache | billed as (chars) | vs naive |",
             "|---|---:|---:|---:|---:|---:|"]
    for name, b in loops.items():
        table.append(f"| {name} | {b['requests']} | {b['sent']:,} | {b['hit_rate']:.0%} | {b['billed']:,.0f} | "
                     f"{b['billed'] / bill_naive['billed']:.3f}× |")
    notes = [
        f"Tokenizer: {TOKENIZER_NAME}. Reference: the naive loop (same system prompt, tool schemas and "
        "line numbering, everything resent untruncated), and openclaude-ollama (../shared/peers, unmodified, "
        "its own tools mapped from the same steps; it starts a new conversation for every user turn).",
        "Cache rule: the longest prefix (characters of the tools, then the messages, as JSON) a request shares "
        f"with an earlier request of the same loop; cached input billed at {CACHED_PRICE:.0%}.",
        *table,
        f"Result sizes of the reads of {BIG} (chars): {check['big_read_chars']}.",
        f"Compaction happened: {check['compacted']}. Notices: {notices[:3]}",
        f"Edits landed identically in the codeloop and naive loops: {same_files}.",
    ]
    if sweep:
        notes.append("Elision batches (batch tokens, headroom) -> chars sent, uncached, billed:")
        notes += [f"  ({p['batch']:,}, {p['headroom']}) -> sent {p['sent']:,}, uncached {p['uncached']:,}, "
                  f"billed {p['billed']:,.0f}, cache {p['hit_rate']:.0%}" for p in sweep]
    return result("tokens", "Token efficiency and billed cost over a scripted session", rows, notes,
                  codeloop_per_request=ours, naive_per_request=naive, ratio=round(ratio, 4), checks=check,
                  largest_messages_codeloop=top_ours, billing={k: v for k, v in loops.items()}, sweep=sweep,
                  eager_checks=eager)


if __name__ == "__main__":
    print(json.dumps(main(quick=True), indent=2))
