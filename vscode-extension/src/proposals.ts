/**
 * Reviewing proposals. Each proposed file is an in-memory, *editable* document (scheme
 * `codeloop-proposal`) on the right of VS Code's diff editor, the current file on the left.
 *
 * Per-hunk review: Keep / Undo on each hunk where the code is (CodeLens in the diff editor),
 * the same on the chat card, Keep All / Undo All in the diff editor's title bar, and keys
 * (next/previous hunk, keep, undo, accept the rest). One state shown in both places: the
 * text of the proposed side (see shared/review.ts). Undo puts the original lines back into
 * it, so the diff shows what will be applied; VS Code's own "Revert Block" is an Undo too.
 * When every hunk is kept or undone the proposal is answered; Accept answers it at once,
 * keeping the hunks not undone. The user's own edits on the proposed side are applied with it
 * (`decision: "edited"`). Closing the diff without answering leaves the proposal pending.
 */
import * as vscode from "vscode";
import type { ProposalDecision, ProposalFile, ProposalReviewParams } from "./protocol";
import {
  type HunkDecision, type HunkSpec, type HunkState, hunkContents, hunkTexts, reconcile, regionOffsets, reviewDecision,
} from "./shared/review";
import type { HunkUpdate } from "./shared/model";

export const PROPOSAL_SCHEME = "codeloop-proposal";

/** A tiny in-memory file system so the proposed side can be edited (and saved) in place. */
class MemFs implements vscode.FileSystemProvider {
  private readonly files = new Map<string, { data: Uint8Array; mtime: number; ctime: number }>();
  private readonly emitter = new vscode.EventEmitter<vscode.FileChangeEvent[]>();
  readonly onDidChangeFile = this.emitter.event;

  set(uri: vscode.Uri, text: string, notify = false): void {
    const now = Date.now();
    const prev = this.files.get(uri.path);
    this.files.set(uri.path, { data: new TextEncoder().encode(text), mtime: now, ctime: prev?.ctime ?? now });
    if (notify) this.emitter.fire([{ type: vscode.FileChangeType.Changed, uri }]);
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
  decisions: Map<string, Map<number, HunkDecision>>; // file uri -> hunk id -> decision
  /** What an undone hunk's lines were when it was undone (Keep puts them back). */
  undoneText: Map<string, Map<number, string>>;
}

export interface ProposalUi {
  /** A proposal arrived (review) or was auto-applied (review=false). */
  show(params: ProposalReviewParams, review: boolean): void;
  status(proposalId: string, status: string, message?: string): void;
  /** The hunks' states changed (from the editor or the card). */
  hunks(proposalId: string, files: Record<string, HunkUpdate>): void;
}

/** What a Keep/Undo command acts on; CodeLens and the card pass it, keys take the cursor's hunk. */
export interface HunkRef { proposalId: string; uri: string; hunkId: number }

const specs = (f: ProposalFile): HunkSpec[] => (f.hunks ?? []).map((h) => ({
  id: h.id, oldStart: h.oldStart ?? 0, oldLines: h.oldLines ?? 0, newStart: h.newStart ?? 0, newLines: h.newLines ?? 0,
}));

export class ProposalManager implements vscode.Disposable {
  private readonly fs = new MemFs();
  private readonly pending = new Map<string, Pending>();
  private readonly subs: vscode.Disposable[] = [];
  private readonly lensEmitter = new vscode.EventEmitter<void>();
  private refreshTimer: ReturnType<typeof setTimeout> | undefined;

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
    this.subs.push(vscode.languages.registerCodeLensProvider({ scheme: PROPOSAL_SCHEME }, {
      onDidChangeCodeLenses: this.lensEmitter.event,
      provideCodeLenses: (doc) => this.codeLenses(doc),
    }));
    this.subs.push(vscode.workspace.onDidChangeTextDocument((e) => {
      if (e.document.uri.scheme === PROPOSAL_SCHEME && e.contentChanges.length) this.scheduleRefresh();
    }));
    this.subs.push(vscode.window.onDidChangeActiveTextEditor(() => this.updateReviewing()));
    this.subs.push(vscode.window.tabGroups.onDidChangeTabs(() => this.updateReviewing()));
  }

  get pendingIds(): string[] { return [...this.pending.keys()]; }
  get(proposalId: string): ProposalReviewParams | undefined { return this.pending.get(proposalId)?.params; }

  /** Handles `codeloop/proposal/review`; resolves when the user decides. */
  review(params: ProposalReviewParams, token: vscode.CancellationToken): Promise<ProposalDecision> {
    const old = this.pending.get(params.proposalId);
    if (old) old.resolve({ decision: "reject", feedback: "superseded" });
    return new Promise<ProposalDecision>((resolve) => {
      const p: Pending = { params, resolve, proposed: new Map(), original: new Map(), decisions: new Map(), undoneText: new Map() };
      for (const f of params.files ?? []) {
        const rel = (f.path || vscode.Uri.parse(f.uri).path.split("/").pop() || "file").replace(/^\/+/, "");
        const right = vscode.Uri.from({ scheme: PROPOSAL_SCHEME, path: `/${params.proposalId}/proposed/${rel}` });
        this.fs.set(right, f.newText ?? "");
        p.proposed.set(f.uri, right);
        p.decisions.set(f.uri, new Map((f.hunks ?? []).map((h) => [h.id, "pending" as HunkDecision])));
        p.undoneText.set(f.uri, new Map());
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
    this.updateReviewing();
  }

  /** Which proposal a diff editor (or its proposed document) belongs to. */
  proposalIdFor(uri: vscode.Uri | undefined): string | undefined {
    if (!uri) return undefined;
    if (uri.scheme === PROPOSAL_SCHEME) return uri.path.split("/")[1];
    for (const [id, p] of this.pending) for (const f of p.params.files) if (f.uri === uri.toString()) return id;
    return undefined;
  }

  // ---- the state: the text of the proposed side --------------------------------------------
  private doc(right: vscode.Uri): vscode.TextDocument | undefined {
    return vscode.workspace.textDocuments.find((d) => d.uri.toString() === right.toString());
  }

  private currentText(p: Pending, f: ProposalFile): string {
    const right = p.proposed.get(f.uri)!;
    const doc = this.doc(right);
    return doc ? doc.getText() : this.fs.text(right) ?? f.newText;
  }

  /** Every hunk's decision, content and place, with the decisions reconciled with the text. */
  private states(p: Pending): Map<string, HunkState[]> {
    const out = new Map<string, HunkState[]>();
    for (const f of p.params.files) {
      const hunks = specs(f);
      const contents = hunkContents(f.oldText ?? "", f.newText ?? "", this.currentText(p, f), hunks);
      const decisions = reconcile(p.decisions.get(f.uri) ?? new Map(), hunks, contents);
      for (const [id, d] of decisions) if (d !== "undone") p.undoneText.get(f.uri)?.delete(id);
      p.decisions.set(f.uri, decisions);
      out.set(f.uri, hunks.map((h, i) => ({ id: h.id, decision: decisions.get(h.id) ?? "pending", content: contents[i].content, region: contents[i].region })));
    }
    return out;
  }

  private scheduleRefresh(): void {
    if (this.refreshTimer) clearTimeout(this.refreshTimer);
    this.refreshTimer = setTimeout(() => { this.refreshTimer = undefined; for (const id of this.pending.keys()) this.refresh(id); }, 120);
  }

  /** Recomputes the hunks' states of one proposal and shows them (card and CodeLens). */
  private refresh(proposalId: string): Map<string, HunkState[]> | undefined {
    const p = this.pending.get(proposalId);
    if (!p) return undefined;
    const states = this.states(p);
    const files: Record<string, HunkUpdate> = {};
    for (const f of p.params.files) {
      const st = states.get(f.uri) ?? [];
      const userEdits = reviewDecisionFor(p, f, this.currentText(p, f)).decision === "edited";
      files[f.uri] = { hunks: st.map((s) => ({ id: s.id, decision: s.decision, content: s.content, start: s.region.start, end: s.region.end })), userEdits };
    }
    this.ui.hunks(proposalId, files);
    this.lensEmitter.fire();
    return states;
  }

  // ---- Keep / Undo ---------------------------------------------------------------------------
  /** Keep or Undo one hunk; answers the proposal when no hunk is left pending. */
  async setHunk(ref: HunkRef, action: "keep" | "undo"): Promise<void> {
    const p = this.pending.get(ref.proposalId);
    const f = p?.params.files.find((x) => x.uri === ref.uri);
    if (!p || !f) return;
    const hunks = specs(f);
    const i = hunks.findIndex((h) => h.id === ref.hunkId);
    if (i < 0) return;
    const current = this.currentText(p, f);
    const contents = hunkContents(f.oldText ?? "", f.newText ?? "", current, hunks);
    const texts = hunkTexts(f.oldText ?? "", f.newText ?? "", hunks[i]);
    const undone = p.undoneText.get(f.uri)!;
    let replacement: string;
    if (action === "undo") {
      if (contents[i].content !== "original") undone.set(ref.hunkId, contents[i].text);
      replacement = texts.original;
    } else {
      replacement = contents[i].content === "original" ? undone.get(ref.hunkId) ?? texts.proposed : contents[i].text;
      undone.delete(ref.hunkId);
    }
    p.decisions.get(f.uri)!.set(ref.hunkId, action === "undo" ? "undone" : "kept");
    if (replacement !== contents[i].text) await this.replace(p, f, current, contents[i].region, replacement);
    const states = this.refresh(ref.proposalId);
    if (states && [...states.values()].every((st) => st.every((s) => s.decision !== "pending"))) this.accept(ref.proposalId);
  }

  private async replace(p: Pending, f: ProposalFile, current: string, region: { start: number; end: number }, text: string): Promise<void> {
    const right = p.proposed.get(f.uri)!;
    const doc = this.doc(right);
    if (!doc) {
      const { start, end } = regionOffsets(current, region);
      this.fs.set(right, current.slice(0, start) + text + current.slice(end), true);
      return;
    }
    const { start, end } = regionOffsets(doc.getText(), region);
    const edit = new vscode.WorkspaceEdit();
    edit.replace(right, new vscode.Range(doc.positionAt(start), doc.positionAt(end)), text);
    if (!await vscode.workspace.applyEdit(edit)) this.log.appendLine(`[codeloop] could not change the proposed side of ${f.path}`);
  }

  /** Keep/Undo from a key: the hunk at the cursor in the active proposal editor (else the next pending one). */
  async hunkCommand(action: "keep" | "undo", ref?: HunkRef): Promise<void> {
    if (ref && typeof ref === "object" && "proposalId" in ref) return this.setHunk(ref, action);
    const at = this.cursorHunk();
    if (!at) { void vscode.window.showInformationMessage("codeloop: put the cursor on a hunk of a proposed edit."); return; }
    await this.setHunk(at.ref, action);
    const p = this.pending.get(at.ref.proposalId);
    if (!p) return; // that answered the proposal
    const states = this.states(p);
    if ((states.get(at.ref.uri) ?? []).some((s) => s.decision === "pending")) { await this.moveTo(1, true); return; }
    // this file is decided: on to the next file with undecided hunks
    const next = p.params.files.find((f) => (states.get(f.uri) ?? []).some((s) => s.decision === "pending"));
    if (next) await this.openDiff(at.ref.proposalId, next.uri);
  }

  /** The editor showing a proposed side: the active one, else a visible one. */
  private reviewEditor(): vscode.TextEditor | undefined {
    const active = vscode.window.activeTextEditor;
    if (active?.document.uri.scheme === PROPOSAL_SCHEME) return active;
    return vscode.window.visibleTextEditors.find((e) => e.document.uri.scheme === PROPOSAL_SCHEME && this.pending.has(e.document.uri.path.split("/")[1]));
  }

  private editorHunks(editor: vscode.TextEditor): { p: Pending; f: ProposalFile; states: HunkState[] } | undefined {
    const id = editor.document.uri.path.split("/")[1];
    const p = this.pending.get(id);
    if (!p) return undefined;
    const f = p.params.files.find((x) => p.proposed.get(x.uri)?.toString() === editor.document.uri.toString());
    if (!f) return undefined;
    return { p, f, states: this.states(p).get(f.uri) ?? [] };
  }

  private cursorHunk(): { ref: HunkRef } | undefined {
    const editor = this.reviewEditor();
    const found = editor && this.editorHunks(editor);
    if (!editor || !found) return undefined;
    const line = editor.selection.active.line;
    const { states } = found;
    const inside = states.find((s) => line >= s.region.start && line < Math.max(s.region.end, s.region.start + 1));
    const next = inside ?? states.find((s) => s.decision === "pending" && s.region.start >= line) ?? states.find((s) => s.decision === "pending") ?? states[0];
    return next ? { ref: { proposalId: found.p.params.proposalId, uri: found.f.uri, hunkId: next.id } } : undefined;
  }

  /** Next (+1) or previous (-1) hunk: moves the cursor there in the proposed side. */
  async moveTo(direction: 1 | -1, pendingOnly = false): Promise<void> {
    const editor = this.reviewEditor();
    const found = editor && this.editorHunks(editor);
    if (!editor || !found) return;
    const line = editor.selection.active.line;
    const all = found.states.filter((s) => !pendingOnly || s.decision === "pending");
    if (!all.length) return;
    const sorted = [...all].sort((a, b) => a.region.start - b.region.start);
    const target = direction > 0
      ? sorted.find((s) => s.region.start > line) ?? sorted[0]
      : [...sorted].reverse().find((s) => s.region.start < line) ?? sorted[sorted.length - 1];
    const at = Math.min(target.region.start, Math.max(0, editor.document.lineCount - 1));
    const pos = new vscode.Position(at, 0);
    editor.selection = new vscode.Selection(pos, pos);
    editor.revealRange(new vscode.Range(pos, pos), vscode.TextEditorRevealType.InCenterIfOutsideViewport);
    if (vscode.window.activeTextEditor !== editor) await vscode.window.showTextDocument(editor.document, { viewColumn: editor.viewColumn, preserveFocus: false });
  }

  private codeLenses(doc: vscode.TextDocument): vscode.CodeLens[] {
    const id = doc.uri.path.split("/")[1];
    const p = this.pending.get(id);
    const f = p?.params.files.find((x) => p.proposed.get(x.uri)?.toString() === doc.uri.toString());
    if (!p || !f) return [];
    const states = this.states(p).get(f.uri) ?? [];
    const lenses: vscode.CodeLens[] = [];
    states.forEach((s, i) => {
      const line = Math.min(s.region.start, Math.max(0, doc.lineCount - 1));
      const range = new vscode.Range(line, 0, line, 0);
      const ref: HunkRef = { proposalId: id, uri: f.uri, hunkId: s.id };
      const where = `hunk ${i + 1} of ${states.length}`;
      if (s.decision === "undone") {
        lenses.push(new vscode.CodeLens(range, { title: `$(discard) Undone (${where})`, command: "codeloop.keepHunk", arguments: [ref], tooltip: "This hunk will not be applied. Click to keep it after all." }));
        lenses.push(new vscode.CodeLens(range, { title: "$(check) Keep", command: "codeloop.keepHunk", arguments: [ref], tooltip: "Keep this hunk (Alt+Y)" }));
        return;
      }
      const state = s.decision === "kept" ? "$(pass-filled) Kept" : s.content === "edited" ? "$(edit) Edited by you" : "";
      if (state) lenses.push(new vscode.CodeLens(range, { title: `${state} (${where})`, command: "codeloop.nextHunk", arguments: [], tooltip: "Go to the next hunk (Alt+F5)" }));
      if (s.decision !== "kept") lenses.push(new vscode.CodeLens(range, { title: state ? "$(check) Keep" : `$(check) Keep (${where})`, command: "codeloop.keepHunk", arguments: [ref], tooltip: "Keep this hunk (Alt+Y)" }));
      lenses.push(new vscode.CodeLens(range, { title: "$(discard) Undo", command: "codeloop.undoHunk", arguments: [ref], tooltip: "Undo this hunk: the original lines stay (Alt+N)" }));
    });
    return lenses;
  }

  // ---- answering -------------------------------------------------------------------------------
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

  /** Accept what the proposed side shows: every hunk not undone, with the user's edits. */
  accept(proposalId: string): boolean {
    const p = this.pending.get(proposalId);
    if (!p) return false;
    this.states(p); // reconcile the decisions with the text first
    const decision: ProposalDecision = reviewDecision(p.params.files.map((f) => ({
      uri: f.uri, original: f.oldText ?? "", proposed: f.newText ?? "", current: this.currentText(p, f), hunks: specs(f),
      decisions: p.decisions.get(f.uri) ?? new Map(),
    })));
    const status = decision.decision === "accept" ? "accepted" : decision.decision === "partial" ? "partial" : decision.decision === "edited" ? "edited" : "rejected";
    this.refresh(proposalId); // the card keeps the final hunk states
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
    this.lensEmitter.fire();
    this.ui.status(proposalId, status, message);
    void this.closeEditors(proposalId).finally(() => {
      for (const u of [...p.proposed.values(), ...p.original.values()]) if (u.scheme === PROPOSAL_SCHEME) this.fs.delete(u);
      this.updateReviewing();
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

  /** `codeloop.reviewing`: the active editor is a pending proposal's diff (the review keys apply). */
  private updateReviewing(): void {
    const tab = vscode.window.tabGroups.activeTabGroup.activeTab?.input;
    const uri = tab instanceof vscode.TabInputTextDiff ? tab.modified : vscode.window.activeTextEditor?.document.uri;
    const on = !!uri && uri.scheme === PROPOSAL_SCHEME && this.pending.has(uri.path.split("/")[1]);
    void vscode.commands.executeCommand("setContext", "codeloop.reviewing", on);
  }

  dispose(): void {
    this.dropAll("the extension was deactivated");
    for (const s of this.subs) s.dispose();
    this.lensEmitter.dispose();
  }
}

/** The decision one file alone would give (to tell whether it holds the user's own edits). */
function reviewDecisionFor(p: Pending, f: ProposalFile, current: string) {
  return reviewDecision([{ uri: f.uri, original: f.oldText ?? "", proposed: f.newText ?? "", current, hunks: specs(f), decisions: p.decisions.get(f.uri) ?? new Map() }]);
}
