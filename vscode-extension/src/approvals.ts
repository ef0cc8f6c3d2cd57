/**
 * Command approvals (`codeloop/approval/request`): each request becomes a card in the chat
 * (on the command's own tool card when the server names the call) and resolves when the user
 * answers there, when the server cancels it, or when the server goes away.
 */
import type * as vscode from "vscode";
import type * as P from "./protocol";
import type { Action } from "./shared/model";

export interface ApprovalUi {
  dispatch(action: Action): void;
  reveal(): void;
}

export class Approvals {
  private readonly pending = new Map<string, (r: P.ApprovalResult) => void>();
  private seq = 0;

  constructor(private readonly ui: ApprovalUi) {}

  /** Handles `codeloop/approval/request`; resolves when the user answers. */
  request(params: P.ApprovalRequestParams, token: vscode.CancellationToken): Promise<P.ApprovalResult> {
    const id = `ap-${++this.seq}`;
    return new Promise((resolve) => {
      this.pending.set(id, resolve);
      this.ui.dispatch({ a: "approval", id, params });
      this.ui.reveal();
      token.onCancellationRequested(() => {
        if (this.pending.delete(id)) {
          this.ui.dispatch({ a: "approvalStatus", id, answer: "cancelled" });
          resolve({ answer: "deny", message: "cancelled" });
        }
      });
    });
  }

  /** The user's answer from the chat card. */
  answer(id: string, answer: P.ApprovalAnswer): void {
    const resolve = this.pending.get(id);
    if (!resolve) return;
    this.pending.delete(id);
    this.ui.dispatch({ a: "approvalStatus", id, answer });
    resolve({ answer });
  }

  /** The server went away: every pending approval is void. */
  dropAll(): void {
    for (const [id, resolve] of this.pending) {
      this.ui.dispatch({ a: "approvalStatus", id, answer: "cancelled" });
      resolve({ answer: "deny" });
    }
    this.pending.clear();
  }
}
