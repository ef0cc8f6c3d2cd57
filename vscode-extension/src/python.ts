/** Which Python runs the server, and whether codeloop is importable there. */
import * as vscode from "vscode";
import { execFile } from "child_process";

export async function resolvePython(log: vscode.OutputChannel): Promise<{ python: string; source: string }> {
  const configured = vscode.workspace.getConfiguration("codeloop").get<string>("pythonPath");
  if (configured && configured.trim()) return { python: expandHome(configured.trim()), source: "codeloop.pythonPath" };
  const ext = vscode.extensions.getExtension("ms-python.python");
  if (ext) {
    try {
      // eslint-disable-next-line @typescript-eslint/no-explicit-any
      const api: any = ext.isActive ? ext.exports : await ext.activate();
      const envs = api?.environments;
      const active = envs?.getActiveEnvironmentPath?.(vscode.workspace.workspaceFolders?.[0]?.uri);
      if (active?.path) {
        const resolved = await envs.resolveEnvironment?.(active);
        const exe: string | undefined = resolved?.executable?.uri?.fsPath ?? active.path;
        if (exe) return { python: exe, source: "the Python extension's active interpreter" };
      }
    } catch (e) {
      log.appendLine(`[codeloop] could not ask the Python extension for its interpreter: ${e}`);
    }
  }
  return { python: "python3", source: "python3 on PATH" };
}

function expandHome(p: string): string {
  if (p.startsWith("~/")) return (process.env.HOME ?? "") + p.slice(1);
  if (p.includes("${workspaceFolder}")) {
    const ws = vscode.workspace.workspaceFolders?.[0]?.uri.fsPath ?? "";
    return p.split("${workspaceFolder}").join(ws);
  }
  return p;
}

/** Resolves to an error message, or undefined when `python -c "import codeloop"` works. */
export function probeCodeloop(python: string, cwd?: string): Promise<string | undefined> {
  return new Promise((resolve) => {
    execFile(python, ["-c", "import codeloop"], { cwd, timeout: 30_000 }, (err, _stdout, stderr) => {
      if (!err) return resolve(undefined);
      const code = (err as NodeJS.ErrnoException).code;
      if (code === "ENOENT") return resolve(`Python interpreter not found: ${python}`);
      resolve((stderr || String(err)).trim().split("\n").slice(-1)[0] || String(err));
    });
  });
}
