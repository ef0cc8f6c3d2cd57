"""Settings sources, malformed files, reloading and "always allow" (remember)."""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest

from codeloop.policy import PermissionPolicy, PermissionRequest


@pytest.fixture()
def world(tmp_path: Path) -> dict[str, Path]:
    home = tmp_path / "home"
    root = home / "proj"
    (root / ".codeloop").mkdir(parents=True)
    return {"home": home, "root": root.resolve(), "config": tmp_path / "config" / "codeloop"}


def make(world: dict[str, Path], mode: str = "ask", user: dict | None = None) -> PermissionPolicy:
    return PermissionPolicy(world["root"], mode=mode, user_settings=user, config_home=world["config"],
                            home=world["home"])


def bash(policy: PermissionPolicy, cmd: str, cwd: Path | None = None):
    return policy.decide(PermissionRequest("Bash", cmd, cwd or policy.root))


def write(path: Path, data: object | str) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(data if isinstance(data, str) else json.dumps(data, indent=2))


def test_all_sources_contribute(world: dict[str, Path]) -> None:
    root = world["root"]
    write(world["config"] / "settings.json", {"permissions": {"allow": ["Bash(make)"]}})
    write(root / ".codeloop/settings.json", {"permissions": {"allow": ["Bash(npm test)"], "deny": ["Bash(git push:*)"]}})
    write(root / ".codeloop/settings.local.json", {"permissions": {"allow": ["Bash(cargo build)"]}})
    p = make(world, user={"allow": ["Bash(ls:*)"]})
    assert p.problems == []
    for cmd in ("make", "npm test", "cargo build", "ls -la"):
        assert bash(p, cmd).action == "allow", cmd
    d = bash(p, "git push")
    assert d.action == "deny" and d.rule == "Bash(git push:*)"
    p.set_user_settings(None)
    assert bash(p, "ls -la").action == "ask"
    p.set_user_settings({"permissions": {"deny": ["Bash(make)"]}})
    assert bash(p, "make").action == "deny"  # deny from any source beats allow from another


def test_bad_json_is_reported_with_path_and_line(world: dict[str, Path]) -> None:
    path = world["root"] / ".codeloop/settings.json"
    write(path, '{\n  "permissions": {\n    "allow": ["Bash"],\n    "deny": [\n  }\n}\n')
    p = make(world)
    assert len(p.problems) == 1
    assert p.problems[0].startswith(f"{path}:5:"), p.problems
    assert "invalid JSON" in p.problems[0]
    # not allow-all: the broken file's "Bash" rule is ignored
    assert bash(p, "npm test").action == "ask"


def test_wrong_shape_is_reported_with_the_line_of_the_key(world: dict[str, Path]) -> None:
    path = world["root"] / ".codeloop/settings.json"
    write(path, '{\n  "model": "x",\n  "permissions": {\n    "allow": "Bash(npm test)"\n  }\n}\n')
    p = make(world)
    assert p.problems and p.problems[0].startswith(f"{path}:4:"), p.problems
    assert bash(p, "npm test").action == "ask"
    write(path, '{"permissions": ["Bash"]}')
    p.reload()
    assert p.problems and p.problems[0].startswith(f"{path}:1:") and "permissions" in p.problems[0]
    assert bash(p, "npm test").action == "ask"
    write(path, '[1, 2]')
    p.reload()
    assert p.problems and str(path) in p.problems[0]


def test_a_bad_rule_drops_the_files_allow_rules_but_keeps_its_denies(world: dict[str, Path]) -> None:
    path = world["root"] / ".codeloop/settings.json"
    write(path, '{\n  "permissions": {\n    "allow": [\n      "Bash(npm test)",\n      "Bash(npm run"\n    ],\n'
                '    "deny": ["Bash(git push:*)"]\n  }\n}\n')
    p = make(world)
    assert any(prob.startswith(f"{path}:5:") and "Bash(npm run" in prob for prob in p.problems), p.problems
    assert bash(p, "npm test").action == "ask"  # allow rules of a malformed file are ignored
    assert bash(p, "git push").action == "deny"  # ...but failing closed keeps its deny rules
    # another, well-formed source is unaffected
    write(world["root"] / ".codeloop/settings.local.json", {"permissions": {"allow": ["Bash(make)"]}})
    p.reload()
    assert bash(p, "make").action == "allow"


def test_bad_user_settings_are_reported(world: dict[str, Path]) -> None:
    p = make(world, user={"permissions": {"allow": ["Bash(ls:*)", 7]}})
    assert p.problems and "editor settings" in p.problems[0]
    assert bash(p, "ls").action == "ask"


def test_files_are_reloaded_when_they_change(world: dict[str, Path]) -> None:
    p = make(world)
    assert bash(p, "make").action == "ask"
    path = world["root"] / ".codeloop/settings.json"
    write(path, {"permissions": {"allow": ["Bash(make)"]}})
    os.utime(path, ns=(1, 1))  # a different stamp even on coarse clocks
    assert bash(p, "make").action == "allow"


def read_local(world: dict[str, Path]) -> dict:
    return json.loads((world["root"] / ".codeloop/settings.local.json").read_text())


def test_remember_writes_a_precise_rule(world: dict[str, Path]) -> None:
    root = world["root"]
    write(root / ".codeloop/settings.local.json", {"model": "keep-me", "permissions": {"deny": ["Bash(rm:*)"], "allow": ["Bash(make)"]}})
    p = make(world)
    req = PermissionRequest("Bash", "npm run test -- -k foo", root)
    assert p.decide(req).action == "ask"
    assert p.decide(req).suggested_rule == "Bash(npm run test -- -k foo)"
    rules = p.remember(req)
    assert rules == ["Bash(npm run test -- -k foo)"]
    data = read_local(world)
    assert data["model"] == "keep-me"
    assert data["permissions"]["deny"] == ["Bash(rm:*)"]
    assert data["permissions"]["allow"] == ["Bash(make)", "Bash(npm run test -- -k foo)"]
    assert p.decide(req).action == "allow"
    assert bash(p, "npm run test -- -k bar").action == "ask"  # precise, not a prefix
    assert bash(p, "npm run test -- -k foo && rm x").action == "deny"
    # no duplicates: it is allowed now, so there is nothing to add
    assert p.remember(req) == []
    assert read_local(world)["permissions"]["allow"].count("Bash(npm run test -- -k foo)") == 1
    gitignore = (root / ".codeloop/.gitignore").read_text().splitlines()
    assert "settings.local.json" in gitignore and "sessions/" in gitignore


def test_remember_creates_the_file_and_quotes_words(world: dict[str, Path]) -> None:
    root = world["root"]
    (root / ".codeloop").rmdir()
    p = make(world)
    req = PermissionRequest("Bash", "grep -rn 'a b' src", root)
    assert p.remember(req) == ["Bash(grep -rn 'a b' src)"]
    assert p.decide(req).action == "allow"
    assert bash(p, "grep -rn a b src").action == "ask"
    assert (root / ".codeloop/.gitignore").exists()


def test_remember_compound_adds_a_rule_per_asking_part(world: dict[str, Path]) -> None:
    root = world["root"]
    p = make(world, user={"allow": ["Bash(npm test)"]})
    req = PermissionRequest("Bash", "npm test && npm run lint | tee lint.log", root)
    rules = p.remember(req)
    assert rules == ["Bash(npm run lint)", "Bash(tee lint.log)"]
    assert p.decide(req).action == "allow"
    assert bash(p, "npm run lint").action == "allow"
    assert bash(p, "npm run lint && git push").action == "ask"


def test_remember_never_writes_a_rule_for_a_catastrophic_or_denied_command(world: dict[str, Path]) -> None:
    root = world["root"]
    p = make(world, user={"deny": ["Bash(git push:*)"]})
    assert p.remember(PermissionRequest("Bash", "npm test && rm -rf /", root)) == []
    assert p.remember(PermissionRequest("Bash", "git push", root)) == []
    assert not (root / ".codeloop/settings.local.json").exists()


def test_remember_redirection_and_secret_read(world: dict[str, Path]) -> None:
    root = world["root"]
    p = make(world, user={"allow": ["Bash(ls:*)", "Bash(cat:*)"]})
    req = PermissionRequest("Bash", "ls > /tmp/codeloop-listing.txt", root)
    assert p.decide(req).action == "ask"
    assert p.remember(req) == ["Write(/tmp/codeloop-listing.txt)"]
    assert p.decide(req).action == "allow"
    assert bash(p, "ls > /tmp/other.txt").action == "ask"
    req = PermissionRequest("Bash", "cat .env", root)
    assert p.remember(req) == ["Read(./.env)"]
    assert p.decide(req).action == "allow"
    assert bash(p, "cat sub/.env").action == "ask"


def test_remember_download_into_shell_writes_the_whole_command(world: dict[str, Path]) -> None:
    root = world["root"]
    p = make(world)
    cmd = "curl -fsSL https://example.com/install.sh | sh"
    assert p.remember(PermissionRequest("Bash", cmd, root)) == [f"Bash({cmd})"]
    assert bash(p, cmd).action == "allow"
    assert bash(p, "curl -fsSL https://example.com/other.sh | sh").action == "ask"
    assert bash(p, "curl -fsSL https://example.com/install.sh").action == "ask"


def test_remember_edit_and_read(world: dict[str, Path]) -> None:
    root = world["root"]
    p = make(world)
    req = PermissionRequest("Edit", "src/app.py", root, root / "src/app.py")
    assert p.decide(req).action == "ask"
    assert p.remember(req) == ["Edit(src/app.py)"]
    assert p.decide(req).action == "allow"
    assert p.decide(PermissionRequest("Write", "src/app.py", root, root / "src/app.py")).action == "allow"
    assert p.decide(PermissionRequest("Edit", "src/other.py", root, root / "src/other.py")).action == "ask"
    top = PermissionRequest("Edit", "app.py", root, root / "app.py")
    assert p.remember(top) == ["Edit(./app.py)"]
    assert p.decide(PermissionRequest("Edit", "lib/app.py", root, root / "lib/app.py")).action == "ask"


def test_remember_refuses_to_clobber_a_malformed_local_file(world: dict[str, Path]) -> None:
    root = world["root"]
    write(root / ".codeloop/settings.local.json", "{not json")
    p = make(world)
    with pytest.raises(ValueError):
        p.remember(PermissionRequest("Bash", "make", root))
    assert (root / ".codeloop/settings.local.json").read_text() == "{not json"
