"""The MCP client: the user's Model Context Protocol servers as tools of a session.

Public API (everything a host or the session's tool source needs):

- ``load_config(root, editor=..., config_home=..., environ=...) -> McpConfig`` (``config.py``)
- ``ProjectConsent(root)``, ``ConsentAsker``, ``ConsentRequest``, ``cannot_ask``, ``ONCE`` (``consent.py``)
- ``McpManager(servers, root=..., consent=..., ask=..., trust_project=...)`` with ``start``,
  ``close``, ``restart``, ``set_consent``, ``states``, ``tools``, ``subscribe``, ``call``
  (``manager.py``); ``McpToolInfo``, ``ServerState``, ``McpEvent`` (``info.py``)
- ``McpCallResult``, ``ImagePart`` (``results.py``)
- ``plan_tools``, ``run_search``, ``search_tools``, ``SEARCH_TOOL_NAME`` (``search.py``)

Only ``adapter.py`` imports the SDK (``mcp>=2.3,<3``). Importing this package does not load
the SDK (about 0.3 s): ``McpManager`` is imported on first use, so a session with no MCP
server configured never pays for it.
"""

from typing import Any

from codeloop.services.mcp.config import ConfigProblem, McpConfig, ServerConfig, load_config
from codeloop.services.mcp.consent import (
    ONCE,
    ConsentAsker,
    ConsentRequest,
    ProjectConsent,
    cannot_ask,
    fingerprint,
    fingerprint_of,
)
from codeloop.services.mcp.info import McpEvent, McpToolInfo, ServerState, Status
from codeloop.services.mcp.names import qualified_name, server_prefix
from codeloop.services.mcp.results import ImagePart, McpCallResult
from codeloop.services.mcp.search import SEARCH_TOOL_NAME, ToolPlan, plan_tools, run_search, search_tools

__all__ = [
    "ONCE",
    "ConfigProblem",
    "ConsentAsker",
    "ConsentRequest",
    "ImagePart",
    "McpCallResult",
    "McpConfig",
    "McpEvent",
    "McpManager",
    "McpToolInfo",
    "ProjectConsent",
    "SEARCH_TOOL_NAME",
    "ServerConfig",
    "ServerState",
    "Status",
    "ToolPlan",
    "cannot_ask",
    "fingerprint",
    "fingerprint_of",
    "load_config",
    "plan_tools",
    "qualified_name",
    "run_search",
    "search_tools",
    "server_prefix",
]


def __getattr__(name: str) -> Any:
    if name == "McpManager":
        from codeloop.services.mcp.manager import McpManager

        return McpManager
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
