/** Building the settings object sent to the server (pure: no vscode import). */

export const SETTING_KEYS = [
  "model", "baseUrl", "mode", "autoAccept", "maxTurns", "commandTimeout", "contextWindow", "compactThreshold",
  "keepToolOutput", "permissions", "checkCommand", "images", "mcpServers", "trustProject", "mcpStartupTimeout",
  "mcpCallTimeout", "toolSearchShare", "checkpoints", "sandbox", "codeMode", "codeTimeout",
] as const;

export type ConfigGetter = (key: string) => unknown;

/**
 * The `settings` for `initializationOptions` and `workspace/didChangeConfiguration`.
 * Empty strings and nulls are left out (the server then uses its default or the
 * environment). The API key comes from the secret store, else from the environment
 * variable named by `apiKeyEnvVar`; it never comes from settings.json.
 */
export function serverSettings(get: ConfigGetter, env: Record<string, string | undefined>, storedKey?: string): Record<string, unknown> {
  const out: Record<string, unknown> = {};
  for (const key of SETTING_KEYS) {
    const v = get(key);
    if (v === undefined || v === null || v === "") continue;
    if (typeof v === "object" && !Array.isArray(v) && Object.keys(v as object).length === 0) continue;
    out[key] = v;
  }
  const envVar = String(get("apiKeyEnvVar") || "OPENAI_API_KEY");
  const key = storedKey || env[envVar];
  if (key) out.apiKey = key;
  return out;
}

/** The same object with the API key masked, for logs. */
export function redact(settings: Record<string, unknown>): Record<string, unknown> {
  return settings.apiKey ? { ...settings, apiKey: "***" } : settings;
}
