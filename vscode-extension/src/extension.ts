/**
 * codeloop for VS Code: starts the codeloop language server (`python -m codeloop lsp`) with
 * vscode-languageclient and gives it a face: the chat panel, proposal review in the diff
 * editor, command approvals, and a terminal that mirrors every command the agent runs.
 */
import * as vscode from "vscode";
import {
  CloseAction, ErrorAction, type ErrorHandler, type FeatureState, LanguageClient, type LanguageClientOptions,
  type ServerOptions, type StaticFeature, State,
} from "vscode-languageclient/node";
import * as P from "./protocol";
import { ChatViewProvider, type FromWebview } from "./chatView";
import { CodeloopTerminal } from "./terminal";
import { ProposalManager, PROPOSAL_SCHEME } from "./proposals";
import { probeCodeloop, resolvePython } from "./python";
import { redact, serverSettings } from "./settings";
import { requestedUris, toLspDiagnostic } from "./diagnostics";
import { itemsFromTranscript } from "./shared/model";
import { FOCUSED_COMMANDS, focusedArg, focusedLabel, where, withInstruction } from "./focused";

const SECRET_KEY = "codeloop.apiKey";

/** Announces capabilities.experimental.codeloop. */
class CodeloopFeature implements StaticFeature {
  fillClientCapabilities(capabilities: { experimental?: unknown }): void {
    const experimental = (capabilities.experimental ?? {}) as Record<string, unknown>;
    experimental[P.EXPERIMENTAL_KEY] = { ...P.CLIENT_CAPABILITIES };
    capabilities.experimental = experimental;
  }
  initialize(): void { /* nothing */ }
  getState(): FeatureState { return { kind: "static" }; }
  clear(): void { /* nothing */ }
}

class Codeloop implements vscode.Disposable {
  private client: LanguageClient | undefined;
  private restarting = false; // the language client is restarting a crashed server
  private readonly log = vscode.window.createOutputChannel("codeloop");
  private readonly status = vscode.window.createStatusBarItem(vscode.StatusBarAlignment.Right, 100);
  private readonly terminal = new CodeloopTerminal();
  readonly chat: ChatViewProvider;
  readonly proposals: ProposalManager;
  private readonly approvals = new Map<string, (r: P.ApprovalResult) => void>();
  private approvalSeq = 0;
  private awaitingStart = false;
  private lastEditor: vscode.TextEditor | undefined;
  private crashes: number[] = [];
  private starting: Promise<void> | undefined;
  /** Label of a focused turn (code action) whose executeCommand is in flight. */
  private focusedPending: string | undefined;
  /** Sessions whose turns run while the panel was busy with another: reported once. */
  private readonly elsewhere = new Set<string>();
  private readonly subs: vscode.Disposable[] = [];

  constructor(private readonly ctx: vscode.ExtensionContext) {
    this.chat = new ChatViewProvider(ctx.extensionUri, {
      model: this.modelLabel(), mode: this.config().get<string>("mode") ?? "ask", serverState: "starting", processes: [],
    });
    this.proposals = new ProposalManager({
      show: (params, review) => this.chat.dispatch({ a: "proposal", params, review }),
      status: (proposalId, status, message) => this.chat.dispatch({ a: "proposalStatus", proposalId, status, message }),
    }, this.log);
    this.status.command = "codeloop.openChat";
    this.updateStatus();
    this.status.show();
    this.lastEditor = vscode.window.activeTextEditor;
  }

  private config() { return vscode.workspace.getConfiguration("codeloop"); }
  private modelLabel(): string { return this.config().get<string>("model") || "default model"; }

  register(): void {
    const c = this.ctx;
    const cmd = (id: string, fn: (...args: any[]) => unknown) => this.subs.push(vscode.commands.registerCommand(id, fn)); // eslint-disable-line @typescript-eslint/no-explicit-any
    this.subs.push(vscode.window.registerWebviewViewProvider(ChatViewProvider.viewId, this.chat));
    this.subs.push(this.chat.onMessage((m) => void this.onWebview(m)));
    cmd("codeloop.openChat", () => this.chat.reveal());
    cmd("codeloop.newChat", () => this.newChat());
    cmd("codeloop.showHistory", () => this.history());
    cmd("codeloop.stopTurn", () => this.cancel());
    cmd("codeloop.setApiKey", () => this.setApiKey());
    cmd("codeloop.clearApiKey", async () => { await c.secrets.delete(SECRET_KEY); void vscode.window.showInformationMessage("codeloop: the stored API key was removed."); });
    cmd("codeloop.restartServer", () => this.restart());
    cmd("codeloop.showLog", () => this.log.show());
    cmd("codeloop.showTerminal", () => this.terminal.show());
    cmd("codeloop.acceptProposal", (uri?: vscode.Uri) => this.proposalCommand("accept", uri));
    cmd("codeloop.rejectProposal", (uri?: vscode.Uri) => this.proposalCommand("reject", uri));
    cmd("codeloop.addSelection", () => { this.trackEditor(vscode.window.activeTextEditor); return this.chat.reveal(); });
    this.subs.push(vscode.workspace.onDidChangeConfiguration((e) => this.onConfig(e)));
    this.subs.push(c.secrets.onDidChange((e) => { if (e.key === SECRET_KEY) void this.pushSettings(); }));
    this.subs.push(vscode.window.onDidChangeActiveTextEditor((e) => this.trackEditor(e)));
    this.subs.push(vscode.window.onDidChangeTextEditorSelection((e) => this.trackEditor(e.textEditor)));
    this.trackEditor(vscode.window.activeTextEditor);
    if (this.config().get("mode") === "bypass") this.warnBypass();
  }

  // ---- editor context -----------------------------------------------------------------
  private trackEditor(editor: vscode.TextEditor | undefined): void {
    if (!editor || !["file", "untitled"].includes(editor.document.uri.scheme)) return;
    this.lastEditor = editor;
    const uri = editor.document.uri;
    const label = vscode.workspace.asRelativePath(uri, false);
    const sel = editor.selection;
    const selection = sel.isEmpty ? undefined : {
      uri: uri.toString(), label: `${label}:${sel.start.line + 1}-${sel.end.line + 1}`, lines: sel.end.line - sel.start.line + 1,
    };
    this.chat.setEnv({ activeFile: { uri: uri.toString(), label }, selection });
  }

  private chatContext(useFile: boolean, useSelection: boolean): { context: P.ChatContext; chips: string[] } {
    const context: P.ChatContext = {};
    const chips: string[] = [];
    const ed = this.lastEditor;
    if (ed && !ed.document.isClosed) {
      const label = vscode.workspace.asRelativePath(ed.document.uri, false);
      if (useFile) { context.activeFile = ed.document.uri.toString(); chips.push(label); }
      const sel = ed.selection;
      if (useSelection && !sel.isEmpty) {
        context.selection = {
          uri: ed.document.uri.toString(), text: ed.document.getText(sel),
          range: { start: { line: sel.start.line, character: sel.start.character }, end: { line: sel.end.line, character: sel.end.character } },
        };
        chips.push(`${label}:${sel.start.line + 1}-${sel.end.line + 1}`);
      }
    }
    return { context, chips };
  }

  // ---- the webview ----------------------------------------------------------------------
  private async onWebview(m: FromWebview): Promise<void> {
    switch (m.type) {
      case "send": return this.send(m.text, m.useFile, m.useSelection);
      case "cancel": return this.cancel();
      case "newChat": return this.newChat();
      case "history": return this.history();
      case "openSession": return this.openSession(m.id);
      case "unqueue": {
        const q = this.chat.state.queued.filter((_, i) => i !== m.index);
        this.chat.dispatch({ a: "queue", queued: q });
        return;
      }
      case "mode": return this.send(`/mode ${m.mode}`, false, false);
      case "proposal":
        if (m.action === "open") return this.proposals.openDiff(m.proposalId, m.uri);
        if (m.action === "accept") { this.proposals.accept(m.proposalId, m.hunks); return; }
        this.proposals.reject(m.proposalId, m.feedback);
        return;
      case "approval": {
        const resolve = this.approvals.get(m.id);
        if (resolve) {
          this.approvals.delete(m.id);
          this.chat.dispatch({ a: "approvalStatus", id: m.id, answer: m.answer });
          resolve({ answer: m.answer });
        }
        return;
      }
      case "kill":
        try { await this.client?.sendRequest(P.PROCESS_KILL, { id: m.id }); } catch (e) { this.notice("error", `Could not kill ${m.id}: ${errText(e)}`); }
        return this.refreshProcesses();
      case "openFile": {
        const doc = await vscode.workspace.openTextDocument(vscode.Uri.parse(m.uri));
        await vscode.window.showTextDocument(doc, { preview: true });
        return;
      }
      case "copy": await vscode.env.clipboard.writeText(m.text); return;
      case "command": await vscode.commands.executeCommand(m.command); return;
    }
  }

  private notice(level: "info" | "warning" | "error", message: string): void {
    this.chat.dispatch({ a: "notice", level, message });
  }

  // ---- chat -----------------------------------------------------------------------------
  async send(text: string, useFile: boolean, useSelection: boolean): Promise<void> {
    text = text.trim();
    if (!text) return;
    if (this.chat.state.running || this.awaitingStart) {
      // One turn per session at a time: queue it and send it when the turn ends.
      this.chat.dispatch({ a: "queue", queued: [...this.chat.state.queued, text] });
      return;
    }
    const client = await this.ready();
    if (!client) { this.notice("error", "The codeloop server is not running. See the notification, or run “codeloop: Restart Language Server”."); return; }
    const { context, chips } = this.chatContext(useFile && !text.startsWith("/"), useSelection && !text.startsWith("/"));
    this.chat.dispatch({ a: "user", text, chips });
    this.awaitingStart = true;
    this.updateStatus();
    try {
      const params: P.ChatStartParams = { text, context };
      if (this.chat.state.sessionId) params.sessionId = this.chat.state.sessionId;
      const r = await client.sendRequest<P.ChatStartResult>(P.CHAT_START, params);
      this.chat.dispatch({ a: "turnStarted", sessionId: r.sessionId, turnId: r.turnId });
    } catch (e) {
      this.notice("error", errText(e));
    } finally {
      this.awaitingStart = false;
      this.updateStatus();
    }
  }

  private sendQueued(): void {
    const [next, ...rest] = this.chat.state.queued;
    if (next === undefined) return;
    this.chat.dispatch({ a: "queue", queued: rest });
    void this.send(next, true, false);
  }

  cancel(): void {
    const s = this.chat.state;
    if (!this.client || !s.sessionId) return;
    void this.client.sendNotification(P.CHAT_CANCEL, { sessionId: s.sessionId, turnId: s.running });
  }

  newChat(): void {
    if (this.chat.state.running) this.cancel();
    this.chat.dispatch({ a: "reset" });
    this.chat.dispatch({ a: "queue", queued: [] });
    void this.chat.reveal().then(() => this.chat.focusInput());
  }

  async history(): Promise<void> {
    const client = await this.ready();
    if (!client) return;
    try {
      const r = await client.sendRequest<{ sessions: P.SessionInfo[] }>(P.SESSION_LIST, {});
      this.chat.showSessions(r.sessions ?? []);
      await this.chat.reveal();
    } catch (e) { this.notice("error", `Could not list sessions: ${errText(e)}`); }
  }

  async openSession(id: string): Promise<void> {
    const client = await this.ready();
    if (!client) return;
    if (this.chat.state.running) this.cancel();
    try {
      const r = await client.sendRequest<P.SessionOpenResult>(P.SESSION_OPEN, { sessionId: id });
      this.chat.dispatch({ a: "reset", sessionId: r.sessionId, items: itemsFromTranscript(r.messages ?? []) });
      for (const w of r.warnings ?? []) this.notice("warning", w);
    } catch (e) { this.notice("error", `Could not open the session: ${errText(e)}`); }
  }

  private onEvent(p: P.EventParams): void {
    const s = this.chat.state;
    const ownNewSession = !s.sessionId && this.awaitingStart; // the panel's chat/start is in flight
    if (p.sessionId && p.sessionId !== s.sessionId && !ownNewSession) {
      // A turn the panel did not start (a code action: Fix/Ask/Explain, or another client's
      // command): follow it when the panel is idle; never interrupt the panel's own turn.
      if (s.running || this.awaitingStart || this.elsewhere.has(p.sessionId)) {
        if (!this.elsewhere.has(p.sessionId)) {
          this.elsewhere.add(p.sessionId);
          void vscode.window.showInformationMessage("codeloop: a turn started in another session while the chat panel's turn runs; open it from Chat History when it is done.");
        }
        return;
      }
      if (p.event.type === "turnEnd" && !this.focusedPending) return; // a stray end of a turn we never showed
      this.adoptTurn(p.sessionId, p.turnId);
    }
    if (!s.sessionId && p.sessionId) s.sessionId = p.sessionId;
    this.chat.dispatch({ a: "event", sessionId: p.sessionId, turnId: p.turnId, event: p.event });
    if (p.event.type === "turnEnd") {
      this.updateStatus();
      setTimeout(() => this.sendQueued(), 0);
    }
  }

  /**
   * Shows a turn the panel did not start (a code action's focused turn): the panel switches
   * to its session, shows what was asked, marks it running (Stop cancels it) and reveals itself.
   */
  private adoptTurn(sessionId: string, turnId: string | undefined): void {
    const label = this.focusedPending ?? "A codeloop turn started from a code action";
    this.focusedPending = undefined;
    this.chat.dispatch({ a: "reset", sessionId });
    this.chat.dispatch({ a: "queue", queued: [] });
    this.chat.dispatch({ a: "user", text: label });
    if (turnId) this.chat.dispatch({ a: "turnStarted", sessionId, turnId });
    this.updateStatus();
    void this.chat.reveal();
  }

  /**
   * middleware.executeCommand for the server's focused commands (what the lightbulb runs):
   * "Ask codeloop…" asks for the instruction in an input box (the server's
   * showMessageRequest presets are for plain clients), and every focused turn is shown in
   * the chat panel.
   */
  private async runFocused(command: string, args: unknown[], next: (command: string, args: unknown[]) => Promise<unknown>): Promise<unknown> {
    const arg = focusedArg(args);
    const fileLabel = arg ? vscode.workspace.asRelativePath(vscode.Uri.parse(arg.uri), false) : "";
    if (command === P.CMD_ASK && arg && !arg.instruction) {
      const instruction = await vscode.window.showInputBox({
        title: "Ask codeloop",
        prompt: `What should codeloop do with ${where(fileLabel, arg.range)}?`,
        placeHolder: "e.g. simplify this code, add error handling, write unit tests for this",
        ignoreFocusOut: true,
      });
      if (!instruction?.trim()) return undefined; // escape: nothing starts
      args = withInstruction(args, instruction.trim());
    }
    const label = focusedLabel(command, focusedArg(args), fileLabel);
    this.focusedPending = label;
    if (!this.chat.state.running && !this.awaitingStart) void this.chat.reveal();
    try {
      const r = await next(command, args) as Partial<P.ChatStartResult> | undefined;
      if (r?.sessionId && r.sessionId !== this.chat.state.sessionId && !this.elsewhere.has(r.sessionId)) {
        if (this.chat.state.running || this.awaitingStart) {
          this.elsewhere.add(r.sessionId);
          void vscode.window.showInformationMessage(`codeloop: “${label}” runs in another session while the chat panel's turn runs; open it from Chat History when it is done.`);
        } else {
          this.adoptTurn(r.sessionId, r.turnId);
        }
      }
      return r;
    } catch (e) {
      this.notice("error", `${label}: ${errText(e)}`);
      return undefined;
    } finally {
      if (this.focusedPending === label) this.focusedPending = undefined;
    }
  }

  // ---- proposals, approvals ---------------------------------------------------------------
  private async proposalCommand(action: "accept" | "reject", uri?: vscode.Uri): Promise<void> {
    let id = this.proposals.proposalIdFor(uri ?? vscode.window.activeTextEditor?.document.uri);
    const pending = this.proposals.pendingIds;
    if (!id && pending.length === 1) id = pending[0];
    if (!id && pending.length > 1) {
      id = await vscode.window.showQuickPick(pending.map((p) => ({
        label: p, description: this.proposals.get(p)?.files.map((f) => f.path).join(", "),
      })), { placeHolder: `Which proposal to ${action}?` }).then((x) => x?.label);
    }
    if (!id) { void vscode.window.showInformationMessage("codeloop: no pending proposal."); return; }
    if (action === "accept") { this.proposals.accept(id); return; }
    const reason = await vscode.window.showInputBox({ prompt: "Why reject it? (optional, told to the model)", placeHolder: "e.g. use pathlib instead" });
    if (reason === undefined) return; // escape: keep it pending
    this.proposals.reject(id, reason);
  }

  private approval(params: P.ApprovalRequestParams, token: vscode.CancellationToken): Promise<P.ApprovalResult> {
    const id = `ap-${++this.approvalSeq}`;
    return new Promise((resolve) => {
      this.approvals.set(id, resolve);
      this.chat.dispatch({ a: "approval", id, params });
      void this.chat.reveal();
      token.onCancellationRequested(() => {
        if (this.approvals.delete(id)) {
          this.chat.dispatch({ a: "approvalStatus", id, answer: "cancelled" });
          resolve({ answer: "deny", message: "cancelled" });
        }
      });
    });
  }

  private async save(params: { uris?: string[] }): Promise<{ saved: string[] }> {
    const saved: string[] = [];
    for (const u of params?.uris ?? []) {
      try {
        const uri = vscode.Uri.parse(u);
        const doc = vscode.workspace.textDocuments.find((d) => d.uri.toString() === uri.toString()) ?? await vscode.workspace.openTextDocument(uri);
        if (!doc.isDirty || await doc.save()) saved.push(u);
      } catch (e) { this.log.appendLine(`[codeloop] could not save ${u}: ${e}`); }
    }
    return { saved };
  }

  /** `{diagnostics: {uri: Diagnostic[]}, versions: {uri: version|null}}` */
  private diagnostics(params: unknown) {
    const diagnostics: Record<string, unknown[]> = {};
    const versions: Record<string, number | null> = {};
    for (const u of requestedUris(params)) {
      const uri = vscode.Uri.parse(u);
      const doc = vscode.workspace.textDocuments.find((d) => d.uri.toString() === uri.toString());
      diagnostics[u] = vscode.languages.getDiagnostics(uri).map(toLspDiagnostic);
      versions[u] = doc?.version ?? null;
    }
    return { diagnostics, versions };
  }

  private async refreshProcesses(): Promise<void> {
    try {
      const r = await this.client?.sendRequest<{ processes: P.ProcessInfo[] }>(P.PROCESS_LIST, {});
      if (r) this.chat.setEnv({ processes: r.processes ?? [] });
    } catch { /* server busy or gone */ }
  }

  // ---- settings ---------------------------------------------------------------------------
  private async settings(): Promise<Record<string, unknown>> {
    const cfg = this.config();
    const stored = await this.ctx.secrets.get(SECRET_KEY);
    return serverSettings((k) => cfg.get(k), process.env, stored);
  }

  private async pushSettings(): Promise<void> {
    if (!this.client || this.client.state !== State.Running) return;
    const settings = await this.settings();
    this.log.appendLine(`[codeloop] settings: ${JSON.stringify(redact(settings))}`);
    await this.client.sendNotification("workspace/didChangeConfiguration", { settings: { codeloop: settings } });
  }

  private onConfig(e: vscode.ConfigurationChangeEvent): void {
    if (!e.affectsConfiguration("codeloop")) return;
    if (e.affectsConfiguration("codeloop.mode") && this.config().get("mode") === "bypass") this.warnBypass();
    this.chat.setEnv({ model: this.modelLabel(), mode: this.config().get<string>("mode") ?? "ask" });
    this.updateStatus();
    if (e.affectsConfiguration("codeloop.pythonPath")) void this.restart();
    else void this.pushSettings();
  }

  private warnBypass(): void {
    void vscode.window.showWarningMessage(
      "codeloop is in bypass mode: it will edit files and run commands without asking.",
      "Switch to ask mode",
    ).then((x) => { if (x) void this.config().update("mode", "ask", vscode.ConfigurationTarget.Global); });
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
    const running = !!this.chat.state.running || this.awaitingStart;
    const st = this.chat.env.serverState;
    const icon = st === "error" || st === "stopped" ? "$(error)" : running ? "$(loading~spin)" : "$(sparkle)";
    this.status.text = `${icon} codeloop: ${this.modelLabel()}`;
    this.status.tooltip = `codeloop — ${st === "running" ? (running ? "running a turn" : "idle") : st}. Click to open the chat.`;
  }

  // ---- the language client ------------------------------------------------------------------
  private async ready(): Promise<LanguageClient | undefined> {
    if (this.starting) await this.starting;
    const client = this.client;
    if (client && client.state !== State.Running && this.restarting) {
      // The language client is bringing a crashed server back: wait for it.
      await new Promise<void>((resolve) => {
        const timer = setTimeout(() => { sub.dispose(); resolve(); }, 30_000);
        const sub = client.onDidChangeState((e) => {
          if (e.newState === State.Running) { clearTimeout(timer); sub.dispose(); resolve(); }
        });
      });
    }
    return client?.state === State.Running ? client : undefined;
  }

  start(): Promise<void> {
    this.starting = this.doStart().finally(() => { this.starting = undefined; });
    return this.starting;
  }

  private async doStart(): Promise<void> {
    this.chat.setEnv({ serverState: "starting" });
    const folder = vscode.workspace.workspaceFolders?.[0]?.uri.fsPath;
    const { python, source } = await resolvePython(this.log);
    this.log.appendLine(`[codeloop] python: ${python} (${source})`);
    const problem = await probeCodeloop(python, folder);
    if (problem) {
      this.chat.setEnv({ serverState: "error" });
      this.updateStatus();
      this.log.appendLine(`[codeloop] cannot import codeloop with ${python}: ${problem}`);
      const msg = `codeloop is not installed for ${python} (${source}). Install it with \`${python} -m pip install codeloop\` ` +
        "(or `pip install -e <path to the codeloop repo>`), or point the setting codeloop.pythonPath at a Python that has it.";
      this.notice("error", msg);
      void vscode.window.showErrorMessage(msg, "Open Settings", "Show Log").then((x) => {
        if (x === "Open Settings") void vscode.commands.executeCommand("workbench.action.openSettings", "codeloop.pythonPath");
        if (x === "Show Log") this.log.show();
      });
      return;
    }
    const serverOptions: ServerOptions = {
      command: python, args: ["-m", "codeloop", "lsp"], // stdio; no transport: it would append --stdio
      options: { cwd: folder, env: { ...process.env, PYTHONUNBUFFERED: "1" } },
    };
    const errorHandler: ErrorHandler = {
      error: (_e, _m, count) => ({ action: (count ?? 0) <= 3 ? ErrorAction.Continue : ErrorAction.Shutdown }),
      closed: () => {
        this.onServerGone("The codeloop server stopped unexpectedly");
        const now = Date.now();
        this.crashes = [...this.crashes.filter((t) => now - t < 180_000), now];
        if (this.crashes.length <= 4) {
          this.restarting = true;
          this.notice("warning", "The codeloop server crashed; restarting it…");
          return { action: CloseAction.Restart, message: "The codeloop server crashed and is being restarted. See “codeloop: Show Server Log”." };
        }
        this.chat.setEnv({ serverState: "error" });
        this.updateStatus();
        return { action: CloseAction.DoNotRestart, message: "The codeloop server crashed 5 times in 3 minutes and will not be restarted. Fix the problem (see the log), then run “codeloop: Restart Language Server”." };
      },
    };
    const clientOptions: LanguageClientOptions = {
      documentSelector: [{ scheme: "file" }, { scheme: "untitled" }],
      initializationOptions: { settings: await this.settings() },
      outputChannel: this.log,
      errorHandler,
      workspaceFolder: vscode.workspace.workspaceFolders?.[0],
      middleware: {
        executeCommand: (command, args, next) =>
          FOCUSED_COMMANDS.includes(command) ? this.runFocused(command, args, async (c, a) => next(c, a)) : next(command, args),
      },
    };
    const client = new LanguageClient("codeloop", "codeloop", serverOptions, clientOptions);
    client.registerFeature(new CodeloopFeature());
    client.onNotification(P.EVENT, (p: P.EventParams) => this.onEvent(p));
    client.onNotification(P.TERMINAL_STARTED, (p: P.TerminalStartedParams) => { this.terminal.started(p); void this.refreshProcesses(); });
    client.onNotification(P.TERMINAL_OUTPUT, (p: P.TerminalOutputParams) => this.terminal.output(p));
    client.onNotification(P.TERMINAL_EXITED, (p: P.TerminalExitedParams) => { this.terminal.exited(p); void this.refreshProcesses(); });
    client.onNotification(P.PROPOSAL_RESOLVED, (p: P.ProposalResolvedParams) => {
      if (p.proposal) this.chat.dispatch({ a: "proposal", params: p.proposal, review: false });
      this.proposals.resolved(p.proposalId, p.status, p.message);
    });
    client.onRequest(P.PROPOSAL_REVIEW, (p: P.ProposalReviewParams, token) => this.proposals.review(p, token));
    client.onRequest(P.APPROVAL_REQUEST, (p: P.ApprovalRequestParams, token) => this.approval(p, token));
    client.onRequest(P.DOCUMENT_SAVE, (p: { uris?: string[] }) => this.save(p));
    client.onRequest(P.DIAGNOSTICS_GET, (p: unknown) => this.diagnostics(p));
    client.onDidChangeState((e) => {
      if (e.newState === State.Running) this.restarting = false;
      const st = e.newState === State.Running ? "running" : e.newState === State.Starting ? "starting" : "stopped";
      this.chat.setEnv({ serverState: st });
      this.updateStatus();
    });
    this.client = client;
    try {
      await client.start();
      this.chat.setEnv({ serverState: "running" });
      this.log.appendLine(`[codeloop] server started with ${JSON.stringify(redact(await this.settings()))}`);
    } catch (e) {
      this.chat.setEnv({ serverState: "error" });
      this.notice("error", `The codeloop server failed to start: ${errText(e)}`);
    }
    this.updateStatus();
  }

  private onServerGone(why: string): void {
    this.proposals.dropAll(why);
    for (const [id, resolve] of this.approvals) {
      this.chat.dispatch({ a: "approvalStatus", id, answer: "cancelled" });
      resolve({ answer: "deny" });
    }
    this.approvals.clear();
    if (this.chat.state.running) {
      this.chat.dispatch({ a: "event", event: { type: "turnEnd", status: "error", message: why } });
    }
  }

  async restart(): Promise<void> {
    const old = this.client;
    this.client = undefined;
    this.onServerGone("The codeloop server was restarted");
    if (old) { try { await old.stop(); } catch { /* already dead */ } }
    this.crashes = [];
    await this.start();
  }

  async stop(): Promise<void> {
    const c = this.client;
    this.client = undefined;
    if (c) await c.stop();
  }

  dispose(): void {
    for (const s of this.subs) s.dispose();
    this.proposals.dispose();
    this.terminal.dispose();
    this.status.dispose();
    this.log.dispose();
  }
}

function errText(e: unknown): string {
  if (e && typeof e === "object" && "message" in e) return String((e as { message: unknown }).message);
  return String(e);
}

let instance: Codeloop | undefined;

export async function activate(context: vscode.ExtensionContext): Promise<{ state: () => unknown }> {
  instance = new Codeloop(context);
  context.subscriptions.push(instance);
  instance.register();
  void instance.start();
  void PROPOSAL_SCHEME;
  return { state: () => instance?.chat.state };
}

export async function deactivate(): Promise<void> {
  await instance?.stop();
}
