// Rewind from the chat panel in a real VS Code (code-server 4.100.x + Chromium): the restore
// button on a user message, the preview with a choice per file and its diff, and the rewind
// itself (the files on disk and in the editor, the conversation, the message back in the
// composer). The scripted model (scenarios.py: rewind) edits two files, deletes one with a
// command and creates one with another. Screenshots go to tests/artifacts/vscode/rw-*.png.
import { describe, it, before, after } from "node:test";
import assert from "node:assert/strict";
import { existsSync, mkdirSync, readFileSync } from "node:fs";
import { join } from "node:path";
import {
  ARTIFACTS, closeWorkbench, missingPrerequisites, openWorkbench, startCodeServer, startModel, tempDir, workbenchHelpers } from "./harness.mjs";

const missing = missingPrerequisites();
const skip = missing.length ? `missing ${missing.join(", ")}: run scripts/install-vscode-test-env.sh` : false;

// must match scenarios.py (rewind)
const FILES = { "notes.txt": "first line\nsecond line\n", "later.txt": "later = 1\n", "data.txt": "precious data\n" };

let dir, model, cs, browser, page;
const shot = (name) => page.screenshot({ path: join(ARTIFACTS, `rw-${name}.png`) });
const { chat, palette, runCommand, quickOpen, waitFor } = workbenchHelpers(() => page);
const file = (name) => join(cs.ws, name);
const read = (name) => (existsSync(file(name)) ? readFileSync(file(name), "utf8") : null);





describe("rewind from the codeloop panel", { skip, timeout: 300_000 }, () => {
  before(async () => {
    mkdirSync(ARTIFACTS, { recursive: true });
    dir = tempDir();
    model = await startModel(dir, "scenarios:rewind");
    cs = await startCodeServer({ dir, baseUrl: model.baseUrl, files: FILES, settings: { "codeloop.mode": "bypass" } });
    ({ browser, page } = await openWorkbench(cs));
    // the bypass warning would cover the panel's buttons
    await page.locator(".notifications-toasts .codicon-notifications-clear-all, .notification-toast .codicon-close").first().click({ timeout: 5_000 }).catch(() => undefined);
    await runCommand("codeloop: Open Chat");
    await chat().locator("textarea.input").waitFor({ timeout: 30_000 });
    await waitFor(async () => (await chat().locator(".server-dot.running").count()) > 0, 30_000, "the server to run");
  });

  after(() => closeWorkbench({ browser, page, shot, dir }));

  it("1. a turn's edits and commands are rewound from the message's restore button, with a choice per file", async () => {
    const c = chat();
    const input = c.locator("textarea.input");
    await input.fill("rewrite the notes please");
    await input.press("Enter");
    await c.locator(".item.turnEnd").first().waitFor({ timeout: 60_000 });
    await waitFor(() => read("made.txt") !== null && read("data.txt") === null, 15_000, "the turn's commands");
    assert.equal(read("notes.txt"), "first line\nsecond line, by the agent\n");
    assert.equal(read("later.txt"), "later = 2\n");

    // The user changes later.txt afterwards, in the editor, and saves it.
    await quickOpen("later.txt");
    await page.locator(".monaco-editor .view-lines").first().click();
    await page.keyboard.press("Control+End");
    await page.keyboard.type("# the user's line");
    await page.keyboard.press("Control+s");
    await waitFor(() => read("later.txt")?.includes("# the user's line"), 10_000, "the user's save");

    // The message's restore button (its checkpoint) opens the preview.
    const restore = c.locator(".item.user .rewind-btn").first();
    await restore.waitFor({ state: "attached", timeout: 15_000 });
    await c.locator(".item.user").first().hover();
    await restore.click();
    const panel = c.locator(".rewind-panel");
    await panel.locator(".rewind-file").first().waitFor({ timeout: 20_000 });
    await shot("01-preview");
    const row = (path) => panel.locator(`.rewind-file[data-path="${path}"]`);
    assert.equal(await panel.locator(".rewind-file").count(), 4);
    assert.equal(await row("data.txt").getAttribute("data-action"), "recreate");
    assert.equal(await row("made.txt").getAttribute("data-action"), "delete");
    assert.match(await row("later.txt").getAttribute("class"), /changed-since/);
    assert.equal(await row("later.txt").locator("select.rewind-choice").inputValue(), "keep");
    assert.match(await panel.innerText(), /Conversation: the last \d+ message\(s\) are removed/);
    // the diff of a file, on demand
    await row("notes.txt").locator(".rewind-diff-toggle").click();
    await row("notes.txt").locator("pre.diff").waitFor({ timeout: 5_000 });
    assert.match(await row("notes.txt").locator("pre.diff").innerText(), /-second line, by the agent\s*\n\+second line/);
    // later.txt: restore it too (the user's line is discarded: chosen here, for this file)
    await row("later.txt").locator("select.rewind-choice").selectOption("restore");
    await waitFor(async () => (await row("later.txt").locator("select.rewind-choice").inputValue()) === "restore", 5_000, "the choice");
    await shot("02-choices");
    await panel.locator("button.rewind-apply").click();
    await panel.waitFor({ state: "hidden", timeout: 20_000 });

    // Byte for byte on disk; the created file is gone, the deleted one back.
    for (const [name, text] of Object.entries(FILES)) assert.equal(read(name), text, name);
    assert.equal(read("made.txt"), null);
    // The open editor shows the restored text (it went through workspace/applyEdit), saved.
    const editorText = async () => (await page.locator(".editor-instance .monaco-editor .view-lines").first().innerText()).replace(/\u00a0/g, " ");
    await waitFor(async () => (await editorText()).includes("later = 1"), 10_000, "the editor to show the restore");
    assert.ok(!(await editorText()).includes("the user's line"));
    assert.equal(await page.locator(".tab.dirty", { hasText: "later.txt" }).count(), 0, "the restored buffer is saved");
    // The conversation was rewound: no messages, a notice says what was done, and the
    // message is back in the composer.
    await c.locator(".item.notice", { hasText: "Rewound the code" }).waitFor({ timeout: 10_000 });
    assert.equal(await c.locator(".item.user").count(), 0);
    assert.equal(await input.inputValue(), "rewrite the notes please");
    await shot("03-rewound");
  });

  it("2. the message sent again, then `/rewind 1` in the input opens the card; code only keeps the conversation", async () => {
    const c = chat();
    const input = c.locator("textarea.input");
    await input.press("Enter"); // the rewound message, back in the input, sent again
    await c.locator(".item.turnEnd").first().waitFor({ timeout: 60_000 });
    await waitFor(() => read("made.txt") !== null && read("data.txt") === null, 15_000, "the turn's commands");
    await c.locator(".item.user .rewind-btn").first().waitFor({ state: "attached", timeout: 15_000 });
    await input.fill("/rewind 1");
    await input.press("Enter");
    const panel = c.locator(".rewind-panel");
    await panel.locator(".rewind-file").first().waitFor({ timeout: 20_000 });
    await panel.locator('input[name="rewind-scope"][value="code"]').check();
    await waitFor(async () => (await panel.locator(".rewind-conversation").count()) === 0, 5_000, "the conversation line to go (code only)");
    await panel.locator("button.rewind-apply").click();
    await panel.waitFor({ state: "hidden", timeout: 20_000 });
    for (const [name, text] of Object.entries(FILES)) assert.equal(read(name), text, name);
    assert.equal(read("made.txt"), null);
    await c.locator(".item.notice", { hasText: "Rewound the code" }).last().waitFor({ timeout: 10_000 });
    assert.equal(await c.locator(".item.user").count(), 1, "the conversation is kept");
    await shot("04-code-only");
  });
});
