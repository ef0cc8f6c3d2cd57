"""Where a path a command touches lies: the filesystem root, the home directory, a
system directory, the workspace, a shell startup file, a device."""

from __future__ import annotations

import os
import re
from pathlib import Path

SYSTEM_DIRS = {
    "bin", "boot", "dev", "etc", "home", "lib", "lib32", "lib64", "libx32", "opt", "proc", "root",
    "sbin", "srv", "sys", "usr", "var", "Users", "System", "Library", "Applications", "Volumes",
    "private", "snap", "nix",
}
SHELL_RC = {
    ".bashrc", ".bash_profile", ".bash_login", ".bash_logout", ".profile", ".zshrc", ".zprofile",
    ".zshenv", ".zlogin", ".zlogout", ".cshrc", ".tcshrc", ".kshrc", ".mkshrc", ".inputrc",
}
SHELL_RC_PATHS = {".config/fish/config.fish"}
SYSTEM_RC = {"/etc/profile", "/etc/bash.bashrc", "/etc/bashrc", "/etc/zshrc", "/etc/zsh/zshrc", "/etc/environment"}
BLOCK_DEVICE_RE = re.compile(
    r"^/dev/(sd[a-z]|hd[a-z]|vd[a-z]|xvd[a-z]|nvme\d|mmcblk\d|disk\d|rdisk\d|dm-\d|md\d|loop\d|mapper/|"
    r"mem$|kmem$|port$|sr\d|nbd\d|zd\d|root$|block/)"
)
HARMLESS_DEVICES = {"/dev/null", "/dev/zero", "/dev/stdout", "/dev/stderr", "/dev/stdin", "/dev/tty", "/dev/full",
                    "/dev/random", "/dev/urandom"}


def is_shell_rc(path: Path, home: Path) -> bool:
    if str(path) in SYSTEM_RC:
        return True
    if path.parent == home and path.name in SHELL_RC:
        return True
    try:
        rel = path.relative_to(home).as_posix()
    except ValueError:
        return False
    return rel in SHELL_RC_PATHS


def _has_glob(text: str) -> bool:
    return any(c in text for c in "*?[")


def target_class(value: str, cwd: Path | None, root: Path, home: Path) -> tuple[str, Path | None]:
    """Classify a path a command deletes/overwrites.

    Returns (class, path): root | home | above | workspace | system (catastrophic
    targets), inside | outside, or unknown (a relative path with an unknown cwd).
    A trailing ``*``/``.*`` component means "everything in the directory".
    """
    text = value
    if not text:
        return "unknown", None
    comps = text.split("/")
    glob_all = False
    if _has_glob(text):
        # keep the static prefix; a bare `*`, `.*`, `**` component means "everything"
        static: list[str] = []
        for c in comps:
            if _has_glob(c):
                glob_all = c in ("*", ".*", "**", ".[!.]*", "*.*", "{*,.*}")
                break
            static.append(c)
        text = "/".join(static) if static else ""
        if text == "" and comps and comps[0] == "":
            text = "/"
        if text == "":
            text = "."
    if text.startswith("/"):
        path = Path(os.path.normpath(text))
        if text.startswith("//"):
            path = Path("/" + str(path).lstrip("/"))
    else:
        if cwd is None:
            return "unknown", None
        path = Path(os.path.normpath(os.path.join(cwd, text)))
    specific_glob = _has_glob(value) and not glob_all
    cls = _dir_class(path, root, home)
    if specific_glob and cls in ("root", "home", "above", "workspace", "system"):
        # `rm -rf /*.log`, `rm -rf ~/tmp*`: not everything, but not inside either
        return ("inside" if cls == "workspace" else "outside"), path
    return cls, path


def _dir_class(path: Path, root: Path, home: Path) -> str:
    if path == Path("/"):
        return "root"
    if path == home or path in home.parents:
        return "home"
    if path == root:
        return "workspace"
    if path in root.parents:
        return "above"
    if root in path.parents:
        return "inside"
    parts = path.parts
    if len(parts) == 2 and parts[1] in SYSTEM_DIRS:
        return "system"
    if len(parts) == 3 and parts[1] == "usr":
        return "system"
    return "outside"


CATASTROPHIC_CLASSES = {"root", "home", "above", "workspace", "system"}
_CLASS_TEXT = {
    "root": "the whole filesystem",
    "home": "the home directory",
    "above": "a directory above the workspace",
    "workspace": "the workspace root",
    "system": "a system directory",
}
