"""The shell analysis' two tables: per-command checkers (``CHECKERS``) and commands that
run other commands (``NESTED``). Teaching the analysis a command is one function and
one table entry; these tests do exactly that and watch the policy use it."""

from __future__ import annotations

from pathlib import Path

import pytest

from codeloop.policy import PermissionPolicy, PermissionRequest
from codeloop.policy.shell import CHECKERS, NESTED, analyze, checker_for
from codeloop.policy.shell import checkers as checkers_mod
from codeloop.policy.shell.checkers import Cmd, check_default, check_mkfs
from codeloop.policy.shell.model import Part, Word, _Scope
from codeloop.policy.shell.nested import Runner


@pytest.fixture
def world(tmp_path: Path) -> tuple[Path, Path]:
    home = tmp_path / "home"
    root = home / "proj"
    root.mkdir(parents=True)
    return root.resolve(), home


def test_every_name_dispatches_to_its_own_checker() -> None:
    for name, checker in CHECKERS.items():
        assert checker_for(name) is checker, name
    assert checker_for("mkfs.ext4") is check_mkfs  # a name prefix
    assert checker_for("ls") is check_default and checker_for("no-such-tool") is check_default


def test_a_new_checker_is_one_function_and_one_entry(world: tuple[Path, Path], monkeypatch: pytest.MonkeyPatch) -> None:
    root, home = world

    def check_nuke(c: Cmd) -> bool:
        c.rec.add("catastrophic", "nuke", f"nukes {' '.join(c.argv)}", c.i)
        return False

    before = analyze("nuke everything && ls", root, root, home)
    assert [f.code for f in before.findings] == [] and before.read_only == [False, True]
    monkeypatch.setitem(CHECKERS, "nuke", check_nuke)
    after = analyze("sudo nuke everything && ls", root, root, home)
    assert [(f.level, f.code, f.part) for f in after.findings if f.code == "nuke"] == [("catastrophic", "nuke", 0)]
    policy = PermissionPolicy(root, mode="bypass", user_settings=None, config_home=home / "config", home=home)
    assert policy.decide(PermissionRequest("Bash", "timeout 5 nuke it", root)).action == "deny"


def test_a_new_nested_command_is_one_function_and_one_entry(world: tuple[Path, Path], monkeypatch: pytest.MonkeyPatch) -> None:
    root, home = world

    def run_via(p: Runner, part: Part, name: str, args: list[Word], scope: _Scope, depth: int) -> None:
        if args:  # `via 'CODE'`: runs CODE with a shell
            p.run_string(part, args[0], scope, "via", depth)

    assert [p.argv for p in analyze("via 'rm -rf /'", root, root, home).parsed.parts] == [["via", "rm -rf /"]]
    monkeypatch.setitem(NESTED, "via", run_via)
    a = analyze("via 'rm -rf /'", root, root, home)
    assert [p.argv for p in a.parsed.parts] == [["via", "rm -rf /"], ["rm", "-rf", "/"]]
    assert [f.code for f in a.findings] == ["rm-root"]


def test_checkers_skip_the_output_option_scan_only_where_the_old_chain_did() -> None:
    # the deleters ran before the generic `--output=F`/`-o F` scan; every other checker after it
    assert checkers_mod.WITHOUT_OUTPUT_OPTIONS == frozenset({checkers_mod.check_delete})
