/** vscode.Diagnostic -> LSP Diagnostic (pure apart from the shape of the input). */

export interface DiagLike {
  range: { start: { line: number; character: number }; end: { line: number; character: number } };
  message: string;
  severity: number; // vscode.DiagnosticSeverity: Error 0, Warning 1, Information 2, Hint 3
  source?: string;
  code?: string | number | { value: string | number; target?: unknown };
}

export interface LspDiagnostic {
  range: { start: { line: number; character: number }; end: { line: number; character: number } };
  message: string;
  severity: 1 | 2 | 3 | 4;
  source?: string;
  code?: string | number;
}

export function toLspDiagnostic(d: DiagLike): LspDiagnostic {
  const out: LspDiagnostic = {
    range: {
      start: { line: d.range.start.line, character: d.range.start.character },
      end: { line: d.range.end.line, character: d.range.end.character },
    },
    message: d.message,
    severity: (Math.min(Math.max(d.severity, 0), 3) + 1) as 1 | 2 | 3 | 4,
  };
  if (d.source) out.source = d.source;
  if (d.code !== undefined && d.code !== null) out.code = typeof d.code === "object" ? d.code.value : d.code;
  return out;
}

/**
 * The uris asked for in `codeloop/diagnostics/get`. The server sends
 * `{uris: [{uri, version}]}`; plain strings and `{uri}` are accepted too.
 */
export function requestedUris(params: unknown): string[] {
  if (!params || typeof params !== "object") return [];
  const p = params as { uris?: unknown; uri?: unknown };
  const out: string[] = [];
  const add = (u: unknown) => {
    if (typeof u === "string") out.push(u);
    else if (u && typeof u === "object" && typeof (u as { uri?: unknown }).uri === "string") out.push((u as { uri: string }).uri);
  };
  if (Array.isArray(p.uris)) p.uris.forEach(add);
  else add(p.uri);
  return out;
}
