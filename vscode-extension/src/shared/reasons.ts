/**
 * An approval's reason in plain words, once per command. The server (policy/engine.py) joins
 * one reason per part of a compound command with "; ", in its own terms ("`sleep 30` needs
 * approval: no allow rule matches it"). This groups the parts by why they ask and says it the
 * way a person would. Unknown wordings are shown as they come, each once.
 */

export interface ReasonLine { why: string; commands: string[] }

const cap = (t: string) => t.charAt(0).toUpperCase() + t.slice(1);

export function plainReasons(reason: string | undefined, target = ""): ReasonLine[] {
  const text = (reason ?? "").trim();
  if (!text) return [];
  const more = text.endsWith(" ...");
  const parts = (more ? text.slice(0, -4) : text).split(/;\s+(?=`|the command |reading |writing |changing |editing )/);
  const out: ReasonLine[] = [];
  const add = (why: string, cmd?: string) => {
    let line = out.find((l) => l.why === why);
    if (!line) { line = { why, commands: [] }; out.push(line); }
    if (cmd && !line.commands.includes(cmd)) line.commands.push(cmd);
  };
  for (const raw of parts) {
    const part = raw.trim();
    let m: RegExpMatchArray | null;
    if ((m = part.match(/^`(.+)` needs approval: no allow rule matches it$/))) add("Not on your allow list", m[1]);
    else if ((m = part.match(/^`(.+)` needs approval \(rule (.+)\)$/))) add(`Your rule ${m[2]} says to ask`, m[1]);
    else if ((m = part.match(/^`(.+)` (.+): this always needs approval$/))) add(`Always asks: it ${m[2]}`, m[1]);
    else if ((m = part.match(/^the command (.+): this always needs approval$/))) add(`Always asks: the command ${m[1]}`);
    else if ((m = part.match(/^(.+): this always needs approval$/))) add(`Always asks: ${m[1]}`);
    else if ((m = part.match(/^(.+) needs approval \(rule (.+)\)$/))) add(`${cap(m[1])}: your rule ${m[2]} says to ask`);
    else add(cap(part.replace(/ needs approval$/, "")));
  }
  if (more) add("…and more parts that need approval");
  // A single command that is the whole target needs no repeating.
  for (const l of out) if (l.commands.length === 1 && l.commands[0].trim() === target.trim()) l.commands = [];
  return out;
}
