"""codeloop/chat/start with pasted images and @-mention context items, end to end: the real
``codeloop lsp`` over JSON-RPC (pytest-lsp), the scripted model over HTTP recording what it got."""

from __future__ import annotations

import base64

import pytest
from conftest import cli_env
from lsp_harness import start_editor, stop_editor
from pygls.exceptions import JsonRpcInvalidParams
from scripted_model import Script, Text

from codeloop.config import build_settings, takes_images

# a 1x1 transparent PNG
PNG = base64.b64encode(
    bytes.fromhex(
        "89504e470d0a1a0a0000000d4948445200000001000000010806000000"
        "1f15c4890000000d49444154789c6360000002000001e221bc330000000049454e44ae426082"
    )
).decode()


@pytest.fixture
async def editor_at(model_server, tmp_path):
    editors = []

    async def make(settings=None):
        server = model_server(Script([Text("got it")] * 4))
        editor = await start_editor(tmp_path, cli_env(server.base_url), settings=settings)
        editors.append(editor)
        return editor, server

    yield make
    for e in editors:
        await stop_editor(e)


def last_user(server) -> object:
    return [m for m in server.chat_requests[-1].messages if m.get("role") == "user"][-1]["content"]


async def test_images_and_context_items_reach_the_model_as_content_parts(editor_at):
    editor, server = await editor_at({"model": "gpt-4o-mini"})
    started = await editor.chat(
        "what is in the screenshot?",
        attachments=[{"type": "image", "mimeType": "image/png", "data": PNG}],
        contextItems=[{"kind": "file", "label": "greet.py", "text": "GREETING = 'hello'\n"}],
    )
    end = await editor.turn_end(started["turnId"])
    assert end["status"] == "done"
    content = last_user(server)
    assert isinstance(content, list)
    assert content[0] == {"type": "text", "text": "what is in the screenshot?"}
    assert content[1]["type"] == "text"
    assert content[1]["text"].startswith('<context kind="file" label="greet.py">')
    assert "GREETING = 'hello'" in content[1]["text"]
    assert content[2] == {"type": "image_url", "image_url": {"url": f"data:image/png;base64,{PNG}"}}


async def test_a_model_without_images_gets_a_note_and_the_user_a_notice(editor_at):
    editor, server = await editor_at({"model": "scripted-model", "images": "auto"})
    started = await editor.chat("look", attachments=[{"type": "image", "mimeType": "image/png", "data": PNG}])
    await editor.turn_end(started["turnId"])
    content = last_user(server)
    assert [p["type"] for p in content] == ["text", "text"], "no image part"
    assert "not known to take images" in content[1]["text"]
    notices = [e for e in editor.turn_events(started["turnId"]) if e["type"] == "notice"]
    assert any("not sent" in n["message"] and n.get("level") == "warning" for n in notices)


async def test_plain_text_stays_plain_and_bad_params_are_refused_clearly(editor_at):
    editor, server = await editor_at()
    started = await editor.chat("hello")
    await editor.turn_end(started["turnId"])
    assert last_user(server) == "hello"
    before = len(server.chat_requests)
    bad = [
        ({"attachments": {"type": "image"}}, "'attachments': Input should be a valid list"),
        ({"attachments": [{"type": "image", "mimeType": "image/bmp", "data": PNG}]}, "mimeType must be one of"),
        ({"attachments": [{"type": "image", "mimeType": "image/png", "data": "not base64!"}]}, "not valid base64"),
        ({"contextItems": [{"kind": "url", "label": "x", "text": "y"}]}, "kind must be one of"),
        ({"contextItems": [{"kind": "file", "label": 3, "text": "y"}]}, "'contextItems.0.label': Input should be a valid string"),
    ]
    for extra, message in bad:
        with pytest.raises(JsonRpcInvalidParams, match=message):
            await editor.chat("again", **extra)
    assert len(server.chat_requests) == before, "nothing ran for a refused message"


def test_images_setting_auto_follows_known_vision_models():
    def takes(**kw):
        return takes_images(build_settings(kw)[0])

    assert takes(model="gpt-4o-mini") and takes(model="openrouter/anthropic/claude-3.5-sonnet")
    assert takes(model="gpt-4o") and takes(model="llava:13b") and takes(model="openai/gpt-4.1-mini")
    assert not takes(model="gpt-3.5-turbo") and not takes(model="qwen2.5-coder:7b")
    assert takes(model="qwen2.5-coder:7b", images="on")
    assert not takes(model="gpt-4o", images="off")
    settings, problems = build_settings({"images": "sometimes"})
    assert settings.images == "auto" and problems
