"""The command corpus: every entry decided in every mode, against its expectation.

tests/policy_corpus.json holds the commands with the decision expected in each mode
(ask, acceptEdits, plan, bypass), optionally with their own allow/ask/deny rules, and
the decision expected when the command runs in a sandbox that contains it
(``sandboxed``, the autoAllow rule; the same as ``expect`` when absent). This test
decides them all, both ways, and asserts, besides each expectation:

* no catastrophic command is allowed in any mode (bypass included), sandboxed or not;
* sandboxing changes only what is asked because it is unknown: never a risky, secret,
  catastrophic or rule-decided command, never plan or bypass mode, and never to stricter;
* every compound command is at least as strict as its strictest part decided alone
  (a command with a forbidden part is refused or asked, never allowed);

and writes the figures to tests/artifacts/policy_corpus_summary.json.
"""

from __future__ import annotations

import json
from collections import Counter
from pathlib import Path

import pytest

from codeloop.policy import PermissionPolicy, PermissionRequest, parse_command
from codeloop.policy.types import MODES

CORPUS = Path(__file__).with_name("policy_corpus.json")
ARTIFACTS = Path(__file__).parent / "artifacts"
RANK = {"allow": 0, "ask": 1, "deny": 2}


def load_corpus() -> list[dict]:
    return json.loads(CORPUS.read_text(encoding="utf-8"))


@pytest.fixture(scope="module")
def world(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    base = tmp_path_factory.mktemp("corpus")
    home = base / "home"
    root = home / "proj"
    (root / "src").mkdir(parents=True)
    (root / "README.md").write_text("hello\n")
    return {"home": home, "root": root.resolve(), "config": base / "config"}


def _settings(entry: dict) -> dict:
    return {k: entry.get(k, []) for k in ("allow", "ask", "deny")}


def run_corpus(world: dict[str, Path]) -> tuple[list[dict], dict]:
    root, home = world["root"], world["home"]
    policy = PermissionPolicy(root, user_settings=None, config_home=world["config"], home=home)
    assert policy.problems == []
    results = []
    for entry in load_corpus():
        cmd = entry["cmd"].replace("@ROOT@", str(root))
        cwd = root / entry["cwd"] if entry.get("cwd") else root
        policy.set_user_settings(_settings(entry))
        assert policy.problems == [], (entry, policy.problems)
        got = {}
        sandboxed = {}
        for mode in MODES:
            policy.mode = mode
            got[mode] = policy.decide(PermissionRequest("Bash", cmd, cwd))
            sandboxed[mode] = policy.decide(PermissionRequest("Bash", cmd, cwd, sandboxed=True))
        # each part decided on its own, for the compound property
        parsed = parse_command(cmd, cwd=cwd, home=home, root=root)
        part_texts = [p.text for p in parsed.parts if p.text and p.origin == "command"]
        parts_alone = {}
        if len(part_texts) > 1:
            for mode in MODES:
                policy.mode = mode
                parts_alone[mode] = [policy.decide(PermissionRequest("Bash", t, cwd)).action for t in part_texts]
        # A rule spelling out the whole command string allows exactly that string (what
        # "always allow" writes for `curl ... | sh`); it is the one thing that may allow a
        # compound command whose parts alone would be asked.
        whole = f"Bash({' '.join(cmd.split())})" in entry.get("allow", [])
        results.append({"entry": entry, "cmd": cmd, "got": got, "sandboxed": sandboxed, "parts_alone": parts_alone,
                        "compound": len(part_texts) > 1 and not whole})
    return results, {"root": str(root)}


@pytest.fixture(scope="module")
def corpus_results(world: dict[str, Path]) -> list[dict]:
    results, _ = run_corpus(world)
    return results


def test_corpus_size() -> None:
    entries = load_corpus()
    assert len(entries) >= 150
    cmds = [(e["cmd"], tuple(e.get("allow", [])), tuple(e.get("deny", [])), tuple(e.get("ask", [])), e.get("cwd"))
            for e in entries]
    assert len(set(cmds)) == len(cmds), "duplicate corpus entries"
    for e in entries:
        assert len(e["expect"].split()) == 4, e
        assert len(e.get("sandboxed", e["expect"]).split()) == 4, e
    assert sum(1 for e in entries if "sandboxed" in e) >= 50


def test_corpus_expectations(corpus_results: list[dict]) -> None:
    mismatches = []
    for r in corpus_results:
        expected = dict(zip(MODES, r["entry"]["expect"].split()))
        got = {m: d.action for m, d in r["got"].items()}
        if got != expected:
            mismatches.append(f"{r['cmd']!r} rules={_settings(r['entry'])}: expected {expected}, got {got} "
                              f"({r['got']['ask'].reason})")
    assert not mismatches, f"{len(mismatches)} mismatches:\n" + "\n".join(mismatches)


def test_sandboxed_expectations(corpus_results: list[dict]) -> None:
    """autoAllow: a sandboxed command asked only because it is unknown runs without asking."""
    mismatches = []
    for r in corpus_results:
        expected = dict(zip(MODES, r["entry"].get("sandboxed", r["entry"]["expect"]).split()))
        got = {m: d.action for m, d in r["sandboxed"].items()}
        if got != expected:
            mismatches.append(f"{r['cmd']!r} rules={_settings(r['entry'])}: sandboxed, expected {expected}, got {got} "
                              f"({r['sandboxed']['ask'].reason})")
    assert not mismatches, f"{len(mismatches)} mismatches:\n" + "\n".join(mismatches)


def test_sandboxing_relaxes_only_unknown_commands_in_ask_modes(corpus_results: list[dict]) -> None:
    relaxed = 0
    for r in corpus_results:
        tags = set(r["entry"].get("tags", []))
        for mode in MODES:
            plain, boxed = r["got"][mode], r["sandboxed"][mode]
            assert RANK[boxed.action] <= RANK[plain.action], (r["cmd"], mode, plain, boxed)  # never stricter
            if boxed.action == plain.action:
                continue
            relaxed += 1
            assert mode in ("ask", "acceptEdits"), (r["cmd"], mode)
            assert plain.action == "ask" and boxed.action == "allow" and plain.rule is None
            assert not plain.confirm and not plain.catastrophic
            assert not tags & {"risky", "secret", "catastrophic", "deny-rule", "ask-rule", "parse", "dynamic"}, r["cmd"]
            assert "sandbox" in boxed.reason
    assert relaxed >= 100


def test_no_catastrophic_command_is_allowed(corpus_results: list[dict]) -> None:
    catastrophic = [r for r in corpus_results if "catastrophic" in r["entry"].get("tags", [])
                    and r["entry"]["expect"] == "deny deny deny deny"]
    assert len(catastrophic) >= 80
    for r in catastrophic:
        for mode, d in [*r["got"].items(), *r["sandboxed"].items()]:
            assert d.action == "deny", (r["cmd"], mode, d)
            assert d.catastrophic, (r["cmd"], mode, d)
            assert d.reason.startswith("refused"), d.reason


def test_compound_commands_are_as_strict_as_their_parts(corpus_results: list[dict]) -> None:
    compound = [r for r in corpus_results if r["compound"]]
    assert len(compound) >= 30
    for r in compound:
        for mode in MODES:
            worst = max(RANK[a] for a in r["parts_alone"][mode])
            assert RANK[r["got"][mode].action] >= worst, (r["cmd"], mode, r["parts_alone"][mode], r["got"][mode])


def test_write_summary(corpus_results: list[dict]) -> None:
    summary = summarize(corpus_results)
    ARTIFACTS.mkdir(exist_ok=True)
    (ARTIFACTS / "policy_corpus_summary.json").write_text(json.dumps(summary, indent=2) + "\n")
    print("\npolicy corpus:", json.dumps(summary, indent=2))
    assert summary["catastrophic_allowed_any_mode"] == 0
    assert summary["compound_with_forbidden_part_allowed"] == 0
    assert summary["expectation_mismatches"] == 0


def summarize(results: list[dict]) -> dict:
    per_mode = {m: Counter(r["got"][m].action for r in results) for m in MODES}
    cata = [r for r in results if any(d.catastrophic for d in r["got"].values())]
    expected_cata = [r for r in results if "catastrophic" in r["entry"].get("tags", [])]
    cata_allowed = sum(1 for r in expected_cata
                       if any(d.action == "allow" for d in [*r["got"].values(), *r["sandboxed"].values()]))
    compound = [r for r in results if r["compound"]]
    forbidden_pairs = 0
    leaks = 0
    compound_with_forbidden = set()
    for r in compound:
        for m in MODES:
            if any(a != "allow" for a in r["parts_alone"][m]):
                forbidden_pairs += 1
                compound_with_forbidden.add(r["cmd"] + repr(r["entry"].get("allow")))
                if r["got"][m].action == "allow":
                    leaks += 1
    mismatches = sum(
        1 for r in results
        if {m: d.action for m, d in r["got"].items()} != dict(zip(MODES, r["entry"]["expect"].split()))
    )
    sandboxed = {m: Counter(r["sandboxed"][m].action for r in results) for m in MODES}
    auto_allowed = sum(1 for r in results for m in MODES if r["sandboxed"][m].action != r["got"][m].action)
    return {
        "corpus_size": len(results),
        "sandboxed_by_mode": {m: dict(c) for m, c in sandboxed.items()},
        "sandboxed_auto_allowed": auto_allowed,
        "decisions": len(results) * len(MODES),
        "by_mode": {m: dict(c) for m, c in per_mode.items()},
        "catastrophic_commands": len(expected_cata),
        "catastrophic_flagged": len(cata),
        "catastrophic_allowed_any_mode": cata_allowed,
        "compound_commands": len(compound),
        "compound_with_forbidden_part": len(compound_with_forbidden),
        "compound_mode_pairs_with_forbidden_part": forbidden_pairs,
        "compound_with_forbidden_part_allowed": leaks,
        "expectation_mismatches": mismatches,
        "entries_with_own_rules": sum(1 for r in results if any(r["entry"].get(k) for k in ("allow", "ask", "deny"))),
    }
