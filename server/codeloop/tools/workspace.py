"""The workspace guard: every path a tool touches resolves inside the root.

Paths come from the model, so anything may arrive: ``..``, absolute paths,
symlinks that point out, NUL bytes, lone surrogates, names longer than the
filesystem allows, ``~`` forms. ``Workspace.resolve`` turns each into a real path
inside the root or raises ``PathOutsideWorkspace`` (a ``ValueError``) with a
message for the model; it never raises anything else.

``~`` follows the shell's rule: ``~`` and ``~/...`` are the home directory, and
``~name`` / ``~name/...`` are the home of the user ``name`` *if that user exists*.
Any other name starting with ``~`` (``~$report.docx``, an editor's lock file, or
``~nosuchuser/x``) is an ordinary relative path in the workspace. ``./~name``
always names the workspace file.
"""

from __future__ import annotations

import os
from pathlib import Path

try:
    import pwd
except ImportError:  # pragma: no cover - not POSIX
    pwd = None  # type: ignore[assignment]

# Fallbacks when the filesystem does not say (Linux's values).
NAME_MAX = 255
PATH_MAX = 4096
SHOWN_MAX = 120  # characters of a rejected path quoted back in an error


class PathOutsideWorkspace(ValueError):
    pass


class InvalidPath(PathOutsideWorkspace):
    """The text cannot name any file (a NUL byte, a lone surrogate, a name too long for
    the filesystem, ``~`` when the home directory is unknown).

    Decided from the text alone, so the same text is refused every time; a subclass of
    PathOutsideWorkspace so that every guard refusing outside paths refuses these too.
    """


def shown(raw: str) -> str:
    """``raw`` quoted for an error message, shortened when it is very long."""
    if len(raw) <= SHOWN_MAX:
        return repr(raw)
    return repr(raw[:80]) + f" [... {len(raw) - 110} more characters ...] " + repr(raw[-30:])


def _limit(root: Path, name: str, fallback: int) -> int:
    try:
        value = os.pathconf(root, name)
    except (OSError, ValueError):
        return fallback
    return value if value and value > 0 else fallback


def expand_tilde(raw: str) -> str:
    """``raw`` with a leading ``~`` / ``~user`` expanded as bash does; unchanged when
    it names no known user (then it is a relative name). Raises InvalidPath for ``~``
    when the home directory is unknown."""
    if not raw.startswith("~"):
        return raw
    head, sep, tail = raw[1:].partition("/")
    if head == "":
        home = os.environ.get("HOME")
        if not home and pwd is not None:
            try:
                home = pwd.getpwuid(os.getuid()).pw_dir
            except (KeyError, OSError):
                home = None
        if not home:
            raise InvalidPath(
                f"path {shown(raw)}: ~ stands for the home directory, which is not known here; "
                "write ./~ for a file named ~ in the workspace"
            )
        return home.rstrip("/") + "/" + tail if sep or tail else home
    try:
        if pwd is None:
            return raw
        home = pwd.getpwnam(head).pw_dir
    except (KeyError, OSError, ValueError):
        return raw  # no such user: an ordinary name (a lock file like ~$report.docx)
    return home.rstrip("/") + "/" + tail if sep else home


class Workspace:
    def __init__(self, root: Path | str) -> None:
        self.root = Path(root).resolve()
        self.name_max = _limit(self.root, "PC_NAME_MAX", NAME_MAX)
        self.path_max = _limit(self.root, "PC_PATH_MAX", PATH_MAX)

    def check_text(self, raw: str, given: str | None = None) -> None:
        """Refuse a path text that cannot name any file (InvalidPath); ``given`` is the
        text as the model wrote it (before ~ was expanded), for the message."""
        quoted = shown(given if given is not None else raw)
        if "\x00" in raw:
            raise InvalidPath(f"invalid path {quoted}: it contains a NUL byte")
        try:
            encoded = os.fsencode(raw)
        except UnicodeError:
            raise InvalidPath(
                f"invalid path {quoted}: it is not valid text (it holds a lone surrogate)"
            ) from None
        longest = max((len(c) for c in encoded.split(b"/")), default=0)
        if longest > self.name_max:
            raise InvalidPath(
                f"invalid path {quoted}: a name in it is {longest} bytes long; "
                f"the filesystem allows {self.name_max}"
            )
        whole = len(encoded) if encoded.startswith(b"/") else len(os.fsencode(str(self.root))) + 1 + len(encoded)
        if whole >= self.path_max:
            raise InvalidPath(
                f"invalid path {quoted}: it is {len(encoded)} bytes long; "
                f"the filesystem allows {self.path_max - 1} for a whole path"
            )

    def resolve(self, path: str | os.PathLike[str]) -> Path:
        """Resolve ``path`` (relative to the root, or absolute) to a real path inside it.

        Symlinks are followed, so a link inside the workspace that points out of it
        is refused. Raises PathOutsideWorkspace (InvalidPath for text that cannot be a
        path) with a message for the model, and nothing else.
        """
        try:
            raw = os.fspath(path)
        except TypeError:
            raise InvalidPath(f"invalid path {path!r}: not a string") from None
        if not isinstance(raw, str):
            raise InvalidPath(f"invalid path {raw!r}: not a string")
        self.check_text(raw)
        if raw.strip() == "":
            raise PathOutsideWorkspace("empty path")
        text = expand_tilde(raw)
        if text != raw:
            self.check_text(text, raw)
        expanded = Path(text)
        candidate = expanded if expanded.is_absolute() else self.root / expanded
        # strict=False: the file may not exist yet (write_file), but any existing
        # prefix, symlinks included, is resolved.
        try:
            real = Path(os.path.realpath(candidate))
            # realpath gives up on a symlink loop and then collapses "loop/.." as text,
            # which can land on a link pointing out. A settled path resolves to itself.
            settled = os.path.realpath(real) == str(real)
        except (OSError, ValueError, RecursionError) as e:
            raise PathOutsideWorkspace(
                f"path {shown(raw)} could not be resolved ({type(e).__name__}), so it is treated as outside the workspace"
            ) from None
        if not settled:
            raise PathOutsideWorkspace(
                f"path {shown(raw)} could not be resolved (a symlink loop?), so it is treated as outside the workspace"
            )
        if real != self.root and self.root not in real.parents:
            hint = ""
            if text != raw:
                hint = f" (~ is a home directory; write ./{raw} for a file of that name in the workspace)"
            raise PathOutsideWorkspace(
                f"path {shown(raw)} resolves to {real}, which is outside the workspace {self.root}{hint}"
            )
        if len(os.fsencode(str(real))) >= self.path_max:
            # links inside made it longer than the filesystem allows: not an input
            # error (the links may change), so not InvalidPath
            raise PathOutsideWorkspace(f"path {shown(raw)} resolves to a path longer than the filesystem allows")
        return real

    def relative(self, path: Path) -> str:
        try:
            rel = path.resolve().relative_to(self.root)
        except (ValueError, OSError, RuntimeError):
            return str(path)
        return rel.as_posix() or "."

    def contains(self, path: Path) -> bool:
        try:
            real = Path(os.path.realpath(path))
        except (OSError, ValueError):
            return False
        return real == self.root or self.root in real.parents
