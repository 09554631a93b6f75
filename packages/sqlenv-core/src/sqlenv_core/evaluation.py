"""``evaluate(env, policy, questions)``: play each question once and summarise.

The report is the same JSON for every policy (oracle, random, or a model), so
numbers from different agents are comparable line by line.
"""

from __future__ import annotations

import random
import time
from collections import defaultdict
from collections.abc import Callable, Iterable, Sequence
from typing import Any

from pydantic import BaseModel

from .dataset import Question
from .env import SQLEnvironment
from .policies import Policy

__all__ = ["EpisodeResult", "EvalReport", "SplitSummary", "evaluate", "sample_questions"]


class EpisodeResult(BaseModel):
    question_id: str
    split: str | None = None
    db_id: str
    difficulty: str
    correct: bool
    total_return: float
    steps: int
    error: str | None = None


class LevelSummary(BaseModel):
    n: int
    success_rate: float
    mean_return: float


class SplitSummary(BaseModel):
    n: int
    success_rate: float
    mean_return: float
    by_difficulty: dict[str, LevelSummary]


class EvalReport(BaseModel):
    policy: str
    n: int
    success_rate: float
    mean_return: float
    mean_steps: float
    errors: int
    seconds: float
    tool_call_parse_rate: float | None = None
    """Share of model turns holding a valid tool call (model policies only)."""
    by_difficulty: dict[str, LevelSummary]
    by_split: dict[str, SplitSummary] = {}
    """The same numbers per split, each with its own ``by_difficulty`` (eval vs eval-syn)."""
    episodes: list[EpisodeResult]

    def summary(self) -> dict[str, Any]:
        """The report without per-episode rows, for printing."""
        return self.model_dump(exclude={"episodes"})


def play_episode(
    env: SQLEnvironment, policy: Policy, question: Question, budget: int | None = None
) -> EpisodeResult:
    """Play one question to the end. An exception from the policy counts as a failure.

    ``env`` may also be a ``SQLEnvClient``: anything with ``reset``, ``step`` and
    ``state``. ``budget`` overrides the environment's step budget.
    """
    obs = env.reset(question_id=question.id, **({"budget": budget} if budget else {}))
    error = None
    try:
        policy.begin(obs, question.id)
        while not obs.done:
            action = policy.act(obs)
            if action is None:  # the agent stopped without answering
                break
            obs = env.step(action)
    except Exception as exc:  # a broken policy must not end the whole evaluation
        error = f"{type(exc).__name__}: {exc}"
    state = env.state
    if callable(state):  # a client's state() is a method, the engine's a property
        state = state()
    return EpisodeResult(
        question_id=question.id,
        split=question.split,
        db_id=question.db_id,
        difficulty=question.difficulty,
        correct=bool(state.correct),
        total_return=state.total_reward,
        steps=state.step_count,
        error=error,
    )


def sample_questions(questions: Sequence[Question], n: int | None, seed: int = 0) -> list[Question]:
    """A fixed random sample of ``n`` questions (all of them, in order, when ``n`` is
    ``None`` or not smaller): the held-out subset ``sqlenv eval --sample N`` plays."""
    if n is None or n >= len(questions):
        return list(questions)
    return random.Random(seed).sample(list(questions), n)


def evaluate(
    env: SQLEnvironment,
    policy: Policy,
    questions: Iterable[Question],
    progress: Callable[[EpisodeResult], None] | None = None,
    budget: int | None = None,
) -> EvalReport:
    """Play every question once with ``policy`` and aggregate the results."""
    start = time.perf_counter()
    results: list[EpisodeResult] = []
    for question in questions:
        result = play_episode(env, policy, question, budget)
        results.append(result)
        if progress is not None:
            progress(result)
    by_split: dict[str, list[EpisodeResult]] = defaultdict(list)
    for r in results:
        by_split[r.split or ""].append(r)
    parse_rate = None
    counts = getattr(policy, "tool_call_counts", None)
    if callable(counts):
        parsed, turns = counts()
        parse_rate = parsed / turns if turns else 0.0
    return EvalReport(
        policy=policy.name,
        n=len(results),
        success_rate=_mean([r.correct for r in results]),
        mean_return=_mean([r.total_return for r in results]),
        mean_steps=_mean([r.steps for r in results]),
        errors=sum(r.error is not None for r in results),
        seconds=time.perf_counter() - start,
        tool_call_parse_rate=parse_rate,
        by_difficulty=_by_difficulty(results),
        by_split={
            split: SplitSummary(
                n=len(rs),
                success_rate=_mean([r.correct for r in rs]),
                mean_return=_mean([r.total_return for r in rs]),
                by_difficulty=_by_difficulty(rs),
            )
            for split, rs in by_split.items()
            if split
        },
        episodes=results,
    )


_LEVEL_ORDER = ["easy", "medium", "hard", "extra"]


def _by_difficulty(results: list[EpisodeResult]) -> dict[str, LevelSummary]:
    by_level: dict[str, list[EpisodeResult]] = defaultdict(list)
    for r in results:
        by_level[r.difficulty].append(r)
    return {
        level: LevelSummary(
            n=len(rs),
            success_rate=_mean([r.correct for r in rs]),
            mean_return=_mean([r.total_return for r in rs]),
        )
        for level in sorted(
            by_level, key=lambda lv: _LEVEL_ORDER.index(lv) if lv in _LEVEL_ORDER else 99
        )
        for rs in [by_level[level]]
    }


def _mean(values: list[Any]) -> float:
    return float(sum(values)) / len(values) if values else 0.0
