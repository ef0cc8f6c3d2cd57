/** The session's todo list, docked above the composer: a checklist, kept up to date by `todosChanged`. */
import type { TodoItem } from "../protocol";
import { local, persist } from "./api";
import { h, icon } from "./dom";

const CLOSED = "todos:closed"; // in local.expanded: the user folded the list

const ICON: Record<TodoItem["status"], string> = { completed: "pass-filled", in_progress: "circle-filled", pending: "circle-large-outline" };

/** Draws the list into `el` (hidden when there is none). `running`: a turn runs (the current item spins). */
export function renderTodos(el: HTMLElement, todos: TodoItem[] | undefined, running: boolean): void {
  const list = todos ?? [];
  el.classList.toggle("hidden", list.length === 0);
  if (!list.length) { el.replaceChildren(); return; }
  const done = list.filter((t) => t.status === "completed").length;
  const current = list.find((t) => t.status === "in_progress");
  const open = !local.expanded.includes(CLOSED);
  const head = h("button", {
    class: "todos-head", "aria-expanded": String(open), title: open ? "Fold the todo list" : "Show the todo list",
    onclick: () => {
      const i = local.expanded.indexOf(CLOSED);
      if (i >= 0) local.expanded.splice(i, 1); else local.expanded.push(CLOSED);
      persist();
      renderTodos(el, todos, running);
    },
  }, icon(open ? "chevron-down" : "chevron-right", "chev"), icon("checklist"),
  h("strong", { class: "todos-count", text: `Todos ${done}/${list.length}` }),
  current && h("span", { class: "muted todos-current", text: `· ${current.activeForm || current.content}` }));
  el.replaceChildren(head);
  if (!open) return;
  el.append(h("ul", { class: "todo-list", "aria-label": "Todo list" }, ...list.map((t) => {
    const spin = t.status === "in_progress" && running;
    // the item being worked on says what is happening ("Running the tests"), the others what is to be done
    const text = t.status === "in_progress" ? t.activeForm || t.content : t.content;
    return h("li", { class: `todo ${t.status}`, "data-status": t.status, title: t.content },
      icon(spin ? "loading" : ICON[t.status] ?? "circle-large-outline", spin ? "codicon-modifier-spin" : ""),
      h("span", { class: "todo-text", text }));
  })));
}
