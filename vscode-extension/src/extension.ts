/**
 * codeloop for VS Code: starts the codeloop language server (`python -m codeloop lsp`) with
 * vscode-languageclient and gives it a face: the chat panel, proposal review in the diff
 * editor, command approvals, and a terminal that mirrors every command the agent runs.
 *
 * This file only wires the parts together:
 *   client.ts       the language client's lifecycle (start, crash restarts, settings)
 *   chatView.ts     the chat webview (state in the host, typed messages in messages.ts)
 *   router.ts       webview messages → the part that owns them
 *   turns.ts        sending, queueing, Stop, New chat, History, the event stream, focused turns
 *   approvals.ts    command approvals
 *   proposals.ts    proposal review in the diff editor
 *   terminal.ts     the `codeloop` terminal
 */
import * as vscode from "vscode";
import * as P from "./protocol";
import { ChatViewProvider } from "./chatView";
import { CodeloopTerminal } from "./terminal";
import { type HunkRef, ProposalManager } from "./proposals";
import { Approvals } from "./approvals";
import { EditorContext } from "./editorContext";
import { SECRET_KEY, ServerClient, type ServerState } from "./client";
import { StatusItem } from "./status";
import { Turns } from "./turns";
import { Rewind } from "./rewind";
import { routeWebview } from "./router";
import { editorDiagnostics, saveDocuments } from "./workspaceRequests";
import { Mentions, TerminalWatcher } from "./mentions";
import { SlashCommands } from "./slashCommands";

const config = () => vscode.workspace.getConfiguration("codeloop");
const modelLabel = () => config().get<string>("model") || "default model";

class Codeloop implements vscode.Disposable {
  private readonly log = vscode.window.createOutputChannel("codeloop");
  private readonly status = new StatusItem();
  private readonly terminal = new CodeloopTerminal();
  readonly chat: ChatViewProvider;
  readonly proposals: ProposalManager;
  private readonly approvals: Approvals;
  private readonly editor: EditorContext;
  readonly server: ServerClient;
  private readonly turns: Turns;
  private readonly rewind: Rewind;
  private readonly mentions: Mentions;
  private readonly terminalWatcher: TerminalWatcher;
  private readonly slash: SlashCommands;
  private readonly subs: vscode.Disposable[] = [];

  constructor(private readonly ctx: vscode.ExtensionContext) {
    const chat = this.chat = new ChatViewProvider(ctx.extensionUri, {
      model: modelLabel(), mode: config().get<string>("mode") ?? "ask", serverState: "starting", processes: [],
    });
    this.proposals = new ProposalManager({
      show: (params, review) => chat.dispatch({ a: "proposal", params, review }),
      status: (proposalId, status, message) => chat.dispatch({ a: "proposalStatus", proposalId, status, message }),
      hunks: (proposalId, files) => chat.dispatch({ a: "hunks", proposalId, files }),
    }, this.log);
    this.approvals = new Approvals({ dispatch: (a) => chat.dispatch(a), reveal: () => void chat.reveal() });
    this.editor = new EditorContext((patch) => chat.setEnv(patch));
    this.server = new ServerClient(ctx, this.log, {
      event: (p) => this.turns.onEvent(p),
      terminalStarted: (p) => { this.terminal.started(p); void this.refreshProcesses(); },
      terminalOutput: (p) => this.terminal.output(p),
      terminalExited: (p) => { this.terminal.exited(p); void this.refreshProcesses(); },
      proposalResolved: (p) => {
        if (p.proposal) chat.dispatch({ a: "proposal", params: p.proposal, review: false });
        this.proposals.resolved(p.proposalId, p.status, p.message);
      },
      mcpChanged: (p) => chat.setEnv({ mcpServers: p.servers ?? [] }),
      proposalReview: (p, token) => this.proposals.review(p, token),
      approval: (p, token) => this.approvals.request(p, token),
      save: (p) => saveDocuments(p, this.log),
      diagnostics: (p) => editorDiagnostics(p),
      executeCommand: (command, args, next) => this.turns.executeCommand(command, args, next),
      state: (st) => {
        chat.setEnv({ serverState: st, ...(st === "running" ? {} : { mcpServers: [] }) });
        this.updateStatus();
        if (st === "running") { void this.refreshMcp(); void this.slash.refresh(); void this.refreshSandbox(); }
      },
      gone: (why) => { this.proposals.dropAll(why); this.approvals.dropAll(); this.turns.serverGone(why); },
      notice: (level, message) => this.notice(level, message),
    });
    this.terminalWatcher = new TerminalWatcher();
    this.mentions = new Mentions({
      editor: () => this.editor.editor,
      lastCommand: () => this.terminalWatcher.last ?? this.terminal.lastCommand(),
    });
    this.rewind = new Rewind(chat, this.server, (level, message) => this.notice(level, message));
    this.turns = new Turns(chat, this.server, this.editor, this.mentions, () => this.updateStatus(), () => void this.rewind.refresh(),
      (spec) => this.rewind.openSpec(spec));
    this.slash = new SlashCommands(this.server, (commands) => chat.setEnv({ commands }), (m) => this.log.appendLine(m));
    this.updateStatus();
  }

  register(): void {
    const c = this.ctx;
    const cmd = (id: string, fn: (...args: any[]) => unknown) => this.subs.push(vscode.commands.registerCommand(id, fn)); // eslint-disable-line @typescript-eslint/no-explicit-any
    this.subs.push(vscode.window.registerWebviewViewProvider(ChatViewProvider.viewId, this.chat));
    this.subs.push(this.chat.onMessage((m) => void routeWebview(m, {
      turns: this.turns, proposals: this.proposals, approvals: this.approvals, server: this.server, rewind: this.rewind,
      notice: (level, message) => this.notice(level, message), refreshProcesses: () => this.refreshProcesses(),
      refreshMcp: () => this.refreshMcp(),
      mentionQuery: async (query) => this.chat.mentionOptions(query, await this.mentions.suggest(query)),
      commandsQuery: () => this.slash.refresh(),
    })));
    cmd("codeloop.openChat", () => this.chat.reveal());
    cmd("codeloop.newChat", () => this.turns.newChat());
    cmd("codeloop.showHistory", () => this.turns.history());
    cmd("codeloop.stopTurn", () => this.turns.cancel());
    cmd("codeloop.setApiKey", () => this.setApiKey());
    cmd("codeloop.clearApiKey", async () => { await c.secrets.delete(SECRET_KEY); void vscode.window.showInformationMessage("codeloop: the stored API key was removed."); });
    cmd("codeloop.restartServer", () => this.server.restart());
    cmd("codeloop.showLog", () => this.log.show());
    cmd("codeloop.showTerminal", () => this.terminal.show());
    cmd("codeloop.acceptProposal", (uri?: vscode.Uri) => this.proposals.command("accept", uri));
    cmd("codeloop.rejectProposal", (uri?: vscode.Uri) => this.proposals.command("reject", uri));
    cmd("codeloop.keepHunk", (ref?: HunkRef) => this.proposals.hunkCommand("keep", ref));
    cmd("codeloop.undoHunk", (ref?: HunkRef) => this.proposals.hunkCommand("undo", ref));
    cmd("codeloop.nextHunk", () => this.proposals.moveTo(1));
    cmd("codeloop.previousHunk", () => this.proposals.moveTo(-1));
    cmd("codeloop.addSelection", () => { this.editor.track(vscode.window.activeTextEditor); return this.chat.reveal(); });
    this.subs.push(vscode.workspace.onDidChangeConfiguration((e) => this.onConfig(e)));
    this.subs.push(c.secrets.onDidChange((e) => { if (e.key === SECRET_KEY) void this.server.pushSettings(); }));
    if (config().get("mode") === "bypass") this.warnBypass();
  }

  private notice(level: "info" | "warning" | "error", message: string): void {
    this.chat.dispatch({ a: "notice", level, message });
  }

  private async refreshProcesses(): Promise<void> {
    try {
      const r = await this.server.current?.sendRequest<{ processes: P.ProcessInfo[] }>(P.PROCESS_LIST, {});
      if (r) this.chat.setEnv({ processes: r.processes ?? [] });
    } catch { /* server busy or gone */ }
  }

  private async refreshMcp(): Promise<void> {
    try {
      const r = await this.server.current?.sendRequest<P.McpListResult>(P.MCP_LIST, {});
      if (r) this.chat.setEnv({ mcpServers: r.servers ?? [] });
    } catch { /* server busy or gone */ }
  }

  /** Which sandbox runs the commands: the panel header shows it. */
  private async refreshSandbox(): Promise<void> {
    try {
      const r = await this.server.current?.sendRequest<P.SandboxInfo>(P.SANDBOX_INFO, {});
      if (r) this.chat.setEnv({ sandbox: r });
    } catch { /* an older server, busy or gone */ }
  }

  private onConfig(e: vscode.ConfigurationChangeEvent): void {
    if (!e.affectsConfiguration("codeloop")) return;
    if (e.affectsConfiguration("codeloop.sandbox")) setTimeout(() => void this.refreshSandbox(), 500);
    if (e.affectsConfiguration("codeloop.mode") && config().get("mode") === "bypass") this.warnBypass();
    this.chat.setEnv({ model: modelLabel(), mode: config().get<string>("mode") ?? "ask" });
    this.updateStatus();
    if (e.affectsConfiguration("codeloop.pythonPath")) void this.server.restart();
    else void this.server.pushSettings();
  }

  private warnBypass(): void {
    void vscode.window.showWarningMessage(
      "codeloop is in bypass mode: it will edit files and run commands without asking.",
      "Switch to ask mode",
    ).then((x) => { if (x) void config().update("mode", "ask", vscode.ConfigurationTarget.Global); });
  }

  private async setApiKey(): Promise<void> {
    const key = await vscode.window.showInputBox({
      prompt: "API key for the model server (stored in VS Code's secret storage, never in settings)",
      password: true, ignoreFocusOut: true, placeHolder: "sk-…",
    });
    if (key === undefined) return;
    if (key.trim()) await this.ctx.secrets.store(SECRET_KEY, key.trim());
    else await this.ctx.secrets.delete(SECRET_KEY);
    void vscode.window.showInformationMessage(key.trim() ? "codeloop: API key stored." : "codeloop: stored API key removed.");
  }

  private updateStatus(): void {
    this.status.update(modelLabel(), this.turns?.busy ?? false, this.chat.env.serverState as ServerState);
  }

  dispose(): void {
    for (const s of this.subs) s.dispose();
    this.editor.dispose();
    this.terminalWatcher.dispose();
    this.proposals.dispose();
    this.terminal.dispose();
    this.status.dispose();
    this.log.dispose();
  }
}

let instance: Codeloop | undefined;

export async function activate(context: vscode.ExtensionContext): Promise<{ state: () => unknown }> {
  instance = new Codeloop(context);
  context.subscriptions.push(instance);
  instance.register();
  void instance.server.start();
  return { state: () => instance?.chat.state };
}

export async function deactivate(): Promise<void> {
  await instance?.server.stop();
}
