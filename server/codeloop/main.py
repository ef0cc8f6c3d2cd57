"""The ``codeloop`` command: picks the host for the subcommand.

``codeloop lsp`` starts the language server, ``codeloop acp`` the Agent Client
Protocol agent; ``run``, ``chat`` and ``context`` are the headless CLI. The hosts
know nothing of each other.
"""

from __future__ import annotations

import sys

from codeloop.cli import app as cli
from codeloop.lsp.app import run_stdio


def main(argv: list[str] | None = None) -> int:
    args = cli.build_parser().parse_args(sys.argv[1:] if argv is None else argv)
    if args.command == "lsp":
        return run_stdio()
    if args.command == "acp":
        from codeloop.acp.app import run_stdio as run_acp  # noqa: PLC0415 - the ACP SDK only for `codeloop acp`

        return run_acp(args)
    return cli.run(args)


__all__ = ["main"]
