/**
 * The slash-command help the chat panel shows before the first message. The one place the
 * webview knows the commands: when the server's command table is on the wire (issue 15),
 * replace this constant with what the server sends.
 */
export const SLASH_COMMANDS = ["/help", "/mode", "/model", "/cost", "/context", "/compact", "/clear", "/mcp"];

export function slashHelpLine(commands: string[] = SLASH_COMMANDS): string {
  return `Slash commands: ${commands.join(" ")}`;
}
