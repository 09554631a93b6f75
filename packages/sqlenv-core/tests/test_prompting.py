"""The shared conversation format: tools, prompts, tool results and tool-call parsing."""

from __future__ import annotations

import subprocess
import sys

import pytest
from sqlenv_core.prompting import (
    EPISODE_OVER,
    TOOL_NAMES,
    TOOLS,
    ToolCallError,
    assistant_tool_call,
    call_to_action,
    parse_tool_calls,
    question_suffix,
    system_prompt,
    tool_result,
    training_row,
    user_message,
)
from sqlenv_core.schemas import ActionType, SQLObservation


def test_tools_are_four_single_string_argument_functions():
    assert [t["function"]["name"] for t in TOOLS] == list(TOOL_NAMES)
    for tool in TOOLS:
        params = tool["function"]["parameters"]
        assert tool["type"] == "function" and params["type"] == "object"
        (argument,) = params["properties"]
        assert params["properties"][argument]["type"] == "string"
        assert params["required"] == [argument]


def test_the_system_prompt_states_the_tools_and_the_answer_format():
    text = system_prompt()
    for name in TOOL_NAMES:
        assert f"{name}(" in text
    assert "JSON rows" in text and "one call per turn" in text


def test_user_message_is_the_question_then_the_suffix_reset_returns():
    suffix = question_suffix("zoo", ["animal", "Animal Keeper"], 15)
    assert suffix == "\n\nDatabase: zoo\nTables: animal, Animal Keeper\nBudget: 15 steps"
    assert user_message("How many?", "zoo", ["animal", "Animal Keeper"], 15) == "How many?" + suffix


def test_training_row_routes_by_question_id():
    class Q:
        id, question, db_id, difficulty = "q1", "How many?", "zoo", "easy"

    row = training_row(Q())
    assert row["question_id"] == "q1"
    assert row["prompt"] == [
        {"role": "system", "content": system_prompt()},
        {"role": "user", "content": "How many?"},
    ]


@pytest.mark.parametrize(
    ("obs", "tool", "text"),
    [
        (SQLObservation(result="x\n1\n(1 row)", budget_remaining=3), "query", "x\n1\n(1 row)\n(3 steps left)"),
        (SQLObservation(error="no such table: t", budget_remaining=1), "describe", "Error: no such table: t\n(1 step left)"),
        # the answer's verdict is the reward: the model never reads it
        (SQLObservation(result="Correct.", done=True, reward=1.0), "answer", "Answer submitted.\n(episode over)"),
        (SQLObservation(result="Incorrect: expected 3 rows.", done=True), "answer", "Answer submitted.\n(episode over)"),
        (SQLObservation(error="ANSWER needs a value", budget_remaining=2), "answer", "Error: ANSWER needs a value\n(2 steps left)"),
    ],
)
def test_tool_result_text(obs, tool, text):
    assert tool_result(obs, tool) == text


def test_call_to_action_maps_tools_and_rejects_bad_arguments():
    assert call_to_action("describe", {"table": "t"}).action_type is ActionType.DESCRIBE
    assert call_to_action("query", {"sql": "SELECT 1"}).argument == "SELECT 1"
    assert call_to_action("answer", {"value": 42}).argument == "42"
    assert call_to_action("answer", {"value": [["a", 1]]}).argument == '[["a", 1]]'
    for name, arguments, message in [
        ("drop", {"table": "t"}, "unknown tool 'drop'"),
        ("describe", {}, "needs the argument 'table'"),
        ("describe", {"table": None}, "needs the argument 'table'"),
        ("query", {"sql": 3}, "must be a string"),
        ("describe", None, "needs the argument"),
    ]:
        with pytest.raises(ToolCallError, match=message):
            call_to_action(name, arguments)


def test_parse_tool_calls():
    text = (
        'I will look.\n<tool_call>\n{"name": "describe", "arguments": {"table": "singer"}}\n</tool_call>\n'
        '<tool_call>{"name": "query", "arguments": "{\\"sql\\": \\"SELECT 1\\"}"}</tool_call>'
        "<tool_call>{not json}</tool_call>"
        '<tool_call>{"name": "answer", "arguments": {"value": "6"}}'  # cut at the stop token
    )
    calls = parse_tool_calls(text)
    assert [(c.name, c.arguments, c.ok) for c in calls] == [
        ("describe", {"table": "singer"}, True),
        ("query", {"sql": "SELECT 1"}, True),
        ("", {}, False),
        ("answer", {"value": "6"}, True),
    ]
    assert parse_tool_calls("no tools here") == []
    assert not parse_tool_calls('<tool_call>{"arguments": {}}</tool_call>')[0].ok


def test_assistant_tool_call_keeps_arguments_a_dict():
    message = assistant_tool_call("describe", {"table": "t"})
    assert message["tool_calls"][0]["function"]["arguments"] == {"table": "t"}
    assert EPISODE_OVER.startswith("The episode is over")


def test_prompting_loads_no_engine_module():
    code = (
        "import sys, sqlenv_core.prompting; "
        "print(sorted(m for m in sys.modules if m.startswith(('sqlenv_core', 'sqlglot'))))"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "['sqlenv_core', 'sqlenv_core.prompting', 'sqlenv_core.schemas']"
