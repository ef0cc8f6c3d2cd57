"""Checkpoints and rewind, covering what shell commands changed too.

A checkpoint is taken before each user turn and each tool step; it records every file
change after it with its BEFORE and AFTER contents (content-addressed blobs) and who made
it: the proposal pipeline (``record_edit``), a command (``command()`` snapshots around it),
a rewind, or nobody known ("unknown": the user, an editor save, a background process).
``plan_rewind`` previews, per file, what rewinding the code to a checkpoint does;
``apply_rewind`` does it through a port (the editor's ``workspace/applyEdit`` for open
buffers, or atomic writes) and returns a summary for the model. See ``store.py`` for how
a command's prior contents are kept and ``rewind.py`` for the rules that protect the
user's later edits.
"""

from .model import Checkpoint, ContentRef, FileChange, TurnInfo, Who
from .rewind import DiskPort, FileOutcome, FilePlan, RewindPlan, RewindPort, RewindResult, render_diff
from .service import CheckpointService, CommandRecording
from .settings import CheckpointSettings
from .store import CheckpointError, CheckpointStore, CommandMark, StoreStats, default_store_dir

__all__ = [
    "Checkpoint",
    "CheckpointError",
    "CheckpointService",
    "CheckpointSettings",
    "CheckpointStore",
    "CommandMark",
    "CommandRecording",
    "ContentRef",
    "DiskPort",
    "FileChange",
    "FileOutcome",
    "FilePlan",
    "RewindPlan",
    "RewindPort",
    "RewindResult",
    "StoreStats",
    "TurnInfo",
    "Who",
    "default_store_dir",
    "render_diff",
]
