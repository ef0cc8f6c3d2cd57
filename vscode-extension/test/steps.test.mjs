// The reducer's todo list, hook runs and sub-agent steps, and the slash-command helpers
// (on the esbuild output in out/: npm run build).
import { test } from "node:test";
import assert from "node:assert/strict";
import { createRequire } from "node:module";

const require = createRequire(import.meta.url);
const model = require("../out/shared/model.js");
const steps = require("../out/shared/steps.js");
const help = require("../out/shared/help.js");

const ev = (event) => ({ a: "event", sessionId: "s1", event });
const sub = (event, parentCallId = "call_task", agent = "explore") => ev({ type: "subagent", parentCallId, agent, event });
const todo = (content, activeForm, status) => ({ content, activeForm, status });

test("the todo list follows todosChanged (twice in a turn), and a reset with or without one", () => {
  const s = model.emptyState();
  model.reduce(s, { a: "turnStarted", sessionId: "s1", turnId: "t-1" });
  const first = [todo("Read the code", "Reading the code", "in_progress"), todo("Fix it", "Fixing it", "pending")];
  assert.deepEqual(model.reduce(s, ev({ type: "todosChanged", todos: first, changes: ["added: Read the code", "added: Fix it"] })), ["#todos"]);
  assert.deepEqual(s.todos, first);
  assert.equal(s.items.length, 0, "the list is not an item of the log");
  first[0].status = "completed"; // the state holds its own copy
  assert.equal(s.todos[0].status, "in_progress");
  const second = [todo("Read the code", "Reading the code", "completed"), todo("Fix it", "Fixing it", "in_progress")];
  model.reduce(s, ev({ type: "todosChanged", todos: second, changes: ["completed: Read the code", "started: Fix it"] }));
  assert.deepEqual(s.todos.map((t) => t.status), ["completed", "in_progress"]);
  model.reduce(s, ev({ type: "turnEnd", status: "done" }));
  assert.deepEqual(s.todos, second, "the list outlives the turn");
  model.reduce(s, { a: "reset" });
  assert.equal(s.todos, undefined, "a new chat has none");
  model.reduce(s, { a: "reset", sessionId: "s1", items: [], todos: second });
  assert.deepEqual(s.todos, second, "a reopened session brings its list back");
});

function withTask() {
  const s = model.emptyState();
  model.reduce(s, { a: "user", text: "look for the greeting" });
  model.reduce(s, { a: "turnStarted", sessionId: "s1", turnId: "t-1" });
  model.reduce(s, ev({ type: "toolCallStarted", callId: "call_task", name: "task", summary: "explore: find it", arguments: { description: "find it", prompt: "Read greet.py." } }));
  return s;
}

test("a sub-agent's steps nest under its task card; only the card is redrawn", () => {
  const s = withTask();
  const task = s.items[1];
  let changed = model.reduce(s, sub({ type: "toolCallStarted", callId: "child_1", name: "read_file", summary: "greet.py", arguments: { path: "greet.py" } }));
  assert.deepEqual(changed, [task.id]);
  model.reduce(s, sub({ type: "toolCallFinished", callId: "child_1", name: "read_file", ok: true, summary: "read 25 lines", result: "1\tx" }));
  model.reduce(s, sub({ type: "textDelta", text: "The greeting is hello." }));
  model.reduce(s, sub({ type: "usage", promptTokens: 10, completionTokens: 2 }));
  changed = model.reduce(s, sub({ type: "turnEnd", status: "done", promptTokens: 1500, completionTokens: 20, cachedTokens: 1024 }));
  assert.deepEqual(changed, [task.id], "the child's end is not the parent's");
  assert.equal(s.running, "t-1", "the parent's turn still runs");
  assert.equal(s.items.length, 2, "nothing joined the top level");
  assert.equal(task.agent, "explore");
  assert.deepEqual(task.children.map((i) => i.kind), ["tool", "assistant", "turnEnd"]);
  assert.equal(task.children[0].status, "done");
  assert.equal(task.children[0].resultSummary, "read 25 lines");
  assert.equal(task.children[1].text, "The greeting is hello.");
  assert.equal(task.children[1].streaming, false, "the child's end closes its text");
  assert.equal(steps.stepsLabel(task), "explore · 1 tool call");
  const ids = [...steps.walk(s.items)].map((x) => x.item.id);
  assert.equal(new Set(ids).size, ids.length, "nested ids are unique in the whole log");
  model.reduce(s, ev({ type: "toolCallFinished", callId: "call_task", name: "task", ok: true, summary: "explore: 2 model calls", result: "hello" }));
  assert.equal(task.status, "done");
  // an event for a call the panel never saw is dropped, not shown at the top
  assert.deepEqual(model.reduce(s, sub({ type: "textDelta", text: "stray" }, "call_unknown")), []);
  assert.equal(s.items.length, 2);
});

test("host and webview copies of the state stay the same through nested events", () => {
  const actions = [
    { a: "user", text: "go" },
    ev({ type: "toolCallStarted", callId: "call_task", name: "task", summary: "general: x" }),
    sub({ type: "toolCallStarted", callId: "c1", name: "run_command", summary: "ls" }, "call_task", "general"),
    { a: "approval", id: "ap-1", params: { kind: "Bash", target: "ls", callId: "c1" } },
    { a: "approvalStatus", id: "ap-1", answer: "allow_once" },
    ev({ type: "hookRan", runId: "h1", hookEvent: "PreToolUse", phase: "end", status: "ok", label: "x", line: "hook ok", callId: "c1" }),
    ev({ type: "todosChanged", todos: [todo("a", "doing a", "in_progress")] }),
  ];
  const host = model.emptyState();
  const view = model.emptyState();
  for (const a of actions) { model.reduce(host, structuredClone(a)); model.reduce(view, structuredClone(a)); }
  assert.deepEqual(view, host);
});

test("Stop: the parent's cancelled turn stops the sub-agent's running steps", () => {
  const s = withTask();
  const task = s.items[1];
  model.reduce(s, sub({ type: "textDelta", text: "Looking" }));
  model.reduce(s, sub({ type: "toolCallStarted", callId: "child_1", name: "grep", summary: "greeting" }));
  model.reduce(s, sub({ type: "toolCallStarted", callId: "child_2", name: "read_file", summary: "a.py" }));
  const changed = model.reduce(s, ev({ type: "turnEnd", status: "cancelled" }));
  assert.ok(changed.includes(task.id));
  assert.equal(task.status, "cancelled");
  assert.deepEqual(task.children.filter((i) => i.kind === "tool").map((t) => [t.status, t.resultSummary]),
    [["cancelled", "stopped by you"], ["cancelled", "stopped by you"]]);
  assert.equal(task.children[0].streaming, false);
});

test("a sub-agent's approval sits on its own card inside the task card, and is answered there", () => {
  const s = withTask();
  const task = s.items[1];
  model.reduce(s, sub({ type: "toolCallStarted", callId: "child_1", name: "run_command", summary: "make" }, "call_task", "general"));
  const changed = model.reduce(s, { a: "approval", id: "ap-9", params: { kind: "Bash", target: "make", callId: "child_1", reason: "commands need approval" } });
  assert.deepEqual(changed, [task.id]);
  assert.equal(s.items.length, 2, "no approval card of its own");
  assert.equal(task.children[0].approval.target, "make");
  assert.deepEqual(model.reduce(s, { a: "approvalStatus", id: "ap-9", answer: "deny" }), [task.id]);
  assert.equal(task.children[0].approval.answer, "deny");
  // a pending one is void when the parent's turn ends
  model.reduce(s, sub({ type: "toolCallStarted", callId: "child_2", name: "run_command", summary: "make test" }, "call_task", "general"));
  model.reduce(s, { a: "approval", id: "ap-10", params: { kind: "Bash", target: "make test", callId: "child_2" } });
  model.reduce(s, ev({ type: "turnEnd", status: "cancelled" }));
  assert.equal(task.children[1].approval.answer, "cancelled");
});

test("hook runs: on their tool card (a sub-agent's too) by callId, updated from start to end; others are lines of their own", () => {
  const s = withTask();
  const task = s.items[1];
  model.reduce(s, ev({ type: "toolCallStarted", callId: "c2", name: "run_command", summary: "rm -rf build" }));
  const cmd = s.items[2];
  const run = { type: "hookRan", runId: "hook-1", hookEvent: "PreToolUse", label: "guard.sh (~/.config/codeloop/settings.json)", target: "run_command", callId: "c2", scope: "user" };
  assert.deepEqual(model.reduce(s, ev({ ...run, phase: "start", status: "running", line: "hook PreToolUse guard.sh …", duration: null })), [cmd.id]);
  assert.equal(cmd.hooks[0].status, "running");
  model.reduce(s, ev({ ...run, phase: "end", status: "denied", line: "hook PreToolUse guard.sh denied the call: no rm", duration: 0.04 }));
  assert.equal(cmd.hooks.length, 1, "the end replaces the start");
  assert.equal(cmd.hooks[0].status, "denied");
  assert.ok(steps.hookStands("denied") && steps.hookStands("error") && steps.hookStands("timeout") && steps.hookStands("blocked"));
  assert.ok(!steps.hookStands("ok") && !steps.hookStands("running"));
  // a sub-agent's call
  model.reduce(s, sub({ type: "toolCallStarted", callId: "child_1", name: "read_file", summary: "a.py" }));
  model.reduce(s, sub({ type: "hookRan", runId: "hook-2", hookEvent: "PostToolUse", phase: "end", status: "ok", label: "log.sh", line: "hook PostToolUse log.sh ok", callId: "child_1", scope: "user", duration: 0.01 }));
  assert.equal(task.children[0].hooks[0].status, "ok");
  // no call: a line of its own, merged by run id
  const stop = { type: "hookRan", runId: "hook-3", hookEvent: "Stop", label: "check.sh", target: null, callId: "", scope: "project" };
  model.reduce(s, ev({ type: "textDelta", text: "Done." }));
  model.reduce(s, ev({ ...stop, phase: "start", status: "running", line: "hook Stop check.sh …" }));
  assert.equal(s.items.at(-2).streaming, false, "a hook line closes the streamed text");
  model.reduce(s, ev({ ...stop, phase: "end", status: "blocked", line: "hook Stop check.sh sent the agent back", duration: 0.2 }));
  const lines = s.items.filter((i) => i.kind === "hook");
  assert.equal(lines.length, 1);
  assert.equal(lines[0].status, "blocked");
  assert.equal(lines[0].callId, undefined);
});

test("a reopened session: sub-agents nested under their task card, the turn context never shown", () => {
  const ctx = "\n\n<codeloop-context>\nmode: ask\ngit: clean\n</codeloop-context>";
  const messages = [
    { role: "user", content: "find the greeting" + ctx },
    { role: "assistant", content: "", tool_calls: [{ id: "call_task", type: "function", function: { name: "task", arguments: JSON.stringify({ description: "find it", prompt: "Read greet.py.", subagent_type: "explore" }) } }] },
    { role: "tool", tool_call_id: "call_task", content: "hello\n\n[sub-agent explore: 2 model calls]" },
    { role: "assistant", content: "It is hello." },
    { role: "user", content: [{ type: "text", text: "and now?" }, { type: "text", text: ctx.trim() }] },
  ];
  const subagents = { call_task: { agent: "explore", messages: [
    { role: "user", content: "Read greet.py." },
    { role: "assistant", content: "", tool_calls: [{ id: "child_1", type: "function", function: { name: "read_file", arguments: "{\"path\":\"greet.py\"}" } }] },
    { role: "tool", tool_call_id: "child_1", content: "1\tGREETING = 'hello'" },
    { role: "assistant", content: "The greeting is hello." },
  ] } };
  const items = model.itemsFromTranscript(messages, subagents);
  assert.deepEqual(items.map((i) => i.kind), ["user", "tool", "assistant", "user"]);
  assert.equal(items[0].text, "find the greeting");
  assert.equal(items[3].text, "and now?");
  const task = items[1];
  assert.equal(task.agent, "explore");
  assert.deepEqual(task.children.map((i) => i.kind), ["tool", "assistant"], "the child's prompt is on the card, not repeated");
  assert.equal(task.children[0].name, "read_file");
  assert.equal(task.children[0].result, "1\tGREETING = 'hello'");
  const ids = [...steps.walk(items)].map((x) => x.item.id);
  assert.equal(new Set(ids).size, ids.length, `unique ids: ${ids}`);
  const s = model.emptyState();
  model.reduce(s, { a: "reset", sessionId: "s1", items });
  assert.equal(s.title, "find the greeting");
  // a string message that is only the context block shows nothing of it
  assert.equal(model.withoutTurnContext(ctx.trimStart()), "");
  // a session title an older server flattened with its context block
  assert.equal(model.titleWithoutContext("find the greeting <codeloop-context> mode: ask git: cl…"), "find the greeting");
  assert.equal(model.titleWithoutContext("find the greeting"), "find the greeting");
});

test("slash commands: the query while the first word is typed, matches, completion, the help line", () => {
  assert.equal(help.slashQuery("/", 1), "");
  assert.equal(help.slashQuery("/sum", 4), "sum");
  assert.equal(help.slashQuery("/summarize greet.py", 19), undefined, "past the command word");
  assert.equal(help.slashQuery("//literal", 3), undefined);
  assert.equal(help.slashQuery("hello /x", 8), undefined);
  const commands = [
    { name: "help", synopsis: "", description: "show this help", source: "built-in" },
    { name: "mode", synopsis: "[ask|acceptEdits|plan|bypass]", description: "show the permission mode, or switch", source: "built-in" },
    { name: "summarize", synopsis: "[file]", description: "Summarize a file", source: "project" },
  ];
  assert.deepEqual(help.matchCommands(commands, "").map((c) => c.name), ["help", "mode", "summarize"]);
  assert.deepEqual(help.matchCommands(commands, "SU").map((c) => c.name), ["summarize"]);
  assert.deepEqual(help.matchCommands(commands, "permission").map((c) => c.name), ["mode"], "descriptions match too");
  assert.deepEqual(help.completeCommand("/su", commands[2]), { text: "/summarize ", caret: 11 });
  assert.deepEqual(help.completeCommand("/su greet.py", commands[2]), { text: "/summarize greet.py", caret: 11 });
  assert.equal(help.takesArguments(commands[0]), false);
  assert.equal(help.takesArguments(commands[2]), true);
  assert.equal(help.slashHelpLine(commands), "Slash commands: /help /mode /summarize");
  assert.match(help.slashHelpLine(undefined), /Type \//);
});
