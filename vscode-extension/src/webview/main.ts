/* The chat panel's script (bundled by esbuild with markdown-it, DOMPurify and highlight.js). */
import MarkdownIt from "markdown-it";
import DOMPurify from "dompurify";
import hljs from "highlight.js/lib/core";
import python from "highlight.js/lib/languages/python";
import javascript from "highlight.js/lib/languages/javascript";
import typescript from "highlight.js/lib/languages/typescript";
import json from "highlight.js/lib/languages/json";
import bash from "highlight.js/lib/languages/bash";
import shell from "highlight.js/lib/languages/shell";
import diff from "highlight.js/lib/languages/diff";
import yaml from "highlight.js/lib/languages/yaml";
import ini from "highlight.js/lib/languages/ini";
import css from "highlight.js/lib/languages/css";
import xml from "highlight.js/lib/languages/xml";
import go from "highlight.js/lib/languages/go";
import rust from "highlight.js/lib/languages/rust";
import java from "highlight.js/lib/languages/java";
import cpp from "highlight.js/lib/languages/cpp";
import sql from "highlight.js/lib/languages/sql";
import markdown from "highlight.js/lib/languages/markdown";
import {
  type ApprovalInfo, type ChatState, type HunkItem, type Item, type ProposalFileItem, type ProposalItem, type ToolItem, emptyState, formatUsage, reduce,
} from "../shared/model";
import type { ImageAttachment, ProcessInfo, SessionInfo } from "../protocol";
import type { FromWebview, PanelEnv, ToWebview } from "../messages";
import { slashHelpLine } from "../shared/help";
import { plainReasons } from "../shared/reasons";
import { MENTION_KEYWORDS, type MentionOption, applyMention, mentionAt } from "../shared/mentions";

for (const [name, lang] of Object.entries({ python, javascript, typescript, json, bash, shell, diff, yaml, ini, css, xml, go, rust, java, cpp, sql, markdown })) {
  hljs.registerLanguage(name, lang);
}
hljs.registerAliases(["py"], { languageName: "python" });
hljs.registerAliases(["js", "jsx", "mjs"], { languageName: "javascript" });
hljs.registerAliases(["ts", "tsx"], { languageName: "typescript" });
hljs.registerAliases(["sh", "zsh", "console"], { languageName: "bash" });
hljs.registerAliases(["toml"], { languageName: "ini" });
hljs.registerAliases(["html"], { languageName: "xml" });
hljs.registerAliases(["c", "h", "hpp"], { languageName: "cpp" });

declare function acquireVsCodeApi(): { postMessage(m: FromWebview): void; getState(): unknown; setState(s: unknown): void };
const vscode = acquireVsCodeApi();

const md: MarkdownIt = new MarkdownIt({
  html: false, linkify: true, breaks: false,
  highlight: (code: string, lang: string): string => {
    const l = (lang || "").trim().toLowerCase();
    try {
      if (l && hljs.getLanguage(l)) return hljs.highlight(code, { language: l, ignoreIllegals: true }).value;
    } catch { /* fall through */ }
    return ""; // markdown-it escapes it
  },
});

function renderMarkdown(text: string): string {
  return DOMPurify.sanitize(md.render(text), { USE_PROFILES: { html: true } });
}

// ---- local, persisted UI state -----------------------------------------------------------
interface Local {
  draft: string;
  useFile: boolean;
  useSelection: boolean;
  expanded: string[];
  reasons: Record<string, string>;
}
const saved = (vscode.getState() ?? {}) as Partial<Local>;
const local: Local = {
  draft: saved.draft ?? "", useFile: saved.useFile ?? true, useSelection: saved.useSelection ?? true,
  expanded: saved.expanded ?? [], reasons: saved.reasons ?? {},
};
function persist(): void { vscode.setState(local); }

let state: ChatState = emptyState();
let env: PanelEnv = { model: "", mode: "ask", serverState: "starting", processes: [] };
let sessions: SessionInfo[] | undefined;
let historyOpen = false;

// ---- DOM helpers -------------------------------------------------------------------------
type Child = Node | string | null | undefined | false;
function h<K extends keyof HTMLElementTagNameMap>(tag: K, attrs: Record<string, unknown> = {}, ...children: Child[]): HTMLElementTagNameMap[K] {
  const el = document.createElement(tag);
  for (const [k, v] of Object.entries(attrs)) {
    if (v === undefined || v === null || v === false) continue;
    if (k.startsWith("on") && typeof v === "function") el.addEventListener(k.slice(2).toLowerCase(), v as EventListener);
    else if (k === "class") el.className = String(v);
    else if (k === "text") el.textContent = String(v);
    else if (k === "html") el.innerHTML = String(v);
    else if (v === true) el.setAttribute(k, "");
    else el.setAttribute(k, String(v));
  }
  for (const c of children) if (c !== null && c !== undefined && c !== false) el.append(c);
  return el;
}
const icon = (name: string, extra = "") => h("span", { class: `codicon codicon-${name} ${extra}`.trim(), "aria-hidden": "true" });

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
  if (mention.open && !e.isComposing) {
    if (e.key === "ArrowDown" || e.key === "ArrowUp") {
      e.preventDefault();
      const n = mention.options.length;
      mention.index = (mention.index + (e.key === "ArrowDown" ? 1 : n - 1)) % Math.max(n, 1);
      renderMentionMenu();
      return;
    }
    if ((e.key === "Enter" || e.key === "Tab") && !e.shiftKey && mention.options.length) { e.preventDefault(); chooseMention(mention.index); return; }
    if (e.key === "Escape") { e.preventDefault(); closeMentionMenu(); return; }
  }
  if (e.key === "Enter" && !e.shiftKey && !e.isComposing) { e.preventDefault(); submit(); }
  if (e.key === "Escape" && state.running) { e.preventDefault(); vscode.postMessage({ type: "cancel" }); }
});
input.addEventListener("blur", () => setTimeout(closeMentionMenu, 150));
input.addEventListener("click", updateMentionMenu);

// ---- images: paste or drop a screenshot --------------------------------------------------------
const IMAGE_TYPES = ["image/png", "image/jpeg", "image/gif", "image/webp"];
const MAX_IMAGE_BYTES = 15 * 1024 * 1024;
let pendingImages: ImageAttachment[] = [];

function readImage(file: Blob): Promise<ImageAttachment | string> {
  return new Promise((resolve) => {
    if (file.size > MAX_IMAGE_BYTES) { resolve(`The image is too large (${(file.size / 1048576).toFixed(1)} MB; at most 15 MB).`); return; }
    const reader = new FileReader();
    reader.onerror = () => resolve("Could not read the image.");
    reader.onload = async () => {
      const url = String(reader.result);
      const m = url.match(/^data:([^;]+);base64,(.*)$/);
      if (m && IMAGE_TYPES.includes(m[1])) { resolve({ type: "image", mimeType: m[1] as ImageAttachment["mimeType"], data: m[2] }); return; }
      // another format (BMP, SVG…): re-encode as PNG
      try {
        const bitmap = await createImageBitmap(file);
        const canvas = document.createElement("canvas");
        canvas.width = bitmap.width; canvas.height = bitmap.height;
        canvas.getContext("2d")!.drawImage(bitmap, 0, 0);
        resolve({ type: "image", mimeType: "image/png", data: canvas.toDataURL("image/png").split(",")[1] });
      } catch { resolve(`This kind of image (${file.type || "unknown"}) cannot be sent.`); }
    };
    reader.readAsDataURL(file);
  });
}

async function addImages(files: Blob[]): Promise<void> {
  for (const f of files) {
    const r = await readImage(f);
    if (typeof r === "string") showComposerNote(r);
    else pendingImages.push(r);
  }
  renderAttachments();
}

function renderAttachments(): void {
  attachmentsEl.classList.toggle("hidden", pendingImages.length === 0);
  attachmentsEl.replaceChildren(...pendingImages.map((img, i) => h("div", { class: "attachment" },
    h("img", { src: `data:${img.mimeType};base64,${img.data}`, alt: `attached image ${i + 1}` }),
    h("button", { class: "icon-btn attachment-remove", title: "Remove this image", "aria-label": `Remove image ${i + 1}`, onclick: () => { pendingImages.splice(i, 1); renderAttachments(); } }, icon("close")))));
}

let noteTimer = 0;
function showComposerNote(text: string): void {
  statusLine.textContent = text;
  clearTimeout(noteTimer);
  noteTimer = window.setTimeout(() => renderComposer(), 6000);
}

input.addEventListener("paste", (e) => {
  const files = Array.from(e.clipboardData?.items ?? []).filter((i) => i.kind === "file" && i.type.startsWith("image/")).map((i) => i.getAsFile()).filter((f): f is File => !!f);
  if (!files.length) return;
  e.preventDefault();
  void addImages(files);
});
composer.addEventListener("dragover", (e) => { if (e.dataTransfer?.types.includes("Files")) { e.preventDefault(); composer.classList.add("dropping"); } });
composer.addEventListener("dragleave", () => composer.classList.remove("dropping"));
composer.addEventListener("drop", (e) => {
  composer.classList.remove("dropping");
  const files = Array.from(e.dataTransfer?.files ?? []).filter((f) => f.type.startsWith("image/"));
  if (!files.length) return;
  e.preventDefault();
  void addImages(files);
});

// ---- @-mentions ----------------------------------------------------------------------------
const mention = { open: false, query: "", start: 0, options: [] as MentionOption[], index: 0 };
const MENTION_ICONS: Record<string, string> = { file: "file", folder: "folder", problems: "warning", selection: "selection", terminal: "terminal", image: "file-media" };

function updateMentionMenu(): void {
  const at = mentionAt(input.value, input.selectionStart ?? input.value.length);
  if (!at) { closeMentionMenu(); return; }
  mention.start = at.start;
  if (!mention.open || at.query !== mention.query) {
    mention.query = at.query;
    mention.open = true;
    mention.options = MENTION_KEYWORDS.filter((k) => k.label.startsWith(at.query.toLowerCase()));
    mention.index = 0;
    vscode.postMessage({ type: "mentionQuery", query: at.query });
  }
  renderMentionMenu();
}

function closeMentionMenu(): void {
  mention.open = false;
  mentionMenu.classList.add("hidden");
}

function chooseMention(i: number): void {
  const opt = mention.options[i];
  if (!opt) return;
  const r = applyMention(input.value, { start: mention.start, query: mention.query }, opt.label);
  input.value = r.text;
  input.setSelectionRange(r.caret, r.caret);
  local.draft = input.value; persist();
  vscode.postMessage({ type: "draft", text: input.value });
  closeMentionMenu();
  if (opt.kind === "folder") updateMentionMenu(); // go on into the folder
  input.focus();
}

function renderMentionMenu(): void {
  mentionMenu.classList.toggle("hidden", !mention.open || mention.options.length === 0);
  mentionMenu.replaceChildren(...mention.options.map((o, i) => h("div", {
    class: `mention-option${i === mention.index ? " selected" : ""}`, role: "option", "aria-selected": String(i === mention.index), "data-kind": o.kind,
    onmousedown: (e: Event) => { e.preventDefault(); chooseMention(i); },
  }, icon(MENTION_ICONS[o.kind] ?? "mention"), h("span", { class: "mention-label", text: o.label }), o.detail && h("span", { class: "muted mention-detail", text: o.detail }))));
}
sendBtn.addEventListener("click", submit);
stopBtn.addEventListener("click", () => vscode.postMessage({ type: "cancel" }));
modeSelect.addEventListener("change", () => vscode.postMessage({ type: "mode", mode: modeSelect.value }));

function autosize(): void {
  input.style.height = "auto";
  input.style.height = Math.min(input.scrollHeight, 240) + "px";
}

function submit(): void {
  const text = input.value.trim();
  if (!text && !pendingImages.length) return;
  closeMentionMenu();
  vscode.postMessage({ type: "send", text, useFile: local.useFile && !!env.activeFile, useSelection: local.useSelection && !!env.selection, images: pendingImages.length ? pendingImages : undefined });
  pendingImages = [];
  renderAttachments();
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
    // New chat and History are in the view's title bar (package.json, view/title), not here.
  );
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

function decorateCode(root: HTMLElement): void {
  for (const pre of Array.from(root.querySelectorAll("pre"))) {
    const code = pre.querySelector("code");
    if (code && !code.classList.contains("hljs")) code.classList.add("hljs");
    const btn = h("button", { class: "copy icon-btn", title: "Copy", "aria-label": "Copy code" }, icon("copy"));
    btn.addEventListener("click", () => {
      vscode.postMessage({ type: "copy", text: code?.textContent ?? pre.textContent ?? "" });
      btn.replaceChildren(icon("check"));
      setTimeout(() => btn.replaceChildren(icon("copy")), 1200);
    });
    pre.classList.add("code-block");
    pre.append(btn);
  }
}

function toggleExpanded(id: string): void {
  const i = local.expanded.indexOf(id);
  if (i >= 0) local.expanded.splice(i, 1); else local.expanded.push(id);
  persist();
  rerender([id]);
}

const STATUS_ICON: Record<string, [string, string]> = {
  done: ["check", "ok"], failed: ["error", "fail"], cancelled: ["debug-stop", "stopped"], denied: ["circle-slash", "stopped"],
};
const ANSWER_TEXT: Record<string, string> = { allow_once: "allowed once", allow_always: "always allowed", deny: "denied by you", cancelled: "not answered" };

function renderTool(t: ToolItem): HTMLElement {
  if (t.approval && !t.approval.answer) return renderApproval(t.approval, t);
  const open = local.expanded.includes(t.id);
  const reviewing = t.status === "running" && state.items.some((i) => i.kind === "proposal" && i.callId === t.callId && i.status === "pending");
  const [iconName, iconClass] = reviewing ? ["diff", "stopped"] : STATUS_ICON[t.status] ?? ["loading", "codicon-modifier-spin"];
  const decision = t.approval?.answer && ANSWER_TEXT[t.approval.answer];
  const sub = [t.resultSummary, reviewing ? "waiting for your review (below)" : t.status === "running" && (t.approval?.answer === "allow_once" || t.approval?.answer === "allow_always") ? "running…" : ""].filter(Boolean).join(" · ");
  const head = h("button", { class: "tool-head", "aria-expanded": String(open), onclick: () => toggleExpanded(t.id) },
    h("div", { class: "tool-row" },
      icon(iconName, iconClass), h("span", { class: "tool-name", text: t.name }),
      t.summary && h("code", { class: "tool-arg", text: t.summary, title: t.summary }),
      h("span", { class: "spacer" }), icon(open ? "chevron-down" : "chevron-right", "chev")),
    (sub || decision) && h("div", { class: "tool-sub" },
      sub && h("span", { class: `tool-result-summary ${t.status}`, text: sub, title: t.resultSummary ?? "" }),
      decision && h("span", { class: `tool-decision ${t.approval?.answer}`, text: decision })));
  const card = h("div", { class: `card tool-card ${t.status}`, "data-status": t.status, "data-tool": t.name, "data-answer": t.approval?.answer ?? "" }, head);
  if (open) {
    const details = h("div", { class: "tool-details" });
    if (t.approval) details.append(...approvalFacts(t.approval));
    if (t.args !== undefined) details.append(h("div", { class: "label", text: "arguments" }), h("pre", { class: "plain", text: typeof t.args === "string" ? t.args : JSON.stringify(t.args, null, 2) }));
    if (t.result !== undefined) details.append(h("div", { class: "label", text: "result" }), renderResult(t));
    card.append(details);
  }
  return card;
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
  try {
    if (lang && hljs.getLanguage(lang)) el.innerHTML = hljs.highlight(code, { language: lang, ignoreIllegals: true }).value;
    else el.textContent = code;
  } catch { el.textContent = code; }
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

function diffLines(text: string, skipHeaders = false): HTMLElement {
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

function renderProposal(p: ProposalItem): HTMLElement {
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

function renderApproval(a: ApprovalInfo, tool?: ToolItem): HTMLElement {
  const pending = !a.answer;
  const title = a.approvalKind === "Bash" ? " Run this command?" : ` Allow ${a.approvalKind}?`;
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
function focusPendingApproval(): void {
  const typing = document.activeElement === input && input.value.trim() !== "";
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

// ---- rendering ---------------------------------------------------------------------------------
let stickToBottom = true;
log.addEventListener("scroll", () => { stickToBottom = log.scrollHeight - log.scrollTop - log.clientHeight < 40; });

function fullRender(): void {
  renderHeader();
  log.replaceChildren(...(state.items.length ? state.items.map(renderItem) : [empty]));
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
  for (const id of ids) {
    if (id.startsWith("#")) continue;
    const it = state.items.find((i) => i.id === id);
    if (!it) continue;
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
      if (mention.open && m.query === mention.query) {
        mention.options = m.options;
        mention.index = Math.min(mention.index, Math.max(0, m.options.length - 1));
        renderMentionMenu();
      }
      break;
  }
});

fullRender();
autosize();
vscode.postMessage({ type: "ready" });
