/**
 * The messages between the extension host and the chat webview, both ways, typed. Pure: no
 * vscode or DOM imports, so the webview bundle and the host share these types (and the
 * reducer in shared/model.ts).
 */
import type { Action, ChatState, RewindScope } from "./shared/model";
import type { CommandInfo, ImageAttachment, McpServerInfo, ProcessInfo, RewindChoice, SandboxInfo, SessionInfo } from "./protocol";
import type { MentionOption } from "./shared/mentions";

/** What the panel shows around the chat: the server, the model, the editor's context. */
export interface PanelEnv {
  model: string;
  mode: string;
  serverState: "starting" | "running" | "stopped" | "error";
  activeFile?: { uri: string; label: string };
  selection?: { uri: string; label: string; lines: number };
  processes: ProcessInfo[];
  /** The workspace's MCP servers (`codeloop/mcp/list`, `codeloop/mcp/changed`). */
  mcpServers?: McpServerInfo[];
  /** The server's slash commands (custom ones included), for /-completion and the help line. */
  commands?: CommandInfo[];
  /** Which sandbox runs the commands (codeloop/sandbox), once the server said. */
  sandbox?: SandboxInfo;
}

/** Host → webview. */
export type ToWebview =
  /** Everything, when the webview (re)loads. */
  | { type: "state"; state: ChatState; env: PanelEnv; draft: string; sessions?: SessionInfo[] }
  /** One reducer action, applied to the webview's copy of the state. */
  | { type: "apply"; action: Action }
  | { type: "env"; env: PanelEnv }
  | { type: "sessions"; sessions: SessionInfo[] }
  | { type: "focus" }
  /** Replaces the composer's text (a rewound message, back for editing). */
  | { type: "draft"; text: string }
  /** Completions for the @-mention being typed. */
  | { type: "mentions"; query: string; options: MentionOption[] };

/** Webview → host. */
export type FromWebview =
  | { type: "ready" }
  | { type: "send"; text: string; useFile: boolean; useSelection: boolean; images?: ImageAttachment[] }
  | { type: "mentionQuery"; query: string }
  /** The user started typing a slash command: the host refreshes the server's command table. */
  | { type: "commandsQuery" }
  | { type: "cancel" }
  | { type: "newChat" }
  | { type: "history" }
  | { type: "openSession"; id: string }
  | { type: "proposal"; proposalId: string; action: "accept" | "reject" | "open"; feedback?: string; uri?: string }
  /** Keep or Undo one hunk from the card (the same as its CodeLens in the diff editor). */
  | { type: "hunk"; proposalId: string; uri: string; hunkId: number; action: "keep" | "undo" }
  | { type: "approval"; id: string; answer: "allow_once" | "allow_always" | "deny" }
  | { type: "kill"; id: string }
  /** The servers section: restart a server, or answer for a project's server. */
  | { type: "mcp"; action: "restart" | "allow" | "deny"; name: string }
  | { type: "mode"; mode: string }
  | { type: "unqueue"; index: number }
  | { type: "draft"; text: string }
  | { type: "openFile"; uri: string }
  | { type: "copy"; text: string }
  | { type: "command"; command: string }
  /** The rewind card: open it for a message's checkpoint, choose per file, the scope, apply, close. */
  | { type: "rewind"; action: "open"; checkpointId: string }
  | { type: "rewind"; action: "choice"; path: string; choice: RewindChoice }
  | { type: "rewind"; action: "scope"; scope: RewindScope }
  | { type: "rewind"; action: "apply" | "close" };
