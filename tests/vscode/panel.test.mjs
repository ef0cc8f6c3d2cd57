// The panel's todo list, sub-agent steps, hook runs and slash commands in a real VS Code
// (code-server 4.100.x + Chromium), driven by clicks and keys only. The scripted model
// (scenarios.py: panel) plans with todo_write, delegates to an explore sub-agent that reads a
// file, and runs a command a user-level PreToolUse hook (in a temporary XDG config home)
// blocks; the workspace has a custom command in .codeloop/commands/. Screenshots go to
// tests/artifacts/vscode/pn-*.png.
import { describe, it, before, after } from "node:test";
import assert from "node:assert/strict";
import { mkdirSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import {
  ARTIFACTS, PYTHON, closeWorkbench, missingPrerequisites, openWorkbench, recordedRequests, startCodeServer, startModel, tempDir, workbenchHelpers } from "./harness.mjs";

const missing = missingPrerequisites();
const skip = missing.length ? `missing ${missing.join(", ")}: run scripts/install-vscode-test-env.sh` : false;

// must match scenarios.py (GREET_PY, CHILD_ANSWER)
const greetLines = Array.from({ length: 25 }, (_, i) => `# line ${i + 1}`);
greetLines[1] = "GREETING = 'hello'";
greetLines[22] = "FAREWELL = 'bye'";
const GREET_PY = greetLines.join("\n") + "\n";
const CHILD_ANSWER = "The greeting is 'hello' (greet.py, line 2).";
const SUMMARIZE_MD = "---\ndescription: Summarize a file in one line\nargument-hint: [file]\n---\nSummarize $1 in one line.\n";

let dir, model, cs, browser, page;
const shot = (name) => page.screenshot({ path: join(ARTIFACTS, `pn-${name}.png`) });
const { chat, runCommand, send, waitFor } = workbenchHelpers(() => page);
const viewAction = (label) => page.locator(`.part.sidebar .title-actions a.action-label[aria-label^="${label}"]`).first();
const toolResults = () => recordedRequests(model.record).flatMap((r) => (r.body?.messages ?? []).filter((m) => m.role === "tool").map((m) => String(m.content)));




const turnEnds = () => chat().locator(".log > .item.turnEnd");
/** Waits for the turn started after `before` turns had ended. */
async function waitTurnEnd(before, timeout = 40_000) {
  await assert.doesNotReject(turnEnds().nth(before).waitFor({ timeout }), `turn ${before + 1} did not end`);
}

/** The task card's nested steps, opened (they fold once the sub-agent is done). */
async function openSteps(task) {
  const steps = task.locator(".subagent-steps").first();
  await steps.waitFor({ timeout: 10_000 });
  if ((await steps.getAttribute("data-open")) !== "true") await steps.locator(".steps-head").click();
  await task.locator('.subagent-steps[data-open="true"]').waitFor({ timeout: 5_000 });
  return task.locator(".subagent-steps .steps-body");
}

describe("codeloop panel: todos, sub-agents, hooks, slash commands", { skip, timeout: 300_000 }, () => {
  before(async () => {
    mkdirSync(ARTIFACTS, { recursive: true });
    dir = tempDir();
    // the user's own settings (no consent needed): a PreToolUse hook that blocks every command,
    // and a PostToolUse hook on reads that only succeeds
    const xdg = join(dir, "xdg");
    const claudeHome = join(dir, "claude-home"); // keep the machine's ~/.claude out of it
    mkdirSync(join(xdg, "codeloop"), { recursive: true });
    mkdirSync(claudeHome, { recursive: true });
    // blocks the one command that says "should-be-blocked" (exit 2: the reason goes to the model)
    const block = `${PYTHON} -c "import sys, json; c = json.load(sys.stdin).get('tool_input', {}).get('command', ''); ('should-be-blocked' in c) and (print('echo is not allowed here', file=sys.stderr) or sys.exit(2))"`;
    const ok = `${PYTHON} -c "import sys; sys.stdin.read()"`;
    writeFileSync(join(xdg, "codeloop", "settings.json"), JSON.stringify({
      hooks: {
        PreToolUse: [{ matcher: "Bash", hooks: [{ type: "command", command: block }] }],
        PostToolUse: [{ matcher: "Read", hooks: [{ type: "command", command: ok }] }],
      },
    }, null, 2));
    model = await startModel(dir, "scenarios:panel");
    cs = await startCodeServer({
      dir, baseUrl: model.baseUrl,
      files: { "greet.py": GREET_PY, ".codeloop/commands/summarize.md": SUMMARIZE_MD },
      env: { XDG_CONFIG_HOME: xdg, CLAUDE_CONFIG_DIR: claudeHome },
      // autoAllow off: the sub-agent's command shows its approval card (a sandboxed unknown
      // command is not asked where bubblewrap works)
      settings: { "codeloop.sandbox": { mode: "auto", autoAllow: false } },
    });
    ({ browser, page } = await openWorkbench(cs));
  });

  after(() => closeWorkbench({ browser, page, shot, dir }));

  it("1. / completion and /help come from the server's command table, the custom command with its argument hint", async () => {
    await runCommand("codeloop: Open Chat");
    const c = chat();
    const input = c.locator("textarea.input");
    await input.waitFor({ timeout: 30_000 });
    await waitFor(async () => (await c.locator(".server-dot.running").count()) > 0, 30_000, "the server to run");
    // the empty panel's help line lists the server's commands, the custom one too
    await waitFor(async () => /\/summarize/.test(await c.locator(".empty-help").innerText()), 20_000, "the help line from the server");
    assert.match(await c.locator(".empty-help").innerText(), /\/help .*\/compact|\/compact .*\/help/);
    await input.click();
    await input.pressSequentially("/");
    const menu = c.locator(".slash-menu");
    await menu.locator('.slash-option[data-command="summarize"]').waitFor({ timeout: 10_000 });
    assert.ok(await menu.locator('.slash-option[data-command="help"]').count() === 1, "the built-in commands are offered");
    assert.equal(await menu.locator('.slash-option[data-command="exit"]').count(), 0, "not the CLI's /exit");
    const custom = menu.locator('.slash-option[data-command="summarize"]');
    assert.equal(await custom.locator(".slash-synopsis").innerText(), "[file]");
    assert.match(await custom.innerText(), /Summarize a file in one line/);
    assert.equal(await custom.getAttribute("data-source"), "project");
    await shot("01a-slash-menu");
    await input.pressSequentially("sum");
    // names that start with it first (then a description that has it: /compact "summarise…")
    await waitFor(async () => (await menu.locator(".slash-option").first().getAttribute("data-command")) === "summarize", 5_000, "the menu to narrow to /summarize");
    assert.equal(await menu.locator('.slash-option[data-command="help"]').count(), 0);
    assert.equal(await menu.locator(".slash-option.selected").getAttribute("data-command"), "summarize");
    await shot("01b-slash-filtered");
    await input.press("Tab");
    assert.equal(await input.inputValue(), "/summarize ");
    assert.ok(await menu.isHidden(), "the menu closes once chosen");
    await input.pressSequentially("greet.py");
    let ended = await turnEnds().count();
    await input.press("Enter");
    await waitTurnEnd(ended);
    assert.equal(await c.locator(".item.user .bubble").last().innerText(), "/summarize greet.py");
    assert.match(await c.locator(".item.assistant").last().innerText(), /greet\.py holds two constants/, "the server expanded the custom command");
    // /help: arrows and Enter on a command without arguments run it
    await input.pressSequentially("/hel");
    await menu.locator('.slash-option.selected[data-command="help"]').waitFor({ timeout: 5_000 });
    ended = await turnEnds().count();
    await input.press("Enter");
    await waitTurnEnd(ended);
    const helpText = await c.locator(".item.notice").last().innerText();
    assert.match(helpText, /\/compact/);
    assert.match(helpText, /\/summarize \[file\]/);
    assert.match(helpText, /Summarize a file in one line \(project\)/);
    await shot("01c-help");
  });

  it("2. the todo list is a live checklist, updated twice in a turn; the item in progress says what is happening", async () => {
    const c = chat();
    const ended = await turnEnds().count();
    await send("plan the greeting work");
    const todos = c.locator(".todos");
    await todos.locator(".todo.in_progress", { hasText: "Reading greet.py" }).waitFor({ timeout: 20_000 });
    assert.equal(await todos.locator(".todo").count(), 3);
    assert.deepEqual(await todos.locator(".todo.pending .todo-text").allInnerTexts(), ["Summarize the constants", "Write the report"]);
    assert.match(await todos.locator(".todos-head").innerText(), /Todos 0\/3/);
    await shot("02a-todos-first");
    // the second todo_write: the first item done, the next one in progress
    await todos.locator(".todo.in_progress", { hasText: "Summarizing the constants" }).waitFor({ timeout: 20_000 });
    assert.deepEqual(await todos.locator(".todo.completed .todo-text").allInnerTexts(), ["Read greet.py"]);
    assert.match(await todos.locator(".todos-head").innerText(), /Todos 1\/3\s*· Summarizing the constants/);
    await shot("02b-todos-second");
    await waitTurnEnd(ended);
    assert.equal(await todos.locator(".todo").count(), 3, "the list stays after the turn");
    // folding it and opening it again
    await todos.locator(".todos-head").click();
    assert.equal(await todos.locator(".todo").count(), 0);
    await todos.locator(".todos-head").click();
    assert.equal(await todos.locator(".todo").count(), 3);
    // hidden and shown again, the panel still has it
    await runCommand("View: Show Explorer");
    await page.waitForTimeout(500);
    await runCommand("codeloop: Open Chat");
    await chat().locator(".todos .todo.in_progress", { hasText: "Summarizing the constants" }).waitFor({ timeout: 15_000 });
    await shot("02c-todos-after-hide-show");
  });

  it("3. a sub-agent's steps are nested in its task card: the child's read and its answer; the usage line shows the cache hit rate", async () => {
    const c = chat();
    const ended = await turnEnds().count();
    await send("delegate the greeting search");
    const task = c.locator('.tool-card[data-tool="task"]').last();
    await task.waitFor({ timeout: 20_000 });
    // while it runs, its steps are open under the card
    try {
      await task.locator('.subagent-steps[data-open="true"] .tool-card[data-tool="read_file"]').waitFor({ timeout: 10_000 });
      await shot("03a-subagent-running");
    } catch { /* the sub-agent was quicker than the screenshot */ }
    await waitTurnEnd(ended);
    assert.equal(await task.getAttribute("data-status"), "done");
    assert.match(await task.locator(".steps-head").innerText(), /explore · 1 tool call/);
    const body = await openSteps(task);
    const read = body.locator('.tool-card[data-tool="read_file"]');
    assert.equal(await read.count(), 1, "the child's read is inside the task card");
    assert.equal(await read.getAttribute("data-status"), "done");
    assert.match(await read.locator(".tool-arg").innerText(), /greet\.py/);
    assert.equal(await body.locator(".item.assistant").last().innerText(), CHILD_ANSWER);
    // the user's PostToolUse hook ran for the child's read: a dim line on its card
    const okHook = read.locator('.hook-line.dim[data-hook-event="PostToolUse"]');
    await okHook.waitFor({ timeout: 5_000 });
    assert.equal(await okHook.getAttribute("data-status"), "ok");
    // nothing of the child's at the top of the log
    assert.equal(await c.locator('.log > .item.tool > .tool-card[data-tool="read_file"]').count(), 0);
    assert.match(await c.locator(".item.assistant").last().innerText(), /The sub-agent says: The greeting is 'hello'/);
    // the child's read, expanded inside the card, shows the file
    await read.locator(".tool-head").click();
    await body.locator('.tool-card[data-tool="read_file"] .tool-details pre.code-view', { hasText: "GREETING" }).waitFor({ timeout: 5_000 });
    const usage = await turnEnds().last().locator(".usage").innerText();
    assert.match(usage, /in \(\d[\d,]* cached, \d+% hit rate\) · \d[\d,]* out/, `the usage line: ${usage}`);
    await shot("03b-subagent-steps");
  });

  it("4. a user-level PreToolUse hook that blocks a command shows on the command's card; the model is told why", async () => {
    const c = chat();
    const ended = await turnEnds().count();
    await send("run the blocked command");
    await waitTurnEnd(ended);
    const card = c.locator('.tool-card[data-tool="run_command"]').last();
    const line = card.locator('.hook-line.stands[data-hook-event="PreToolUse"]');
    await line.waitFor({ timeout: 5_000 });
    assert.equal(await line.getAttribute("data-status"), "denied");
    assert.match(await line.innerText(), /PreToolUse/);
    assert.match(await line.innerText(), /echo is not allowed here/);
    assert.equal(await c.locator(".approval-card").count(), 0, "a blocked command asks nothing");
    assert.ok(toolResults().some((t) => t.includes("Blocked by a PreToolUse hook") && t.includes("echo is not allowed here")), "the model got the hook's reason");
    await shot("04-hook-blocked");
  });

  it("4b. a sub-agent's command asks for approval on its own card inside the task card; Stop stops the sub-agent with its parent", async () => {
    const c = chat();
    const ended = await turnEnds().count();
    await send("delegate the long job");
    const task = c.locator('.tool-card[data-tool="task"]').last();
    const approval = task.locator(".subagent-steps .approval-card:not(.answered)");
    await approval.waitFor({ timeout: 20_000 });
    assert.match(await approval.locator("pre.command").innerText(), /sleep 60/);
    assert.match(await c.locator(".pending-bar").innerText(), /Waiting for you \(1\)/);
    await shot("04b-subagent-approval");
    await approval.locator(".allow-once").click();
    const cmd = task.locator('.subagent-steps .tool-card[data-tool="run_command"]');
    await waitFor(async () => (await cmd.getAttribute("data-status").catch(() => null)) === "running", 15_000, "the sub-agent's command to run");
    assert.equal(await task.getAttribute("data-status"), "running");
    const term = page.locator(".terminal-wrapper .xterm-rows").last();
    await waitFor(async () => /sub-started/.test(await term.innerText().catch(() => "")), 15_000, "the sub-agent's command in the terminal");
    await shot("04c-subagent-running");
    await c.locator("button.stop").click();
    await waitTurnEnd(ended, 20_000);
    assert.equal(await task.getAttribute("data-status"), "cancelled");
    const body = await openSteps(task);
    const stopped = body.locator('.tool-card[data-tool="run_command"]');
    assert.equal(await stopped.getAttribute("data-status"), "cancelled", "the sub-agent's command stopped with its parent");
    assert.match(await stopped.locator(".tool-head").innerText(), /stopped by you/);
    assert.match(await stopped.locator(".tool-head").innerText(), /allowed once/);
    assert.equal(await task.locator(".steps-head .codicon-loading").count(), 0, "the steps are not spinning any more");
    await shot("04d-subagent-stopped");
  });

  it("5. a reopened session shows the todo list and the nested steps again, and never the turn's context block", async () => {
    const c = chat();
    await viewAction("New Chat").click();
    await c.locator(".empty").waitFor({ timeout: 10_000 });
    assert.ok(await c.locator(".todos").isHidden(), "a new chat has no todo list");
    await viewAction("Chat History").click();
    const row = c.locator(".history .session").first();
    await row.waitFor({ timeout: 15_000 });
    // the session's title is the first message's words (the custom command's prompt), not its context block
    assert.equal(await row.locator(".session-title").innerText(), "Summarize greet.py in one line.");
    await shot("05a-history");
    await row.click();
    await c.locator(".item.user", { hasText: "delegate the greeting search" }).waitFor({ timeout: 15_000 });
    await c.locator(".todos .todo.in_progress", { hasText: "Summarizing the constants" }).waitFor({ timeout: 10_000 });
    assert.deepEqual(await c.locator(".todos .todo.completed .todo-text").allInnerTexts(), ["Read greet.py"]);
    const users = await c.locator(".item.user .bubble").allInnerTexts();
    assert.ok(users.includes("plan the greeting work") && users.includes("delegate the greeting search"), JSON.stringify(users));
    for (const u of users) assert.doesNotMatch(u, /codeloop-context|<\/?context/, "the context block the server adds is not shown");
    const task = c.locator('.tool-card[data-tool="task"]', { hasText: "find the greeting" });
    assert.equal(await task.count(), 1);
    const body = await openSteps(task);
    assert.equal(await body.locator('.tool-card[data-tool="read_file"]').count(), 1, "the child's read is nested again");
    assert.equal(await body.locator(".item.assistant").last().innerText(), CHILD_ANSWER);
    // the stopped sub-agent's command, nested and stopped
    const long = c.locator('.tool-card[data-tool="task"]', { hasText: "run the long job" });
    const longBody = await openSteps(long);
    assert.equal(await longBody.locator('.tool-card[data-tool="run_command"]').count(), 1);
    await shot("05-reopened");
  });
});
