"""The shape of the code, checked: no import cycles (between modules or packages,
function-level and TYPE_CHECKING imports included), no server module over 600
lines, and each tool's name spelled only in the tools' own modules.

The layer contracts themselves (the domain never imports pygls, lsprotocol, the
hosts or the services; the tools never import the agent loop) are import-linter
contracts in pyproject.toml, run by ``lint-imports`` in scripts/test.sh.
"""

from __future__ import annotations

import ast
import re
import tokenize
from pathlib import Path

import pytest

from codeloop.tools.builtin import BuiltinTools

PACKAGE = Path(__file__).resolve().parent.parent / "server" / "codeloop"
MAX_MODULE_LINES = 600


def _modules() -> dict[str, Path]:
    out = {}
    for path in PACKAGE.rglob("*.py"):
        rel = path.relative_to(PACKAGE.parent).with_suffix("")
        parts = list(rel.parts)
        if parts[-1] == "__init__":
            parts.pop()
        out[".".join(parts)] = path
    return out


MODULES = _modules()


def _resolve(module: str, node: ast.ImportFrom) -> str:
    if not node.level:
        return node.module or ""
    base = module.split(".")
    is_pkg = MODULES[module].name == "__init__.py"
    base = base if is_pkg else base[:-1]
    base = base[: len(base) - (node.level - 1)]
    return ".".join(base + ([node.module] if node.module else []))


def _imports(module: str) -> set[str]:
    """Every codeloop module ``module`` imports, wherever the import statement is
    (top level, inside a function, under ``if TYPE_CHECKING``), plus the parent
    packages Python runs on the way (importing a.b.c runs a/__init__ and a/b/__init__)."""
    tree = ast.parse(MODULES[module].read_text(encoding="utf-8"))
    targets: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            targets.update(a.name for a in node.names)
        elif isinstance(node, ast.ImportFrom):
            base = _resolve(module, node)
            for a in node.names:
                sub = f"{base}.{a.name}"
                targets.add(sub if sub in MODULES else base)
    out: set[str] = set()
    for t in targets:
        if not (t == "codeloop" or t.startswith("codeloop.")):
            continue
        while t and t not in MODULES:
            t = t.rpartition(".")[0]
        parts = t.split(".")
        for i in range(1, len(parts) + 1):
            parent = ".".join(parts[:i])
            if parent in MODULES and parent != module and not module.startswith(parent + "."):
                out.add(parent)
    return out


GRAPH = {m: _imports(m) for m in MODULES}


def _cycles(graph: dict[str, set[str]]) -> list[list[str]]:
    """Strongly connected components with more than one member (Tarjan)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    out: list[list[str]] = []
    counter = [0]

    def visit(v: str) -> None:
        index[v] = low[v] = counter[0]
        counter[0] += 1
        stack.append(v)
        on_stack.add(v)
        for w in graph.get(v, ()):
            if w not in index:
                visit(w)
                low[v] = min(low[v], low[w])
            elif w in on_stack:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            comp = []
            while True:
                w = stack.pop()
                on_stack.discard(w)
                comp.append(w)
                if w == v:
                    break
            if len(comp) > 1:
                out.append(sorted(comp))

    for v in sorted(graph):
        if v not in index:
            visit(v)
    return out


def test_the_import_graph_sees_function_level_and_type_checking_imports() -> None:
    # The checker itself: these edges exist only as a function-level import and a
    # parent package; a checker that missed them would pass a cycle hidden that way.
    assert "codeloop.lsp.app" in GRAPH["codeloop.main"]
    assert all(m in MODULES for targets in GRAPH.values() for m in targets)
    fake = {"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": {"a"}}
    assert _cycles(fake) == [["a", "b", "c"]]


def test_no_import_cycle_between_modules() -> None:
    assert _cycles(GRAPH) == []


def _package_of(module: str, depth: int) -> str:
    return ".".join(module.split(".")[: depth + 1])


@pytest.mark.parametrize("depth", [1, 2])
def test_no_import_cycle_between_packages(depth: int) -> None:
    """codeloop.X (depth 1) and codeloop.X.Y (depth 2) packages, as units."""
    packages: dict[str, set[str]] = {}
    for module, targets in GRAPH.items():
        src = _package_of(module, depth)
        for t in targets:
            dst = _package_of(t, depth)
            if dst != src and not src.startswith(dst + ".") and not dst.startswith(src + "."):
                packages.setdefault(src, set()).add(dst)
    assert _cycles(packages) == []


def test_no_server_module_is_over_600_lines() -> None:
    long = {m: n for m, p in MODULES.items() if (n := len(p.read_text(encoding="utf-8").splitlines())) > MAX_MODULE_LINES}
    assert long == {}


def _spelled(path: Path, names: list[str]) -> set[str]:
    """Tool names in a module's strings and comments. Names with an underscore count
    anywhere in them; one-word names (grep, glob: also shell commands and plain words)
    only as a whole string literal."""
    compound = [n for n in names if "_" in n]
    single = {n for n in names if "_" not in n}
    pattern = re.compile(r"\b(" + "|".join(map(re.escape, compound)) + r")\b")
    hits: set[str] = set()
    with path.open("rb") as f:
        for tok in tokenize.tokenize(f.readline):
            if tok.type in (tokenize.STRING, tokenize.COMMENT) or tok.type == getattr(tokenize, "FSTRING_MIDDLE", -1):
                hits.update(pattern.findall(tok.string))
            if tok.type == tokenize.STRING:
                try:
                    value = ast.literal_eval(tok.string)
                except (ValueError, SyntaxError):
                    continue
                if isinstance(value, str) and value in single:
                    hits.add(value)
    return hits


def test_a_tool_name_is_spelled_only_in_the_tools_modules() -> None:
    """A tool's knowledge lives on the tool: nothing outside codeloop/tools/ names one
    (the shell analysis in codeloop.policy names shell commands, some called grep)."""
    names = [t.name for t in BuiltinTools().tools()]
    found = {}
    for module, path in MODULES.items():
        if module.startswith("codeloop.tools"):
            continue
        hits = _spelled(path, [n for n in names if "_" in n] if module.startswith("codeloop.policy") else names)
        if hits:
            found[module] = sorted(hits)
    assert found == {}


def test_no_merge_conflict_markers_are_left_in_the_tree() -> None:
    import subprocess

    out = subprocess.run(
        ["git", "grep", "-n", "-I", "-E", "^(<<<<<<< |>>>>>>> )", "--", ".", ":!tests/test_architecture.py"],
        cwd=PACKAGE.parent.parent, capture_output=True, text=True,
    )
    assert out.stdout == ""
