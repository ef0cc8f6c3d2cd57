"""The custom wire: every codeloop/* params and result, and every command argument, as a
pydantic model. camelCase on the wire (``alias_generator``), snake_case in Python.

Handlers parse what arrives with :func:`parse` (a clear ``-32602`` on bad input) and send
what they build with :func:`dump`. An optional field left ``None`` is omitted on the wire;
a field without a default is always sent (``null`` included, e.g. ``ProposalFile.version``).
Unknown keys are ignored, so an older server talks to a newer client.

``vscode-extension/src/protocol.ts`` declares the same shapes for the extension; the test
``tests/test_wire_protocol_ts.py`` parses it and fails when a method name or a field
disagrees with this module (TS interfaces are matched to models by name).

The base (:class:`Wire`, :func:`parse`, :func:`dump`) is in ``wire_base``; the rewind models
are in ``wire_rewind``; both are re-exported here, so ``wire.X`` names every model.
"""

from __future__ import annotations

from typing import Any, Literal

from codeloop.lsp import methods as M
# Re-exported (``X as X``): ``wire.X`` names every model and both conversions.
from codeloop.lsp.wire_base import Wire as Wire, describe as describe, dump as dump, parse as parse
from codeloop.lsp.wire_rewind import (
    RewindApplyParams as RewindApplyParams,
    RewindApplyResult as RewindApplyResult,
    RewindChoice as RewindChoice,
    RewindCommandArgs as RewindCommandArgs,
    RewindConversation as RewindConversation,
    RewindFile as RewindFile,
    RewindFileResult as RewindFileResult,
    RewindListResult as RewindListResult,
    RewindOutside as RewindOutside,
    RewindPreviewParams as RewindPreviewParams,
    RewindPreviewResult as RewindPreviewResult,
    RewindTarget as RewindTarget,
)


# -- shared ----------------------------------------------------------------------------


class Position(Wire):
    line: int
    character: int


class Range(Wire):
    start: Position
    end: Position


class Diagnostic(Wire):
    """An LSP Diagnostic, as much of it as codeloop reads."""

    range: Range
    message: str = ""
    severity: int | None = None
    source: str | None = None
    code: str | int | None = None


# -- chat --------------------------------------------------------------------------------


class Selection(Wire):
    uri: str
    text: str
    range: Range | None = None


class ChatContext(Wire):
    active_file: str | None = None
    selection: Selection | None = None


class ImageAttachment(Wire):
    """A pasted or dropped image (lsp/attachments.py checks type, size and base64)."""

    type: str
    mime_type: str
    data: str  # base64


class ContextItem(Wire):
    """An @-mention the extension resolved: a file, a folder, the problems, the selection, the terminal."""

    kind: str
    label: str
    text: str


class ChatStartParams(Wire):
    session_id: str | None = None
    text: str
    context: ChatContext | None = None
    attachments: list[ImageAttachment] | None = None
    context_items: list[ContextItem] | None = None


class ChatStartResult(Wire):
    session_id: str
    turn_id: str


class ChatCancelParams(Wire):
    session_id: str | None = None
    turn_id: str | None = None


class TodoItem(Wire):
    """One entry of the session's todo list (a ``todosChanged`` event, ``session/open``; Claude Code's shape)."""

    content: str
    active_form: str
    status: Literal["pending", "in_progress", "completed"]


class EventParams(Wire):
    session_id: str
    turn_id: str
    event: dict[str, Any]  # an agent event's to_dict(): {"type": ..., ...}


# -- sessions ------------------------------------------------------------------------------


class SessionIdParams(Wire):
    session_id: str


class OptionalSessionParams(Wire):
    session_id: str | None = None


class SessionNewResult(Wire):
    session_id: str


class SessionInfo(Wire):
    id: str
    title: str
    created: str
    updated: str
    message_count: int
    model: str | None = None
    running: bool = False


class SessionListResult(Wire):
    sessions: list[SessionInfo]


class SubagentLog(Wire):
    """A sub-agent's conversation, kept under the parent's ``task`` call."""

    agent: str
    messages: list[dict[str, Any]]


class SessionOpenResult(Wire):
    session_id: str
    messages: list[dict[str, Any]]
    warnings: list[str] = []
    todos: list[TodoItem] = []
    subagents: dict[str, SubagentLog] = {}  # the parent's call id -> its sub-agent's messages


class SessionTranscriptResult(Wire):
    session_id: str
    messages: list[dict[str, Any]]
    warnings: list[str] | None = None
    subagents: dict[str, SubagentLog] = {}


class ContextResult(Wire):
    session_id: str
    report: str
    text: str


# -- slash commands ----------------------------------------------------------------------


class CommandInfo(Wire):
    """A slash command, from the command table (``codeloop.commands.table.describe``)."""

    name: str  # what follows the slash
    synopsis: str  # its arguments ("[focus]"), a custom command's argument-hint; "" when none
    description: str
    source: str  # "built-in", or where a custom command comes from ("project", "user:git")


class CommandTableResult(Wire):
    commands: list[CommandInfo]


# -- the sandbox -----------------------------------------------------------------------------


class SandboxInfo(Wire):
    """``codeloop/sandbox``: which sandbox runs the agent's commands (the panel header)."""

    mode: Literal["auto", "on", "off"]
    backend: str | None
    description: str
    guarantees: list[str] | None = None
    limitations: list[str] | None = None
    auto_allow: bool | None = None


class EmptyParams(Wire):
    """A request without params (``codeloop/commands``, ``codeloop/sandbox``)."""


# -- processes and the terminal --------------------------------------------------------------


class ProcessInfo(Wire):
    id: str
    command: str
    cwd: str
    running: bool
    exit_code: int | None
    status: str
    session_id: str


class ProcessListResult(Wire):
    processes: list[ProcessInfo]


class ProcessKillParams(Wire):
    id: str


class ProcessKillResult(Wire):
    killed: bool


class TerminalStartedParams(Wire):
    terminal_id: str
    session_id: str
    command: str
    cwd: str
    background: bool


class TerminalOutputParams(Wire):
    terminal_id: str
    data: str


class TerminalExitedParams(Wire):
    terminal_id: str
    exit_code: int | None


# -- approvals -----------------------------------------------------------------------------


class ApprovalRequestParams(Wire):
    session_id: str | None = None  # none for kind "Trust" (asked for the workspace, not a turn)
    turn_id: str | None = None
    call_id: str | None = None
    kind: str
    target: str
    cwd: str | None = None
    reason: str | None = None
    suggested_rule: str | None = None
    # kind "Trust": what the project asks to run or allow ("MCP server git", "the project's hooks")
    subject: str | None = None


class ApprovalResult(Wire):
    answer: Literal["allow_once", "allow_always", "deny"]
    message: str | None = None


# -- proposals ---------------------------------------------------------------------------------


class Hunk(Wire):
    id: int
    header: str
    diff: str
    old_start: int
    old_lines: int
    new_start: int
    new_lines: int


class ProposalFile(Wire):
    uri: str
    path: str
    version: int | None
    is_new: bool
    old_text: str
    new_text: str
    diff: str
    hunks: list[Hunk]


class ProposalReviewParams(Wire):
    proposal_id: str
    session_id: str
    turn_id: str
    call_id: str
    tool: str
    files: list[ProposalFile]
    edit: dict[str, Any]  # an LSP WorkspaceEdit with documentChanges


class ReviewDecision(Wire):
    """The answer to ``codeloop/proposal/review``.

    ``hunks`` (uri -> accepted hunk ids) and ``editedText`` (uri -> the user's version of the
    proposed side) may come together, with decision ``partial`` or ``edited``: the result is
    the edited text with every hunk that is not ticked reverted to the original (the ticks win
    for unticked hunks; see docs/protocol.md)."""

    decision: Literal["accept", "reject", "partial", "edited"]
    feedback: str | None = None
    hunks: dict[str, list[int]] | None = None
    edited_text: dict[str, str] | None = None


class ProposalListResult(Wire):
    proposals: list[ProposalReviewParams]


class ProposalResolvedParams(Wire):
    proposal_id: str
    status: str
    message: str
    proposal: ProposalReviewParams | None = None  # when applied without review


# -- editor diagnostics and saving ----------------------------------------------------------------


class DocumentRef(Wire):
    uri: str
    version: int | None = None


class DiagnosticsGetParams(Wire):
    uris: list[DocumentRef]


class DiagnosticsEntry(Wire):
    uri: str
    diagnostics: list[dict[str, Any]] = []


class DiagnosticsGetResult(Wire):
    # uri -> [Diagnostic]; a list of {uri, diagnostics} is accepted too. Entries are read
    # one by one (``Diagnostic``): a malformed one is skipped, not the whole answer.
    diagnostics: dict[str, list[dict[str, Any]]] | list[DiagnosticsEntry] = {}
    versions: dict[str, int | None] | None = None


class DocumentSaveParams(Wire):
    uris: list[str]


class DocumentSaveResult(Wire):
    saved: list[str] = []


# -- workspace/executeCommand arguments ----------------------------------------------------------


class FixDiagnosticArgs(Wire):
    """``codeloop.fixDiagnostic`` ``[{uri, diagnostic, sessionId?}]``."""

    uri: str
    diagnostic: Diagnostic
    session_id: str | None = None


def fix_args(uri: str, start: tuple[int, int], end: tuple[int, int], message: str, severity: int,
             source: str, code: str) -> dict[str, Any]:
    """``dump(FixDiagnosticArgs(...))`` without pydantic: built for every diagnostic on every
    code-action request (the hot path). ``tests/test_wire_protocol_ts.py`` checks it is the same."""
    rng = {"start": {"line": start[0], "character": start[1]}, "end": {"line": end[0], "character": end[1]}}
    return {"uri": uri, "diagnostic": {"range": rng, "message": message, "severity": severity, "source": source, "code": code}}


class FocusArgs(Wire):
    """``codeloop.ask`` / ``codeloop.explain`` ``[{uri, range, instruction?, sessionId?}]``. An
    empty range (a cursor) means the enclosing function, or the cursor's line."""

    uri: str
    range: Range
    instruction: str | None = None
    session_id: str | None = None


# -- MCP servers ---------------------------------------------------------------------------------------


class McpServerInfo(Wire):
    name: str
    status: str  # "starting" | "ready" | "failed" | "disabled" | "needs-consent"
    source: str  # "user" | "project" | "editor"
    transport: str  # "stdio" | "http" | "sse"
    tool_count: int
    last_error: str | None = None
    origin: str | None = None
    description: str | None = None
    retry_in: float | None = None
    log_file: str | None = None
    restarts: int | None = None
    pid: int | None = None


class McpListResult(Wire):
    servers: list[McpServerInfo]
    report: str


class McpChangedParams(Wire):
    servers: list[McpServerInfo]


class McpNameParams(Wire):
    name: str


class McpConsentParams(Wire):
    name: str
    allowed: bool


class McpMessageResult(Wire):
    message: str


# -- the method table --------------------------------------------------------------------------------

#: client -> server requests: method -> (params, result)
REQUESTS: dict[str, tuple[type[Wire], type[Wire]]] = {
    M.CHAT_START: (ChatStartParams, ChatStartResult),
    M.SESSION_NEW: (OptionalSessionParams, SessionNewResult),
    M.SESSION_LIST: (OptionalSessionParams, SessionListResult),
    M.SESSION_OPEN: (SessionIdParams, SessionOpenResult),
    M.SESSION_TRANSCRIPT: (SessionIdParams, SessionTranscriptResult),
    M.CONTEXT_SHOW: (OptionalSessionParams, ContextResult),
    M.COMMAND_TABLE: (EmptyParams, CommandTableResult),
    M.REWIND_LIST: (SessionIdParams, RewindListResult),
    M.REWIND_PREVIEW: (RewindPreviewParams, RewindPreviewResult),
    M.REWIND_APPLY: (RewindApplyParams, RewindApplyResult),
    M.SANDBOX_INFO: (EmptyParams, SandboxInfo),
    M.PROCESS_LIST: (OptionalSessionParams, ProcessListResult),
    M.PROCESS_KILL: (ProcessKillParams, ProcessKillResult),
    M.PROPOSAL_LIST: (OptionalSessionParams, ProposalListResult),
    M.MCP_LIST: (OptionalSessionParams, McpListResult),
    M.MCP_RESTART: (McpNameParams, McpMessageResult),
    M.MCP_CONSENT: (McpConsentParams, McpMessageResult),
}
#: client -> server notifications
NOTIFICATIONS: dict[str, type[Wire]] = {M.CHAT_CANCEL: ChatCancelParams}
#: server -> client notifications
SERVER_NOTIFICATIONS: dict[str, type[Wire]] = {
    M.EVENT: EventParams,
    M.TERMINAL_STARTED: TerminalStartedParams,
    M.TERMINAL_OUTPUT: TerminalOutputParams,
    M.TERMINAL_EXITED: TerminalExitedParams,
    M.PROPOSAL_RESOLVED: ProposalResolvedParams,
    M.MCP_CHANGED: McpChangedParams,
}
#: server -> client requests: method -> (params, result)
SERVER_REQUESTS: dict[str, tuple[type[Wire], type[Wire]]] = {
    M.PROPOSAL_REVIEW: (ProposalReviewParams, ReviewDecision),
    M.APPROVAL_REQUEST: (ApprovalRequestParams, ApprovalResult),
    M.DIAGNOSTICS_GET: (DiagnosticsGetParams, DiagnosticsGetResult),
    M.DOCUMENT_SAVE: (DocumentSaveParams, DocumentSaveResult),
}
#: workspace/executeCommand commands taking one argument object
COMMAND_ARGS: dict[str, type[FixDiagnosticArgs] | type[FocusArgs]] = {
    M.CMD_FIX: FixDiagnosticArgs, M.CMD_ASK: FocusArgs, M.CMD_EXPLAIN: FocusArgs,
}
