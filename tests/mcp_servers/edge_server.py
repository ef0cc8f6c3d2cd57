"""A real MCP server, written with the official SDK's own server API (``MCPServer``), for
the MCP client's edge cases. Run it over stdio or Streamable HTTP:

    python edge_server.py [--transport stdio|http|sse --port N] [--legacy] [--slow-start S]
                          [--crash-at-start] [--junk] [--tools N] [--spawn-child MARKER]
                          [--stubborn] [--name NAME]

``--legacy`` removes the ``server/discover`` handler, so clients fall back to the
2025 ``initialize`` handshake (the era most servers in the wild still speak).
Everything it says goes to stderr; stdout is the transport (except for ``--junk``).
"""

from __future__ import annotations

import argparse
import asyncio
import base64
import os
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from mcp.server.mcpserver import Context, Image, MCPServer


def import_sdk() -> None:
    """The SDK is imported after the flags that act before serving (a crash at start does
    not wait for it). Into the module's globals: the SDK reads the tools' annotations."""
    from mcp.server.mcpserver import Context, Image, MCPServer

    globals().update(Context=Context, Image=Image, MCPServer=MCPServer)


# A 1x1 red PNG.
PNG = base64.b64decode(
    "iVBORw0KGgoAAAANSUhEUgAAAAEAAAABCAYAAAAfFcSJAAAADUlEQVR42mP8z8DwHwAFBQIAX8jx0gAAAABJRU5ErkJggg=="
)

WORDS = [
    ("calendar", "event", "Create, move and list calendar events and meetings"),
    ("invoice", "billing", "Generate invoices, refunds and billing statements for customers"),
    ("weather", "forecast", "Look up current weather and multi-day forecasts for a city"),
    ("database", "query", "Run read-only SQL queries against the analytics database"),
    ("ticket", "issue", "Open, close, label and comment on issue tracker tickets"),
    ("email", "message", "Send, search and archive email messages in a mailbox"),
    ("deploy", "release", "Start a deployment, roll back a release, or show deploy status"),
    ("metrics", "dashboard", "Fetch time series metrics and dashboard panels"),
    ("storage", "bucket", "List, upload and delete objects in a storage bucket"),
    ("translate", "language", "Translate text between natural languages"),
]


WIRE_FD = 1  # the real stdout, saved before the SDK claims it


def log(*parts: Any) -> None:
    print(*parts, file=sys.stderr, flush=True)


def make_generated_tool(server: MCPServer, i: int) -> None:
    area, noun, blurb = WORDS[i % len(WORDS)]
    name = f"{area}_{noun}_{i:03d}"

    def fn(target: str, limit: int = 10, verbose: bool = False) -> str:
        return f"{name}({target!r}, limit={limit}, verbose={verbose})"

    description = (
        f"{blurb}. Variant {i} of the {area} tools: it takes the {noun} identifier or a search "
        f"string as target, an optional limit on the number of results, and a verbose flag that "
        f"adds the raw {area} records to the answer."
    )
    server.add_tool(fn, name=name, description=description)


def build(args: argparse.Namespace) -> MCPServer:
    from mcp.server.mcpserver.exceptions import ToolError
    from mcp.types import EmbeddedResource, ResourceLink, TextContent, TextResourceContents, ToolAnnotations

    server = MCPServer(args.name, instructions="Edge-case server for codeloop's MCP client tests.",
                       log_level="WARNING")

    @server.tool(description="Echo the text back.", annotations=ToolAnnotations(read_only_hint=True))
    def echo(text: str) -> str:
        return text

    @server.tool(description="Add two integers (structured result).")
    def add(a: int, b: int) -> int:
        return a + b

    @server.tool(description="Sleep for a number of seconds, then answer. Writes a marker file when cancelled.")
    async def sleep(seconds: float, marker: str = "") -> str:
        if marker:
            Path(marker + ".started").write_text("started")  # the call reached the server
        try:
            await asyncio.sleep(seconds)
        except BaseException:
            if marker:
                Path(marker).write_text("cancelled")
            raise
        return f"slept {seconds}"

    @server.tool(description="Crash the server in the middle of the call.")
    def crash() -> str:
        log("crashing now, on purpose")
        os._exit(7)

    @server.tool(description="Return a small PNG image.")
    def image() -> Image:
        return Image(data=PNG, format="png")

    @server.tool(description="Fail with an error result.")
    def fail(message: str = "it went wrong") -> str:
        raise ToolError(message)

    @server.tool(description="Return an embedded resource and a resource link.")
    def resources() -> list[Any]:
        return [
            TextContent(type="text", text="two resources follow"),
            EmbeddedResource(type="resource", resource=TextResourceContents(
                uri="file:///notes/todo.txt", mime_type="text/plain", text="buy milk")),
            ResourceLink(type="resource_link", uri="https://example.invalid/spec.pdf", name="spec",
                         description="The spec", mime_type="application/pdf"),
        ]

    @server.tool(description="Add a tool named NAME and tell the client the tool list changed.")
    async def add_tool(name: str, ctx: Context) -> str:
        def extra(x: str = "") -> str:
            return f"{name}:{x}"

        server.add_tool(extra, name=name, description=f"A tool added at run time ({name}).")
        await ctx.notify_tools_changed()  # 2026-07-28: subscriptions/listen streams
        try:
            await ctx.session.send_tool_list_changed()  # handshake era: a notification
        except Exception as e:  # not every era has the notification
            log("send_tool_list_changed:", e)
        return f"added {name}"

    @server.tool(description="Return the HTTP headers of this request.")
    def headers(ctx: Context) -> dict[str, str]:
        h = ctx.headers or {}
        return {k.lower(): v for k, v in h.items()}

    @server.tool(description="Print junk to the real stdout (the wire), then answer.")
    def print_junk() -> str:
        # The SDK points fd 1 at stderr while it serves; write to the saved wire itself.
        os.write(WIRE_FD, b"this is not JSON-RPC, just a stray print\n")
        return "printed junk"

    @server.tool(description="Return an environment variable of the server process.")
    def env(name: str) -> str:
        return os.environ.get(name, "<unset>")

    @server.tool(description="Return the working directory of the server process.")
    def cwd() -> str:
        return os.getcwd()

    for i in range(args.tools):
        make_generated_tool(server, i)

    return server


async def serve_legacy_stdio(server: MCPServer) -> None:
    """Serve like a server of the 2025 handshake era: ``server/discover`` is an unknown
    method (-32601), so a client falls back to ``initialize``."""
    import anyio
    from mcp.server.stdio import stdio_server
    from mcp.shared.message import SessionMessage
    from mcp.types import ErrorData, JSONRPCError, JSONRPCRequest

    low = server._lowlevel_server
    async with stdio_server() as (read, write):
        send, receive = anyio.create_memory_object_stream(0)

        async def refuse_discover() -> None:
            async with send:
                async for item in read:
                    msg = getattr(item, "message", None)
                    if isinstance(msg, JSONRPCRequest) and msg.method == "server/discover":
                        error = ErrorData(code=-32601, message="Method not found")
                        await write.send(SessionMessage(JSONRPCError(jsonrpc="2.0", id=msg.id, error=error)))
                        continue
                    await send.send(item)

        async with anyio.create_task_group() as tg:
            tg.start_soon(refuse_discover)
            await low.run(receive, write, low.create_initialization_options())
            tg.cancel_scope.cancel()


def main() -> None:
    p = argparse.ArgumentParser()
    p.add_argument("--transport", default="stdio", choices=["stdio", "http", "sse"])
    p.add_argument("--port", type=int, default=0)
    p.add_argument("--name", default="edge")
    p.add_argument("--legacy", action="store_true")
    p.add_argument("--slow-start", type=float, default=0.0)
    p.add_argument("--crash-at-start", action="store_true")
    p.add_argument("--junk", action="store_true")
    p.add_argument("--tools", type=int, default=0)
    p.add_argument("--spawn-child", default="")
    p.add_argument("--stubborn", action="store_true")
    args = p.parse_args()

    log(f"edge server {args.name} starting (pid {os.getpid()})")
    if args.stubborn:
        signal.signal(signal.SIGTERM, lambda *a: log("ignoring SIGTERM"))
    if args.spawn_child:
        # A grandchild in the same process group, as `npx` leaves behind.
        subprocess.Popen([sys.executable, "-c", "import time; time.sleep(600)", args.spawn_child])
    if args.crash_at_start:
        log("fatal: cannot open the widget database (on purpose)")
        sys.exit(3)
    if args.slow_start:
        time.sleep(args.slow_start)
    if args.junk:
        sys.stdout.write("Starting edge server v1.0...\n{not json either\n")
        sys.stdout.flush()
    global WIRE_FD
    WIRE_FD = os.dup(1)
    import_sdk()
    server = build(args)
    if args.transport == "stdio" and args.legacy:
        asyncio.run(serve_legacy_stdio(server))
    elif args.transport == "stdio":
        server.run("stdio")
    elif args.transport == "sse":
        server.run("sse", host="127.0.0.1", port=args.port)
    else:
        server.run("streamable-http", host="127.0.0.1", port=args.port)
    if args.stubborn:
        # Does not stop when its stdin closes, nor on SIGTERM: only SIGKILL ends it.
        log("stdin closed; staying alive anyway")
        while True:
            time.sleep(1)


if __name__ == "__main__":
    main()
