"""``codeloop acp``: the ACP agent on stdin/stdout (newline-delimited JSON-RPC).

stdout is the transport: everything else goes to stderr (``CODELOOP_LOG_LEVEL``,
default WARNING, as ACP clients show an agent's stderr in their logs).
"""

from __future__ import annotations

import asyncio
import logging
import os
import sys
from typing import Any, cast

from acp import Agent, run_agent

from codeloop.acp.agent import CodeloopAgent


def flags_of(args: Any) -> dict[str, Any]:
    """The host's settings layer from ``codeloop acp``'s flags (the CLI's names)."""
    flags = {"model": getattr(args, "model", None), "base_url": getattr(args, "base_url", None),
             "mode": getattr(args, "mode", None), "max_turns": getattr(args, "max_turns", None),
             "trust_project": True if getattr(args, "trust_project", False) else None}
    return {k: v for k, v in flags.items() if v is not None}


async def serve(flags: dict[str, Any]) -> None:
    agent = CodeloopAgent(flags)
    try:
        # The SDK answers "method not found" for what the agent does not implement (fork, …).
        await run_agent(cast(Agent, agent))
    finally:
        await agent.shutdown()


def run_stdio(args: Any = None) -> int:
    logging.basicConfig(
        level=os.environ.get("CODELOOP_LOG_LEVEL", "WARNING").upper(),
        stream=sys.stderr,  # stdout is the JSON-RPC transport
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
    )
    for noisy in ("httpx", "httpcore", "openai", "mcp"):
        logging.getLogger(noisy).setLevel(logging.WARNING)
    try:
        asyncio.run(serve(flags_of(args)))
    except KeyboardInterrupt:
        pass
    return 0


__all__ = ["run_stdio", "serve"]
