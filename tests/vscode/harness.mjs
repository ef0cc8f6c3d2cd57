// Helpers for the VS Code UI tests: the scripted model, code-server with the packaged
// extension, and Chromium driven by playwright-core. Nothing here downloads anything.
import assert from "node:assert/strict";
import { spawn, execFileSync } from "node:child_process";
import { createServer } from "node:net";
import { existsSync, mkdirSync, mkdtempSync, writeFileSync, readFileSync, rmSync } from "node:fs";
import { tmpdir, homedir } from "node:os";
import { join, resolve, dirname } from "node:path";
import { fileURLToPath } from "node:url";
import { chromium } from "playwright-core";

export const ROOT = resolve(dirname(fileURLToPath(import.meta.url)), "../..");
export const ARTIFACTS = join(ROOT, "tests/artifacts/vscode");
const CS_VERSION = process.env.CODE_SERVER_VERSION ?? "4.100.3";
export const CODE_SERVER = join(process.env.CODELOOP_CACHE ?? join(homedir(), ".cache/codeloop"), `code-server-${CS_VERSION}`, "package/out/node/entry.js");
export const VSIX = join(ROOT, "vscode-extension/codeloop.vsix");
export const PYTHON = process.env.CODELOOP_PYTHON ?? (existsSync(join(ROOT, ".venv/bin/python")) ? join(ROOT, ".venv/bin/python") : "python3");
export const CHROMIUM = process.env.CHROMIUM ?? "/usr/bin/chromium";

export function missingPrerequisites() {
  const missing = [];
  if (!existsSync(CODE_SERVER)) missing.push(`code-server (${CODE_SERVER})`);
  if (!existsSync(VSIX)) missing.push(`the packaged extension (${VSIX})`);
  if (!existsSync(CHROMIUM)) missing.push(`chromium (${CHROMIUM})`);
  return missing;
}

export function freePort() {
  return new Promise((res, rej) => {
    const s = createServer();
    s.once("error", rej);
    s.listen(0, "127.0.0.1", () => { const { port } = s.address(); s.close(() => res(port)); });
  });
}

const children = [];
export function stopAll() {
  for (const c of children.splice(0)) {
    try { process.kill(-c.pid, "SIGTERM"); } catch { /* gone */ }
  }
}

function spawnGroup(cmd, args, opts) {
  const child = spawn(cmd, args, { ...opts, detached: true, stdio: ["ignore", "pipe", "pipe"] });
  children.push(child);
  return child;
}

/** Starts tests/scripted_model with a scenario of tests/vscode/scenarios.py; resolves {baseUrl, record}. */
export function startModel(dir, scenario = "scenarios:ui") {
  const record = join(dir, "model-requests.jsonl");
  const child = spawnGroup(PYTHON, ["-m", "scripted_model", "--scenario", scenario, "--port", "0", "--record", record], {
    cwd: ROOT, env: { ...process.env, PYTHONPATH: [join(ROOT, "tests"), join(ROOT, "tests/vscode")].join(":") },
  });
  let err = "";
  child.stderr.on("data", (d) => { err += d; });
  return new Promise((res, rej) => {
    let out = "";
    const timer = setTimeout(() => rej(new Error(`scripted model did not start: ${err}`)), 20_000);
    child.stdout.on("data", (d) => {
      out += d;
      const m = out.match(/READY (\S+)/);
      if (m) { clearTimeout(timer); res({ baseUrl: m[1], record, child }); }
    });
    child.on("exit", (code) => rej(new Error(`scripted model exited ${code}: ${err}`)));
  });
}

/** Model requests recorded so far (JSON lines). */
export function recordedRequests(record) {
  if (!existsSync(record)) return [];
  return readFileSync(record, "utf8").split("\n").filter(Boolean).map((l) => JSON.parse(l));
}

/** A temp workspace, user settings, the vsix installed; code-server listening. `files`: paths
 * relative to the workspace (folders are made); `env`: more environment for code-server and
 * so for the language server it starts (e.g. XDG_CONFIG_HOME for user-level hooks). */
export async function startCodeServer({ dir, baseUrl, files, settings = {}, env = {} }) {
  const ws = join(dir, "workspace");
  const ud = join(dir, "user-data");
  const ext = join(dir, "extensions");
  mkdirSync(ws, { recursive: true });
  mkdirSync(join(ud, "User"), { recursive: true });
  mkdirSync(ext, { recursive: true });
  for (const [name, text] of Object.entries(files)) {
    mkdirSync(dirname(join(ws, name)), { recursive: true });
    writeFileSync(join(ws, name), text);
  }
  writeFileSync(join(ud, "User/settings.json"), JSON.stringify({
    "security.workspace.trust.enabled": false,
    "codeloop.pythonPath": PYTHON,
    "codeloop.baseUrl": baseUrl,
    "codeloop.model": "scripted-model",
    "codeloop.apiKeyEnvVar": "CODELOOP_UI_TEST_KEY",
    "workbench.startupEditor": "none",
    "workbench.tips.enabled": false,
    "workbench.enableExperiments": false,
    "workbench.welcomePage.walkthroughs.openOnInstall": false,
    "extensions.ignoreRecommendations": true,
    "extensions.autoUpdate": false,
    "telemetry.telemetryLevel": "off",
    "terminal.integrated.gpuAcceleration": "off",
    "files.autoSave": "off",
    "chat.commandCenter.enabled": false,
    "window.commandCenter": false,
    "editor.minimap.enabled": false,
    ...settings,
  }, null, 2));
  execFileSync(process.execPath, [CODE_SERVER, "--user-data-dir", ud, "--extensions-dir", ext, "--install-extension", VSIX], { stdio: "pipe" });
  const port = await freePort();
  const child = spawnGroup(process.execPath, [CODE_SERVER, "--auth", "none", "--bind-addr", `127.0.0.1:${port}`,
    "--user-data-dir", ud, "--extensions-dir", ext, "--disable-telemetry", "--disable-update-check",
    "--disable-workspace-trust", ws], {
    cwd: dir, env: { ...process.env, CODELOOP_UI_TEST_KEY: "test-key-123", OPENAI_API_KEY: "", ...env },
  });
  let log = "";
  child.stdout.on("data", (d) => { log += d; });
  child.stderr.on("data", (d) => { log += d; });
  const url = `http://127.0.0.1:${port}/`;
  const deadline = Date.now() + 60_000;
  for (;;) {
    try { const r = await fetch(url + "healthz"); if (r.ok) break; } catch { /* not yet */ }
    if (Date.now() > deadline) throw new Error(`code-server did not start:\n${log}`);
    await new Promise((r) => setTimeout(r, 300));
  }
  return { url, ws, ud, ext, child, log: () => log };
}

export async function launchBrowser() {
  const browser = await chromium.launch({
    executablePath: CHROMIUM,
    args: ["--no-sandbox", "--disable-gpu", "--disable-background-networking", "--disable-component-update", "--disable-sync", "--no-first-run", "--disable-dev-shm-usage"],
  });
  const context = await browser.newContext({ viewport: { width: 1500, height: 950 } });
  await context.grantPermissions(["clipboard-read", "clipboard-write"]).catch(() => undefined);
  const page = await context.newPage();
  return { browser, page };
}

/** Chromium on the workbench of `cs`'s workspace, once codeloop's status item shows. */
export async function openWorkbench(cs) {
  const { browser, page } = await launchBrowser();
  await page.goto(`${cs.url}?folder=${encodeURIComponent(cs.ws)}`);
  await page.locator(".monaco-workbench").waitFor({ timeout: 60_000 });
  await page.locator(".statusbar-item", { hasText: "codeloop" }).first().waitFor({ timeout: 60_000 });
  return { browser, page };
}

/** After a suite: a last screenshot (`shot`), the browser closed, the servers stopped, `dir` removed
 * (kept with CODELOOP_KEEP_TMP). */
export async function closeWorkbench({ browser, page, shot, dir }) {
  try { if (page) await shot("zz-final"); } catch { /* ignore */ }
  await browser?.close().catch(() => undefined);
  stopAll();
  if (process.env.CODELOOP_KEEP_TMP) console.log(`kept ${dir}`); else cleanDir(dir);
}

export function tempDir() {
  return mkdtempSync(join(tmpdir(), "codeloop-ui-"));
}

export function cleanDir(dir) {
  try { rmSync(dir, { recursive: true, force: true }); } catch { /* ignore */ }
}

/** What every suite does to the workbench of `getPage()` (called each time: suites set their
 * page in `before`): the chat panel's frame, the command palette, quick open, sending a chat
 * message, the turns that ended, and polling for a condition. */
export function workbenchHelpers(getPage) {
  const chat = () => getPage().frameLocator('iframe.webview[src*="extensionId=codeloop.codeloop"]').frameLocator("iframe#active-frame");
  async function palette(text) {
    const page = getPage();
    await page.keyboard.press("F1");
    const box = page.locator(".quick-input-widget input.input");
    await box.waitFor({ state: "visible", timeout: 10_000 });
    await box.fill(text);
    return box;
  }
  async function runCommand(title) {
    await palette(`>${title}`);
    await getPage().locator(".quick-input-list .monaco-list-row").first().waitFor({ timeout: 10_000 });
    await getPage().keyboard.press("Enter");
  }
  /** Open a workspace file by name and wait for its editor tab. */
  async function quickOpen(name) {
    await palette(name);
    await getPage().locator(".quick-input-list .monaco-list-row", { hasText: name }).first().waitFor({ timeout: 10_000 });
    await getPage().keyboard.press("Enter");
    await getPage().locator(".tab", { hasText: name.split("/").pop() }).first().waitFor({ timeout: 15_000 });
  }
  async function send(text) {
    const input = chat().locator("textarea.input");
    await input.fill(text);
    await input.press("Enter");
  }
  const turnEnds = () => chat().locator(".item.turnEnd");
  /** Waits until `n` turns have ended. */
  async function waitTurnEnds(n, timeout = 30_000) {
    await assert.doesNotReject(turnEnds().nth(n - 1).waitFor({ timeout }), `turn ${n} did not end`);
  }
  return { chat, palette, runCommand, quickOpen, send, turnEnds, waitTurnEnds, waitFor };
}

/** Poll `cond` every 200 ms until it gives something truthy (returned) or `timeout` ms pass. */
export async function waitFor(cond, timeout, what) {
  const deadline = Date.now() + timeout;
  for (;;) {
    const v = await cond();
    if (v) return v;
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 200));
  }
}
