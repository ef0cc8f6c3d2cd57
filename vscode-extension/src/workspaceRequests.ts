/**
 * The server's requests about the editor's documents: save these files
 * (`codeloop/document/save`), and what diagnostics the editor has for them
 * (`codeloop/diagnostics/get`, from every language server and extension).
 */
import * as vscode from "vscode";
import { requestedUris, toLspDiagnostic } from "./diagnostics";

export async function saveDocuments(params: { uris?: string[] }, log: vscode.OutputChannel): Promise<{ saved: string[] }> {
  const saved: string[] = [];
  for (const u of params?.uris ?? []) {
    try {
      const uri = vscode.Uri.parse(u);
      const doc = vscode.workspace.textDocuments.find((d) => d.uri.toString() === uri.toString()) ?? await vscode.workspace.openTextDocument(uri);
      if (!doc.isDirty || await doc.save()) saved.push(u);
    } catch (e) { log.appendLine(`[codeloop] could not save ${u}: ${e}`); }
  }
  return { saved };
}

/** `{diagnostics: {uri: Diagnostic[]}, versions: {uri: version|null}}` */
export function editorDiagnostics(params: unknown): { diagnostics: Record<string, unknown[]>; versions: Record<string, number | null> } {
  const diagnostics: Record<string, unknown[]> = {};
  const versions: Record<string, number | null> = {};
  for (const u of requestedUris(params)) {
    const uri = vscode.Uri.parse(u);
    const doc = vscode.workspace.textDocuments.find((d) => d.uri.toString() === uri.toString());
    diagnostics[u] = vscode.languages.getDiagnostics(uri).map(toLspDiagnostic);
    versions[u] = doc?.version ?? null;
  }
  return { diagnostics, versions };
}
