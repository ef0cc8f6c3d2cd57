"""Project consent: a repository's MCP servers (and, later, its hooks) run commands, so
none of them runs before the user has said yes.

Where answers are kept: ``.codeloop/settings.local.json``, with Claude Code's keys where
they exist::

    {"enabledMcpjsonServers": ["git"],          // allowed project servers
     "disabledMcpjsonServers": ["tracker"],     // refused ones (they stay off)
     "enableAllProjectMcpServers": false,       // true: every project server is allowed
     "mcpServerFingerprints": {"git": "3f1c…"}, // what each allowance was given for
     "trustedProjectHooks": "9ab0…",            // the project's hooks, as allowed
     "deniedProjectHooks": "77de…",             // ... or as refused
     "trustedProjectRules": "41c2…",            // the project's allow rules, as allowed
     "deniedProjectRules": "0e9d…",             // ... or as refused
     "rememberedRules": ["Bash(npm test)"]}     // outside git: your "Always allow" answers

An allowance is bound to a fingerprint of the server's definition as written in the
project file (command, args, env, url, headers, ...): when ``.mcp.json`` changes what a
server runs, the user is asked again. A name listed without a fingerprint (written by
hand, as in Claude Code) is allowed as it is. A refusal stays until the user changes it.

SECURITY: a cloned repository could commit a ``settings.local.json`` that pre-approves
its own servers. So its entries count only when git says the file is *not tracked* and
*is ignored* (``git ls-files --error-unmatch``, ``git check-ignore``); otherwise they are
ignored, and :attr:`ProjectConsent.untrusted_reason` says why. Outside a git repository
the workspace file cannot be told from one that came with a download, so answers go to
the user's own data folder instead (``$XDG_DATA_HOME/codeloop/consent/<hash>.json``),
which no project can write.

``trust_project`` (the ``--trust-project`` flag) allows every project server and hook
that the user has not refused, for the run, without remembering anything. The caller
must take it only from the user's own settings, the editor, or the command line, never
from a project file.

Asking is the host's job, through a :class:`ConsentAsker` callback. A host that cannot
ask (a non-interactive run) answers ``None``: nothing is remembered and the server stays
off ("needs-consent").
"""

from __future__ import annotations

import asyncio
import hashlib
import json
import logging
import os
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal, Protocol

from codeloop.context.store import default_user_data_dir, workspace_hash
from codeloop.edits.disk import write_atomic
from codeloop.services.mcp.config import ServerConfig
from codeloop.edits.disk import ensure_codeloop_gitignore

log = logging.getLogger(__name__)

Status = Literal["allowed", "denied", "unknown"]

LOCAL_FILE = Path(".codeloop") / "settings.local.json"
ENABLED = "enabledMcpjsonServers"
DISABLED = "disabledMcpjsonServers"
ENABLE_ALL = "enableAllProjectMcpServers"
FINGERPRINTS = "mcpServerFingerprints"
HOOKS_TRUSTED = "trustedProjectHooks"
HOOKS_DENIED = "deniedProjectHooks"
# A set of things a project asks for as a whole, each bound to a fingerprint: its hooks,
# its permission allow rules. (kind -> (key when allowed, key when refused))
SETS = {"hooks": (HOOKS_TRUSTED, HOOKS_DENIED), "rules": ("trustedProjectRules", "deniedProjectRules")}
REMEMBERED_RULES = "rememberedRules"
_GIT_TIMEOUT = 10.0


def fingerprint_of(value: Any) -> str:
    """A stable hash of any JSON value (canonical form)."""
    text = json.dumps(value, sort_keys=True, ensure_ascii=False, separators=(",", ":"), default=str)
    return hashlib.sha256(text.encode("utf-8")).hexdigest()[:32]


def fingerprint(server: ServerConfig) -> str:
    """What the project file says this server runs (before ``${VAR}`` expansion, so the
    user's environment changing does not ask again; the project changing does)."""
    return fingerprint_of({"transport": server.transport, "entry": dict(server.raw)})


@dataclass(frozen=True)
class ConsentRequest:
    kind: Literal["mcp", "hooks", "rules"]
    name: str
    origin: str
    description: str
    changed: bool = False  # allowed before, but the definition changed since

    def prompt(self) -> str:
        """The question, in one paragraph, for any host."""
        again = " It changed since you allowed it." if self.changed else ""
        if self.kind == "rules":
            return (f"{self.origin} {self.description}.{again} Apply these rules in this project?")
        what = f"MCP server {self.name!r}" if self.kind == "mcp" else "the project's hooks"
        return (f"{self.origin} defines {what}, which {self.description}.{again} "
                f"Allow it to run in this project?")

    @property
    def subject(self) -> str:
        """What is asked about, in a few words (a card's title, a log line)."""
        if self.kind == "mcp":
            return f"MCP server {self.name}"
        return "the project's hooks" if self.kind == "hooks" else "the project's allow rules"


# An asker's answer: True allows (remembered), False refuses (remembered), ONCE allows for
# this run only (nothing is written), None: no answer (nothing runs, nothing is kept).
ONCE: Literal["once"] = "once"
Answer = bool | Literal["once"] | None


class ConsentAsker(Protocol):
    async def __call__(self, request: ConsentRequest) -> Answer:
        """True: allow (and remember); False: refuse (and remember); ``ONCE``: allow for this
        run, remembering nothing; None: could not ask."""
        ...


async def cannot_ask(request: ConsentRequest) -> Answer:
    """The asker of a host that cannot ask (non-interactive): nothing runs, nothing is kept."""
    return None


def request_for(server: ServerConfig, changed: bool = False) -> ConsentRequest:
    return ConsentRequest("mcp", server.name, server.origin, server.describe(), changed)


def _git_env() -> dict[str, str]:
    return {k: v for k, v in os.environ.items() if k not in ("GIT_DIR", "GIT_WORK_TREE", "GIT_INDEX_FILE")}


async def _git(root: Path, *args: str) -> int | None:
    """git's exit code, or None when git cannot run."""
    try:
        proc = await asyncio.create_subprocess_exec(
            "git", "-C", str(root), *args, stdin=asyncio.subprocess.DEVNULL,
            stdout=asyncio.subprocess.DEVNULL, stderr=asyncio.subprocess.DEVNULL, env=_git_env(),
        )
    except OSError:
        return None
    try:
        return await asyncio.wait_for(proc.wait(), _GIT_TIMEOUT)
    except TimeoutError:
        proc.kill()
        await proc.wait()
        return None


class ProjectConsent:
    """The user's answers for one workspace. ``await load()`` before ``status()``."""

    def __init__(self, root: Path, *, user_data_dir: Path | None = None) -> None:
        self.root = Path(root).resolve()
        self.local_path = self.root / LOCAL_FILE
        base = Path(user_data_dir) if user_data_dir is not None else default_user_data_dir()
        self.user_path = base / "consent" / f"{workspace_hash(self.root)}.json"
        self.in_git = False
        self.untrusted_reason: str | None = None
        self._data: dict[str, Any] = {}
        self._session: dict[tuple[str, str], tuple[bool, str]] = {}  # answers not (yet) on disk
        self._loaded = False
        self._writing = asyncio.Lock()  # one read-modify-write at a time (answers can come together)

    @property
    def path(self) -> Path:
        """Where answers are remembered."""
        return self.local_path if self.in_git else self.user_path

    # -- reading ---------------------------------------------------------------------

    async def load(self) -> None:
        """Read the store and decide whether the workspace file can be trusted."""
        self.in_git = await _git(self.root, "rev-parse", "--is-inside-work-tree") == 0
        self.untrusted_reason = None
        if self.in_git:
            data = await asyncio.to_thread(self._read, self.local_path)
            if data:
                reason = await self._why_untrusted()
                if reason:
                    self.untrusted_reason = reason
                    log.warning("%s", reason)
                    data = {}
        else:
            data = await asyncio.to_thread(self._read, self.user_path)
        self._data = data
        self._loaded = True

    async def _why_untrusted(self) -> str | None:
        rel = str(LOCAL_FILE)
        tracked = await _git(self.root, "ls-files", "--error-unmatch", "--", rel)
        if tracked == 0:
            return (f"{self.local_path} is tracked by git (it came with the repository), so its consent "
                    f"entries are ignored; project MCP servers and hooks will be asked about again")
        if tracked is None or tracked not in (0, 1):
            return f"git could not check {self.local_path}, so its consent entries are ignored"
        ignored = await _git(self.root, "check-ignore", "-q", "--", rel)
        if ignored != 0:
            return (f"{self.local_path} is not ignored by git (a commit could carry it to others), so its "
                    f"consent entries are ignored; add it to .gitignore")
        return None

    async def local_file_is_ours(self) -> bool | None:
        """Whether ``.codeloop/settings.local.json`` was written on this machine (by codeloop
        or the user) rather than shipped with the workspace: in a git repository that git
        ignores it and does not track it. None when the file does not exist; False outside
        git (a downloaded folder cannot be told from one the user wrote)."""
        if not await asyncio.to_thread(self.local_path.is_file):
            return None
        if not self.in_git:
            return False
        return await self._why_untrusted() is None

    @staticmethod
    def _read(path: Path) -> dict[str, Any]:
        try:
            if not path.is_file():
                return {}
            text = path.read_text(encoding="utf-8")
            data = json.loads(text) if text.strip() else {}
        except (OSError, UnicodeDecodeError, json.JSONDecodeError) as e:
            log.warning("%s cannot be read (%s); no project consent is remembered from it", path, e)
            return {}
        return data if isinstance(data, dict) else {}

    def _names(self, key: str) -> set[str]:
        v = self._data.get(key)
        return {x for x in v if isinstance(x, str)} if isinstance(v, list) else set()

    # -- asking what is known -------------------------------------------------------------

    def status(self, server: ServerConfig, trust_project: bool = False) -> Status:
        """Whether this server may start. Servers of the user and the editor always may."""
        if not server.needs_consent:
            return "allowed"
        fp = fingerprint(server)
        session = self._session.get(("mcp", server.name))
        if session is not None and session[1] == fp:
            return "allowed" if session[0] else "denied"
        if server.name in self._names(DISABLED):
            return "denied"
        if server.name in self._names(ENABLED):
            fps = self._data.get(FINGERPRINTS)
            bound = fps.get(server.name) if isinstance(fps, dict) else None
            if bound is None or bound == fp:
                return "allowed"
        if self._data.get(ENABLE_ALL) is True:
            return "allowed"
        return "allowed" if trust_project else "unknown"

    def changed(self, server: ServerConfig) -> bool:
        """Allowed before, for another definition."""
        fps = self._data.get(FINGERPRINTS)
        bound = fps.get(server.name) if isinstance(fps, dict) else None
        return server.name in self._names(ENABLED) and bound is not None and bound != fingerprint(server)

    def hooks_status(self, hooks_fingerprint: str, trust_project: bool = False) -> Status:
        """Whether the project's hooks (as fingerprinted by the caller) may run."""
        return self.set_status("hooks", hooks_fingerprint, trust_project)

    def set_status(self, kind: str, set_fingerprint: str, trust_project: bool = False) -> Status:
        """Whether a set the project asks for as a whole (``SETS``: its hooks, its allow
        rules), as fingerprinted by the caller, is allowed."""
        trusted, denied = SETS[kind]
        session = self._session.get((kind, ""))
        if session is not None and session[1] == set_fingerprint:
            return "allowed" if session[0] else "denied"
        if self._data.get(denied) == set_fingerprint:
            return "denied"
        if self._data.get(trusted) == set_fingerprint:
            return "allowed"
        return "allowed" if trust_project else "unknown"

    def remembered_rules(self) -> set[str]:
        """The allow rules the user's own "Always allow" answers wrote (kept here outside a
        git repository, where the workspace file cannot be told from a downloaded one)."""
        return self._names(REMEMBERED_RULES)

    # -- remembering ----------------------------------------------------------------------

    async def record(self, server: ServerConfig, allowed: bool, *, remember: bool = True) -> None:
        """Remember the user's answer for this server (and for this session in any case;
        ``remember=False``: only for this session). Raises ValueError when the store exists
        but is not valid JSON (it is not touched)."""
        fp = fingerprint(server)
        self._session[("mcp", server.name)] = (allowed, fp)
        if not server.needs_consent or not remember:
            return

        def change(data: dict[str, Any]) -> None:
            enabled = [x for x in data.get(ENABLED) or [] if x != server.name]
            disabled = [x for x in data.get(DISABLED) or [] if x != server.name]
            given = data.get(FINGERPRINTS)
            fps: dict[str, Any] = given if isinstance(given, dict) else {}
            if allowed:
                enabled.append(server.name)
                fps[server.name] = fp
            else:
                disabled.append(server.name)
                fps.pop(server.name, None)
            data[ENABLED], data[DISABLED] = enabled, disabled
            if fps:
                data[FINGERPRINTS] = fps
            else:
                data.pop(FINGERPRINTS, None)

        await self._update(change)

    async def record_hooks(self, hooks_fingerprint: str, allowed: bool) -> None:
        await self.record_set("hooks", hooks_fingerprint, allowed)

    async def record_set(self, kind: str, set_fingerprint: str, allowed: bool, *, remember: bool = True) -> None:
        """Remember the answer for a set (``SETS``), bound to its fingerprint
        (``remember=False``: only for this session)."""
        self._session[(kind, "")] = (allowed, set_fingerprint)
        if not remember:
            return
        trusted, denied = SETS[kind]

        def change(data: dict[str, Any]) -> None:
            data.pop(trusted if not allowed else denied, None)
            data[trusted if allowed else denied] = set_fingerprint

        await self._update(change)

    async def record_remembered_rules(self, rules: list[str]) -> None:
        """Keep rules written by "Always allow" as the user's own (see ``remembered_rules``)."""

        def change(data: dict[str, Any]) -> None:
            old = data.get(REMEMBERED_RULES)
            kept = [x for x in old if isinstance(x, str)] if isinstance(old, list) else []
            data[REMEMBERED_RULES] = kept + [r for r in rules if r not in kept]

        await self._update(change)

    async def _update(self, change: Any) -> None:
        path = self.path
        if self.in_git:
            await asyncio.to_thread(ensure_codeloop_gitignore, self.root)

        def rmw() -> dict[str, Any]:
            data: dict[str, Any] = {}
            if path.exists():
                try:
                    text = path.read_text(encoding="utf-8")
                    data = json.loads(text) if text.strip() else {}
                except (OSError, UnicodeDecodeError, json.JSONDecodeError) as e:
                    raise ValueError(f"{path} is not valid JSON ({e}); fix it so your answer can be remembered") from None
                if not isinstance(data, dict):
                    raise ValueError(f"{path} must hold a JSON object; fix it so your answer can be remembered")
            for key in (ENABLED, DISABLED):
                if not isinstance(data.get(key), (list, type(None))):
                    raise ValueError(f'"{key}" in {path} must be a list; fix it so your answer can be remembered')
            change(data)
            write_atomic(path, json.dumps(data, indent=2, ensure_ascii=False) + "\n")
            return data

        async with self._writing:
            data = await asyncio.to_thread(rmw)
        if self.in_git:
            # Our own file, freshly written and ignored: trust it unless git says otherwise.
            reason = await self._why_untrusted()
            self.untrusted_reason = reason
            self._data = {} if reason else data
        else:
            self._data = data

    def answers(self) -> Mapping[str, Any]:
        """The trusted entries (for /mcp and tests)."""
        return dict(self._data)
