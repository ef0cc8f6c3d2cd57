/** Markdown (markdown-it, sanitized by DOMPurify) and code highlighting (highlight.js) for the chat. */
import MarkdownIt from "markdown-it";
import DOMPurify from "dompurify";
import hljs from "highlight.js/lib/core";
import python from "highlight.js/lib/languages/python";
import javascript from "highlight.js/lib/languages/javascript";
import typescript from "highlight.js/lib/languages/typescript";
import json from "highlight.js/lib/languages/json";
import bash from "highlight.js/lib/languages/bash";
import shell from "highlight.js/lib/languages/shell";
import diff from "highlight.js/lib/languages/diff";
import yaml from "highlight.js/lib/languages/yaml";
import ini from "highlight.js/lib/languages/ini";
import css from "highlight.js/lib/languages/css";
import xml from "highlight.js/lib/languages/xml";
import go from "highlight.js/lib/languages/go";
import rust from "highlight.js/lib/languages/rust";
import java from "highlight.js/lib/languages/java";
import cpp from "highlight.js/lib/languages/cpp";
import sql from "highlight.js/lib/languages/sql";
import markdown from "highlight.js/lib/languages/markdown";
import { vscode } from "./api";
import { h, icon } from "./dom";

for (const [name, lang] of Object.entries({ python, javascript, typescript, json, bash, shell, diff, yaml, ini, css, xml, go, rust, java, cpp, sql, markdown })) {
  hljs.registerLanguage(name, lang);
}
hljs.registerAliases(["py"], { languageName: "python" });
hljs.registerAliases(["js", "jsx", "mjs"], { languageName: "javascript" });
hljs.registerAliases(["ts", "tsx"], { languageName: "typescript" });
hljs.registerAliases(["sh", "zsh", "console"], { languageName: "bash" });
hljs.registerAliases(["toml"], { languageName: "ini" });
hljs.registerAliases(["html"], { languageName: "xml" });
hljs.registerAliases(["c", "h", "hpp"], { languageName: "cpp" });

const md: MarkdownIt = new MarkdownIt({
  html: false, linkify: true, breaks: false,
  highlight: (code: string, lang: string): string => {
    const l = (lang || "").trim().toLowerCase();
    try {
      if (l && hljs.getLanguage(l)) return hljs.highlight(code, { language: l, ignoreIllegals: true }).value;
    } catch { /* fall through */ }
    return ""; // markdown-it escapes it
  },
});

export function renderMarkdown(text: string): string {
  return DOMPurify.sanitize(md.render(text), { USE_PROFILES: { html: true } });
}


/** Highlighted HTML of `code` in `lang` (a language name or file extension), or undefined if unknown. */
export function highlight(code: string, lang: string): string | undefined {
  const l = lang.trim().toLowerCase();
  try {
    if (l && hljs.getLanguage(l)) return hljs.highlight(code, { language: l, ignoreIllegals: true }).value;
  } catch { /* unknown */ }
  return undefined;
}

/** Code blocks of rendered markdown: highlighted look and a copy button. */
export function decorateCode(root: HTMLElement): void {
  for (const pre of Array.from(root.querySelectorAll("pre"))) {
    const code = pre.querySelector("code");
    if (code && !code.classList.contains("hljs")) code.classList.add("hljs");
    const btn = h("button", { class: "copy icon-btn", title: "Copy", "aria-label": "Copy code" }, icon("copy"));
    btn.addEventListener("click", () => {
      vscode.postMessage({ type: "copy", text: code?.textContent ?? pre.textContent ?? "" });
      btn.replaceChildren(icon("check"));
      setTimeout(() => btn.replaceChildren(icon("copy")), 1200);
    });
    pre.classList.add("code-block");
    pre.append(btn);
  }
}

