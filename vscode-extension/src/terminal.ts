/** Mirrors every command the server runs into a Pseudoterminal named "codeloop". */
import * as vscode from "vscode";
import type { TerminalExitedParams, TerminalOutputParams, TerminalStartedParams } from "./protocol";

/** "\n" → "\r\n" (leaving existing "\r\n" alone). */
export function toCrlf(data: string): string {
  return data.replace(/\r?\n/g, "\r\n");
}

export class CodeloopTerminal implements vscode.Disposable {
  private terminal: vscode.Terminal | undefined;
  private readonly writeEmitter = new vscode.EventEmitter<string>();
  private opened = false;
  private backlog: string[] = [];
  private readonly commands = new Map<string, { command: string; background: boolean; output: string[]; size: number }>();
  private last: { command: string; output: string; exitCode?: number } | undefined;
  private lastId: string | undefined;
  private readonly subs: vscode.Disposable[] = [];

  constructor() {
    this.subs.push(vscode.window.onDidCloseTerminal((t) => {
      if (t === this.terminal) { this.terminal = undefined; this.opened = false; }
    }));
  }

  private ensure(show: boolean): void {
    if (!this.terminal) {
      const pty: vscode.Pseudoterminal = {
        onDidWrite: this.writeEmitter.event,
        open: () => {
          this.opened = true;
          for (const chunk of this.backlog) this.writeEmitter.fire(chunk);
          this.backlog = [];
        },
        close: () => { this.terminal = undefined; this.opened = false; },
        handleInput: () => { /* read-only: commands have no stdin */ },
      };
      this.terminal = vscode.window.createTerminal({ name: "codeloop", pty, iconPath: new vscode.ThemeIcon("sparkle") });
    }
    if (show) this.terminal.show(true);
  }

  private write(text: string): void {
    if (this.opened) this.writeEmitter.fire(text);
    else this.backlog.push(text);
  }

  show(): void { this.ensure(true); }

  /** The last command the agent ran, with its output (for @terminal when VS Code reports none). */
  lastCommand(): { command: string; output: string; exitCode?: number } | undefined { return this.last; }

  started(p: TerminalStartedParams): void {
    this.ensure(true);
    this.commands.set(p.terminalId, { command: p.command, background: !!p.background, output: [], size: 0 });
    const bg = p.background ? ` \x1b[2m[background ${p.terminalId}]\x1b[0m` : "";
    const cwd = p.cwd ? `\x1b[2m${p.cwd}\x1b[0m\r\n` : "";
    this.write(`\r\n${cwd}\x1b[1;36m$\x1b[0m \x1b[1m${toCrlf(p.command)}\x1b[0m${bg}\r\n`);
    this.lastId = p.terminalId;
  }

  output(p: TerminalOutputParams): void {
    this.ensure(false);
    const info = this.commands.get(p.terminalId);
    if (info?.background && this.lastId !== p.terminalId) {
      this.write(`\x1b[2m[${p.terminalId}]\x1b[0m `);
    }
    this.lastId = p.terminalId;
    if (info && info.size < 50_000) { info.output.push(p.data); info.size += p.data.length; }
    this.write(toCrlf(p.data));
  }

  exited(p: TerminalExitedParams): void {
    this.ensure(false);
    const info = this.commands.get(p.terminalId);
    const what = info?.background ? ` (${info.command})` : "";
    const text = p.exitCode === null || p.exitCode < 0
      ? `\x1b[33m[killed${p.exitCode ? ` by signal ${-p.exitCode}` : ""}]${what}\x1b[0m`
      : p.exitCode === 0 ? `\x1b[32m[exit code 0]${what}\x1b[0m` : `\x1b[31m[exit code ${p.exitCode}]${what}\x1b[0m`;
    this.write(`\r\n${text}\r\n`);
    if (info) this.last = { command: info.command, output: info.output.join(""), exitCode: p.exitCode ?? undefined };
    this.commands.delete(p.terminalId);
  }

  dispose(): void {
    this.terminal?.dispose();
    this.writeEmitter.dispose();
    for (const s of this.subs) s.dispose();
  }
}
