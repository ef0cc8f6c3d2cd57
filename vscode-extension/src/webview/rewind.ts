/** The rewind card (a preview of rewinding to before one message, a choice per file) and the
 * restore button on each user message. The state is the host's (shared/model.ts). */
import type { RewindCard, RewindScope, UserItem } from "../shared/model";
import type { RewindChoice, RewindFile } from "../protocol";
import { local, persist, vscode } from "./api";
import { h, icon } from "./dom";
import { diffLines } from "./cards";

const SCOPES: [RewindScope, string][] = [["both", "Code and conversation"], ["code", "Code only"], ["conversation", "Conversation only"]];
const CHOICE_TEXT: Record<RewindChoice, string> = {
  restore: "Restore",
  keep: "Keep as it is",
  rebase: "Rebase (undo the session's changes on top)",
};
const ACTION_TEXT: Record<string, string> = {
  restore: "restore", delete: "delete (created by the session)", recreate: "recreate (deleted by the session)",
  none: "already as it was", unavailable: "cannot be restored",
};

/** The restore button of a user message (rewinds to before it). */
export function restoreButton(u: UserItem, running: boolean): HTMLElement | false {
  if (!u.checkpoint) return false;
  const files = u.checkpoint.files;
  return h("button", {
    class: "icon-btn rewind-btn", disabled: running, "data-checkpoint": u.checkpoint.id,
    title: `Rewind to before this message (${files} file${files === 1 ? "" : "s"} changed since): preview first`,
    "aria-label": "Rewind to before this message",
    onclick: () => vscode.postMessage({ type: "rewind", action: "open", checkpointId: u.checkpoint!.id }),
  }, icon("discard"));
}

function post(m: { action: "choice"; path: string; choice: RewindChoice } | { action: "scope"; scope: RewindScope } | { action: "apply" | "close" }): void {
  vscode.postMessage({ type: "rewind", ...m } as never);
}

function fileRow(f: RewindFile, choice: RewindChoice, code: boolean, rerender: () => void): HTMLElement {
  const key = `rewind:${f.path}`;
  const open = local.expanded.includes(key);
  const select = h("select", {
    class: "rewind-choice", "data-path": f.path, "aria-label": `What to do with ${f.path}`, disabled: !code || f.choices.length < 2,
    onchange: (e: Event) => post({ action: "choice", path: f.path, choice: (e.target as HTMLSelectElement).value as RewindChoice }),
  }) as HTMLSelectElement;
  for (const c of f.choices) select.append(h("option", { value: c, text: CHOICE_TEXT[c] ?? c, selected: c === choice }));
  select.value = choice;
  const diff = f.userChanged && choice !== "restore" ? (choice === "rebase" ? f.rebaseDiff : f.userDiff) : f.diff;
  const row = h("div", { class: `rewind-file${f.userChanged ? " changed-since" : ""}`, "data-path": f.path, "data-action": f.action },
    h("div", { class: "rewind-file-head" },
      h("button", {
        class: "icon-btn rewind-diff-toggle", title: open ? "Hide the diff" : "Show the diff", "aria-expanded": String(open),
        onclick: () => { const i = local.expanded.indexOf(key); if (i >= 0) local.expanded.splice(i, 1); else local.expanded.push(key); persist(); rerender(); },
      }, icon(open ? "chevron-down" : "chevron-right")),
      icon(f.userChanged ? "warning" : f.action === "delete" ? "trash" : f.action === "recreate" ? "new-file" : "file"),
      h("span", { class: "rewind-path", text: f.path, title: f.path }),
      select),
    // the whole reason (why a rebase is not possible, say) is the tooltip
    h("div", { class: "muted rewind-reason", title: f.reason, text: f.userChanged
      ? "changed since the session's change: kept unless you choose otherwise" + (f.choices.includes("rebase") ? "" : " (no rebase: the edits overlap)")
      : ACTION_TEXT[f.action] ?? f.reason }));
  if (open) {
    if (f.userChanged && f.userDiff && choice !== "keep") row.append(h("div", { class: "muted", text: "Since the session's change:" }), diffLines(f.userDiff));
    row.append(diff ? (f.binary && !diff.startsWith("---") ? h("div", { class: "muted", text: diff }) : diffLines(diff)) : h("div", { class: "muted", text: "No change." }));
  }
  return row;
}

export function renderRewind(el: HTMLElement, card: RewindCard | undefined): void {
  el.classList.toggle("hidden", !card);
  if (!card) { el.replaceChildren(); return; }
  const rerender = () => renderRewind(el, card);
  const head = h("div", { class: "rewind-head" }, icon("discard"),
    h("strong", { text: card.number ? ` Rewind to before message ${card.number}` : " Rewind" }),
    h("span", { class: "spacer" }),
    h("button", { class: "icon-btn", title: "Close", onclick: () => post({ action: "close" }) }, icon("close")));
  const parts: HTMLElement[] = [head];
  if (card.text) parts.push(h("div", { class: "rewind-message muted", text: `“${card.text}”` }));
  if (card.status === "loading") parts.push(h("div", { class: "muted" }, icon("loading", "codicon-modifier-spin"), " Preparing the preview…"));
  if (card.status === "error") {
    parts.push(h("div", { class: "notice error rewind-error" }, icon("error"), h("span", { text: ` ${card.error ?? "failed"}` })));
    parts.push(h("div", { class: "actions" },
      h("button", { onclick: () => vscode.postMessage({ type: "rewind", action: "open", checkpointId: card.checkpointId }) }, icon("refresh"), " Preview again"),
      h("button", { onclick: () => post({ action: "close" }) }, " Close")));
  }
  const p = card.preview;
  if (p && card.status !== "error") {
    const code = card.scope !== "conversation";
    parts.push(h("div", { class: "rewind-scope", role: "radiogroup", "aria-label": "What to rewind" },
      ...SCOPES.map(([value, label]) => h("label", { class: "rewind-scope-option" },
        h("input", { type: "radio", name: "rewind-scope", value, checked: card.scope === value,
          onchange: () => post({ action: "scope", scope: value }) }), ` ${label}`))));
    if (card.scope !== "code") {
      parts.push(h("div", { class: "muted rewind-conversation", text: p.conversation.note
        ? `Conversation: ${p.conversation.note}`
        : `Conversation: the last ${p.conversation.removes} message(s) are removed; this message goes back into the input.` }));
    }
    if (code) {
      const changed = p.files.filter((f) => f.userChanged).length;
      parts.push(h("div", { class: "muted", text: p.files.length
        ? `Code: ${p.files.length} file(s)` + (changed ? `; ${changed} changed since the session's change (kept unless you choose otherwise)` : "")
        : "Code: no file changes to undo." }));
      parts.push(h("div", { class: "rewind-files" }, ...p.files.map((f) => fileRow(f, card.choices[f.path] ?? f.default, code, rerender))));
      if (p.outside.length) parts.push(h("div", { class: "muted rewind-outside", text: `Left alone (changed outside the session): ${p.outside.map((o) => o.path).join(", ")}` }));
    }
    const busy = card.status === "applying";
    parts.push(h("div", { class: "actions" },
      h("button", { class: "primary rewind-apply", disabled: busy, onclick: () => post({ action: "apply" }) },
        icon(busy ? "loading" : "discard", busy ? "codicon-modifier-spin" : ""), busy ? " Rewinding…" : " Rewind"),
      h("button", { class: "rewind-cancel", disabled: busy, onclick: () => post({ action: "close" }) }, " Cancel")));
  }
  el.replaceChildren(...parts);
}
