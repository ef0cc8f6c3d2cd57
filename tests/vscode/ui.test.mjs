// End-to-end tests of the codeloop extension in a real VS Code (code-server 4.100.x) driven
// in Debian's Chromium. Run `bash scripts/install-vscode-test-env.sh` first, then
// `npm run test:vscode`. Screenshots go to tests/artifacts/vscode/.
import { describe, it, before, after } from "node:test";
import assert from "node:assert/strict";
import { mkdirSync, readFileSync, existsSync, readdirSync, readlinkSync, realpathSync } from "node:fs";
import { join } from "node:path";
import {
  ARTIFACTS, closeWorkbench, missingPrerequisites, openWorkbench, recordedRequests, startCodeServer, startModel, tempDir, workbenchHelpers } from "./harness.mjs";

const missing = missingPrerequisites();
const skip = missing.length ? `missing ${missing.join(", ")}: run scripts/install-vscode-test-env.sh` : false;

// greet.py as the test creates it; must match GREET_PY in scenarios.py
const greetLines = Array.from({ length: 25 }, (_, i) => `# line ${i + 1}`);
greetLines[1] = "GREETING = 'hello'";
greetLines[22] = "FAREWELL = 'bye'";
const GREET_PY = greetLines.join("\n") + "\n";

let dir, model, cs, browser, page;
const shot = (name) => page.screenshot({ path: join(ARTIFACTS, `${name}.png`) });
/** An action in the chat view's title bar (New Chat, Chat History): VS Code's own buttons. */
const viewAction = (label) => page.locator(`.part.sidebar .title-actions a.action-label[aria-label^="${label}"]`).first();
const { chat, runCommand, quickOpen, send, waitFor, turnEnds, waitTurnEnds } = workbenchHelpers(() => page);





/** Pids of the `python -m codeloop lsp` processes serving `folder` (their cwd). */
function serverPids(folder) {
  const want = realpathSync(folder);
  const pids = [];
  for (const name of readdirSync("/proc")) {
    if (!/^\d+$/.test(name)) continue;
    try {
      const argv = readFileSync(`/proc/${name}/cmdline`, "utf8").split("\0");
      if (!(argv.includes("codeloop") && argv.includes("lsp"))) continue;
      if (readlinkSync(`/proc/${name}/cwd`) === want) pids.push(Number(name));
    } catch { /* gone */ }
  }
  return pids;
}


describe("codeloop in VS Code", { skip, timeout: 300_000 }, () => {
  before(async () => {
    mkdirSync(ARTIFACTS, { recursive: true });
    dir = tempDir();
    model = await startModel(dir);
    // autoAllow off: tests 4 and 5 show the approval card (a sandboxed unknown command is not asked).
    // The workspace's own .vscode/settings.json tries to loosen codeloop, as a cloned repository
    // could: those settings are machine-scoped, so VS Code must ignore them (test 1, and the
    // approval cards of tests 4 and 5 would not appear in bypass mode).
    const hostile = { "codeloop.mode": "bypass", "codeloop.permissions": { allow: ["Bash"] }, "codeloop.sandbox": "off" };
    cs = await startCodeServer({ dir, baseUrl: model.baseUrl,
      files: { "greet.py": GREET_PY, ".vscode/settings.json": JSON.stringify(hostile, null, 2) },
      settings: { "codeloop.sandbox": { mode: "auto", autoAllow: false } } });
    ({ browser, page } = await openWorkbench(cs));
  });

  after(() => closeWorkbench({ browser, page, shot, dir }));

  it("1. the panel opens; a prompt streams an answer with a tool card", async () => {
    await quickOpen("greet.py");
    await page.locator(".tab", { hasText: "greet.py" }).first().waitFor({ timeout: 15_000 });
    await runCommand("codeloop: Open Chat");
    const c = chat();
    await c.locator("textarea.input").waitFor({ timeout: 30_000 });
    // the active file is offered as context
    await c.locator(".chips .chip", { hasText: "greet.py" }).waitFor({ timeout: 10_000 });
    await waitFor(async () => (await c.locator(".server-dot.running").count()) > 0, 30_000, "the server to run");
    assert.equal(await c.locator("select.mode").inputValue(), "ask", "a workspace's settings cannot set bypass mode");
    await send("say hello from the test");
    const answer = c.locator(".item.assistant .markdown").last();
    await answer.waitFor({ timeout: 20_000 });
    await shot("01a-streaming");
    await waitTurnEnds(1);
    assert.match(await answer.innerText(), /Hello from the scripted model/);
    assert.equal(await answer.locator("strong").first().innerText(), "Hello");
    assert.ok(await answer.locator("pre.code-block .hljs-keyword").count() > 0, "the code block is highlighted");
    assert.equal(await answer.locator("pre.code-block button.copy").count(), 1, "the code block has a copy button");
    const tool = c.locator('.tool-card[data-tool="read_file"]');
    await tool.waitFor();
    assert.equal(await tool.getAttribute("data-status"), "done");
    assert.match(await tool.locator(".tool-arg").innerText(), /greet\.py/);
    await tool.locator(".tool-head").click();
    const code = c.locator(".tool-details pre.code-view", { hasText: "GREETING" }).first();
    await code.waitFor({ timeout: 5_000 });
    // the file's code, highlighted, not the model's numbered lines
    assert.ok(await code.locator(".hljs-string").count() > 0, "the read is highlighted");
    assert.doesNotMatch(await code.innerText(), /^\s*\d+\t/m, "no line-number prefixes");
    assert.match(await c.locator(".item.user .user-chips").first().innerText(), /greet\.py/, "the context chip was sent");
    // tokens in (with the prompt cache's share: the answer's request repeats the read's prefix) and out
    assert.match(await turnEnds().first().innerText(), /\d in \(\d[\d,]* cached, \d+% hit rate\) · \d[\d,]* out/);
    await shot("01-answer-and-tool-card");
  });

  it("2. a proposal opens the diff editor; accepting one of two hunks writes exactly that hunk", async () => {
    const c = chat();
    await send("change both constants in greet.py");
    const card = c.locator('.proposal-card[data-status="pending"]');
    await card.waitFor({ timeout: 20_000 });
    await page.locator(".tab", { hasText: "proposed by codeloop" }).first().waitFor({ timeout: 15_000 });
    await page.locator(".monaco-diff-editor").first().waitFor({ timeout: 15_000 });
    assert.equal(await card.locator(".hunk").count(), 2, "two hunks");
    // Keep All / Undo All in the diff editor's title bar (shown once the review's context key is
    // set, a moment after the editor opens)
    await assert.doesNotReject(page.locator('.editor-actions [aria-label*="Keep All"]').first().waitFor({ timeout: 10_000 }),
      "Keep All in the diff title bar");
    await assert.doesNotReject(page.locator('.editor-actions [aria-label*="Undo All"]').first().waitFor({ timeout: 10_000 }),
      "Undo All in the diff title bar");
    await shot("02a-diff-editor-and-card");
    await card.locator('.hunk[data-hunk="1"] button.undo').click();
    const accept = c.locator(".proposal-card .accept", { hasText: "Accept 1 of 2 hunks" });
    await assert.doesNotReject(accept.waitFor({ timeout: 5_000 }), "the Accept button counts the kept hunks");
    await shot("02b-one-hunk-unchecked");
    await accept.click();
    const file = join(cs.ws, "greet.py");
    await waitFor(() => readFileSync(file, "utf8").includes("'hello, world'"), 20_000, "the accepted hunk on disk");
    const text = readFileSync(file, "utf8");
    const expected = GREET_PY.replace("GREETING = 'hello'", "GREETING = 'hello, world'");
    assert.equal(text, expected, "exactly the first hunk landed");
    await waitTurnEnds(2);
    assert.equal(await page.locator(".tab", { hasText: "proposed by codeloop" }).count(), 0, "the diff editor was closed");
    await shot("02c-partial-accepted");
  });

  it("3. rejecting with a reason sends the reason to the model", async () => {
    const c = chat();
    await send("rename the constant GREETING");
    const card = c.locator('.proposal-card[data-status="pending"]');
    await card.waitFor({ timeout: 20_000 });
    await card.locator("input.reason").fill("please keep GREETING uppercase");
    await shot("03a-reject-with-reason");
    await card.locator(".reject").click();
    await waitTurnEnds(3);
    await c.locator('.proposal-card[data-status="rejected"]').waitFor({ timeout: 5_000 });
    const reqs = recordedRequests(model.record);
    const told = reqs.some((r) => (r.body?.messages ?? []).some((m) => m.role === "tool" && String(m.content).includes("please keep GREETING uppercase")));
    assert.ok(told, "the model received the reason in a tool result");
    assert.ok(readFileSync(join(cs.ws, "greet.py"), "utf8").includes("GREETING = 'hello, world'"), "nothing changed");
    await shot("03b-rejected");
  });

  it("3b. the proposed side can be edited in the diff editor; the title-bar Keep All applies the user's version", async () => {
    const c = chat();
    await send("append a footer to greet.py");
    await c.locator('.proposal-card[data-status="pending"]').waitFor({ timeout: 20_000 });
    await page.locator(".tab", { hasText: "proposed by codeloop" }).first().waitFor({ timeout: 15_000 });
    const modified = page.locator(".monaco-diff-editor .editor.modified .view-lines").first();
    await modified.click();
    await page.keyboard.press("Control+End");
    await page.keyboard.type("# edited by the user");
    await page.keyboard.press("Enter");
    await shot("03c-editing-the-proposal");
    await page.locator('.editor-actions [aria-label*="Keep All"]').first().click();
    const file = join(cs.ws, "greet.py");
    const expected = GREET_PY.replace("'hello'", "'hello, world'") + "# footer\n# edited by the user\n";
    await waitFor(() => readFileSync(file, "utf8") === expected, 20_000, "the user's version on disk");
    await waitTurnEnds(4);
    await c.locator('.proposal-card[data-status="edited"]').waitFor({ timeout: 5_000 });
    assert.equal(await page.locator(".tab", { hasText: "proposed by codeloop" }).count(), 0, "the diff editor was closed without a save prompt");
    await shot("03d-edited-accepted");
  });

  it("4. a command asks for approval and its output appears in the codeloop terminal", async () => {
    const c = chat();
    await send("run the echo command");
    const card = c.locator(".approval-card:not(.answered)");
    await card.waitFor({ timeout: 20_000 });
    assert.match(await card.locator("pre.command").innerText(), /echo hello-from-codeloop/);
    assert.match(await card.innerText(), new RegExp(cs.ws.replace(/[.*+?^${}()|[\]\\]/g, "\\$&")));
    await shot("04a-approval-card");
    await card.locator(".allow-once").click();
    await waitTurnEnds(5);
    const tool = c.locator('.tool-card[data-tool="run_command"]').last();
    assert.equal(await tool.getAttribute("data-status"), "done");
    const term = page.locator(".terminal-wrapper .xterm-rows").last();
    await waitFor(async () => /second-line-42/.test(await term.innerText().catch(() => "")), 15_000, "the output in the terminal");
    const termText = await term.innerText();
    assert.match(termText, /\$ echo hello-from-codeloop/);
    assert.match(termText, /hello-from-codeloop/);
    assert.match(termText, /exit code 0/);
    await shot("04b-terminal-output");
  });

  it("5. Stop cancels a long command", async () => {
    const c = chat();
    await send("run the long one");
    const card = c.locator(".approval-card:not(.answered)");
    await card.waitFor({ timeout: 20_000 });
    await card.locator(".allow-always").click();
    const term = page.locator(".terminal-wrapper .xterm-rows").last();
    await waitFor(async () => /long-started/.test(await term.innerText().catch(() => "")), 15_000, "the long command to start");
    const tool = c.locator('.tool-card[data-tool="run_command"]').last();
    assert.equal(await tool.getAttribute("data-status"), "running");
    await c.locator("button.stop").waitFor({ state: "visible" });
    await shot("05a-running");
    const t0 = Date.now();
    await c.locator("button.stop").click();
    await waitTurnEnds(6, 15_000);
    assert.ok(Date.now() - t0 < 15_000);
    assert.equal(await tool.getAttribute("data-status"), "cancelled", "a stopped command is not a failure");
    assert.match(await tool.locator(".tool-head").innerText(), /stopped by you/);
    await waitFor(async () => { const t = await term.innerText(); return /\[(killed|exit code)/.test(t.slice(t.lastIndexOf("$ echo long-started"))); }, 10_000, "the terminal to show the command ended");
    await assert.doesNotReject(c.locator("button.stop.hidden").waitFor({ state: "attached", timeout: 5_000 }));
    const local = join(cs.ws, ".codeloop/settings.local.json");
    assert.ok(existsSync(local), "Always allow wrote .codeloop/settings.local.json");
    assert.match(readFileSync(local, "utf8"), /Bash\(/);
    await shot("05b-stopped");
  });

  it("6. the chat survives hiding and showing the panel", async () => {
    await runCommand("View: Show Explorer");
    await page.waitForTimeout(500);
    await runCommand("codeloop: Open Chat");
    const c = chat();
    await c.locator(".item.turnEnd").nth(5).waitFor({ timeout: 15_000 });
    assert.equal(await c.locator(".tool-card").count() >= 4, true);
    await shot("06-restored");
  });

  it("7. New chat clears the panel; History reopens the earlier session", async () => {
    const c = chat();
    // New chat and History are once, in the view's title bar, not again in the panel
    assert.equal(await c.locator('.header button[aria-label="New chat"], .header button[aria-label="Chat history"]').count(), 0);
    await viewAction("New Chat").click();
    await c.locator(".empty").waitFor({ timeout: 10_000 });
    assert.equal(await c.locator(".item").count(), 0);
    await viewAction("Chat History").click();
    const row = c.locator(".history .session", { hasText: "say hello from the test" }).first();
    await row.waitFor({ timeout: 15_000 });
    await shot("07a-history");
    await row.click();
    await c.locator(".item.user", { hasText: "run the long one" }).waitFor({ timeout: 15_000 });
    assert.ok(await c.locator('.tool-card[data-tool="read_file"]').count() >= 1, "tool calls are restored");
    await shot("07b-reopened");
  });

  it("8. when the server crashes, the extension restarts it and the chat goes on", async () => {
    const c = chat();
    const before = serverPids(cs.ws);
    assert.equal(before.length, 1, `one server for the workspace, found ${before}`);
    process.kill(before[0], "SIGKILL");
    await c.locator(".notice.warning", { hasText: "crashed; restarting" }).first().waitFor({ timeout: 30_000 });
    const after = await waitFor(() => { const p = serverPids(cs.ws); return p.length === 1 && p[0] !== before[0] ? p : null; },
      30_000, "a new server process");
    assert.notEqual(after[0], before[0]);
    await shot("08a-restarted");
    await viewAction("New Chat").click();
    await c.locator(".empty").waitFor({ timeout: 10_000 });
    await send("say hello again after the crash");
    await c.locator(".item.turnEnd").first().waitFor({ timeout: 60_000 });
    assert.match(await c.locator(".item.assistant").last().innerText(), /Hello/);
    await shot("08b-chat-after-restart");
  });

  it("9. the header names the sandbox; a code-mode program shows its code, highlighted, and its calls nested", async () => {
    await runCommand("codeloop: Open Chat");
    const c = chat();
    await c.locator("textarea.input").waitFor({ timeout: 30_000 });
    const badge = c.locator(".header .sandbox-badge");
    await badge.waitFor({ timeout: 15_000 });
    assert.match(await badge.getAttribute("title"), /^sandbox: (bubblewrap|Landlock)/);
    assert.match(await badge.innerText(), /bubblewrap|Landlock/);
    await viewAction("New Chat").click();
    await c.locator(".empty").waitFor({ timeout: 10_000 });
    await send("run the program");
    // autoAllow is off here, so the program itself is asked (its calls are decided one by one)
    const ask = c.locator(".approval-card:not(.answered)");
    await ask.waitFor({ timeout: 20_000 });
    await ask.locator(".allow-once").click();
    await c.locator(".item.turnEnd").first().waitFor({ timeout: 60_000 });
    const card = c.locator('.item.tool > .tool-card[data-tool="run_code"]');
    await card.waitFor();
    assert.equal(await card.getAttribute("data-status"), "done");
    const program = card.locator("pre.program");
    assert.match(await program.innerText(), /from codeloop_tools import read_file/);
    assert.ok(await program.locator(".hljs-keyword").count() > 0, "the program is highlighted");
    const nested = card.locator('.tool-children .tool-card[data-tool="read_file"]');
    assert.equal(await nested.count(), 2, "its two calls are nested under its card");
    assert.equal(await c.locator('.log > .item.tool > .tool-card[data-tool="read_file"]').count(), 0, "not at the top level");
    assert.match(await card.locator(":scope > .tool-head").innerText(), /ok/);
    await shot("09-code-mode");
  });
});
