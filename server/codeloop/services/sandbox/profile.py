"""What the sandbox protects, as paths: pure computations over the filesystem, no processes.

- :func:`real_home` finds the user's home from the passwd database, not from ``$HOME``.
- :func:`secret_homes` and :func:`hidden_secrets`: the home directories whose secrets are
  hidden, and the secrets that exist there (resolved through symlinks).
- :func:`workspace_plan`: inside the workspace, what stays read-only (``.git/hooks``,
  ``.git/config``, ``.codeloop/``, ``.vscode/``, ``.claude/``, ``.mcp.json``), which of those are
  missing and need a mount point so that they cannot be created, which directories are bound
  onto themselves so that a protected path cannot be renamed away with its parent, and which
  git directories outside the workspace must be writable for ``git commit`` to work (a linked
  worktree, or a workspace inside a repository).
- :func:`scrub_env`: the environment without credentials and agent sockets.
"""

from __future__ import annotations

import os
import pwd
import re
import stat
from dataclasses import dataclass, field
from pathlib import Path
from typing import Iterable, Mapping

# Relative to a home directory. Directories are hidden whole; files are replaced by /dev/null.
SECRET_HOME_PATHS: tuple[str, ...] = (
    ".ssh", ".gnupg", ".aws", ".azure", ".kube", ".config/gcloud", ".oci", ".config/doctl",
    ".docker/config.json", ".netrc", ".git-credentials", ".config/git/credentials", ".config/gh",
    ".config/hub", ".npmrc", ".yarnrc", ".pypirc", ".gem/credentials", ".cargo/credentials",
    ".cargo/credentials.toml", ".terraform.d/credentials.tfrc.json", ".vault-token", ".pgpass",
    ".my.cnf", ".s3cfg", ".boto", ".config/rclone", ".password-store", ".local/share/keyrings",
    ".config/op", ".mozilla", ".config/google-chrome", ".config/chromium", ".config/BraveSoftware",
    ".thunderbird", ".config/github-copilot", ".claude", ".claude.json", ".codex",
    ".config/codeloop", ".local/share/codeloop", ".local/state/codeloop",
    ".bash_history", ".zsh_history", ".python_history", ".psql_history", ".mysql_history",
    ".node_repl_history", ".lesshst", ".viminfo",
)

# Inside the workspace: read-only for sandboxed commands, and not creatable when missing.
PROTECTED_DIRS: tuple[str, ...] = (".codeloop", ".vscode", ".claude")
PROTECTED_FILES: tuple[str, ...] = (".mcp.json",)

# Environment variables never passed to a sandboxed command: credentials, and the addresses of
# agents and buses it must not reach (their sockets are hidden anyway).
SECRET_ENV_NAMES = frozenset({
    "SSH_AUTH_SOCK", "SSH_AGENT_PID", "GPG_AGENT_INFO", "DBUS_SESSION_BUS_ADDRESS",
    "DBUS_SYSTEM_BUS_ADDRESS", "DOCKER_HOST", "XDG_RUNTIME_DIR", "KRB5CCNAME",
    "AWS_ACCESS_KEY_ID", "AWS_PROFILE", "GOOGLE_APPLICATION_CREDENTIALS", "KUBECONFIG",
})
# A name is a credential when one of its words (split at "_") is one of these, or its last word
# is KEY/KEYS (OPENAI_API_KEY, AWS_SECRET_ACCESS_KEY, GITHUB_TOKEN, NPM_CONFIG__AUTH, DB_PASSWORD).
SECRET_ENV_WORDS = frozenset({"TOKEN", "TOKENS", "SECRET", "SECRETS", "PASSWORD", "PASSWD", "PASSPHRASE",
                              "APIKEY", "CREDENTIAL", "CREDENTIALS", "AUTH", "COOKIE", "COOKIES"})


def is_secret_env(name: str) -> bool:
    if name in SECRET_ENV_NAMES:
        return True
    words = name.upper().split("_")
    return bool(SECRET_ENV_WORDS.intersection(words)) or words[-1] in ("KEY", "KEYS")


# System directories that passwd entries use as a home (daemons' accounts): no secrets to hide.
NOT_HOMES = frozenset({"/", "/nonexistent", "/bin", "/sbin", "/usr", "/usr/bin", "/usr/sbin", "/dev", "/proc",
                       "/sys", "/etc", "/var", "/tmp", "/run", "/var/run", "/usr/games", "/var/cache/man",
                       "/var/mail", "/var/spool/news", "/var/spool/uucp", "/var/spool/lpd", "/var/backups",
                       "/var/list", "/var/www", "/var/lib/nobody"})


def real_home(uid: int | None = None) -> Path:
    """The home directory of ``uid`` (default: the real uid) in the passwd database.

    ``$HOME`` is not consulted unless the database has no entry: a process can set ``HOME`` to
    anything, and the sandbox must hide the secrets of the real home whatever it says."""
    uid = os.getuid() if uid is None else uid
    try:
        home = pwd.getpwuid(uid).pw_dir
        if home:
            return Path(home)
    except KeyError:
        pass
    return Path(os.path.expanduser("~"))


def secret_homes(real: Path, env: Mapping[str, str] | None = None, *, all_users: bool = False) -> list[Path]:
    """The homes whose secrets are hidden: the real one, ``$HOME`` when it differs, and (for
    root, ``all_users``) every home in the passwd database that exists."""
    out: list[Path] = [Path(real)]
    env = os.environ if env is None else env
    if env.get("HOME"):
        out.append(Path(env["HOME"]))
    if all_users:
        try:
            for entry in pwd.getpwall():
                if entry.pw_dir and entry.pw_dir not in NOT_HOMES and os.path.isdir(entry.pw_dir):
                    out.append(Path(entry.pw_dir))
        except OSError:
            pass
    seen: set[str] = set()
    result = []
    for h in out:
        key = os.path.normpath(str(h))
        if key != "/" and key not in seen:
            seen.add(key)
            result.append(Path(key))
    return result


@dataclass(frozen=True)
class Secret:
    path: Path  # resolved (symlinks followed)
    is_dir: bool


def hidden_secrets(homes: Iterable[Path], env: Mapping[str, str] | None = None) -> list[Secret]:
    """The secrets that exist under ``homes`` (plus codeloop's own config and data under
    ``$XDG_CONFIG_HOME``/``$XDG_DATA_HOME``/``$XDG_STATE_HOME``), resolved through symlinks,
    deduplicated, outermost first (a secret inside another one is dropped)."""
    env = os.environ if env is None else env
    candidates: list[str] = []
    for home in homes:
        h = os.fspath(home)
        candidates += [os.path.join(h, rel) for rel in SECRET_HOME_PATHS]
    for var in ("XDG_CONFIG_HOME", "XDG_DATA_HOME", "XDG_STATE_HOME"):
        if env.get(var):
            candidates.append(os.path.join(env[var], "codeloop"))
    found: dict[str, bool] = {}
    for cand in candidates:
        try:
            st = os.lstat(cand)
        except OSError:
            continue
        if stat.S_ISLNK(st.st_mode):
            resolved = os.path.realpath(cand)
            try:
                st = os.stat(resolved)
            except OSError:
                continue
        else:
            resolved = os.path.normpath(cand)
        found[resolved] = stat.S_ISDIR(st.st_mode)
    kept: list[Secret] = []
    for path in sorted(found, key=lambda x: (x.count("/"), x)):
        if not any(k.is_dir and is_within(path, k.path) for k in kept):
            kept.append(Secret(Path(path), found[path]))
    return kept


def is_within(path: Path | str, parent: Path | str) -> bool:
    """``path`` is ``parent`` or beneath it (lexically; both should be absolute, normalized)."""
    p, q = os.path.normpath(str(path)), os.path.normpath(str(parent))
    return p == q or p.startswith(q.rstrip("/") + "/")


def scrub_env(env: Mapping[str, str]) -> tuple[dict[str, str], list[str]]:
    """``env`` without credentials and agent/bus addresses; returns it and the removed names."""
    kept: dict[str, str] = {}
    removed: list[str] = []
    for name, value in env.items():
        if is_secret_env(name):
            removed.append(name)
        else:
            kept[name] = value
    return kept, sorted(removed)


# -- the workspace ------------------------------------------------------------------------------


@dataclass
class Placeholder:
    """A missing protected path: an empty directory is created there as a mount point (and
    removed again when no sandboxed command needs it, unless ``persistent``)."""

    path: Path
    persistent: bool = False


@dataclass
class WorkspacePlan:
    root: Path
    self_binds: list[Path] = field(default_factory=list)  # bound onto themselves, writable
    read_only: list[Path] = field(default_factory=list)  # existing protected paths
    placeholders: list[Placeholder] = field(default_factory=list)
    writable_outside: list[Path] = field(default_factory=list)  # git dirs outside the workspace
    notes: list[str] = field(default_factory=list)


def _read_gitfile(path: Path) -> Path | None:
    try:
        text = path.read_text(encoding="utf-8", errors="replace").strip()
    except OSError:
        return None
    if not text.startswith("gitdir:"):
        return None
    target = Path(text[len("gitdir:"):].strip())
    if not target.is_absolute():
        target = path.parent / target
    return Path(os.path.realpath(target))


def _common_dir(gitdir: Path) -> Path:
    try:
        rel = (gitdir / "commondir").read_text(encoding="utf-8").strip()
    except OSError:
        return gitdir
    common = Path(rel)
    if not common.is_absolute():
        common = gitdir / common
    return Path(os.path.realpath(common))


def _gitdirs_below(modules: Path, depth: int = 6) -> list[Path]:
    """The submodule git directories under ``.git/modules`` (directories with a HEAD)."""
    out: list[Path] = []
    if depth <= 0 or not modules.is_dir():
        return out
    try:
        entries = sorted(os.scandir(modules), key=lambda e: e.name)
    except OSError:
        return out
    for e in entries:
        if e.is_dir(follow_symlinks=False):
            p = Path(e.path)
            if (p / "HEAD").exists():
                out.append(p)
                out += _gitdirs_below(p / "modules", depth - 1)
            else:
                out += _gitdirs_below(p, depth - 1)
    return out


def _submodule_paths(ws: Path) -> list[Path]:
    try:
        text = (ws / ".gitmodules").read_text(encoding="utf-8", errors="replace")
    except OSError:
        return []
    out = []
    for m in re.finditer(r"^\s*path\s*=\s*(.+?)\s*$", text, re.M):
        p = Path(os.path.normpath(ws / m.group(1)))
        if is_within(p, ws) and p != ws:
            out.append(p)
    return out


def find_git(ws: Path) -> tuple[Path, Path] | None:
    """The ``.git`` entry governing ``ws`` (in it or an ancestor) and its resolved git dir."""
    d = Path(ws)
    while True:
        dot = d / ".git"
        if dot.is_dir() and not dot.is_symlink():
            return dot, dot
        if dot.is_file():
            target = _read_gitfile(dot)
            if target is not None and target.is_dir():
                return dot, target
        if d.parent == d:
            return None
        d = d.parent


def workspace_plan(ws: Path) -> WorkspacePlan:
    ws = Path(os.path.realpath(ws))
    plan = WorkspacePlan(root=ws)
    for name in PROTECTED_DIRS + PROTECTED_FILES:
        p = ws / name
        if os.path.lexists(p):
            if p.is_symlink():
                plan.notes.append(f"{name} is a symlink: its target is read-only, the link itself is not")
                target = Path(os.path.realpath(p))
                if target.exists():
                    plan.read_only.append(target)
            else:
                plan.read_only.append(p)
        else:
            plan.placeholders.append(Placeholder(p))

    found = find_git(ws)
    if found is None:
        return plan
    dot, gitdir = found
    common = _common_dir(gitdir)  # the main repository's git dir for a linked worktree
    if dot.is_file():
        plan.read_only.append(dot)  # a command must not repoint the worktree at another git dir
    repos = [common] + _gitdirs_below(common / "modules")  # each has its own hooks and config
    for g in dict.fromkeys([gitdir] + repos):
        if is_within(g, ws):
            plan.self_binds.append(g)  # a mount point cannot be renamed away with its hooks
        else:
            plan.writable_outside.append(g)  # git commit writes its index and objects there
    for r in repos:
        hooks = r / "hooks"
        if hooks.is_dir():
            plan.read_only.append(hooks)
        elif not os.path.lexists(hooks):
            plan.placeholders.append(Placeholder(hooks, persistent=True))  # git's own directory
        if (r / "config").exists():
            plan.read_only.append(r / "config")
    for g in dict.fromkeys([gitdir] + repos):
        if (g / "config.worktree").exists():
            plan.read_only.append(g / "config.worktree")
    for sub in _submodule_paths(ws):
        gitfile = sub / ".git"
        if gitfile.is_file():
            plan.read_only.append(gitfile)
    # deduplicate, keep order
    plan.read_only = list(dict.fromkeys(plan.read_only))
    plan.self_binds = list(dict.fromkeys(plan.self_binds))
    plan.writable_outside = list(dict.fromkeys(plan.writable_outside))
    return plan
