/**
 * The editor's context for a chat message: the last text editor the user was in (the panel
 * takes the focus away from it), its file and selection, offered as chips in the composer and
 * sent with the message.
 */
import * as vscode from "vscode";
import type * as P from "./protocol";
import type { PanelEnv } from "./messages";
import type { Chip } from "./shared/model";

export class EditorContext implements vscode.Disposable {
  private lastEditor: vscode.TextEditor | undefined;
  private readonly subs: vscode.Disposable[] = [];

  constructor(private readonly setEnv: (patch: Partial<PanelEnv>) => void) {
    this.lastEditor = vscode.window.activeTextEditor;
    this.subs.push(vscode.window.onDidChangeActiveTextEditor((e) => this.track(e)));
    this.subs.push(vscode.window.onDidChangeTextEditorSelection((e) => this.track(e.textEditor)));
    this.track(vscode.window.activeTextEditor);
  }

  /** The last file editor the user was in (not the chat, not an output panel). */
  get editor(): vscode.TextEditor | undefined {
    const ed = this.lastEditor;
    return ed && !ed.document.isClosed ? ed : undefined;
  }

  track(editor: vscode.TextEditor | undefined): void {
    if (!editor || !["file", "untitled"].includes(editor.document.uri.scheme)) return;
    this.lastEditor = editor;
    const uri = editor.document.uri;
    const label = vscode.workspace.asRelativePath(uri, false);
    const sel = editor.selection;
    const selection = sel.isEmpty ? undefined : {
      uri: uri.toString(), label: `${label}:${sel.start.line + 1}-${sel.end.line + 1}`, lines: sel.end.line - sel.start.line + 1,
    };
    this.setEnv({ activeFile: { uri: uri.toString(), label }, selection });
  }

  /** The `context` of codeloop/chat/start and the chips the message shows. */
  chatContext(useFile: boolean, useSelection: boolean): { context: P.ChatContext; chips: Chip[] } {
    const context: P.ChatContext = {};
    const chips: Chip[] = [];
    const ed = this.editor;
    if (ed) {
      const label = vscode.workspace.asRelativePath(ed.document.uri, false);
      if (useFile) { context.activeFile = ed.document.uri.toString(); chips.push({ kind: "file", label }); }
      const sel = ed.selection;
      if (useSelection && !sel.isEmpty) {
        context.selection = {
          uri: ed.document.uri.toString(), text: ed.document.getText(sel),
          range: { start: { line: sel.start.line, character: sel.start.character }, end: { line: sel.end.line, character: sel.end.character } },
        };
        chips.push({ kind: "selection", label: `${label}:${sel.start.line + 1}-${sel.end.line + 1}` });
      }
    }
    return { context, chips };
  }

  dispose(): void {
    for (const s of this.subs) s.dispose();
  }
}
