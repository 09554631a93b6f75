"""Warm-up data: oracle trajectories as multi-turn tool-calling chats for SFT.

Each trajectory is played on the real engine, so every tool result is the text the
agent will see in training: explore the tables the gold SQL needs, run the gold SQL,
answer with the rows it returned, then close with a short final turn (TRL's rollout
loop ends when the model stops calling tools). Plans vary per question, seeded by the
question id: most tables are described, some sampled instead, a few skipped (a
``count(*)`` over one table needs no columns), sometimes an unrelated table is looked
at first, and the order changes. Every trajectory ends in a correct answer.

The chat format is the one of TRL's SFT trainer and of ``apply_chat_template``
(``{"messages": [...], "tools": [...]}``), built with :mod:`sqlenv_core.prompting`,
the module the TRL adapter and the model policies use too.
"""

from __future__ import annotations

import json
import random
import re
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from .checker import format_answer
from .dataset import Question
from .env import SQLEnvironment
from .prompting import (
    ARGUMENT_OF_TOOL,
    FINAL_MESSAGE,
    TOOLS,
    assistant_tool_call,
    system_prompt,
    tool_result,
    user_message,
)
from .schemas import ActionType, SQLAction

__all__ = ["SFTOptions", "build_trajectory", "iter_trajectories", "write_jsonl"]

_COUNT_ONLY = re.compile(r"^\s*select\s+count\s*\(\s*\*\s*\)\s+from\s+[\w\"`\[\]]+\s*;?\s*$", re.I)
_TOOL_OF = {
    ActionType.DESCRIBE: "describe",
    ActionType.SAMPLE: "sample",
    ActionType.QUERY: "query",
    ActionType.ANSWER: "answer",
}


@dataclass(frozen=True)
class SFTOptions:
    """How trajectories are varied and filtered.

    ``seed`` is mixed with each question id to pick its plan, so a trajectory does not
    depend on which other questions are exported. ``p_sample``: chance a needed table
    is sampled instead of described; ``p_skip``: chance one of several needed tables is
    not looked at; ``p_distractor``: chance an unrelated table is described first;
    ``p_shuffle``: chance the exploration order is shuffled. Questions whose answer
    text is longer than ``max_answer_chars``, or whose chat is longer than
    ``max_chars`` in all, are left out.
    """

    seed: int = 0
    p_sample: float = 0.15
    p_skip: float = 0.1
    p_distractor: float = 0.15
    p_shuffle: float = 0.3
    max_answer_chars: int = 300
    max_chars: int = 6000


def _plan(question: Question, tables: list[str], budget: int, opts: SFTOptions) -> list[SQLAction]:
    rng = random.Random(f"{opts.seed}:{question.id}")
    needed = [t for t in question.tables if t in tables] or list(question.tables)
    count_only = _COUNT_ONLY.match(question.gold_sql) is not None
    steps: list[SQLAction] = []
    for table in needed:
        roll = rng.random()
        if count_only and len(needed) == 1 and roll < 0.7:
            continue  # SELECT count(*) FROM t needs no columns
        if roll < opts.p_skip and len(needed) > 1:
            continue
        kind = ActionType.SAMPLE if rng.random() < opts.p_sample else ActionType.DESCRIBE
        steps.append(SQLAction(action_type=kind, argument=table))
    if rng.random() < opts.p_shuffle:
        rng.shuffle(steps)
    others = [t for t in tables if t not in needed]
    if others and rng.random() < opts.p_distractor:
        steps.insert(0, SQLAction(action_type=ActionType.DESCRIBE, argument=rng.choice(others)))
    room = max(budget - 2, 0)  # leave the query and the answer
    return steps[:room]


def build_trajectory(
    env: SQLEnvironment, question: Question, opts: SFTOptions | None = None
) -> dict[str, Any] | None:
    """Play one question with a varied oracle plan; ``None`` when it is filtered out.

    Returns ``{"messages", "tools", "question_id", "db_id", "difficulty"}``.
    """
    opts = opts or SFTOptions()
    obs = env.reset(question_id=question.id)
    budget = obs.budget_remaining
    messages: list[dict[str, Any]] = [
        {"role": "system", "content": system_prompt()},
        {"role": "user", "content": user_message(obs.question, obs.db_id, obs.tables, budget)},
    ]

    def call(action: SQLAction) -> Any:
        name = _TOOL_OF[action.action_type]
        messages.append(assistant_tool_call(name, {ARGUMENT_OF_TOOL[name]: action.argument}))
        result = env.step(action)
        messages.append({"role": "tool", "name": name, "content": tool_result(result, name)})
        return result

    for action in _plan(question, list(obs.tables), budget, opts):
        if call(action).error:
            return None
    result = call(SQLAction(action_type=ActionType.QUERY, argument=question.gold_sql))
    table = result.table
    if result.error or table is None or table.truncated:
        return None
    answer = format_answer(table.rows)
    if len(answer) > opts.max_answer_chars:
        return None
    call(SQLAction(action_type=ActionType.ANSWER, argument=answer))
    if not env.state.correct:
        return None
    messages.append({"role": "assistant", "content": FINAL_MESSAGE})
    if sum(len(json.dumps(m, ensure_ascii=False)) for m in messages) > opts.max_chars:
        return None
    return {
        "messages": messages,
        "tools": TOOLS,
        "question_id": question.id,
        "db_id": question.db_id,
        "difficulty": question.difficulty,
    }


def iter_trajectories(
    env: SQLEnvironment, questions: Iterable[Question], opts: SFTOptions | None = None
) -> Iterator[dict[str, Any]]:
    """Trajectories for the questions that pass the filters, in order."""
    for question in questions:
        trajectory = build_trajectory(env, question, opts)
        if trajectory is not None:
            yield trajectory


def write_jsonl(trajectories: Iterable[dict[str, Any]], path: str | Path) -> int:
    """Write one JSON object per line; returns how many were written."""
    n = 0
    with Path(path).open("w", encoding="utf-8") as fh:
        for trajectory in trajectories:
            fh.write(json.dumps(trajectory, ensure_ascii=False) + "\n")
            n += 1
    return n
