"""The permission engine: modes + rules + the shell analysis -> a Decision.

Everything is decided here, in code, from rules the user controls. Nothing the
model says changes a decision: the model's command is only ever *analysed*.

Modes:

=============  ==================  ============================================  =====================
mode           Edit / Write        Bash                                          Read
=============  ==================  ============================================  =====================
ask (default)  ask (review)        ask unless every part is allowed by a rule    allow (secrets: ask)
acceptEdits    allow               as in ask                                     as in ask
plan           deny                read-only parts as in ask; any other: deny    as in ask
bypass         allow               allow                                         allow
=============  ==================  ============================================  =====================

Sandboxed (``PermissionRequest.sandboxed``: the command runs in an OS sandbox that fully
contains it, ``sandbox.autoAllow``): in ask and acceptEdits, a part asked about only because
it is unknown (no rule matches it) is allowed. Nothing else changes: risky findings, ask and
deny rules, writes outside the workspace or to codeloop's own configuration, plan mode.

In every mode, bypass included: the catastrophic class is refused whatever the rules
say, and deny rules hold. Risky commands (curl|sh, force pushes, publishing, sudo,
writing shell rc files...) are asked in every mode but bypass unless an allow rule
that names them (not a bare ``Bash``) matches. Ask rules do not hold in bypass.
Writes to the policy's own settings files are asked in every mode, bypass included.
"""

from __future__ import annotations

import logging
import os
from pathlib import Path

from codeloop.policy.rules import Rule, RuleClass, RuleSet, escape_glob, part_rule_text, rule_forms, whole_command_rule_text
from codeloop.policy.shell import Part, analyze, is_secret_path
from codeloop.policy.sources import (
    Source,
    append_allow_rules,
    default_config_home,
    file_stamp,
    gate_allow_rules,
    load_file,
    load_permissions,
)
from codeloop.policy.types import MODES, Decision, Mode, PermissionRequest, ProjectRuleGate
from codeloop.policy.verdicts import SANDBOX_ALLOWED, Evaluation, Verdict, combine

log = logging.getLogger(__name__)

BYPASS_WARNING = (
    "bypass mode is on: edits and commands run without asking (catastrophic commands are still "
    "refused, and changes to codeloop's own settings are still asked)."
)
# The agent's own configuration, relative to the workspace root: what decides its
# permissions, runs commands on its behalf (hooks, MCP servers, check commands, editor
# tasks) or defines its agents and commands. Changing any of it is asked in every mode.
PROTECTED_FILES = (".mcp.json", ".vscode/settings.json", ".vscode/mcp.json", ".vscode/tasks.json",
                   ".git/config")
PROTECTED_DIRS = (".codeloop", ".claude", ".git/hooks")

PLAN_NOTE = (
    "You are in plan mode: read-only. Explore the code with the read-only tools and "
    "read-only shell commands (ls, cat, grep, git status/log/diff...), but do not edit "
    "files or run commands that change anything; they are refused. End your turn with a "
    "concrete, step-by-step plan of the changes you propose; the user will switch modes "
    "to carry it out."
)
PLAN_DENY = "plan mode is read-only"
# Modes where a sandboxed command's unknown parts run without asking (sandbox.autoAllow).
SANDBOX_AUTO_ALLOW_MODES = ("ask", "acceptEdits")
# Findings only a rule spelling out the whole command string can allow.
WHOLE_COMMAND_CODES = {"download-exec", "parse-error"}


def _realpath(path: Path) -> Path | None:
    """None for text no file can have (a NUL byte, a lone surrogate): the tool refuses
    such a call itself, and the rules still see the text."""
    try:
        return Path(os.path.realpath(path))
    except (OSError, ValueError):
        return None


class PermissionPolicy:
    """Decides every tool call that needs permission. Never raises from ``decide``.

    ``gate`` decides which of the project files' allow rules apply (``ProjectRuleGate``);
    without one, they all do (the policy alone, as in its unit tests): every host passes
    the runtime's project trust."""

    def __init__(self, root: Path, mode: Mode = "ask", user_settings: dict | None = None,
                 config_home: Path | None = None, *, home: Path | None = None,
                 gate: ProjectRuleGate | None = None) -> None:
        self.root = Path(os.path.realpath(Path(root).expanduser()))
        self.home = Path(os.path.normpath(Path(home) if home is not None else Path.home()))
        self.config_home = Path(config_home) if config_home is not None else default_config_home()
        self._mode: Mode = "ask"
        self.mode = mode
        self._user_settings = user_settings
        self.problems: list[str] = []
        self.rules = RuleSet()
        self.sources: list[Source] = []
        self._stamps: dict[Path, tuple[int, int] | None] = {}
        self.gate = gate
        self._gate_version: int | None = None
        # Allow rules of the project's files that the gate holds back: (file, rule).
        self.held: list[tuple[Path, str]] = []
        self.reload()

    # -- configuration -------------------------------------------------------

    @property
    def mode(self) -> Mode:
        return self._mode

    @mode.setter
    def mode(self, value: str) -> None:
        if value not in MODES:
            log.warning("unknown permission mode %r; using 'ask'", value)
            value = "ask"
        self._mode = value  # type: ignore[assignment]

    @property
    def user_config_file(self) -> Path:
        return self.config_home / "settings.json"

    @property
    def project_file(self) -> Path:
        return self.root / ".codeloop" / "settings.json"

    @property
    def local_file(self) -> Path:
        return self.root / ".codeloop" / "settings.local.json"

    def _files(self) -> list[Path]:
        return [self.user_config_file, self.project_file, self.local_file]

    def is_protected(self, path: Path) -> bool:
        """The agent's own configuration (settings, hooks, MCP servers, agents, the user's
        codeloop folder): changing it is always asked, even in bypass, and the user must
        answer that very change (``Decision.confirm``)."""
        p = Path(os.path.normpath(path))
        if p in {Path(os.path.normpath(f)) for f in self._files()}:
            return True
        claude_dir = os.environ.get("CLAUDE_CONFIG_DIR")  # Claude Code's user folder, moved
        for base in (self.config_home, self.home / ".claude", *([Path(claude_dir)] if claude_dir else [])):
            if p == base or base in p.parents:
                return True
        try:
            rel = p.relative_to(self.root)
        except ValueError:
            return False
        text = rel.as_posix()
        if text in PROTECTED_FILES:
            return True
        return any(text == d or text.startswith(d + "/") for d in PROTECTED_DIRS)

    def set_user_settings(self, settings: dict | None) -> None:
        self._user_settings = settings
        self.reload()

    def reload(self) -> None:
        sources: list[Source] = []
        sources.append(load_permissions(self._user_settings, "editor settings", self.home))
        for path in self._files():
            src = load_file(path, self.home)
            if src is not None:
                sources.append(src)
        self._stamps = {p: file_stamp(p) for p in self._files()}
        self.held = self._gate_project_rules(sources)
        rules = RuleSet()
        problems: list[str] = []
        for src in sources:
            rules.extend(src.rules)
            problems.extend(src.problems)
        self.sources = sources
        self.rules = rules
        self.problems = problems
        for p in problems:
            log.warning("permission settings: %s", p)

    def _gate_project_rules(self, sources: list[Source]) -> list[tuple[Path, str]]:
        if self.gate is None:
            return []
        self._gate_version = self.gate.version
        return gate_allow_rules(sources, {self.project_file, self.local_file}, self.gate)

    def _maybe_reload(self) -> None:
        """Pick up edits to the settings files (the user may edit them mid-session), and
        the user's answer about the project's allow rules."""
        try:
            gate_moved = self.gate is not None and self.gate.version != self._gate_version
            if gate_moved or any(file_stamp(p) != s for p, s in self._stamps.items()):
                self.reload()
        except Exception:  # pragma: no cover - defensive
            log.exception("reloading permission settings failed")

    # -- the loop's API --------------------------------------------------------

    def tool_visible(self, kind: str | None, read_only: bool) -> bool:
        """False for mutating tools in plan mode. Shell-like tools (kind "Bash") stay: they
        run read-only commands there, each decided by the policy."""
        if self._mode != "plan" or read_only:
            return True
        return kind == "Bash"

    def describe_mode(self) -> str | None:
        return PLAN_NOTE if self._mode == "plan" else None

    def decide(self, req: PermissionRequest) -> Decision:
        try:
            return self._evaluate(req).decision()
        except Exception as e:  # a policy bug must never become "allow"
            log.exception("permission decision failed for %r", req)
            return Decision("ask", f"the permission check failed ({type(e).__name__}); asking instead")

    def remember(self, req: PermissionRequest) -> list[str]:
        """"Always allow": write the precise rule(s) for ``req`` to settings.local.json.

        For a compound command, one exact rule per part that needed asking; never a
        rule for a catastrophic command. Returns the rules written (may be empty).
        """
        ev = self._evaluate(req)
        if ev.catastrophic or ev.action == "deny" and not ev.suggestions:
            return []
        rules = [r for r in ev.suggestions if r]
        if not rules:
            return []
        written = append_allow_rules(self.local_file, self.root, rules)
        if self.gate is not None and written:
            try:
                self.gate.remembered(written)
            except Exception:
                log.exception("telling the project rule gate about remembered rules failed")
        self.reload()
        return written

    # -- evaluation ------------------------------------------------------------

    def _evaluate(self, req: PermissionRequest) -> Evaluation:
        self._maybe_reload()
        if req.kind == "Bash":
            return self._bash(req)
        if req.kind == "Read":
            return self._read(req)
        if req.kind in ("Edit", "Write"):
            return self._edit(req)
        if req.kind == "Tool":
            return self._tool(req)
        return Evaluation("ask", f"unknown permission kind {req.kind!r}")

    # Tool: a call of a tool named by ``req.target`` (MCP tools: mcp__server__tool)
    def _tool(self, req: PermissionRequest) -> Evaluation:
        name = req.target
        r = self.rules.first_tool("deny", name)
        if r:
            return Evaluation("deny", f"{name} is denied by a rule", r.text)
        if self._mode == "bypass":
            return Evaluation("allow", "bypass mode")
        r = self.rules.first_tool("ask", name)
        if r:
            return Evaluation("ask", f"{name} needs approval (rule {r.text})", r.text, [name])
        r = self.rules.first_tool("allow", name)
        if r:
            return Evaluation("allow", f"allowed by rule {r.text}", r.text)
        return Evaluation("ask", f"{name} needs approval: no allow rule names it", None, [name])

    def _cwd(self, req: PermissionRequest) -> Path:
        cwd = Path(req.cwd) if req.cwd else self.root
        if not cwd.is_absolute():
            cwd = self.root / cwd
        return Path(os.path.normpath(cwd))

    def _paths(self, req: PermissionRequest) -> list[Path]:
        out: list[Path] = []
        if req.path is not None:
            out.append(Path(os.path.normpath(req.path)))
        raw = req.target or ""
        if raw:
            p = Path(raw)
            if raw == "~" or raw.startswith("~/"):
                p = self.home / raw[2:] if raw != "~" else self.home
            elif not p.is_absolute():
                p = self._cwd(req) / p
            out.append(Path(os.path.normpath(p)))
        extra = [r for r in map(_realpath, out) if r is not None]
        return list(dict.fromkeys(out + extra))

    def _rel_rule_path(self, path: Path) -> str:
        try:
            rel = path.relative_to(self.root).as_posix()
        except ValueError:
            try:
                return "~/" + escape_glob(path.relative_to(self.home).as_posix())
            except ValueError:
                return escape_glob(str(path))
        rel = escape_glob(rel)
        return rel if "/" in rel else "./" + rel

    # Read
    def _read(self, req: PermissionRequest) -> Evaluation:
        v = self._path_verdict("Read", self._paths(req), secret_default=True)
        return Evaluation(v.action, v.reason, v.rule, v.suggestions)

    def _path_verdict(self, kind: str, paths: list[Path], secret_default: bool) -> Verdict:
        name = paths[0] if paths else Path("?")
        shown = self._display(name)
        r = self.rules.first_path("deny", kind, paths, self.root)
        if r:
            return Verdict("deny", f"reading {shown} is denied by a rule", r.text)
        if self._mode == "bypass":
            return Verdict("allow", "bypass mode")
        r = self.rules.first_path("ask", kind, paths, self.root)
        if r:
            return Verdict("ask", f"reading {shown} needs approval (rule {r.text})", r.text,
                            [f"{kind}({self._rel_rule_path(name)})"])
        secret = secret_default and any(is_secret_path(p, self.home) for p in paths)
        r = self.rules.first_path("allow", kind, paths, self.root, explicit=secret)
        if r:
            return Verdict("allow", f"allowed by rule {r.text}", r.text)
        if secret:
            return Verdict("ask", f"{shown} may hold secrets: reading it needs approval", None,
                            [f"{kind}({self._rel_rule_path(name)})"])
        return Verdict("allow", "reads are allowed")

    def _display(self, path: Path) -> str:
        try:
            return path.relative_to(self.root).as_posix() or "."
        except ValueError:
            return str(path)

    # Edit / Write
    def _edit(self, req: PermissionRequest) -> Evaluation:
        paths = self._paths(req)
        v = self._write_verdict(req.kind, paths, how="editing", inside_default=True)
        return Evaluation(v.action, v.reason, v.rule, v.suggestions, confirm=v.confirm)

    def _write_verdict(self, kind: str, paths: list[Path], how: str, inside_default: bool,
                       code: str | None = None) -> Verdict:
        """Edits by the edit tools (inside_default: the mode decides) and writes by commands."""
        name = paths[0] if paths else Path("?")
        shown = self._display(name)
        precise = f"{'Edit' if kind == 'Edit' else 'Write'}({self._rel_rule_path(name)})"
        r = self.rules.first_path("deny", kind, paths, self.root)
        if r:
            return Verdict("deny", f"{how} {shown} is denied by a rule", r.text)
        if self._mode == "plan":
            return Verdict("deny", f"{PLAN_DENY}: {how} {shown} is not allowed until the plan is accepted")
        inside = any(p == self.root or self.root in p.parents for p in paths)
        if any(self.is_protected(p) for p in paths):
            r = self.rules.first_path("allow", kind, paths, self.root, explicit=True)
            if r:
                return Verdict("allow", f"allowed by rule {r.text}", r.text)
            return Verdict("ask", f"{shown} is part of codeloop's own configuration (permissions, hooks, "
                                   "MCP servers): changing it always needs your answer", confirm=True)
        if self._mode == "bypass":
            return Verdict("allow", "bypass mode")
        r = self.rules.first_path("ask", kind, paths, self.root)
        if r:
            return Verdict("ask", f"{how} {shown} needs approval (rule {r.text})", r.text, [precise])
        if code == "rc":
            r = self.rules.first_path("allow", kind, paths, self.root, explicit=True)
            if r:
                return Verdict("allow", f"allowed by rule {r.text}", r.text)
            return Verdict("ask", f"{how} the shell startup file {shown} needs approval", None, [precise])
        r = self.rules.first_path("allow", kind, paths, self.root, explicit=not inside)
        if r:
            return Verdict("allow", f"allowed by rule {r.text}", r.text)
        if not inside:
            return Verdict("ask", f"{how} {shown}, outside the workspace, needs approval", None, [precise])
        if not inside_default:
            return Verdict("allow", "writes inside the workspace")
        if self._mode == "ask":
            return Verdict("ask", f"edits are proposed for review in ask mode ({shown})", None, [precise])
        return Verdict("allow", f"{self._mode} mode applies edits")

    # Bash
    def _bash(self, req: PermissionRequest) -> Evaluation:
        cmd = req.target or ""
        cwd = self._cwd(req)
        if not cmd.strip():
            return Evaluation("deny", "empty command")
        analysis = analyze(cmd, cwd, self.root, self.home)
        cata = [f for f in analysis.findings if f.level == "catastrophic"]
        if cata:
            what = "; ".join(dict.fromkeys(f.message for f in cata))
            return Evaluation("deny", f"refused: this command {what}. codeloop never runs this, in any mode "
                                 f"and whatever the rules say", None, [], True)
        # An allow rule spelling out this whole command string (what "always allow"
        # writes for `curl ... | sh` or a command that does not parse).
        whole = self._whole_command_rule("allow", cmd)
        whole_only = any(f.code in WHOLE_COMMAND_CODES for f in analysis.findings)
        verdicts: list[Verdict] = []
        parts = analysis.parsed.parts
        for i, part in enumerate(parts):
            verdicts.append(self._part_verdict(part, analysis.read_only[i] if i < len(analysis.read_only) else False))
        for f in analysis.findings:
            found_in = parts[f.part] if f.part is not None and f.part < len(parts) else None
            if f.level == "risky":
                verdicts.append(self._risky_verdict(f.code, f.message, found_in, cmd))
            elif f.level == "write":
                verdicts.append(self._command_write_verdict(f.code, f.message, f.path))
            elif f.level == "read" and f.path is not None:
                verdicts.append(self._command_read_verdict(f.code, f.path))
        if whole is not None and self._mode != "bypass":
            verdicts = [
                Verdict("allow", f"the whole command is allowed by rule {whole.text}", whole.text)
                if v.action == "ask" and v.rule is None else v
                for v in verdicts
            ]
        if req.sandboxed and self._mode in SANDBOX_AUTO_ALLOW_MODES:
            verdicts = [Verdict("allow", SANDBOX_ALLOWED) if v.action == "ask" and v.unknown else v
                        for v in verdicts]
        ev = combine(verdicts, "nothing to run")
        if ev.action == "ask" and whole_only:
            ev.suggestions = [whole_command_rule_text(cmd)]
        return ev

    def _whole_command_rule(self, cls: RuleClass, cmd: str) -> Rule | None:
        want = " ".join(cmd.split())
        for r in self.rules.of(cls):
            if r.tool == "Bash" and r.spec is not None and not r.broad and " ".join(r.spec.split()) == want:
                return r
        return None

    def _part_verdict(self, part: Part, read_only: bool) -> Verdict:
        shown = " ".join(part.full_words) or part.text or "(redirection)"
        if not part.words and not part.assignments:
            return Verdict("allow", "redirection only")
        deny_forms, allow_forms = rule_forms(part)
        r = self.rules.first_command("deny", deny_forms, part.open_args)
        if r:
            return Verdict("deny", f"`{shown}` is denied by a rule", r.text)
        if self._mode == "plan" and not read_only:
            return Verdict("deny", f"{PLAN_DENY}: `{shown}` may change things, so it is not run in plan mode. "
                                    f"Use read-only commands, then end with a plan")
        if self._mode != "bypass":
            r = self.rules.first_command("ask", deny_forms, part.open_args)
            if r:
                return Verdict("ask", f"`{shown}` needs approval (rule {r.text})", r.text, [part_rule_text(part)])
        if part.transparent:
            return Verdict("allow", "runs only the commands inside it")
        r = self.rules.first_command("allow", allow_forms, part.open_args)
        if r:
            return Verdict("allow", f"`{shown}` is allowed by rule {r.text}", r.text)
        if self._mode == "bypass":
            return Verdict("allow", "bypass mode")
        return Verdict("ask", f"`{shown}` needs approval: no allow rule matches it", None, [part_rule_text(part)],
                        unknown=True)

    def _risky_verdict(self, code: str, message: str, part: Part | None, cmd: str) -> Verdict:
        if code == "parse-error":
            if self._mode == "plan":
                return Verdict("deny", f"{PLAN_DENY}: {message}")
            if self._mode == "bypass":
                return Verdict("allow", "bypass mode")
            return Verdict("ask", message, None, [whole_command_rule_text(cmd)])
        if self._mode == "plan" and code in ("dynamic-code", "dynamic-command", "download-exec", "sudo"):
            return Verdict("deny", f"{PLAN_DENY}: {message}")
        if self._mode == "bypass":
            return Verdict("allow", "bypass mode")
        if code in WHOLE_COMMAND_CODES:
            # only a rule naming this exact command string allows it (see _bash)
            return Verdict("ask", f"the command {message}: this always needs approval", None,
                            [whole_command_rule_text(cmd)])
        if part is not None:
            _, allow_forms = rule_forms(part)
            r = self.rules.first_command("allow", allow_forms, part.open_args, explicit=True)
            if r:
                return Verdict("allow", f"allowed by rule {r.text}", r.text)
            shown = " ".join(part.full_words)
            return Verdict("ask", f"`{shown}` {message}: this always needs approval", None,
                            [part_rule_text(part)])
        return Verdict("ask", f"{message}: this always needs approval")

    def _command_write_verdict(self, code: str, message: str, path: Path | None) -> Verdict:
        if path is None or code == "unknown":
            if self._mode == "plan":
                return Verdict("deny", f"{PLAN_DENY}: the command {message}")
            if self._mode == "bypass":
                return Verdict("allow", "bypass mode")
            return Verdict("ask", f"the command {message}")
        paths = list(dict.fromkeys([path, Path(os.path.realpath(path))]))
        return self._write_verdict("Write", paths, how="the command writes", inside_default=False, code=code)

    def _command_read_verdict(self, code: str, path: Path) -> Verdict:
        paths = list(dict.fromkeys([path, Path(os.path.realpath(path))]))
        return self._path_verdict("Read", paths, secret_default=(code == "secret"))



__all__ = ["BYPASS_WARNING", "PLAN_NOTE", "PermissionPolicy", "ProjectRuleGate"]
