"""Changes: what a mutating tool wants to do to the workspace, as pure text.

Tools compute the whole new content of each file and hand a ``ChangeSet`` to
the host's ``ChangeApplier`` port. The host decides how it lands: the headless
CLI writes to disk, the language server turns it into a reviewed proposal.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Literal


@dataclass(frozen=True, slots=True)
class FileChange:
    path: Path  # absolute, already checked to be inside the workspace
    old_text: str | None  # None: the file does not exist yet
    new_text: str
    base_version: int | None = None  # editor document version old_text came from

    @property
    def is_new(self) -> bool:
        return self.old_text is None


@dataclass(frozen=True, slots=True)
class ChangeSet:
    tool: str  # the name of the tool that made it
    changes: tuple[FileChange, ...]
    review: bool = True  # False: the policy allows applying without asking
    call_id: str = ""


OutcomeStatus = Literal["applied", "partial", "rejected", "edited", "stale", "error"]


@dataclass(slots=True)
class FileOutcome:
    path: Path
    status: OutcomeStatus
    accepted_hunks: list[int] = field(default_factory=list)
    rejected_hunks: list[int] = field(default_factory=list)
    final_text: str | None = None  # what the file holds now, when known


@dataclass(slots=True)
class ChangeOutcome:
    """What happened to a ChangeSet. ``message`` is told to the model verbatim."""

    status: OutcomeStatus
    message: str
    files: list[FileOutcome] = field(default_factory=list)

    @property
    def landed(self) -> bool:
        return self.status in ("applied", "partial", "edited")
