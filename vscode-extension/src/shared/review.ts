/**
 * Per-hunk review of a proposal, as pure text logic (no vscode, no DOM; unit-tested).
 *
 * Three texts per file: the ORIGINAL (what the file holds), the PROPOSED text (the model's),
 * and the CURRENT text of the editable proposed side of the diff editor, which the user may
 * have edited. The current text is the one state: every hunk's state is read from it.
 *
 * - Undo on a hunk puts the original lines back into the current text (so the diff editor
 *   shows it undone, exactly as VS Code's own "Revert Block" does); Keep puts the hunk's text
 *   back (the proposed lines, or what was there when it was undone).
 * - A hunk whose lines in the current text are the original lines is undone, however that
 *   happened. If the user types into an undone hunk, it is their edit: the hunk is pending
 *   again, with their text.
 * - What is applied is the current text. An undone hunk is always the original text there,
 *   even if the user had edited it before undoing it (the ticks win for unticked hunks); the
 *   user's edits elsewhere stay.
 */

export type HunkDecision = "pending" | "kept" | "undone";
/** What the hunk's lines in the current text are. */
export type HunkContent = "proposed" | "original" | "edited";

/** A hunk as the server sends it (0-based line indices, line counts). */
export interface HunkSpec { id: number; oldStart: number; oldLines: number; newStart: number; newLines: number }

/** Lines [start, end) of the current text. */
export interface Region { start: number; end: number }

export interface HunkState { id: number; decision: HunkDecision; content: HunkContent; region: Region }

/** Lines with their endings (`\n`, `\r\n` or a lone `\r`), as LSP counts them: `lines.join("") === text`. */
export function splitLines(text: string): string[] {
  const out: string[] = [];
  let start = 0;
  for (let i = 0; i < text.length; i++) {
    const ch = text[i];
    if (ch === "\n" || ch === "\r") {
      if (ch === "\r" && text[i + 1] === "\n") i++;
      out.push(text.slice(start, i + 1));
      start = i + 1;
    }
  }
  if (start < text.length) out.push(text.slice(start));
  return out;
}

/** A changed block: a[aStart, aEnd) became b[bStart, bEnd). */
export interface Block { aStart: number; aEnd: number; bStart: number; bEnd: number }

const MAX_EDIT_DISTANCE = 1000;

/**
 * The changed blocks of a minimal line diff of `a` and `b` (Myers), in order. The common
 * prefix and suffix are trimmed first; past MAX_EDIT_DISTANCE the middle is one block.
 */
export function changedBlocks(a: string[], b: string[]): Block[] {
  let lo = 0;
  while (lo < a.length && lo < b.length && a[lo] === b[lo]) lo++;
  let ahi = a.length;
  let bhi = b.length;
  while (ahi > lo && bhi > lo && a[ahi - 1] === b[bhi - 1]) { ahi--; bhi--; }
  if (lo === ahi && lo === bhi) return [];
  if (lo === ahi || lo === bhi) return [{ aStart: lo, aEnd: ahi, bStart: lo, bEnd: bhi }];
  const n = ahi - lo;
  const m = bhi - lo;
  const max = Math.min(n + m, MAX_EDIT_DISTANCE);
  const off = max + 1;
  let v = new Int32Array(2 * max + 3);
  const trace: Int32Array[] = [];
  let found = -1;
  outer: for (let d = 0; d <= max; d++) {
    trace.push(v.slice());
    const nv = v.slice();
    for (let k = -d; k <= d; k += 2) {
      let x = k === -d || (k !== d && v[off + k - 1] < v[off + k + 1]) ? v[off + k + 1] : v[off + k - 1] + 1;
      let y = x - k;
      while (x < n && y < m && a[lo + x] === b[lo + y]) { x++; y++; }
      nv[off + k] = x;
      if (x >= n && y >= m) { v = nv; found = d; break outer; }
    }
    v = nv;
  }
  if (found < 0) return [{ aStart: lo, aEnd: ahi, bStart: lo, bEnd: bhi }];
  // Backtrack from (n, m): each step's snake (diagonal run of equal lines), then its edit.
  const matches: [number, number][] = []; // matched (x, y), relative to lo, in reverse
  let x = n;
  let y = m;
  for (let d = found; d > 0; d--) {
    const pv = trace[d];
    const k = x - y;
    const prevK = k === -d || (k !== d && pv[off + k - 1] < pv[off + k + 1]) ? k + 1 : k - 1;
    const px = pv[off + prevK];
    const py = px - prevK;
    while (x > px && y > py) { x--; y--; matches.push([x, y]); }
    x = px;
    y = py;
  }
  while (x > 0 && y > 0) { x--; y--; matches.push([x, y]); }
  matches.reverse();
  const blocks: Block[] = [];
  let ax = 0;
  let by = 0;
  for (const [mx, my] of [...matches, [n, m] as [number, number]]) {
    if (mx > ax || my > by) blocks.push({ aStart: lo + ax, aEnd: lo + mx, bStart: lo + by, bEnd: lo + my });
    ax = mx + 1;
    by = my + 1;
  }
  return blocks;
}

/**
 * Where each hunk's lines are in the current text. Lines the user inserted right at a hunk's
 * edges belong to it; a change that straddles an edge takes the hunk with it.
 */
export function locateHunks(proposed: string, current: string, hunks: HunkSpec[]): Region[] {
  const blocks = changedBlocks(splitLines(proposed), splitLines(current));
  const at = (p: number, side: "left" | "right"): number => {
    let offset = 0;
    for (const b of blocks) {
      if (b.aEnd < p || (b.aEnd === p && b.aStart < p)) { offset = b.bEnd - b.aEnd; continue; }
      if (b.aStart > p) break;
      if (b.aStart === p && b.aEnd > p) return b.bStart; // a change begins right here
      return side === "left" ? b.bStart : b.bEnd; // an insertion at p, or a change around p
    }
    return p + offset;
  };
  return hunks.map((h) => {
    const start = at(h.newStart, "left");
    return { start, end: Math.max(start, at(h.newStart + h.newLines, "right")) };
  });
}

const slice = (lines: string[], start: number, count: number) => lines.slice(start, start + count).join("");

/** The hunk's original lines and proposed lines, as text. */
export function hunkTexts(original: string, proposed: string, h: HunkSpec): { original: string; proposed: string } {
  return { original: slice(splitLines(original), h.oldStart, h.oldLines), proposed: slice(splitLines(proposed), h.newStart, h.newLines) };
}

/** What each hunk's lines in the current text are, and where. */
export function hunkContents(original: string, proposed: string, current: string, hunks: HunkSpec[]): { content: HunkContent; region: Region; text: string }[] {
  const regions = locateHunks(proposed, current, hunks);
  const cur = splitLines(current);
  return hunks.map((h, i) => {
    const region = regions[i];
    const text = cur.slice(region.start, region.end).join("");
    const t = hunkTexts(original, proposed, h);
    const content: HunkContent = text === t.proposed ? "proposed" : text === t.original ? "original" : "edited";
    return { content, region, text };
  });
}

/**
 * The decisions after the current text changed: a hunk that reads as the original is undone
 * (VS Code's "Revert Block", or the user typed it back); an undone hunk the user typed into
 * is theirs, pending again.
 */
export function reconcile(decisions: Map<number, HunkDecision>, hunks: HunkSpec[], contents: { content: HunkContent }[]): Map<number, HunkDecision> {
  const out = new Map<number, HunkDecision>();
  hunks.forEach((h, i) => {
    const was = decisions.get(h.id) ?? "pending";
    const c = contents[i].content;
    out.set(h.id, c === "original" ? "undone" : was === "undone" ? "pending" : was);
  });
  return out;
}

/** `text` with lines [region.start, region.end) replaced by `replacement`. */
export function replaceRegion(text: string, region: Region, replacement: string): string {
  const lines = splitLines(text);
  return lines.slice(0, region.start).join("") + replacement + lines.slice(region.end).join("");
}

/** Character offsets of a region in `text` (for an editor edit). */
export function regionOffsets(text: string, region: Region): { start: number; end: number } {
  const lines = splitLines(text);
  const start = lines.slice(0, region.start).join("").length;
  return { start, end: start + lines.slice(region.start, region.end).join("").length };
}

/** The original with only the `keep` hunks applied. */
export function applyHunks(original: string, proposed: string, hunks: HunkSpec[], keep: Set<number>): string {
  const old = splitLines(original);
  const neu = splitLines(proposed);
  const out: string[] = [];
  let at = 0;
  for (const h of [...hunks].sort((x, y) => x.oldStart - y.oldStart)) {
    out.push(...old.slice(at, h.oldStart));
    out.push(...(keep.has(h.id) ? neu.slice(h.newStart, h.newStart + h.newLines) : old.slice(h.oldStart, h.oldStart + h.oldLines)));
    at = h.oldStart + h.oldLines;
  }
  out.push(...old.slice(at));
  return out.join("");
}

export interface FileReview {
  uri: string;
  original: string;
  proposed: string;
  current: string;
  hunks: HunkSpec[];
  decisions: Map<number, HunkDecision>;
}

export type ReviewDecision =
  | { decision: "accept" }
  | { decision: "reject"; feedback?: string }
  | { decision: "partial"; hunks: Record<string, number[]> }
  | { decision: "edited"; editedText: Record<string, string>; hunks: Record<string, number[]> };

/**
 * The answer to the server for the current texts. Only hunk choices: `accept`, `partial`
 * (the kept hunk ids) or `reject`. Any edit of the user's: `edited` with the current texts
 * (undone hunks are the original there) and, for the model's information, the hunk ids kept.
 */
export function reviewDecision(files: FileReview[]): ReviewDecision {
  const kept: Record<string, number[]> = {};
  let total = 0;
  let chosen = 0;
  let userEdits = false;
  let all = true;
  for (const f of files) {
    const ids = f.hunks.filter((h) => f.decisions.get(h.id) !== "undone").map((h) => h.id).sort((a, b) => a - b);
    kept[f.uri] = ids;
    total += f.hunks.length;
    chosen += ids.length;
    if (f.current !== f.proposed) all = false;
    if (f.current !== applyHunks(f.original, f.proposed, f.hunks, new Set(ids))) userEdits = true;
  }
  if (all) return { decision: "accept" };
  if (userEdits) {
    const editedText: Record<string, string> = {};
    for (const f of files) editedText[f.uri] = f.current;
    return { decision: "edited", editedText, hunks: kept };
  }
  if (chosen === 0) return { decision: "reject", feedback: "the user undid every hunk" };
  if (chosen === total) return { decision: "accept" };
  return { decision: "partial", hunks: kept };
}

/** "line 7", "lines 7–8", or "after line 6" for a deletion (1-based, in the current text). */
export function regionLabel(region: Region): string {
  const n = region.end - region.start;
  if (n <= 0) return region.start === 0 ? "at the top" : `after line ${region.start}`;
  return n === 1 ? `line ${region.start + 1}` : `lines ${region.start + 1}–${region.end}`;
}
