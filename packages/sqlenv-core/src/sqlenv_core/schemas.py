"""Wire schemas shared by the engine, the server and the client.

This module imports nothing but pydantic so that ``sqlenv-client`` can depend on it
without pulling in the engine. Field names follow the earlier public SQLEnv
(``SQLAction(action_type, argument)``) and the OpenEnv base models (``done``,
``reward`` and ``metadata`` on observations), so existing agents keep working.
"""

from __future__ import annotations

from enum import StrEnum
from typing import Any, Final, Literal

from pydantic import BaseModel, ConfigDict, Field, SkipValidation, field_validator

__all__ = [
    "PROTOCOL_HEADER",
    "PROTOCOL_VERSION",
    "ActionType",
    "AnswerShape",
    "Cell",
    "Difficulty",
    "EpisodeState",
    "ResultTable",
    "RewardBreakdown",
    "SQLAction",
    "SQLObservation",
]

PROTOCOL_VERSION: Final = 1
"""The SQLEnv wire protocol these schemas define: the frames, actions and observations.
Raised when a change would break a client or a server of the previous version (a field
removed or renamed, a meaning changed); adding an optional field keeps it. The server sends
it in the ``/ws`` handshake and refuses a client that asks for another; the client refuses
a server that sends another (docs/releasing.md)."""
PROTOCOL_HEADER: Final = "X-SQLEnv-Protocol"
"""The HTTP header of the WebSocket handshake that carries ``PROTOCOL_VERSION``, both ways."""

Cell = str | int | float | None
"""A result cell as it travels on the wire. BLOBs are rendered as ``x'hex'`` strings."""

Difficulty = Literal["easy", "medium", "hard", "extra"]
AnswerShape = Literal["scalar", "list", "table"]


class ActionType(StrEnum):
    DESCRIBE = "DESCRIBE"
    SAMPLE = "SAMPLE"
    QUERY = "QUERY"
    ANSWER = "ANSWER"


class SQLAction(BaseModel):
    """One agent move. ``argument`` is a table name, a SQL query or the answer text.

    The action type is accepted in any case (``"describe"``) because language models
    are sloppy about it; anything else is a validation error naming the valid types.
    An empty argument is *not* rejected here: the engine answers it with an error
    observation so a model learns from it instead of crashing its rollout.
    """

    model_config = ConfigDict(extra="forbid", validate_assignment=True)

    action_type: ActionType
    argument: str = ""
    metadata: dict[str, Any] = Field(default_factory=dict)

    @field_validator("action_type", mode="before")
    @classmethod
    def _normalise_type(cls, value: Any) -> Any:
        if isinstance(value, str):
            upper = value.strip().upper()
            if upper not in ActionType.__members__:
                valid = ", ".join(ActionType.__members__)
                raise ValueError(f"unknown action_type {value!r}; expected one of {valid}")
            return upper
        return value


class RewardBreakdown(BaseModel):
    """A step's reward split by layer; ``total`` is their sum.

    Layers: ``operational`` (execution, new information, repeats, step cost),
    ``progress`` (potential-based closeness of the latest result to the gold rows)
    and ``terminal`` (1 for a correct answer). See ``docs/reward.md``.

    Frozen: a breakdown is a value, and ``of`` hands out one shared instance per
    triple (an RL loop sees the same few triples over and over, and building the model
    was a tenth of a warm step's overhead).
    """

    model_config = ConfigDict(extra="forbid", frozen=True)

    operational: float = 0.0
    progress: float = 0.0
    terminal: float = 0.0
    total: float = 0.0

    @classmethod
    def of(
        cls, operational: float = 0.0, progress: float = 0.0, terminal: float = 0.0
    ) -> RewardBreakdown:
        key = (operational, progress, terminal)
        made = _BREAKDOWNS.get(key)
        if made is None or type(made) is not cls:
            made = cls(
                operational=operational,
                progress=progress,
                terminal=terminal,
                total=operational + progress + terminal,
            )
            if len(_BREAKDOWNS) >= _BREAKDOWNS_MAX:
                _BREAKDOWNS.clear()
            _BREAKDOWNS[key] = made
        return made

    def __add__(self, other: RewardBreakdown) -> RewardBreakdown:
        return RewardBreakdown.of(
            self.operational + other.operational,
            self.progress + other.progress,
            self.terminal + other.terminal,
        )


_BREAKDOWNS: dict[tuple[float, float, float], RewardBreakdown] = {}
_BREAKDOWNS_MAX = 4096
"""``RewardBreakdown.of``'s instances by triple; emptied when full (progress rewards are
differences of phi, so a long run sees many distinct triples)."""


class ResultTable(BaseModel):
    """Structured rows of the last DESCRIBE, SAMPLE or QUERY, for programs.

    ``rows`` holds at most the configured number of structured rows; ``total_rows`` is
    how many the statement produced as far as the sandbox counted, and
    ``total_is_lower_bound`` says the count stopped at the fetch cap.
    """

    model_config = ConfigDict(extra="forbid")

    columns: list[str]
    # Not validated cell by cell: rows come from SQLite through the engine, and checking
    # every cell against the Cell union cost more than the query itself on big results.
    rows: SkipValidation[list[list[Cell]]]
    total_rows: int
    total_is_lower_bound: bool = False

    @property
    def truncated(self) -> bool:
        return self.total_is_lower_bound or len(self.rows) < self.total_rows


class SQLObservation(BaseModel):
    """What the agent sees after ``reset`` or ``step``.

    ``result`` and ``error`` are compact text written for a language model;
    ``table`` carries the same rows for programs. ``schema_info`` lists the table
    names and, once described, their columns: the schema is otherwise hidden.
    """

    model_config = ConfigDict(extra="forbid")

    done: bool = False
    reward: float | None = None
    metadata: dict[str, Any] = Field(default_factory=dict)

    question: str = ""
    db_id: str = ""
    tables: list[str] = Field(default_factory=list)
    schema_info: str = ""
    result: str = ""
    table: ResultTable | None = None
    error: str = ""
    step_count: int = 0
    budget_remaining: int = 0
    action_history: list[str] = Field(
        default_factory=list,
        description="the latest actions, oldest first (at most EnvConfig.history_rows, 32 by"
        " default; step_count counts them all)",
    )
    reward_breakdown: RewardBreakdown | None = None


class EpisodeState(BaseModel):
    """Bookkeeping about the current episode, for logging, judges and trainers.

    ``terminated`` means the agent answered and ``truncated`` that the budget ran out
    (Gymnasium's distinction); ``done`` is either. The gold SQL and rows are filled in
    only once the episode is over, so reading the state never leaks the answer.
    """

    model_config = ConfigDict(extra="allow")

    episode_id: str | None = None
    step_count: int = Field(default=0, ge=0)
    question_id: str | None = None
    question: str | None = None
    db_id: str | None = None
    split: str | None = None
    difficulty: str | None = None
    budget: int = 0
    budget_remaining: int = 0
    done: bool = False
    terminated: bool = False
    truncated: bool = False
    total_reward: float = 0.0
    reward_by_layer: RewardBreakdown = Field(default_factory=RewardBreakdown)
    described_tables: list[str] = Field(default_factory=list)
    action_history: list[str] = Field(default_factory=list)
    answer: str | None = None
    correct: bool | None = None
    gold_sql: str | None = None
    gold_columns: list[str] | None = None
    gold_rows: SkipValidation[list[list[Cell]] | None] = None
