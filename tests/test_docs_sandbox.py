"""The README's sandbox and code-mode example is a valid settings object: read through the
same code as a user's settings file, with no problem reported and every value kept."""

from __future__ import annotations

import json
import re
from pathlib import Path

from codeloop.runtime.settings import load_settings, sandbox_settings

ROOT = Path(__file__).resolve().parent.parent


def test_the_readme_settings_example_loads(tmp_path: Path) -> None:
    readme = (ROOT / "README.md").read_text(encoding="utf-8")
    section = readme.split("## Sandbox and code mode", 1)[1].split("\n## ", 1)[0]
    (block,) = re.findall(r"```json\n(.*?)```", section, re.S)
    data = json.loads(block)
    cfg = tmp_path / "cfg"
    cfg.mkdir()
    (cfg / "settings.json").write_text(json.dumps(data))
    settings, problems = load_settings(tmp_path / "ws", config_home=cfg, env={})
    assert problems == []
    assert sandbox_settings(settings).to_json() | data["sandbox"] == sandbox_settings(settings).to_json()
    assert (settings.code_mode, settings.code_timeout, settings.code_max_calls) == (
        data["codeMode"], data["codeTimeout"], data["codeMaxCalls"])


def test_the_cli_flag_sets_only_the_mode(tmp_path: Path) -> None:
    cfg = tmp_path / "cfg"
    cfg.mkdir()
    (cfg / "settings.json").write_text(json.dumps({"sandbox": {"network": True, "autoAllow": False}}))
    settings, problems = load_settings(tmp_path, {"sandbox": "on"}, config_home=cfg, env={})
    parsed = sandbox_settings(settings)
    assert problems == [] and (parsed.mode, parsed.network, parsed.auto_allow) == ("on", True, False)
    # A project's settings file cannot turn the sandbox off.
    (tmp_path / ".codeloop").mkdir()
    (tmp_path / ".codeloop" / "settings.json").write_text(json.dumps({"sandbox": "off"}))
    settings, _ = load_settings(tmp_path, config_home=cfg, env={})
    assert sandbox_settings(settings).mode == "auto"
    settings, problems = load_settings(tmp_path, {"sandbox": {"mode": "sometimes"}}, config_home=cfg, env={})
    assert sandbox_settings(settings).mode == "auto" and any("sandbox.mode" in p for p in problems)
