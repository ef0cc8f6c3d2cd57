/**
 * Turns: what the user sends from the panel (queued while a turn runs), Stop, New chat,
 * History, and the server's event stream for the panel's session. Also follows turns the
 * panel did not start (a code action's focused turn, via middleware.executeCommand), without
 * ever interrupting the panel's own turn.
 */
import * as vscode from "vscode";
import * as P from "./protocol";
import type { ChatViewProvider } from "./chatView";
import { errText, type ServerClient } from "./client";
import type { EditorContext } from "./editorContext";
import type { Mentions } from "./mentions";
import { itemsFromTranscript } from "./shared/model";
import { FOCUSED_COMMANDS, focusedArg, focusedLabel, where, withInstruction } from "./focused";

export class Turns {
  private awaitingStart = false;
  /** Label of a focused turn (code action) whose executeCommand is in flight. */
  private focusedPending: string | undefined;
  /** Sessions whose turns run while the panel was busy with another: reported once. */
  private readonly elsewhere = new Set<string>();
  /** The images of the queued messages (the panel's state lists their texts). */
  private queuedImages: P.ImageAttachment[][] = [];
  /** A `/rewind` sent to the server: the transcript is reloaded when its turn ends. */
  private rewindSent = false;

  constructor(
    private readonly chat: ChatViewProvider,
    private readonly server: ServerClient,
    private readonly editor: EditorContext,
    private readonly mentions: Mentions,
    /** Called when "a turn is running" may have changed (the status bar). */
    private readonly changed: () => void,
    /** Called when the conversation has settled (a turn ended, a session was opened). */
    private readonly settled: () => void = () => undefined,
    /** `/rewind N` from the input: opens the panel's rewind card; false when it cannot. */
    private readonly openRewind: (spec: string) => boolean = () => false,
  ) {}

  /** A turn runs or is being started. */
  get busy(): boolean { return !!this.chat.state.running || this.awaitingStart; }

  private notice(level: "info" | "warning" | "error", message: string): void {
    this.chat.dispatch({ a: "notice", level, message });
  }

  async send(text: string, useFile: boolean, useSelection: boolean, images: P.ImageAttachment[] = []): Promise<void> {
    text = text.trim();
    if (!text && !images.length) return;
    if (!text) text = "(see the attached image)";
    if (this.busy) {
      // One turn per session at a time: queue it and send it when the turn ends.
      this.queuedImages = [...this.queuedImages.slice(0, this.chat.state.queued.length), images];
      this.chat.dispatch({ a: "queue", queued: [...this.chat.state.queued, images.length ? `${text} [${images.length} image(s)]` : text] });
      return;
    }
    const client = await this.server.ready();
    if (!client) { this.notice("error", "The codeloop server is not running. See the notification, or run “codeloop: Restart Language Server”."); return; }
    const rewind = text.match(/^\/rewind\s+(#?\d+|c\d+)\s*$/);
    if (rewind && this.openRewind(rewind[1].replace("#", ""))) return; // the card, with its preview and choices
    this.rewindSent = /^\/rewind\b/.test(text);
    const slash = text.startsWith("/");
    const { context, chips } = this.editor.chatContext(useFile && !slash, useSelection && !slash);
    const { items, problems } = slash ? { items: [], problems: [] } : await this.mentions.resolve(text);
    for (const it of items) chips.push({ kind: it.kind, label: it.label });
    this.chat.dispatch({ a: "user", text, chips, images: images.length ? images.map((i) => ({ mimeType: i.mimeType, data: i.data })) : undefined });
    for (const p of problems) this.notice("warning", p);
    this.awaitingStart = true;
    this.changed();
    try {
      const params: P.ChatStartParams = { text, context };
      if (items.length) params.contextItems = items;
      if (images.length && !slash) params.attachments = images;
      if (this.chat.state.sessionId) params.sessionId = this.chat.state.sessionId;
      const r = await client.sendRequest<P.ChatStartResult>(P.CHAT_START, params);
      this.chat.dispatch({ a: "turnStarted", sessionId: r.sessionId, turnId: r.turnId });
    } catch (e) {
      this.notice("error", errText(e));
    } finally {
      this.awaitingStart = false;
      this.changed();
    }
  }

  unqueue(index: number): void {
    this.queuedImages = this.queuedImages.filter((_, i) => i !== index);
    this.chat.dispatch({ a: "queue", queued: this.chat.state.queued.filter((_, i) => i !== index) });
  }

  private sendQueued(): void {
    const [next, ...rest] = this.chat.state.queued;
    if (next === undefined) return;
    const [images, ...more] = this.queuedImages;
    this.queuedImages = more;
    this.chat.dispatch({ a: "queue", queued: rest });
    const text = images?.length ? next.replace(/ \[\d+ image\(s\)\]$/, "") : next;
    void this.send(text, true, false, images ?? []);
  }

  cancel(): void {
    const s = this.chat.state;
    const client = this.server.current;
    if (!client || !s.sessionId) return;
    void client.sendNotification(P.CHAT_CANCEL, { sessionId: s.sessionId, turnId: s.running });
  }

  newChat(): void {
    if (this.chat.state.running) this.cancel();
    this.chat.dispatch({ a: "reset" });
    this.queuedImages = [];
    this.chat.dispatch({ a: "queue", queued: [] });
    void this.chat.reveal().then(() => this.chat.focusInput());
  }

  async history(): Promise<void> {
    const client = await this.server.ready();
    if (!client) return;
    try {
      const r = await client.sendRequest<{ sessions: P.SessionInfo[] }>(P.SESSION_LIST, {});
      this.chat.showSessions(r.sessions ?? []);
      await this.chat.reveal();
    } catch (e) { this.notice("error", `Could not list sessions: ${errText(e)}`); }
  }

  async openSession(id: string): Promise<void> {
    const client = await this.server.ready();
    if (!client) return;
    if (this.chat.state.running) this.cancel();
    try {
      const r = await client.sendRequest<P.SessionOpenResult>(P.SESSION_OPEN, { sessionId: id });
      this.chat.dispatch({ a: "reset", sessionId: r.sessionId, items: itemsFromTranscript(r.messages ?? [], r.subagents), todos: r.todos });
      for (const w of r.warnings ?? []) this.notice("warning", w);
      this.settled();
    } catch (e) { this.notice("error", `Could not open the session: ${errText(e)}`); }
  }

  /** `codeloop/event` */
  onEvent(p: P.EventParams): void {
    const s = this.chat.state;
    const ownNewSession = !s.sessionId && this.awaitingStart; // the panel's chat/start is in flight
    if (p.sessionId && p.sessionId !== s.sessionId && !ownNewSession) {
      // A turn the panel did not start (a code action: Fix/Ask/Explain, or another client's
      // command): follow it when the panel is idle; never interrupt the panel's own turn.
      if (this.busy || this.elsewhere.has(p.sessionId)) {
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
      this.changed();
      if (this.rewindSent && s.sessionId) { this.rewindSent = false; void this.reload(s.sessionId); } else this.settled();
      setTimeout(() => this.sendQueued(), 0);
    }
  }

  /** The conversation as the server has it now (after a `/rewind` answered by the server). */
  private async reload(sessionId: string): Promise<void> {
    try {
      const r = await this.server.current?.sendRequest<P.SessionOpenResult>(P.SESSION_TRANSCRIPT, { sessionId });
      if (r && this.chat.state.sessionId === sessionId && !this.chat.state.running) {
        const notices = this.chat.state.items.filter((i) => i.kind === "notice").slice(-1);
        this.chat.dispatch({ a: "reset", sessionId, title: this.chat.state.title, items: [...itemsFromTranscript(r.messages ?? []), ...notices] });
      }
    } catch { /* the server went away */ }
    this.settled();
  }

  /** The server went away mid-turn: the turn ended. */
  serverGone(why: string): void {
    if (this.chat.state.running) {
      this.chat.dispatch({ a: "event", event: { type: "turnEnd", status: "error", message: why } });
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
    this.changed();
    void this.chat.reveal();
  }

  /** middleware.executeCommand: focused commands go through runFocused, the rest straight on. */
  executeCommand(command: string, args: unknown[], next: (command: string, args: unknown[]) => Promise<unknown>): Promise<unknown> {
    return FOCUSED_COMMANDS.includes(command) ? this.runFocused(command, args, next) : next(command, args);
  }

  /**
   * The server's focused commands (what the lightbulb runs): "Ask codeloop…" asks for the
   * instruction in an input box (the server's showMessageRequest presets are for plain
   * clients), and every focused turn is shown in the chat panel.
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
    if (!this.busy) void this.chat.reveal();
    try {
      const r = await next(command, args) as Partial<P.ChatStartResult> | undefined;
      if (r?.sessionId && r.sessionId !== this.chat.state.sessionId && !this.elsewhere.has(r.sessionId)) {
        if (this.busy) {
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
}
