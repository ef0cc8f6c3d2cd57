/**
 * @-mentions as text (pure, shared by the webview's completion and the host's resolution):
 * a mention is `@` at the start or after a space, then a path or a keyword, up to a space.
 */

export type MentionKind = "file" | "folder" | "problems" | "selection" | "terminal";

export interface MentionOption { kind: MentionKind; label: string; detail?: string }

export const MENTION_KEYWORDS: MentionOption[] = [
  { kind: "problems", label: "problems", detail: "the workspace's diagnostics" },
  { kind: "selection", label: "selection", detail: "the editor's selection" },
  { kind: "terminal", label: "terminal", detail: "the last command's output" },
];

const MENTION = /(^|\s)@([^\s@]+)/g;

/** The mentions in a message, in order, each once (without the `@`, trailing punctuation dropped). */
export function findMentions(text: string): string[] {
  const out: string[] = [];
  for (const m of text.matchAll(MENTION)) {
    const token = m[2].replace(/[.,;:!?)\]]+$/, "");
    if (token && !out.includes(token)) out.push(token);
  }
  return out;
}

/** The mention being typed at the caret: `@que|` → {start of the `@`, "que"}; else undefined. */
export function mentionAt(text: string, caret: number): { start: number; query: string } | undefined {
  const before = text.slice(0, caret);
  const m = before.match(/(^|\s)@([^\s@]*)$/);
  if (!m) return undefined;
  return { start: caret - m[2].length - 1, query: m[2] };
}

/** The text with the mention being typed replaced by the chosen one (and a space after it). */
export function applyMention(text: string, at: { start: number; query: string }, label: string): { text: string; caret: number } {
  const end = at.start + 1 + at.query.length;
  const insert = `@${label}${label.endsWith("/") ? "" : " "}`;
  const rest = text.slice(end).replace(/^ /, "");
  return { text: text.slice(0, at.start) + insert + rest, caret: at.start + insert.length };
}
