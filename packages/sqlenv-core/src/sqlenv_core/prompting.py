"""The conversation an LLM agent has with SQLEnv: tools, prompts, tool results, tool calls.

One module for every place that talks to a language model, so they can never drift
apart: the SFT warm-up export (``sqlenv sft-data``), the TRL adapter
(``sqlenv_client.trl``), and the model policies of ``sqlenv eval`` (``hf``, ``openai``).

* ``TOOLS``: the four tools as JSON schemas, exactly as TRL derives them from the
  adapter's typed, documented methods (a test pins the two together).
* ``system_prompt()`` and ``user_message(...)``: the prompt of an episode. The user
  message is the question followed by ``question_suffix(...)`` (database, tables,
  budget); a TRL dataset row carries the question and ``reset`` returns the suffix,
  which TRL appends, so training sees byte for byte what evaluation sends.
* ``tool_result(obs, tool)``: the text a tool call returns to the model, and
  ``agent_observation(obs, tool)``: the observation's fields a program acting for the
  model may see (MCP's ``structuredContent``). Neither holds the reward, its breakdown,
  the verdict of an answer or anything of the gold: the policy under training would
  learn to read them (docs/security.md).
* ``parse_tool_calls(text)`` / ``call_to_action(name, arguments)``: Hermes / Qwen
  ``<tool_call>{"name": ..., "arguments": {...}}</tool_call>`` blocks into actions.
* ``assistant_tool_call(name, arguments)``: one assistant turn in the chat format TRL's
  SFT trainer and chat templates take.

Pure data: it imports nothing but the wire schemas, so the client can use it without
loading the engine.
"""

from __future__ import annotations

import json
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from .schemas import ActionType, SQLAction, SQLObservation

__all__ = [
    "AGENT_FIELDS",
    "ANSWER_SUBMITTED",
    "ARGUMENT_OF_TOOL",
    "EPISODE_OVER",
    "FINAL_MESSAGE",
    "TOOLS",
    "TOOL_NAMES",
    "ParsedCall",
    "ToolCallError",
    "agent_observation",
    "assistant_tool_call",
    "call_to_action",
    "parse_tool_calls",
    "question_suffix",
    "system_prompt",
    "tool_result",
    "training_row",
    "user_message",
]

TOOL_NAMES: tuple[str, ...] = ("describe", "sample", "query", "answer")
ARGUMENT_OF_TOOL: dict[str, str] = {
    "describe": "table",
    "sample": "table",
    "query": "sql",
    "answer": "value",
}
ACTION_OF_TOOL: dict[str, ActionType] = {
    "describe": ActionType.DESCRIBE,
    "sample": ActionType.SAMPLE,
    "query": ActionType.QUERY,
    "answer": ActionType.ANSWER,
}

# Descriptions are the docstrings of the adapter's tool methods (summary line and the
# ``Args:`` entry), which TRL turns into these schemas; ``test_trl.py`` pins them.
_DESCRIPTIONS: dict[str, tuple[str, str]] = {
    "describe": (
        "Show the columns of a table: names, types, keys and references.",
        "Name of one of the database's tables.",
    ),
    "sample": (
        "Show a few rows of a table.",
        "Name of one of the database's tables.",
    ),
    "query": (
        "Run one read-only SQL SELECT on the database and show its result rows.",
        "A single SQLite SELECT statement.",
    ),
    "answer": (
        "Submit the final answer to the question; this ends the episode.",
        'The answer: a single value such as 42 or Paris, or JSON rows such as [["Paris", 3], ["Rome", 2]].',
    ),
}


def _tool_schema(name: str) -> dict[str, Any]:
    summary, argument_help = _DESCRIPTIONS[name]
    argument = ARGUMENT_OF_TOOL[name]
    return {
        "type": "function",
        "function": {
            "name": name,
            "description": summary,
            "parameters": {
                "type": "object",
                "properties": {argument: {"type": "string", "description": argument_help}},
                "required": [argument],
            },
            "return": {"type": "string"},
        },
    }


TOOLS: list[dict[str, Any]] = [_tool_schema(name) for name in TOOL_NAMES]
"""The tools in OpenAI / Hugging Face chat-template format (``apply_chat_template(tools=...)``)."""

EPISODE_OVER = (
    "The episode is over: the answer was submitted or the step budget is spent. Stop calling tools."
)
FINAL_MESSAGE = "Done."
"""The assistant's closing turn after the answer's tool result, in the SFT trajectories."""

_SYSTEM_PROMPT = """You answer questions about a SQLite database whose schema is hidden. Use the tools, one call per turn:
- describe(table): the columns of a table
- sample(table): a few rows of a table
- query(sql): run one read-only SELECT and see the rows
- answer(value): submit the final answer; this ends the episode
Describe the tables you need, query to compute the answer, then answer with the value or rows the query returned: a single value as it is (42, Paris), several values or rows as JSON rows ([["Paris", 3], ["Rome", 2]]). Each tool call uses one step of the budget."""


def system_prompt() -> str:
    """The system message: the tools, the strategy and the answer format."""
    return _SYSTEM_PROMPT


def question_suffix(db_id: str, tables: Sequence[str], budget: int) -> str:
    """What follows the question in the user message; the TRL adapter's ``reset`` returns it."""
    return f"\n\nDatabase: {db_id}\nTables: {', '.join(tables)}\nBudget: {budget} steps"


def user_message(question: str, db_id: str, tables: Sequence[str], budget: int) -> str:
    """The first user message of an episode: the question, the table names, the budget."""
    return question + question_suffix(db_id, tables, budget)


def observation_budget(obs: SQLObservation) -> int:
    """The budget of an episode from its first observation (nothing spent yet)."""
    return obs.budget_remaining + obs.step_count


ANSWER_SUBMITTED = "Answer submitted."
"""What the model reads after its answer: never whether it was right (that is the reward)."""

AGENT_FIELDS: tuple[str, ...] = (
    "question",
    "db_id",
    "tables",
    "schema_info",
    "result",
    "table",
    "error",
    "step_count",
    "budget_remaining",
    "done",
)
"""The observation fields an agent may read. Left out: ``reward`` and
``reward_breakdown`` (the progress layer measures closeness to the gold rows, so reading
it answers the question), ``action_history`` (its ANSWER line holds the verdict) and
``metadata`` (the harness's)."""


def _agent_text(obs: SQLObservation, tool: str) -> str:
    if obs.error:
        return f"Error: {obs.error}"
    if tool == "answer":  # the engine's result says Correct / Incorrect and why
        return ANSWER_SUBMITTED
    return obs.result


def tool_result(obs: SQLObservation, tool: str) -> str:
    """The text the ``tool`` call returns: the result or the error, and the steps left.

    After ``answer`` it says only that the answer was submitted: the verdict is the
    reward, which the harness reads (``SQLObservation.reward``, the episode's state).
    """
    text = _agent_text(obs, tool)
    if obs.done:
        return f"{text}\n(episode over)" if text else "(episode over)"
    left = obs.budget_remaining
    return f"{text}\n({left} step{'' if left == 1 else 's'} left)"


def agent_observation(obs: SQLObservation, tool: str) -> dict[str, Any]:
    """The fields of ``AGENT_FIELDS`` as JSON-ready values, ``result`` as ``tool_result``
    words it (so an ANSWER's verdict is not in it)."""
    data = obs.model_dump(mode="json", include=set(AGENT_FIELDS))
    if tool == "answer" and not obs.error:
        data["result"] = ANSWER_SUBMITTED
    return data


def training_row(question: Any) -> dict[str, Any]:
    """One GRPO dataset row for a question record (anything with ``id``, ``question``,
    ``db_id`` and ``difficulty``): the prompt without the suffix that ``reset`` returns,
    and the ``question_id`` that routes ``reset``. The budget is the adapter's. The
    question's ``agent_text`` (with its evidence, BIRD's external knowledge) is used
    when the record has one, so the prompt reads as the environment's observation."""
    return {
        "prompt": [
            {"role": "system", "content": system_prompt()},
            {"role": "user", "content": getattr(question, "agent_text", question.question)},
        ],
        "question_id": question.id,
        "db_id": question.db_id,
        "difficulty": question.difficulty,
    }


def assistant_tool_call(name: str, arguments: Mapping[str, Any]) -> dict[str, Any]:
    """An assistant message making one tool call, in the chat format of TRL and transformers.

    ``arguments`` stays a dict: chat templates such as Qwen2.5's always JSON-encode it,
    so a JSON string would be encoded twice.
    """
    return {
        "role": "assistant",
        "content": "",
        "tool_calls": [
            {"type": "function", "function": {"name": name, "arguments": dict(arguments)}}
        ],
    }


@dataclass(frozen=True)
class ParsedCall:
    """One tool call read from model output: ``name`` and ``arguments``, or ``error``."""

    name: str
    arguments: dict[str, Any]
    error: str = ""

    @property
    def ok(self) -> bool:
        return not self.error


class ToolCallError(ValueError):
    """A tool call that cannot become an action (unknown tool, missing argument)."""


def call_to_action(name: str, arguments: Mapping[str, Any] | None) -> SQLAction:
    """The action for a tool call; raises ``ToolCallError`` naming what is wrong.

    The argument must be a string, except ``answer``'s, where a number or JSON rows are
    written as JSON text (models often pass them unquoted).
    """
    if name not in ACTION_OF_TOOL:
        raise ToolCallError(f"unknown tool {name!r}; tools are {', '.join(TOOL_NAMES)}")
    key = ARGUMENT_OF_TOOL[name]
    if not isinstance(arguments, Mapping) or key not in arguments or arguments[key] is None:
        raise ToolCallError(f"{name} needs the argument {key!r}")
    value = arguments[key]
    if not isinstance(value, str):
        if name != "answer" or isinstance(value, dict):
            raise ToolCallError(f"{name}: {key!r} must be a string")
        value = json.dumps(value, ensure_ascii=False)
    return SQLAction(action_type=ACTION_OF_TOOL[name], argument=value)


_CALL = re.compile(r"<tool_call>\s*(.*?)\s*(?:</tool_call>|$)", re.DOTALL)


def parse_tool_calls(text: str) -> list[ParsedCall]:
    """Every ``<tool_call>`` block of ``text``, in order; malformed ones carry ``error``.

    A final block without its closing tag (generation cut at a stop token) is read too.
    """
    calls = []
    for match in _CALL.finditer(text):
        body = match.group(1)
        try:
            data = json.loads(body)
        except ValueError:
            calls.append(ParsedCall("", {}, f"not JSON: {body[:80]!r}"))
            continue
        if not isinstance(data, dict) or not isinstance(data.get("name"), str):
            calls.append(ParsedCall("", {}, "a tool call needs a string 'name'"))
            continue
        arguments = data.get("arguments", {})
        if isinstance(arguments, str):  # some models send the arguments as a JSON string
            try:
                arguments = json.loads(arguments)
            except ValueError:
                arguments = None
        if not isinstance(arguments, dict):
            calls.append(ParsedCall(data["name"], {}, "'arguments' must be a JSON object"))
            continue
        calls.append(ParsedCall(data["name"], arguments))
    return calls
