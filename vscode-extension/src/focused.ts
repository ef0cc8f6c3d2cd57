/**
 * Focused turns started from a code action ("Fix with codeloop: …", "Ask codeloop…",
 * "Explain with codeloop"): the label the chat panel shows for them and the arguments of
 * the server command. Pure: no vscode imports (unit-tested with node --test).
 */
import { CMD_ASK, CMD_EXPLAIN, CMD_FIX, type Range } from "./protocol";

export const FOCUSED_COMMANDS = [CMD_FIX, CMD_ASK, CMD_EXPLAIN];

export interface FocusedArg {
  uri: string;
  range?: Range;
  instruction?: string;
  diagnostic?: { message?: string; range?: Range; source?: string; code?: string };
}

/** The first argument of a focused command, if it has the expected shape. */
export function focusedArg(args: unknown[] | undefined): FocusedArg | undefined {
  const a = args?.[0];
  if (!a || typeof a !== "object" || typeof (a as { uri?: unknown }).uri !== "string") return undefined;
  return a as FocusedArg;
}

/** "greet.py:3" or "greet.py:3-7" (1-based lines). */
export function where(label: string, range: Range | undefined): string {
  if (!range) return label;
  const a = range.start.line + 1;
  // a selection ending at column 0 of the next line does not include that line
  const b = range.end.character === 0 && range.end.line > range.start.line ? range.end.line : range.end.line + 1;
  return a === b ? `${label}:${a}` : `${label}:${a}-${b}`;
}

/**
 * What the chat panel shows as the user's message for a focused turn (the server's prompt
 * is long: it quotes the whole file). `fileLabel` is the workspace-relative path.
 */
export function focusedLabel(command: string, arg: FocusedArg | undefined, fileLabel: string): string {
  if (command === CMD_FIX) {
    const d = arg?.diagnostic;
    const msg = (d?.message ?? "this problem").split("\n")[0];
    return `Fix with codeloop: ${msg} (${where(fileLabel, d?.range)})`;
  }
  if (command === CMD_EXPLAIN) return `Explain with codeloop: ${where(fileLabel, arg?.range)}`;
  if (command === CMD_ASK) return `${arg?.instruction ?? "Ask codeloop"} (${where(fileLabel, arg?.range)})`;
  return command;
}

/** The arguments with the instruction the user typed. */
export function withInstruction(args: unknown[], instruction: string): unknown[] {
  const [first, ...rest] = args;
  return [{ ...(first as object), instruction }, ...rest];
}
