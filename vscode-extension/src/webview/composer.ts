/** The composer's extras: screenshots pasted or dropped in, and @-mention completion. */
import type { ImageAttachment } from "../protocol";
import { MENTION_KEYWORDS, type MentionOption, applyMention, mentionAt } from "../shared/mentions";
import { local, persist, vscode } from "./api";
import { h, icon } from "./dom";

export interface ComposerParts {
  input: HTMLTextAreaElement;
  composer: HTMLElement;
  attachmentsEl: HTMLElement;
  mentionMenu: HTMLElement;
  /** Shows a short note where the status line is (an image that cannot be sent). */
  note(text: string): void;
}
let parts: ComposerParts;

// ---- images: paste or drop a screenshot --------------------------------------------------------
const IMAGE_TYPES = ["image/png", "image/jpeg", "image/gif", "image/webp"];
const MAX_IMAGE_BYTES = 15 * 1024 * 1024;
let pendingImages: ImageAttachment[] = [];

/** The images to send with the message, taken out of the composer. */
export function takeImages(): ImageAttachment[] {
  const out = pendingImages;
  pendingImages = [];
  renderAttachments();
  return out;
}

export const hasImages = () => pendingImages.length > 0;

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
    if (typeof r === "string") parts.note(r);
    else pendingImages.push(r);
  }
  renderAttachments();
}

function renderAttachments(): void {
  const { attachmentsEl } = parts;
  attachmentsEl.classList.toggle("hidden", pendingImages.length === 0);
  attachmentsEl.replaceChildren(...pendingImages.map((img, i) => h("div", { class: "attachment" },
    h("img", { src: `data:${img.mimeType};base64,${img.data}`, alt: `attached image ${i + 1}` }),
    h("button", { class: "icon-btn attachment-remove", title: "Remove this image", "aria-label": `Remove image ${i + 1}`, onclick: () => { pendingImages.splice(i, 1); renderAttachments(); } }, icon("close")))));
}

/** Wires the composer: paste and drop of images, the @-mention menu. */
export function initComposer(p: ComposerParts): void {
  parts = p;
  const { input, composer } = p;
  input.addEventListener("paste", (e: ClipboardEvent) => {
    const files = Array.from(e.clipboardData?.items ?? []).filter((i) => i.kind === "file" && i.type.startsWith("image/")).map((i) => i.getAsFile()).filter((f): f is File => !!f);
    if (!files.length) return;
    e.preventDefault();
    void addImages(files);
  });
  composer.addEventListener("dragover", (e: DragEvent) => { if (e.dataTransfer?.types.includes("Files")) { e.preventDefault(); composer.classList.add("dropping"); } });
  composer.addEventListener("dragleave", () => composer.classList.remove("dropping"));
  composer.addEventListener("drop", (e: DragEvent) => {
    composer.classList.remove("dropping");
    const files = Array.from(e.dataTransfer?.files ?? []).filter((f) => f.type.startsWith("image/"));
    if (!files.length) return;
    e.preventDefault();
    void addImages(files);
  });
  input.addEventListener("blur", () => setTimeout(closeMentionMenu, 150));
  input.addEventListener("click", updateMentionMenu);
}

// ---- @-mentions ----------------------------------------------------------------------------
const mention = { open: false, query: "", start: 0, options: [] as MentionOption[], index: 0 };
export const MENTION_ICONS: Record<string, string> = { file: "file", folder: "folder", problems: "warning", selection: "selection", terminal: "terminal", image: "file-media" };

export function updateMentionMenu(): void {
  const { input } = parts;
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

export function closeMentionMenu(): void {
  mention.open = false;
  parts.mentionMenu.classList.add("hidden");
}

function chooseMention(i: number): void {
  const { input } = parts;
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
  const { mentionMenu } = parts;
  mentionMenu.classList.toggle("hidden", !mention.open || mention.options.length === 0);
  mentionMenu.replaceChildren(...mention.options.map((o, i) => h("div", {
    class: `mention-option${i === mention.index ? " selected" : ""}`, role: "option", "aria-selected": String(i === mention.index), "data-kind": o.kind,
    onmousedown: (e: Event) => { e.preventDefault(); chooseMention(i); },
  }, icon(MENTION_ICONS[o.kind] ?? "mention"), h("span", { class: "mention-label", text: o.label }), o.detail && h("span", { class: "muted mention-detail", text: o.detail }))));
}

/** Keys in the input while the mention menu is open; true when the key was for the menu. */
export function mentionKey(e: KeyboardEvent): boolean {
  if (!mention.open || e.isComposing) return false;
  if (e.key === "ArrowDown" || e.key === "ArrowUp") {
    e.preventDefault();
    const n = mention.options.length;
    mention.index = (mention.index + (e.key === "ArrowDown" ? 1 : n - 1)) % Math.max(n, 1);
    renderMentionMenu();
    return true;
  }
  if ((e.key === "Enter" || e.key === "Tab") && !e.shiftKey && mention.options.length) { e.preventDefault(); chooseMention(mention.index); return true; }
  if (e.key === "Escape") { e.preventDefault(); closeMentionMenu(); return true; }
  return false;
}

/** The host's completions for the mention being typed. */
export function mentionResults(query: string, options: MentionOption[]): void {
  if (!mention.open || query !== mention.query) return;
  mention.options = options;
  mention.index = Math.min(mention.index, Math.max(0, options.length - 1));
  renderMentionMenu();
}
