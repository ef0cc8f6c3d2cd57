"""MCP configuration: the layers and their order, Claude Code's and VS Code's formats,
${VAR} expansion, and errors that name the file and the server."""

from __future__ import annotations

import json
from pathlib import Path

from codeloop.services.mcp.config import EDITOR_ORIGIN, load_config


def write(path: Path, data: object) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(data if isinstance(data, str) else json.dumps(data, indent=2))
    return path


def test_layers_merge_in_order_later_wins_per_name(tmp_path: Path) -> None:
    home = tmp_path / "config"
    root = tmp_path / "ws"
    write(home / "settings.json", {"mcpServers": {
        "shared": {"command": "user-cmd"},
        "mine": {"command": "uvx", "args": ["mine"]},
    }})
    write(root / ".mcp.json", {"mcpServers": {
        "shared": {"command": "project-cmd", "args": ["--x"]},
        "proj": {"type": "http", "url": "https://example.com/mcp"},
    }})
    write(root / ".vscode" / "mcp.json", {"servers": {
        "proj": {"type": "sse", "url": "https://example.com/sse"},
        "vs": {"type": "stdio", "command": "node", "args": ["server.js"]},
    }})
    cfg = load_config(root, config_home=home, environ={}, editor={"vs": {"command": "editor-node"}})
    assert not cfg.problems
    by = cfg.by_name()
    assert [s.name for s in cfg.servers] == ["shared", "mine", "proj", "vs"]
    assert (by["shared"].command, by["shared"].args, by["shared"].source) == ("project-cmd", ("--x",), "project")
    assert by["shared"].origin == str(root / ".mcp.json")
    assert (by["mine"].source, by["mine"].needs_consent) == ("user", False)
    assert (by["proj"].transport, by["proj"].url, by["proj"].source) == ("sse", "https://example.com/sse", "project")
    assert by["proj"].origin == str(root / ".vscode" / "mcp.json")
    assert (by["vs"].command, by["vs"].source, by["vs"].origin) == ("editor-node", "editor", EDITOR_ORIGIN)
    assert by["shared"].needs_consent and not by["vs"].needs_consent


def test_config_home_follows_xdg_config_home(tmp_path: Path, monkeypatch) -> None:
    monkeypatch.setenv("XDG_CONFIG_HOME", str(tmp_path / "xdg"))
    write(tmp_path / "xdg" / "codeloop" / "settings.json", {"mcpServers": {"x": {"command": "x-server"}}})
    cfg = load_config(tmp_path / "ws", environ={})
    assert [(s.name, s.source, s.origin) for s in cfg.servers] == [
        ("x", "user", str(tmp_path / "xdg" / "codeloop" / "settings.json"))]


def test_variables_are_expanded_everywhere(tmp_path: Path) -> None:
    root = tmp_path / "ws"
    write(root / ".mcp.json", {"mcpServers": {
        "s": {"command": "${TOOLS}/bin/srv", "args": ["--token=${TOKEN}", "--mode=${MODE:-fast}", "${EMPTY:-dflt}"],
              "env": {"API_KEY": "${TOKEN}", "LEVEL": 3}},
        "h": {"type": "http", "url": "https://${HOST:-api.example.com}/mcp",
              "headers": {"Authorization": "Bearer ${TOKEN}"}},
    }})
    write(root / ".vscode" / "mcp.json", {"servers": {
        "v": {"type": "stdio", "command": "node", "args": ["${workspaceFolder}/srv.js", "${env:TOKEN}", "${env:NOPE}",
                                                           "${userHome}/x"],
              "cwd": "tools", "envFile": "${workspaceFolder}/.env"},
    }})
    write(root / ".env", "# comment\nexport FROM_FILE=one\nQUOTED='two words'\n")
    cfg = load_config(root, config_home=tmp_path / "none", environ={"TOOLS": "/opt/t", "TOKEN": "tk", "EMPTY": ""},
                      home="/home/u")
    assert not cfg.problems
    by = cfg.by_name()
    assert by["s"].command == "/opt/t/bin/srv"
    assert by["s"].args == ("--token=tk", "--mode=fast", "dflt")
    assert dict(by["s"].env) == {"API_KEY": "tk", "LEVEL": "3"}
    assert by["h"].url == "https://api.example.com/mcp"
    assert dict(by["h"].headers) == {"Authorization": "Bearer tk"}
    assert by["v"].args == (f"{root}/srv.js", "tk", "", "/home/u/x")
    assert by["v"].cwd == str(root / "tools")
    assert dict(by["v"].env) == {"FROM_FILE": "one", "QUOTED": "two words"}
    # Consent is bound to what the file says, not to the expanded values.
    assert by["s"].raw["args"][0] == "--token=${TOKEN}"


def test_bad_entries_name_the_file_and_server_and_others_still_load(tmp_path: Path) -> None:
    root = tmp_path / "ws"
    mcp_json = write(root / ".mcp.json", """{
  "mcpServers": {
    "good": {"command": "ok"},
    "nocmd": {"args": ["x"]},
    "badtype": {"type": "websocket", "url": "ws://x"},
    "missing": {"command": "srv", "env": {"K": "${NOT_SET_ANYWHERE}"}},
    "badargs": {"command": "srv", "args": "--flag"},
    "prompt": {"command": "srv", "args": ["${input:token}"]},
    "badurl": {"type": "http", "url": "ftp://example.com"}
  }
}""")
    cfg = load_config(root, config_home=tmp_path / "none", environ={})
    assert [s.name for s in cfg.servers] == ["good"]
    msgs = {p.server: str(p) for p in cfg.problems}
    assert set(msgs) == {"nocmd", "badtype", "missing", "badargs", "prompt", "badurl"}
    assert msgs["nocmd"] == f"{mcp_json}:4: MCP server 'nocmd': needs \"command\" (a stdio server) or \"url\" (an HTTP server)"
    assert "websocket" in msgs["badtype"] and f"{mcp_json}:5:" in msgs["badtype"]
    assert "NOT_SET_ANYWHERE not set" in msgs["missing"]
    assert '"args" must be a list of strings' in msgs["badargs"]
    assert "input prompts are not supported" in msgs["prompt"]
    assert "http:// or https://" in msgs["badurl"]


def test_broken_file_is_reported_and_other_layers_still_load(tmp_path: Path) -> None:
    root = tmp_path / "ws"
    write(root / ".mcp.json", '{"mcpServers": {"a": {"command": "x"},}}')
    write(tmp_path / "cfg" / "settings.json", {"mcpServers": {"u": {"command": "user-srv"}}})
    write(root / ".vscode" / "mcp.json", ["not", "an", "object"])
    cfg = load_config(root, config_home=tmp_path / "cfg", environ={})
    assert [s.name for s in cfg.servers] == ["u"]
    texts = [str(p) for p in cfg.problems]
    assert any(t.startswith(f"{root / '.mcp.json'}:1: invalid JSON") for t in texts), texts
    assert any(t.startswith(f"{root / '.vscode' / 'mcp.json'}:1: must be a JSON object") for t in texts), texts


def test_a_broken_later_definition_replaces_the_earlier_one(tmp_path: Path) -> None:
    root = tmp_path / "ws"
    write(tmp_path / "cfg" / "settings.json", {"mcpServers": {"x": {"command": "user-srv"}}})
    write(root / ".mcp.json", {"mcpServers": {"x": {"type": "http"}}})
    cfg = load_config(root, config_home=tmp_path / "cfg", environ={})
    assert cfg.servers == []
    assert [p.server for p in cfg.problems] == ["x"]


def test_type_is_inferred_and_aliases_accepted(tmp_path: Path) -> None:
    cfg = load_config(tmp_path, config_home=tmp_path / "none", environ={}, editor={
        "a": {"url": "http://localhost:1/mcp"},
        "b": {"type": "streamableHttp", "url": "http://localhost:2/mcp"},
        "c": {"command": "x", "disabled": True},
    })
    by = cfg.by_name()
    assert (by["a"].transport, by["b"].transport) == ("http", "http")
    assert by["c"].disabled
    assert by["a"].describe() == "connects to http://localhost:1/mcp (Streamable HTTP)"


def test_docs_examples_parse(tmp_path: Path) -> None:
    """The configuration examples in docs/mcp.md are valid and mean what the doc says."""
    doc = (Path(__file__).resolve().parent.parent / "docs" / "mcp.md").read_text()
    blocks = [b.split("\n", 1)[1] for b in doc.split("```json")[1:]]
    blocks = [b.split("```", 1)[0] for b in blocks]
    assert len(blocks) >= 3
    project, vscode, user = blocks[0], blocks[1], blocks[2]
    root = tmp_path / "ws"
    write(root / ".mcp.json", project)
    write(root / ".vscode" / "mcp.json", vscode)
    write(tmp_path / "cfg" / "settings.json", user)
    cfg = load_config(root, config_home=tmp_path / "cfg", environ={"GITHUB_TOKEN": "ghp_x"})
    assert not cfg.problems, [str(p) for p in cfg.problems]
    by = cfg.by_name()
    assert by["git"].transport == "stdio" and by["git"].source == "project"
    assert by["docs"].transport == "http" and by["docs"].headers["Authorization"] == "Bearer ghp_x"
    assert by["time"].source == "user"
