"""Settings, read the same way by every host.

Layers, weakest first:

1. defaults;
2. the user's ``~/.config/codeloop/settings.json`` (any setting);
3. the project's ``.codeloop/settings.json`` and ``.codeloop/settings.local.json``,
   restricted to ``PROJECT_SETTING_KEYS``: a cloned repository must not be able to
   send the API key elsewhere, loosen the mode or run a command;
4. the environment (``OPENAI_BASE_URL``, ``OPENAI_API_KEY``, ``CODELOOP_MODEL``);
5. the host's own layer: the editor's settings (the user's, so any setting) or the
   CLI's flags.

``permissions`` are read by the policy itself (``codeloop.policy``), from the same
files. A broken file is reported with its path and ignored; a bad value is
reported and its default kept. Nothing here raises on user input.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from codeloop.config import Settings, build_settings, env_overrides
from codeloop.policy.sources import default_config_home
from codeloop.services.sandbox import SandboxSettings, parse_sandbox_setting

# Settings a project's .codeloop/settings*.json may set. Anything that could send the
# key elsewhere, loosen permissions or run a command is left to the user.
PROJECT_SETTING_KEYS = (
    "prices",
    "contextWindow",
    "compactThreshold",
    "stepOutputShare",
    "keepToolOutput",
    "maxTurns",
    "commandTimeout",
    "requestTimeout",
    "maxRetries",
    "sessionStorage",
    "mcpStartupTimeout",
    "mcpCallTimeout",
    "toolSearchShare",
)
# Not "checkpoints": a cloned repository must not turn off (or narrow) the record rewind
# restores from. Nor "sandbox", "mode", "permissions", "checkCommand", "baseUrl": the user's.
# Read elsewhere from the same files (not Settings fields).
OWN_SECTIONS = ("permissions",)
PROJECT_FILES = ("settings.json", "settings.local.json")
MAX_SETTINGS_BYTES = 2 * 1024 * 1024


def read_settings_file(path: Path, problems: list[str]) -> dict[str, Any]:
    """The JSON object in ``path`` ({} when it is missing); a problem when it is broken."""
    try:
        if not path.is_file():
            return {}
        if path.stat().st_size > MAX_SETTINGS_BYTES:
            problems.append(f"{path}: larger than {MAX_SETTINGS_BYTES // (1024 * 1024)} MB; ignoring it")
            return {}
        data = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, ValueError) as e:
        problems.append(f"{path}: could not read settings ({e}); ignoring it")
        return {}
    if not isinstance(data, dict):
        problems.append(f"{path}: settings must be a JSON object; ignoring it")
        return {}
    return data


def user_settings_file(config_home: Path | None = None) -> Path:
    return (config_home or default_config_home()) / "settings.json"


def file_layers(root: Path, config_home: Path | None = None) -> tuple[dict[str, Any], dict[str, Any], list[str]]:
    """(the user file's settings, the project files' allowed settings, problems)."""
    problems: list[str] = []
    user = {k: v for k, v in read_settings_file(user_settings_file(config_home), problems).items() if k not in OWN_SECTIONS}
    project: dict[str, Any] = {}
    for name in PROJECT_FILES:
        data = read_settings_file(Path(root) / ".codeloop" / name, problems)
        project.update({k: v for k, v in data.items() if k in PROJECT_SETTING_KEYS})
    return user, project, problems


def load_settings(
    root: Path,
    host: dict[str, Any] | None = None,
    *,
    env: dict[str, str] | None = None,
    config_home: Path | None = None,
) -> tuple[Settings, list[str]]:
    """The settings for a session in ``root``: files, environment, then the host's layer
    (editor settings or CLI flags, which win). Returns the settings and the problems."""
    user, project, problems = file_layers(root, config_home)
    layers = [user, project, env_overrides(env), host or {}]
    sandbox, sandbox_problems = merge_sandbox(layers)
    settings, more = build_settings(*({k: v for k, v in layer.items() if k != "sandbox"} for layer in layers))
    settings = settings.model_copy(update={"sandbox": sandbox.to_json()})
    return settings, problems + sandbox_problems + more


def merge_sandbox(layers: list[dict[str, Any]]) -> tuple[SandboxSettings, list[str]]:
    """The ``sandbox`` setting over the layers: each sets only what it names (``--sandbox on``
    or ``"sandbox": "on"`` changes the mode and keeps an earlier layer's ``network``)."""
    merged: dict[str, Any] = {}
    problems: list[str] = []
    for layer in layers:
        value = layer.get("sandbox") if layer else None
        if value is None:
            continue
        parsed, found = parse_sandbox_setting(value)
        problems += found
        if isinstance(value, dict):
            given = {k for k in value if k in parsed.to_json()}
            merged.update({k: v for k, v in parsed.to_json().items() if k in given and not _bad(k, found)})
        elif not found:
            merged["mode"] = parsed.mode
    return parse_sandbox_setting(merged)[0], problems


def _bad(key: str, problems: list[str]) -> bool:
    return any(f"sandbox.{key} " in p for p in problems)


def sandbox_settings(settings: Settings) -> SandboxSettings:
    """The parsed ``sandbox`` setting (load_settings has reported its problems already)."""
    return parse_sandbox_setting(settings.sandbox)[0]


__all__ = ["PROJECT_SETTING_KEYS", "file_layers", "load_settings", "merge_sandbox", "read_settings_file",
           "sandbox_settings", "user_settings_file"]
