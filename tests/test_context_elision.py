"""The request view: old large tool results elided, the history itself untouched."""

from __future__ import annotations

import json
from pathlib import Path


from codeloop.context.elision import KEEP_STEPS, MIN_ELIDE_CHARS, elide, key_of
from codeloop.edits.disk import DiskChangeApplier
from codeloop.tools.base import ToolContext
from codeloop.tools.builtin import builtin_registry
from codeloop.tools.processes import ProcessManager
from codeloop.tools.workspace import Workspace

REGISTRY = builtin_registry()


def elided_note(tool: str, args: dict, text: str, pm: ProcessManager | None = None) -> str:
    """The note the tool itself writes for an elided result of its own."""
    ctx = ToolContext(Workspace(Path.cwd()), DiskChangeApplier(None), pm or ProcessManager())
    return REGISTRY.get(tool).elided_note(args, text, ctx)


def large(name: str) -> tuple[str, ...]:
    tool = REGISTRY.get(name)
    return tool.large_arguments if tool is not None else ()


def step(i: int, name: str, args: dict, result: str) -> list[dict]:
    call_id = f"c{i}"
    return [
        {"role": "assistant", "content": None,
         "tool_calls": [{"id": call_id, "type": "function",
                         "function": {"name": name, "arguments": json.dumps(args)}}]},
        {"role": "tool", "tool_call_id": call_id, "content": result},
    ]


def chars_count(text: str) -> int:
    return len(text) // 4  # a stand-in tokenizer: the rule, not the tokenizer, is under test


def stub(tool: str, args: dict, text: str) -> str:
    return f"[elided {tool} {args.get('path', '')} {len(text)}]"


def conversation(sizes: list[int]) -> list[dict]:
    msgs: list[dict] = [{"role": "user", "content": "go"}]
    for i, size in enumerate(sizes):
        msgs += step(i, "read_file", {"path": f"f{i}.py"}, "x" * size)
    return msgs


def results(view_messages: list[dict]) -> list[str]:
    return [m["content"] for m in view_messages if m["role"] == "tool"]


def test_the_last_steps_and_small_results_stay_big_old_ones_go():
    msgs = conversation([40_000, 500, 40_000, 40_000, 40_000])
    before = json.dumps(msgs)
    view = elide(msgs, stub, allowance=12_000, cap=100_000, count=chars_count)
    out = results(view.messages)
    assert json.dumps(msgs) == before, "the history itself is not changed"
    assert len(view.messages) == len(msgs), "the view lines up with the history, message for message"
    # 10,000 "tokens" each: the last KEEP_STEPS steps are verbatim whatever their size.
    assert out[-KEEP_STEPS:] == ["x" * 40_000] * KEEP_STEPS
    assert out[1] == "x" * 500  # small: verbatim
    assert out[0] == "[elided read_file f0.py 40000]" and out[2] == "[elided read_file f2.py 40000]"
    assert [e.call_id for e in view.elided] == ["c0", "c2"]
    assert view.elided[0].args == {"path": "f0.py"} and view.elided[0].text == "x" * 40_000


def test_size_times_age_decides_how_long_a_result_stays():
    # 2,000-"token" results (8,000 chars) with allowance 12,000 stay while age <= 6.
    msgs = conversation([8_000] * 10)
    out = results(elide(msgs, stub, allowance=12_000, cap=100_000, count=chars_count).messages)
    kept = [i for i, r in enumerate(out) if not r.startswith("[elided")]
    assert kept == [4, 5, 6, 7, 8, 9]  # ages 6..1
    # Small results live longer: 300 "tokens" each stay for 40 steps.
    msgs = conversation([1_200] * 10)
    out = results(elide(msgs, stub, allowance=12_000, cap=100_000, count=chars_count).messages)
    assert not any(r.startswith("[elided") for r in out)


def test_the_cap_bounds_what_old_results_may_hold():
    msgs = conversation([4_000] * 8)  # 1,000 "tokens" each
    out = results(elide(msgs, stub, allowance=1_000_000, cap=2_500, count=chars_count).messages)
    # The last two steps are always sent; of the older ones, the newest two fit the cap.
    assert [r.startswith("[elided") for r in out] == [True, True, True, True, False, False, False, False]


def test_once_elided_always_elided():
    msgs = conversation([8_000] * 4)
    view = elide(msgs, stub, allowance=100_000, cap=100_000, count=chars_count)
    assert not view.elided
    view = elide(msgs, stub, allowance=100_000, cap=100_000, already={"c0"}, count=chars_count)
    assert [e.call_id for e in view.elided] == ["c0"]
    # ... but never the latest steps (they are what the model is acting on).
    view = elide(msgs, stub, allowance=100_000, cap=100_000, already={"c3"}, count=chars_count)
    assert not view.elided


def test_small_results_are_never_elided():
    msgs = conversation([MIN_ELIDE_CHARS - 1] * 30)
    assert not elide(msgs, stub, allowance=0, cap=0, count=chars_count).elided


def test_large_arguments_of_old_writes_are_shortened_and_stay_json():
    content = "line\n" * 2_000
    msgs = [{"role": "user", "content": "go"}]
    msgs += step(0, "write_file", {"path": "gen/out.py", "content": content}, "Applied: wrote gen/out.py")
    msgs += step(1, "edit_file", {"path": "a.py", "old_string": "a", "new_string": "b"}, "Applied")
    msgs += step(2, "read_file", {"path": "a.py"}, "1\tb")
    msgs += step(3, "read_file", {"path": "a.py"}, "1\tb")
    view = elide(msgs, stub, allowance=1_000, cap=100_000, count=chars_count, large_arguments=large)
    args = json.loads(view.messages[1]["tool_calls"][0]["function"]["arguments"])
    assert args["path"] == "gen/out.py"
    assert "10,000 characters (2,001 lines) elided" in args["content"] and "read gen/out.py" in args["content"]
    assert view.messages[1]["tool_calls"][0]["id"] == "c0"
    assert [e.arguments for e in view.elided] == [True]
    assert key_of(view.elided[0].call_id, True) == "c0#args"
    # The small edit is untouched, and so is the history.
    assert view.messages[3] is msgs[3]
    assert json.loads(msgs[1]["tool_calls"][0]["function"]["arguments"])["content"] == content


def test_results_without_a_known_call_and_user_turns():
    msgs = [{"role": "user", "content": "one"}]
    msgs += step(0, "run_command", {"command": "make"}, "y" * 50_000)
    msgs += [{"role": "assistant", "content": "done"}, {"role": "user", "content": "two"}]
    msgs += step(1, "list_dir", {}, "a")
    msgs += step(2, "list_dir", {}, "a")
    msgs.append({"role": "tool", "tool_call_id": "nobody", "content": "z" * 50_000})  # orphaned: kept (age 1)
    view = elide(msgs, stub, allowance=100, cap=100, count=chars_count)
    assert results(view.messages)[0] == "[elided run_command  50000]"


# -- the notes -------------------------------------------------------------------------------


def test_read_note_gives_the_exact_call():
    note = elided_note("read_file", {"path": "app/big.py", "offset": 101, "limit": 50}, "1\ta\n2\tb")
    assert note.startswith("[Old result elided to keep the context small (7 characters, 2 lines).")
    assert 'call read_file with {"path": "app/big.py", "offset": 101, "limit": 50}' in note


async def test_command_note_points_at_the_kept_output_or_says_it_is_gone(tmp_path: Path):
    pm = ProcessManager(max_records=1)
    try:
        rec = await pm.run("seq 1 3", tmp_path, 10)
        text = f"1\n2\n3\nexit code: 0 (output id {rec.id})"
        note = elided_note("run_command", {"command": "seq 1 3"}, text, pm)
        assert "`seq 1 3` (exit code: 0 (output id cmd-1))" in note
        assert 'call read_command_output with id="cmd-1"' in note
        await pm.run("true", tmp_path, 10)  # cmd-1 is dropped (max_records=1)
        note = elided_note("run_command", {"command": "seq 1 3"}, text, pm)
        assert "no longer kept: run the command again" in note
    finally:
        await pm.shutdown()


def test_other_tools_are_called_again_with_the_same_arguments():
    note = elided_note("grep", {"pattern": "TODO", "path": "src"}, "src/a.py:1:TODO")
    assert 'It was grep with {"pattern": "TODO", "path": "src"}; call it again with the same arguments' in note


def test_a_large_old_patch_is_shortened_too():
    patch = "--- a/x.py\n+++ b/x.py\n@@ -1,1 +1,1 @@\n" + "-old\n+new\n" * 400
    msgs = [{"role": "user", "content": "go"}]
    msgs += step(0, "apply_patch", {"patch": patch}, "Applied: x.py")
    msgs += step(1, "list_dir", {}, "a")
    msgs += step(2, "list_dir", {}, "a")
    view = elide(msgs, stub, allowance=100, cap=100_000, count=chars_count, large_arguments=large)
    args = json.loads(view.messages[1]["tool_calls"][0]["function"]["arguments"])
    assert args["patch"].startswith("[4,") and "read the files it changed" in args["patch"]


async def test_command_note_takes_the_id_from_the_tools_own_lines(tmp_path: Path):
    """The output may mention other ids; the note names the one the tool result names."""
    pm = ProcessManager()
    try:
        first = await pm.run("echo one", tmp_path, 10)
        second = await pm.run("echo two", tmp_path, 10)
        text = f"see {first.id} for details\n" * 3 + f"exit code: 0 (output id {second.id})"
        note = elided_note("run_command", {"command": "make"}, text, pm)
        assert f'id="{second.id}"' in note and f'id="{first.id}"' not in note
        cut = f"head mentions {first.id}\n[... 10 lines cut; the full output is kept: call " \
              f'read_command_output(id="{second.id}", offset=2) to page through it]\ntail\nexit code: 0'
        assert f'id="{second.id}"' in elided_note("run_command", {"command": "make"}, cut, pm)
        page = elided_note("read_command_output", {"id": first.id}, f"1\tmentions {second.id}", pm)
        assert f'id="{first.id}"' in page
    finally:
        await pm.shutdown()


def test_old_images_are_elided_like_large_results_and_new_ones_stay():
    image = {"type": "image_url", "image_url": {"url": "data:image/png;base64," + "A" * 5000}}
    msgs = [{"role": "user", "content": [{"type": "text", "text": "look"}, image]}]
    for i in range(4):
        msgs += step(i, "list_dir", {}, "a")
    # allowance 1,000 "tokens" x steps: an image counts IMAGE_TOKENS, so it goes after one step
    view = elide(msgs, stub, allowance=1_000, cap=100_000, count=chars_count)
    parts = view.messages[0]["content"]
    assert parts[0] == {"type": "text", "text": "look"}
    assert parts[1]["type"] == "text" and "image was shown here" in parts[1]["text"]
    assert msgs[0]["content"][1] is image, "the history keeps the image"
    fresh = elide(msgs[:3], stub, allowance=1_000, cap=100_000, count=chars_count)
    assert fresh.messages[0]["content"][1] is image, "within the last steps the image stays"


def _views(sizes: list[int], batch: int, headroom: float = 1.0):
    """The view of each request of a conversation that grows by one step per request, with
    the keys elided so far carried from request to request (as the session does)."""
    already: set[str] = set()
    views = []
    for n in range(1, len(sizes) + 1):
        view = elide(conversation(sizes[:n]), stub, allowance=12_000, cap=1_000_000, count=chars_count,
                     already=already, batch=batch, headroom=headroom)
        already |= {key_of(e.call_id, e.arguments) for e in view.elided}
        views.append(view)
    return views


def test_batch_elision_keeps_each_request_a_prefix_extension_until_a_batch_is_due():
    sizes = [8_000] * 30  # 2,000 "tokens" a result: each is due some steps after it came
    views = _views(sizes, batch=6_000)
    rewrites = []
    for i in range(1, len(views)):
        before, now = views[i - 1].messages, views[i].messages
        if now[: len(before)] != before:
            rewrites.append(i)
    eager = _views(sizes, batch=0)
    eager_rewrites = [i for i in range(1, len(eager)) if eager[i].messages[: len(eager[i - 1].messages)] != eager[i - 1].messages]
    # without batches every request that makes a result due rewrites the history; with them,
    # the history is rewritten only when 6,000 tokens are due, several results at once
    assert eager_rewrites and rewrites and len(rewrites) < len(eager_rewrites) / 2, (rewrites, eager_rewrites)
    for i in rewrites:
        new = [e for e in views[i].elided if e.call_id not in {x.call_id for x in views[i - 1].elided}]
        assert sum(chars_count(e.text) for e in new) >= 6_000, (i, [e.call_id for e in new])
    # in the end it has elided what the eager rule has, but for what the last batch still holds
    assert {e.call_id for e in views[-1].elided} <= {e.call_id for e in eager[-1].elided}
    assert len(views[-1].elided) >= len(eager[-1].elided) - 6_000 // 2_000


def test_a_batch_with_headroom_clears_more_than_is_due():
    sizes = [8_000] * 30
    tight = _views(sizes, batch=6_000, headroom=0.5)
    plain = _views(sizes, batch=6_000, headroom=1.0)
    first = next(i for i in range(1, len(tight)) if tight[i].elided)
    # at its first batch the tightened rule elides at least as much as the plain one does at its own
    first_plain = next(i for i in range(1, len(plain)) if plain[i].elided)
    assert len(tight[first].elided) >= len(plain[first_plain].elided)
