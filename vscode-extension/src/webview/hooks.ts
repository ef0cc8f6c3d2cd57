/** Hook runs: a line on the tool card they ran for, or a line of their own in the log. */
import { type HookInfo, hookStands } from "../shared/steps";
import { h, icon } from "./dom";

const ICON: Record<string, string> = {
  running: "loading", ok: "settings-gear", blocked: "circle-slash", denied: "circle-slash", warning: "warning",
  timeout: "watch", error: "error",
};

/** One hook run: dim when it ran fine, standing out when it blocked, denied, warned, timed out or failed. */
export function renderHookLine(hk: HookInfo): HTMLElement {
  const stands = hookStands(hk.status);
  return h("div", {
    class: `hook-line ${stands ? "stands" : "dim"} ${hk.status}`, "data-status": hk.status, "data-hook-event": hk.hookEvent,
    title: `${hk.line}\n${hk.hookEvent} hook from the ${hk.scope ?? "user"} settings: ${hk.label}`,
  }, icon(ICON[hk.status] ?? "settings-gear", hk.status === "running" ? "codicon-modifier-spin" : ""), h("span", { class: "hook-text", text: hk.line }));
}

/** The hooks of a tool call, under its card's head. */
export function renderToolHooks(hooks: HookInfo[]): HTMLElement {
  return h("div", { class: "tool-hooks" }, ...hooks.map(renderHookLine));
}
