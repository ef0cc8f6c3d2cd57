"""A scripted, OpenAI-compatible model server for end-to-end tests (stdlib only).

Import with ``tests`` on the path (pytest: ``pythonpath = ["tests"]``; processes:
``PYTHONPATH=tests``)::

    from scripted_model import ScriptedModel, Script, Text, ToolCalls, Call

Standalone: ``PYTHONPATH=tests python -m scripted_model --scenario pkg.mod:factory --port 0``
prints ``READY http://127.0.0.1:PORT/v1`` and serves until SIGTERM.

Provider modes (``ScriptedModel(..., provider="ollama")``, ``--provider``, the env var
``SCRIPTED_MODEL_PROVIDER`` for the ``model_server`` test fixture and the standalone server,
or a scenario's ``provider`` attribute) speak the wire of a given server: see ``providers``.
Faults: the replies ``CutStream``, ``EndsEarly``, ``NoFinish``, ``Hang``, ``StreamError``,
``Error``, or ``Faulty(scenario, fault, times)`` (``--fault``, ``SCRIPTED_MODEL_FAULT``) to
inject one into any scenario. Usage reports prompt tokens and prompt-cache hits as providers
bill them: see ``prefix_cache``.
"""

from .scenarios import (
    Call,
    ChatRequest,
    FAULTS,
    CutStream,
    EndsEarly,
    Error,
    Faulty,
    Hang,
    Keyed,
    NoFinish,
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
from .providers import PROVIDERS
from .server import ScriptedModel, validate_chat_body

__all__ = [
    "Call",
    "ChatRequest",
    "CutStream",
    "EndsEarly",
    "Error",
    "FAULTS",
    "Faulty",
    "Hang",
    "Keyed",
    "NoFinish",
    "PROVIDERS",
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
