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
export const SANDBOX_INFO = "codeloop/sandbox";

// client -> server notifications
export const CHAT_CANCEL = "codeloop/chat/cancel";

// server -> client notifications
export const EVENT = "codeloop/event";
export const TERMINAL_STARTED = "codeloop/terminal/started";
export const TERMINAL_OUTPUT = "codeloop/terminal/output";
export const TERMINAL_EXITED = "codeloop/terminal/exited";
export const PROPOSAL_RESOLVED = "codeloop/proposal/resolved";

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
export const COMMANDS = [CMD_FIX, CMD_ASK, CMD_EXPLAIN, CMD_CHAT, CMD_CANCEL];

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
  | { type: "toolCallStarted"; callId: string; name: string; summary?: string; arguments?: unknown;
      /** The call this one runs inside (code mode's program); "" for the model's own. */
      parent?: string; code?: string; codeLanguage?: string }
  | { type: "toolCallFinished"; callId: string; name: string; ok: boolean; summary?: string; result?: string; parent?: string }
  | { type: "retry"; attempt: number; maxAttempts: number; delay: number; reason: string }
  | { type: "usage"; promptTokens: number; completionTokens: number; cachedTokens?: number; cost?: number | null }
  | { type: "notice"; message: string; level?: "info" | "warning" }
  | { type: "error"; message: string; kind?: string }
  | {
      type: "turnEnd"; status: "done" | "cancelled" | "error" | "max_turns"; message?: string;
      promptTokens?: number; completionTokens?: number; cachedTokens?: number; cost?: number | null;
    };

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
export interface SessionOpenResult { sessionId: string; messages: OpenAIMessage[]; warnings?: string[] }
export interface OpenAIMessage {
  role: string; content?: unknown; name?: string; tool_call_id?: string;
  tool_calls?: { id: string; type?: string; function: { name: string; arguments: string } }[];
}

/** codeloop/sandbox: which sandbox runs the agent's commands (the panel header). */
export interface SandboxInfo {
  mode: "auto" | "on" | "off"; backend: string | null; description: string;
  guarantees?: string[]; limitations?: string[]; autoAllow?: boolean;
}
