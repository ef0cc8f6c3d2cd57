"""The todo_write list: validation, rendering, progress lines and the session round trip."""

from __future__ import annotations

import json

import pytest

from codeloop.context.todos import (
    TODO_WRITE_SCHEMA,
    Todo,
    TodoError,
    context_note,
    describe_changes,
    from_session,
    parse_todo_write,
    progress_message,
    progress_percentage,
    render_checklist,
    render_for_model,
    to_session,
    tool_result,
)

ARGS = {"todos": [
    {"content": "Write the parser", "activeForm": "Writing the parser", "status": "completed"},
    {"content": "Run the tests", "activeForm": "Running the tests", "status": "in_progress"},
    {"content": "Update the docs", "activeForm": "Updating the docs", "status": "pending", "id": "3", "priority": "low"},
]}


def test_a_valid_call_and_its_renderings():
    todos = parse_todo_write(ARGS)
    assert todos[1] == Todo("Run the tests", "Running the tests", "in_progress")
    assert render_for_model(todos) == (
        "Todo list (1/3 completed):\n[x] Write the parser\n[>] Run the tests\n[ ] Update the docs")
    assert tool_result(todos).startswith("Todo list updated.\nTodo list (1/3 completed):")
    assert render_checklist(todos) == "☒ Write the parser\n◼ Running the tests\n☐ Update the docs"
    assert render_checklist(todos, unicode=False) == "[x] Write the parser\n[>] Running the tests\n[ ] Update the docs"
    assert progress_message(todos) == "1/3 done · Running the tests"
    assert progress_percentage(todos) == 33
    # The list given as a JSON string, as some models send it.
    assert parse_todo_write({"todos": json.dumps(ARGS["todos"])}) == todos
    assert parse_todo_write(json.dumps(ARGS)) == todos
    assert TODO_WRITE_SCHEMA["properties"]["todos"]["items"]["required"] == ["content", "activeForm", "status"]


def test_empty_and_finished_lists():
    assert parse_todo_write({"todos": []}) == []
    assert render_for_model([]) == "The todo list is empty."
    assert progress_message([]) == "no todos" and progress_percentage([]) is None
    assert context_note([]) is None
    done = [Todo("a", "doing a", "completed")]
    assert progress_message(done) == "1/1 done" and progress_percentage(done) == 100
    waiting = [Todo("a", "doing a", "completed"), Todo("b", "doing b", "pending")]
    assert progress_message(waiting) == "1/2 done · next: b"


def test_every_problem_is_listed_and_nothing_changes():
    bad = {"todos": [
        {"content": "ok", "activeForm": "doing ok", "status": "pending"},
        {"content": "", "activeForm": "x", "status": "pending"},
        {"content": "no form", "status": "pending"},
        {"content": "wrong", "activeForm": "w", "status": "done"},
        "just text",
        {"content": "x" * 600, "activeForm": "x", "status": "pending"},
    ]}
    with pytest.raises(TodoError) as e:
        parse_todo_write(bad)
    msg = str(e.value)
    assert msg.startswith("the todo list was not changed: ")
    assert "todos[1].content must be non-empty text" in msg
    assert "todos[2].activeForm is missing" in msg
    assert "todos[3].status 'done' is not one of pending, in_progress, completed (did you mean 'completed'?)" in msg
    assert "todos[4] must be an object" in msg
    assert "todos[5].content is 600 characters long" in msg
    for args, needle in [({}, 'send {"todos"'), ({"todos": {"a": 1}}, "must be a list"), ("{nope", "not JSON"),
                         ({"todos": [{}] * 101}, "under 100")]:
        with pytest.raises(TodoError, match=needle):
            parse_todo_write(args)


def test_more_than_one_in_progress_is_taken_with_a_note():
    todos = parse_todo_write({"todos": [
        {"content": "a", "activeForm": "doing a", "status": "in_progress"},
        {"content": "b", "activeForm": "doing b", "status": "in_progress"}]})
    assert "2 tasks are in progress" in tool_result(todos)


def test_changes_between_two_calls():
    old = parse_todo_write(ARGS)
    new = parse_todo_write({"todos": [
        {"content": "Write the parser", "activeForm": "Writing the parser", "status": "completed"},
        {"content": "Run the tests", "activeForm": "Running the tests", "status": "completed"},
        {"content": "Release", "activeForm": "Releasing", "status": "in_progress"}]})
    assert describe_changes(old, new) == ["completed: Run the tests", "added: Release", "removed: Update the docs"]


def test_session_round_trip_and_a_damaged_save():
    todos = parse_todo_write(ARGS)
    saved = json.loads(json.dumps({"todos": to_session(todos)}))
    assert saved["todos"][2] == {"content": "Update the docs", "activeForm": "Updating the docs", "status": "pending"}
    back, problems = from_session(saved)
    assert back == todos and problems == []
    back, problems = from_session([saved["todos"][0], {"content": "x"}, 7])
    assert back == todos[:1] and len(problems) == 2 and "saved todo 1 was dropped" in problems[0]
    assert from_session(None) == ([], [])
    assert from_session("junk")[0] == []
    note = context_note(todos)
    assert note.startswith("Your current todo list") and "[>] Run the tests" in note
