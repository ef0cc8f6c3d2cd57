"""Tool search: when the MCP tools' schemas would take too much of the context window.

:func:`plan_tools` decides, from the schemas' token cost (``count_tools``, o200k_base) and a
share of the context window (default 10%), whether every MCP tool's schema is sent, or only
the ones already loaded plus a ``search_tools`` tool whose description lists the others
by name with a one-line description. :func:`run_search` answers a ``search_tools`` call:
the best matching tools, whose full schemas the session then sends for the rest of the
session (it keeps the ``loaded`` set).

Queries: keywords (``"create calendar event"``), ``+word`` for a word a tool must have,
or ``select:name1,name2`` for exact names (qualified or the tool's own name).

Pure functions over :class:`McpToolInfo`; nothing here talks to a server.
"""

from __future__ import annotations

import math
import re
from collections.abc import Collection, Sequence
from dataclasses import dataclass, field
from typing import Any

from codeloop.context.tokens import count_tokens, count_tools
from codeloop.services.mcp.info import McpToolInfo

SEARCH_TOOL_NAME = "search_tools"
DEFAULT_SHARE = 0.10
DEFAULT_LIMIT = 5
MAX_LIMIT = 20
ONE_LINE = 90

_STOP = frozenset("a an and any are as at be by can do for from get how i in is it me my of on or some that the "
                  "this to tool tools use using want with".split())
_RUN = re.compile(r"[A-Za-z0-9]+")
_WORD = re.compile(r"[A-Z]?[a-z]+|[A-Z]+(?![a-z])|\d+")


@dataclass(frozen=True)
class ToolPlan:
    deferred: bool  # True: tool search is on
    schemas: list[dict[str, Any]]  # MCP tool schemas to send (all of them, or the loaded ones)
    search_tool: dict[str, Any] | None  # the search_tools schema, when deferred
    catalog: str  # the deferred tools, one line each ("" when not deferred)
    tokens_all: int  # what every MCP schema would cost
    tokens_sent: int  # what this plan costs (its schemas and the search tool)
    budget: int  # the share of the context window allowed
    deferred_names: list[str] = field(default_factory=list)

    def all_schemas(self) -> list[dict[str, Any]]:
        """What to add to the request's ``tools``."""
        return self.schemas + ([self.search_tool] if self.search_tool else [])


def one_line(text: str, limit: int = ONE_LINE) -> str:
    """The first sentence (or line) of a description, at most ``limit`` characters."""
    text = " ".join((text or "").split())
    m = re.search(r"(?<=[.!?])\s", text)
    if m:
        text = text[: m.start()]
    if len(text) > limit:
        text = text[: limit - 1].rstrip() + "…"
    return text


def schema_tokens(tools: Sequence[McpToolInfo]) -> int:
    return count_tools([t.schema() for t in tools])


def _catalog(tools: Sequence[McpToolInfo], budget: int) -> str:
    """One line per tool; names only when that is too long; counts per server at worst."""
    room = budget - count_tools([search_tool_schema("")])
    with_desc = "\n".join(f"- {t.qualified_name}: {one_line(t.description)}" if t.description
                          else f"- {t.qualified_name}" for t in tools)
    if count_tokens(with_desc) <= room:
        return with_desc
    names = "\n".join(f"- {t.qualified_name}" for t in tools)
    if count_tokens(names) <= room:
        return names
    counts: dict[str, int] = {}
    for t in tools:
        counts[t.server] = counts.get(t.server, 0) + 1
    return "\n".join(f"- server {s}: {n} tools (search to see them)" for s, n in counts.items())


def search_tool_schema(catalog: str) -> dict[str, Any]:
    description = (
        "Find MCP tools that are not loaded yet and load them. Pass keywords (e.g. \"create calendar event\"; "
        "+word for a word a tool must have) or select:name1,name2 for exact names. The matching tools are "
        "loaded for the rest of the session: call them directly from your next step.\n"
        "Tools you can load:\n" + catalog
    )
    return {
        "type": "function",
        "function": {
            "name": SEARCH_TOOL_NAME,
            "description": description,
            "parameters": {
                "type": "object",
                "properties": {
                    "query": {"type": "string", "description": "keywords, or select:name1,name2"},
                    "limit": {"type": "integer", "description": f"how many tools at most (default {DEFAULT_LIMIT})"},
                },
                "required": ["query"],
            },
        },
    }


def plan_tools(tools: Sequence[McpToolInfo], *, context_window: int, share: float = DEFAULT_SHARE,
               loaded: Collection[str] = ()) -> ToolPlan:
    """All schemas when they fit in ``share`` of ``context_window``; else the ``loaded`` ones
    and ``search_tools``."""
    budget = max(0, int(context_window * share))
    schemas = [t.schema() for t in tools]
    tokens_all = count_tools(schemas)
    if tokens_all <= budget:
        return ToolPlan(False, schemas, None, "", tokens_all, tokens_all, budget)
    loaded_set = set(loaded)
    sent = [s for t, s in zip(tools, schemas) if t.qualified_name in loaded_set]
    rest = [t for t in tools if t.qualified_name not in loaded_set]
    catalog = _catalog(rest, budget)
    search = search_tool_schema(catalog)
    return ToolPlan(True, sent, search, catalog, tokens_all, count_tools(sent + [search]), budget,
                    [t.qualified_name for t in rest])


# -- matching ------------------------------------------------------------------------------


def _stem(word: str) -> str:
    for suffix in ("ing", "ies", "es", "ed", "s"):
        if len(word) > len(suffix) + 2 and word.endswith(suffix):
            return word[: -len(suffix)] + ("y" if suffix == "ies" else "")
    return word


def _terms(text: str, query: bool = False) -> list[str]:
    """Words, split at ``_``, ``-`` and camelCase, stemmed. A run of letters and digits
    (``srv2``) also stays whole; in a query it is only whole."""
    out: list[str] = []
    for run in _RUN.findall(text or ""):
        parts = _WORD.findall(run)
        if len(parts) > 1 and any(c.isdigit() for c in run) and any(c.isalpha() for c in run):
            out.append(run.lower())
            if query:
                continue
        out += [_stem(w.lower()) for w in parts if w.lower() not in _STOP]
    return out


@dataclass
class _Doc:
    tool: McpToolInfo
    name: set[str]
    server: set[str]
    desc: set[str]


def _docs(tools: Sequence[McpToolInfo]) -> list[_Doc]:
    return [_Doc(t, set(_terms(t.name)) | set(_terms(t.title or "")), set(_terms(t.server)),
                 set(_terms(t.description))) for t in tools]


def search_tools(query: str, tools: Sequence[McpToolInfo], limit: int = DEFAULT_LIMIT) -> list[McpToolInfo]:
    """The tools that best match ``query`` (best first, at most ``limit``)."""
    limit = max(1, min(MAX_LIMIT, int(limit or DEFAULT_LIMIT)))
    q = (query or "").strip()
    if q.lower().startswith("select:"):
        wanted = [w.strip() for w in q[7:].split(",") if w.strip()]
        out: list[McpToolInfo] = []
        for w in wanted:
            for t in tools:
                if (t.qualified_name == w or t.name == w) and t not in out:
                    out.append(t)
        return out[:MAX_LIMIT]
    required = [_stem(w[1:].lower()) for w in q.split() if w.startswith("+") and len(w) > 1]
    terms = list(dict.fromkeys(_terms(q.replace("+", " "), query=True)))
    if not terms:
        return []
    docs = _docs(tools)
    n = len(docs)
    df = {term: sum(1 for d in docs if term in d.name or term in d.desc or term in d.server) for term in terms}
    scored: list[tuple[float, int, McpToolInfo]] = []
    for i, d in enumerate(docs):
        every = d.name | d.desc | d.server
        if any(r not in every for r in required):
            continue
        score = 0.0
        for term in terms:
            idf = math.log(1 + n / (1 + df[term]))
            weight = 0.0
            if term in d.name:
                weight += 3.0
            if term in d.server:
                weight += 2.0
            if term in d.desc:
                weight += 1.0
            if not weight and len(term) >= 3 and any(w.startswith(term) for w in every):
                weight = 0.5
            score += weight * idf
        if score > 0:
            scored.append((score, i, d.tool))
    scored.sort(key=lambda x: (-x[0], x[1]))
    return [t for _, _, t in scored[:limit]]


def run_search(query: str, tools: Sequence[McpToolInfo], loaded: Collection[str],
               limit: int = DEFAULT_LIMIT) -> tuple[str, list[str]]:
    """Answer a ``search_tools`` call: (the text for the model, the names newly loaded).
    The caller adds the names to its ``loaded`` set, so their schemas go with the next request."""
    matches = search_tools(query, tools, limit)
    if not matches:
        return (f"No MCP tool matches {query!r}. Try other words, or select:<name> with a name from the list "
                f"in the {SEARCH_TOOL_NAME} description.", [])
    loaded_set = set(loaded)
    new = [t.qualified_name for t in matches if t.qualified_name not in loaded_set]
    lines = [f"Loaded {len(matches)} tool{'s' if len(matches) != 1 else ''} for the rest of the session "
             f"(call them directly):"]
    for t in matches:
        props = t.input_schema.get("properties") if isinstance(t.input_schema, dict) else None
        params = ", ".join(props) if isinstance(props, dict) else ""
        line = f"- {t.qualified_name}({params})"
        if t.description:
            line += f": {one_line(t.description)}"
        lines.append(line)
    return "\n".join(lines), new
