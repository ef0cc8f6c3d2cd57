/*
 * The chat panel's script (bundled by esbuild): the layout, the header and composer, the item
 * log and its render loop, and the messages from the host. Cards are in cards.ts, the
 * composer's images and @-mentions in composer.ts, markdown and highlighting in markdown.ts.
 */
import { type ChatState, type Item, type ProposalItem, atTop, emptyState, formatUsage, reduce, topItem } from "../shared/model";
import type { ProcessInfo, SessionInfo } from "../protocol";
import type { PanelEnv, ToWebview } from "../messages";
import { slashHelpLine } from "../shared/help";
import { local, persist, vscode } from "./api";
import { h, icon } from "./dom";
import { decorateCode, renderMarkdown } from "./markdown";
import { focusPendingApproval, initCards, renderApproval, renderProposal, renderTool } from "./cards";
import { MENTION_ICONS, closeMentionMenu, hasImages, initComposer, mentionKey, mentionResults, takeImages, updateMentionMenu } from "./composer";


let state: ChatState = emptyState();
let env: PanelEnv = { model: "", mode: "ask", serverState: "starting", processes: [] };
let sessions: SessionInfo[] | undefined;
let historyOpen = false;

// ---- layout --------------------------------------------------------------------------------
const app = document.getElementById("app")!;
const header = h("div", { class: "header" });
const historyPanel = h("div", { class: "history hidden", role: "dialog", "aria-label": "Chat history" });
const log = h("div", { class: "log", role: "log", "aria-live": "polite" });
const empty = h("div", { class: "empty" },
  h("div", { class: "empty-title" }, icon("sparkle"), " codeloop"),
  h("p", { text: "Ask for a change, a fix, or an explanation. Edits are shown as diffs for you to review; commands ask before they run." }),
  h("p", { class: "muted", text: slashHelpLine() }));
const pendingBar = h("div", { class: "pending-bar hidden" });
const processesEl = h("div", { class: "processes hidden" });
const chips = h("div", { class: "chips" });
const queuedEl = h("div", { class: "queued" });
const input = h("textarea", {
  class: "input", rows: "3", placeholder: "Ask codeloop… (@ to mention a file, problems, the terminal; paste a screenshot; Enter to send)", "aria-label": "Message",
}) as HTMLTextAreaElement;
const modeSelect = h("select", { class: "mode", title: "Permission mode (sends /mode)", "aria-label": "Mode" }) as HTMLSelectElement;
for (const m of ["ask", "acceptEdits", "plan", "bypass"]) modeSelect.append(h("option", { value: m, text: m }));
const sendBtn = h("button", { class: "send primary", title: "Send (Enter)" }, icon("send"), " Send") as HTMLButtonElement;
const stopBtn = h("button", { class: "stop danger hidden", title: "Stop the running turn" }, icon("debug-stop"), " Stop") as HTMLButtonElement;
const statusLine = h("span", { class: "status-line muted" });
const attachmentsEl = h("div", { class: "attachments hidden" });
const mentionMenu = h("div", { class: "mention-menu hidden", role: "listbox", "aria-label": "Mentions" });
const composer = h("div", { class: "composer" }, chips, queuedEl, attachmentsEl, mentionMenu, input,
  h("div", { class: "composer-row" }, modeSelect, statusLine, h("span", { class: "spacer" }), stopBtn, sendBtn));
app.append(header, historyPanel, log, pendingBar, processesEl, composer);

input.value = local.draft;
input.addEventListener("input", () => {
  local.draft = input.value; persist();
  vscode.postMessage({ type: "draft", text: input.value });
  autosize();
  updateMentionMenu();
});
input.addEventListener("keydown", (e) => {
  if (mentionKey(e)) return;
  if (e.key === "Enter" && !e.shiftKey && !e.isComposing) { e.preventDefault(); submit(); }
  if (e.key === "Escape" && state.running) { e.preventDefault(); vscode.postMessage({ type: "cancel" }); }
});
let noteTimer = 0;
initComposer({
  input, composer, attachmentsEl, mentionMenu,
  note: (text) => { statusLine.textContent = text; clearTimeout(noteTimer); noteTimer = window.setTimeout(() => renderComposer(), 6000); },
});
initCards({ state: () => state, toggle: toggleExpanded, isTyping: () => document.activeElement === input && input.value.trim() !== "" });

sendBtn.addEventListener("click", submit);
stopBtn.addEventListener("click", () => vscode.postMessage({ type: "cancel" }));
modeSelect.addEventListener("change", () => vscode.postMessage({ type: "mode", mode: modeSelect.value }));

function autosize(): void {
  input.style.height = "auto";
  input.style.height = Math.min(input.scrollHeight, 240) + "px";
}

function submit(): void {
  const text = input.value.trim();
  if (!text && !hasImages()) return;
  closeMentionMenu();
  const images = takeImages();
  vscode.postMessage({ type: "send", text, useFile: local.useFile && !!env.activeFile, useSelection: local.useSelection && !!env.selection, images: images.length ? images : undefined });
  input.value = "";
  local.draft = ""; persist();
  vscode.postMessage({ type: "draft", text: "" });
  autosize();
  stickToBottom = true;
}

// ---- header, chips, status -----------------------------------------------------------------
function renderHeader(): void {
  header.replaceChildren(
    h("span", { class: "title", title: state.sessionId ? `session ${state.sessionId}` : "new chat" },
      state.title || (state.sessionId ? `Session ${state.sessionId}` : "New chat")),
    h("span", { class: "spacer" }),
    h("span", { class: `server-dot ${env.serverState}`, title: `server: ${env.serverState}` }),
    h("span", { class: "model muted", title: "model" }, env.model),
    sandboxBadge(),
    // New chat and History are in the view's title bar (package.json, view/title), not here.
  );
}

/** Which sandbox runs the commands: a shield, and the whole line as its tooltip. */
function sandboxBadge(): HTMLElement | string {
  const sb = env.sandbox;
  if (!sb) return "";
  const on = !!sb.backend && sb.backend !== "none";
  const label = on ? (sb.backend === "bubblewrap" ? "bubblewrap" : "Landlock") : sb.mode === "off" ? "no sandbox" : "unsandboxed";
  return h("span", { class: `sandbox-badge ${on ? "on" : "off"}`, title: sb.description, "data-backend": sb.backend ?? "" },
    icon(on ? "shield" : "warning"), " ", label);
}

function renderHistory(): void {
  historyPanel.classList.toggle("hidden", !historyOpen);
  if (!historyOpen) return;
  const list = sessions === undefined
    ? [h("div", { class: "muted", text: "Loading…" })]
    : sessions.length === 0 ? [h("div", { class: "muted", text: "No earlier chats in this workspace." })]
      : sessions.map((s) => h("button", {
        class: `session${s.id === state.sessionId ? " current" : ""}`, title: s.id,
        onclick: () => { historyOpen = false; renderHistory(); vscode.postMessage({ type: "openSession", id: s.id }); },
      }, h("span", { class: "session-title", text: s.title || s.id }),
      h("span", { class: "muted session-meta", text: `${relTime(s.updated)} · ${s.messageCount} messages${s.model ? " · " + s.model : ""}` })));
  historyPanel.replaceChildren(
    h("div", { class: "history-head" }, h("strong", { text: "Chat history" }), h("span", { class: "spacer" }),
      h("button", { class: "icon-btn", title: "Close", onclick: () => { historyOpen = false; renderHistory(); } }, icon("close"))),
    ...list);
}

function relTime(iso: string): string {
  const t = Date.parse(iso);
  if (Number.isNaN(t)) return iso ?? "";
  const s = (Date.now() - t) / 1000;
  if (s < 60) return "just now";
  if (s < 3600) return `${Math.floor(s / 60)} min ago`;
  if (s < 86400) return `${Math.floor(s / 3600)} h ago`;
  return new Date(t).toLocaleDateString();
}

function chip(label: string, iconName: string, on: boolean, toggle: () => void, title: string): HTMLElement {
  return h("button", { class: `chip${on ? " on" : ""}`, title, "aria-pressed": String(on), onclick: toggle }, icon(iconName), " ", label,
    on ? icon("close", "chip-x") : icon("add", "chip-x"));
}

function renderComposer(): void {
  const c: HTMLElement[] = [];
  if (env.activeFile) c.push(chip(env.activeFile.label, "file", local.useFile, () => { local.useFile = !local.useFile; persist(); renderComposer(); }, local.useFile ? "The active file is sent as context (click to leave it out)" : "Click to send the active file as context"));
  if (env.selection) c.push(chip(env.selection.label, "selection", local.useSelection, () => { local.useSelection = !local.useSelection; persist(); renderComposer(); }, local.useSelection ? "The selection is sent as context (click to leave it out)" : "Click to send the selection as context"));
  chips.replaceChildren(...c);
  queuedEl.replaceChildren(...state.queued.map((q, i) => h("div", { class: "queued-item", title: "Sent when the running turn ends" },
    icon("clock"), h("span", { class: "queued-text", text: q }),
    h("button", { class: "icon-btn", title: "Remove from the queue", onclick: () => vscode.postMessage({ type: "unqueue", index: i }) }, icon("close")))));
  const running = !!state.running;
  stopBtn.classList.toggle("hidden", !running);
  sendBtn.title = running ? "Queue: sent when the running turn ends" : "Send (Enter)";
  sendBtn.replaceChildren(icon(running ? "add" : "send"), running ? " Queue" : " Send");
  modeSelect.value = env.mode;
  statusLine.title = running ? "working…" : `server ${env.serverState}`;
  statusLine.replaceChildren(...(running ? [icon("loading", "codicon-modifier-spin")] : env.serverState === "running" ? [] : [env.serverState === "starting" ? "starting server…" : `server ${env.serverState}`]));
}

function renderPending(): void {
  const pend = state.items.filter((i): i is ProposalItem => i.kind === "proposal" && i.status === "pending");
  const appr: { id: string; target: string }[] = [];
  for (const i of state.items) {
    if (i.kind === "approval" && !i.answer) appr.push({ id: i.id, target: i.target });
    if (i.kind === "tool" && i.approval && !i.approval.answer) appr.push({ id: i.id, target: i.approval.target });
  }
  pendingBar.classList.toggle("hidden", pend.length + appr.length === 0);
  const parts: HTMLElement[] = [];
  for (const p of pend) parts.push(h("button", { class: "link", onclick: () => scrollToItem(p.id) }, icon("diff"), ` ${p.files.map((f) => f.path).join(", ")}`));
  for (const a of appr) parts.push(h("button", { class: "link", onclick: () => { scrollToItem(a.id); document.querySelector<HTMLElement>(`#item-${a.id} .approval-card`)?.focus(); } }, icon("terminal"), ` ${a.target.slice(0, 40)}`));
  pendingBar.replaceChildren(h("span", { class: "muted", text: `Waiting for you (${pend.length + appr.length}):` }), ...parts);
}

function renderProcesses(): void {
  const procs: ProcessInfo[] = env.processes ?? [];
  const running = procs.filter((p) => p.running);
  processesEl.classList.toggle("hidden", running.length === 0);
  processesEl.replaceChildren(
    h("div", { class: "muted" }, icon("server-process"), ` Background processes (${running.length})`),
    ...running.map((p) => h("div", { class: "process" },
      h("code", { class: "process-cmd", title: p.command, text: p.command }),
      h("span", { class: "muted", text: p.id }),
      h("button", { class: "small danger", title: "Kill this process", onclick: () => vscode.postMessage({ type: "kill", id: p.id }) }, icon("trash"), " Kill"))));
}

function scrollToItem(id: string): void {
  document.getElementById(`item-${id}`)?.scrollIntoView({ behavior: "smooth", block: "center" });
}

// ---- items -----------------------------------------------------------------------------------
function renderItem(it: Item): HTMLElement {
  const el = h("div", { id: `item-${it.id}`, class: `item ${it.kind}` });
  switch (it.kind) {
    case "user":
      el.append(h("div", { class: "bubble", text: it.text }));
      if (it.images?.length) el.append(h("div", { class: "user-images" }, ...it.images.map((img, i) => h("img", { class: "user-image", src: `data:${img.mimeType};base64,${img.data}`, alt: `image ${i + 1}` }))));
      if (it.chips?.length) el.append(h("div", { class: "user-chips" }, ...it.chips.map((c) => h("span", { class: "chip small-chip", "data-kind": c.kind, title: c.label }, icon(MENTION_ICONS[c.kind] ?? "file"), " ", c.label))));
      break;
    case "assistant": {
      const body = h("div", { class: `markdown${it.streaming ? " streaming" : ""}`, html: renderMarkdown(it.text) });
      decorateCode(body);
      el.append(body);
      break;
    }
    case "tool": el.append(renderTool(it)); break;
    case "retry":
      el.append(h("div", { class: "line warning" }, icon("refresh"), ` Retrying (${it.attempt}/${it.maxAttempts}) in ${it.delay.toFixed(1)}s: ${it.reason}`));
      break;
    case "notice": {
      const body = h("div", { class: `notice ${it.level}` }, icon(it.level === "error" ? "error" : it.level === "warning" ? "warning" : "info"),
        h("div", { class: "markdown", html: renderMarkdown(it.message) }));
      el.append(body);
      break;
    }
    case "proposal": el.append(renderProposal(it)); break;
    case "approval": el.append(renderApproval(it)); break;
    case "turnEnd": {
      const usage = formatUsage(it);
      const label = it.status === "done" ? "" : it.status === "cancelled" ? "Stopped" : it.status === "max_turns" ? "Stopped: turn limit reached" : "Failed";
      el.append(h("div", { class: `turn-end ${it.status}` },
        label && h("span", { class: it.status === "error" ? "error-text" : "" }, label + (it.message ? `: ${it.message}` : "")),
        h("span", { class: "spacer" }),
        usage && h("span", { class: "muted usage", title: "tokens and cost of this turn" }, usage)));
      break;
    }
  }
  return el;
}

function toggleExpanded(id: string): void {
  const i = local.expanded.indexOf(id);
  if (i >= 0) local.expanded.splice(i, 1); else local.expanded.push(id);
  persist();
  rerender([id]);
}

// ---- rendering ---------------------------------------------------------------------------------
let stickToBottom = true;
log.addEventListener("scroll", () => { stickToBottom = log.scrollHeight - log.scrollTop - log.clientHeight < 40; });

function fullRender(): void {
  renderHeader();
  log.replaceChildren(...(state.items.length ? state.items.filter((i) => atTop(state, i)).map(renderItem) : [empty]));
  renderComposer(); renderPending(); renderProcesses(); renderHistory();
  scrollDown();
  focusPendingApproval();
}

const dirty = new Set<string>();
let frame = 0;
function rerender(ids: string[]): void {
  for (const id of ids) dirty.add(id);
  if (!frame) frame = requestAnimationFrame(flush);
}
function flush(): void {
  frame = 0;
  const ids = [...dirty];
  dirty.clear();
  if (ids.includes("*")) { fullRender(); return; }
  if (state.items.length && log.firstChild === empty) empty.remove();
  const done = new Set<string>();
  for (const id of ids) {
    if (id.startsWith("#")) continue;
    const found = state.items.find((i) => i.id === id);
    if (!found) continue;
    const it = topItem(state, found); // a nested call (code mode) is drawn by its parent's card
    if (done.has(it.id)) continue;
    done.add(it.id);
    const el = renderItem(it);
    const old = document.getElementById(`item-${id}`);
    if (old) old.replaceWith(el); else log.append(el);
  }
  renderHeader(); renderComposer(); renderPending();
  scrollDown();
  focusPendingApproval();
}
function scrollDown(): void { if (stickToBottom) log.scrollTop = log.scrollHeight; }

window.addEventListener("message", (e: MessageEvent) => {
  const m = e.data as ToWebview;
  switch (m.type) {
    case "state":
      state = m.state;
      env = m.env;
      if (m.sessions) sessions = m.sessions;
      if (!input.value && m.draft) { input.value = m.draft; local.draft = m.draft; autosize(); }
      fullRender();
      break;
    case "apply": {
      const act = m.action;
      if (act.a === "reset") { local.reasons = {}; local.expanded = []; persist(); }
      rerender(reduce(state, act));
      break;
    }
    case "env":
      env = m.env;
      renderHeader(); renderComposer(); renderProcesses();
      break;
    case "sessions":
      sessions = m.sessions;
      historyOpen = true;
      renderHistory();
      break;
    case "focus":
      input.focus();
      break;
    case "mentions":
      mentionResults(m.query, m.options);
      break;
  }
});

fullRender();
autosize();
vscode.postMessage({ type: "ready" });
