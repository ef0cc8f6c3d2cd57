// The MCP servers in the VS Code panel (real code-server + Chromium, a real MCP server: the
// edge server on the official SDK): the workspace's server asks for trust with a card, the
// servers section shows its state and tool count and restarts it, and the tool card of a
// call names the server. Run `bash scripts/install-vscode-test-env.sh` first.
import { describe, it, before, after } from "node:test";
import assert from "node:assert/strict";
import { mkdirSync, readFileSync, existsSync } from "node:fs";
import { join } from "node:path";
import {
  ARTIFACTS, PYTHON, ROOT, closeWorkbench, missingPrerequisites, openWorkbench, startCodeServer, startModel, tempDir, workbenchHelpers } from "./harness.mjs";

const missing = missingPrerequisites();
const skip = missing.length ? `missing ${missing.join(", ")}: run scripts/install-vscode-test-env.sh` : false;
const EDGE = join(ROOT, "tests/mcp_servers/edge_server.py");

let dir, model, cs, browser, page;
const shot = (name) => page.screenshot({ path: join(ARTIFACTS, `mcp-${name}.png`) });
const { chat, runCommand, waitFor } = workbenchHelpers(() => page);



describe("MCP servers in the VS Code panel", { skip, timeout: 300_000 }, () => {
  before(async () => {
    mkdirSync(ARTIFACTS, { recursive: true });
    dir = tempDir();
    // The user's own folders for this run (the consent of a non-git workspace is kept there).
    process.env.XDG_DATA_HOME = join(dir, "data");
    process.env.XDG_CONFIG_HOME = join(dir, "config");
    model = await startModel(dir, "scenarios:mcp");
    const mcpJson = JSON.stringify({ mcpServers: { proj: { command: PYTHON, args: [EDGE, "--name", "proj"] } } }, null, 2);
    cs = await startCodeServer({ dir, baseUrl: model.baseUrl, files: { ".mcp.json": mcpJson, "README.md": "hi\n" } });
    ({ browser, page } = await openWorkbench(cs));
  });

  after(() => closeWorkbench({ browser, page, shot, dir }));

  it("1. the workspace's server asks for trust with a card; allowed, it starts", async () => {
    await runCommand("codeloop: Open Chat");
    const c = chat();
    await c.locator("textarea.input").waitFor({ timeout: 30_000 });
    const card = c.locator('.trust-card[data-kind="Trust"]');
    await card.waitFor({ timeout: 30_000 });
    assert.match(await card.locator("strong").innerText(), /Trust MCP server proj\?/);
    assert.match(await card.innerText(), /\.mcp\.json defines MCP server 'proj'/);
    assert.match(await card.locator("pre.command").innerText(), /edge_server\.py --name proj/);
    // the servers section says it waits for the user
    await c.locator(".mcp-servers .mcp-head", { hasText: "1 waits for you" }).waitFor({ timeout: 10_000 });
    await shot("01a-trust-card");
    await card.locator("button.trust-allow").click();
    await c.locator('.trust-card[data-answer="allow_always"]').waitFor({ timeout: 10_000 });
    await c.locator(".mcp-servers .mcp-head", { hasText: "1 ready" }).waitFor({ timeout: 30_000 });
    await shot("01b-trusted");
  });

  it("2. the servers section shows the state and tool count, and restarts a server", async () => {
    const c = chat();
    await c.locator(".mcp-servers .mcp-head").click();
    const row = c.locator('.mcp-server[data-server="proj"]');
    await row.waitFor({ timeout: 5_000 });
    assert.equal(await row.getAttribute("data-status"), "ready");
    assert.equal(await row.locator(".mcp-status").innerText(), "ready · 12 tools");
    await shot("02a-servers-open");
    await row.locator("button.mcp-restart").click();
    // it goes through "starting" and comes back ready
    await waitFor(async () => (await row.getAttribute("data-status")) === "starting", 10_000, "the restart to begin")
      .catch(() => undefined); // a fast restart may be missed between two renders
    await waitFor(async () => (await c.locator('.mcp-server[data-server="proj"][data-status="ready"]').count()) === 1,
      30_000, "proj ready again");
    await shot("02b-restarted");
  });

  it("3. a call of its tool asks, and its card names the server", async () => {
    const c = chat();
    const input = c.locator("textarea.input");
    await input.fill("call the project tool");
    await input.press("Enter");
    const approval = c.locator('.approval-card[data-tool="mcp__proj__echo"]');
    await approval.waitFor({ timeout: 30_000 });
    assert.match(await approval.locator("strong").innerText(), /Call proj's tool\?/);
    assert.match(await approval.locator("pre.command").innerText(), /mcp__proj__echo/);
    await shot("03a-approval");
    await approval.locator("button.allow-once").click();
    const tool = c.locator('.tool-card[data-tool="mcp__proj__echo"][data-status="done"]');
    await tool.waitFor({ timeout: 30_000 });
    assert.equal(await tool.locator(".tool-origin").innerText(), "proj");
    await c.locator(".item.assistant", { hasText: "Tool said: hello from the panel" }).waitFor({ timeout: 20_000 });
    await shot("03b-tool-card");
    // the answer is remembered in the user's own store (the workspace is not a git repository)
    const consent = join(dir, "data", "codeloop", "consent");
    assert.ok(existsSync(consent), "the consent store exists");
    assert.ok(readFileSync(join(cs.ws, ".mcp.json"), "utf8").includes("proj"));
  });
});
