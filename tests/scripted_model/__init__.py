"""A scripted, OpenAI-compatible model server for end-to-end tests (stdlib only).

Import with ``tests`` on the path (pytest: ``pythonpath = ["tests"]``; processes:
``PYTHONPATH=tests``)::

    from scripted_model import ScriptedModel, Script, Text, ToolCalls, Call

Standalone: ``PYTHONPATH=tests python -m scripted_model --scenario pkg.mod:factory --port 0``
prints ``READY http://127.0.0.1:PORT/v1`` and serves until SIGTERM.
"""

from .scenarios import (
    Call,
    ChatRequest,
    CutStream,
    Error,
    Hang,
    Keyed,
    Reply,
    Scenario,
    Script,
    Stream,
    StreamError,
    Text,
    ToolCalls,
    Usage,
    echo,
    fixed,
    estimate_completion_tokens,
    estimate_prompt_tokens,
    load_scenario,
)
from .server import ScriptedModel, validate_chat_body

__all__ = [
    "Call",
    "ChatRequest",
    "CutStream",
    "Error",
    "Hang",
    "Keyed",
    "Reply",
    "Scenario",
    "Script",
    "ScriptedModel",
    "Stream",
    "StreamError",
    "Text",
    "ToolCalls",
    "Usage",
    "echo",
    "fixed",
    "estimate_completion_tokens",
    "estimate_prompt_tokens",
    "load_scenario",
    "validate_chat_body",
]
