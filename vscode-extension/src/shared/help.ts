/**
 * Slash commands in the panel: the help line and the composer's completion. The commands
 * come from the server's command table (`codeloop/commands`: the built-in commands and the
 * workspace's and user's custom ones), never from a list of our own. Pure.
 */
import type { CommandInfo } from "../protocol";

/** The line the empty panel shows (before the server answered: how to find them). */
export function slashHelpLine(commands: CommandInfo[] | undefined): string {
  if (!commands?.length) return "Type / for the slash commands.";
  return `Slash commands: ${commands.map((c) => "/" + c.name).join(" ")}`;
}

/** The command name being typed: the word after a leading `/` while the caret is in it
 * (`//` sends a literal slash). undefined: no completion. */
export function slashQuery(text: string, caret: number): string | undefined {
  if (!text.startsWith("/") || text.startsWith("//")) return undefined;
  const word = text.slice(1).match(/^\S*/)![0];
  if (caret < 1 || caret > 1 + word.length) return undefined;
  return word;
}

/** The commands for a query: names that start with it first, then names or descriptions that contain it. */
export function matchCommands(commands: CommandInfo[], query: string): CommandInfo[] {
  const q = query.toLowerCase();
  const starts = commands.filter((c) => c.name.toLowerCase().startsWith(q));
  const inside = q ? commands.filter((c) => !starts.includes(c) && (c.name.toLowerCase().includes(q) || c.description.toLowerCase().includes(q))) : [];
  return [...starts, ...inside];
}

/** The composer's text with the command chosen: `/name ` and whatever followed the typed word. */
export function completeCommand(text: string, c: CommandInfo): { text: string; caret: number } {
  const word = text.slice(1).match(/^\S*/)![0];
  const rest = text.slice(1 + word.length).replace(/^\s+/, "");
  const head = `/${c.name} `;
  return { text: head + rest, caret: head.length };
}

/** A command that takes no arguments runs as soon as it is chosen with Enter. */
export const takesArguments = (c: CommandInfo) => c.synopsis.trim() !== "";
