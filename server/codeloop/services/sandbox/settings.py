"""The ``sandbox`` setting: a pydantic model and a parser that reports bad values.

Accepted forms::

    "sandbox": "auto" | "on" | "off"                 # shorthand for the mode
    "sandbox": true | false                          # "on" | "off"
    "sandbox": {"mode": "auto", "network": false, "autoAllow": true, "maxProcesses": 1024, "mcp": false}

A bad value is reported and its default kept (the rest of the object still applies); an unknown
key is reported and ignored. Nothing here raises on user input.
"""

from __future__ import annotations

from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError

SandboxMode = Literal["auto", "on", "off"]
MODES: tuple[str, ...] = ("auto", "on", "off")
DEFAULT_MAX_PROCESSES = 1024


class SandboxSettings(BaseModel):
    """``mode``: ``auto`` (default) sandboxes where a backend works and says so when none does;
    ``on`` refuses to run commands unsandboxed (fail closed); ``off`` runs them as before.
    ``network``: allow network access from sandboxed commands. ``autoAllow``: in ``ask`` mode,
    run sandboxed commands the policy would only ask about because they are unknown (the
    policy's business, carried here). ``maxProcesses``: tasks (processes and threads) one
    sandboxed command may have at once, against fork bombs. ``mcp``: run MCP stdio servers in
    the sandbox too (off by default: many need the network or write their caches in the home)."""

    model_config = ConfigDict(extra="forbid", populate_by_name=True, frozen=True, strict=True)

    mode: SandboxMode = "auto"
    network: bool = False
    auto_allow: bool = Field(True, alias="autoAllow")
    max_processes: int = Field(DEFAULT_MAX_PROCESSES, ge=8, le=1_000_000, alias="maxProcesses")
    mcp: bool = False

    def to_json(self) -> dict[str, Any]:
        return self.model_dump(by_alias=True)


_FIELDS = {name: name for name in SandboxSettings.model_fields} | {
    info.alias: name for name, info in SandboxSettings.model_fields.items() if info.alias
}


def _short(value: Any) -> str:
    text = repr(value)
    return text if len(text) < 60 else text[:57] + "..."


def parse_sandbox_setting(value: Any, *, where: str = "sandbox") -> tuple[SandboxSettings, list[str]]:
    """``value`` as found in a settings file (or a ``--sandbox`` flag) -> settings, problems."""
    if value is None:
        return SandboxSettings(), []
    if isinstance(value, SandboxSettings):
        return value, []
    if isinstance(value, bool):
        return SandboxSettings(mode="on" if value else "off"), []
    if isinstance(value, str):
        mode = value.strip().lower()
        if mode in MODES:
            return SandboxSettings(mode=mode), []  # type: ignore[arg-type]
        return SandboxSettings(), [
            f"setting {where!r} = {_short(value)} is invalid (use \"auto\", \"on\" or \"off\"); keeping \"auto\""
        ]
    if not isinstance(value, dict):
        return SandboxSettings(), [
            f"setting {where!r} = {_short(value)} is invalid (expected \"auto\", \"on\", \"off\" or an object); "
            "keeping the defaults"
        ]
    good: dict[str, Any] = {}
    problems: list[str] = []
    for key, item in value.items():
        name = _FIELDS.get(key)
        if name is None:
            problems.append(f"setting {where}.{key} is unknown (known: mode, network, autoAllow, maxProcesses, mcp); ignored")
            continue
        if name == "mode" and isinstance(item, str):
            item = item.strip().lower()
        try:
            SandboxSettings.model_validate({**good, name: item})
        except ValidationError as e:
            msg = "; ".join(err["msg"] for err in e.errors())
            problems.append(f"setting {where}.{key} = {_short(item)} is invalid ({msg}); keeping the default")
            continue
        good[name] = item
    return SandboxSettings.model_validate(good), problems
