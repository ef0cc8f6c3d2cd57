/**
 * The server's slash commands (`codeloop/commands`: the command table, custom command files
 * included) for the panel's /-completion and help line. Fetched when the server runs and
 * again whenever the user starts typing a command, so a new `.codeloop/commands/*.md` shows.
 */
import * as P from "./protocol";
import { errText, type ServerClient } from "./client";

export class SlashCommands {
  private inflight: Promise<void> | undefined;

  constructor(
    private readonly server: ServerClient,
    /** Hands the table to the panel (PanelEnv.commands). */
    private readonly show: (commands: P.CommandInfo[]) => void,
    private readonly log: (message: string) => void,
  ) {}

  /** Asks the server for its table (one request at a time). */
  refresh(): Promise<void> {
    this.inflight ??= this.fetch().finally(() => { this.inflight = undefined; });
    return this.inflight;
  }

  private async fetch(): Promise<void> {
    const client = await this.server.ready();
    if (!client) return;
    try {
      const r = await client.sendRequest<P.CommandTableResult>(P.COMMAND_TABLE, {});
      this.show(r.commands ?? []);
    } catch (e) {
      this.log(`codeloop: could not get the slash commands: ${errText(e)}`);
    }
  }
}
