"""The SQLEnv engine served by the ``openenv`` package's stock ``create_app``: the peer.

``benchmarks/bench_server.py`` starts this as a subprocess and compares it with
``sqlenv-server``. It is the port an OpenEnv user would write: an ``openenv``
``Environment`` subclass (``SUPPORTS_CONCURRENT_SESSIONS = True``) whose ``reset`` and
``step`` delegate to ``sqlenv_core.env.SQLEnvironment``; action, observation and state
classes that derive from OpenEnv's ``Action`` / ``Observation`` / ``State`` and mirror
``SQLAction`` / ``SQLObservation`` / ``EpisodeState``; one ``Dataset`` loaded at import
and shared read-only by every session. Each session's engine keeps its own
connections (the engine's default), or, with ``--shared-pool``, borrows them from one
``SandboxPool`` as ``sqlenv-server`` does. OpenEnv runs every ``reset``/``step`` of a
session on that session's own thread (its stock WebSocket path); uvicorn is run with
its defaults (uvloop and httptools when installed, as they are beside sqlenv-server;
``--plain`` runs asyncio and h11, as a bare ``pip install openenv`` would;
permessage-deflate accepted when a client offers it).

Needs the ``openenv`` package (the server's ``compat`` group)::

    uv run --isolated --package sqlenv-server --group compat \\
        python benchmarks/openenv_app.py --port 8001 --data-dir data --max-sessions 300
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import Any

import uvicorn
from openenv.core.env_server import Action, Environment, Observation, State, create_app
from pydantic import Field, SkipValidation, field_validator
from sqlenv_core.config import EnvConfig
from sqlenv_core.dataset import Dataset, load_dataset
from sqlenv_core.env import SQLEnvironment
from sqlenv_core.errors import ResetNeeded
from sqlenv_core.pool import SandboxPool
from sqlenv_core.schemas import ActionType, Cell, ResultTable, RewardBreakdown, SQLAction

__all__ = ["OpenEnvSQLAction", "OpenEnvSQLEnvironment", "OpenEnvSQLObservation", "build_app"]


class OpenEnvSQLAction(Action):
    """``SQLAction`` on OpenEnv's ``Action`` (which brings ``metadata``)."""

    action_type: ActionType
    argument: str = ""

    @field_validator("action_type", mode="before")
    @classmethod
    def _normalise_type(cls, value: Any) -> Any:
        return value.strip().upper() if isinstance(value, str) else value


class OpenEnvSQLObservation(Observation):
    """``SQLObservation`` on OpenEnv's ``Observation`` (``done``, ``reward``, ``metadata``)."""

    question: str = ""
    db_id: str = ""
    tables: list[str] = Field(default_factory=list)
    schema_info: str = ""
    result: str = ""
    table: ResultTable | None = None
    error: str = ""
    step_count: int = 0
    budget_remaining: int = 0
    action_history: list[str] = Field(default_factory=list)
    reward_breakdown: RewardBreakdown | None = None


class OpenEnvSQLState(State):
    """``EpisodeState`` on OpenEnv's ``State`` (``episode_id``, ``step_count``)."""

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


_OBS_FIELDS = tuple(OpenEnvSQLObservation.model_fields)

DATASET: Dataset | None = None
CONFIG = EnvConfig()
POOL: SandboxPool | None = None


class OpenEnvSQLEnvironment(Environment):
    """One session's environment: our engine behind OpenEnv's ``Environment`` interface."""

    SUPPORTS_CONCURRENT_SESSIONS = True

    def __init__(self) -> None:
        super().__init__()
        assert DATASET is not None, "call build_app() first"
        self._env = SQLEnvironment(DATASET, CONFIG, pool=POOL)

    def reset(
        self,
        seed: int | None = None,
        episode_id: str | None = None,
        question_id: str | None = None,
        split: str | None = None,
        db_id: str | None = None,
        difficulty: str | None = None,
        budget: int | None = None,
        **kwargs: Any,
    ) -> OpenEnvSQLObservation:
        obs = self._env.reset(
            seed,
            question_id,
            split=split,
            db_id=db_id,
            difficulty=difficulty,
            episode_id=episode_id,
            budget=budget,
        )
        return _convert(obs)

    def step(
        self, action: OpenEnvSQLAction, timeout_s: float | None = None, **kwargs: Any
    ) -> OpenEnvSQLObservation:
        obs = self._env.step(
            SQLAction.model_construct(action_type=action.action_type, argument=action.argument)
        )
        return _convert(obs)

    @property
    def state(self) -> OpenEnvSQLState:
        try:
            return OpenEnvSQLState.model_validate(self._env.state.model_dump())
        except ResetNeeded:
            return OpenEnvSQLState()

    def close(self) -> None:
        self._env.close()


def _convert(obs: Any) -> OpenEnvSQLObservation:
    # No re-validation: the engine built a valid observation already.
    return OpenEnvSQLObservation.model_construct(**{k: getattr(obs, k) for k in _OBS_FIELDS})


def build_app(data_dir: Path | None, max_sessions: int, *, shared_pool: bool = False) -> Any:
    """OpenEnv's stock app over our engine, up to ``max_sessions`` concurrent sessions."""
    global DATASET, POOL
    DATASET = load_dataset(data_dir)
    if shared_pool:
        POOL = SandboxPool(DATASET.db_path, CONFIG.sandbox, max_idle=64)
    return create_app(
        OpenEnvSQLEnvironment,
        OpenEnvSQLAction,
        OpenEnvSQLObservation,
        env_name="sqlenv",
        max_concurrent_envs=max_sessions,
        state_cls=OpenEnvSQLState,
    )


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=8001)
    parser.add_argument("--data-dir", type=Path, default=None)
    parser.add_argument("--max-sessions", type=int, default=300)
    parser.add_argument("--log-level", default="warning")
    parser.add_argument("--shared-pool", action="store_true", help="one SandboxPool for all")
    parser.add_argument(
        "--plain",
        action="store_true",
        help="asyncio loop and h11, as a bare `pip install openenv` has (it does not bring "
        "uvloop or httptools; by default uvicorn uses them when installed)",
    )
    args = parser.parse_args()
    app = build_app(args.data_dir, args.max_sessions, shared_pool=args.shared_pool)
    kw: dict[str, Any] = {"loop": "asyncio", "http": "h11"} if args.plain else {}
    uvicorn.run(app, host=args.host, port=args.port, log_level=args.log_level, **kw)
    return 0


if __name__ == "__main__":
    sys.exit(main())
