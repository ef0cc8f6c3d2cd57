"""The Agent Client Protocol host: ``codeloop acp``, an ACP agent on stdio.

A third host over the same runtime as the CLI and the language server (the
``AgentSession``, its tools, policy, context and the command layer), speaking ACP
(newline-delimited JSON-RPC) through the ``agent-client-protocol`` SDK to Zed,
JetBrains IDEs, Neovim (CodeCompanion, avante.nvim), Emacs (agent-shell), acpx...

- ``app.py``: ``run_stdio()``, what ``codeloop acp`` runs;
- ``agent.py``: the ACP ``Agent``: initialize, session/new, session/load,
  session/set_mode, session/prompt, session/cancel, session/list;
- ``link.py``: one session's line to the client (ordered updates, the calls shown);
- ``events.py``: the loop's events as ``session/update`` notifications;
- ``review.py``: approvals and edits through ``session/request_permission``;
- ``files.py``: the client's buffers through ``fs/read_text_file``;
- ``terminal.py``: commands in the client's terminal (``terminal/*``);
- ``convert.py``: pure conversions (tool kinds, modes, commands, prompts, the replay);
- ``mcp.py``: the client's MCP servers for a session.

Nothing imports this package except ``codeloop.main``.
"""
