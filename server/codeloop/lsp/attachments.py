"""What a chat message brings besides its text: pasted images and @-mentions, checked
before they reach a turn (bad input is ``-32602`` naming the field)."""

from __future__ import annotations

import binascii

from pygls.exceptions import JsonRpcInvalidParams

from codeloop.lsp import wire
from codeloop.runtime.turns import ContextItem, ImageAttachment

IMAGE_TYPES = ("image/png", "image/jpeg", "image/gif", "image/webp")
MAX_IMAGES = 8
MAX_IMAGE_BYTES = 20 * 1024 * 1024  # decoded, per image
CONTEXT_KINDS = ("file", "folder", "problems", "selection", "terminal")
MAX_CONTEXT_ITEMS = 50
MAX_CONTEXT_CHARS = 1_000_000  # all items together


def images(value: list[wire.ImageAttachment] | None) -> list[ImageAttachment]:
    """``attachments: [{"type": "image", "mimeType": "image/png", "data": "<base64>"}]``"""
    if not value:
        return []
    if len(value) > MAX_IMAGES:
        raise JsonRpcInvalidParams(f"at most {MAX_IMAGES} attachments per message, got {len(value)}")
    out = []
    for i, a in enumerate(value):
        if a.type != "image":
            raise JsonRpcInvalidParams(f"attachments[{i}].type must be \"image\", got {a.type!r}")
        if a.mime_type not in IMAGE_TYPES:
            raise JsonRpcInvalidParams(
                f"attachments[{i}].mimeType must be one of {', '.join(IMAGE_TYPES)}, got {a.mime_type!r}"
            )
        if not a.data:
            raise JsonRpcInvalidParams(f"attachments[{i}].data must be a non-empty base64 string")
        if len(a.data) * 3 // 4 > MAX_IMAGE_BYTES:
            raise JsonRpcInvalidParams(f"attachments[{i}] is larger than {MAX_IMAGE_BYTES // (1024 * 1024)} MB")
        try:
            binascii.a2b_base64(a.data.encode("ascii"), strict_mode=True)
        except (ValueError, binascii.Error, UnicodeEncodeError) as e:
            raise JsonRpcInvalidParams(f"attachments[{i}].data is not valid base64: {e}") from e
        out.append(ImageAttachment(a.mime_type, a.data))
    return out


def context_items(value: list[wire.ContextItem] | None) -> list[ContextItem]:
    """``contextItems: [{"kind": "file"|"folder"|"problems"|"selection"|"terminal", "label", "text"}]``"""
    if not value:
        return []
    if len(value) > MAX_CONTEXT_ITEMS:
        raise JsonRpcInvalidParams(f"at most {MAX_CONTEXT_ITEMS} context items per message, got {len(value)}")
    out = []
    for i, c in enumerate(value):
        if c.kind not in CONTEXT_KINDS:
            raise JsonRpcInvalidParams(f"contextItems[{i}].kind must be one of {', '.join(CONTEXT_KINDS)}, got {c.kind!r}")
        out.append(ContextItem(c.kind, c.label.replace('"', "'"), c.text))
    if sum(len(c.text) for c in out) > MAX_CONTEXT_CHARS:
        raise JsonRpcInvalidParams(f"the context items hold more than {MAX_CONTEXT_CHARS:,} characters")
    return out
