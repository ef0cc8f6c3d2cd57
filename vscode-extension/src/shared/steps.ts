/**
 * What the panel shows inside and around tool cards: hook runs and a sub-agent's nested
 * steps. Pure helpers for the reducer (model.ts), shared by the host and the webview.
 */
import type { AgentEvent } from "../protocol";
import type { Item, ToolItem } from "./model";

export const STOPPED = "stopped by you";

/** A hook run (`hookRan`): `status` is "running", then "ok", "blocked", "denied", "warning", "timeout" or "error". */
export interface HookInfo {
  runId: string; hookEvent: string; status: string; label: string; line: string;
  target?: string | null; callId?: string; scope?: string; duration?: number | null;
}
/** A hook run no tool card claims (UserPromptSubmit, Stop, SessionStart…): a line of its own. */
export interface HookItem extends HookInfo { kind: "hook"; id: string }

export function hookInfo(ev: Extract<AgentEvent, { type: "hookRan" }>): HookInfo {
  return {
    runId: ev.runId, hookEvent: ev.hookEvent, status: ev.phase === "start" ? "running" : ev.status, label: ev.label,
    line: ev.line, target: ev.target, callId: ev.callId || undefined, scope: ev.scope, duration: ev.duration,
  };
}

/** A hook the user should notice: it blocked, denied, warned, timed out or failed. */
export function hookStands(status: string): boolean {
  return !["ok", "running"].includes(status);
}

/** Every item, nested steps included (depth first), with the top-level item it is shown in. */
export function* walk(items: Item[], top?: Item): Generator<{ item: Item; top: Item }> {
  for (const item of items) {
    yield { item, top: top ?? item };
    if (item.kind === "tool" && item.children) yield* walk(item.children, top ?? item);
  }
}

/** The latest card of a call, nested ones included, and the top-level card to redraw. */
export function findCall(items: Item[], callId: string): { tool: ToolItem; top: Item } | undefined {
  let found: { tool: ToolItem; top: Item } | undefined;
  for (const { item, top } of walk(items)) if (item.kind === "tool" && item.callId === callId) found = { tool: item, top };
  return found;
}

/** Ends a sub-agent's steps with its parent's turn: streaming text closes, running calls
 * stop, open approvals are void. True when something changed. */
export function settleSteps(items: Item[], cancelled: boolean): boolean {
  let changed = false;
  for (const { item } of walk(items)) {
    if (item.kind === "assistant" && item.streaming) { item.streaming = false; changed = true; }
    if (item.kind === "tool" && item.status === "running") {
      item.status = cancelled ? "cancelled" : "failed";
      item.resultSummary = cancelled ? STOPPED : item.resultSummary ?? "not finished";
      changed = true;
    }
    if (item.kind === "tool" && item.approval && !item.approval.answer) { item.approval.answer = "cancelled"; changed = true; }
    if (item.kind === "approval" && !item.answer) { item.answer = "cancelled"; changed = true; }
  }
  return changed;
}

/** "explore · 3 steps" */
export function stepsLabel(t: ToolItem): string {
  const calls = (t.children ?? []).filter((i) => i.kind === "tool").length;
  return `${t.agent ?? "sub-agent"} · ${calls} tool call${calls === 1 ? "" : "s"}`;
}
