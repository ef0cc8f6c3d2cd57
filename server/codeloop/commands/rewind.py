"""``/rewind``: put the code, the conversation or both back to before a user message.

The same flow in every host (the REPL, the editor, ``codeloop rewind apply``): the
preview is shown, the host is asked what to rewind and, for each file the user changed
after the session did, whether to keep it (the default), rebase (undo the session's
changes on top of the user's) or restore the checkpoint's content. ``--yes`` asks
nothing: the code and the conversation (or what ``--code-only`` / ``--conversation-only``
says), and a file the user changed since is kept, or rebased with ``--rebase``: never
reset. A host that cannot ask (``choose`` gives None) gets the preview and how to apply it.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any, Protocol

USAGE = ("/rewind lists the messages to rewind to; /rewind N [--code-only | --conversation-only] [--yes] "
         "[--rebase] rewinds to before message N (or a checkpoint id, e.g. c7)")

SCOPES = {
    "Code and conversation": (True, True),
    "Code only": (True, False),
    "Conversation only": (False, True),
}
FILE_CHOICES = {
    "keep": "Keep it as it is now",
    "rebase": "Rebase: undo the session's changes on top of the later edits",
    "restore": "Restore the checkpoint's version (discards the later edits)",
}


class RewindUI(Protocol):
    """How a host asks (``choose``: one of ``options``, or None when it cannot ask or the
    user dismissed the question) and shows text."""

    async def choose(self, question: str, options: Sequence[str]) -> str | None: ...

    def show(self, text: str) -> None: ...


class Rewinding(Protocol):
    """What the flow uses of a session's rewind (``codeloop.runtime.rewind.SessionRewind``);
    its errors are ``ValueError``s whose message is for the user."""

    async def targets(self) -> list[Any]: ...

    async def resolve(self, spec: str | None) -> Any: ...

    async def preview(self, target: Any, port: Any = None) -> Any: ...

    async def apply(self, preview: Any, choices: dict[str, str] | None = None, *, changed_since: str = "keep",
                    code: bool = True, conversation: bool = True, port: Any = None) -> Any: ...


@dataclass
class RewindArgs:
    target: str | None = None
    code: bool | None = None  # None: ask (or both, with --yes)
    conversation: bool | None = None
    yes: bool = False
    rebase: bool = False
    choices: dict[str, str] = field(default_factory=dict)  # path -> restore | keep | rebase
    preview_only: bool = False


def parse_args(arg: str | None) -> RewindArgs:
    """``N [--code-only|--conversation-only] [--yes] [--rebase]``; raises ValueError."""
    out = RewindArgs()
    for word in (arg or "").split():
        if word in ("--code-only", "--code"):
            out.code, out.conversation = True, False
        elif word in ("--conversation-only", "--conversation"):
            out.code, out.conversation = False, True
        elif word in ("--yes", "-y"):
            out.yes = True
        elif word == "--rebase":
            out.rebase = True
        elif word == "--preview":
            out.preview_only = True
        elif word.startswith("-"):
            raise ValueError(f"unknown option {word!r}. {USAGE}")
        elif out.target is None:
            out.target = word
        else:
            raise ValueError(f"one target at a time, got {out.target!r} and {word!r}. {USAGE}")
    return out


def check(arg: str | None) -> str | None:
    try:
        parse_args(arg)
    except ValueError as e:
        return str(e)
    return None


def listing(targets: list[Any]) -> str:
    if not targets:
        return "There is nothing to rewind to yet: each message you send gets a checkpoint."
    lines = ["Rewind to before one of your messages (/rewind N), or undo a rewind (/rewind ID):"]
    lines += [t.describe() for t in targets]
    return "\n".join(lines)


async def run(rewind: Rewinding, ui: RewindUI | None, args: RewindArgs, port: Any = None) -> tuple[str, str]:
    """The flow; (level, text) for the reply. Raises ValueError for what cannot be done."""
    if args.target is None and not args.yes and args.code is None and not args.preview_only:
        return "info", listing(await rewind.targets())
    target = await rewind.resolve(args.target)
    preview = await rewind.preview(target, port)
    code = True if args.code is None else args.code
    conversation = True if args.conversation is None else args.conversation
    if args.preview_only:
        return "info", preview.text(code, conversation)
    if not args.yes:
        if ui is None:
            return "info", _how_to_apply(preview.text(code, conversation), args)
        ui.show(preview.text(code, conversation))
        if args.code is None:
            scope = await ui.choose("Rewind what?", [*SCOPES, "Cancel"])
            if scope not in SCOPES:
                return "info", "Nothing was rewound."
            code, conversation = SCOPES[scope]
    choices = dict(args.choices)
    if code and not args.yes and ui is not None:
        for f in preview.asks:
            if f.path in choices:
                continue
            options = [FILE_CHOICES[c] for c in ("keep", "rebase", "restore") if c in f.choices]
            picked = await ui.choose(f"{f.path} was changed after the session's change: {f.reason}. What should the rewind do?",
                                     options)
            choices[f.path] = next((c for c, label in FILE_CHOICES.items() if label == picked), "keep")
    out = await rewind.apply(preview, choices, changed_since="rebase" if args.rebase else "keep",
                             code=code, conversation=conversation, port=port)
    text = out.summary
    if out.message:
        text += f"\nYour message was: {out.message}"
    return "info", text


def _how_to_apply(shown: str, args: RewindArgs) -> str:
    target = args.target or "last"
    return (shown + "\n\n" if shown else "") + (
        f"To apply it: /rewind {target} --yes (the code and the conversation; add --code-only or "
        "--conversation-only for one of them). Files changed since the session's change are kept "
        "(--rebase undoes the session's changes on top of them).")
