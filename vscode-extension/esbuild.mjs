// Bundles the extension (node, cjs) and the chat webview (browser, iife); copies codicons.
import * as esbuild from "esbuild";
import { cpSync, mkdirSync, rmSync } from "node:fs";
import { createRequire } from "node:module";
import { dirname, join } from "node:path";

const production = process.argv.includes("--production");
const require = createRequire(import.meta.url);
const common = { bundle: true, minify: production, sourcemap: !production, logLevel: "warning", legalComments: "none" };

rmSync("dist", { recursive: true, force: true });
mkdirSync("dist/codicons", { recursive: true });
const codicons = dirname(require.resolve("@vscode/codicons/dist/codicon.css"));
cpSync(join(codicons, "codicon.css"), "dist/codicons/codicon.css");
cpSync(join(codicons, "codicon.ttf"), "dist/codicons/codicon.ttf");

await Promise.all([
  esbuild.build({ ...common, entryPoints: ["src/extension.ts"], outfile: "dist/extension.js", platform: "node", format: "cjs", target: "node18", external: ["vscode"] }),
  esbuild.build({ ...common, entryPoints: ["src/webview/main.ts"], outfile: "dist/webview.js", platform: "browser", format: "iife", target: "es2020" }),
  esbuild.build({ ...common, entryPoints: ["src/webview/style.css"], outfile: "dist/webview.css" }),
  // pure modules for the unit tests (node --test)
  esbuild.build({ ...common, minify: false, sourcemap: false, entryPoints: ["src/shared/model.ts", "src/shared/steps.ts", "src/shared/help.ts", "src/shared/review.ts", "src/shared/reasons.ts", "src/shared/mentions.ts", "src/settings.ts", "src/diagnostics.ts", "src/focused.ts", "src/protocol.ts"], outdir: "out", platform: "node", format: "cjs", bundle: false }),
]);
