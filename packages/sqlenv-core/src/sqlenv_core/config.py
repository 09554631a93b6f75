"""Every tunable of the engine in one declarative object, shared by server and tests."""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict, Field

__all__ = ["DEFAULT_BUDGET", "EnvConfig", "RewardConfig", "SandboxConfig"]

DEFAULT_BUDGET = 15


class SandboxConfig(BaseModel):
    """Limits that keep one query from hurting the process that runs it."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    timeout_s: float = Field(
        default=2.0, gt=0, description="deadline per query, enforced inside SQLite"
    )
    max_fetch_rows: int = Field(
        default=10_000, ge=1, description="rows fetched (and counted) at most"
    )
    max_result_bytes: int = Field(
        default=8_000_000, ge=1024, description="approximate bytes fetched at most"
    )
    max_cell_bytes: int = Field(
        default=8192,
        ge=64,
        description="SQLite string/blob length limit; it also bounds how long one"
        " uninterruptible built-in call (trim, instr, LIKE) can run (docs/reliability.md)",
    )
    max_sql_chars: int = Field(default=100_000, ge=16, description="longest SQL text accepted")
    max_sqlite_heap_bytes: int = Field(
        default=256 << 20,
        ge=8 << 20,
        description="SQLite's memory in the whole process: page caches, sorters and other"
        " temporary storage, which is kept in memory (not in files) so that this bounds it;"
        " a query that needs more fails with a clear error. One limit per process: the"
        " last sandbox opened sets it",
    )
    progress_interval: int = Field(
        default=20_000,
        ge=1,
        description="VM instructions between deadline checks (a Python callback each;"
        " 20,000 is well under a millisecond apart, see docs/reliability.md)",
    )


class RewardConfig(BaseModel):
    """The one table of reward constants; ``docs/reward.md`` explains each.

    The defaults bound all shaping in an episode to at most
    ``new_info_cap + progress_weight`` (0.05 + 0.15 = 0.2), whatever the budget,
    because a successful step's ``exec_ok`` is cancelled by its ``step_cost``.
    """

    model_config = ConfigDict(extra="forbid", frozen=True)

    version: str = "1"
    # operational layer
    exec_ok: float = 0.01
    new_info: float = 0.01
    new_info_cap: float = 0.05
    repeat_penalty: float = 0.03
    step_cost: float = 0.01
    # progress layer: reward = progress_weight * (phi(s') - phi(s))
    progress_weight: float = 0.15
    weight_cardinality: float = 0.25
    weight_value_overlap: float = 0.5
    weight_numeric: float = 0.25
    # terminal layer
    correct: float = 1.0
    wrong: float = 0.0
    budget_exhausted: float = 0.0


class EnvConfig(BaseModel):
    """How an environment plays: budget, what observations show, sandbox and reward."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    budget: int = Field(
        default=DEFAULT_BUDGET, ge=1, description="steps per episode, ANSWER included"
    )
    display_rows: int = Field(default=20, ge=1, description="rows rendered in the text result")
    result_rows: int = Field(default=200, ge=1, description="rows in the structured result table")
    sample_rows: int = Field(default=5, ge=1, description="rows SAMPLE shows")
    history_rows: int = Field(
        default=32,
        ge=1,
        description="latest actions that observations and the state carry in action_history"
        " (a reply's size must not grow with the budget, which may be 10,000 steps)",
    )
    max_cell_chars: int = Field(
        default=200, ge=8, description="characters per cell in the text result"
    )
    sandbox: SandboxConfig = Field(default_factory=SandboxConfig)
    reward: RewardConfig = Field(default_factory=RewardConfig)
