"""``SQLEnvTool``: SQLEnv as a TRL ``GRPOTrainer(environment_factory=...)`` environment.

TRL needs no import here: it builds one instance per concurrent rollout through a
zero-argument factory, calls ``reset(**row)`` with every column of the dataset row,
turns the public methods ``describe``, ``sample``, ``query`` and ``answer`` into tools
from their type hints and docstrings, and calls ``get_reward()`` once per finished
rollout (trl >= 1.8; weight 1). So::

    from trl import GRPOConfig, GRPOTrainer
    from sqlenv_client.trl import SQLEnvTool, make_train_dataset

    factory = SQLEnvTool.factory(base_url="http://localhost:8000", budget=15)
    trainer = GRPOTrainer(
        model=model,
        args=GRPOConfig(max_tool_calling_iterations=15, ...),  # the same budget
        train_dataset=make_train_dataset(questions),
        environment_factory=factory,
    )

Each instance drives one environment: a ``SQLEnvClient`` session on a server (the
default; ``base_url`` or ``$SQLENV_URL``), a session of an ``EnvPool`` over one URL or
several replicas (``pool=``: an episode whose replica dies is replayed on a live one, so
a rollout never loses its environment; docs/scaling.md), or any object with SQLEnvironment's
``reset`` / ``step`` (``env=`` a zero-argument callable returning one, e.g. an
in-process ``sqlenv_core.env.SQLEnvironment`` the caller builds). ``reset`` is routed
by the row's ``question_id``, never by question text, so the G rollouts of a GRPO group
play the same question. Prompts, tool results and the tool-call format come from
``sqlenv_core.prompting``, shared with the SFT export and the model policies.

After the answer (or when the budget is spent) every tool call is a no-op that says
the episode is over; invalid arguments raise ``ValueError``, which TRL hands back to
the model as ``{"error": ...}`` without using a step.
"""

from __future__ import annotations

import functools
import os
from collections.abc import Callable, Iterable
from typing import TYPE_CHECKING, Any, Protocol

from sqlenv_core.prompting import (
    EPISODE_OVER,
    TOOLS,
    ToolCallError,
    call_to_action,
    question_suffix,
    system_prompt,
    tool_result,
    training_row,
)
from sqlenv_core.schemas import SQLAction, SQLObservation

if TYPE_CHECKING:
    from .pool import EnvPool

__all__ = [
    "DEFAULT_URL",
    "TOOLS",
    "EnvLike",
    "SQLEnvTool",
    "ToolUsePenalty",
    "episode_return",
    "make_train_dataset",
    "system_prompt",
]

DEFAULT_URL = "http://localhost:8000"
URL_ENV = "SQLENV_URL"
BUDGET_ENV = "SQLENV_BUDGET"


class EnvLike(Protocol):
    """What ``SQLEnvTool`` needs of an environment: ``SQLEnvClient`` and ``SQLEnvironment`` fit."""

    def reset(
        self, seed: int | None = None, question_id: str | None = None, **kw: Any
    ) -> SQLObservation: ...

    def step(self, action: SQLAction) -> SQLObservation: ...


class SQLEnvTool:
    """One SQLEnv episode per rollout, with the four actions as TRL tools.

    Args:
        env: a zero-argument callable returning the environment to drive (an
            in-process ``SQLEnvironment``, a fake), or such an object itself. When
            omitted, a ``SQLEnvClient`` session on ``base_url`` is opened.
        base_url: server URL for the default client (default ``$SQLENV_URL`` or
            ``http://localhost:8000``).
        budget: steps per episode, passed to every ``reset``; give the trainer's
            ``max_tool_calling_iterations`` the same number (default ``$SQLENV_BUDGET``,
            else the environment's own, 15).
        client_options: keyword arguments of ``SQLEnvClient``.
        pool: an ``EnvPool``; each instance takes one of its sessions (instead of ``env``
            and ``base_url``). For many concurrent rollouts or several replicas::

                pool = EnvPool(["http://node-a:8000", "http://node-b:8000"])
                factory = SQLEnvTool.factory(pool=pool, budget=15)

    After an episode: ``reward`` (the return: every step's reward summed),
    ``done``, ``answered`` (the episode ended with ANSWER, not by the budget),
    ``correct`` (``True`` when the answer matched), ``steps``, ``tool_calls`` and
    ``invalid_calls``.
    """

    def __init__(
        self,
        env: Callable[[], EnvLike] | EnvLike | None = None,
        *,
        base_url: str | None = None,
        budget: int | None = None,
        client_options: dict[str, Any] | None = None,
        pool: EnvPool | None = None,
    ) -> None:
        if pool is not None:
            if env is not None or base_url is not None or client_options is not None:
                raise ValueError("give pool alone: its sessions have their URLs and options")
            env = pool.session()
        elif env is None:
            from .client import SQLEnvClient

            env = SQLEnvClient(
                base_url or os.environ.get(URL_ENV, DEFAULT_URL), **(client_options or {})
            )
        elif isinstance(env, type) or (callable(env) and not hasattr(env, "step")):
            env = env()  # a factory (or a class): one environment per tool instance
        self._env: EnvLike = env
        if budget is None and os.environ.get(BUDGET_ENV):
            budget = int(os.environ[BUDGET_ENV])
        self._budget = budget
        self._clear()

    @classmethod
    def factory(
        cls, env: Callable[[], EnvLike] | None = None, **options: Any
    ) -> Callable[[], SQLEnvTool]:
        """A zero-argument factory for ``environment_factory`` (a new env per instance)."""
        return functools.partial(cls, env, **options)

    def _clear(self) -> None:
        self.reward = 0.0
        self.done = False
        self.correct: bool | None = None
        self.steps = 0
        self.tool_calls = 0
        self.invalid_calls = 0
        self.answered = False
        self.question_id: str | None = None

    # --- TRL's protocol ---------------------------------------------------------------

    def reset(self, question_id: str | None = None, **row: Any) -> str:
        """Start the episode of the row's ``question_id``; returns the text TRL appends to
        the user message (database, tables, budget): the row's prompt holds the question."""
        if not question_id:
            raise ValueError("SQLEnvTool.reset needs the row's question_id")
        self._clear()
        self.question_id = question_id
        kwargs: dict[str, Any] = {"question_id": question_id}
        if self._budget is not None:
            kwargs["budget"] = self._budget
        obs = self._env.reset(**kwargs)
        return question_suffix(obs.db_id, obs.tables, obs.budget_remaining)

    def get_reward(self) -> float:
        """The episode's return: shaped step rewards plus 1 for a correct answer."""
        return self.reward

    # --- the tools (public methods; TRL reads their signatures and docstrings) ----------

    def describe(self, table: str) -> str:
        """Show the columns of a table: names, types, keys and references.

        Args:
            table: Name of one of the database's tables.
        """
        return self._call("describe", table=table)

    def sample(self, table: str) -> str:
        """Show a few rows of a table.

        Args:
            table: Name of one of the database's tables.
        """
        return self._call("sample", table=table)

    def query(self, sql: str) -> str:
        """Run one read-only SQL SELECT on the database and show its result rows.

        Args:
            sql: A single SQLite SELECT statement.
        """
        return self._call("query", sql=sql)

    def answer(self, value: str) -> str:
        """Submit the final answer to the question; this ends the episode.

        Args:
            value: The answer: a single value such as 42 or Paris, or JSON rows such as [["Paris", 3], ["Rome", 2]].
        """
        return self._call("answer", value=value)

    # --- internals --------------------------------------------------------------------

    def _call(self, name: str, **arguments: Any) -> str:
        self.tool_calls += 1
        if self.question_id is None:
            raise RuntimeError("call reset() first")
        if self.done:
            return EPISODE_OVER
        try:
            action = call_to_action(name, arguments)
        except ToolCallError as exc:
            self.invalid_calls += 1
            raise ValueError(str(exc)) from None
        obs = self._env.step(action)
        self.steps = obs.step_count
        self.reward += obs.reward or 0.0
        if obs.done:
            self.done = True
            self.answered = action.action_type == "ANSWER"
            self.correct = self._correct(obs)
        return tool_result(obs, name)

    def _correct(self, obs: SQLObservation) -> bool:
        if obs.reward_breakdown is not None:
            return obs.reward_breakdown.terminal > 0
        state = getattr(self._env, "state", None)  # a method on the client, a property in-process
        state = state() if callable(state) else state
        return bool(getattr(state, "correct", False))

    def _close(self) -> None:
        """Close the environment (private: every public method would become a tool)."""
        closer = getattr(self._env, "close", None)
        if callable(closer):
            closer()


def episode_return(environments: list[SQLEnvTool], **_: Any) -> list[float]:
    """A reward function giving each rollout its episode's return, for TRL versions
    without ``get_reward`` (< 1.8). With ``get_reward`` TRL adds the return by itself:
    passing this as well would count it twice."""
    return [env.reward for env in environments]


class ToolUsePenalty:
    """A training-only reward function: a small cost for tool calls TRL could not run and
    for rollouts that end without an answer.

    Why: a call with a wrong tool name or argument never reaches the environment, so it
    earns nothing and costs nothing. When a weak policy's sampled rollouts all fail that
    way, every return in the group is 0, GRPO's advantages are 0 and nothing is learnt
    (docs/training.md). This gives such a group something to rank: fewer failed calls
    rank higher, and answering ranks above stopping in prose (the unanswered cost is at
    least a failed call's, so silence is never the cheapest way out). The environment's
    own reward is untouched; evaluations report it alone.

    A failed call is one TRL answered without our tool running to completion: TRL adds
    one ``tool`` message per attempted call to the completion, and the environment
    counts the calls that reached it and the ones it rejected, so failed = tool
    messages - (calls that reached the tool - calls it rejected), and at least the
    calls it rejected (TRL drops the messages of a turn that overflows the completion).

    Args:
        failed_call: cost of each failed call.
        max_failed: failed calls counted at most (bounds the penalty).
        unanswered: cost when the episode did not end with an answer (budget spent
            or the model stopped calling tools).
    """

    def __init__(
        self, failed_call: float = 0.05, max_failed: int = 4, unanswered: float = 0.1
    ) -> None:
        if failed_call < 0 or unanswered < 0 or max_failed < 0:
            raise ValueError("ToolUsePenalty costs and max_failed must be >= 0")
        if unanswered < failed_call:
            raise ValueError("unanswered must cost at least failed_call, or stopping pays")
        self.failed_call = failed_call
        self.max_failed = max_failed
        self.unanswered = unanswered

    def failed_calls(self, completion: Any, env: SQLEnvTool) -> int:
        """Calls of one rollout that TRL could not run (wrong tool name or arguments)."""
        messages = completion if isinstance(completion, list) else []
        attempted = sum(1 for m in messages if isinstance(m, dict) and m.get("role") == "tool")
        ran = env.tool_calls - env.invalid_calls
        return max(attempted - ran, env.invalid_calls)

    def __call__(
        self, completions: list[Any], environments: list[SQLEnvTool], **_: Any
    ) -> list[float]:
        rewards = []
        for completion, env in zip(completions, environments, strict=True):
            failed = min(self.failed_calls(completion, env), self.max_failed)
            cost = self.failed_call * failed + (0.0 if env.answered else self.unanswered)
            rewards.append(-cost)
        return rewards


def make_train_dataset(questions: Iterable[Any]) -> Any:
    """A ``datasets.Dataset`` of GRPO rows (prompt + ``question_id``) for question records.

    ``questions`` are objects with ``id``, ``question``, ``db_id`` and ``difficulty``, such
    as ``sqlenv_core.dataset.load_dataset().select(split="train")``. Needs ``datasets``.
    """
    from datasets import Dataset

    return Dataset.from_list([training_row(q) for q in questions])
