/** The status bar item: the model, whether a turn runs, the server's state; opens the chat. */
import * as vscode from "vscode";
import type { ServerState } from "./client";

export class StatusItem implements vscode.Disposable {
  private readonly item = vscode.window.createStatusBarItem(vscode.StatusBarAlignment.Right, 100);

  constructor() {
    this.item.command = "codeloop.openChat";
    this.item.show();
  }

  update(model: string, running: boolean, st: ServerState): void {
    const icon = st === "error" || st === "stopped" ? "$(error)" : running ? "$(loading~spin)" : "$(sparkle)";
    this.item.text = `${icon} codeloop: ${model}`;
    this.item.tooltip = `codeloop — ${st === "running" ? (running ? "running a turn" : "idle") : st}. Click to open the chat.`;
  }

  dispose(): void { this.item.dispose(); }
}
