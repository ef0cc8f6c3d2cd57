// Fast tests of the extension's pure logic, on the esbuild output in out/ (npm run build).
import { test } from "node:test";
import assert from "node:assert/strict";
import { createRequire } from "node:module";

const require = createRequire(import.meta.url);
const model = require("../out/shared/model.js");
const { serverSettings, redact } = require("../out/settings.js");
const { toLspDiagnostic, requestedUris } = require("../out/diagnostics.js");

test("streamed text deltas build one assistant message; a tool call closes it", () => {
  const s = model.emptyState();
  model.reduce(s, { a: "user", text: "fix it" });
  model.reduce(s, { a: "event", event: { type: "textDelta", text: "Look" } });
  const changed = model.reduce(s, { a: "event", event: { type: "textDelta", text: "ing." } });
  assert.equal(s.items.length, 2);
  assert.deepEqual(changed, [s.items[1].id]);
  assert.equal(s.items[1].text, "Looking.");
  model.reduce(s, { a: "event", event: { type: "toolCallStarted", callId: "c1", name: "read_file", summary: "a.py" } });
  assert.equal(s.items[1].streaming, false);
  model.reduce(s, { a: "event", event: { type: "toolCallFinished", callId: "c1", name: "read_file", ok: false, summary: "no such file" } });
  assert.equal(s.items[2].status, "failed");
  model.reduce(s, { a: "event", event: { type: "textDelta", text: "Sorry" } });
  assert.equal(s.items.length, 4, "text after a tool call is a new message");
  assert.equal(s.title, "fix it");
});

test("a retry discards the text streamed since the last tool call", () => {
  const s = model.emptyState();
  model.reduce(s, { a: "event", event: { type: "textDelta", text: "half an ans" } });
  const changed = model.reduce(s, { a: "event", event: { type: "retry", attempt: 1, maxAttempts: 5, delay: 1, reason: "429" } });
  assert.deepEqual(changed, ["*"]);
  assert.deepEqual(s.items.map((i) => i.kind), ["retry"]);
});

test("turnEnd stops the turn and marks unfinished cards", () => {
  const s = model.emptyState();
  model.reduce(s, { a: "turnStarted", sessionId: "s1", turnId: "t-1" });
  model.reduce(s, { a: "event", event: { type: "toolCallStarted", callId: "c1", name: "run_command", summary: "sleep 9" } });
  model.reduce(s, { a: "approval", id: "ap-1", params: { kind: "Bash", target: "rm x" } });
  model.reduce(s, { a: "event", event: { type: "turnEnd", status: "cancelled", promptTokens: 1200, completionTokens: 30, cost: 0.0012 } });
  assert.equal(s.running, undefined);
  assert.equal(s.items[0].status, "cancelled", "a stopped command is not a failure");
  assert.equal(s.items[0].resultSummary, "stopped by you");
  assert.equal(s.items[1].answer, "cancelled");
  assert.equal(model.formatUsage(s.items[2]), "1,200 in · 30 out · $0.0012");
  assert.equal(model.formatUsage({ promptTokens: 2000, cachedTokens: 1500, completionTokens: 10 }),
    "2,000 in (1,500 cached, 75% hit rate) · 10 out");
});

test("proposals: review card, status updates, auto-accepted ones appear from resolved", () => {
  const s = model.emptyState();
  const params = { proposalId: "p-1", tool: "edit_file", files: [{ uri: "file:///w/a.py", path: "a.py", isNew: false, diff: "", hunks: [{ id: 0, header: "@@", diff: "" }] }] };
  model.reduce(s, { a: "proposal", params, review: true });
  assert.equal(s.items[0].status, "pending");
  model.reduce(s, { a: "proposalStatus", proposalId: "p-1", status: "applied", message: "ok" });
  assert.equal(s.items[0].status, "applied");
  model.reduce(s, { a: "proposalStatus", proposalId: "p-2", status: "applied", message: "a.py: applied" });
  assert.equal(s.items.length, 2);
  assert.equal(s.items[1].review, false);
});

test("a reopened transcript becomes user, assistant and tool items", () => {
  const items = model.itemsFromTranscript([
    { role: "system", content: "sys" },
    { role: "user", content: [{ type: "text", text: "hi" }] },
    { role: "assistant", content: null, tool_calls: [{ id: "c1", function: { name: "run_command", arguments: "{\"command\": \"ls\"}" } }] },
    { role: "tool", tool_call_id: "c1", content: "a.py\nb.py" },
    { role: "assistant", content: "Two files." },
  ]);
  assert.deepEqual(items.map((i) => i.kind), ["user", "tool", "assistant"]);
  assert.equal(items[1].summary, "ls");
  assert.equal(items[1].resultSummary, "a.py");
});

test("server settings: empty values left out, key from the secret store or the named env var", () => {
  const cfg = { model: "", baseUrl: "http://x/v1", mode: "plan", autoAccept: false, maxTurns: 50, permissions: {}, contextWindow: null, apiKeyEnvVar: "MY_KEY" };
  const get = (k) => cfg[k];
  assert.deepEqual(serverSettings(get, { MY_KEY: "env-key" }), { baseUrl: "http://x/v1", mode: "plan", autoAccept: false, maxTurns: 50, apiKey: "env-key" });
  assert.equal(serverSettings(get, { MY_KEY: "env-key" }, "stored").apiKey, "stored");
  assert.equal(serverSettings(get, { OPENAI_API_KEY: "other" }).apiKey, undefined);
  assert.equal(redact({ apiKey: "secret", mode: "ask" }).apiKey, "***");
});

test("diagnostics: vscode severities map to LSP, uris come as strings or {uri, version}", () => {
  const d = toLspDiagnostic({ range: { start: { line: 1, character: 2 }, end: { line: 1, character: 5 } }, message: "bad", severity: 0, source: "ruff", code: { value: "E1" } });
  assert.deepEqual(d, { range: { start: { line: 1, character: 2 }, end: { line: 1, character: 5 } }, message: "bad", severity: 1, source: "ruff", code: "E1" });
  assert.equal(toLspDiagnostic({ ...d, severity: 3, code: undefined }).severity, 4);
  assert.deepEqual(requestedUris({ uris: [{ uri: "file:///a", version: 3 }, "file:///b"] }), ["file:///a", "file:///b"]);
  assert.deepEqual(requestedUris(null), []);
});

const focused = require("../out/focused.js");

test("focused turns: the label the panel shows for a code action's turn", () => {
  const diag = { message: "Expected comma\nmore detail", range: { start: { line: 3, character: 2 }, end: { line: 3, character: 11 } } };
  assert.equal(focused.focusedLabel("codeloop.fixDiagnostic", { uri: "file:///w/a.json", diagnostic: diag }, "a.json"),
    "Fix with codeloop: Expected comma (a.json:4)");
  const range = { start: { line: 0, character: 0 }, end: { line: 2, character: 0 } };
  assert.equal(focused.focusedLabel("codeloop.explain", { uri: "file:///w/b.py", range }, "b.py"), "Explain with codeloop: b.py:1-2",
    "a selection ending at column 0 does not count the next line");
  assert.equal(focused.focusedLabel("codeloop.ask", { uri: "file:///w/b.py", range, instruction: "simplify" }, "b.py"), "simplify (b.py:1-2)");
  assert.equal(focused.where("b.py", { start: { line: 4, character: 1 }, end: { line: 4, character: 9 } }), "b.py:5");
});

test("focused turns: the instruction is added to the command's argument; malformed arguments are ignored", () => {
  const args = [{ uri: "file:///w/b.py", range: { start: { line: 0, character: 0 }, end: { line: 0, character: 3 } } }, "extra"];
  const out = focused.withInstruction(args, "add error handling");
  assert.deepEqual(out[0], { ...args[0], instruction: "add error handling" });
  assert.equal(out[1], "extra");
  assert.equal(args[0].instruction, undefined, "the original argument is not mutated");
  assert.equal(focused.focusedArg([]), undefined);
  assert.equal(focused.focusedArg([{ range: {} }]), undefined);
  assert.equal(focused.focusedArg(["x"]), undefined);
  assert.deepEqual([...focused.FOCUSED_COMMANDS].sort(), ["codeloop.ask", "codeloop.explain", "codeloop.fixDiagnostic"]);
});

test("one card per command: the approval sits on its tool card, then collapses into it with the decision", () => {
  const s = model.emptyState();
  model.reduce(s, { a: "event", event: { type: "toolCallStarted", callId: "c1", name: "run_command", summary: "echo a && echo b" } });
  const changed = model.reduce(s, { a: "approval", id: "ap-1", params: { kind: "Bash", target: "echo a && echo b", callId: "c1", reason: "x" } });
  assert.equal(s.items.length, 1, "no second card");
  assert.deepEqual(changed, [s.items[0].id]);
  assert.equal(s.items[0].approval.target, "echo a && echo b");
  model.reduce(s, { a: "approvalStatus", id: "ap-1", answer: "allow_once" });
  assert.equal(s.items[0].approval.answer, "allow_once");
  model.reduce(s, { a: "event", event: { type: "toolCallFinished", callId: "c1", name: "run_command", ok: true, summary: "exit 0 · 2 lines", result: "a\nb" } });
  assert.equal(s.items[0].status, "done");
  // a denied command is "denied", not a red failure
  model.reduce(s, { a: "event", event: { type: "toolCallStarted", callId: "c2", name: "run_command", summary: "rm x" } });
  model.reduce(s, { a: "approval", id: "ap-2", params: { kind: "Bash", target: "rm x", callId: "c2" } });
  model.reduce(s, { a: "approvalStatus", id: "ap-2", answer: "deny" });
  model.reduce(s, { a: "event", event: { type: "toolCallFinished", callId: "c2", name: "run_command", ok: false, summary: "The user denied permission", result: "The user denied permission to run this" } });
  assert.equal(s.items[1].status, "denied");
  // a call the server stopped: "stopped by you"
  model.reduce(s, { a: "event", event: { type: "toolCallStarted", callId: "c3", name: "run_command", summary: "sleep 9" } });
  model.reduce(s, { a: "event", event: { type: "toolCallFinished", callId: "c3", name: "run_command", ok: false, summary: "cancelled", result: "Cancelled: the user stopped this turn before the tool finished." } });
  assert.equal(s.items[2].status, "cancelled");
  assert.equal(s.items[2].resultSummary, "stopped by you");
  // an approval no card claims still gets a card of its own
  model.reduce(s, { a: "approval", id: "ap-3", params: { kind: "Read", target: ".env" } });
  assert.equal(s.items[3].kind, "approval");
});

const { plainReasons } = require("../out/shared/reasons.js");

test("approval reasons in plain words, grouped, once per command", () => {
  const r = plainReasons("`echo watcher-up` needs approval: no allow rule matches it; `sleep 30` needs approval: no allow rule matches it; `sleep 30` needs approval: no allow rule matches it", "echo watcher-up & sleep 30");
  assert.deepEqual(r, [{ why: "Not on your allow list", commands: ["echo watcher-up", "sleep 30"] }]);
  assert.deepEqual(plainReasons("`rm x` needs approval (rule Bash(rm:*))", "rm x"), [{ why: "Your rule Bash(rm:*) says to ask", commands: [] }]);
  assert.deepEqual(plainReasons("`curl x | sh` downloads and runs code: this always needs approval", "curl x | sh"),
    [{ why: "Always asks: it downloads and runs code", commands: [] }]);
  assert.deepEqual(plainReasons(".env may hold secrets: reading it needs approval", ".env"), [{ why: ".env may hold secrets: reading it", commands: [] }]);
  assert.deepEqual(plainReasons(undefined), []);
});

const mentions = require("../out/shared/mentions.js");

test("@-mentions: found in the text, completed at the caret", () => {
  assert.deepEqual(mentions.findMentions("look at @src/a.py and @problems, not me@example.com; @src/a.py again"), ["src/a.py", "problems"]);
  assert.deepEqual(mentions.mentionAt("explain @twe", 12), { start: 8, query: "twe" });
  assert.equal(mentions.mentionAt("mail me@x", 9), undefined, "an @ inside a word is not a mention");
  assert.deepEqual(mentions.applyMention("explain @twe now", { start: 8, query: "twe" }, "tweak.py"), { text: "explain @tweak.py now", caret: 18 });
  assert.deepEqual(mentions.applyMention("see @sr", { start: 4, query: "sr" }, "src/"), { text: "see @src/", caret: 9 }, "a folder: go on typing into it");
});

test("a reopened user message with context parts and an image shows chips and a thumbnail, not the context text", () => {
  const items = model.itemsFromTranscript([{ role: "user", content: [
    { type: "text", text: "explain @greet.py" },
    { type: "text", text: '<context kind="file" label="greet.py">\nGREETING = 1\n</context>' },
    { type: "image_url", image_url: { url: "data:image/png;base64,AAAA" } },
  ] }]);
  assert.equal(items[0].text, "explain @greet.py");
  assert.deepEqual(items[0].chips, [{ kind: "file", label: "greet.py" }]);
  assert.deepEqual(items[0].images, [{ mimeType: "image/png", data: "AAAA" }]);
});

test("a workspace's trust question survives a new chat and a turn's end; tool cards keep their server", () => {
  const s = model.emptyState();
  model.reduce(s, { a: "approval", id: "ap-1", params: { kind: "Trust", target: "runs `uvx mcp-server-git`", subject: "MCP server git",
    reason: ".mcp.json defines MCP server 'git', which runs `uvx mcp-server-git`. Allow it to run in this project?" } });
  model.reduce(s, { a: "approval", id: "ap-2", params: { kind: "Bash", target: "rm x" } });
  model.reduce(s, { a: "event", event: { type: "turnEnd", status: "done" } });
  const trust = s.items.find((i) => i.id === "ap-1" || (i.kind === "approval" && i.approvalKind === "Trust"));
  assert.equal(trust.answer, undefined, "still waiting for the user");
  assert.equal(trust.subject, "MCP server git");
  assert.equal(s.items.find((i) => i.kind === "approval" && i.approvalKind === "Bash").answer, "cancelled");
  model.reduce(s, { a: "reset" });
  assert.deepEqual(s.items.map((i) => [i.kind, i.approvalKind]), [["approval", "Trust"]]);
  model.reduce(s, { a: "approvalStatus", id: trust.id, answer: "allow_always" });
  model.reduce(s, { a: "reset" });
  assert.deepEqual(s.items, [], "answered: gone with the chat");
  model.reduce(s, { a: "event", event: { type: "toolCallStarted", callId: "c1", name: "mcp__git__status", summary: "", origin: "git" } });
  assert.equal(s.items[0].origin, "git");
});

test("the MCP servers section's words", () => {
  const servers = [
    { name: "git", status: "ready", source: "project", transport: "stdio", toolCount: 12 },
    { name: "docs", status: "failed", source: "user", transport: "http", toolCount: 0, lastError: "failed to start: 401", retryIn: 4.2 },
    { name: "proj", status: "needs-consent", source: "project", transport: "stdio", toolCount: 0 },
  ];
  assert.equal(model.mcpSummary(servers), "MCP servers (3) · 1 ready · 1 failed · 1 waits for you");
  assert.equal(model.mcpStatusText(servers[0]), "ready · 12 tools");
  assert.equal(model.mcpStatusText(servers[1]), "failed: failed to start: 401 (retrying in 4 s)");
  assert.equal(model.mcpStatusText(servers[2]), "waits for your consent");
});

test("the MCP settings go to the server", () => {
  const cfg = { mcpServers: { time: { command: "uvx", args: ["mcp-server-time"] } }, trustProject: true, toolSearchShare: 0.2 };
  const out = serverSettings((k) => cfg[k], {}, undefined);
  assert.deepEqual(out.mcpServers, cfg.mcpServers);
  assert.equal(out.trustProject, true);
  assert.equal(out.toolSearchShare, 0.2);
});

test("rewind targets give the panel's user messages their checkpoints, matched from the end by their words", () => {
  const s = model.emptyState();
  model.reduce(s, { a: "user", text: "first task" });
  model.reduce(s, { a: "user", text: "/mode plan" }); // a slash command: not a message
  model.reduce(s, { a: "user", text: "continue" });
  model.reduce(s, { a: "user", text: "continue" });
  const t = (id, number, words) => ({ checkpointId: id, kind: "message", number, index: 0, text: words, words, ts: "", files: 1 });
  const changed = model.reduce(s, { a: "checkpoints", targets: [
    t("c1", 1, "first task"), t("c4", 2, "continue"), t("c7", 3, "continue  "),
    { checkpointId: "c9", kind: "undo", number: null, index: null, text: "undo", words: "", ts: "", files: 0 },
  ] });
  const users = s.items.filter((i) => i.kind === "user");
  assert.deepEqual(users.map((u) => u.checkpoint?.id), ["c1", undefined, "c4", "c7"]);
  assert.equal(changed.length, 3);
  // a target the panel does not show (a custom command's prompt) leaves the others matched
  model.reduce(s, { a: "checkpoints", targets: [t("c1", 1, "first task"), t("c2", 2, "a prompt the panel never showed"), t("c4", 3, "continue")] });
  assert.deepEqual(s.items.filter((i) => i.kind === "user").map((u) => u.checkpoint?.id), ["c1", undefined, undefined, "c4"]);
});

test("the rewind card: choices and scope go through the reducer; a reset closes it", () => {
  const s = model.emptyState();
  model.reduce(s, { a: "rewind", card: { checkpointId: "c1", text: "x", status: "ready", scope: "both", choices: { "a.py": "keep" } } });
  assert.deepEqual(model.reduce(s, { a: "rewindChoice", path: "a.py", choice: "restore" }), ["#rewind"]);
  model.reduce(s, { a: "rewindScope", scope: "code" });
  assert.equal(s.rewind.choices["a.py"], "restore");
  assert.equal(s.rewind.scope, "code");
  model.reduce(s, { a: "reset" });
  assert.equal(s.rewind, undefined);
});

test("code mode: a program's calls nest under its card, which is redrawn for them", () => {
  const s = model.emptyState();
  model.reduce(s, { a: "turnStarted", sessionId: "s1", turnId: "t-1" });
  model.reduce(s, { a: "event", event: { type: "toolCallStarted", callId: "p1", name: "run_code", summary: "for f in files:", parent: "", code: "for f in files:\n    read_file(path=f)\n", codeLanguage: "python" } });
  const card = s.items.find((i) => i.callId === "p1");
  assert.equal(card.code, "for f in files:\n    read_file(path=f)\n");
  assert.equal(card.codeLanguage, "python");
  const changed = model.reduce(s, { a: "event", event: { type: "toolCallStarted", callId: "p1.1", name: "read_file", summary: "a.py", parent: "p1" } });
  assert.deepEqual(changed, [card.id], "the program's card is redrawn, not a new top-level card");
  const child = s.items.find((i) => i.callId === "p1.1");
  assert.equal(child.parent, "p1");
  assert.deepEqual(model.childrenOf(s, card).map((i) => i.callId), ["p1.1"]);
  assert.equal(model.atTop(s, child), false);
  assert.equal(model.topItem(s, child), card);
  const done = model.reduce(s, { a: "event", event: { type: "toolCallFinished", callId: "p1.1", name: "read_file", ok: true, summary: "read 2 lines", parent: "p1" } });
  assert.deepEqual(done, [card.id]);
  assert.equal(child.status, "done");
  assert.equal(model.atTop(s, card), true);
});

test("server settings: the sandbox and code mode settings go to the server", () => {
  const values = { sandbox: { mode: "on", network: false }, codeMode: false, codeTimeout: 30 };
  const out = serverSettings((k) => values[k], {});
  assert.deepEqual([out.sandbox, out.codeMode, out.codeTimeout], [{ mode: "on", network: false }, false, 30]);
});

test("a workspace's .vscode/settings.json cannot loosen codeloop: the sensitive settings are machine-scoped", async () => {
  const { readFileSync } = await import("node:fs");
  const pkg = JSON.parse(readFileSync(new URL("../package.json", import.meta.url), "utf8"));
  const conf = pkg.contributes.configuration;
  const props = (Array.isArray(conf) ? conf[0] : conf).properties;
  // the interpreter, where the code goes, the permission mode and rules, what runs after edits,
  // the sandbox, the rewind record, MCP servers and project trust: user (or remote) settings only
  for (const key of ["pythonPath", "baseUrl", "apiKeyEnvVar", "mode", "autoAccept", "permissions", "checkCommand",
    "sandbox", "checkpoints", "mcpServers", "trustProject"]) {
    assert.ok(["machine", "application"].includes(props[`codeloop.${key}`].scope), `codeloop.${key} is ${props[`codeloop.${key}`].scope}`);
  }
});
