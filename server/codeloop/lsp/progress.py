"""A turn's ``$/progress``: cancellable, one token per turn, for plain clients (and, for a
turn started by a code action, for every client)."""

from __future__ import annotations

from dataclasses import dataclass

from codeloop.lsp.connection import ClientFeatures, Connection


@dataclass
class _Progress:
    token: str
    session_id: str
    turn_id: str


class TurnProgress:
    def __init__(self, conn: Connection, features: ClientFeatures) -> None:
        self.conn = conn
        self.features = features
        self._by_turn: dict[tuple[str, str], _Progress] = {}
        self._by_token: dict[str, tuple[str, str]] = {}

    async def begin(self, session_id: str, turn_id: str, title: str, token: str | None = None, always: bool = False) -> None:
        """``always``: even for a client that gets ``codeloop/event`` (a code action's turn)."""
        if self.features.events and not always:
            return
        if token is None:
            if not self.features.progress:
                return
            token = f"codeloop-{session_id}-{turn_id}"
            if not await self.conn.create_progress(token):
                return
        prog = _Progress(token, session_id, turn_id)
        self._by_turn[(session_id, turn_id)] = prog
        self._by_token[token] = (session_id, turn_id)
        self.conn.begin_progress(token, title)

    def active(self, session_id: str, turn_id: str) -> bool:
        return (session_id, turn_id) in self._by_turn

    def report(self, session_id: str, turn_id: str, message: str) -> None:
        prog = self._by_turn.get((session_id, turn_id))
        if prog is not None:
            self.conn.report_progress(prog.token, message)

    def end(self, session_id: str, turn_id: str, status: str) -> None:
        prog = self._by_turn.pop((session_id, turn_id), None)
        if prog is None:
            return
        self._by_token.pop(prog.token, None)
        self.conn.end_progress(prog.token, status)

    def turn_for_token(self, token: str) -> tuple[str, str] | None:
        return self._by_token.get(str(token))
