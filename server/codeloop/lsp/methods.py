"""Every custom JSON-RPC method and command name, in one place.

The extension mirrors these in ``vscode-extension/src/protocol.ts``;
``docs/protocol.md`` documents params and results.
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
SANDBOX_INFO = "codeloop/sandbox"  # which sandbox runs the commands (the panel header)

# client -> server notifications
CHAT_CANCEL = "codeloop/chat/cancel"

# server -> client notifications
EVENT = "codeloop/event"
TERMINAL_STARTED = "codeloop/terminal/started"
TERMINAL_OUTPUT = "codeloop/terminal/output"
TERMINAL_EXITED = "codeloop/terminal/exited"
PROPOSAL_RESOLVED = "codeloop/proposal/resolved"

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
COMMANDS = [CMD_FIX, CMD_ASK, CMD_EXPLAIN, CMD_CHAT, CMD_CANCEL]

# capability the client announces in capabilities.experimental.codeloop
EXPERIMENTAL_KEY = "codeloop"
