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

import json
import logging
import os
from dataclasses import dataclass, field
from pathlib import Path

from codeloop.edits.disk import ensure_codeloop_gitignore, write_atomic
from codeloop.policy.rules import RuleSet, command_rule_text, escape_glob
from codeloop.policy.shell import BENIGN_WRAPPERS, Part, analyze, base_name, is_secret_path, unwrap, unwrap_one
from codeloop.policy.sources import Source, default_config_home, file_stamp, gate_allow_rules, load_file, load_permissions
from codeloop.policy.types import MODES, Action, Decision, Mode, PermissionRequest, ProjectRuleGate

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
SANDBOX_ALLOWED = "no rule allows it, but it runs in the sandbox, which contains it (sandbox.autoAllow)"
# Findings only a rule spelling out the whole command string can allow.
WHOLE_COMMAND_CODES = {"download-exec", "parse-error"}


def command_rule_text_whole(cmd: str) -> str:
    return "Bash(" + " ".join(cmd.split()) + ")"


_RANK = {"allow": 0, "ask": 1, "deny": 2}


def _realpath(path: Path) -> Path | None:
    """None for text no file can have (a NUL byte, a lone surrogate): the tool refuses
    such a call itself, and the rules still see the text."""
    try:
        return Path(os.path.realpath(path))
    except (OSError, ValueError):
        return None


@dataclass
class _Verdict:
    action: Action
    reason: str
    rule: str | None = None
    suggestions: list[str] = field(default_factory=list)  # rules "always allow" would add
    confirm: bool = False  # the user must answer this very call, in every mode
    unknown: bool = False  # asked only because no rule allows it (nothing risky found)


@dataclass
class _Eval:
    action: Action
    reason: str
    rule: str | None = None
    suggestions: list[str] = field(default_factory=list)
    catastrophic: bool = False
    confirm: bool = False

    def decision(self) -> Decision:
        sugg = ", ".join(dict.fromkeys(self.suggestions)) if self.action == "ask" and self.suggestions else None
        return Decision(self.action, self.reason, self.rule, sugg, self.catastrophic, self.action == "ask" and self.confirm)


def _combine(verdicts: list[_Verdict], default_reason: str) -> _Eval:
    if not verdicts:
        return _Eval("allow", default_reason)
    worst = max(_RANK[v.action] for v in verdicts)
    chosen = [v for v in verdicts if _RANK[v.action] == worst]
    action = chosen[0].action
    if action == "allow":
        rules = list(dict.fromkeys(v.rule for v in chosen if v.rule))
        reason = chosen[0].reason if len(chosen) == 1 else "every part of the command is allowed"
        if len(chosen) > 1 and any(v.reason == SANDBOX_ALLOWED for v in chosen):
            reason += " (the parts no rule allows run in the sandbox, which contains them: sandbox.autoAllow)"
        return _Eval("allow", reason, ", ".join(rules) or None)
    reasons = list(dict.fromkeys(v.reason for v in chosen))
    reason = reasons[0] if len(reasons) == 1 else "; ".join(reasons[:4]) + (" ..." if len(reasons) > 4 else "")
    rule = next((v.rule for v in chosen if v.rule), None)
    suggestions: list[str] = []
    if action == "ask":
        for v in verdicts:
            if v.action == "ask":
                suggestions.extend(v.suggestions)
    confirm = any(v.confirm for v in chosen)
    return _Eval(action, reason, rule, list(dict.fromkeys(suggestions)), confirm=confirm)


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
        written = self._append_local_rules(rules)
        if self.gate is not None and written:
            try:
                self.gate.remembered(written)
            except Exception:
                log.exception("telling the project rule gate about remembered rules failed")
        self.reload()
        return written

    # -- evaluation ------------------------------------------------------------

    def _evaluate(self, req: PermissionRequest) -> _Eval:
        self._maybe_reload()
        if req.kind == "Bash":
            return self._bash(req)
        if req.kind == "Read":
            return self._read(req)
        if req.kind in ("Edit", "Write"):
            return self._edit(req)
        if req.kind == "Tool":
            return self._tool(req)
        return _Eval("ask", f"unknown permission kind {req.kind!r}")

    # Tool: a call of a tool named by ``req.target`` (MCP tools: mcp__server__tool)
    def _tool(self, req: PermissionRequest) -> _Eval:
        name = req.target
        r = self.rules.first_tool("deny", name)
        if r:
            return _Eval("deny", f"{name} is denied by a rule", r.text)
        if self._mode == "bypass":
            return _Eval("allow", "bypass mode")
        r = self.rules.first_tool("ask", name)
        if r:
            return _Eval("ask", f"{name} needs approval (rule {r.text})", r.text, [name])
        r = self.rules.first_tool("allow", name)
        if r:
            return _Eval("allow", f"allowed by rule {r.text}", r.text)
        return _Eval("ask", f"{name} needs approval: no allow rule names it", None, [name])

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
    def _read(self, req: PermissionRequest) -> _Eval:
        v = self._path_verdict("Read", self._paths(req), secret_default=True)
        return _Eval(v.action, v.reason, v.rule, v.suggestions)

    def _path_verdict(self, kind: str, paths: list[Path], secret_default: bool) -> _Verdict:
        name = paths[0] if paths else Path("?")
        shown = self._display(name)
        r = self.rules.first_path("deny", kind, paths, self.root)
        if r:
            return _Verdict("deny", f"reading {shown} is denied by a rule", r.text)
        if self._mode == "bypass":
            return _Verdict("allow", "bypass mode")
        r = self.rules.first_path("ask", kind, paths, self.root)
        if r:
            return _Verdict("ask", f"reading {shown} needs approval (rule {r.text})", r.text,
                            [f"{kind}({self._rel_rule_path(name)})"])
        secret = secret_default and any(is_secret_path(p, self.home) for p in paths)
        r = self.rules.first_path("allow", kind, paths, self.root, explicit=secret)
        if r:
            return _Verdict("allow", f"allowed by rule {r.text}", r.text)
        if secret:
            return _Verdict("ask", f"{shown} may hold secrets: reading it needs approval", None,
                            [f"{kind}({self._rel_rule_path(name)})"])
        return _Verdict("allow", "reads are allowed")

    def _display(self, path: Path) -> str:
        try:
            return path.relative_to(self.root).as_posix() or "."
        except ValueError:
            return str(path)

    # Edit / Write
    def _edit(self, req: PermissionRequest) -> _Eval:
        paths = self._paths(req)
        v = self._write_verdict(req.kind, paths, how="editing", inside_default=True)
        return _Eval(v.action, v.reason, v.rule, v.suggestions, confirm=v.confirm)

    def _write_verdict(self, kind: str, paths: list[Path], how: str, inside_default: bool,
                       code: str | None = None) -> _Verdict:
        """Edits by the edit tools (inside_default: the mode decides) and writes by commands."""
        name = paths[0] if paths else Path("?")
        shown = self._display(name)
        precise = f"{'Edit' if kind == 'Edit' else 'Write'}({self._rel_rule_path(name)})"
        r = self.rules.first_path("deny", kind, paths, self.root)
        if r:
            return _Verdict("deny", f"{how} {shown} is denied by a rule", r.text)
        if self._mode == "plan":
            return _Verdict("deny", f"{PLAN_DENY}: {how} {shown} is not allowed until the plan is accepted")
        inside = any(p == self.root or self.root in p.parents for p in paths)
        if any(self.is_protected(p) for p in paths):
            r = self.rules.first_path("allow", kind, paths, self.root, explicit=True)
            if r:
                return _Verdict("allow", f"allowed by rule {r.text}", r.text)
            return _Verdict("ask", f"{shown} is part of codeloop's own configuration (permissions, hooks, "
                                   "MCP servers): changing it always needs your answer", confirm=True)
        if self._mode == "bypass":
            return _Verdict("allow", "bypass mode")
        r = self.rules.first_path("ask", kind, paths, self.root)
        if r:
            return _Verdict("ask", f"{how} {shown} needs approval (rule {r.text})", r.text, [precise])
        if code == "rc":
            r = self.rules.first_path("allow", kind, paths, self.root, explicit=True)
            if r:
                return _Verdict("allow", f"allowed by rule {r.text}", r.text)
            return _Verdict("ask", f"{how} the shell startup file {shown} needs approval", None, [precise])
        r = self.rules.first_path("allow", kind, paths, self.root, explicit=not inside)
        if r:
            return _Verdict("allow", f"allowed by rule {r.text}", r.text)
        if not inside:
            return _Verdict("ask", f"{how} {shown}, outside the workspace, needs approval", None, [precise])
        if not inside_default:
            return _Verdict("allow", "writes inside the workspace")
        if self._mode == "ask":
            return _Verdict("ask", f"edits are proposed for review in ask mode ({shown})", None, [precise])
        return _Verdict("allow", f"{self._mode} mode applies edits")

    # Bash
    def _bash(self, req: PermissionRequest) -> _Eval:
        cmd = req.target or ""
        cwd = self._cwd(req)
        if not cmd.strip():
            return _Eval("deny", "empty command")
        analysis = analyze(cmd, cwd, self.root, self.home)
        cata = [f for f in analysis.findings if f.level == "catastrophic"]
        if cata:
            what = "; ".join(dict.fromkeys(f.message for f in cata))
            return _Eval("deny", f"refused: this command {what}. codeloop never runs this, in any mode "
                                 f"and whatever the rules say", None, [], True)
        # An allow rule spelling out this whole command string (what "always allow"
        # writes for `curl ... | sh` or a command that does not parse).
        whole = self._whole_command_rule("allow", cmd)
        whole_only = any(f.code in WHOLE_COMMAND_CODES for f in analysis.findings)
        verdicts: list[_Verdict] = []
        parts = analysis.parsed.parts
        for i, part in enumerate(parts):
            verdicts.append(self._part_verdict(part, analysis.read_only[i] if i < len(analysis.read_only) else False))
        for f in analysis.findings:
            part = parts[f.part] if f.part is not None and f.part < len(parts) else None
            if f.level == "risky":
                verdicts.append(self._risky_verdict(f.code, f.message, part, cmd))
            elif f.level == "write":
                verdicts.append(self._command_write_verdict(f.code, f.message, f.path))
            elif f.level == "read" and f.path is not None:
                verdicts.append(self._command_read_verdict(f.code, f.path))
        if whole is not None and self._mode != "bypass":
            verdicts = [
                _Verdict("allow", f"the whole command is allowed by rule {whole.text}", whole.text)
                if v.action == "ask" and v.rule is None else v
                for v in verdicts
            ]
        if req.sandboxed and self._mode in SANDBOX_AUTO_ALLOW_MODES:
            verdicts = [_Verdict("allow", SANDBOX_ALLOWED) if v.action == "ask" and v.unknown else v
                        for v in verdicts]
        ev = _combine(verdicts, "nothing to run")
        if ev.action == "ask" and whole_only:
            ev.suggestions = [command_rule_text_whole(cmd)]
        return ev

    def _whole_command_rule(self, cls: str, cmd: str):
        want = " ".join(cmd.split())
        for r in self.rules.of(cls):  # type: ignore[arg-type]
            if r.tool == "Bash" and r.spec is not None and not r.broad and " ".join(r.spec.split()) == want:
                return r
        return None

    def _forms(self, part: Part) -> tuple[list[list[str]], list[list[str]]]:
        """Word lists a rule may match: (for deny/ask rules, for allow rules).

        Allow rules see the command as written, and through benign wrappers
        (``timeout 60 npm test`` matches ``Bash(npm test)``). Deny and ask rules see
        through every wrapper (``sudo rm x``, ``env X=1 rm x`` match ``Bash(rm:*)``).
        """
        full = part.full_words
        argv = part.argv
        allow_forms = [full]
        words = list(part.words)
        for _ in range(8):
            step = unwrap_one(words)
            if step is None or step[1] not in BENIGN_WRAPPERS:
                break
            words = step[0]
            allow_forms.append(part.assignments + [w.text for w in words])
        eff, _ = unwrap(part.words)
        deny_forms = [full, argv, [w.text for w in eff]] + allow_forms
        # basename of the command: `/bin/rm -rf x` is matched by Bash(rm:*) deny rules
        more = []
        for f in deny_forms:
            if f and "/" in f[0]:
                more.append([base_name(f[0])] + f[1:])
        deny_forms += more
        uniq: list[list[str]] = []
        for f in deny_forms:
            if f and f not in uniq:
                uniq.append(f)
        return uniq, [f for f in allow_forms if f]

    def _part_rule_text(self, part: Part) -> str:
        text = command_rule_text(part.full_words)
        if part.open_args:
            text = text[:-1] + ":*)"
        return text

    def _part_verdict(self, part: Part, read_only: bool) -> _Verdict:
        shown = " ".join(part.full_words) or part.text or "(redirection)"
        if not part.words and not part.assignments:
            return _Verdict("allow", "redirection only")
        deny_forms, allow_forms = self._forms(part)
        r = self.rules.first_command("deny", deny_forms, part.open_args)
        if r:
            return _Verdict("deny", f"`{shown}` is denied by a rule", r.text)
        if self._mode == "plan" and not read_only:
            return _Verdict("deny", f"{PLAN_DENY}: `{shown}` may change things, so it is not run in plan mode. "
                                    f"Use read-only commands, then end with a plan")
        if self._mode != "bypass":
            r = self.rules.first_command("ask", deny_forms, part.open_args)
            if r:
                return _Verdict("ask", f"`{shown}` needs approval (rule {r.text})", r.text, [self._part_rule_text(part)])
        if part.transparent:
            return _Verdict("allow", "runs only the commands inside it")
        r = self.rules.first_command("allow", allow_forms, part.open_args)
        if r:
            return _Verdict("allow", f"`{shown}` is allowed by rule {r.text}", r.text)
        if self._mode == "bypass":
            return _Verdict("allow", "bypass mode")
        return _Verdict("ask", f"`{shown}` needs approval: no allow rule matches it", None, [self._part_rule_text(part)],
                        unknown=True)

    def _risky_verdict(self, code: str, message: str, part: Part | None, cmd: str) -> _Verdict:
        if code == "parse-error":
            if self._mode == "plan":
                return _Verdict("deny", f"{PLAN_DENY}: {message}")
            if self._mode == "bypass":
                return _Verdict("allow", "bypass mode")
            return _Verdict("ask", message, None, [command_rule_text_whole(cmd)])
        if self._mode == "plan" and code in ("dynamic-code", "dynamic-command", "download-exec", "sudo"):
            return _Verdict("deny", f"{PLAN_DENY}: {message}")
        if self._mode == "bypass":
            return _Verdict("allow", "bypass mode")
        if code in WHOLE_COMMAND_CODES:
            # only a rule naming this exact command string allows it (see _bash)
            return _Verdict("ask", f"the command {message}: this always needs approval", None,
                            [command_rule_text_whole(cmd)])
        if part is not None:
            _, allow_forms = self._forms(part)
            r = self.rules.first_command("allow", allow_forms, part.open_args, explicit=True)
            if r:
                return _Verdict("allow", f"allowed by rule {r.text}", r.text)
            shown = " ".join(part.full_words)
            return _Verdict("ask", f"`{shown}` {message}: this always needs approval", None,
                            [self._part_rule_text(part)])
        return _Verdict("ask", f"{message}: this always needs approval")

    def _command_write_verdict(self, code: str, message: str, path: Path | None) -> _Verdict:
        if path is None or code == "unknown":
            if self._mode == "plan":
                return _Verdict("deny", f"{PLAN_DENY}: the command {message}")
            if self._mode == "bypass":
                return _Verdict("allow", "bypass mode")
            return _Verdict("ask", f"the command {message}")
        paths = list(dict.fromkeys([path, Path(os.path.realpath(path))]))
        return self._write_verdict("Write", paths, how="the command writes", inside_default=False, code=code)

    def _command_read_verdict(self, code: str, path: Path) -> _Verdict:
        paths = list(dict.fromkeys([path, Path(os.path.realpath(path))]))
        return self._path_verdict("Read", paths, secret_default=(code == "secret"))

    # -- remember ----------------------------------------------------------------

    def _append_local_rules(self, rules: list[str]) -> list[str]:
        path = self.local_file
        path.parent.mkdir(parents=True, exist_ok=True)
        ensure_codeloop_gitignore(self.root)
        data: dict = {}
        if path.exists():
            try:
                text = path.read_text(encoding="utf-8")
                data = json.loads(text) if text.strip() else {}
            except (OSError, UnicodeDecodeError, json.JSONDecodeError) as e:
                raise ValueError(f"{path} is not valid JSON ({e}); fix it before adding rules") from None
            if not isinstance(data, dict):
                raise ValueError(f"{path} must hold a JSON object; fix it before adding rules")
        perms = data.get("permissions")
        if perms is None:
            perms = {}
            data["permissions"] = perms
        if not isinstance(perms, dict):
            raise ValueError(f"\"permissions\" in {path} must be an object; fix it before adding rules")
        allow = perms.get("allow")
        if allow is None:
            allow = []
            perms["allow"] = allow
        if not isinstance(allow, list):
            raise ValueError(f"\"permissions.allow\" in {path} must be a list; fix it before adding rules")
        written: list[str] = []
        for rule in rules:
            if rule not in allow:
                allow.append(rule)
            written.append(rule)
        write_atomic(path, json.dumps(data, indent=2, ensure_ascii=False) + "\n")
        return written


__all__ = ["BYPASS_WARNING", "PLAN_NOTE", "PermissionPolicy", "ProjectRuleGate"]
