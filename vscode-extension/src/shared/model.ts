/**
 * The chat panel's state and its reducer: pure, shared by the extension host (which keeps
 * the authoritative copy, so the panel can be hidden, reloaded and restored) and the
 * webview (which renders it). No vscode or DOM imports here.
 */
import type {
  AgentEvent, ApprovalAnswer, ApprovalRequestParams, McpServerInfo, OpenAIMessage, ProposalReviewParams, RewindChoice,
  RewindPreviewResult, RewindTarget, SubagentLog, TodoItem,
} from "../protocol";
import { type HunkContent, type HunkDecision, regionLabel } from "./review";
import { type HookInfo, type HookItem, STOPPED, findCall, hookInfo, settleSteps, walk } from "./steps";

export type { HookInfo, HookItem } from "./steps";

/** cancelled: stopped by the user (Stop, a new chat); denied: the user said no to its approval. */
export type ToolStatus = "running" | "done" | "failed" | "cancelled" | "denied";
export type ProposalStatus = "pending" | "accepted" | "rejected" | "partial" | "edited" | "applied" | "cancelled" | string;

/** What a message carried besides its text: the active file, a selection, an @-mention, an image. */
export interface Chip { kind: "file" | "folder" | "problems" | "selection" | "terminal" | "image"; label: string }
export interface UserItem {
  kind: "user"; id: string; text: string; chips?: Chip[];
  /** Pasted images, shown as thumbnails (base64). */
  images?: { mimeType: string; data: string }[];
  /** The checkpoint before this message (its restore button rewinds to it). */
  checkpoint?: { id: string; number: number; files: number };
}
export interface AssistantItem { kind: "assistant"; id: string; text: string; streaming: boolean }
/** An approval the server asked for: on its command's tool card, or a card of its own. */
export interface ApprovalInfo {
  id: string; approvalKind: string; target: string; cwd?: string; reason?: string; suggestedRule?: string;
  /** kind "Trust": what the workspace asks to run or allow. */
  subject?: string;
  answer?: ApprovalAnswer | "cancelled";
}
export interface ToolItem {
  kind: "tool"; id: string; callId: string; name: string; summary: string; args?: unknown;
  /** Where the tool comes from: an MCP server's name (none for built-in tools). */
  origin?: string;
  status: ToolStatus; resultSummary?: string; result?: string;
  /** The approval of this call: the card is the approval until it is answered. */
  approval?: ApprovalInfo;
  /** The hooks that ran for this call (PreToolUse, PostToolUse). */
  hooks?: HookInfo[];
  /** A `task` call's sub-agent, and its steps (shown nested in the card). */
  agent?: string;
  children?: Item[];
  /** The call this one runs inside (code mode's program): its card shows it nested. */
  parent?: string;
  /** A program the card shows highlighted (code mode). */
  code?: string; codeLanguage?: string;
}
export interface RetryItem { kind: "retry"; id: string; attempt: number; maxAttempts: number; delay: number; reason: string }
export interface NoticeItem { kind: "notice"; id: string; level: "info" | "warning" | "error"; message: string }
/** A hunk on the proposal card: its diff and its state in the review (shared/review.ts). */
export interface HunkItem {
  id: number; header: string; diff: string;
  decision: HunkDecision; content: HunkContent;
  /** "line 7", "lines 7–8": where it is in the proposed side now. */
  label: string;
  added: number; removed: number;
}
export interface ProposalFileItem {
  uri: string; path: string; isNew: boolean; diff: string; hunks: HunkItem[];
  /** The proposed side holds the user's own edits (beyond Keep/Undo). */
  userEdits?: boolean;
}
export interface ProposalItem {
  kind: "proposal"; id: string; proposalId: string; tool: string; status: ProposalStatus; message?: string;
  /** The tool call that proposed it (its tool card says it waits for the review). */
  callId?: string;
  review: boolean; // false: auto-accepted, shown for information only
  files: ProposalFileItem[];
}
/** The review state of one file's hunks, as the extension host computes it. */
export interface HunkUpdate {
  hunks: { id: number; decision: HunkDecision; content: HunkContent; start: number; end: number }[];
  userEdits: boolean;
}
/** An approval no tool card claims (the server named no call). */
export interface ApprovalItem extends ApprovalInfo { kind: "approval" }
export interface TurnEndItem {
  kind: "turnEnd"; id: string; status: string; message?: string;
  promptTokens?: number; completionTokens?: number; cachedTokens?: number; cost?: number | null;
}
export type Item = UserItem | AssistantItem | ToolItem | RetryItem | NoticeItem | ProposalItem | ApprovalItem | TurnEndItem | HookItem;

/** What the rewind card rewinds: the code, the conversation, or both. */
export type RewindScope = "both" | "code" | "conversation";
/** The rewind card: a preview of rewinding to before one message, with a choice per file. */
export interface RewindCard {
  checkpointId: string; number?: number | null; text: string;
  status: "loading" | "ready" | "applying" | "error";
  error?: string;
  preview?: RewindPreviewResult;
  scope: RewindScope;
  choices: Record<string, RewindChoice>;
}

export interface ChatState {
  sessionId?: string;
  title?: string;
  running?: string; // turn id of the running turn
  items: Item[];
  queued: string[]; // messages typed while a turn ran; sent one by one when it ends
  seq: number;
  /** The session's todo list (the `todo_write` tool), as it stands. */
  todos?: TodoItem[];
  rewind?: RewindCard;
}

export type Action =
  | { a: "reset"; sessionId?: string; title?: string; items?: Item[]; todos?: TodoItem[] }
  | { a: "user"; text: string; chips?: Chip[]; images?: { mimeType: string; data: string }[] }
  | { a: "turnStarted"; sessionId: string; turnId: string }
  | { a: "event"; sessionId?: string; turnId?: string; event: AgentEvent }
  | { a: "proposal"; params: ProposalReviewParams; review: boolean }
  | { a: "proposalStatus"; proposalId: string; status: ProposalStatus; message?: string }
  | { a: "hunks"; proposalId: string; files: Record<string, HunkUpdate> }
  | { a: "approval"; id: string; params: ApprovalRequestParams }
  | { a: "approvalStatus"; id: string; answer: ApprovalAnswer | "cancelled" }
  | { a: "queue"; queued: string[] }
  | { a: "notice"; level: "info" | "warning" | "error"; message: string }
  /** The session's rewind targets: each user message gets its checkpoint (its restore button). */
  | { a: "checkpoints"; targets: RewindTarget[] }
  /** Opens, updates or (without a card) closes the rewind card. */
  | { a: "rewind"; card?: RewindCard }
  | { a: "rewindChoice"; path: string; choice: RewindChoice }
  | { a: "rewindScope"; scope: RewindScope };

export function emptyState(): ChatState {
  return { items: [], queued: [], seq: 0 };
}

function nextId(s: ChatState, prefix: string): string {
  s.seq += 1;
  return `${prefix}${s.seq}`;
}

function lastItem(s: ChatState): Item | undefined {
  return s.items[s.items.length - 1];
}

/**
 * Applies an action in place and returns the ids of the items that changed or were added
 * (the renderer redraws only those). `["*"]` means "redraw everything".
 */
export function reduce(s: ChatState, act: Action): string[] {
  switch (act.a) {
    case "reset": {
      s.sessionId = act.sessionId;
      s.title = act.title;
      s.running = undefined;
      s.rewind = undefined;
      // A workspace's trust question belongs to no chat: it stays until answered.
      const trust = s.items.filter((i): i is ApprovalItem => i.kind === "approval" && i.approvalKind === "Trust" && !i.answer);
      s.items = [...(act.items ?? []), ...trust];
      s.todos = act.todos?.length ? act.todos.map((t) => ({ ...t })) : undefined;
      if (!s.title) {
        const first = s.items.find((i): i is UserItem => i.kind === "user" && !i.text.startsWith("/"));
        if (first) s.title = firstLine(first.text, 60);
      }
      s.seq = Math.max(s.seq, s.items.length);
      return ["*"];
    }
    case "user": {
      const it: UserItem = { kind: "user", id: nextId(s, "u"), text: act.text, chips: act.chips, images: act.images };
      s.items.push(it);
      if (!s.title && !act.text.startsWith("/")) s.title = firstLine(act.text, 60);
      return [it.id];
    }
    case "turnStarted": {
      s.sessionId = act.sessionId;
      s.running = act.turnId;
      return ["#status"];
    }
    case "queue": {
      s.queued = [...act.queued];
      return ["#status"];
    }
    case "notice": {
      const it: NoticeItem = { kind: "notice", id: nextId(s, "n"), level: act.level, message: act.message };
      s.items.push(it);
      return [it.id];
    }
    case "proposal": {
      const p = act.params;
      const existing = s.items.find((i): i is ProposalItem => i.kind === "proposal" && i.proposalId === p.proposalId);
      const files: ProposalFileItem[] = (p.files ?? []).map((f) => ({
        uri: f.uri, path: f.path, isNew: !!f.isNew, diff: f.diff ?? "",
        hunks: (f.hunks ?? []).map((h) => {
          const start = h.newStart ?? 0;
          const { added, removed } = countDiff(h.diff ?? "");
          return {
            id: h.id, header: h.header, diff: h.diff, decision: "pending" as HunkDecision, content: "proposed" as HunkContent,
            label: h.newStart === undefined ? h.header : regionLabel({ start, end: start + (h.newLines ?? 0) }), added, removed,
          };
        }),
      }));
      if (existing) {
        existing.files = files;
        existing.review = act.review;
        return [existing.id];
      }
      closeStreaming(s);
      const it: ProposalItem = {
        kind: "proposal", id: nextId(s, "p"), proposalId: p.proposalId, tool: p.tool, files, callId: p.callId,
        status: act.review ? "pending" : "applied", review: act.review,
      };
      s.items.push(it);
      return [it.id, ...toolOf(s, p.callId)];
    }
    case "proposalStatus": {
      const it = s.items.find((i): i is ProposalItem => i.kind === "proposal" && i.proposalId === act.proposalId);
      if (!it) {
        // Applied without review (auto-accept): the server only tells us what happened.
        const n: ProposalItem = {
          kind: "proposal", id: nextId(s, "p"), proposalId: act.proposalId, tool: "auto-accepted", files: [],
          status: act.status, message: act.message, review: false,
        };
        s.items.push(n);
        return [n.id];
      }
      it.status = act.status;
      if (act.message !== undefined) it.message = act.message;
      return [it.id, ...toolOf(s, it.callId)];
    }
    case "hunks": {
      const it = s.items.find((i): i is ProposalItem => i.kind === "proposal" && i.proposalId === act.proposalId);
      if (!it) return [];
      for (const f of it.files) {
        const u = act.files[f.uri];
        if (!u) continue;
        f.userEdits = u.userEdits;
        for (const h of f.hunks) {
          const x = u.hunks.find((y) => y.id === h.id);
          if (x) { h.decision = x.decision; h.content = x.content; h.label = regionLabel({ start: x.start, end: x.end }); }
        }
      }
      return [it.id];
    }
    case "approval": {
      const changed = closeStreaming(s);
      const p = act.params;
      const info: ApprovalInfo = {
        id: act.id, approvalKind: p.kind, target: p.target, cwd: p.cwd, reason: p.reason, suggestedRule: p.suggestedRule,
        subject: p.subject,
      };
      // One card per command: the approval goes on the command's tool card.
      const hit = p.callId ? findCall(s.items, p.callId) : undefined; // a sub-agent's call too
      if (hit && !hit.tool.approval) {
        hit.tool.approval = info;
        return [...changed, hit.top.id];
      }
      const it: ApprovalItem = { kind: "approval", ...info };
      s.items.push(it);
      return [...changed, it.id];
    }
    case "approvalStatus": {
      const hit = [...walk(s.items)].find(({ item: i }) => (i.kind === "approval" && i.id === act.id) || (i.kind === "tool" && i.approval?.id === act.id));
      if (!hit) return [];
      const it = hit.item;
      if (it.kind === "approval") it.answer = act.answer;
      else if (it.kind === "tool" && it.approval) it.approval.answer = act.answer;
      return [hit.top.id];
    }
    case "event":
      return reduceEvent(s, act.event, act.sessionId);
    case "checkpoints":
      return assignCheckpoints(s, act.targets);
    case "rewind":
      s.rewind = act.card;
      return ["#rewind"];
    case "rewindChoice":
      if (s.rewind) s.rewind.choices = { ...s.rewind.choices, [act.path]: act.choice };
      return ["#rewind"];
    case "rewindScope":
      if (s.rewind) s.rewind.scope = act.scope;
      return ["#rewind"];
  }
}

const norm = (t: string) => t.split(/\s+/).filter(Boolean).join(" ");

/**
 * Ties the server's rewind targets to the panel's user messages: matched from the end by
 * their words (the panel also shows slash commands and notes that are not messages).
 */
function assignCheckpoints(s: ChatState, targets: RewindTarget[]): string[] {
  const users = s.items.filter((i): i is UserItem => i.kind === "user");
  const changed = new Set<string>();
  for (const u of users) if (u.checkpoint) { u.checkpoint = undefined; changed.add(u.id); }
  let j = users.length - 1;
  const messages = targets.filter((t) => t.kind === "message" && t.number != null);
  for (let k = messages.length - 1; k >= 0 && j >= 0; k--) {
    const t = messages[k];
    const want = norm(t.words ?? t.text);
    let at = j;
    while (at >= 0 && norm(users[at].text) !== want) at--;
    if (at < 0) continue; // not shown in the panel (a custom command's prompt): no button
    users[at].checkpoint = { id: t.checkpointId, number: t.number ?? 0, files: t.files };
    changed.add(users[at].id);
    j = at - 1;
  }
  return [...changed];
}

/** A finished call's status: a stop or a denial is not a failure. */
function finishedStatus(ok: boolean, summary: string | undefined, result: string | undefined, approval?: ApprovalInfo): ToolStatus {
  if (ok) return "done";
  const sum = (summary ?? "").trim().toLowerCase();
  if (sum === "cancelled" || sum === STOPPED || (result ?? "").startsWith("Cancelled: the user stopped")) return "cancelled";
  if (approval?.answer === "deny") return "denied";
  if (approval?.answer === "cancelled") return "cancelled";
  return "failed";
}

/** The id of the tool card of a call, if there is one (to redraw it). */
function toolOf(s: ChatState, callId: string | undefined): string[] {
  const hit = callId ? findCall(s.items, callId) : undefined;
  return hit ? [hit.top.id] : [];
}

function closeStreaming(s: ChatState): string[] {
  const last = lastItem(s);
  if (last && last.kind === "assistant" && last.streaming) {
    last.streaming = false;
    return [last.id];
  }
  return [];
}

function reduceEvent(s: ChatState, ev: AgentEvent, sessionId?: string): string[] {
  if (sessionId && !s.sessionId) s.sessionId = sessionId;
  switch (ev.type) {
    case "textDelta": {
      const last = lastItem(s);
      if (last && last.kind === "assistant" && last.streaming) {
        last.text += ev.text;
        return [last.id];
      }
      const it: AssistantItem = { kind: "assistant", id: nextId(s, "a"), text: ev.text, streaming: true };
      s.items.push(it);
      return [it.id];
    }
    case "toolCallStarted": {
      const changed = closeStreaming(s);
      const it: ToolItem = {
        kind: "tool", id: nextId(s, "t"), callId: ev.callId, name: ev.name, summary: ev.summary ?? "",
        args: ev.arguments, status: "running", origin: ev.origin || undefined,
      };
      if (ev.parent) it.parent = ev.parent;
      if (ev.code) { it.code = ev.code; it.codeLanguage = ev.codeLanguage || undefined; }
      s.items.push(it);
      return [...changed, topItem(s, it).id];
    }
    case "toolCallFinished": {
      const it = [...s.items].reverse().find((i): i is ToolItem => i.kind === "tool" && i.callId === ev.callId);
      if (!it) {
        const n: ToolItem = {
          kind: "tool", id: nextId(s, "t"), callId: ev.callId, name: ev.name, summary: "",
          status: finishedStatus(ev.ok, ev.summary, ev.result), resultSummary: ev.summary, result: ev.result,
        };
        if (n.status === "cancelled") n.resultSummary = STOPPED;
        s.items.push(n);
        return [n.id];
      }
      it.status = finishedStatus(ev.ok, ev.summary, ev.result, it.approval);
      // a stop or a denial says so in the decision; the model-facing text is in the details
      it.resultSummary = it.status === "cancelled" ? STOPPED : it.status === "denied" ? undefined : ev.summary;
      it.result = ev.result;
      return [topItem(s, it).id];
    }
    case "retry": {
      // Text streamed since the last tool call is discarded by the server: drop it here too.
      const changed: string[] = [];
      const last = lastItem(s);
      if (last && last.kind === "assistant" && last.streaming) {
        s.items.pop();
        changed.push("*");
      }
      const it: RetryItem = {
        kind: "retry", id: nextId(s, "r"), attempt: ev.attempt, maxAttempts: ev.maxAttempts, delay: ev.delay,
        reason: ev.reason,
      };
      s.items.push(it);
      return changed.length ? ["*"] : [it.id];
    }
    case "usage":
      return [];
    case "notice": {
      const changed = closeStreaming(s);
      const it: NoticeItem = { kind: "notice", id: nextId(s, "n"), level: ev.level === "warning" ? "warning" : "info", message: ev.message };
      s.items.push(it);
      return [...changed, it.id];
    }
    case "error": {
      const changed = closeStreaming(s);
      const it: NoticeItem = { kind: "notice", id: nextId(s, "n"), level: "error", message: ev.message };
      s.items.push(it);
      return [...changed, it.id];
    }
    case "todosChanged":
      s.todos = (ev.todos ?? []).map((t) => ({ ...t }));
      return ["#todos"];
    case "hookRan":
      return reduceHook(s, ev);
    case "subagent":
      return reduceSubagent(s, ev);
    case "turnEnd": {
      const changed = closeStreaming(s);
      // tool cards still running when the turn ended were stopped; open approvals are void
      for (const i of s.items) {
        if (i.kind === "tool" && i.approval && !i.approval.answer) { i.approval.answer = "cancelled"; changed.push(i.id); }
        if (i.kind === "tool" && i.status === "running") {
          i.status = ev.status === "cancelled" ? "cancelled" : "failed";
          i.resultSummary = ev.status === "cancelled" ? STOPPED : i.resultSummary ?? ev.status;
          changed.push(i.id);
        }
        if (i.kind === "approval" && !i.answer && i.approvalKind !== "Trust") { i.answer = "cancelled"; changed.push(i.id); }
        // a sub-agent's steps end with its parent's turn
        if (i.kind === "tool" && i.children && settleSteps(i.children, ev.status === "cancelled")) changed.push(i.id);
      }
      const it: TurnEndItem = {
        kind: "turnEnd", id: nextId(s, "e"), status: ev.status, message: ev.message,
        promptTokens: ev.promptTokens, completionTokens: ev.completionTokens, cachedTokens: ev.cachedTokens, cost: ev.cost,
      };
      s.items.push(it);
      s.running = undefined;
      return [...changed, it.id, "#status"];
    }
  }
  return [];
}

/** A hook run: on its tool card (a sub-agent's too) when it ran for a call, else a line of its own. */
function reduceHook(s: ChatState, ev: Extract<AgentEvent, { type: "hookRan" }>): string[] {
  const info = hookInfo(ev);
  const hit = ev.callId ? findCall(s.items, ev.callId) : undefined;
  if (hit) {
    const hooks = hit.tool.hooks ??= [];
    const at = hooks.findIndex((x) => x.runId === info.runId);
    if (at >= 0) hooks[at] = info; else hooks.push(info);
    return [hit.top.id];
  }
  const existing = s.items.find((i): i is HookItem => i.kind === "hook" && i.runId === info.runId);
  if (existing) { Object.assign(existing, info); return [existing.id]; }
  const changed = closeStreaming(s);
  const it: HookItem = { kind: "hook", id: nextId(s, "k"), ...info };
  s.items.push(it);
  return [...changed, it.id];
}

/** A sub-agent's event: reduced into the steps of its parent's `task` card (ids from the same sequence). */
function reduceSubagent(s: ChatState, ev: Extract<AgentEvent, { type: "subagent" }>): string[] {
  const hit = findCall(s.items, ev.parentCallId);
  if (!hit) return [];
  hit.tool.agent = ev.agent;
  const steps: ChatState = { items: hit.tool.children ??= [], queued: [], seq: s.seq };
  reduceEvent(steps, ev.event); // its own turnEnd ends its steps, not the parent's turn
  s.seq = steps.seq;
  return [hit.top.id];
}

/** Chat items for a transcript of OpenAI messages (a reopened session); `subagents`: the
 * sub-agents' conversations by their parent's call id, nested under its card. */
export function itemsFromTranscript(messages: OpenAIMessage[], subagents?: Record<string, SubagentLog>, prefix = ""): Item[] {
  const out: Item[] = [];
  let n = 0;
  const id = (p: string) => `${p}h${prefix}${++n}`;
  const byCall = new Map<string, ToolItem>();
  for (const m of messages ?? []) {
    const text = contentText(m.content);
    if (m.role === "user") {
      out.push({ kind: "user", id: id("u"), ...userContent(m.content) });
    } else if (m.role === "assistant") {
      if (text.trim()) out.push({ kind: "assistant", id: id("a"), text, streaming: false });
      for (const c of m.tool_calls ?? []) {
        let args: unknown = c.function?.arguments;
        try { args = JSON.parse(String(c.function?.arguments ?? "")); } catch { /* keep the string */ }
        const t: ToolItem = {
          kind: "tool", id: id("t"), callId: c.id, name: c.function?.name ?? "tool", summary: keyArgument(args),
          args, status: "done",
        };
        const sub = subagents?.[c.id];
        if (sub) {
          // the child's first message is the task's prompt: the card's arguments show it
          const [first, ...rest] = sub.messages ?? [];
          t.agent = sub.agent;
          t.children = itemsFromTranscript(first?.role === "user" ? rest : sub.messages ?? [], undefined, `${t.id}_`);
        }
        byCall.set(c.id, t);
        out.push(t);
      }
    } else if (m.role === "tool") {
      const t = m.tool_call_id ? byCall.get(m.tool_call_id) : undefined;
      if (t) {
        t.result = text;
        t.resultSummary = firstLine(text);
      }
    }
  }
  return out;
}

/** A user message's parts as the panel shows them: the text, @-mention chips, image thumbnails. */
export function userContent(content: unknown): { text: string; chips?: Chip[]; images?: { mimeType: string; data: string }[] } {
  if (!Array.isArray(content)) return { text: withoutTurnContext(contentText(content)) };
  const texts: string[] = [];
  const chips: Chip[] = [];
  const images: { mimeType: string; data: string }[] = [];
  for (const p of content as { type?: string; text?: string; image_url?: { url?: string } }[]) {
    if (p?.type === "text" && typeof p.text === "string") {
      if (p.text.startsWith(TURN_CONTEXT_OPEN)) continue;
      const m = p.text.match(/^<context kind="(\w+)" label="([^"]*)">/);
      if (m) chips.push({ kind: m[1] as Chip["kind"], label: m[2] });
      else if (!p.text.startsWith("[The user attached")) texts.push(p.text);
    } else if (p?.type === "image_url") {
      const u = p.image_url?.url ?? "";
      const m = u.match(/^data:([^;]+);base64,(.*)$/);
      if (m) images.push({ mimeType: m[1], data: m[2] });
    }
  }
  return { text: texts.join("\n"), chips: chips.length ? chips : undefined, images: images.length ? images : undefined };
}

/** The context block the server adds after the user's words (git status, open files, mode):
 * for the model, not for the transcript. */
const TURN_CONTEXT_OPEN = "<codeloop-context>";

export function withoutTurnContext(text: string): string {
  const at = text.indexOf("\n\n" + TURN_CONTEXT_OPEN);
  return at >= 0 ? text.slice(0, at) : text.startsWith(TURN_CONTEXT_OPEN) ? "" : text;
}

/** A session's title as the server lists it, without a context block an older server kept in it. */
export function titleWithoutContext(title: string): string {
  const at = title.indexOf(TURN_CONTEXT_OPEN);
  return at >= 0 ? title.slice(0, at).trim() : title;
}

export function contentText(content: unknown): string {
  if (content == null) return "";
  if (typeof content === "string") return content;
  if (Array.isArray(content)) {
    return content.map((p) => (typeof p === "string" ? p : p && typeof p === "object" && typeof (p as { text?: unknown }).text === "string" ? (p as { text: string }).text : "")).join("");
  }
  return String(content);
}

export function firstLine(text: string | undefined, max = 120): string {
  const line = (text ?? "").split("\n").find((l) => l.trim()) ?? "";
  return line.length > max ? line.slice(0, max - 1) + "…" : line;
}

/** The argument worth showing on a tool card: a path, a command, a pattern… */
export function keyArgument(args: unknown): string {
  if (!args || typeof args !== "object") return typeof args === "string" ? firstLine(args) : "";
  const a = args as Record<string, unknown>;
  for (const k of ["command", "path", "file_path", "pattern", "query", "url", "id"]) {
    if (typeof a[k] === "string" && a[k]) return firstLine(a[k] as string);
  }
  const first = Object.values(a).find((v) => typeof v === "string");
  return typeof first === "string" ? firstLine(first) : "";
}

/** "1,234 in · 56 out · $0.0012" */
export function formatUsage(u: { promptTokens?: number; completionTokens?: number; cachedTokens?: number; cost?: number | null }): string {
  const parts: string[] = [];
  const fmt = (n: number) => n.toLocaleString("en-US");
  if (u.promptTokens != null) {
    // The cache hit rate: what providers bill at a fraction of the input price.
    const rate = u.cachedTokens && u.promptTokens ? ` (${fmt(u.cachedTokens)} cached, ${Math.round((100 * u.cachedTokens) / u.promptTokens)}% hit rate)` : "";
    parts.push(`${fmt(u.promptTokens)} in` + rate);
  }
  if (u.completionTokens != null) parts.push(`${fmt(u.completionTokens)} out`);
  if (u.cost != null) parts.push(u.cost < 0.01 ? `$${u.cost.toFixed(4)}` : `$${u.cost.toFixed(2)}`);
  return parts.join(" · ");
}

/** Lines added and removed by a unified diff (its `+`/`-` lines, not the headers). */
export function countDiff(diff: string): { added: number; removed: number } {
  let added = 0;
  let removed = 0;
  for (const l of diff.split("\n")) {
    if (l.startsWith("+++") || l.startsWith("---")) continue;
    if (l.startsWith("+")) added++;
    else if (l.startsWith("-")) removed++;
  }
  return { added, removed };
}

/** The servers section's heading: "MCP servers · 2 ready · 1 failed · 1 waits for you". */
export function mcpSummary(servers: McpServerInfo[]): string {
  const count = (st: McpServerInfo["status"]) => servers.filter((x) => x.status === st).length;
  const parts = [`MCP servers (${servers.length})`];
  const ready = count("ready"), failed = count("failed"), starting = count("starting"), waiting = count("needs-consent");
  if (ready) parts.push(`${ready} ready`);
  if (starting) parts.push(`${starting} starting`);
  if (failed) parts.push(`${failed} failed`);
  if (waiting) parts.push(`${waiting} ${waiting === 1 ? "waits" : "wait"} for you`);
  return parts.join(" · ");
}

/** One server's line: "ready · 12 tools", "failed: <error> (retrying in 4 s)". */
export function mcpStatusText(server: McpServerInfo): string {
  switch (server.status) {
    case "ready": return `ready · ${server.toolCount} tool${server.toolCount === 1 ? "" : "s"}`;
    case "starting": return "starting…";
    case "needs-consent": return "waits for your consent";
    case "disabled": return `off${server.lastError ? `: ${server.lastError}` : ""}`;
    case "failed": return `failed${server.lastError ? `: ${server.lastError}` : ""}${server.retryIn != null ? ` (retrying in ${Math.round(server.retryIn)} s)` : ""}`;
  }
  return server.status;

}

/** The calls a tool call made (code mode's program), in order. */
export function childrenOf(s: ChatState, t: ToolItem): ToolItem[] {
  return s.items.filter((i): i is ToolItem => i.kind === "tool" && i.parent === t.callId && i !== t);
}

/** The item that holds ``it`` in the log: itself, or the card of the call it runs inside. */
export function topItem(s: ChatState, it: Item): Item {
  let cur = it;
  for (let depth = 0; depth < 8 && cur.kind === "tool" && cur.parent; depth++) {
    const parent = cur.parent;
    const up = s.items.find((i): i is ToolItem => i.kind === "tool" && i.callId === parent);
    if (!up) break;
    cur = up;
  }
  return cur;
}

/** Whether the log shows ``it`` at the top level (not inside another call's card). */
export function atTop(s: ChatState, it: Item): boolean {
  return topItem(s, it) === it;
}
