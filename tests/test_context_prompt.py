import subprocess
from pathlib import Path

import pytest

from codeloop.context.prompt import STATIC_PROMPT, EditorContext, PromptBuilder


def _git(root: Path, *args: str) -> None:
    subprocess.run(["git", "-C", str(root), *args], check=True, capture_output=True)


@pytest.fixture
def repo(tmp_path: Path) -> Path:
    (tmp_path / "AGENTS.md").write_text("Always run `make test` before finishing.\n")
    pkg = tmp_path / "pkg" / "sub"
    pkg.mkdir(parents=True)
    (tmp_path / "pkg" / "AGENTS.md").write_text("pkg rule: no global state\n")
    (pkg / "CLAUDE.md").write_text("sub rule: tabs only\n")
    (pkg / "mod.py").write_text("x = 1\n")
    _git(tmp_path, "init", "-q", "-b", "trunk")
    _git(tmp_path, "-c", "user.email=a@b", "-c", "user.name=t", "add", "-A")
    _git(tmp_path, "-c", "user.email=a@b", "-c", "user.name=t", "commit", "-qm", "first commit here")
    (tmp_path / "new.txt").write_text("untracked\n")
    return tmp_path


async def test_static_prefix_is_stable_and_first(repo: Path):
    b = PromptBuilder(repo)
    a1 = await b.build()
    a2 = await b.build(EditorContext(open_files=["a.py"], selection="x", selection_path="a.py"), mode_note="Plan mode")
    assert a1.text.startswith(STATIC_PROMPT) and a2.text.startswith(STATIC_PROMPT)
    assert a1.text != a2.text
    assert "Plan mode" in a2.text and "a.py" in a2.text


async def test_environment_and_git(repo: Path):
    a = await PromptBuilder(repo).build()
    assert str(repo.resolve()) in a.text
    assert "Branch: trunk" in a.text
    assert "?? new.txt" in a.text
    assert "first commit here" in a.text


async def test_not_a_repo_is_fine(tmp_path: Path):
    a = await PromptBuilder(tmp_path).build()
    assert "# Git" not in a.text
    assert a.text.startswith(STATIC_PROMPT)


async def test_root_memory_always_nested_only_after_touch(repo: Path):
    b = PromptBuilder(repo)
    a = await b.build()
    assert "Always run `make test`" in a.text
    assert "pkg rule" not in a.text and "sub rule" not in a.text
    b.touch(repo / "pkg" / "sub" / "mod.py")
    a = await b.build()
    assert "pkg rule: no global state" in a.text and "sub rule: tabs only" in a.text
    # parents before children, root first
    assert a.text.index("make test") < a.text.index("pkg rule") < a.text.index("sub rule")
    names = [p.name for p in a.parts]
    assert "memory pkg/AGENTS.md" in names and "memory pkg/sub/CLAUDE.md" in names


async def test_budget_drops_lowest_priority_and_says_so(repo: Path):
    big_diag = "\n".join(f"src/file{i}.py:{i}: error: something is wrong here, number {i}" for i in range(400))
    editor = EditorContext(open_files=[f"src/f{i}.py" for i in range(30)], diagnostics_summary=big_diag)
    a = await PromptBuilder(repo, budget_tokens=400).build(editor, mode_note="Plan mode: read only")
    by = {p.name: p for p in a.parts}
    assert by["environment"].included and by["mode"].included
    assert by["memory AGENTS.md"].included
    # diagnostics outrank the open-file list: cut to fit, and the list is left out
    assert by["diagnostics"].included and by["diagnostics"].note.startswith("truncated from")
    assert "cut to fit the context budget" in by["diagnostics"].text
    assert not by["open files"].included
    assert "src/f0.py" not in a.text
    assert sum(p.tokens for p in a.parts if p.included and p.name != "static instructions") <= 400
    assert "# Left out to save context" in a.text
    left = a.text.split("# Left out to save context")[1]
    assert "diagnostics" in left and "open files" in left
    report = a.render_report()
    assert "left out" in report or "truncated" in report
    assert "static instructions" in report and "of a 400-token budget" in report


async def test_everything_fits_nothing_left_out(repo: Path):
    a = await PromptBuilder(repo).build(EditorContext(open_files=["a.py"]))
    assert "Left out" not in a.text
    assert all(p.included and not p.note.startswith("truncated") for p in a.parts)
