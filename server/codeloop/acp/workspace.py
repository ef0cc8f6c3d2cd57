"""A folder the client opens sessions in: its project trust and its MCP servers.

One ``AcpWorkspace`` per ``cwd`` of the connection, shared by the sessions there and
closed with the connection, as the language server holds one per editor connection
(``runtime/mcp.py`` says why: the servers are processes, the consent is the workspace's):

- ``trust`` (``runtime/trust.py``): a workspace's own MCP servers (``.mcp.json``,
  ``.vscode/mcp.json``), hooks and allow rules run or apply only with the user's consent;
  ``trustProject`` (the user's settings, ``codeloop acp --trust-project``) trusts all;
- ``mcp`` (``runtime/mcp.py``): the user's servers, the project's (once trusted) and the
  servers the client passes with its sessions (``add_client_servers``), one process each.

The questions are asked with ``session/request_permission``, in the first prompt's turn
(a client shows a permission inside a turn, and knows a session only once ``session/new``
is answered): the turn starts once they are answered (``ready``). Each names what it
trusts and what it runs, with allow once (this connection only: nothing is written),
always allow (remembered, as in the other hosts: asked again when it changes) and reject
(remembered; ``/mcp allow <name>`` or the consent file undoes it). A question the client
answers "cancelled" (it cancelled the turn) is no answer: that thing stays off for the
connection (``/mcp allow <name>`` starts a server), and it is asked again next time.
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import logging
from collections.abc import Iterator
from pathlib import Path

from acp.schema import PermissionOption, ToolCallProgress, ToolCallStart, ToolCallUpdate

from codeloop.acp.convert import text_content
from codeloop.acp.events import message
from codeloop.acp.link import SessionLink
from codeloop.config import Settings
from codeloop.core.tasks import Tasks
from codeloop.runtime.mcp import WorkspaceMcp, open_workspace
from codeloop.runtime.trust import ProjectTrust
from codeloop.services.mcp import ONCE, ConsentRequest
from codeloop.services.mcp.consent import Answer

log = logging.getLogger(__name__)

TRUST_ONCE, TRUST_ALWAYS, TRUST_REJECT = "allow_once", "allow_always", "reject_always"
TRUST_OPTIONS = [
    PermissionOption(option_id=TRUST_ONCE, name="Allow once (this connection)", kind="allow_once"),
    PermissionOption(option_id=TRUST_ALWAYS, name="Always allow in this project", kind="allow_always"),
    PermissionOption(option_id=TRUST_REJECT, name="Reject", kind="reject_always"),
]
_ANSWERS: dict[str, Answer] = {TRUST_ONCE: ONCE, TRUST_ALWAYS: True, TRUST_REJECT: False}
_SAID = {TRUST_ONCE: "Trusted for this connection.", TRUST_ALWAYS: "Trusted (remembered for this project).",
         TRUST_REJECT: "Refused (remembered for this project)."}


class AcpWorkspace:
    def __init__(self, root: Path, settings: Settings, tasks: Tasks) -> None:
        self.root = root
        self.tasks = tasks
        self.trust = ProjectTrust(root, trust_project=settings.trust_project, ask=self._ask, notify=self._notify)
        self.mcp = WorkspaceMcp(root, settings, self.trust, notify=self._notify)
        self.links: list[SessionLink] = []  # the sessions' lines: the workspace's warnings go to each
        self._askers: list[SessionLink] = []  # the sessions whose turn is running, latest last
        self._asker = asyncio.Event()
        self._pending: dict[SessionLink, set[asyncio.Task[str | None]]] = {}  # questions, by the asking link
        self._opening: asyncio.Task[None] | None = None
        self._ids = itertools.count(1)
        self._one_at_a_time = asyncio.Lock()

    # -- the workspace's life -------------------------------------------------------------

    def open(self) -> None:
        """Load the consent, start the MCP servers, and ask what nobody answered yet (in the
        background; the questions wait for a prompt). Once per connection."""
        if self._opening is None:
            self._opening = self.tasks.spawn(open_workspace(self.trust, self.mcp, wait_for_answers=True),
                                             f"open the workspace {self.root}")

    async def ready(self) -> None:
        """Until the workspace is open and its questions answered (a turn waits for this)."""
        self.open()
        assert self._opening is not None
        await asyncio.wait({self._opening})  # (its own failure is logged by the task set)

    @contextlib.contextmanager
    def asking(self, link: SessionLink) -> Iterator[None]:
        """A turn of ``link``'s session runs: the workspace's questions may be asked there.
        When it ends, its questions still waiting are dropped (no answer)."""
        self._askers.append(link)
        self._asker.set()
        try:
            yield
        finally:
            self._askers.remove(link)
            if not self._askers:
                self._asker.clear()
            for task in self._pending.pop(link, set()):
                task.cancel()

    async def close(self) -> None:
        if self._opening is not None and not self._opening.done():
            self._opening.cancel()
            await asyncio.gather(self._opening, return_exceptions=True)
        await self.mcp.close()  # every server's process group stops with the connection
        await self.trust.close()

    def _notify(self, text: str) -> None:
        for link in self.links:
            link.outbox.put(message(f"\n\n> {text}\n\n"))

    # -- the questions ------------------------------------------------------------------

    async def _ask(self, request: ConsentRequest) -> Answer:
        async with self._one_at_a_time:  # (the MCP servers' and the rules' questions come together)
            return await self._ask_one(request)

    async def _ask_one(self, request: ConsentRequest) -> Answer:
        while not self._askers:
            await self._asker.wait()
        link = self._askers[-1]
        call_id = f"trust-{next(self._ids)}"
        title = f"Trust {request.subject}?"
        question = text_content(request.prompt())  # names what is trusted, and what it runs
        link.outbox.put(ToolCallStart(
            session_update="tool_call", tool_call_id=call_id, title=title, kind="other", status="pending",
            content=[question], raw_input={"trust": request.kind, "name": request.name, "origin": request.origin,
                                           "description": request.description},
        ))
        tool_call = ToolCallUpdate(tool_call_id=call_id, title=title, kind="other", status="pending", content=[question])
        task = self.tasks.spawn(self._request(link, tool_call), f"ask to trust {request.subject}")
        pending = self._pending.setdefault(link, set())
        pending.add(task)
        try:
            await asyncio.wait({task})
        finally:
            pending.discard(task)
        choice = None if task.cancelled() or task.exception() is not None else task.result()
        said = _SAID.get(choice or "", "Not answered: it stays off for now (it is asked again next time).")
        link.outbox.put(ToolCallProgress(session_update="tool_call_update", tool_call_id=call_id,
                                         status="completed" if choice in (TRUST_ONCE, TRUST_ALWAYS) else "failed",
                                         content=[question, text_content(said)]))
        return _ANSWERS.get(choice or "")

    async def _request(self, link: SessionLink, tool_call: ToolCallUpdate) -> str | None:
        await link.outbox.flush()  # the client knows the call first
        try:
            answer = await link.conn.request_permission(session_id=link.session_id, tool_call=tool_call,
                                                        options=TRUST_OPTIONS)
        except asyncio.CancelledError:
            raise
        except Exception as e:
            log.warning("asking the ACP client to trust the project failed: %s", e)
            return None
        outcome = answer.outcome
        return str(outcome.option_id) if getattr(outcome, "outcome", None) == "selected" else None


__all__ = ["AcpWorkspace", "TRUST_ALWAYS", "TRUST_ONCE", "TRUST_OPTIONS", "TRUST_REJECT"]
