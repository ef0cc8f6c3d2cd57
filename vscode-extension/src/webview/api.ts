/** The webview's link to the extension host, and the UI state that survives a reload. */
import type { FromWebview } from "../messages";

declare function acquireVsCodeApi(): { postMessage(m: FromWebview): void; getState(): unknown; setState(s: unknown): void };
export const vscode = acquireVsCodeApi();

export interface Local {
  draft: string;
  useFile: boolean;
  useSelection: boolean;
  expanded: string[];
  reasons: Record<string, string>;
  /** The MCP servers section is open. */
  mcpOpen: boolean;
}
const saved = (vscode.getState() ?? {}) as Partial<Local>;
export const local: Local = {
  draft: saved.draft ?? "", useFile: saved.useFile ?? true, useSelection: saved.useSelection ?? true,
  expanded: saved.expanded ?? [], reasons: saved.reasons ?? {}, mcpOpen: saved.mcpOpen ?? false,
};
export function persist(): void { vscode.setState(local); }

