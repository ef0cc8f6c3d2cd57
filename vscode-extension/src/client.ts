/**
 * The language client's lifecycle: finds a Python that has codeloop, starts
 * `python -m codeloop lsp` with vscode-languageclient, restarts it when it crashes (up to 4
 * times in 3 minutes), pushes settings, and routes the server's custom notifications and
 * requests to the handlers the extension wires in. Nothing here knows about the chat.
 */
import * as vscode from "vscode";
import {
  CloseAction, ErrorAction, type ErrorHandler, type FeatureState, LanguageClient, type LanguageClientOptions,
  type ServerOptions, type StaticFeature, State,
} from "vscode-languageclient/node";
import * as P from "./protocol";
import { probeCodeloop, resolvePython } from "./python";
import { redact, serverSettings } from "./settings";

export const SECRET_KEY = "codeloop.apiKey";

export type ServerState = "starting" | "running" | "stopped" | "error";

/** What the server asks of the extension, and what the extension hears about the server. */
export interface ServerHandlers {
  event(p: P.EventParams): void;
  terminalStarted(p: P.TerminalStartedParams): void;
  terminalOutput(p: P.TerminalOutputParams): void;
  terminalExited(p: P.TerminalExitedParams): void;
  proposalResolved(p: P.ProposalResolvedParams): void;
  mcpChanged(p: P.McpChangedParams): void;
  proposalReview(p: P.ProposalReviewParams, token: vscode.CancellationToken): Promise<P.ProposalDecision>;
  approval(p: P.ApprovalRequestParams, token: vscode.CancellationToken): Promise<P.ApprovalResult>;
  save(p: { uris?: string[] }): Promise<{ saved: string[] }>;
  diagnostics(p: unknown): unknown;
  /** middleware.executeCommand: the server's workspace/executeCommand commands run through here. */
  executeCommand(command: string, args: unknown[], next: (command: string, args: unknown[]) => Promise<unknown>): Promise<unknown>;
  /** The server's state changed (starting, running, stopped, error). */
  state(st: ServerState): void;
  /** The server went away (crash or restart): everything pending on it is void. */
  gone(why: string): void;
  notice(level: "info" | "warning" | "error", message: string): void;
}

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

export class ServerClient {
  private client: LanguageClient | undefined;
  private restarting = false; // the language client is restarting a crashed server
  private crashes: number[] = [];
  private starting: Promise<void> | undefined;

  constructor(
    private readonly ctx: vscode.ExtensionContext,
    private readonly log: vscode.OutputChannel,
    private readonly handlers: ServerHandlers,
  ) {}

  /** The client, whatever its state (for notifications that may be dropped). */
  get current(): LanguageClient | undefined { return this.client; }

  /** The running client, after a start or a crash restart in progress; undefined if there is none. */
  async ready(): Promise<LanguageClient | undefined> {
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

  async restart(): Promise<void> {
    const old = this.client;
    this.client = undefined;
    this.handlers.gone("The codeloop server was restarted");
    if (old) { try { await old.stop(); } catch { /* already dead */ } }
    this.crashes = [];
    await this.start();
  }

  async stop(): Promise<void> {
    const c = this.client;
    this.client = undefined;
    if (c) await c.stop();
  }

  // ---- settings ---------------------------------------------------------------------------
  async settings(): Promise<Record<string, unknown>> {
    const cfg = vscode.workspace.getConfiguration("codeloop");
    const stored = await this.ctx.secrets.get(SECRET_KEY);
    return serverSettings((k) => cfg.get(k), process.env, stored);
  }

  async pushSettings(): Promise<void> {
    if (!this.client || this.client.state !== State.Running) return;
    const settings = await this.settings();
    this.log.appendLine(`[codeloop] settings: ${JSON.stringify(redact(settings))}`);
    await this.client.sendNotification("workspace/didChangeConfiguration", { settings: { codeloop: settings } });
  }

  // ---- starting -----------------------------------------------------------------------------
  private async doStart(): Promise<void> {
    const h = this.handlers;
    h.state("starting");
    const folder = vscode.workspace.workspaceFolders?.[0]?.uri.fsPath;
    const { python, source } = await resolvePython(this.log);
    this.log.appendLine(`[codeloop] python: ${python} (${source})`);
    const problem = await probeCodeloop(python, folder);
    if (problem) {
      h.state("error");
      this.log.appendLine(`[codeloop] cannot import codeloop with ${python}: ${problem}`);
      const msg = `codeloop is not installed for ${python} (${source}). Install it with \`${python} -m pip install codeloop\` ` +
        "(or `pip install -e <path to the codeloop repo>`), or point the setting codeloop.pythonPath at a Python that has it.";
      h.notice("error", msg);
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
        h.gone("The codeloop server stopped unexpectedly");
        const now = Date.now();
        this.crashes = [...this.crashes.filter((t) => now - t < 180_000), now];
        if (this.crashes.length <= 4) {
          this.restarting = true;
          h.notice("warning", "The codeloop server crashed; restarting it…");
          return { action: CloseAction.Restart, message: "The codeloop server crashed and is being restarted. See “codeloop: Show Server Log”." };
        }
        h.state("error");
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
        executeCommand: (command, args, next) => h.executeCommand(command, args, async (c, a) => next(c, a)),
      },
    };
    const client = new LanguageClient("codeloop", "codeloop", serverOptions, clientOptions);
    client.registerFeature(new CodeloopFeature());
    client.onNotification(P.EVENT, (p: P.EventParams) => h.event(p));
    client.onNotification(P.TERMINAL_STARTED, (p: P.TerminalStartedParams) => h.terminalStarted(p));
    client.onNotification(P.TERMINAL_OUTPUT, (p: P.TerminalOutputParams) => h.terminalOutput(p));
    client.onNotification(P.TERMINAL_EXITED, (p: P.TerminalExitedParams) => h.terminalExited(p));
    client.onNotification(P.PROPOSAL_RESOLVED, (p: P.ProposalResolvedParams) => h.proposalResolved(p));
    client.onNotification(P.MCP_CHANGED, (p: P.McpChangedParams) => h.mcpChanged(p));
    client.onRequest(P.PROPOSAL_REVIEW, (p: P.ProposalReviewParams, token) => h.proposalReview(p, token));
    client.onRequest(P.APPROVAL_REQUEST, (p: P.ApprovalRequestParams, token) => h.approval(p, token));
    client.onRequest(P.DOCUMENT_SAVE, (p: { uris?: string[] }) => h.save(p));
    client.onRequest(P.DIAGNOSTICS_GET, (p: unknown) => h.diagnostics(p));
    client.onDidChangeState((e) => {
      if (e.newState === State.Running) this.restarting = false;
      h.state(e.newState === State.Running ? "running" : e.newState === State.Starting ? "starting" : "stopped");
    });
    this.client = client;
    try {
      await client.start();
      h.state("running");
      this.log.appendLine(`[codeloop] server started with ${JSON.stringify(redact(await this.settings()))}`);
    } catch (e) {
      h.state("error");
      h.notice("error", `The codeloop server failed to start: ${errText(e)}`);
    }
  }
}

export function errText(e: unknown): string {
  if (e && typeof e === "object" && "message" in e) return String((e as { message: unknown }).message);
  return String(e);
}
