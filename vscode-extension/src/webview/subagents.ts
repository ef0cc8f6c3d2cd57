/**
 * A sub-agent's steps, nested in its parent's `task` card: its tool cards (with their hooks
 * and approvals) and its text, rendered like the chat's own items. Open while it runs,
 * folded once it is done; the user's choice holds.
 */
import type { Item, ToolItem, TurnEndItem } from "../shared/model";
import { formatUsage } from "../shared/model";
import { stepsLabel } from "../shared/steps";
import { local, persist } from "./api";
import { h, icon } from "./dom";

let renderItem: (it: Item) => HTMLElement = () => h("div");
/** The panel's item renderer (main.ts), for the nested items. */
export function initSteps(render: (it: Item) => HTMLElement): void { renderItem = render; }

const openKey = (id: string) => `steps-open:${id}`;
const closedKey = (id: string) => `steps-closed:${id}`;

function waitsForUser(items: Item[]): boolean {
  return items.some((i) => (i.kind === "tool" && ((i.approval && !i.approval.answer) || (i.children && waitsForUser(i.children)))) || (i.kind === "approval" && !i.answer));
}

function isOpen(t: ToolItem): boolean {
  if (waitsForUser(t.children ?? [])) return true; // an approval inside is never hidden
  if (local.expanded.includes(openKey(t.id))) return true;
  if (local.expanded.includes(closedKey(t.id))) return false;
  return t.status === "running";
}

export function renderSteps(t: ToolItem): HTMLElement {
  const items = t.children ?? [];
  const open = isOpen(t);
  const end = items.find((i): i is TurnEndItem => i.kind === "turnEnd");
  const usage = end ? formatUsage(end) : "";
  const el = h("div", { class: "subagent-steps", "data-agent": t.agent ?? "", "data-open": String(open) });
  const head = h("button", {
    class: "steps-head", "aria-expanded": String(open), title: open ? "Fold the sub-agent's steps" : "Show the sub-agent's steps",
    onclick: () => {
      for (const k of [openKey(t.id), closedKey(t.id)]) { const i = local.expanded.indexOf(k); if (i >= 0) local.expanded.splice(i, 1); }
      local.expanded.push(open ? closedKey(t.id) : openKey(t.id));
      persist();
      el.replaceWith(renderSteps(t));
    },
  }, icon(open ? "chevron-down" : "chevron-right", "chev"), icon("hubot"),
  h("span", { class: "steps-label", text: stepsLabel(t) }),
  t.status === "running" ? icon("loading", "codicon-modifier-spin") : null,
  usage ? h("span", { class: "muted steps-usage", text: `· ${usage}`, title: `the sub-agent's tokens: ${usage}` }) : null);
  el.append(head);
  if (open) el.append(h("div", { class: "steps-body" }, ...items.filter((i) => i.kind !== "turnEnd").map(renderItem)));
  return el;
}
