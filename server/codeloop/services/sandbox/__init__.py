"""An OS sandbox for the commands codeloop runs (the shell tool's commands, background processes,
the check command, code mode, MCP stdio servers).

Backends, chosen by probing at start-up (a real sandboxed command is run; the result is cached
per process): **bubblewrap** (mount, PID, IPC, UTS, network and user namespaces), then
**Landlock** (kernel 5.13+, no namespaces: filesystem rules, TCP rules from ABI 4, signal and
abstract-socket scoping from ABI 6, plus a seccomp filter), then none.

The profile: the whole filesystem read-only; the workspace and a private temp dir writable; the
home directories (the real one from the passwd database, and ``$HOME``) read-only with their
secrets hidden; inside the workspace ``.git/hooks``, ``.git/config``, ``.codeloop/``,
``.vscode/``, ``.claude/`` and ``.mcp.json`` read-only and impossible to create (bubblewrap);
network off unless allowed; no Unix sockets to daemons; own PID namespace (bubblewrap); a cap on
tasks against fork bombs; credentials removed from the environment.

Entry points: :meth:`Sandbox.probe`, :meth:`Sandbox.prepare`, :meth:`Sandbox.describe`,
:func:`parse_sandbox_setting`. See ``core`` for the runner's side of the contract.

Modules: ``core`` (the :class:`Sandbox` facade and the probe driver), ``model`` (its plain values),
``probing`` (what a probe checks), ``backends`` (bubblewrap's argv, the Landlock launcher's spec),
``launcher`` (the Landlock/seccomp launcher), ``profile`` (what is hidden, read-only, writable),
``placeholders`` (mount points for missing protected paths), ``limits`` (cgroup process limits),
``settings`` (the ``sandbox`` setting).
"""

from codeloop.services.sandbox.core import Sandbox, probe_backend
from codeloop.services.sandbox.model import BACKENDS, GUARANTEES, BackendProbe, Prepared, SandboxUnavailable
from codeloop.services.sandbox.profile import (
    PROTECTED_DIRS,
    PROTECTED_FILES,
    SECRET_HOME_PATHS,
    hidden_secrets,
    real_home,
    scrub_env,
    secret_homes,
    workspace_plan,
)
from codeloop.services.sandbox.settings import SandboxMode, SandboxSettings, parse_sandbox_setting

__all__ = [
    "BACKENDS", "GUARANTEES", "BackendProbe", "Prepared", "Sandbox", "SandboxUnavailable", "probe_backend",
    "PROTECTED_DIRS", "PROTECTED_FILES", "SECRET_HOME_PATHS", "hidden_secrets", "real_home", "scrub_env",
    "secret_homes", "workspace_plan", "SandboxMode", "SandboxSettings", "parse_sandbox_setting",
]
