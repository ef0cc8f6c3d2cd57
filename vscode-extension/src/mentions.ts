/**
 * @-mentions in the composer: `@path/to/file`, `@folder/`, `@problems`, `@selection`,
 * `@terminal`. The webview completes them (suggestions come from here); when the message is
 * sent they are resolved here, in the extension host, into `contextItems` of
 * codeloop/chat/start (and chips on the message). The text is the source of truth: a mention
 * the user deleted from the text is not sent.
 */
import * as vscode from "vscode";
import type { ContextItem } from "./protocol";
import { MENTION_KEYWORDS, type MentionOption, findMentions } from "./shared/mentions";

const MAX_FILE_CHARS = 200_000;
const MAX_FOLDER_ENTRIES = 300;
const MAX_PROBLEMS = 200;
const MAX_TERMINAL_CHARS = 50_000;

export interface LastCommand { command: string; output: string; exitCode?: number }

/** The last command run in VS Code's own terminals (shell integration), when the editor reports it. */
export class TerminalWatcher implements vscode.Disposable {
  last: LastCommand | undefined;
  private readonly subs: vscode.Disposable[] = [];

  constructor() {
    // VS Code 1.93+ (types here are 1.90): window.onDidStart/EndTerminalShellExecution.
    const w = vscode.window as unknown as {
      onDidStartTerminalShellExecution?: vscode.Event<{ execution: { commandLine?: { value?: string }; read(): AsyncIterable<string> } }>;
      onDidEndTerminalShellExecution?: vscode.Event<{ execution: unknown; exitCode?: number }>;
    };
    if (!w.onDidStartTerminalShellExecution || !w.onDidEndTerminalShellExecution) return;
    const running = new Map<unknown, { command: string; chunks: string[]; size: number; done: Promise<void> }>();
    this.subs.push(w.onDidStartTerminalShellExecution((e) => {
      const rec = { command: e.execution.commandLine?.value ?? "", chunks: [] as string[], size: 0, done: Promise.resolve() };
      rec.done = (async () => {
        try {
          for await (const chunk of e.execution.read()) {
            if (rec.size < MAX_TERMINAL_CHARS) { rec.chunks.push(chunk); rec.size += chunk.length; }
          }
        } catch { /* the terminal went away */ }
      })();
      running.set(e.execution, rec);
    }));
    this.subs.push(w.onDidEndTerminalShellExecution((e) => {
      const rec = running.get(e.execution);
      if (!rec) return;
      running.delete(e.execution);
      void rec.done.then(() => { this.last = { command: rec.command, output: stripAnsi(rec.chunks.join("")), exitCode: e.exitCode }; });
    }));
  }

  dispose(): void { for (const s of this.subs) s.dispose(); }
}

export function stripAnsi(text: string): string {
  // CSI and OSC sequences (colors, shell-integration marks), then stray carriage returns
  return text.replace(/\x1b\][^\x07\x1b]*(\x07|\x1b\\)/g, "").replace(/\x1b\[[0-9;?]*[ -/]*[@-~]/g, "").replace(/\r(?!\n)/g, "");
}

export interface MentionSources {
  editor(): vscode.TextEditor | undefined;
  /** The last command: the user's terminal, else the codeloop terminal's. */
  lastCommand(): LastCommand | undefined;
}

export class Mentions {
  private files: { at: number; list: vscode.Uri[] } | undefined;

  constructor(private readonly sources: MentionSources) {}

  /** Suggestions for what follows `@` (keywords, then matching files and folders). */
  async suggest(query: string): Promise<MentionOption[]> {
    const q = query.toLowerCase();
    const out: MentionOption[] = MENTION_KEYWORDS.filter((k) => k.label.startsWith(q)).map((k) => ({ ...k }));
    const rels = (await this.workspaceFiles()).map((u) => vscode.workspace.asRelativePath(u, false));
    const folders = new Set<string>();
    for (const r of rels) {
      const parts = r.split("/");
      for (let i = 1; i < parts.length; i++) folders.add(parts.slice(0, i).join("/") + "/");
    }
    const score = (p: string) => {
      const l = p.toLowerCase();
      const base = l.split("/").filter(Boolean).pop() ?? l;
      return base.startsWith(q) ? 0 : base.includes(q) ? 1 : l.includes(q) ? 2 : fuzzy(l, q) ? 3 : -1;
    };
    const ranked = (list: string[]) => list.map((p) => [p, score(p)] as const).filter(([, s]) => s >= 0)
      .sort((a, b) => a[1] - b[1] || a[0].length - b[0].length || a[0].localeCompare(b[0])).map(([p]) => p);
    for (const p of ranked(rels).slice(0, 12)) out.push({ kind: "file", label: p, detail: "file" });
    for (const p of ranked([...folders]).slice(0, 4)) out.push({ kind: "folder", label: p, detail: "folder" });
    return out.slice(0, 16);
  }

  private async workspaceFiles(): Promise<vscode.Uri[]> {
    if (this.files && Date.now() - this.files.at < 10_000) return this.files.list;
    const list = await vscode.workspace.findFiles("**/*", "{**/node_modules/**,**/.git/**,**/.venv/**,**/__pycache__/**,**/.codeloop/**}", 5000);
    this.files = { at: Date.now(), list };
    return list;
  }

  /** The context items of the mentions in `text`, and problems to tell the user (a file that is not there…). */
  async resolve(text: string): Promise<{ items: ContextItem[]; problems: string[] }> {
    const items: ContextItem[] = [];
    const problems: string[] = [];
    for (const m of findMentions(text)) {
      try {
        const item = await this.resolveOne(m);
        if (typeof item === "string") problems.push(item);
        else if (item) items.push(item);
      } catch (e) {
        problems.push(`@${m}: ${e instanceof Error ? e.message : String(e)}`);
      }
    }
    return { items, problems };
  }

  private async resolveOne(m: string): Promise<ContextItem | string | undefined> {
    if (m === "problems") return this.problems();
    if (m === "selection") {
      const ed = this.sources.editor();
      if (!ed || ed.selection.isEmpty) return "@selection: nothing is selected in the editor.";
      const label = `${vscode.workspace.asRelativePath(ed.document.uri, false)}:${ed.selection.start.line + 1}-${ed.selection.end.line + 1}`;
      return { kind: "selection", label, text: ed.document.getText(ed.selection) };
    }
    if (m === "terminal") {
      const last = this.sources.lastCommand();
      if (!last) return "@terminal: no command has finished in a terminal yet.";
      const exit = last.exitCode === undefined ? "" : ` (exit code ${last.exitCode})`;
      return { kind: "terminal", label: last.command || "last command", text: `$ ${last.command}${exit}\n${cap(last.output, MAX_TERMINAL_CHARS)}` };
    }
    const folder = vscode.workspace.workspaceFolders?.[0]?.uri;
    if (!folder) return `@${m}: no workspace folder is open.`;
    const clean = m.replace(/\/+$/, "");
    const uri = vscode.Uri.joinPath(folder, clean);
    if (!uri.path.startsWith(folder.path)) return `@${m}: outside the workspace.`;
    let stat: vscode.FileStat;
    try { stat = await vscode.workspace.fs.stat(uri); } catch { return undefined; } // not a path: an e-mail, a decorator… leave it as text
    if (stat.type & vscode.FileType.Directory) return { kind: "folder", label: `${clean}/`, text: await this.listing(uri, clean) };
    const open = vscode.workspace.textDocuments.find((d) => d.uri.toString() === uri.toString());
    let body: string;
    if (open) body = open.getText();
    else {
      const bytes = await vscode.workspace.fs.readFile(uri);
      if (bytes.subarray(0, 8000).includes(0)) return `@${m}: a binary file, not sent.`;
      body = new TextDecoder().decode(bytes);
    }
    return { kind: "file", label: clean, text: cap(body, MAX_FILE_CHARS) };
  }

  private async listing(uri: vscode.Uri, rel: string): Promise<string> {
    const out: string[] = [];
    const walk = async (dir: vscode.Uri, prefix: string, depth: number) => {
      const entries = (await vscode.workspace.fs.readDirectory(dir)).sort((a, b) => a[0].localeCompare(b[0]));
      for (const [name, type] of entries) {
        if (out.length >= MAX_FOLDER_ENTRIES) return;
        if ([".git", "node_modules", ".venv", "__pycache__"].includes(name)) continue;
        const isDir = (type & vscode.FileType.Directory) !== 0;
        out.push(`${prefix}${name}${isDir ? "/" : ""}`);
        if (isDir && depth < 3) await walk(vscode.Uri.joinPath(dir, name), `${prefix}${name}/`, depth + 1);
      }
    };
    await walk(uri, "", 0);
    const more = out.length >= MAX_FOLDER_ENTRIES ? `\n… (listing cut at ${MAX_FOLDER_ENTRIES} entries)` : "";
    return `Contents of ${rel}/:\n${out.join("\n")}${more}`;
  }

  private problems(): ContextItem | string {
    const sev = ["error", "warning", "info", "hint"];
    const lines: string[] = [];
    for (const [uri, diags] of vscode.languages.getDiagnostics()) {
      for (const d of diags) {
        if (lines.length >= MAX_PROBLEMS) break;
        const src = d.source ? ` (${d.source}${d.code !== undefined ? ` ${typeof d.code === "object" ? d.code.value : d.code}` : ""})` : "";
        lines.push(`${vscode.workspace.asRelativePath(uri, false)}:${d.range.start.line + 1}:${d.range.start.character + 1}: ${sev[d.severity] ?? "error"}: ${d.message.split("\n")[0]}${src}`);
      }
    }
    if (!lines.length) return { kind: "problems", label: "problems", text: "The editor reports no problems in the workspace." };
    return { kind: "problems", label: `problems (${lines.length})`, text: lines.join("\n") };
  }
}

function cap(text: string, max: number): string {
  return text.length > max ? `${text.slice(0, max)}\n… (cut at ${max.toLocaleString("en-US")} characters)` : text;
}

/** Every character of `q` appears in `text` in order. */
function fuzzy(text: string, q: string): boolean {
  let i = 0;
  for (const ch of text) if (ch === q[i]) i++;
  return i === q.length;
}
