/** The chat panel: a webview view whose state lives here, in the extension host. */
import * as vscode from "vscode";
import { type Action, type ChatState, emptyState, reduce } from "./shared/model";
import type { SessionInfo } from "./protocol";
import type { FromWebview, PanelEnv, ToWebview } from "./messages";
import type { MentionOption } from "./shared/mentions";

export type { FromWebview, PanelEnv } from "./messages";

export class ChatViewProvider implements vscode.WebviewViewProvider {
  static readonly viewId = "codeloop.chat";
  readonly state: ChatState = emptyState();
  draft = "";
  private view: vscode.WebviewView | undefined;
  private ready = false;
  private readonly onMessageEmitter = new vscode.EventEmitter<FromWebview>();
  readonly onMessage = this.onMessageEmitter.event;
  private sessions: SessionInfo[] | undefined;

  constructor(private readonly extensionUri: vscode.Uri, public env: PanelEnv) {}

  resolveWebviewView(view: vscode.WebviewView): void {
    this.view = view;
    this.ready = false;
    view.webview.options = {
      enableScripts: true,
      localResourceRoots: [vscode.Uri.joinPath(this.extensionUri, "dist"), vscode.Uri.joinPath(this.extensionUri, "media")],
    };
    view.webview.html = this.html(view.webview);
    view.webview.onDidReceiveMessage((m: FromWebview) => {
      if (m.type === "ready") {
        this.ready = true;
        this.post({ type: "state", state: this.state, env: this.env, draft: this.draft, sessions: this.sessions });
        return;
      }
      if (m.type === "draft") { this.draft = m.text; return; }
      this.onMessageEmitter.fire(m);
    });
    view.onDidDispose(() => { this.view = undefined; this.ready = false; });
    view.onDidChangeVisibility(() => { if (!view.visible) this.ready = false; });
  }

  get visible(): boolean { return !!this.view?.visible; }

  async reveal(): Promise<void> {
    if (this.view) this.view.show(false);
    else await vscode.commands.executeCommand(`${ChatViewProvider.viewId}.focus`);
  }

  dispatch(action: Action): void {
    reduce(this.state, action);
    this.post({ type: "apply", action });
  }

  setEnv(patch: Partial<PanelEnv>): void {
    this.env = { ...this.env, ...patch };
    this.post({ type: "env", env: this.env });
  }

  showSessions(sessions: SessionInfo[]): void {
    this.sessions = sessions;
    this.post({ type: "sessions", sessions });
  }

  /** Asks the webview to focus the input (after New chat, etc.). */
  focusInput(): void { this.post({ type: "focus" }); }

  /** Puts text in the composer (a rewound message, to edit and send again). */
  setDraft(text: string): void {
    this.draft = text;
    this.post({ type: "draft", text });
  }

  mentionOptions(query: string, options: MentionOption[]): void { this.post({ type: "mentions", query, options }); }

  private post(msg: ToWebview): void {
    if (this.view && this.ready) void this.view.webview.postMessage(msg);
  }

  private html(webview: vscode.Webview): string {
    const nonce = makeNonce();
    const script = webview.asWebviewUri(vscode.Uri.joinPath(this.extensionUri, "dist", "webview.js"));
    const style = webview.asWebviewUri(vscode.Uri.joinPath(this.extensionUri, "dist", "webview.css"));
    const codicons = webview.asWebviewUri(vscode.Uri.joinPath(this.extensionUri, "dist", "codicons", "codicon.css"));
    const csp = [
      "default-src 'none'",
      `style-src ${webview.cspSource} 'nonce-${nonce}'`,
      `font-src ${webview.cspSource}`,
      `img-src ${webview.cspSource} https: data:`,
      `script-src 'nonce-${nonce}'`,
    ].join("; ");
    return `<!DOCTYPE html>
<html lang="en">
<head>
<meta charset="UTF-8">
<meta http-equiv="Content-Security-Policy" content="${csp}">
<meta name="viewport" content="width=device-width, initial-scale=1.0">
<link rel="stylesheet" href="${codicons}" nonce="${nonce}">
<link rel="stylesheet" href="${style}" nonce="${nonce}">
<title>codeloop</title>
</head>
<body>
<div id="app"></div>
<script nonce="${nonce}" src="${script}"></script>
</body>
</html>`;
  }
}

export function makeNonce(): string {
  const chars = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789";
  let out = "";
  for (let i = 0; i < 32; i++) out += chars.charAt(Math.floor(Math.random() * chars.length));
  return out;
}
