"""The Agent Client Protocol host: ``codeloop acp``, an ACP agent on stdio.

A third host over the same runtime as the CLI and the language server (the
``AgentSession``, its tools, policy, context and the command layer), speaking ACP
(newline-delimited JSON-RPC) through the ``agent-client-protocol`` SDK to Zed,
JetBrains IDEs, Neovim (CodeCompanion, avante.nvim), Emacs (agent-shell), acpx...

- ``app.py``: ``run_stdio()``, what ``codeloop acp`` runs;
- ``agent.py``: the ACP ``Agent``: initialize, session/new, session/load,
  session/set_mode, session/prompt, session/cancel, session/list;
- ``workspace.py``: a ``cwd``'s project trust (asked with ``session/request_permission``)
  and MCP servers (``runtime/mcp.py``), shared by the connection's sessions there;
- ``link.py``: one session's line to the client (ordered updates, the calls shown);
- ``events.py``: the loop's events as ``session/update`` notifications (the plan, hooks,
  a sub-agent's steps: ``steps.py``);
- ``review.py``: approvals and edits through ``session/request_permission``;
- ``files.py``: the client's buffers through ``fs/read_text_file``;
- ``terminal.py``: commands in the client's terminal (``terminal/*``), and the live output
  of those that run here;
- ``rewind.py``: ``/rewind``'s restores through ``fs/*``;
- ``convert.py``: pure conversions (tool kinds, modes, commands, prompts, the replay);
- ``mcp.py``: the client's MCP servers (``mcpServers``) as server configurations.

Nothing imports this package except ``codeloop.main``.
"""
