"""Every custom JSON-RPC method and command name, in one place.

The extension mirrors these in ``vscode-extension/src/protocol.ts`` (checked by
``tests/test_wire_protocol_ts.py``); ``lsp/wire.py`` has the params and results;
``docs/protocol.md`` documents them.
"""

# client -> server requests
CHAT_START = "codeloop/chat/start"
SESSION_NEW = "codeloop/session/new"
SESSION_LIST = "codeloop/session/list"
SESSION_OPEN = "codeloop/session/open"  # resume: loads it and returns the transcript
SESSION_TRANSCRIPT = "codeloop/session/transcript"
PROCESS_LIST = "codeloop/process/list"
PROCESS_KILL = "codeloop/process/kill"
PROPOSAL_LIST = "codeloop/proposal/list"
CONTEXT_SHOW = "codeloop/context"
MCP_LIST = "codeloop/mcp/list"
MCP_RESTART = "codeloop/mcp/restart"
MCP_CONSENT = "codeloop/mcp/consent"
COMMAND_TABLE = "codeloop/commands"  # the slash commands (built-in and custom) for completion and help
REWIND_LIST = "codeloop/rewind/list"  # the messages a session can be rewound to
REWIND_PREVIEW = "codeloop/rewind/preview"  # what a rewind does, per file (kept for apply)
REWIND_APPLY = "codeloop/rewind/apply"
SANDBOX_INFO = "codeloop/sandbox"  # which sandbox runs the commands (the panel header)

# client -> server notifications
CHAT_CANCEL = "codeloop/chat/cancel"

# server -> client notifications
EVENT = "codeloop/event"
TERMINAL_STARTED = "codeloop/terminal/started"
TERMINAL_OUTPUT = "codeloop/terminal/output"
TERMINAL_EXITED = "codeloop/terminal/exited"
PROPOSAL_RESOLVED = "codeloop/proposal/resolved"
MCP_CHANGED = "codeloop/mcp/changed"  # to clients that announce "events"

# server -> client requests (only to clients that announce support)
PROPOSAL_REVIEW = "codeloop/proposal/review"
APPROVAL_REQUEST = "codeloop/approval/request"
DIAGNOSTICS_GET = "codeloop/diagnostics/get"
DOCUMENT_SAVE = "codeloop/document/save"

# workspace/executeCommand commands
CMD_FIX = "codeloop.fixDiagnostic"
CMD_ASK = "codeloop.ask"
CMD_EXPLAIN = "codeloop.explain"
CMD_CHAT = "codeloop.chat"
CMD_CANCEL = "codeloop.cancel"
CMD_REWIND = "codeloop.rewind"

# capability the client announces in capabilities.experimental.codeloop, and its flags
EXPERIMENTAL_KEY = "codeloop"
EXPERIMENTAL_FLAGS = ("proposalReview", "approvals", "events", "diagnostics", "save")
