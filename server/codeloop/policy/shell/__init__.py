"""Shell command analysis for the permission policy.

A command line is parsed with a real bash parser (``bashlex``) into *parts*: every
simple command it would run, including those inside pipelines, lists, subshells,
``{ }`` groups, function bodies, loops, ``$(...)``, backticks, process
substitutions, ``bash -c '...'``/``sh -c``/``eval``/``watch`` strings,
``xargs CMD`` and ``find ... -exec CMD``. Each part keeps its redirections and the
working directory it would run in (``cd`` is followed through a list).

``classify`` then reports *findings* on the parts: the catastrophic class (refused
in every mode), risky commands (always asked unless a rule names them), and file
paths the command writes or reads (so path rules and the workspace boundary apply
to shell commands too). The decision itself is made by ``engine.PermissionPolicy``.

Nothing here executes anything, and nothing raises on user input: a command that
cannot be parsed is reported (``ParsedCommand.error``) and still scanned with a
coarse tokenizer so that a catastrophic command cannot hide behind a parse error.

The modules, bottom up (each imports only those above it):

- ``model``: the data (Word, Redirect, Part, ParsedCommand, Finding, Analysis).
- ``words``: static expansion, wrappers (``unwrap``), option skipping.
- ``syntax``: the bashlex adapter (tree walking, repairs, the fallback tokenizer).
- ``nested``: commands that run other commands, as a table (``NESTED``).
- ``parser``: the tree walk into parts (``parse_command``).
- ``paths``, ``secret_paths``: where a path lies; which files may hold secrets.
- ``readonly``: the read-only classifier used by plan mode.
- ``findings``: ``Recorder``, which records writes, secret reads and risks.
- ``checkers``: one checker per command name, as a table (``CHECKERS``).
- ``classify``: the findings of every part (``analyze``, ``classify``).
"""

from codeloop.policy.shell.checkers import CHECKERS, POWER_COMMANDS, Checker, Cmd, checker_for
from codeloop.policy.shell.classify import analyze, classify
from codeloop.policy.shell.model import Analysis, Finding, Level, ParsedCommand, Part, Redirect, Word
from codeloop.policy.shell.nested import NESTED
from codeloop.policy.shell.parser import MAX_COMMAND_CHARS, MAX_DEPTH, parse_command
from codeloop.policy.shell.paths import (
    BLOCK_DEVICE_RE,
    CATASTROPHIC_CLASSES,
    HARMLESS_DEVICES,
    SHELL_RC,
    SHELL_RC_PATHS,
    SYSTEM_DIRS,
    SYSTEM_RC,
    is_shell_rc,
    target_class,
)
from codeloop.policy.shell.readonly import is_read_only_command
from codeloop.policy.shell.secret_paths import (
    ENV_TEMPLATES,
    SECRET_HOME_DIRS,
    SECRET_NAMES,
    SECRET_SUFFIXES,
    is_secret_path,
)
from codeloop.policy.shell.words import (
    BENIGN_WRAPPERS,
    PRIVILEGE_WRAPPERS,
    base_name,
    expand_text,
    expand_word,
    git_subcommand,
    unwrap,
    unwrap_one,
)

__all__ = [
    "Analysis", "Finding", "ParsedCommand", "Part", "Redirect", "Word", "analyze", "classify",
    "is_read_only_command", "is_secret_path", "is_shell_rc", "parse_command", "target_class", "unwrap", "unwrap_one",
    # also importable, as before the split
    "BENIGN_WRAPPERS", "BLOCK_DEVICE_RE", "CATASTROPHIC_CLASSES", "CHECKERS", "Checker", "Cmd", "ENV_TEMPLATES",
    "HARMLESS_DEVICES", "Level", "MAX_COMMAND_CHARS", "MAX_DEPTH", "NESTED", "POWER_COMMANDS", "PRIVILEGE_WRAPPERS",
    "SECRET_HOME_DIRS", "SECRET_NAMES", "SECRET_SUFFIXES", "SHELL_RC", "SHELL_RC_PATHS", "SYSTEM_DIRS", "SYSTEM_RC",
    "base_name", "checker_for", "expand_text", "expand_word", "git_subcommand",
]
