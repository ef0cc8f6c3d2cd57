/** The chat's cards: tool calls (with their approvals), standalone approvals, proposals and their hunks. */
import { type ApprovalInfo, type ChatState, type HunkItem, type ProposalFileItem, type ProposalItem, type ToolItem, childrenOf } from "../shared/model";
import { plainReasons } from "../shared/reasons";
import { local, persist, vscode } from "./api";
import { h, icon } from "./dom";
import { highlight } from "./markdown";
import { renderToolHooks } from "./hooks";
import { renderSteps } from "./subagents";

/** What the cards need from the panel. */
export interface CardHooks {
  state(): ChatState;
  /** Expand or collapse a tool card. */
  toggle(id: string): void;
  /** The user is typing a message (a new approval then does not take the focus). */
  isTyping(): boolean;
}
let hooks: CardHooks;
export function initCards(x: CardHooks): void { hooks = x; }

const STATUS_ICON: Record<string, [string, string]> = {
  done: ["check", "ok"], failed: ["error", "fail"], cancelled: ["debug-stop", "stopped"], denied: ["circle-slash", "stopped"],
};
const ANSWER_TEXT: Record<string, string> = { allow_once: "allowed once", allow_always: "always allowed", deny: "denied by you", cancelled: "not answered" };

export function renderTool(t: ToolItem): HTMLElement {
  if (t.approval && !t.approval.answer) return renderApproval(t.approval, t);
  const open = local.expanded.includes(t.id);
  const reviewing = t.status === "running" && hooks.state().items.some((i) => i.kind === "proposal" && i.callId === t.callId && i.status === "pending");
  const [iconName, iconClass] = reviewing ? ["diff", "stopped"] : STATUS_ICON[t.status] ?? ["loading", "codicon-modifier-spin"];
  const decision = t.approval?.answer && ANSWER_TEXT[t.approval.answer];
  const sub = [t.resultSummary, reviewing ? "waiting for your review (below)" : t.status === "running" && (t.approval?.answer === "allow_once" || t.approval?.answer === "allow_always") ? "running…" : ""].filter(Boolean).join(" · ");
  const head = h("button", { class: "tool-head", "aria-expanded": String(open), onclick: () => hooks.toggle(t.id) },
    h("div", { class: "tool-row" },
      icon(iconName, iconClass), h("span", { class: "tool-name", text: t.name }),
      t.origin && h("span", { class: "tool-origin", text: t.origin, title: `from the MCP server ${t.origin}` }),
      t.summary && h("code", { class: "tool-arg", text: t.summary, title: t.summary }),
      h("span", { class: "spacer" }), icon(open ? "chevron-down" : "chevron-right", "chev")),
    (sub || decision) && h("div", { class: "tool-sub" },
      sub && h("span", { class: `tool-result-summary ${t.status}`, text: sub, title: t.resultSummary ?? "" }),
      decision && h("span", { class: `tool-decision ${t.approval?.answer}`, text: decision })));
  const card = h("div", { class: `card tool-card ${t.status}`, "data-status": t.status, "data-tool": t.name, "data-answer": t.approval?.answer ?? "" }, head);
  if (t.hooks?.length) card.append(renderToolHooks(t.hooks));
  if (t.children?.length || t.agent) card.append(renderSteps(t));
  if (t.code !== undefined) card.append(renderProgram(t.code, t.codeLanguage));
  const children = childrenOf(hooks.state(), t);
  if (children.length) {
    card.append(h("div", { class: "tool-children", "aria-label": `${children.length} tool calls` },
      ...children.map((c) => h("div", { id: `item-${c.id}`, class: "item tool nested" }, renderTool(c)))));
  }
  if (open) {
    const details = h("div", { class: "tool-details" });
    if (t.approval) details.append(...approvalFacts(t.approval));
    if (t.args !== undefined) details.append(h("div", { class: "label", text: "arguments" }), h("pre", { class: "plain", text: typeof t.args === "string" ? t.args : JSON.stringify(t.args, null, 2) }));
    if (t.result !== undefined) details.append(h("div", { class: "label", text: "result" }), renderResult(t));
    card.append(details);
  }
  return card;
}

/** A program the call runs (code mode), highlighted. */
function renderProgram(code: string, language?: string): HTMLElement {
  const el = h("code", { class: "hljs" });
  const html = highlight(code.replace(/^\n+|\s+$/g, ""), language ?? "python");
  if (html !== undefined) el.innerHTML = html; else el.textContent = code;
  return h("pre", { class: "plain code-view program", title: "the program" }, el);
}

/** A tool's result: numbered file lines (`N\t…`, what read_file sends the model) become highlighted code. */
function renderResult(t: ToolItem): HTMLElement {
  const text = t.result ?? "";
  const shown = text.length > 20000 ? text.slice(0, 20000) + "\n…" : text;
  const lines = shown.replace(/\n$/, "").split("\n");
  const numbered = lines.filter((l) => /^\s*\d+\t/.test(l));
  if (numbered.length < 1 || numbered.length < lines.length * 0.6) return h("pre", { class: "plain", text: shown });
  const code = numbered.map((l) => l.replace(/^\s*\d+\t/, "")).join("\n");
  const first = Number(numbered[0].match(/^\s*(\d+)\t/)![1]);
  const notes = lines.filter((l) => !/^\s*\d+\t/.test(l) && l.trim());
  const path = t.args && typeof t.args === "object" ? String((t.args as Record<string, unknown>).path ?? "") : "";
  const lang = (path.split(".").pop() ?? "").toLowerCase();
  const el = h("code", { class: "hljs" });
  const html = highlight(code, lang);
  if (html !== undefined) el.innerHTML = html; else el.textContent = code;
  const pre = h("pre", { class: "plain code-view", "data-first-line": String(first), title: `from line ${first}` }, el);
  return h("div", { class: "result-code" }, pre, ...notes.map((n) => h("div", { class: "muted result-note", text: n })));
}

function approvalFacts(a: ApprovalInfo): HTMLElement[] {
  const reasons = plainReasons(a.reason, a.target);
  return [
    h("pre", { class: "command", text: a.target }),
    a.cwd ? h("div", { class: "muted approval-cwd" }, icon("folder"), ` ${a.cwd}`) : h("span"),
    reasons.length ? h("ul", { class: "approval-reasons muted" }, ...reasons.map((r) => h("li", {},
      r.why, r.commands.length ? ": " : "", ...r.commands.flatMap((c, i) => [i ? ", " : "", h("code", { text: c })])))) : h("span"),
  ];
}

/** A unified diff with at most `keep` unchanged lines around each change (the card is narrow). */
function trimContext(diff: string, keep: number): string {
  const lines = diff.split("\n");
  const changed = (l: string) => (l.startsWith("+") && !l.startsWith("+++")) || (l.startsWith("-") && !l.startsWith("---"));
  const near = lines.map((_, i) => lines.slice(Math.max(0, i - keep), i + keep + 1).some(changed));
  return lines.filter((l, i) => changed(l) || l.startsWith("@@") || l.startsWith("+++") || l.startsWith("---") || near[i]).join("\n");
}

export function diffLines(text: string, skipHeaders = false): HTMLElement {
  const pre = h("pre", { class: "diff" });
  for (const line of text.split("\n")) {
    if (line.startsWith("+++") || line.startsWith("---") || (skipHeaders && line.startsWith("@@"))) continue;
    const cls = line.startsWith("+") ? "add" : line.startsWith("-") ? "del" : line.startsWith("@@") ? "hunk" : "ctx";
    pre.append(h("span", { class: `dl ${cls}`, text: line + "\n" }));
  }
  return pre;
}

const DECISION_TEXT: Record<string, string> = { kept: "kept", undone: "undone" };

function renderHunk(p: ProposalItem, f: ProposalFileItem, hk: HunkItem, pending: boolean): HTMLElement {
  const act = (action: "keep" | "undo") => () => vscode.postMessage({ type: "hunk", proposalId: p.proposalId, uri: f.uri, hunkId: hk.id, action });
  const state = DECISION_TEXT[hk.decision] ?? (hk.content === "edited" ? "edited by you" : "");
  const counts = [hk.added && `+${hk.added}`, hk.removed && `−${hk.removed}`].filter(Boolean).join(" ");
  const head = h("div", { class: "hunk-head" },
    h("span", { class: "hunk-where", text: hk.label, title: hk.header }),
    counts && h("span", { class: "muted hunk-counts", text: counts }),
    state && h("span", { class: `hunk-state ${hk.decision} ${hk.content}`, text: state }),
    h("span", { class: "spacer" }),
    pending && hk.decision !== "kept" && h("button", { class: "small keep", title: "Keep this hunk (Alt+Y in the diff editor)", "aria-label": `Keep ${hk.label}`, onclick: act("keep") }, icon("check"), " Keep"),
    pending && hk.decision !== "undone" && h("button", { class: "small undo", title: "Undo this hunk: the original lines stay (Alt+N in the diff editor)", "aria-label": `Undo ${hk.label}`, onclick: act("undo") }, icon("discard"), " Undo"));
  return h("div", { class: `hunk ${hk.decision} ${hk.content}`, "data-hunk": String(hk.id), "data-decision": hk.decision, "data-content": hk.content },
    head, diffLines(trimContext(hk.diff, 1), true));
}

export function renderProposal(p: ProposalItem): HTMLElement {
  const pending = p.status === "pending";
  const total = p.files.reduce((n, f) => n + f.hunks.length, 0);
  const chosen = p.files.reduce((n, f) => n + f.hunks.filter((x) => x.decision !== "undone").length, 0);
  const userEdits = p.files.some((f) => f.userEdits);
  const badge = h("span", { class: `badge ${p.status}`, text: p.review ? p.status : "auto-applied" + (p.status !== "applied" ? ` · ${p.status}` : "") });
  const card = h("div", { class: `card proposal-card ${p.status}`, "data-proposal": p.proposalId, "data-status": p.status },
    h("div", { class: "proposal-head" }, icon("diff"), h("strong", { text: ` ${p.files.length === 0 ? "Edit" : p.files.length === 1 ? "Proposed edit" : `Proposed edits (${p.files.length} files)`}` }),
      h("span", { class: "muted", text: ` · ${p.tool}` }), h("span", { class: "spacer" }), badge));
  for (const f of p.files) {
    const fileEl = h("div", { class: "proposal-file" },
      h("div", { class: "file-row" },
        h("button", { class: "link file-link", title: pending ? "Open the diff editor" : "Open the file", onclick: () => vscode.postMessage(pending ? { type: "proposal", proposalId: p.proposalId, action: "open", uri: f.uri } : { type: "openFile", uri: f.uri }) },
          icon(f.isNew ? "new-file" : "file"), ` ${f.path}`),
        f.isNew && h("span", { class: "muted", text: " (new file)" }),
        f.userEdits && h("span", { class: "hunk-state edited", text: "includes your edits", title: "You edited the proposed side in the diff editor: your version is applied" })));
    if (f.hunks.length) {
      for (const hk of f.hunks) fileEl.append(renderHunk(p, f, hk, pending));
    } else if (f.diff) {
      fileEl.append(diffLines(f.diff));
    }
    card.append(fileEl);
  }
  if (pending) {
    const reason = h("input", { type: "text", class: "reason", placeholder: "Reason (optional, told to the model)", value: local.reasons[p.proposalId] ?? "" }) as HTMLInputElement;
    reason.addEventListener("input", () => { local.reasons[p.proposalId] = reason.value; persist(); });
    reason.addEventListener("keydown", (e) => { if (e.key === "Enter") { e.preventDefault(); rejectBtn.click(); } });
    const acceptLabel = chosen === total ? "Accept" : chosen === 0 ? "Accept (no hunks)" : `Accept ${chosen} of ${total} hunks`;
    const acceptBtn = h("button", { class: "primary accept", disabled: chosen === 0 && !userEdits, title: "Apply what the proposed side shows: the hunks not undone, with your edits", onclick: () => {
      vscode.postMessage({ type: "proposal", proposalId: p.proposalId, action: "accept" });
    } }, icon("check"), ` ${acceptLabel}`);
    const rejectBtn = h("button", { class: "danger reject", onclick: () => {
      vscode.postMessage({ type: "proposal", proposalId: p.proposalId, action: "reject", feedback: reason.value });
    } }, icon("close"), " Reject");
    card.append(h("div", { class: "actions" }, acceptBtn, rejectBtn, reason),
      h("div", { class: "muted hint", text: "Keep or undo each hunk here or in the diff editor (Alt+Y, Alt+N; Alt+F5 for the next hunk). You can also edit the proposed side." }));
  } else if (p.message) {
    card.append(h("div", { class: "muted proposal-message", text: p.message }));
  }
  return card;
}

/** Focus goes to a new pending approval only once, and keys act only after a short pause. */
const focusedApprovals = new Set<string>();
const ARM_MS = 400;

/** A workspace's trust question (its MCP server, hooks or allow rules): Allow (remembered) or Deny. */
function renderTrust(a: ApprovalInfo): HTMLElement {
  const pending = !a.answer;
  const title = ` Trust ${a.subject ?? "this workspace"}?`;
  const card = h("div", {
    class: `card approval-card trust-card${a.answer ? " answered" : ""}`, "data-answer": a.answer ?? "", "data-approval": a.id,
    "data-kind": "Trust", tabindex: pending ? "0" : undefined, role: pending ? "group" : undefined, "aria-label": pending ? title.trim() : undefined,
  },
  h("div", { class: "proposal-head" }, icon("workspace-untrusted"), h("strong", { text: title }), h("span", { class: "spacer" }),
    a.answer && h("span", { class: `badge ${a.answer}`, text: a.answer === "deny" ? "refused" : a.answer === "cancelled" ? "not answered" : "trusted" })),
  pending && a.reason ? h("div", { class: "trust-question", text: a.reason }) : h("span"),
  pending ? h("pre", { class: "command", text: a.target }) : h("span"));
  if (pending) {
    const answer = (ans: "allow_always" | "deny") => () => vscode.postMessage({ type: "approval", id: a.id, answer: ans });
    card.append(h("div", { class: "actions" },
      h("button", { class: "primary trust-allow", onclick: answer("allow_always") }, icon("check"), " Allow"),
      h("button", { class: "danger trust-deny", onclick: answer("deny") }, icon("circle-slash"), " Deny")),
    h("div", { class: "muted hint", text: "Your answer is remembered for this workspace; you are asked again if what it runs changes." }));
  }
  return card;
}

export function renderApproval(a: ApprovalInfo, tool?: ToolItem): HTMLElement {
  if (a.approvalKind === "Trust") return renderTrust(a);
  const pending = !a.answer;
  const title = a.approvalKind === "Bash" ? " Run this command?" : a.approvalKind === "Tool" ? ` Call ${tool?.origin ? `${tool.origin}'s tool` : "this tool"}?` : ` Allow ${a.approvalKind}?`;
  const card = h("div", {
    class: `card approval-card${tool ? " tool-card" : ""}${a.answer ? " answered" : ""}`, "data-answer": a.answer ?? "",
    "data-approval": a.id, ...(tool ? { "data-tool": tool.name, "data-status": tool.status } : {}),
    tabindex: pending ? "0" : undefined, role: pending ? "group" : undefined, "aria-label": pending ? `${title.trim()} ${a.target}` : undefined,
  },
  h("div", { class: "proposal-head" }, icon(a.approvalKind === "Bash" ? "terminal" : "shield"),
    h("strong", { text: title }), tool && a.approvalKind !== "Bash" && h("span", { class: "muted", text: ` · ${tool.name}` }),
    h("span", { class: "spacer" }), a.answer && h("span", { class: `badge ${a.answer}`, text: ANSWER_TEXT[a.answer] ?? a.answer })),
  ...approvalFacts(a));
  if (pending) {
    const answer = (ans: "allow_once" | "allow_always" | "deny") => () => vscode.postMessage({ type: "approval", id: a.id, answer: ans });
    card.append(h("div", { class: "actions" },
      h("button", { class: "primary allow-once", onclick: answer("allow_once") }, icon("play"), " Allow once", h("kbd", { text: "Enter" })),
      h("button", { class: "allow-always", title: a.suggestedRule ? `Adds the rule ${a.suggestedRule}` : "Always allow", onclick: answer("allow_always") }, icon("pass-filled"), " Always", h("kbd", { text: "A" })),
      h("button", { class: "danger deny", onclick: answer("deny") }, icon("circle-slash"), " Deny", h("kbd", { text: "Esc" }))));
    if (a.suggestedRule) card.append(h("div", { class: "muted hint", text: `“Always” adds ${a.suggestedRule} to .codeloop/settings.local.json` }));
    let armedAt = Date.now() + ARM_MS;
    card.addEventListener("focus", () => { armedAt = Math.max(armedAt, Date.now() + ARM_MS); });
    card.addEventListener("keydown", (e) => {
      if (e.isComposing || e.target instanceof HTMLInputElement || e.target instanceof HTMLTextAreaElement) return;
      if (Date.now() < armedAt) { e.preventDefault(); return; } // a keystroke meant for what had the focus before
      const onButton = e.target instanceof HTMLButtonElement;
      if (e.key === "Escape") { e.preventDefault(); answer("deny")(); }
      else if (e.key === "Enter" && (e.ctrlKey || e.metaKey)) { e.preventDefault(); answer("allow_always")(); }
      else if (e.key === "Enter" && !onButton) { e.preventDefault(); answer("allow_once")(); }
      else if ((e.key === "a" || e.key === "A") && !e.ctrlKey && !e.metaKey && !e.altKey) { e.preventDefault(); answer("allow_always")(); }
    });
  }
  return card;
}

/** Moves the focus to the first pending approval that has not had it yet (not while the user types a message). */
export function focusPendingApproval(): void {
  const typing = hooks.isTyping();
  for (const el of Array.from(document.querySelectorAll<HTMLElement>(".approval-card:not(.answered)"))) {
    const id = el.dataset.approval ?? "";
    if (focusedApprovals.has(id)) continue;
    focusedApprovals.add(id);
    if (typing) return; // the pending bar shows it; the user's message is not hijacked
    el.focus({ preventScroll: true });
    el.scrollIntoView({ block: "nearest" });
    return;
  }
}

