/*
 * The chat panel's script (bundled by esbuild): the layout, the header and composer, the item
 * log and its render loop, and the messages from the host. Cards are in cards.ts, the
 * composer's images and @-mentions in composer.ts, markdown and highlighting in markdown.ts.
 */
import { type ChatState, type Item, type ProposalItem, atTop, emptyState, formatUsage, mcpStatusText, mcpSummary, reduce, titleWithoutContext, topItem } from "../shared/model";
import type { McpServerInfo, ProcessInfo, SessionInfo } from "../protocol";
import type { PanelEnv, ToWebview } from "../messages";
import { slashHelpLine } from "../shared/help";
import { walk } from "../shared/steps";
import { local, persist, vscode } from "./api";
import { h, icon } from "./dom";
import { decorateCode, renderMarkdown } from "./markdown";
import { focusPendingApproval, initCards, renderApproval, renderProposal, renderTool } from "./cards";
import { renderRewind, restoreButton } from "./rewind";
import { MENTION_ICONS, closeMentionMenu, hasImages, initComposer, mentionKey, mentionResults, takeImages, updateMentionMenu } from "./composer";
import { renderTodos } from "./todos";
import { renderHookLine } from "./hooks";
import { initSteps } from "./subagents";
import { closeSlashMenu, initSlash, slashCommandsChanged, slashKey, updateSlashMenu } from "./slash";


let state: ChatState = emptyState();
let env: PanelEnv = { model: "", mode: "ask", serverState: "starting", processes: [] };
let sessions: SessionInfo[] | undefined;
let historyOpen = false;

// ---- layout --------------------------------------------------------------------------------
const app = document.getElementById("app")!;
const header = h("div", { class: "header" });
const historyPanel = h("div", { class: "history hidden", role: "dialog", "aria-label": "Chat history" });
const rewindPanel = h("div", { class: "rewind-panel hidden", role: "dialog", "aria-label": "Rewind" });
const log = h("div", { class: "log", role: "log", "aria-live": "polite" });
const empty = h("div", { class: "empty" },
  h("div", { class: "empty-title" }, icon("sparkle"), " codeloop"),
  h("p", { text: "Ask for a change, a fix, or an explanation. Edits are shown as diffs for you to review; commands ask before they run." }),
  h("p", { class: "muted empty-help" }));
const emptyHelp = empty.querySelector<HTMLElement>(".empty-help")!;
const todosEl = h("div", { class: "todos hidden", role: "region", "aria-label": "Todos" });
const pendingBar = h("div", { class: "pending-bar hidden" });
const processesEl = h("div", { class: "processes hidden" });
const serversEl = h("div", { class: "mcp-servers hidden", role: "region", "aria-label": "MCP servers" });
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
const slashMenu = h("div", { class: "mention-menu slash-menu hidden", role: "listbox", "aria-label": "Slash commands" });
const composer = h("div", { class: "composer" }, chips, queuedEl, attachmentsEl, mentionMenu, slashMenu, input,
  h("div", { class: "composer-row" }, modeSelect, statusLine, h("span", { class: "spacer" }), stopBtn, sendBtn));
app.append(header, historyPanel, rewindPanel, log, todosEl, pendingBar, serversEl, processesEl, composer);

input.value = local.draft;
input.addEventListener("input", () => {
  local.draft = input.value; persist();
  vscode.postMessage({ type: "draft", text: input.value });
  autosize();
  updateMentionMenu();
  updateSlashMenu();
});
input.addEventListener("keydown", (e) => {
  if (slashKey(e) || mentionKey(e)) return;
  if (e.key === "Enter" && !e.shiftKey && !e.isComposing) { e.preventDefault(); submit(); }
  if (e.key === "Escape" && state.running) { e.preventDefault(); vscode.postMessage({ type: "cancel" }); }
});
let noteTimer = 0;
initComposer({
  input, composer, attachmentsEl, mentionMenu,
  note: (text) => { statusLine.textContent = text; clearTimeout(noteTimer); noteTimer = window.setTimeout(() => renderComposer(), 6000); },
});
initCards({ state: () => state, toggle: toggleExpanded, isTyping: () => document.activeElement === input && input.value.trim() !== "" });
initSteps((it) => renderItem(it));
initSlash({
  input, menu: slashMenu, commands: () => env.commands, refresh: () => vscode.postMessage({ type: "commandsQuery" }),
  changed: () => { local.draft = input.value; persist(); vscode.postMessage({ type: "draft", text: input.value }); autosize(); },
  submit: () => submit(),
});

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
  closeSlashMenu();
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
      }, h("span", { class: "session-title", text: titleWithoutContext(s.title ?? "") || s.id }),
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
  for (const { item: i, top } of walk(state.items)) { // a sub-agent's approvals too (on its parent's card)
    if (i.kind === "approval" && !i.answer) appr.push({ id: top.id, target: i.target });
    if (i.kind === "tool" && i.approval && !i.approval.answer) appr.push({ id: top.id, target: i.approval.target });
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

const MCP_ICON: Record<string, string> = {
  ready: "pass-filled", starting: "loading", failed: "error", disabled: "circle-slash", "needs-consent": "shield",
};

/** The workspace's MCP servers: state, tool count, last error; Restart; Allow/Deny for a project's server. */
function renderServers(): void {
  const servers: McpServerInfo[] = env.mcpServers ?? [];
  serversEl.classList.toggle("hidden", servers.length === 0);
  if (!servers.length) { serversEl.replaceChildren(); return; }
  const post = (action: "restart" | "allow" | "deny", name: string) => () => vscode.postMessage({ type: "mcp", action, name });
  const head = h("button", { class: "mcp-head link", "aria-expanded": String(local.mcpOpen),
    onclick: () => { local.mcpOpen = !local.mcpOpen; persist(); renderServers(); } },
  icon(local.mcpOpen ? "chevron-down" : "chevron-right"), icon("plug"), ` ${mcpSummary(servers)}`);
  const rows = local.mcpOpen ? servers.map((sv) => h("div", { class: `mcp-server ${sv.status}`, "data-server": sv.name, "data-status": sv.status },
    icon(MCP_ICON[sv.status] ?? "circle", sv.status === "starting" ? "codicon-modifier-spin" : ""),
    h("span", { class: "mcp-name", text: sv.name, title: `${sv.description ?? ""}\n${sv.origin ?? ""}`.trim() }),
    h("span", { class: "muted mcp-status", text: mcpStatusText(sv), title: sv.lastError ?? "" }),
    h("span", { class: "spacer" }),
    sv.status === "needs-consent" && h("button", { class: "small primary mcp-allow", title: `Let ${sv.name} (${sv.origin ?? "the project"}) run in this workspace`, onclick: post("allow", sv.name) }, icon("check"), " Allow"),
    sv.status === "needs-consent" && h("button", { class: "small danger mcp-deny", onclick: post("deny", sv.name) }, icon("close"), " Deny"),
    (sv.status === "ready" || sv.status === "failed") && h("button", { class: "small mcp-restart", title: `Restart ${sv.name}`, "aria-label": `Restart ${sv.name}`, onclick: post("restart", sv.name) }, icon("debug-restart"), " Restart"),
  )) : [];
  serversEl.replaceChildren(head, ...rows);
}

function scrollToItem(id: string): void {
  document.getElementById(`item-${id}`)?.scrollIntoView({ behavior: "smooth", block: "center" });
}

// ---- items -----------------------------------------------------------------------------------
function renderItem(it: Item): HTMLElement {
  const el = h("div", { id: `item-${it.id}`, class: `item ${it.kind}` });
  switch (it.kind) {
    case "user":
      el.append(h("div", { class: "user-row" }, h("div", { class: "bubble", text: it.text }), restoreButton(it, !!state.running)));
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
    case "hook": el.append(renderHookLine(it)); break;
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

function renderExtras(): void {
  emptyHelp.textContent = slashHelpLine(env.commands);
  renderTodos(todosEl, state.todos, !!state.running);
}

function fullRender(): void {
  renderExtras();
  renderHeader();
  log.replaceChildren(...(state.items.length ? state.items.filter((i) => atTop(state, i)).map(renderItem) : [empty]));
  renderComposer(); renderPending(); renderServers(); renderProcesses(); renderHistory(); renderRewind(rewindPanel, state.rewind);
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
  if (ids.includes("#rewind")) renderRewind(rewindPanel, state.rewind);
  if (ids.includes("#status")) for (const b of Array.from(document.querySelectorAll<HTMLButtonElement>(".rewind-btn"))) b.disabled = !!state.running;
  const done = new Set<string>();
  for (const id of ids) {
    if (id.startsWith("#")) continue;
    // a nested step (a sub-agent's card) is redrawn with the card it is shown in
    const found = state.items.find((i) => i.id === id) ?? [...walk(state.items)].find((x) => x.item.id === id)?.top;
    if (!found) continue;
    const it = topItem(state, found); // a nested call (code mode) is drawn by its parent's card
    if (done.has(it.id)) continue;
    done.add(it.id);
    const el = renderItem(it);
    const old = document.getElementById(`item-${it.id}`);
    if (old) old.replaceWith(el); else log.append(el);
  }
  renderHeader(); renderComposer(); renderPending(); renderExtras();
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
      renderHeader(); renderComposer(); renderServers(); renderProcesses(); renderExtras(); slashCommandsChanged();
      break;
    case "sessions":
      sessions = m.sessions;
      historyOpen = true;
      renderHistory();
      break;
    case "focus":
      input.focus();
      break;
    case "draft":
      input.value = m.text; local.draft = m.text; persist(); autosize(); input.focus();
      break;
    case "mentions":
      mentionResults(m.query, m.options);
      break;
  }
});

fullRender();
autosize();
vscode.postMessage({ type: "ready" });
