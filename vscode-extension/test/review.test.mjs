// The per-hunk review logic (src/shared/review.ts), on the esbuild output in out/.
import { test } from "node:test";
import assert from "node:assert/strict";
import { createRequire } from "node:module";

const require = createRequire(import.meta.url);
const R = require("../out/shared/review.js");

const file = (name, n = 30) => Array.from({ length: n }, (_, i) => `# ${name} line ${i + 1}\n`);
/** original, proposed and the two hunks of a proposal that changes lines 3 and 27 */
function twoHunks() {
  const old = file("t");
  const neu = [...old];
  neu[2] = "TOP = 'proposed top'\n";
  neu[26] = "BOTTOM = 'proposed bottom'\n";
  const hunks = [
    { id: 0, oldStart: 2, oldLines: 1, newStart: 2, newLines: 1 },
    { id: 1, oldStart: 26, oldLines: 1, newStart: 26, newLines: 1 },
  ];
  return { original: old.join(""), proposed: neu.join(""), hunks };
}

function lcsLength(a, b) {
  const dp = Array.from({ length: a.length + 1 }, () => new Array(b.length + 1).fill(0));
  for (let i = 1; i <= a.length; i++) for (let j = 1; j <= b.length; j++) dp[i][j] = a[i - 1] === b[j - 1] ? dp[i - 1][j - 1] + 1 : Math.max(dp[i - 1][j], dp[i][j - 1]);
  return dp[a.length][b.length];
}

test("splitLines keeps every line ending, like LSP", () => {
  assert.deepEqual(R.splitLines("a\nb\r\nc\rd"), ["a\n", "b\r\n", "c\r", "d"]);
  assert.deepEqual(R.splitLines(""), []);
  assert.deepEqual(R.splitLines("x\n"), ["x\n"]);
});

test("changedBlocks is a minimal diff that rebuilds the new side (random texts against an LCS)", () => {
  let seed = 7;
  const rnd = (n) => { seed = (seed * 1103515245 + 12345) % 2147483648; return seed % n; };
  for (let t = 0; t < 300; t++) {
    const a = Array.from({ length: rnd(12) }, () => "abcd"[rnd(4)]);
    const b = Array.from({ length: rnd(12) }, () => "abcd"[rnd(4)]);
    const blocks = R.changedBlocks(a, b);
    const out = [];
    let at = 0;
    let changed = 0;
    for (const bl of blocks) {
      out.push(...a.slice(at, bl.aStart), ...b.slice(bl.bStart, bl.bEnd));
      changed += bl.aEnd - bl.aStart + bl.bEnd - bl.bStart;
      at = bl.aEnd;
    }
    out.push(...a.slice(at));
    assert.deepEqual(out, b, `rebuilds ${a} -> ${b}`);
    assert.equal(changed, a.length + b.length - 2 * lcsLength(a, b), `minimal for ${a} -> ${b}`);
  }
});

test("hunk states are read from the current text: proposed, undone (Revert Block), edited", () => {
  const { original, proposed, hunks } = twoHunks();
  let c = R.hunkContents(original, proposed, proposed, hunks);
  assert.deepEqual(c.map((x) => x.content), ["proposed", "proposed"]);
  assert.deepEqual(c.map((x) => x.region), [{ start: 2, end: 3 }, { start: 26, end: 27 }]);
  // VS Code's Revert Block on the second hunk = the original line back in the proposed side
  const reverted = R.replaceRegion(proposed, c[1].region, R.hunkTexts(original, proposed, hunks[1]).original);
  // the user also typed two lines at the top of the file and tweaked the first hunk
  const lines = R.splitLines(reverted);
  lines[2] = "TOP = 'proposed top'  # tweaked\n";
  const current = ["new 1\n", "new 2\n", ...lines].join("");
  c = R.hunkContents(original, proposed, current, hunks);
  assert.deepEqual(c.map((x) => x.content), ["edited", "original"]);
  assert.deepEqual(c.map((x) => x.region), [{ start: 4, end: 5 }, { start: 28, end: 29 }], "regions follow the user's inserted lines");
  const d = R.reconcile(new Map([[0, "kept"], [1, "pending"]]), hunks, c);
  assert.deepEqual([...d], [[0, "kept"], [1, "undone"]], "a reverted hunk is undone, whoever reverted it");
  // typing into an undone hunk makes it the user's edit, pending again
  const typed = R.replaceRegion(current, c[1].region, "# t line 27 and more\n");
  const c2 = R.hunkContents(original, proposed, typed, hunks);
  assert.equal(c2[1].content, "edited");
  assert.equal(R.reconcile(d, hunks, c2).get(1), "pending");
});

test("the bug of issue 14: a tweak in the kept hunk and an undone hunk give the tweak and not the undone hunk", () => {
  const { original, proposed, hunks } = twoHunks();
  const lines = R.splitLines(proposed);
  lines[2] = "TOP = 'proposed top'  # tweaked\n";
  let current = lines.join("");
  // Undo the second hunk (what the card's Undo and the editor's Undo do)
  const c = R.hunkContents(original, proposed, current, hunks);
  current = R.replaceRegion(current, c[1].region, R.hunkTexts(original, proposed, hunks[1]).original);
  const decisions = R.reconcile(new Map([[1, "undone"]]), hunks, R.hunkContents(original, proposed, current, hunks));
  const d = R.reviewDecision([{ uri: "u", original, proposed, current, hunks, decisions }]);
  assert.equal(d.decision, "edited");
  const want = R.splitLines(original);
  want[2] = "TOP = 'proposed top'  # tweaked\n";
  assert.equal(d.editedText.u, want.join(""), "the unticked hunk is not in what is applied");
  assert.deepEqual(d.hunks, { u: [0] });
});

test("reviewDecision: only hunk choices give accept, partial or reject", () => {
  const { original, proposed, hunks } = twoHunks();
  const f = (current, decisions = new Map()) => ({ uri: "u", original, proposed, current, hunks, decisions });
  assert.deepEqual(R.reviewDecision([f(proposed)]), { decision: "accept" });
  const onlyFirst = R.applyHunks(original, proposed, hunks, new Set([0]));
  assert.deepEqual(R.reviewDecision([f(onlyFirst, new Map([[1, "undone"]]))]), { decision: "partial", hunks: { u: [0] } });
  assert.equal(R.reviewDecision([f(original, new Map([[0, "undone"], [1, "undone"]]))]).decision, "reject");
});

test("insertions and deletions: an undone pure insertion is empty, a kept deletion is empty", () => {
  const original = "a\nb\nc\n";
  const proposed = "a\nNEW\nb\n"; // insert NEW after a; delete c
  const hunks = [
    { id: 0, oldStart: 1, oldLines: 0, newStart: 1, newLines: 1 },
    { id: 1, oldStart: 2, oldLines: 1, newStart: 3, newLines: 0 },
  ];
  assert.deepEqual(R.hunkContents(original, proposed, proposed, hunks).map((x) => x.content), ["proposed", "proposed"]);
  const undoneBoth = R.hunkContents(original, proposed, original, hunks);
  assert.deepEqual(undoneBoth.map((x) => x.content), ["original", "original"]);
  assert.deepEqual(undoneBoth.map((x) => x.region), [{ start: 1, end: 1 }, { start: 2, end: 3 }]);
  assert.equal(R.applyHunks(original, proposed, hunks, new Set([1])), "a\nb\n");
  assert.equal(R.regionLabel({ start: 1, end: 1 }), "after line 1");
  assert.equal(R.regionLabel({ start: 6, end: 8 }), "lines 7–8");
});
