// Code actions in a real VS Code (code-server 4.100.x + Chromium): the lightbulb on a
// diagnostic another language server reported (VS Code's built-in JSON support) offers
// "Fix with codeloop: …"; running it starts a focused turn shown in the chat panel, opens
// the diff review, and accepting fixes the file on disk. "Ask codeloop…" asks for the
// instruction in an input box; "Explain with codeloop" answers in the panel; Stop cancels a
// running fix. The scripted model answers the server's focused prompts
// (scenarios.py: quickfix). Screenshots go to tests/artifacts/vscode/qf-*.png.
import { describe, it, before, after } from "node:test";
import assert from "node:assert/strict";
import { mkdirSync, readFileSync } from "node:fs";
import { join } from "node:path";
import {
  ARTIFACTS, closeWorkbench, missingPrerequisites, openWorkbench, recordedRequests, startCodeServer, startModel, tempDir, workbenchHelpers } from "./harness.mjs";

const missing = missingPrerequisites();
const skip = missing.length ? `missing ${missing.join(", ")}: run scripts/install-vscode-test-env.sh` : false;

// must match scenarios.py
const BROKEN_JSON = '{\n  "name": "codeloop",\n  "version": 1\n  "private": true\n}\n';
const FIXED_JSON = '{\n  "name": "codeloop",\n  "version": 1,\n  "private": true\n}\n';
const SLOW_JSON = '{\n  "slow": true\n  "stop": "me"\n}\n';
const NAMES_PY = 'names = ["ada", "grace"]\nprint(names)\n';
const UPPER_NAMES_PY = 'names = ["ADA", "GRACE"]\nprint(names)\n';

let dir, model, cs, browser, page;
const shot = (name) => page.screenshot({ path: join(ARTIFACTS, `qf-${name}.png`) });
const { chat, palette, waitFor, turnEnds } = workbenchHelpers(() => page);
const menuItem = (text) => page.locator(".action-widget .monaco-list-row", { hasText: text }).first();


async function openFile(file) {
  await palette(file);
  await page.locator(".quick-input-list .monaco-list-row", { hasText: file }).first().waitFor({ timeout: 10_000 });
  await page.keyboard.press("Enter");
  await page.locator(".tab.active", { hasText: file }).waitFor({ timeout: 15_000 });
  await page.locator(".monaco-editor .view-lines").first().waitFor({ timeout: 10_000 });
}

/** Moves the cursor with the "Go to Line" quick input (`:line:column`, 1-based). */
async function goTo(line, column = 1) {
  await palette(`:${line}:${column}`);
  await page.keyboard.press("Enter");
  await page.locator(".quick-input-widget").waitFor({ state: "hidden", timeout: 5_000 });
}

/** Opens the quick-fix / code-action menu at the cursor (Ctrl+.) and waits for `item`. */
async function codeActions(item) {
  for (let i = 0; i < 3; i++) {
    await page.keyboard.press("Control+.");
    try { await menuItem(item).waitFor({ timeout: 8_000 }); return; } catch { await page.keyboard.press("Escape"); }
  }
  assert.fail(`the code-action menu did not offer "${item}"`);
}

/** Picks the menu item with the keyboard (the menu's pointer block swallows clicks). */
async function choose(item) {
  const focused = page.locator(".action-widget .monaco-list-row.focused");
  for (let i = 0; i < 10; i++) {
    if (((await focused.first().innerText().catch(() => "")) || "").includes(item)) {
      await page.keyboard.press("Enter");
      await page.locator(".action-widget").waitFor({ state: "hidden", timeout: 5_000 }).catch(() => undefined);
      return;
    }
    await page.keyboard.press("ArrowDown");
  }
  assert.fail(`could not select "${item}" in the code-action menu`);
}


const userMessages = (n) => recordedRequests(model.record).map((r) => (r.body?.messages ?? []).filter((m) => m.role === "user").pop()?.content ?? "").slice(0, n);

describe("codeloop code actions in VS Code", { skip, timeout: 240_000 }, () => {
  before(async () => {
    mkdirSync(ARTIFACTS, { recursive: true });
    dir = tempDir();
    model = await startModel(dir, "scenarios:quickfix");
    cs = await startCodeServer({
      dir, baseUrl: model.baseUrl,
      files: { "config.json": BROKEN_JSON, "slow.json": SLOW_JSON, "names.py": NAMES_PY },
    });
    ({ browser, page } = await openWorkbench(cs));
  });

  after(() => closeWorkbench({ browser, page, shot, dir }));

  it("1. the lightbulb on a JSON syntax error offers Fix with codeloop; the fix is reviewed in the diff and lands on disk", async () => {
    await openFile("config.json");
    // the diagnostic comes from VS Code's JSON language server, not from codeloop
    await page.locator(".monaco-editor .squiggly-error").first().waitFor({ timeout: 30_000 });
    await goTo(4, 3);
    await page.locator(".lightBulbWidget").first().waitFor({ state: "visible", timeout: 15_000 });
    await shot("01a-diagnostic-and-lightbulb");
    await codeActions("Fix with codeloop");
    const fix = menuItem("Fix with codeloop");
    assert.match(await fix.innerText(), /Fix with codeloop: Expected comma/);
    await shot("01b-quick-fix-menu");
    await choose("Fix with codeloop");

    // the chat panel reveals itself with the focused turn it did not start
    const c = chat();
    await c.locator(".item.user", { hasText: "Fix with codeloop: Expected comma (config.json:4)" }).waitFor({ timeout: 30_000 });
    const card = c.locator('.proposal-card[data-status="pending"]');
    await card.waitFor({ timeout: 30_000 });
    await page.locator(".tab", { hasText: "proposed by codeloop" }).first().waitFor({ timeout: 15_000 });
    await page.locator(".monaco-diff-editor").first().waitFor({ timeout: 15_000 });
    assert.ok(await c.locator("button.stop:not(.hidden)").count() === 1, "the panel shows the turn running (Stop)");
    assert.equal(readFileSync(join(cs.ws, "config.json"), "utf8"), BROKEN_JSON, "nothing is written before the review");
    await shot("01c-diff-review");
    await card.locator(".accept").click();
    await waitFor(() => readFileSync(join(cs.ws, "config.json"), "utf8") === FIXED_JSON, 20_000, "the fixed file on disk");
    await turnEnds().first().waitFor({ timeout: 20_000 });
    assert.match(await c.locator(".item.assistant").last().innerText(), /Added the missing comma/);
    assert.match(userMessages(1)[0], /^Fix this diagnostic in config\.json/, "the model got the server's focused fix prompt");
    // the JSON server no longer reports the error
    await page.locator(".tab", { hasText: "proposed by codeloop" }).first().waitFor({ state: "detached", timeout: 10_000 });
    await openFile("config.json");
    await waitFor(async () => (await page.locator(".monaco-editor .squiggly-error").count()) === 0, 15_000, "the diagnostic to go away");
    await shot("01d-fixed");
  });

  it("2. Explain with codeloop answers in the chat panel", async () => {
    await openFile("names.py");
    await goTo(1, 1);
    await page.keyboard.press("Shift+End");
    await codeActions("Explain with codeloop");
    await shot("02a-explain-menu");
    await choose("Explain with codeloop");
    const c = chat();
    await c.locator(".item.user", { hasText: "Explain with codeloop: names.py:1" }).waitFor({ timeout: 20_000 });
    await turnEnds().first().waitFor({ timeout: 20_000 });
    const answer = c.locator(".item.assistant .markdown").last();
    assert.match(await answer.innerText(), /This line builds a list of two names/);
    assert.equal(await answer.locator("strong").first().innerText(), "list of two names");
    assert.equal(readFileSync(join(cs.ws, "names.py"), "utf8"), NAMES_PY, "explaining edits nothing");
    await shot("02b-explained");
  });

  it("3. Ask codeloop… asks for the instruction in an input box; the edit is reviewed and accepted", async () => {
    await openFile("names.py");
    await goTo(1, 1);
    await page.keyboard.press("Shift+End");
    // Escape in the input box starts nothing
    const before = recordedRequests(model.record).length;
    await codeActions("Ask codeloop");
    await choose("Ask codeloop");
    const box = page.locator(".quick-input-widget input.input");
    await box.waitFor({ state: "visible", timeout: 10_000 });
    await page.keyboard.press("Escape");
    await box.waitFor({ state: "hidden", timeout: 5_000 });
    await page.waitForTimeout(500);
    assert.equal(recordedRequests(model.record).length, before, "no turn started");
    assert.ok(await chat().locator(".item.user", { hasText: "Explain with codeloop" }).count() === 1, "the panel still shows the last turn");

    await page.locator(".monaco-editor .view-lines").first().click();
    await goTo(1, 1);
    await page.keyboard.press("Shift+End");
    await codeActions("Ask codeloop");
    await choose("Ask codeloop");
    await box.waitFor({ state: "visible", timeout: 10_000 });
    assert.match(await page.locator(".quick-input-widget").innerText(), /What should codeloop do with names\.py:1/);
    await box.fill("uppercase the names");
    await shot("03a-ask-input-box");
    await page.keyboard.press("Enter");
    const c = chat();
    await c.locator(".item.user", { hasText: "uppercase the names (names.py:1)" }).waitFor({ timeout: 20_000 });
    const card = c.locator('.proposal-card[data-status="pending"]');
    await card.waitFor({ timeout: 20_000 });
    await shot("03b-ask-proposal");
    await card.locator(".accept").click();
    await waitFor(() => readFileSync(join(cs.ws, "names.py"), "utf8") === UPPER_NAMES_PY, 20_000, "the edited file on disk");
    await turnEnds().first().waitFor({ timeout: 20_000 });
    const asked = userMessages(99).find((t) => t.includes("Instruction: uppercase the names"));
    assert.ok(asked, "the typed instruction reached the model in the focused prompt");
    await shot("03c-ask-accepted");
  });

  it("4. a running fix shows progress in the panel and the status bar; Stop cancels it", async () => {
    await openFile("slow.json");
    await page.locator(".monaco-editor .squiggly-error").first().waitFor({ timeout: 30_000 });
    await goTo(3, 3);
    await codeActions("Fix with codeloop");
    await choose("Fix with codeloop");
    const c = chat();
    await c.locator(".item.user", { hasText: "(slow.json:3)" }).waitFor({ timeout: 20_000 });
    await c.locator(".item.assistant", { hasText: "Looking at slow.json" }).waitFor({ timeout: 20_000 });
    await c.locator("button.stop:not(.hidden)").waitFor({ timeout: 5_000 });
    await page.locator(".statusbar-item", { hasText: "codeloop" }).locator(".codicon-loading").first().waitFor({ timeout: 5_000 });
    await shot("04a-fix-running");
    // a code action while the panel's turn runs does not take the panel over
    await openFile("names.py");
    await goTo(2, 1);
    await page.keyboard.press("Shift+End");
    await codeActions("Explain with codeloop");
    await choose("Explain with codeloop");
    await page.locator(".notifications-toasts .notification-toast", { hasText: "runs in another session" }).first().waitFor({ timeout: 10_000 });
    assert.equal(await c.locator(".item.notice").count(), 0, "the panel's stream is not interrupted");
    assert.equal(await c.locator(".item.user").count(), 1);
    assert.match(await c.locator(".item.user").innerText(), /slow\.json:3/);
    assert.equal(await c.locator("button.stop:not(.hidden)").count(), 1, "the slow fix still runs");
    await waitFor(() => userMessages(99).some((t) => t.includes("lines 2-2")), 10_000, "the explain turn to reach the model");
    await shot("04b-second-action-elsewhere");
    const t0 = Date.now();
    await c.locator("button.stop").click();
    await turnEnds().first().waitFor({ timeout: 15_000 });
    assert.ok(Date.now() - t0 < 15_000);
    assert.match(await turnEnds().first().innerText(), /cancel/i);
    await c.locator("button.stop.hidden").waitFor({ state: "attached", timeout: 5_000 });
    await waitFor(async () => (await page.locator(".statusbar-item", { hasText: "codeloop" }).locator(".codicon-loading").count()) === 0, 10_000, "the status bar to stop spinning");
    assert.equal(readFileSync(join(cs.ws, "slow.json"), "utf8"), SLOW_JSON, "a cancelled fix changes nothing");
    await shot("04c-fix-stopped");
  });
});
