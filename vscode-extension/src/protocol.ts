/**
 * Every custom JSON-RPC method and command name of the codeloop language server, in one
 * place. Mirrors server/codeloop/lsp/methods.py; docs/protocol.md documents params and
 * results. The wire types below are the subset the extension uses.
 */

// client -> server requests
export const CHAT_START = "codeloop/chat/start";
export const SESSION_NEW = "codeloop/session/new";
export const SESSION_LIST = "codeloop/session/list";
export const SESSION_OPEN = "codeloop/session/open";
export const SESSION_TRANSCRIPT = "codeloop/session/transcript";
export const PROCESS_LIST = "codeloop/process/list";
export const PROCESS_KILL = "codeloop/process/kill";
export const PROPOSAL_LIST = "codeloop/proposal/list";
export const CONTEXT_SHOW = "codeloop/context";
export const MCP_LIST = "codeloop/mcp/list";
export const MCP_RESTART = "codeloop/mcp/restart";
export const MCP_CONSENT = "codeloop/mcp/consent";
export const COMMAND_TABLE = "codeloop/commands";
export const REWIND_LIST = "codeloop/rewind/list";
export const REWIND_PREVIEW = "codeloop/rewind/preview";
export const REWIND_APPLY = "codeloop/rewind/apply";
export const SANDBOX_INFO = "codeloop/sandbox";

// client -> server notifications
export const CHAT_CANCEL = "codeloop/chat/cancel";

// server -> client notifications
export const EVENT = "codeloop/event";
export const TERMINAL_STARTED = "codeloop/terminal/started";
export const TERMINAL_OUTPUT = "codeloop/terminal/output";
export const TERMINAL_EXITED = "codeloop/terminal/exited";
export const PROPOSAL_RESOLVED = "codeloop/proposal/resolved";
export const MCP_CHANGED = "codeloop/mcp/changed";

// server -> client requests (only to clients that announce support)
export const PROPOSAL_REVIEW = "codeloop/proposal/review";
export const APPROVAL_REQUEST = "codeloop/approval/request";
export const DIAGNOSTICS_GET = "codeloop/diagnostics/get";
export const DOCUMENT_SAVE = "codeloop/document/save";

// workspace/executeCommand commands
export const CMD_FIX = "codeloop.fixDiagnostic";
export const CMD_ASK = "codeloop.ask";
export const CMD_EXPLAIN = "codeloop.explain";
export const CMD_CHAT = "codeloop.chat";
export const CMD_CANCEL = "codeloop.cancel";
export const CMD_REWIND = "codeloop.rewind";
export const COMMANDS = [CMD_FIX, CMD_ASK, CMD_EXPLAIN, CMD_CHAT, CMD_CANCEL, CMD_REWIND];

// capability the client announces in capabilities.experimental.codeloop
export const EXPERIMENTAL_KEY = "codeloop";

export const CLIENT_CAPABILITIES = {
  proposalReview: true,
  approvals: true,
  events: true,
  diagnostics: true,
  save: true,
};

// ---- wire types ------------------------------------------------------------------------

export interface Position { line: number; character: number }
export interface Range { start: Position; end: Position }

export interface ChatContext {
  activeFile?: string;
  selection?: { uri: string; text: string; range: Range };
}
/** An image pasted or dropped into the composer (base64 data, no data: prefix). */
export interface ImageAttachment { type: "image"; mimeType: "image/png" | "image/jpeg" | "image/gif" | "image/webp"; data: string }
/** An @-mention resolved by the extension: sent to the model as a text part. */
export interface ContextItem { kind: "file" | "folder" | "problems" | "selection" | "terminal"; label: string; text: string }
export interface ChatStartParams {
  sessionId?: string; text: string; context?: ChatContext;
  attachments?: ImageAttachment[];
  contextItems?: ContextItem[];
}
export interface ChatStartResult { sessionId: string; turnId: string }

export type AgentEvent =
  | { type: "textDelta"; text: string }
  | { type: "toolCallStarted"; callId: string; name: string; summary?: string; arguments?: unknown; origin?: string;
      /** The call this one runs inside (code mode's program); "" for the model's own. */
      parent?: string; code?: string; codeLanguage?: string }
  | {
      type: "toolCallFinished"; callId: string; name: string; ok: boolean; summary?: string; result?: string;
      status?: "ok" | "error" | "cancelled"; parent?: string;
    }
  | { type: "retry"; attempt: number; maxAttempts: number; delay: number; reason: string }
  | { type: "usage"; promptTokens: number; completionTokens: number; cachedTokens?: number; cost?: number | null }
  | { type: "notice"; message: string; level?: "info" | "warning" }
  | { type: "error"; message: string; kind?: string }
  | {
      type: "turnEnd"; status: "done" | "cancelled" | "error" | "max_turns"; message?: string;
      promptTokens?: number; completionTokens?: number; cachedTokens?: number; cost?: number | null;
    }
  /** A hook ran (phase start, then end with its status): a line on its tool card, or in the log. */
  | {
      type: "hookRan"; runId: string; hookEvent: string; phase: "start" | "end"; status: string;
      label: string; line: string; target?: string | null; callId?: string; scope?: string; duration?: number | null;
    }
  /** The session's todo list changed: the whole list, in order. */
  | { type: "todosChanged"; todos: TodoItem[]; changes?: string[] }
  /** An event of a sub-agent's conversation, nested under the parent's `task` call. */
  | { type: "subagent"; parentCallId: string; agent: string; event: AgentEvent };

export interface TodoItem { content: string; activeForm: string; status: "pending" | "in_progress" | "completed" }

export interface EventParams { sessionId: string; turnId?: string; event: AgentEvent }

export interface Hunk {
  id: number; header: string; diff: string;
  oldStart?: number; oldLines?: number; newStart?: number; newLines?: number;
}
export interface ProposalFile {
  uri: string; path: string; version: number | null; isNew: boolean;
  oldText: string; newText: string; diff: string; hunks: Hunk[];
}
export interface ProposalReviewParams {
  proposalId: string; sessionId?: string; turnId?: string; callId?: string; tool: string;
  files: ProposalFile[]; edit?: unknown;
}
export type ProposalDecision =
  | { decision: "accept" }
  | { decision: "reject"; feedback?: string }
  | { decision: "partial"; hunks: Record<string, number[]> }
  /** The user's text per file; `hunks`: the hunk ids not undone (for the model's information). */
  | { decision: "edited"; editedText: Record<string, string>; hunks?: Record<string, number[]> };
export interface ProposalResolvedParams {
  proposalId: string; status: string; message?: string;
  /** Present when the proposal was applied without review (auto-accept), so the panel can show what changed. */
  proposal?: ProposalReviewParams;
}

export interface ApprovalRequestParams {
  sessionId?: string; turnId?: string; callId?: string; kind: string; target: string; cwd?: string;
  reason?: string; suggestedRule?: string;
  /** kind "Trust": what the project asks to run or allow ("MCP server git", "the project's hooks"). */
  subject?: string;
}
export type ApprovalAnswer = "allow_once" | "allow_always" | "deny";
export interface ApprovalResult { answer: ApprovalAnswer; message?: string }

export interface TerminalStartedParams {
  terminalId: string; sessionId?: string; command: string; cwd?: string; background?: boolean;
}
export interface TerminalOutputParams { terminalId: string; data: string }
export interface TerminalExitedParams { terminalId: string; exitCode: number | null }

export interface ProcessInfo { id: string; command: string; running: boolean; exitCode: number | null; sessionId?: string }
export interface SessionInfo { id: string; title: string; created: string; updated: string; messageCount: number; model?: string }
export interface SessionOpenResult {
  sessionId: string; messages: OpenAIMessage[]; warnings?: string[];
  /** The todo list as it stands. */
  todos?: TodoItem[];
  /** The sub-agents' conversations, by the parent's `task` call id. */
  subagents?: Record<string, SubagentLog>;
}
export interface SubagentLog { agent: string; messages: OpenAIMessage[] }
/** A slash command of the server's command table (`codeloop/commands`), custom ones included. */
export interface CommandInfo { name: string; synopsis: string; description: string; source: string }
export interface CommandTableResult { commands: CommandInfo[] }
export interface OpenAIMessage {
  role: string; content?: unknown; name?: string; tool_call_id?: string;
  tool_calls?: { id: string; type?: string; function: { name: string; arguments: string } }[];
}

/** One MCP server (`codeloop/mcp/list`, `codeloop/mcp/changed`). */
export interface McpServerInfo {
  name: string;
  status: "starting" | "ready" | "failed" | "disabled" | "needs-consent";
  source: "user" | "project" | "editor"; transport: "stdio" | "http" | "sse";
  toolCount: number; lastError?: string | null; origin?: string; description?: string;
  retryIn?: number | null; logFile?: string | null; restarts?: number; pid?: number | null;
}
export interface McpListResult { servers: McpServerInfo[]; report: string }
export interface McpChangedParams { servers: McpServerInfo[] }
/** A point a session can be rewound to: before user message `number`, or back before an earlier rewind. */
export interface RewindTarget {
  checkpointId: string; kind: "message" | "undo" | "step"; number: number | null; index: number | null;
  /** The user's words, shortened; `words`: whole. */
  text: string; words: string; ts: string;
  /** Files the session changed since. */
  files: number;
}
export interface RewindListResult { sessionId: string; targets: RewindTarget[]; unavailable?: string }
export type RewindChoice = "restore" | "keep" | "rebase";
export interface RewindFile {
  path: string;
  /** What "restore" does: restore the content, delete a file the session created, recreate one it deleted. */
  action: "restore" | "delete" | "recreate" | "none" | "unavailable";
  /** Changed since the session's last change (by the user): kept unless chosen otherwise. */
  userChanged: boolean;
  choices: RewindChoice[]; default: RewindChoice; reason: string;
  /** now → the checkpoint; the session's last version → now; now → rebased. */
  diff: string; userDiff: string; rebaseDiff: string; binary: boolean;
}
export interface RewindPreviewResult {
  previewId: string; sessionId: string; target: RewindTarget; files: RewindFile[];
  /** Changed after the checkpoint only by others: left alone. */
  outside: { path: string; label: string }[];
  conversation: { removes: number; note: string };
  text: string;
}
export interface RewindApplyParams {
  sessionId: string; previewId: string; code?: boolean; conversation?: boolean;
  choices?: Record<string, RewindChoice>; changedSince?: "keep" | "rebase";
}
export interface RewindApplyResult {
  sessionId: string; summary: string; files: { path: string; status: string; message: string }[];
  undoCheckpoint: string | null; removed: number;
  /** The words of the message rewound to (to edit and send again). */
  message: string;
  messages: OpenAIMessage[];
}
/** codeloop/sandbox: which sandbox runs the agent's commands (the panel header). */
export interface SandboxInfo {
  mode: "auto" | "on" | "off"; backend: string | null; description: string;
  guarantees?: string[]; limitations?: string[]; autoAllow?: boolean;
}
