"""Settings, validated with pydantic.

Sources, weakest first: defaults, the environment (OPENAI_BASE_URL,
OPENAI_API_KEY, CODELOOP_MODEL), the editor's settings or CLI flags. A bad value
is reported and its default used; nothing here raises on user input.
"""

from __future__ import annotations

import os
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, SecretStr, ValidationError

from codeloop.policy.types import Mode

DEFAULT_BASE_URL = "https://api.openai.com/v1"
DEFAULT_MODEL = "gpt-4o-mini"


class Price(BaseModel):
    """USD per million tokens."""

    input: float
    output: float
    cached_input: float | None = None


class CheckpointsConfig(BaseModel):
    """The ``checkpoints`` setting: what codeloop.services.checkpoints records (see
    docs/checkpoints.md). The defaults are the service's own (a test keeps them equal)."""

    model_config = ConfigDict(extra="forbid", populate_by_name=True)

    enabled: bool = True
    budget_bytes: int = Field(2 * 1024**3, ge=0, alias="budgetBytes")
    max_file_bytes: int = Field(16 * 1024**2, ge=0, alias="maxFileBytes")
    exclude: list[str] = Field(default_factory=list)
    watch: bool = True
    rescan_seconds: float = Field(600.0, ge=0, alias="rescanSeconds")


class Settings(BaseModel):
    model_config = ConfigDict(extra="ignore", populate_by_name=True)

    model: str = DEFAULT_MODEL
    base_url: str = Field(DEFAULT_BASE_URL, alias="baseUrl")
    api_key: SecretStr | None = Field(None, alias="apiKey")
    max_turns: int = Field(50, ge=1, le=10_000, alias="maxTurns")
    mode: Mode = "ask"
    auto_accept: bool = Field(False, alias="autoAccept")
    command_timeout: float = Field(120.0, gt=0, le=600, alias="commandTimeout")
    request_timeout: float = Field(600.0, gt=0, alias="requestTimeout")
    max_retries: int = Field(5, ge=0, le=20, alias="maxRetries")
    retry_base_delay: float = Field(1.0, ge=0, alias="retryBaseDelay")
    context_window: int | None = Field(None, ge=1024, alias="contextWindow")
    compact_threshold: float = Field(0.8, gt=0.1, le=1.0, alias="compactThreshold")
    # Tool output per model step, as a share of the context window.
    step_output_share: float = Field(0.35, gt=0.0, le=0.8, alias="stepOutputShare")
    # How long old tool results stay in requests verbatim, in tokens x model steps:
    # a result of N tokens stays for about keep_tool_output / N steps (then a note
    # says how to get it again). See codeloop.context.elision.
    keep_tool_output: int = Field(4_000, ge=0, alias="keepToolOutput")
    session_storage: Literal["workspace", "user"] = Field("workspace", alias="sessionStorage")
    prices: dict[str, Price] = Field(default_factory=dict)
    permissions: dict[str, list[str]] = Field(default_factory=dict)
    check_command: str | None = Field(None, alias="checkCommand")
    # Images the user attaches: "auto" sends them to models known to take images (VISION_MODELS),
    # "on" always, "off" never (a text note says an image was left out).
    images: Literal["auto", "on", "off"] = "auto"
    # The language server publishes the check command's diagnostics (off: the user's linters show them).
    publish_diagnostics: bool = Field(False, alias="publishDiagnostics")
    # MCP servers: how long a server may take to start, and a call to answer (seconds);
    # the share of the context window the MCP tools' schemas may take before tool search
    # sends only their names (0: always search, 1: never).
    mcp_startup_timeout: float = Field(30.0, gt=0, le=600, alias="mcpStartupTimeout")
    mcp_call_timeout: float = Field(600.0, gt=0, alias="mcpCallTimeout")
    tool_search_share: float = Field(0.10, ge=0.0, le=1.0, alias="toolSearchShare")
    # Trust the project's own MCP servers, hooks and allow rules for this run without
    # asking (what you refused stays refused). Read from your settings and the editor only,
    # never from a project's files (runtime/settings.py PROJECT_SETTING_KEYS).
    trust_project: bool = Field(False, alias="trustProject")
    # Checkpoints before each turn and tool step, for /rewind (docs/checkpoints.md).
    checkpoints: CheckpointsConfig = Field(default_factory=CheckpointsConfig)
    # The OS sandbox for commands: "auto" | "on" | "off" or {"mode", "network", "autoAllow",
    # "maxProcesses", "mcp"}; parsed (and its problems reported) by codeloop.runtime.settings.
    sandbox: bool | str | dict[str, Any] = "auto"
    # Code mode: the run_code tool (a Python program whose tool calls are functions).
    code_mode: bool = Field(True, alias="codeMode")
    code_timeout: float = Field(60.0, gt=0, le=3600, alias="codeTimeout")  # seconds, the program's own time
    code_max_calls: int = Field(200, ge=1, le=100_000, alias="codeMaxCalls")  # tool calls per program

    def redacted(self) -> dict[str, Any]:
        data = self.model_dump(by_alias=True)
        data["apiKey"] = "***" if self.api_key else None
        return data

    def secrets(self) -> list[str]:
        """Values the session store scrubs from what it writes."""
        key = self.api_key.get_secret_value() if self.api_key else ""
        return [key] if key else []

    def key(self) -> str:
        """The API key to send. Local servers (Ollama, vLLM) accept any string."""
        if self.api_key is not None and self.api_key.get_secret_value():
            return self.api_key.get_secret_value()
        return "not-needed"


# Model name families known to take image input (OpenAI-compatible `image_url` parts). A name
# matches when it starts with one of these, after any `provider/` prefix, case-insensitively.
VISION_MODELS: tuple[str, ...] = (
    "gpt-4o", "gpt-4.1", "gpt-4-turbo", "gpt-4-vision", "gpt-5", "o1", "o3", "o4",
    "claude-3", "claude-sonnet-4", "claude-opus-4", "claude-haiku-4", "claude-4",
    "gemini", "pixtral", "mistral-small-3", "mistral-medium", "llava", "bakllava", "llama3.2-vision",
    "llama-3.2-11b-vision", "llama-3.2-90b-vision", "llama-4", "qwen2-vl", "qwen2.5-vl", "qwen-vl",
    "minicpm-v", "moondream", "gemma3", "grok-2-vision", "grok-4",
)


def takes_images(settings: Settings) -> bool:
    """Whether the user's images go to the model as image parts (the `images` setting)."""
    if settings.images != "auto":
        return settings.images == "on"
    name = settings.model.strip().lower().rsplit("/", 1)[-1]
    return name.startswith(VISION_MODELS)


def env_overrides(env: dict[str, str] | None = None) -> dict[str, Any]:
    env = dict(os.environ) if env is None else env
    out: dict[str, Any] = {}
    if env.get("OPENAI_BASE_URL"):
        out["base_url"] = env["OPENAI_BASE_URL"]
    if env.get("OPENAI_API_KEY"):
        out["api_key"] = env["OPENAI_API_KEY"]
    if env.get("CODELOOP_MODEL"):
        out["model"] = env["CODELOOP_MODEL"]
    return out


def build_settings(*layers: dict[str, Any] | None) -> tuple[Settings, list[str]]:
    """Merge layers (later wins) into Settings.

    Returns the settings and a list of problems. A field with a bad value keeps
    its default (or the value from an earlier layer) and is reported.
    """
    merged: dict[str, Any] = {}
    problems: list[str] = []
    for layer in layers:
        if not layer:
            continue
        for key, value in layer.items():
            if value is None:
                continue
            name = _field_name(key)
            if name is None:
                continue  # unknown keys are ignored, like the editor does
            trial = {**merged, name: value}
            try:
                Settings.model_validate(trial)
            except ValidationError as e:
                msg = "; ".join(err["msg"] for err in e.errors())
                problems.append(f"setting {key!r} = {_short(value)} is invalid ({msg}); keeping the default")
                continue
            merged[name] = value
    return Settings.model_validate(merged), problems


def _field_name(key: str) -> str | None:
    fields = Settings.model_fields
    if key in fields:
        return key
    for name, info in fields.items():
        if info.alias == key:
            return name
    return None


def _short(value: Any) -> str:
    text = repr(value)
    return text if len(text) < 60 else text[:57] + "..."
