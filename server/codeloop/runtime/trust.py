"""Project trust: one consent for everything a workspace's own files can make codeloop
run or allow.

A cloned repository can ship ``.mcp.json`` (servers: commands that run), hooks in
``.codeloop/settings.json`` (commands that run) and permission rules in the same file
(``"allow": ["Bash"]``: commands that run without asking). None of it takes effect before
the user said yes, once per thing, remembered by ``ProjectConsent`` (bound to a
fingerprint, so a change is asked again):

- each project MCP server: the ``McpManager`` asks with ``consent``, ``ask`` and
  ``trust_project`` from here;
- the project's hooks, as a set: ``hooks_gate(fingerprint)`` is the hooks engine's
  ``ProjectTrust`` (``is_trusted()``), and its ``ask(description)`` asks;
- the project's permission *allow* rules, as a set: this object is the policy's
  ``ProjectRuleGate``. Deny and ask rules always apply. The user's own "Always allow"
  answers, which the policy writes to ``.codeloop/settings.local.json``, are told apart
  from rules that came with the workspace: in a git repository the file is the user's
  when git ignores it and does not track it (codeloop keeps it ignored); outside git the
  rules "Always allow" wrote are listed in the user's own consent store (which no
  project can write).

``trust_project`` (``--trust-project``, or the ``trustProject`` setting from the user's
settings or the editor, never from a project file) allows everything not refused, for
the run, without remembering. ``--yes`` does not imply it.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any, Literal

from codeloop.core.tasks import Tasks
from codeloop.policy.sources import file_stamp, load_file
from codeloop.services.mcp.consent import ONCE, ConsentAsker, ConsentRequest, ProjectConsent, fingerprint_of

log = logging.getLogger(__name__)

LocalState = Literal["ours", "foreign", "absent", "unknown"]
SHOWN_RULES = 8


class ProjectTrust:
    """The trust of one workspace. ``await load()`` once; until then nothing of the
    project's is trusted (unless ``trust_project``)."""

    def __init__(self, root: Path, *, trust_project: bool = False, ask: ConsentAsker | None = None,
                 user_data_dir: Path | None = None, notify: Callable[[str], None] | None = None,
                 home: Path | None = None) -> None:
        self.root = Path(root).resolve()
        self.consent = ProjectConsent(self.root, user_data_dir=user_data_dir)
        self.trust_project = trust_project
        self.ask = ask
        self.notify = notify
        self.home = home or Path.home()
        self.tasks = Tasks("project trust")
        self._version = 0
        self._loaded = False
        self._local: LocalState = "unknown"
        self._local_stamp: tuple[int, int] | None = None
        self._rechecking = False
        self._remembered: set[str] = set()  # rules "Always allow" wrote (the user's own)
        self._asking: dict[tuple[str, str], asyncio.Future[bool | None]] = {}
        self._load_lock: asyncio.Lock | None = None

    # -- state -----------------------------------------------------------------------

    @property
    def version(self) -> int:
        return self._version

    @property
    def local_file(self) -> Path:
        return self.consent.local_path

    @property
    def project_file(self) -> Path:
        return self.root / ".codeloop" / "settings.json"

    def _bump(self) -> None:
        self._version += 1

    @property
    def loaded(self) -> bool:
        return self._loaded

    async def load(self) -> None:
        """Read the answers and check the local settings file with git (once)."""
        if self._load_lock is None:
            self._load_lock = asyncio.Lock()
        async with self._load_lock:
            if self._loaded:
                return
            await self.consent.load()
            self._remembered |= self.consent.remembered_rules()
            await self._check_local()
            self._loaded = True
            self._bump()

    async def _check_local(self) -> None:
        self._local_stamp = file_stamp(self.local_file)
        ours = await self.consent.local_file_is_ours()
        self._local = "absent" if ours is None else "ours" if ours else "foreign"

    # -- the policy's gate (ProjectRuleGate) --------------------------------------------

    def admit(self, rules: Sequence[tuple[Path, str]]) -> list[bool]:
        """For each (project file, allow rule): whether it applies now."""
        self._watch_local()
        ours = [self._is_users(path, rule) for path, rule in rules]
        foreign = [r for r, mine in zip(rules, ours) if not mine]
        if foreign and self._set_status(foreign) == "allowed":
            return [True] * len(rules)
        return ours

    def remembered(self, rules: Sequence[str]) -> None:
        """"Always allow" wrote ``rules``: the user's own from now on (kept outside git)."""
        new = [r for r in rules if r not in self._remembered]
        self._remembered.update(rules)
        if new and self._loaded and not self.consent.in_git:
            self._spawn(self.consent.record_remembered_rules(new), "remember the user's rules")

    def _is_users(self, path: Path, rule: str) -> bool:
        return path == self.local_file and (self._local == "ours" or rule in self._remembered)

    def _watch_local(self) -> None:
        """The local file appeared or changed while not known to be the user's: check it
        again with git (in the background; its rules wait until then)."""
        if self._local == "ours" or self._rechecking or not self._loaded or not self.consent.in_git:
            return
        if file_stamp(self.local_file) == self._local_stamp:
            return

        async def recheck() -> None:
            try:
                before = self._local
                await self._check_local()
                if self._local != before:
                    self._bump()
            finally:
                self._rechecking = False

        self._rechecking = True
        if not self._spawn(recheck(), "check settings.local.json"):
            self._rechecking = False

    def _spawn(self, coro: Any, name: str) -> bool:
        try:
            self.tasks.spawn(coro, name)
        except RuntimeError:  # no running loop (a synchronous caller)
            coro.close()
            return False
        return True

    def _fingerprint(self, rules: Sequence[tuple[Path, str]]) -> str:
        return fingerprint_of(sorted({(self._rel(p), r) for p, r in rules}))

    def _rel(self, path: Path) -> str:
        try:
            return path.relative_to(self.root).as_posix()
        except ValueError:
            return str(path)

    def _set_status(self, foreign: Sequence[tuple[Path, str]]) -> str:
        if not self._loaded:
            return "allowed" if self.trust_project else "unknown"
        return self.consent.set_status("rules", self._fingerprint(foreign), self.trust_project)

    # -- asking --------------------------------------------------------------------------

    async def project_rules(self) -> list[tuple[Path, str]]:
        """The allow rules of the project's files that are not the user's own."""

        def read() -> list[tuple[Path, str]]:
            out = []
            for path in (self.project_file, self.local_file):
                src = load_file(path, self.home)
                if src is not None:
                    out += [(path, r.text) for r in src.rules.allow]
            return out

        rules = await asyncio.to_thread(read)
        return [(p, r) for p, r in rules if not self._is_users(p, r)]

    async def ask_rules(self) -> bool | None:
        """Ask about the project's allow rules when there are some nobody answered for.
        Returns the answer (None: nothing to ask, or could not ask)."""
        foreign = await self.project_rules()
        if not foreign:
            return None
        fp = self._fingerprint(foreign)
        status = self.consent.set_status("rules", fp, self.trust_project)
        if status != "unknown":
            return status == "allowed"
        shown = ", ".join(dict.fromkeys(r for _, r in foreign))
        names = list(dict.fromkeys(r for _, r in foreign))
        if len(names) > SHOWN_RULES:
            shown = ", ".join(names[:SHOWN_RULES]) + f" and {len(names) - SHOWN_RULES} more"
        files = " and ".join(dict.fromkeys(self._rel(p) for p, _ in foreign))
        request = ConsentRequest("rules", "allow rules", files, f"allows {shown} without asking")
        answer = await self.ask_set("rules", fp, request)
        if answer is None and self.notify is not None:
            self.notify(f"{files} allows {shown} without asking: these rules are not applied until you trust "
                        f"this project (answer when asked, or run with --trust-project). Those calls are asked instead.")
        return answer

    async def ask_set(self, kind: Literal["hooks", "rules"], set_fingerprint: str,
                      request: ConsentRequest) -> bool | None:
        """Ask once about a set (the same question from several sessions waits for the
        first); the answer is remembered. None: nobody could be asked."""
        await self.load()  # an answer given before may be on disk: never ask it again
        known = self.consent.set_status(kind, set_fingerprint, self.trust_project)
        if known != "unknown":
            return known == "allowed"
        key = (kind, set_fingerprint)
        pending = self._asking.get(key)
        if pending is not None:
            return await asyncio.shield(pending)
        future: asyncio.Future[bool | None] = asyncio.get_running_loop().create_future()
        self._asking[key] = future
        answer: bool | None = None
        try:
            given = await self.ask(request) if self.ask is not None else None
            if given is not None:
                answer = bool(given)
                try:  # ONCE: for this run only, nothing written
                    await self.consent.record_set(kind, set_fingerprint, answer, remember=given != ONCE)
                except ValueError as e:
                    log.warning("%s (the answer holds for this session)", e)
                self._bump()
        finally:
            self._asking.pop(key, None)
            if not future.done():
                future.set_result(answer)
        return answer

    async def ask_hooks(self) -> bool | None:
        """Ask about the project's hooks (its settings files' ``hooks``) when nobody answered
        for them as they are now. A host calls it at start (``runtime.mcp.open_workspace``);
        a session's hooks then only read the answer (``hooks_gate``)."""
        from codeloop.services.hooks import HookEngine, aload_hooks  # noqa: PLC0415 - only here

        hooks, _problems = await aload_hooks(self.root, None, None)  # the project's files only
        project = [h for h in hooks if h.is_project]
        if not project:
            return None
        fp = HookEngine(project, self.root).project_fingerprint()
        lines = [f"`{h.command.strip().splitlines()[0][:80]}` on {h.event}"
                 + (f" ({h.matcher.text})" if h.matcher.text else "") for h in project[:SHOWN_RULES]]
        more = f" and {len(project) - SHOWN_RULES} more" if len(project) > SHOWN_RULES else ""
        files = " and ".join(dict.fromkeys(self._rel(h.source) for h in project))
        return await self.ask_set("hooks", fp, ConsentRequest("hooks", "hooks", files,
                                                               "runs " + ", ".join(lines) + more))

    def hooks_gate(self, fingerprint: Callable[[], str]) -> "HooksGate":
        """The hooks engine's ``ProjectTrust`` for the hooks ``fingerprint()`` names."""
        return HooksGate(self, fingerprint)

    async def close(self) -> None:
        await self.tasks.cancel_all()


class HooksGate:
    """Whether the project's hooks (as they are now) may run: ``is_trusted()`` is True,
    False (refused) or None (not asked yet); ``ask(description)`` asks once."""

    def __init__(self, trust: ProjectTrust, fingerprint: Callable[[], str]) -> None:
        self.trust = trust
        self.fingerprint = fingerprint

    def is_trusted(self) -> bool | None:
        status = self.trust.consent.set_status("hooks", self.fingerprint(), self.trust.trust_project)
        return True if status == "allowed" else False if status == "denied" else None

    async def ask(self, description: str, origin: str = ".codeloop/settings.json") -> bool | None:
        """``description``: what the hooks run ("runs `make lint` after each edit, ...")."""
        request = ConsentRequest("hooks", "hooks", origin, description)
        return await self.trust.ask_set("hooks", self.fingerprint(), request)


__all__ = ["HooksGate", "ProjectTrust"]
