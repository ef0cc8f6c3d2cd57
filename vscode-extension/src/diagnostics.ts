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

/** The uris asked for in `codeloop/diagnostics/get`: `{uris: [...]}` or `{uri}`. */
export function requestedUris(params: unknown): string[] {
  if (!params || typeof params !== "object") return [];
  const p = params as { uris?: unknown; uri?: unknown };
  if (Array.isArray(p.uris)) return p.uris.filter((u): u is string => typeof u === "string");
  if (typeof p.uri === "string") return [p.uri];
  return [];
}
