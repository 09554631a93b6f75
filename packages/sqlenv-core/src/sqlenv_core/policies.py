"""Baseline policies: the oracle (an upper bound that also checks the data) and random.

A policy sees observations only, plus the ``question_id`` at the start of an
episode; the oracle uses that id to look up the gold SQL it is allowed to know.
"""

from __future__ import annotations

import random
from typing import Protocol, runtime_checkable

from .checker import format_answer
from .dataset import Dataset
from .schemas import ActionType, SQLAction, SQLObservation

__all__ = ["OraclePolicy", "Policy", "RandomPolicy"]


@runtime_checkable
class Policy(Protocol):
    """Anything that can play: ``begin`` once per episode, then ``act`` until done.

    ``act`` may return ``None`` to stop without answering, as a language model does when
    it stops calling tools; the episode then ends unanswered. A policy that reads model
    output may also offer ``tool_call_counts() -> (parsed, turns)``: how many of its
    model turns held a valid tool call, reported as ``tool_call_parse_rate``.
    """

    name: str

    def begin(self, observation: SQLObservation, question_id: str) -> None: ...

    def act(self, observation: SQLObservation) -> SQLAction | None: ...


class OraclePolicy:
    """Describes the tables the gold SQL uses, runs the gold SQL, answers with its rows.

    It answers from the rows the QUERY returned, so a perfect score proves that the
    bundled data, the sandbox and the checker agree. When the structured result was
    cut (more rows than ``EnvConfig.result_rows``) it falls back to the stored gold.
    """

    name = "oracle"

    def __init__(self, dataset: Dataset) -> None:
        self.dataset = dataset
        self._plan: list[SQLAction] = []
        self._question_id = ""

    def begin(self, observation: SQLObservation, question_id: str) -> None:
        q = self.dataset.get(question_id)
        self._question_id = question_id
        room = max(observation.budget_remaining - 2, 0)
        self._plan = [
            SQLAction(action_type=ActionType.DESCRIBE, argument=t) for t in q.tables[:room]
        ]
        self._plan.append(SQLAction(action_type=ActionType.QUERY, argument=q.gold_sql))

    def act(self, observation: SQLObservation) -> SQLAction:
        if self._plan:
            return self._plan.pop(0)
        table = observation.table
        if table is not None and not observation.error and not table.truncated:
            rows = table.rows
        else:
            rows = self.dataset.get(self._question_id).gold_rows
        return SQLAction(action_type=ActionType.ANSWER, argument=format_answer(rows))


class RandomPolicy:
    """Explores at random and answers with a value it has seen: a floor for any agent.

    Seeded per episode from ``seed`` and the question id, so a run is reproducible
    whatever order the questions come in.
    """

    name = "random"

    def __init__(self, seed: int = 0, answer_probability: float = 0.15) -> None:
        self.seed = seed
        self.answer_probability = answer_probability
        self._rng = random.Random(seed)
        self._seen: list[str] = []

    def begin(self, observation: SQLObservation, question_id: str) -> None:
        self._rng = random.Random(f"{self.seed}:{question_id}")
        self._seen = []

    def act(self, observation: SQLObservation) -> SQLAction:
        rng = self._rng
        if observation.table is not None:
            self._seen.extend(
                str(c) for row in observation.table.rows[:20] for c in row if c is not None
            )
        if observation.budget_remaining <= 1 or rng.random() < self.answer_probability:
            guess = rng.choice(self._seen) if self._seen else str(rng.randint(0, 10))
            return SQLAction(action_type=ActionType.ANSWER, argument=guess)
        table = rng.choice(observation.tables)
        kind = rng.choice([ActionType.DESCRIBE, ActionType.SAMPLE, ActionType.QUERY])
        if kind is not ActionType.QUERY:
            return SQLAction(action_type=kind, argument=table)
        sql = rng.choice(
            [
                f'SELECT count(*) FROM "{table}"',
                f'SELECT * FROM "{table}" LIMIT 3',
                f'SELECT * FROM "{table}" LIMIT 1 OFFSET 1',
            ]
        )
        return SQLAction(action_type=ActionType.QUERY, argument=sql)
