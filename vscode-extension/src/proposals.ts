/**
 * Reviewing proposals: each proposed file is an in-memory, *editable* document
 * (scheme `codeloop-proposal`) shown on the right of VS Code's diff editor, the current
 * text on the left. The user answers from the chat card (accept, reject with a reason,
 * per-hunk checkboxes) or the diff editor's title bar. If the user edited the proposed
 * side, the server gets `decision: "edited"` with their text. Closing the diff without
 * answering leaves the proposal pending.
 */
import * as vscode from "vscode";
import { decisionForHunks } from "./shared/model";
import type { ProposalDecision, ProposalReviewParams } from "./protocol";

export const PROPOSAL_SCHEME = "codeloop-proposal";

/** A tiny in-memory file system so the proposed side can be edited (and saved) in place. */
class MemFs implements vscode.FileSystemProvider {
  private readonly files = new Map<string, { data: Uint8Array; mtime: number; ctime: number }>();
  private readonly emitter = new vscode.EventEmitter<vscode.FileChangeEvent[]>();
  readonly onDidChangeFile = this.emitter.event;

  set(uri: vscode.Uri, text: string): void {
    const now = Date.now();
    this.files.set(uri.path, { data: new TextEncoder().encode(text), mtime: now, ctime: now });
  }
  text(uri: vscode.Uri): string | undefined {
    const f = this.files.get(uri.path);
    return f ? new TextDecoder().decode(f.data) : undefined;
  }
  delete(uri: vscode.Uri): void { this.files.delete(uri.path); }

  watch(): vscode.Disposable { return new vscode.Disposable(() => undefined); }
  stat(uri: vscode.Uri): vscode.FileStat {
    const f = this.files.get(uri.path);
    if (f) return { type: vscode.FileType.File, ctime: f.ctime, mtime: f.mtime, size: f.data.byteLength };
    const prefix = uri.path.endsWith("/") ? uri.path : uri.path + "/";
    for (const k of this.files.keys()) if (k.startsWith(prefix)) return { type: vscode.FileType.Directory, ctime: 0, mtime: 0, size: 0 };
    throw vscode.FileSystemError.FileNotFound(uri);
  }
  readDirectory(): [string, vscode.FileType][] { return []; }
  createDirectory(): void { /* implicit */ }
  readFile(uri: vscode.Uri): Uint8Array {
    const f = this.files.get(uri.path);
    if (!f) throw vscode.FileSystemError.FileNotFound(uri);
    return f.data;
  }
  writeFile(uri: vscode.Uri, content: Uint8Array): void {
    const prev = this.files.get(uri.path);
    this.files.set(uri.path, { data: content, mtime: Date.now(), ctime: prev?.ctime ?? Date.now() });
    this.emitter.fire([{ type: vscode.FileChangeType.Changed, uri }]);
  }
  rename(): void { throw vscode.FileSystemError.NoPermissions("proposals cannot be renamed"); }
}

interface Pending {
  params: ProposalReviewParams;
  resolve: (d: ProposalDecision) => void;
  proposed: Map<string, vscode.Uri>; // file uri -> proposal document uri
  original: Map<string, vscode.Uri>; // file uri -> left side uri
}

export interface ProposalUi {
  /** A proposal arrived (review) or was auto-applied (review=false). */
  show(params: ProposalReviewParams, review: boolean): void;
  status(proposalId: string, status: string, message?: string): void;
}

export class ProposalManager implements vscode.Disposable {
  private readonly fs = new MemFs();
  private readonly pending = new Map<string, Pending>();
  private readonly subs: vscode.Disposable[] = [];

  constructor(private readonly ui: ProposalUi, private readonly log: vscode.OutputChannel) {
    this.subs.push(vscode.workspace.registerFileSystemProvider(PROPOSAL_SCHEME, {
      onDidChangeFile: this.fs.onDidChangeFile,
      watch: () => this.fs.watch(),
      stat: (u) => this.fs.stat(u),
      readDirectory: () => this.fs.readDirectory(),
      createDirectory: () => this.fs.createDirectory(),
      readFile: (u) => this.fs.readFile(u),
      writeFile: (u, c) => this.fs.writeFile(u, c),
      delete: (u) => this.fs.delete(u),
      rename: () => this.fs.rename(),
    }, { isCaseSensitive: true }));
  }

  get pendingIds(): string[] { return [...this.pending.keys()]; }
  get(proposalId: string): ProposalReviewParams | undefined { return this.pending.get(proposalId)?.params; }

  /** Handles `codeloop/proposal/review`; resolves when the user decides. */
  review(params: ProposalReviewParams, token: vscode.CancellationToken): Promise<ProposalDecision> {
    const old = this.pending.get(params.proposalId);
    if (old) old.resolve({ decision: "reject", feedback: "superseded" });
    return new Promise<ProposalDecision>((resolve) => {
      const p: Pending = { params, resolve, proposed: new Map(), original: new Map() };
      for (const f of params.files ?? []) {
        const rel = (f.path || vscode.Uri.parse(f.uri).path.split("/").pop() || "file").replace(/^\/+/, "");
        const right = vscode.Uri.from({ scheme: PROPOSAL_SCHEME, path: `/${params.proposalId}/proposed/${rel}` });
        this.fs.set(right, f.newText ?? "");
        p.proposed.set(f.uri, right);
        if (f.isNew) {
          const left = vscode.Uri.from({ scheme: PROPOSAL_SCHEME, path: `/${params.proposalId}/original/${rel}` });
          this.fs.set(left, f.oldText ?? "");
          p.original.set(f.uri, left);
        } else {
          p.original.set(f.uri, vscode.Uri.parse(f.uri));
        }
      }
      this.pending.set(params.proposalId, p);
      this.updateContext();
      this.ui.show(params, true);
      token.onCancellationRequested(() => {
        if (this.pending.get(params.proposalId) === p) {
          this.finish(params.proposalId, "cancelled", undefined);
          resolve({ decision: "reject", feedback: "cancelled" });
        }
      });
      const first = params.files?.[0];
      if (first) void this.openDiff(params.proposalId, first.uri, true);
    });
  }

  async openDiff(proposalId: string, fileUri?: string, preserveFocus = false): Promise<void> {
    const p = this.pending.get(proposalId);
    if (!p) return;
    const uri = fileUri ?? p.params.files[0]?.uri;
    const left = p.original.get(uri);
    const right = p.proposed.get(uri);
    if (!left || !right) return;
    const file = p.params.files.find((f) => f.uri === uri);
    const name = (file?.path ?? uri).split("/").pop();
    const title = `${name} ${file?.isNew ? "(new file)" : "(current)"} ↔ proposed by codeloop`;
    try {
      await vscode.commands.executeCommand("vscode.diff", left, right, title, { preview: false, preserveFocus });
    } catch (e) {
      this.log.appendLine(`[codeloop] could not open the diff for ${proposalId}: ${e}`);
    }
  }

  /** Which proposal a diff editor (or its proposed document) belongs to. */
  proposalIdFor(uri: vscode.Uri | undefined): string | undefined {
    if (!uri) return undefined;
    if (uri.scheme === PROPOSAL_SCHEME) return uri.path.split("/")[1];
    for (const [id, p] of this.pending) for (const f of p.params.files) if (f.uri === uri.toString()) return id;
    return undefined;
  }

  /**
   * Accept or Reject from the diff editor's title bar or the command palette: the proposal of
   * that editor, the only pending one, or one picked from a list.
   */
  async command(action: "accept" | "reject", uri?: vscode.Uri): Promise<void> {
    let id = this.proposalIdFor(uri ?? vscode.window.activeTextEditor?.document.uri);
    const pending = this.pendingIds;
    if (!id && pending.length === 1) id = pending[0];
    if (!id && pending.length > 1) {
      id = await vscode.window.showQuickPick(pending.map((p) => ({
        label: p, description: this.get(p)?.files.map((f) => f.path).join(", "),
      })), { placeHolder: `Which proposal to ${action}?` }).then((x) => x?.label);
    }
    if (!id) { void vscode.window.showInformationMessage("codeloop: no pending proposal."); return; }
    if (action === "accept") { this.accept(id); return; }
    const reason = await vscode.window.showInputBox({ prompt: "Why reject it? (optional, told to the model)", placeHolder: "e.g. use pathlib instead" });
    if (reason === undefined) return; // escape: keep it pending
    this.reject(id, reason);
  }

  /** Accept: all of it, the kept hunks, or the user's edited version of the proposed side. */
  accept(proposalId: string, keptHunks?: Record<string, number[]>): boolean {
    const p = this.pending.get(proposalId);
    if (!p) return false;
    const edited: Record<string, string> = {};
    let anyEdited = false;
    for (const f of p.params.files) {
      const right = p.proposed.get(f.uri)!;
      const doc = vscode.workspace.textDocuments.find((d) => d.uri.toString() === right.toString());
      const text = doc ? doc.getText() : this.fs.text(right) ?? f.newText;
      edited[f.uri] = text;
      if (text !== f.newText) anyEdited = true;
    }
    let decision: ProposalDecision;
    if (anyEdited) decision = { decision: "edited", editedText: edited };
    else decision = decisionForHunks(p.params.files, keptHunks ?? {});
    if (decision.decision === "reject") decision = { decision: "reject", feedback: "the user unchecked every hunk" };
    const status = decision.decision === "accept" ? "accepted" : decision.decision === "partial" ? "partial" : decision.decision === "edited" ? "edited" : "rejected";
    this.finish(proposalId, status, undefined);
    p.resolve(decision);
    return true;
  }

  reject(proposalId: string, feedback?: string): boolean {
    const p = this.pending.get(proposalId);
    if (!p) return false;
    const fb = feedback?.trim();
    this.finish(proposalId, "rejected", fb || undefined);
    p.resolve(fb ? { decision: "reject", feedback: fb } : { decision: "reject" });
    return true;
  }

  /** codeloop/proposal/resolved */
  resolved(proposalId: string, status: string, message?: string): void {
    if (this.pending.has(proposalId)) this.finish(proposalId, status, message);
    else this.ui.status(proposalId, status, message);
  }

  /** The server went away: every pending review is void. */
  dropAll(reason: string): void {
    for (const id of [...this.pending.keys()]) this.finish(id, "cancelled", reason);
  }

  private finish(proposalId: string, status: string, message: string | undefined): void {
    const p = this.pending.get(proposalId);
    if (!p) return;
    this.pending.delete(proposalId);
    this.updateContext();
    this.ui.status(proposalId, status, message);
    void this.closeEditors(proposalId).finally(() => {
      for (const u of [...p.proposed.values(), ...p.original.values()]) if (u.scheme === PROPOSAL_SCHEME) this.fs.delete(u);
    });
  }

  private async closeEditors(proposalId: string): Promise<void> {
    const mine = (u: unknown) => u instanceof vscode.Uri && u.scheme === PROPOSAL_SCHEME && u.path.startsWith(`/${proposalId}/`);
    // An edited proposed side is dirty: save it into the in-memory store so closing does not prompt.
    for (const d of vscode.workspace.textDocuments) if (mine(d.uri) && d.isDirty) { try { await d.save(); } catch { /* ignore */ } }
    const tabs: vscode.Tab[] = [];
    for (const g of vscode.window.tabGroups.all) {
      for (const t of g.tabs) {
        const input = t.input;
        if (input instanceof vscode.TabInputTextDiff && (mine(input.modified) || mine(input.original))) tabs.push(t);
        else if (input instanceof vscode.TabInputText && mine(input.uri)) tabs.push(t);
      }
    }
    if (tabs.length) { try { await vscode.window.tabGroups.close(tabs, true); } catch { /* already closed */ } }
  }

  private updateContext(): void {
    void vscode.commands.executeCommand("setContext", "codeloop.pendingProposals", this.pending.size > 0);
  }

  dispose(): void {
    this.dropAll("the extension was deactivated");
    for (const s of this.subs) s.dispose();
  }
}
