// Per-hunk review and approvals in a real VS Code (code-server 4.100.x + Chromium), driven by
// clicks and keys only. The scripted model (scenarios.py: review) proposes two-hunk edits to
// one file per test and runs commands. Screenshots go to tests/artifacts/vscode/rv-*.png.
import { describe, it, before, after } from "node:test";
import assert from "node:assert/strict";
import { mkdirSync, readFileSync } from "node:fs";
import { join } from "node:path";
import {
  ARTIFACTS, closeWorkbench, missingPrerequisites, openWorkbench, recordedRequests, startCodeServer, startModel, tempDir, workbenchHelpers } from "./harness.mjs";

const missing = missingPrerequisites();
const skip = missing.length ? `missing ${missing.join(", ")}: run scripts/install-vscode-test-env.sh` : false;

// must match scenarios.py (_two_hunks)
function twoHunks(name) {
  const before = Array.from({ length: 30 }, (_, i) => `# ${name} line ${i + 1}`);
  const after = [...before];
  after[2] = `${name.toUpperCase()}_TOP = 'proposed top'`;
  after[26] = `${name.toUpperCase()}_BOTTOM = 'proposed bottom'`;
  return [before.join("\n") + "\n", after.join("\n") + "\n"];
}
const [TWEAK_PY] = twoHunks("tweak");
const [LENS_PY] = twoHunks("lens");
const [KEYS_PY] = twoHunks("keys");
const [WHOLE_PY, WHOLE_PROPOSED] = twoHunks("whole");
const [NOPE_PY] = twoHunks("nope");
// an 8x8 red PNG
const RED_PNG = "iVBORw0KGgoAAAANSUhEUgAAAAgAAAAICAYAAADED76LAAAAEklEQVR4nGP4z8DwHx9mGBkKAMLXf4EvceABAAAAAElFTkSuQmCC";
/** The last user message the model received (its content: a string or parts). */
const lastUserContent = () => recordedRequests(model.record).map((r) => (r.body?.messages ?? []).filter((m) => m.role === "user").pop()?.content).pop();

let dir, model, cs, browser, page;
const shot = (name) => page.screenshot({ path: join(ARTIFACTS, `rv-${name}.png`) });
const { chat, palette, runCommand, send, waitFor, turnEnds, waitTurnEnds } = workbenchHelpers(() => page);
const modifiedLine = (text) => page.locator(".monaco-diff-editor .editor.modified .view-line", { hasText: text }).first();





const lines = (text) => text.split("\n");
/** The tool results the model received, all requests. */
const toolResults = () => recordedRequests(model.record).flatMap((r) => (r.body?.messages ?? []).filter((m) => m.role === "tool").map((m) => String(m.content)));

describe("codeloop review and approvals in VS Code", { skip, timeout: 300_000 }, () => {
  before(async () => {
    mkdirSync(ARTIFACTS, { recursive: true });
    dir = tempDir();
    model = await startModel(dir, "scenarios:review");
    // the scripted model takes images (codeloop.images: "on"; "auto" would leave them out for its name)
    cs = await startCodeServer({ dir, baseUrl: model.baseUrl, files: { "tweak.py": TWEAK_PY, "lens.py": LENS_PY, "keys.py": KEYS_PY, "whole.py": WHOLE_PY, "nope.py": NOPE_PY }, settings: { "codeloop.images": "on", "codeloop.sandbox": { mode: "auto", autoAllow: false } } });
    ({ browser, page } = await openWorkbench(cs));
    await runCommand("codeloop: Open Chat");
    await chat().locator("textarea.input").waitFor({ timeout: 30_000 });
    await waitFor(async () => (await chat().locator(".server-dot.running").count()) > 0, 30_000, "the server to run");
  });

  after(() => closeWorkbench({ browser, page, shot, dir }));

  it("1. regression: a tweak on the proposed side plus an unticked hunk applies the tweak and not the unticked hunk", async () => {
    const c = chat();
    await send("edit tweak.py please");
    const card = c.locator('.proposal-card[data-status="pending"]');
    await card.waitFor({ timeout: 20_000 });
    await modifiedLine("TWEAK_TOP = 'proposed top'").waitFor({ timeout: 15_000 });
    // tweak the kept hunk on the proposed side
    await modifiedLine("TWEAK_TOP = 'proposed top'").click();
    await page.keyboard.press("End");
    await page.keyboard.type("  # tweaked");
    await modifiedLine("# tweaked").waitFor({ timeout: 5_000 });
    // untick (Undo) the other hunk in the card
    await card.locator('.hunk[data-hunk="1"] button.undo').click();
    await card.locator('.hunk[data-hunk="1"][data-decision="undone"]').waitFor({ timeout: 5_000 });
    await card.locator('.hunk[data-hunk="0"][data-content="edited"]').waitFor({ timeout: 5_000 });
    // the diff editor follows: the undone hunk's original line is back on the proposed side
    await modifiedLine("# tweak line 27").waitFor({ timeout: 5_000 });
    assert.equal(await modifiedLine("TWEAK_BOTTOM").count(), 0, "the undone hunk is gone from the proposed side");
    const accept = card.locator(".accept", { hasText: "Accept 1 of 2 hunks" });
    await assert.doesNotReject(accept.waitFor({ timeout: 5_000 }), "the Accept button counts the kept hunks");
    await shot("01a-tweaked-and-unticked");
    await accept.click();
    await waitTurnEnds(1);
    const expected = lines(TWEAK_PY);
    expected[2] = "TWEAK_TOP = 'proposed top'  # tweaked";
    assert.equal(readFileSync(join(cs.ws, "tweak.py"), "utf8"), expected.join("\n"), "the tweak landed and the unticked hunk did not");
    // the model is told exactly that: one hunk accepted, the other rejected, and the user's tweak
    const told = toolResults().filter((t) => t.includes("tweak.py:")).pop() ?? "";
    assert.match(told, /the user accepted 1 of 2 hunks of your change and rejected 1/, told);
    assert.match(told, /REJECTED: hunk 2 of 2/, told);
    assert.match(told, /The user's own edits to your proposal[\s\S]*# tweaked/, told);
    await shot("01b-applied");
  });

  it("2. Keep and Undo on each hunk in the diff editor (CodeLens, Revert Block) and the card follow each other", async () => {
    const c = chat();
    await send("edit lens.py please");
    const card = c.locator('.proposal-card[data-status="pending"]');
    await card.waitFor({ timeout: 20_000 });
    const lens = (hunk, text) => page.locator(".monaco-diff-editor .editor.modified .codelens-decoration", { hasText: `hunk ${hunk} of 2` }).locator("a", { hasText: text });
    await lens(2, "Undo").waitFor({ timeout: 15_000 });
    await shot("02a-codelens");
    // Undo hunk 2 where the code is: the card follows, the proposed side shows the original line
    await lens(2, "Undo").click();
    await card.locator('.hunk[data-hunk="1"][data-decision="undone"]').waitFor({ timeout: 5_000 });
    await modifiedLine("# lens line 27").waitFor({ timeout: 5_000 });
    await page.locator(".monaco-diff-editor .editor.modified .codelens-decoration", { hasText: "Undone (hunk 2 of 2)" }).waitFor({ timeout: 5_000 });
    assert.match(await card.locator(".accept").innerText(), /Accept 1 of 2 hunks/);
    await shot("02b-undone-in-editor");
    // Keep it again, from the card this time: the editor follows
    await card.locator('.hunk[data-hunk="1"] button.keep').click();
    await modifiedLine("LENS_BOTTOM = 'proposed bottom'").waitFor({ timeout: 5_000 });
    await card.locator('.hunk[data-hunk="1"][data-decision="kept"]').waitFor({ timeout: 5_000 });
    await page.locator(".monaco-diff-editor .editor.modified .codelens-decoration", { hasText: "Kept (hunk 2 of 2)" }).waitFor({ timeout: 5_000 });
    // VS Code's own Revert Block on hunk 1 is an Undo: the card does not contradict it
    await modifiedLine("LENS_TOP = 'proposed top'").click();
    const revert = page.locator('.monaco-diff-editor .gutter [aria-label="Revert Block"], .monaco-diff-editor .gutter [title="Revert Block"]').first();
    await revert.waitFor({ timeout: 5_000 });
    await revert.click();
    await card.locator('.hunk[data-hunk="0"][data-decision="undone"]').waitFor({ timeout: 5_000 });
    await page.locator(".monaco-diff-editor .editor.modified .codelens-decoration", { hasText: "Undone (hunk 1 of 2)" }).waitFor({ timeout: 5_000 });
    await shot("02c-revert-block");
    // Keep All in the title bar applies what the proposed side shows
    await page.locator('.editor-actions [aria-label*="Keep All"]').first().click();
    await waitTurnEnds(2);
    const expected = lines(LENS_PY);
    expected[26] = "LENS_BOTTOM = 'proposed bottom'";
    assert.equal(readFileSync(join(cs.ws, "lens.py"), "utf8"), expected.join("\n"), "only the kept hunk landed");
    const done = c.locator('.proposal-card[data-status="partial"]').last();
    await done.waitFor({ timeout: 5_000 });
    assert.equal(await done.locator('.hunk[data-decision="undone"]').count(), 1, "the answered card keeps the hunks' states");
    assert.match(await done.locator(".proposal-message").innerText(), /\n/, "the model-facing text keeps its newlines");
    await shot("02d-applied");
  });

  it("3. the review by keyboard: next hunk, undo, keep; deciding every hunk answers the proposal", async () => {
    const c = chat();
    await send("edit keys.py please");
    const card = c.locator('.proposal-card[data-status="pending"]');
    await card.waitFor({ timeout: 20_000 });
    await modifiedLine("# keys line 1").click();
    await page.keyboard.press("Alt+F5");
    await page.locator(".statusbar-item", { hasText: "Ln 3," }).waitFor({ timeout: 5_000 });
    await page.keyboard.press("Alt+F5");
    await page.locator(".statusbar-item", { hasText: "Ln 27," }).waitFor({ timeout: 5_000 });
    await page.keyboard.press("Shift+Alt+F5");
    await page.locator(".statusbar-item", { hasText: "Ln 3," }).waitFor({ timeout: 5_000 });
    await page.keyboard.press("Alt+N");
    await card.locator('.hunk[data-hunk="0"][data-decision="undone"]').waitFor({ timeout: 5_000 });
    // the cursor went on to the next undecided hunk
    await page.locator(".statusbar-item", { hasText: "Ln 27," }).waitFor({ timeout: 5_000 });
    await shot("03a-undone-by-key");
    await page.keyboard.press("Alt+Y");
    await waitTurnEnds(3);
    const expected = lines(KEYS_PY);
    expected[26] = "KEYS_BOTTOM = 'proposed bottom'";
    assert.equal(readFileSync(join(cs.ws, "keys.py"), "utf8"), expected.join("\n"));
    await c.locator('.proposal-card[data-status="partial"]').last().waitFor({ timeout: 5_000 });
    await shot("03b-decided-by-keys");
  });

  it("4. approvals by keyboard: the approval is the command's one card and takes the focus; Enter allows once, Escape denies, A allows always", async () => {
    const c = chat();
    const focused = (loc) => loc.evaluate((el) => el === document.activeElement).catch(() => false);
    await send("run two commands");
    const card = c.locator(".approval-card:not(.answered)");
    await card.waitFor({ timeout: 20_000 });
    assert.equal(await c.locator('.tool-card[data-tool="run_command"]').count(), 1, "one card for the command, not two");
    const reasons = await card.locator(".approval-reasons").innerText();
    assert.match(reasons, /Not on your allow list: echo first-approved, echo second-approved/, "the reason in plain words, once");
    await waitFor(() => focused(card), 5_000, "the approval to take the focus");
    await shot("04a-approval-focused");
    await page.waitForTimeout(500); // keys act after a short pause (a keystroke meant for elsewhere is not an answer)
    await page.keyboard.press("Enter");
    await waitTurnEnds(4);
    const tool = c.locator('.tool-card[data-tool="run_command"]').last();
    assert.equal(await tool.getAttribute("data-answer"), "allow_once");
    assert.equal(await tool.getAttribute("data-status"), "done");
    assert.match(await tool.locator(".tool-head").innerText(), /allowed once/);
    assert.equal(await c.locator(".approval-card").count(), 0, "answered, the approval collapsed into the tool card");
    assert.ok(toolResults().some((t) => t.includes("second-approved")), "the command ran");
    await shot("04b-allowed-once");

    await send("run a denied one");
    await waitFor(() => focused(c.locator(".approval-card:not(.answered)")), 20_000, "the second approval to take the focus");
    await page.waitForTimeout(500);
    await page.keyboard.press("Escape");
    await waitTurnEnds(5);
    const denied = c.locator('.tool-card[data-tool="run_command"]').last();
    assert.equal(await denied.getAttribute("data-status"), "denied", "a denied command is not shown as a failure");
    assert.ok(toolResults().some((t) => /denied/.test(t) && t.includes("echo should-not-run")), "the model was told it was denied");

    await send("run an always one");
    await waitFor(() => focused(c.locator(".approval-card:not(.answered)")), 20_000, "the third approval to take the focus");
    await page.waitForTimeout(500);
    await page.keyboard.press("a");
    await waitTurnEnds(6);
    assert.equal(await c.locator('.tool-card[data-tool="run_command"]').last().getAttribute("data-answer"), "allow_always");
    assert.match(readFileSync(join(cs.ws, ".codeloop/settings.local.json"), "utf8"), /Bash\(echo always-ok\)/);
    await shot("04c-always");
  });

  it("5. a screenshot pasted into the composer reaches the model as an image part", async () => {
    const c = chat();
    // the user copied a screenshot: put an image on the system clipboard
    await page.evaluate(async (b64) => {
      const bytes = Uint8Array.from(atob(b64), (ch) => ch.charCodeAt(0));
      await navigator.clipboard.write([new ClipboardItem({ "image/png": new Blob([bytes], { type: "image/png" }) })]);
    }, RED_PNG);
    const input = c.locator("textarea.input");
    await input.click();
    await page.keyboard.press("Control+V");
    await c.locator(".attachments .attachment img").waitFor({ timeout: 5_000 });
    await input.pressSequentially("what is in this screenshot?");
    await shot("05a-pasted-image");
    await page.keyboard.press("Enter");
    await waitTurnEnds(7);
    await c.locator(".item.user .user-images img").last().waitFor({ timeout: 5_000 });
    const content = lastUserContent();
    assert.ok(Array.isArray(content), "the message has content parts");
    assert.equal(content[0].text, "what is in this screenshot?");
    const image = content.find((p) => p.type === "image_url");
    assert.ok(image, "an image_url part");
    const m = image.image_url.url.match(/^data:image\/png;base64,(.+)$/);
    assert.ok(m, "a PNG data URL");
    const png = Buffer.from(m[1], "base64");
    assert.equal(png.subarray(1, 4).toString(), "PNG");
    assert.deepEqual([png.readUInt32BE(16), png.readUInt32BE(20)], [8, 8], "the pasted 8x8 image");
    assert.equal(await c.locator(".attachments .attachment").count(), 0, "the composer is cleared");
    await shot("05b-image-sent");
  });

  it("6. an @file mention is completed in the composer and reaches the model as context", async () => {
    const c = chat();
    const input = c.locator("textarea.input");
    await input.click();
    await input.pressSequentially("explain the mentioned file @twe");
    const option = c.locator(".mention-menu .mention-option", { hasText: "tweak.py" }).first();
    await option.waitFor({ timeout: 10_000 });
    await shot("06a-mention-completion");
    // the keywords are offered too
    await input.press("Backspace"); await input.press("Backspace"); await input.press("Backspace");
    await c.locator(".mention-menu .mention-option", { hasText: "problems" }).waitFor({ timeout: 5_000 });
    await input.pressSequentially("twe");
    await option.waitFor({ timeout: 10_000 });
    await c.locator(".mention-menu .mention-option.selected", { hasText: "tweak.py" }).waitFor({ timeout: 5_000 });
    await input.press("Enter"); // takes the completion
    assert.equal(await input.inputValue(), "explain the mentioned file @tweak.py ");
    await input.press("Enter"); // sends
    await waitTurnEnds(8);
    const chip = c.locator(".item.user").last().locator('.user-chips .chip[data-kind="file"]', { hasText: "tweak.py" });
    await chip.waitFor({ timeout: 5_000 });
    const content = lastUserContent();
    assert.ok(Array.isArray(content));
    const ctx = content.find((p) => p.type === "text" && p.text.startsWith('<context kind="file" label="tweak.py">'));
    assert.ok(ctx, "the file is a context part");
    assert.ok(ctx.text.includes("TWEAK_TOP = 'proposed top'  # tweaked"), "with the file's text as it is now");
    await shot("06b-mention-sent");
  });

  it("7. an image dropped on the composer is attached and reaches the model as an image part", async () => {
    const c = chat();
    // what the composer receives when a file is dropped on it: a drop event carrying the file
    // (no dragover: the workbench would take it for a drag over the editor area and cover the page)
    await c.locator(".composer").evaluate((el, b64) => {
      const bytes = Uint8Array.from(atob(b64), (ch) => ch.charCodeAt(0));
      const data = new DataTransfer();
      data.items.add(new File([bytes], "dropped.png", { type: "image/png" }));
      el.dispatchEvent(new DragEvent("drop", { dataTransfer: data, bubbles: true, cancelable: true }));
    }, RED_PNG);
    await c.locator(".attachments .attachment img").waitFor({ timeout: 5_000 });
    const input = c.locator("textarea.input");
    await input.click();
    await input.pressSequentially("what is in this screenshot, dropped?");
    await shot("07a-dropped-image");
    await page.keyboard.press("Enter");
    await waitTurnEnds(9);
    const content = lastUserContent();
    assert.ok(Array.isArray(content), "the message has content parts");
    const image = content.find((p) => p.type === "image_url");
    assert.ok(image && /^data:image\/png;base64,/.test(image.image_url.url), "a PNG image part");
    const png = Buffer.from(image.image_url.url.split(",")[1], "base64");
    assert.deepEqual([png.readUInt32BE(16), png.readUInt32BE(20)], [8, 8], "the dropped 8x8 image");
  });

  it("8. Ctrl+Alt+N rejects a proposal from the diff editor, with a reason the model is told", async () => {
    const c = chat();
    await send("edit nope.py please");
    await c.locator('.proposal-card[data-status="pending"]').waitFor({ timeout: 20_000 });
    await modifiedLine("NOPE_TOP = 'proposed top'").waitFor({ timeout: 15_000 });
    await modifiedLine("NOPE_TOP = 'proposed top'").click();
    await page.keyboard.press("Control+Alt+N");
    // it asks why (optional); the reason goes to the model
    const why = page.locator(".quick-input-widget input.input");
    await why.waitFor({ state: "visible", timeout: 10_000 });
    await why.fill("keep nope.py as it is");
    await page.keyboard.press("Enter");
    await waitTurnEnds(10);
    assert.equal(readFileSync(join(cs.ws, "nope.py"), "utf8"), NOPE_PY, "nothing changed");
    await c.locator('.proposal-card[data-status="rejected"]').last().waitFor({ timeout: 5_000 });
    assert.ok(toolResults().some((t) => /rejected/.test(t) && t.includes("keep nope.py as it is")), "the model was told why");
    await shot("08b-rejected-by-key");
    // The panel at its default width in the side bar (about 300 px): nothing runs off its right
    // edge, the cards with their diffs included (long lines scroll inside their own box).
    const fit = await c.locator("body").evaluate(() => ({
      width: window.innerWidth, scroll: document.documentElement.scrollWidth,
      over: [...document.querySelectorAll(".card, .composer, .composer-row button, .hunk")]
        .filter((e) => e.getBoundingClientRect().right > window.innerWidth + 1).map((e) => e.className),
    }));
    assert.ok(fit.width <= 340, `the panel is narrow here (${fit.width} px)`);
    assert.ok(fit.scroll <= fit.width, `no horizontal scroll (${fit.scroll} > ${fit.width})`);
    assert.deepEqual(fit.over, [], "nothing past the right edge");
  });

  // Known race (noted on issue 20's stop): under load, accepting by key from the diff editor has
  // twice landed the proposal's TextEdits twice ("'proposed top'roposed top'"), the second time on
  // text that already held them. It runs, and reports, as a todo until that race is fixed.
  it("9. Ctrl+Alt+Y accepts a whole proposal from the diff editor", { todo: "the double-apply race under load" }, async () => {
    const c = chat();
    await send("edit whole.py please");
    await c.locator('.proposal-card[data-status="pending"]').waitFor({ timeout: 20_000 });
    await modifiedLine("WHOLE_TOP = 'proposed top'").waitFor({ timeout: 15_000 });
    await modifiedLine("WHOLE_TOP = 'proposed top'").click();
    await shot("08a-reviewing-whole");
    await page.keyboard.press("Control+Alt+Y");
    await waitTurnEnds(11);
    assert.equal(readFileSync(join(cs.ws, "whole.py"), "utf8"), WHOLE_PROPOSED, "every hunk landed");
    await c.locator('.proposal-card[data-status="applied"]').last().waitFor({ timeout: 5_000 });
    assert.ok(toolResults().some((t) => t.includes("whole.py: the user accepted your change")), "the model was told");

    await shot("09-accepted-by-key");
  });
});
