"""One session's line to the ACP client: updates in order, and what each tool call shows.

The loop's events arrive through a synchronous ``emit``; ``session/update`` is an
async notification. The ``Outbox`` queues updates and one tracked task sends them
in order. Whoever needs the client to have seen everything so far (before asking a
permission about a tool call, before answering ``session/prompt``) awaits
``flush()``. A new session's outbox is held until ``session/new`` has been answered:
a client must learn the session id before it gets updates for it.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol

from acp.schema import TerminalToolCallContent, ToolCallProgress

from codeloop.acp.convert import text_content
from codeloop.acp.steps import Step, render
from codeloop.core.tasks import Tasks
from codeloop.tools.base import BaseTool

log = logging.getLogger(__name__)


class ClientConn(Protocol):
    """What the host uses of the SDK's ``AgentSideConnection`` (the client's methods)."""

    async def session_update(self, session_id: str, update: Any, **kwargs: Any) -> None: ...

    async def request_permission(self, session_id: str, tool_call: Any, options: list[Any], **kwargs: Any) -> Any: ...

    async def read_text_file(self, session_id: str, path: str, line: int | None = None, limit: int | None = None,
                             **kwargs: Any) -> Any: ...

    async def write_text_file(self, session_id: str, path: str, content: str, **kwargs: Any) -> Any: ...

    async def create_terminal(self, session_id: str, command: str, args: list[str] | None = None,
                              env: list[Any] | None = None, cwd: str | None = None,
                              output_byte_limit: int | None = None, **kwargs: Any) -> Any: ...

    async def terminal_output(self, session_id: str, terminal_id: str, **kwargs: Any) -> Any: ...

    async def wait_for_terminal_exit(self, session_id: str, terminal_id: str, **kwargs: Any) -> Any: ...

    async def kill_terminal(self, session_id: str, terminal_id: str, **kwargs: Any) -> Any: ...

    async def release_terminal(self, session_id: str, terminal_id: str, **kwargs: Any) -> Any: ...


class Outbox:
    """``session/update`` notifications of one session, sent in order by one task."""

    def __init__(self, conn: ClientConn, tasks: Tasks, session_id: str = "") -> None:
        self.conn = conn
        self.session_id = session_id
        self.tasks = tasks
        self._queue: asyncio.Queue[Any] = asyncio.Queue()
        self._open = asyncio.Event()
        self._writer: asyncio.Task[None] | None = None
        self._lost = False

    def put(self, update: Any) -> None:
        self._queue.put_nowait(update)
        if self._writer is None or self._writer.done():
            self._writer = self.tasks.spawn(self._write(), f"acp updates {self.session_id}")

    def release(self) -> None:
        """From now on updates go out (the client knows the session)."""
        self._open.set()

    async def flush(self) -> None:
        """Returns once every update put so far has been written (or dropped, the client gone)."""
        if not self._open.is_set():
            self.release()
        await self._queue.join()

    async def close(self) -> None:
        """Send what is queued (if the client still listens), then stop the writer."""
        if self._writer is not None and not self._writer.done():
            if self._open.is_set() and not self._lost:
                try:
                    await asyncio.wait_for(self._queue.join(), 5)
                except TimeoutError:
                    log.info("session %s: updates left unsent at close", self.session_id)
            self._writer.cancel()
            await asyncio.gather(self._writer, return_exceptions=True)

    async def _write(self) -> None:
        while True:
            update = await self._queue.get()
            try:
                await self._open.wait()
                if not self._lost:
                    await self.conn.session_update(session_id=self.session_id, update=update)
            except asyncio.CancelledError:
                raise
            except ConnectionError:
                if not self._lost:
                    log.info("the ACP client is gone; session %s sends no more updates", self.session_id)
                self._lost = True
            except Exception:
                log.exception("could not send a session/update (%s)", type(update).__name__)
            finally:
                self._queue.task_done()


@dataclass
class CallView:
    """What the client shows of one tool call: its content (ACP replaces a call's whole
    content with each update, so every update sends all of it, in this order): the diffs
    of an edit, the client's terminal of a command, a sub-agent's steps (the task tool),
    the hooks that ran for it, and at the end its result."""

    tool: BaseTool | None
    kind: str
    diffs: list[Any] = field(default_factory=list)
    terminal_id: str | None = None
    steps: list[Step] = field(default_factory=list)  # a sub-agent's (the task tool)
    hooks: list[str] = field(default_factory=list)  # one line per hook run for this call
    parent: str = ""  # a sub-agent's call: the task call it runs under
    shown: bool = True  # the client has a tool call of this id
    command: str = ""  # the command it runs (for the live output of one run here)
    live: str = ""  # that output so far (its last lines), until the call ends

    def content(self, result: str = "") -> list[Any]:
        out: list[Any] = [*self.diffs]
        if self.terminal_id is not None:
            out.append(TerminalToolCallContent(type="terminal", terminal_id=self.terminal_id))
        if self.steps:
            out.append(text_content(render(self.steps)))
        if self.hooks:
            out.append(text_content("\n".join(f"- {h}" for h in self.hooks)))
        if result:
            out.append(text_content(result))
        elif self.live:
            out.append(text_content(self.live))
        return out


@dataclass(eq=False)  # one per session: compared (and hashed) as itself
class SessionLink:
    """Everything the session's ports share: the connection, its id, the ordered updates,
    the calls shown, and how to stop the running turn."""

    conn: ClientConn
    root: Path
    outbox: Outbox
    tasks: Tasks
    session_id: str = ""
    calls: dict[str, CallView] = field(default_factory=dict)
    cancel_turn: Callable[[], None] = lambda: None
    tool: Callable[[str], BaseTool | None] = lambda name: None

    def bind(self, session_id: str) -> None:
        self.session_id = session_id
        self.outbox.session_id = session_id

    def show(self, call_id: str, **fields: Any) -> None:
        """Send what the call shows now (``fields``: status, locations, ...), when the
        client knows the call."""
        view = self.calls.get(call_id)
        if view is not None and view.shown:
            self.outbox.put(ToolCallProgress(session_update="tool_call_update", tool_call_id=call_id,
                                             content=view.content(), **fields))


__all__ = ["CallView", "ClientConn", "Outbox", "SessionLink"]
