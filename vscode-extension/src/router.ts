/** Webview routing: each message from the chat panel goes to the part of the extension that owns it. */
import * as vscode from "vscode";
import * as P from "./protocol";
import type { FromWebview } from "./messages";
import type { Turns } from "./turns";
import type { ProposalManager } from "./proposals";
import type { Approvals } from "./approvals";
import type { Rewind } from "./rewind";
import { errText, type ServerClient } from "./client";

export interface Routes {
  turns: Turns;
  proposals: ProposalManager;
  approvals: Approvals;
  rewind: Rewind;
  server: ServerClient;
  notice(level: "info" | "warning" | "error", message: string): void;
  refreshProcesses(): Promise<void>;
  refreshMcp(): Promise<void>;
  mentionQuery(query: string): Promise<void>;
  /** Refreshes the server's slash commands (the panel's /-completion). */
  commandsQuery(): Promise<void>;
}

export async function routeWebview(m: FromWebview, r: Routes): Promise<void> {
  switch (m.type) {
    case "send": return r.turns.send(m.text, m.useFile, m.useSelection, m.images ?? []);
    case "mentionQuery": return r.mentionQuery(m.query);
    case "commandsQuery": return r.commandsQuery();
    case "cancel": return r.turns.cancel();
    case "newChat": return r.turns.newChat();
    case "history": return r.turns.history();
    case "openSession": return r.turns.openSession(m.id);
    case "unqueue": return r.turns.unqueue(m.index);
    case "mode": return r.turns.send(`/mode ${m.mode}`, false, false);
    case "proposal":
      if (m.action === "open") return r.proposals.openDiff(m.proposalId, m.uri);
      if (m.action === "accept") { r.proposals.accept(m.proposalId); return; }
      r.proposals.reject(m.proposalId, m.feedback);
      return;
    case "hunk": return r.proposals.setHunk({ proposalId: m.proposalId, uri: m.uri, hunkId: m.hunkId }, m.action);
    case "approval": return r.approvals.answer(m.id, m.answer);
    case "rewind":
      switch (m.action) {
        case "open": return r.rewind.open(m.checkpointId);
        case "choice": r.rewind.choose(m.path, m.choice); return;
        case "scope": r.rewind.scope(m.scope); return;
        case "apply": return r.rewind.apply();
        case "close": r.rewind.close(); return;
      }
      return;
    case "kill":
      try { await r.server.current?.sendRequest(P.PROCESS_KILL, { id: m.id }); } catch (e) { r.notice("error", `Could not kill ${m.id}: ${errText(e)}`); }
      return r.refreshProcesses();
    case "mcp":
      try {
        const client = r.server.current;
        if (m.action === "restart") await client?.sendRequest(P.MCP_RESTART, { name: m.name });
        else await client?.sendRequest(P.MCP_CONSENT, { name: m.name, allowed: m.action === "allow" });
      } catch (e) { r.notice("error", `MCP server ${m.name}: ${errText(e)}`); }
      return r.refreshMcp();
    case "openFile": {
      const doc = await vscode.workspace.openTextDocument(vscode.Uri.parse(m.uri));
      await vscode.window.showTextDocument(doc, { preview: true });
      return;
    }
    case "copy": await vscode.env.clipboard.writeText(m.text); return;
    case "command": await vscode.commands.executeCommand(m.command); return;
    case "ready": case "draft": return; // handled by the view itself
  }
}
