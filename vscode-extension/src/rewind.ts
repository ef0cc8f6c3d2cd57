/**
 * Rewind from the chat panel: each user message has a restore button (its checkpoint, from
 * `codeloop/rewind/list`); it opens the rewind card with the server's preview
 * (`codeloop/rewind/preview`: per file what a rewind does, its diff, a choice), and applies it
 * (`codeloop/rewind/apply`). The server restores open buffers through `workspace/applyEdit`, so
 * their undo stacks stay right; a rewound conversation is shown again from the server's
 * transcript and the message goes back into the composer.
 */
import * as P from "./protocol";
import type { ChatViewProvider } from "./chatView";
import { errText, type ServerClient } from "./client";
import { type RewindScope, itemsFromTranscript } from "./shared/model";

export class Rewind {
  constructor(
    private readonly chat: ChatViewProvider,
    private readonly server: ServerClient,
    private readonly notice: (level: "info" | "warning" | "error", message: string) => void,
  ) {}

  /** Gives the panel's user messages their checkpoints (after a turn, after opening a session). */
  async refresh(): Promise<void> {
    const sessionId = this.chat.state.sessionId;
    const client = this.server.current;
    if (!sessionId || !client) return;
    try {
      const r = await client.sendRequest<P.RewindListResult>(P.REWIND_LIST, { sessionId });
      if (r.sessionId === this.chat.state.sessionId) this.chat.dispatch({ a: "checkpoints", targets: r.targets ?? [] });
    } catch { /* the server went away, or an older one: no restore buttons */ }
  }

  async open(checkpointId: string): Promise<void> {
    const s = this.chat.state;
    const client = await this.server.ready();
    if (!client || !s.sessionId) return;
    if (s.running) { this.notice("warning", "A turn is running: stop it (or wait) before rewinding."); return; }
    const user = s.items.find((i) => i.kind === "user" && i.checkpoint?.id === checkpointId);
    const base = {
      checkpointId, number: user?.kind === "user" ? user.checkpoint?.number : undefined,
      text: user?.kind === "user" ? user.text : "", scope: "both" as RewindScope, choices: {},
    };
    this.chat.dispatch({ a: "rewind", card: { ...base, status: "loading" } });
    try {
      const preview = await client.sendRequest<P.RewindPreviewResult>(P.REWIND_PREVIEW, { sessionId: s.sessionId, checkpointId });
      const choices = Object.fromEntries(preview.files.map((f) => [f.path, f.default]));
      this.chat.dispatch({ a: "rewind", card: { ...base, status: "ready", preview, choices } });
    } catch (e) {
      this.chat.dispatch({ a: "rewind", card: { ...base, status: "error", error: errText(e) } });
    }
  }

  /** `/rewind N` (the message's number) or `/rewind c7` (a checkpoint): the card; false when unknown here. */
  openSpec(spec: string): boolean {
    const users = this.chat.state.items.filter((i) => i.kind === "user" && i.checkpoint);
    const hit = users.find((u) => u.kind === "user" && (u.checkpoint?.id === spec || String(u.checkpoint?.number) === spec));
    if (!hit || hit.kind !== "user" || !hit.checkpoint) return false;
    void this.open(hit.checkpoint.id);
    return true;
  }

  choose(path: string, choice: P.RewindChoice): void { this.chat.dispatch({ a: "rewindChoice", path, choice }); }
  scope(scope: RewindScope): void { this.chat.dispatch({ a: "rewindScope", scope }); }
  close(): void { this.chat.dispatch({ a: "rewind" }); }

  async apply(): Promise<void> {
    const s = this.chat.state;
    const card = s.rewind;
    const client = this.server.current;
    if (!card?.preview || !client || card.status === "applying") return;
    this.chat.dispatch({ a: "rewind", card: { ...card, status: "applying" } });
    const params: P.RewindApplyParams = {
      sessionId: card.preview.sessionId, previewId: card.preview.previewId,
      code: card.scope !== "conversation", conversation: card.scope !== "code", choices: card.choices,
    };
    try {
      const r = await client.sendRequest<P.RewindApplyResult>(P.REWIND_APPLY, params);
      this.chat.dispatch({ a: "rewind" });
      if (r.removed > 0) {
        this.chat.dispatch({ a: "reset", sessionId: r.sessionId, title: s.title, items: itemsFromTranscript(r.messages ?? []) });
        if (r.message) this.chat.setDraft(r.message);
      }
      this.chat.dispatch({ a: "notice", level: "info", message: r.summary });
      await this.refresh();
    } catch (e) {
      const now = this.chat.state.rewind;
      if (now) this.chat.dispatch({ a: "rewind", card: { ...now, status: "error", error: errText(e) } });
    }
  }
}
