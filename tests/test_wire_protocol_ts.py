"""The two sides of the custom protocol agree: ``vscode-extension/src/protocol.ts`` (the
extension's hand-written names and types) and ``server/codeloop/lsp/methods.py`` +
``lsp/wire.py`` (the server's).

Why parse protocol.ts rather than generate it from the models: the TS file is the
extension's own (it holds the subset of the wire the extension uses, with its own comments
and client capabilities), edited by people working on the extension; generating it would
put a build step and a generated file into the extension's tree. Parsing checks the two
hand-written sides against each other and fails here, with the disagreement named, when a
method name, a field, whether a field is always there, or a scalar type differs.

Rules, for each TS ``interface`` named like a wire model (matched by name):
- every TS field is a field of the model (by its camelCase wire name);
- a field the server *sends* (the model travels server -> client) that TS declares required
  is always sent by the server (required, or with a non-null default);
- a field the server *reads* (client -> server) that the model requires is required in TS;
- scalar types agree (string / number / boolean, and ``| null`` where the server sends null).
TS interfaces that are not wire models must be on a short allow-list.
"""

from __future__ import annotations

import re
import types
import typing
from pathlib import Path
from typing import Any, Literal, get_args, get_origin

import pytest
from conftest import ROOT
from pydantic import BaseModel

from codeloop.core import events as agent_events
from codeloop.lsp import methods as M
from codeloop.lsp import wire

PROTOCOL_TS = ROOT / "vscode-extension" / "src" / "protocol.ts"
# TS types that are not codeloop's wire (OpenAI's message shape, passed through as is).
NOT_WIRE = {"OpenAIMessage"}


def _strip_comments(src: str) -> str:
    src = re.sub(r"/\*.*?\*/", "", src, flags=re.S)
    return re.sub(r"//[^\n]*", "", src)


def _block(src: str, start: int) -> tuple[str, int]:
    """The text inside the braces opening at ``src[start] == '{'``, and the index after it."""
    depth = 0
    for i in range(start, len(src)):
        if src[i] == "{":
            depth += 1
        elif src[i] == "}":
            depth -= 1
            if depth == 0:
                return src[start + 1 : i], i + 1
    raise AssertionError("unbalanced braces in protocol.ts")


def _split_top(text: str, seps: str) -> list[str]:
    out, depth, cur = [], 0, []
    for ch in text:
        if ch in "{[(<":
            depth += 1
        elif ch in "}])>":
            depth -= 1
        if depth == 0 and ch in seps:
            out.append("".join(cur))
            cur = []
        else:
            cur.append(ch)
    out.append("".join(cur))
    return [x.strip() for x in out if x.strip()]


def _fields(body: str) -> dict[str, tuple[bool, str]]:
    """name -> (optional, type text) of an object type's body."""
    out = {}
    for part in _split_top(body, ";\n,"):
        m = re.match(r"^(\w+)(\?)?\s*:\s*(.+)$", part, re.S)
        assert m, f"cannot read the field {part!r} in protocol.ts"
        out[m.group(1)] = (bool(m.group(2)), " ".join(m.group(3).split()))
    return out


def parse_ts(src: str) -> tuple[dict[str, str], dict[str, dict], dict[str, list[dict]], dict[str, list[str]]]:
    src = _strip_comments(src)
    consts = dict(re.findall(r'export const (\w+)\s*=\s*"([^"]*)"', src))
    objects = {}
    for m in re.finditer(r"export const (\w+)\s*=\s*\{", src):
        body, _ = _block(src, m.end() - 1)
        objects[m.group(1)] = _fields(body)
    interfaces = {}
    for m in re.finditer(r"export interface (\w+)\s*\{", src):
        body, _ = _block(src, m.end() - 1)
        interfaces[m.group(1)] = _fields(body)
    unions: dict[str, list[dict]] = {}
    for m in re.finditer(r"export type (\w+)\s*=", src):
        rest = src[m.end():]
        variants = []
        i = 0
        while True:
            j = rest.find("{", i)
            stop = rest.find(";", i)
            if j < 0 or (0 <= stop < j):
                break
            body, end = _block(rest, j)
            variants.append(_fields(body))
            i = end
        if variants:
            unions[m.group(1)] = variants
    return consts, interfaces, unions, {k: list(v) for k, v in objects.items()}


@pytest.fixture(scope="module")
def ts():
    return parse_ts(PROTOCOL_TS.read_text())


# -- method names ------------------------------------------------------------------------------


def python_names() -> dict[str, str]:
    return {k: v for k, v in vars(M).items() if k.isupper() and isinstance(v, str)}


def test_every_method_and_command_name_agrees(ts):
    consts, _, _, objects = ts
    py = python_names()
    assert {k: v for k, v in consts.items()} == py, (
        "protocol.ts and lsp/methods.py disagree on names: "
        f"only in TS {sorted(set(consts.items()) - set(py.items()))}, only in Python {sorted(set(py.items()) - set(consts.items()))}"
    )
    assert sorted(objects["CLIENT_CAPABILITIES"]) == sorted(M.EXPERIMENTAL_FLAGS)


def test_every_custom_method_has_wire_models():
    tabled = set(wire.REQUESTS) | set(wire.NOTIFICATIONS) | set(wire.SERVER_NOTIFICATIONS) | set(wire.SERVER_REQUESTS)
    methods = {v for k, v in python_names().items() if v.startswith("codeloop/")}
    assert tabled == methods
    commands = {v for k, v in python_names().items() if k.startswith("CMD_")}
    assert set(wire.COMMAND_ARGS) <= commands


# -- shapes ---------------------------------------------------------------------------------


def _models() -> dict[str, type[wire.Wire]]:
    return {name: obj for name, obj in vars(wire).items() if isinstance(obj, type) and issubclass(obj, wire.Wire) and obj is not wire.Wire}


def _nested(model: type[BaseModel]) -> set[type[wire.Wire]]:
    out: set[type[wire.Wire]] = set()

    def walk(tp: Any) -> None:
        if isinstance(tp, type) and issubclass(tp, wire.Wire):
            if tp not in out:
                out.add(tp)
                for f in tp.model_fields.values():
                    walk(f.annotation)
            return
        for arg in get_args(tp):
            walk(arg)

    walk(model)
    return out


def directions() -> tuple[set[type], set[type]]:
    """(models the server sends, models the server reads), nested models included."""
    sent, read = set(), set()
    for params, result in wire.REQUESTS.values():
        read |= _nested(params)
        sent |= _nested(result)
    for params in wire.NOTIFICATIONS.values():
        read |= _nested(params)
    for params in wire.SERVER_NOTIFICATIONS.values():
        sent |= _nested(params)
    for params, result in wire.SERVER_REQUESTS.values():
        sent |= _nested(params)
        read |= _nested(result)
    for args in wire.COMMAND_ARGS.values():
        read |= _nested(args)
    return sent, read


def _ts_scalars(text: str) -> set[str]:
    return {p.strip() for p in _split_top(text, "|")}


def _py_scalars(tp: Any) -> set[str]:
    if tp is type(None):
        return {"null"}
    origin = get_origin(tp)
    if origin in (typing.Union, types.UnionType):
        out: set[str] = set()
        for a in get_args(tp):
            out |= _py_scalars(a)
        return out
    if origin is Literal:
        return {f'"{a}"' for a in get_args(tp)}
    return {str: {"string"}, int: {"number"}, float: {"number"}, bool: {"boolean"}}.get(tp, {"other"})


def test_every_ts_interface_matches_its_wire_model(ts):
    _, interfaces, _, _ = ts
    models = _models()
    sent, read = directions()
    unknown = sorted(set(interfaces) - set(models) - NOT_WIRE)
    assert not unknown, f"protocol.ts declares {unknown}, which lsp/wire.py does not have (add the models, or fix the names)"
    problems = []
    for name, fields in interfaces.items():
        if name in NOT_WIRE:
            continue
        model = models[name]
        by_alias = {(f.alias or n): (n, f) for n, f in model.model_fields.items()}
        for field, (optional, ts_type) in fields.items():
            if field not in by_alias:
                problems.append(f"{name}.{field}: in protocol.ts, not in wire.{name} ({sorted(by_alias)})")
                continue
            _, info = by_alias[field]
            always_sent = info.is_required() or info.default is not None or info.default_factory is not None
            if model in sent and not optional and not always_sent:
                problems.append(f"{name}.{field}: required in protocol.ts, but the server may omit it")
            py = _py_scalars(info.annotation)
            ts_scalar = _ts_scalars(ts_type)
            for s in ts_scalar & {"string", "number", "boolean", "null"}:
                if s == "null" and model in read and model not in sent:
                    continue
                if s not in py:
                    problems.append(f"{name}.{field}: protocol.ts says {ts_type}, the server has {info.annotation}")
            if model in sent and "null" in py and info.is_required() and "null" not in ts_scalar:
                problems.append(f"{name}.{field}: the server sends null, protocol.ts does not allow it ({ts_type})")
        if model in read:
            for alias, (_n, info) in by_alias.items():
                if info.is_required() and (alias not in fields or fields[alias][0]):
                    problems.append(f"{name}.{alias}: the server requires it, protocol.ts has it {'optional' if alias in fields else 'missing'}")
    assert not problems, "protocol.ts and lsp/wire.py disagree:\n" + "\n".join(problems)


def test_the_review_decision_union_matches(ts):
    _, _, unions, _ = ts
    variants = unions["ProposalDecision"]
    fields = {(f.alias or n) for n, f in wire.ReviewDecision.model_fields.items()}
    allowed = set(get_args(wire.ReviewDecision.model_fields["decision"].annotation))
    for v in variants:
        assert set(v) <= fields, f"ProposalDecision variant {v} has fields the server ignores"
        decision = v["decision"][1].strip('"')
        assert decision in allowed


def test_the_agent_event_union_matches_the_events(ts):
    _, _, unions, _ = ts
    classes = {c.type: c for c in vars(agent_events).values() if isinstance(c, type) and issubclass(c, agent_events.Event) and c is not agent_events.Event}
    seen = set()
    for v in unions["AgentEvent"]:
        kind = v["type"][1].strip('"')
        assert kind in classes, f"AgentEvent type {kind!r} is not an event the server sends"
        seen.add(kind)
        cls = classes[kind]
        keys = {"type"} | {agent_events._camel(f.name) for f in __import__("dataclasses").fields(cls)}
        assert set(v) <= keys, f"AgentEvent {kind}: {sorted(set(v) - keys)} are not in {cls.__name__}.to_dict()"
    assert seen == set(classes), f"events the extension does not declare: {sorted(set(classes) - seen)}"


def test_the_parser_sees_a_disagreement():
    """The checks above are not vacuous: a renamed field and a missing method are caught."""
    src = PROTOCOL_TS.read_text()
    broken = src.replace("proposalId: string; status: string;", "proposalID: string; status: string;")
    broken = broken.replace('export const PROCESS_KILL = "codeloop/process/kill";', 'export const PROCESS_KILL = "codeloop/process/stop";')
    assert broken != src
    consts, interfaces, _, _ = parse_ts(broken)
    assert consts["PROCESS_KILL"] != M.PROCESS_KILL
    assert "proposalID" in interfaces["ProposalResolvedParams"]
    with pytest.raises(AssertionError):
        test_every_ts_interface_matches_its_wire_model(parse_ts(broken))
    with pytest.raises(AssertionError):
        test_every_method_and_command_name_agrees(parse_ts(broken))


def test_protocol_ts_exists():
    assert isinstance(PROTOCOL_TS, Path) and PROTOCOL_TS.exists()


def test_the_hot_path_argument_builders_match_their_models():
    built = wire.fix_args("file:///a.py", (1, 2), (1, 5), "undefined name 'x'", 1, "pyflakes", "F821")
    model = wire.FixDiagnosticArgs(
        uri="file:///a.py",
        diagnostic=wire.Diagnostic(
            range=wire.Range(start=wire.Position(line=1, character=2), end=wire.Position(line=1, character=5)),
            message="undefined name 'x'", severity=1, source="pyflakes", code="F821",
        ),
    )
    assert built == wire.dump(model)
    assert wire.dump(wire.parse(wire.FixDiagnosticArgs, built)) == built
