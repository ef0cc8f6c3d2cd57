/**
 * Slash-command completion in the composer, from the server's command table (the built-in
 * commands and the custom ones, with their argument hints). `/` at the start of the message
 * opens it; arrows move, Tab or Enter completes (Enter runs a command without arguments),
 * Escape closes.
 */
import type { CommandInfo } from "../protocol";
import { completeCommand, matchCommands, slashQuery, takesArguments } from "../shared/help";
import { h, icon } from "./dom";

export interface SlashParts {
  input: HTMLTextAreaElement;
  menu: HTMLElement;
  /** The server's commands (undefined until it answered). */
  commands(): CommandInfo[] | undefined;
  /** Asks the host to fetch the table again (a new command file shows at once). */
  refresh(): void;
  /** The input's text changed (the draft). */
  changed(): void;
  /** Sends the message. */
  submit(): void;
}
let parts: SlashParts;
const menu = { open: false, query: "", options: [] as CommandInfo[], index: 0 };

export function initSlash(p: SlashParts): void {
  parts = p;
  p.input.addEventListener("blur", () => setTimeout(closeSlashMenu, 150));
  p.input.addEventListener("click", updateSlashMenu);
}

/** After each change of the input: opens, filters or closes the menu. */
export function updateSlashMenu(): void {
  const { input } = parts;
  const query = slashQuery(input.value, input.selectionStart ?? input.value.length);
  if (query === undefined) { closeSlashMenu(); return; }
  if (!menu.open) parts.refresh();
  if (!menu.open || query !== menu.query) menu.index = 0;
  menu.open = true;
  menu.query = query;
  menu.options = matchCommands(parts.commands() ?? [], query);
  render();
}

/** The command table arrived or changed. */
export function slashCommandsChanged(): void {
  if (menu.open) updateSlashMenu();
}

export function closeSlashMenu(): void {
  menu.open = false;
  parts.menu.classList.add("hidden");
}

function choose(i: number, run: boolean): void {
  const c = menu.options[i];
  if (!c) return;
  const { input } = parts;
  const r = completeCommand(input.value, c);
  input.value = run && !takesArguments(c) ? r.text.trimEnd() : r.text;
  input.setSelectionRange(r.caret, r.caret);
  closeSlashMenu();
  parts.changed();
  input.focus();
  if (run && !takesArguments(c)) parts.submit();
}

function render(): void {
  const el = parts.menu;
  const commands = parts.commands();
  el.classList.toggle("hidden", !menu.open || (commands !== undefined && menu.options.length === 0));
  if (commands === undefined) {
    el.replaceChildren(h("div", { class: "mention-option muted", text: "Loading the commands…" }));
    return;
  }
  el.replaceChildren(...menu.options.map((c, i) => h("div", {
    class: `mention-option slash-option${i === menu.index ? " selected" : ""}`, role: "option", "aria-selected": String(i === menu.index),
    "data-command": c.name, "data-source": c.source, title: `/${c.name}${c.synopsis ? " " + c.synopsis : ""}: ${c.description}`,
    onmousedown: (e: Event) => { e.preventDefault(); choose(i, false); },
  }, icon(c.source === "built-in" ? "symbol-event" : "file-text"),
  h("span", { class: "mention-label", text: `/${c.name}` }),
  c.synopsis && h("span", { class: "muted slash-synopsis", text: c.synopsis }),
  c.source !== "built-in" && h("span", { class: "muted slash-source", text: c.source }),
  h("span", { class: "muted slash-description", text: c.description }))));
  el.querySelector(".selected")?.scrollIntoView({ block: "nearest" });
}

/** Keys in the input while the menu is open; true when the key was for the menu. */
export function slashKey(e: KeyboardEvent): boolean {
  if (!menu.open || e.isComposing || !menu.options.length) return false;
  if (e.key === "ArrowDown" || e.key === "ArrowUp") {
    e.preventDefault();
    const n = menu.options.length;
    menu.index = (menu.index + (e.key === "ArrowDown" ? 1 : n - 1)) % n;
    render();
    return true;
  }
  if (e.key === "Tab" && !e.shiftKey) { e.preventDefault(); choose(menu.index, false); return true; }
  if (e.key === "Enter" && !e.shiftKey) {
    const c = menu.options[menu.index];
    // a command typed in full ("/help", "/mode"): Enter sends it as it is
    if (c && parts.input.value.trim() === `/${c.name}`) { closeSlashMenu(); return false; }
    e.preventDefault();
    choose(menu.index, true);
    return true;
  }
  if (e.key === "Escape") { e.preventDefault(); closeSlashMenu(); return true; }
  return false;
}
