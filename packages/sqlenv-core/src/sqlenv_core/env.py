"""The episode engine: one question, one hidden-schema database, a step budget.

``SQLEnvironment`` follows Gymnasium's contract where it fits the wire protocol:
``reset`` picks a question (reproducibly under a seed), ``step`` applies one action
and returns an observation carrying ``reward`` and ``done``, and ``state`` exposes
bookkeeping. Agent mistakes become observations with ``error`` set; only caller
faults (stepping before ``reset``, unknown filters) raise.
"""

from __future__ import annotations

import random
import re
import threading
import uuid
from collections import deque
from collections.abc import Hashable, Mapping
from dataclasses import dataclass, field
from itertools import chain
from typing import Any, Final, TypeVar

from pydantic import BaseModel, ValidationError

from .checker import CheckResult, check_answer
from .config import EnvConfig
from .dataset import Dataset, Question, load_dataset
from .errors import DataError, QueryTimeoutError, ResetNeeded, SandboxError, StepDeferred
from .memo import ByteBoundedMemo, rows_nbytes, text_nbytes
from .pool import SandboxPool
from .render import render_rows, schema_line
from .reward import RewardTracker
from .sandbox import QueryOutcome, Sandbox, TableSchema
from .schemas import (
    ActionType,
    EpisodeState,
    ResultTable,
    RewardBreakdown,
    SQLAction,
    SQLObservation,
)

__all__ = ["SQLEnvironment"]

_SPACES = re.compile(r"\s+")
_OWN_POOL_IDLE: Final = 32
"""Idle connections an environment without a shared pool keeps (about 0.3 MiB each once
used): enough for the eval split's 19 databases, so walking them does not reopen
connections and lose their statement caches on every pass."""
_EMPTY_ARGUMENT_HELP = {
    ActionType.DESCRIBE: "DESCRIBE needs a table name, e.g. DESCRIBE {table}",
    ActionType.SAMPLE: "SAMPLE needs a table name, e.g. SAMPLE {table}",
    ActionType.QUERY: "QUERY needs a SQL SELECT statement, e.g. QUERY SELECT count(*) FROM {table}",
    ActionType.ANSWER: "ANSWER needs a value: a number, a comma list, JSON rows, or [] for no rows",
}


@dataclass
class _Episode:
    """Everything that changes during one episode; replaced wholesale by ``reset``."""

    question: Question
    tables: tuple[str, ...]
    reward: RewardTracker
    episode_id: str
    budget: int
    step_count: int = 0
    terminated: bool = False
    truncated: bool = False
    # running sums by layer (operational, progress, terminal); a model only when asked
    totals: list[float] = field(default_factory=lambda: [0.0, 0.0, 0.0])
    # table -> its one-line schema for ``schema_info``, rendered once at DESCRIBE
    described: dict[str, str] = field(default_factory=dict)
    schema_info: str = ""  # _schema_info(self), kept up to date at each new DESCRIBE
    # the latest actions, as observations show them; the budget may be 10,000 steps, so
    # only the last ``EnvConfig.history_rows`` are kept (``step_count`` counts them all)
    history: deque[str] = field(default_factory=deque)
    answer: str | None = None
    correct: bool | None = None

    def __post_init__(self) -> None:
        self.schema_info = _schema_info(self)

    @property
    def done(self) -> bool:
        return self.terminated or self.truncated


class SQLEnvironment:
    """A text-to-SQL exploration environment over the bundled Spider databases.

    Args:
        dataset: questions and databases; loaded from ``data_dir`` (or the default
            data directory) when omitted.
        config: budget, rendering, sandbox limits and reward constants.
        seed: seeds the environment's own generator, used by ``reset()`` calls
            that give no seed of their own.
        pool: database connections to borrow from; servers share one among all
            their environments. By default the environment keeps its own.
    """

    def __init__(
        self,
        dataset: Dataset | None = None,
        config: EnvConfig | None = None,
        *,
        data_dir: str | None = None,
        seed: int | None = None,
        pool: SandboxPool | None = None,
    ) -> None:
        self.dataset = dataset if dataset is not None else load_dataset(data_dir)
        self.config = config or EnvConfig()
        self._rng = random.Random(seed)
        self._shared_pool = pool
        self._own_pool: SandboxPool | None = None
        self._episode: _Episode | None = None
        self._leased: Sandbox | None = None  # the sandbox a step holds now (see interrupt)
        self._lease_lock = threading.Lock()
        # With its own pool the environment keeps one sandbox for the whole episode
        # (see ``_sandbox_for``); with a shared pool every step borrows one.
        self._held: tuple[str, Sandbox] | None = None

    # ------------------------------------------------------------------ reset
    def reset(
        self,
        seed: int | None = None,
        question_id: str | None = None,
        *,
        split: str | None = None,
        db_id: str | None = None,
        difficulty: str | None = None,
        episode_id: str | None = None,
        budget: int | None = None,
    ) -> SQLObservation:
        """Start an episode and return the question, the table names and the budget.

        ``question_id`` picks one question; otherwise one is drawn from those matching
        the filters (``split`` defaults to ``"train"`` unless ``db_id`` is given or the
        data has no train split, when every question is a candidate). The
        same ``seed`` and filters always give the same question.
        """
        if question_id is not None:
            question = self.dataset.get(question_id)
        else:
            if split is None and db_id is None:
                split = self.dataset.default_split
            pool = self.dataset.select(split=split, db_id=db_id, difficulty=difficulty)
            rng = random.Random(seed) if seed is not None else self._rng
            question = pool[rng.randrange(len(pool))]
        if budget is not None and budget < 1:
            raise ValueError(f"budget must be at least 1, got {budget}")
        self._give_back()
        self._episode = _Episode(
            question=question,
            tables=self._pool.table_names(question.db_id),
            reward=RewardTracker(self.config.reward, question.gold_rows),
            episode_id=episode_id or uuid.uuid4().hex,
            budget=budget or self.config.budget,
            history=deque(maxlen=self.config.history_rows),
        )
        return self._observe(self._episode, result="", reward=None)

    @property
    def _pool(self) -> SandboxPool:
        if self._shared_pool is not None:
            return self._shared_pool
        if self._own_pool is None:
            self._own_pool = SandboxPool(
                self.dataset.db_path, self.config.sandbox, max_idle=_OWN_POOL_IDLE
            )
        return self._own_pool

    # ------------------------------------------------------------------- step
    def step(
        self,
        action: SQLAction | Mapping[str, Any],
        *,
        inline_budget_s: float | None = None,
        answer_verdict: CheckResult | None = None,
        sql_verdict: tuple[str | None, str] | None = None,
    ) -> SQLObservation:
        """Apply one action. Malformed actions and steps after the end change nothing.

        With ``inline_budget_s``, a QUERY that runs longer than that is interrupted
        and ``StepDeferred`` is raised with the episode untouched; the caller then
        repeats the step without the budget (in a worker thread) to get the result.
        Work the budget cannot interrupt is deferred the same way before it starts: a
        QUERY over ``INLINE_SQL_CHARS`` (sqlglot parses about a microsecond a character,
        uninterruptibly) and an ANSWER over ``INLINE_ANSWER_CHARS`` or against a gold
        result over ``INLINE_GOLD_CELLS`` cells (checking a 940 KB answer took 0.8 s).

        ``answer_verdict`` is ``check_answer(answer text stripped, gold rows, order)`` for
        this ANSWER, computed by the caller elsewhere (a server checks big answers in
        another process, where they cannot hold this one's GIL); it is then used as is.
        ``sql_verdict`` is likewise ``sqlenv_core.sqlcheck.verdict`` of a QUERY's SQL.

        Raises ``DataError``, naming the file, when the episode's database is missing or
        damaged (a corrupt page): that is the environment's fault, so the episode ends
        with no reward instead of an error observation charged to the agent.
        """
        ep = self._episode
        if ep is None:
            raise ResetNeeded("call reset() before step() or state")
        if not isinstance(action, SQLAction):
            try:
                action = SQLAction.model_validate(action)
            except ValidationError as exc:
                return self._rejected(ep, _validation_message(exc))
        if ep.terminated or ep.truncated:
            return self._rejected(ep, "the episode is over; call reset() to start a new one")
        argument = action.argument.strip()
        if not argument:
            table = ep.tables[0] if ep.tables else "<table>"
            return self._rejected(ep, _EMPTY_ARGUMENT_HELP[action.action_type].format(table=table))
        if not argument.isascii() and not _encodable(argument):
            # a lone surrogate (JSON "\ud800"): it could not be run, nor echoed in JSON
            return self._rejected(ep, _NOT_UNICODE)

        kind = action.action_type
        if (
            inline_budget_s is not None
            and answer_verdict is None
            and sql_verdict is None
            and _unbounded_inline(kind, argument, ep.question)
        ):
            raise StepDeferred("this step may take longer than the inline budget; run it again")
        ep.step_count += 1
        if kind is ActionType.ANSWER:
            return self._answer(ep, argument, answer_verdict)
        db_id = ep.question.db_id
        shared = self._shared_pool
        held = self._held
        if held is not None and held[0] == db_id:
            sandbox = held[1]
        elif shared is None:
            sandbox = self._sandbox_for(db_id)
        else:
            sandbox = shared.acquire(db_id)
        try:
            with self._lease_lock:
                self._leased = sandbox
            if kind is ActionType.QUERY:
                return self._query(ep, sandbox, argument, inline_budget_s, sql_verdict)
            return self._explore(ep, sandbox, kind, argument)
        except DataError as exc:
            # The database file is damaged: the environment's fault. The episode ends
            # without a reward (none would be fair to the agent) and the error, naming
            # the file, goes to the caller, which must drop the episode, not score it.
            ep.step_count -= 1
            ep.truncated = True
            ep.history.append(f"{kind.value} -> environment fault")
            raise DataError(f"{exc}; the episode was ended") from None
        finally:
            with self._lease_lock:  # no interrupt() can reach it once it is given back
                self._leased = None
                sandbox.clear_interrupt()  # one that came after the query ended
            if shared is not None:
                shared.release(db_id, sandbox)

    def _sandbox_for(self, db_id: str) -> Sandbox:
        """Lease the episode's sandbox from the environment's own pool (its first step).

        Nobody else borrows from this pool, so the lease (a file check and two locked
        pool updates, about 3.5 us) is paid once per episode rather than per step; later
        steps find it in ``_held``. The file check therefore runs at reset and at the
        first step: a database deleted in the middle of an episode is still read, from
        the file it opened, until the episode ends (a shared pool, as in the server,
        notices it at the next step).
        """
        self._give_back()
        sandbox = self._pool.acquire(db_id)
        self._held = (db_id, sandbox)
        return sandbox

    def _give_back(self) -> None:
        held, self._held = self._held, None
        if held is not None and self._own_pool is not None:
            self._own_pool.release(*held)

    def interrupt(self) -> bool:
        """Stop the query a ``step`` is running now, from any thread; True if there was one.

        For servers whose client has gone: the step then ends within milliseconds with
        an observation saying the query was interrupted (the step is counted), instead
        of running on to its deadline. Between steps it does nothing.
        """
        with self._lease_lock:
            sandbox = self._leased
            if sandbox is None:
                return False
            sandbox.interrupt()
            return True

    def _answer(self, ep: _Episode, text: str, verdict: CheckResult | None) -> SQLObservation:
        q = ep.question
        if verdict is None:
            verdict = check_answer(text, q.gold_rows, q.order_matters)
        ep.answer, ep.correct, ep.terminated = text, verdict.correct, True
        reward = ep.reward.answer(verdict.correct)
        message = "Correct." if verdict.correct else f"Incorrect: {verdict.reason}."
        ep.history.append(
            f"ANSWER {_clip(text)} -> {'correct' if verdict.correct else 'incorrect'}"
        )
        return self._finish_step(ep, reward, result=message)

    def _query(
        self,
        ep: _Episode,
        sandbox: Sandbox,
        sql: str,
        inline_budget_s: float | None,
        verdict: tuple[str | None, str] | None = None,
    ) -> SQLObservation:
        key, said = _query_key(sql)
        deferrable = inline_budget_s is not None and inline_budget_s < self.config.sandbox.timeout_s
        try:
            outcome = sandbox.execute(
                sql, timeout_s=inline_budget_s if deferrable else None, verdict=verdict
            )
        except SandboxError as exc:
            if deferrable and isinstance(exc, QueryTimeoutError):
                ep.step_count -= 1
                raise StepDeferred(
                    f"query needs more than {inline_budget_s} s; run the step again"
                ) from exc
            reward = ep.reward.exploration(key, ok=False)
            ep.history.append(f"QUERY {_clip(key[1])} -> error")
            return self._finish_step(ep, reward, error=str(exc))
        rows = outcome.rows
        if deferrable and _big_result(rows):
            # the query fitted the budget, but the reward's pass over its cells, the
            # rendering and the table would not: run the whole step again off the loop
            ep.step_count -= 1
            raise StepDeferred("the result is too big to process inline; run the step again")
        rows_key = _rows_key(rows)
        columns = tuple(outcome.columns)
        info_key = (columns, rows_key if rows_key is not None else _rows_fingerprint(rows))
        reward = ep.reward.query(key, rows, info_key, rows_key)
        total = outcome.total_rows
        ep.history.append(
            f"{said}{total:,}+ rows" if outcome.total_is_lower_bound else f"{said}{total:,} rows"
        )
        return self._finish_step(ep, reward, outcome=outcome, rows_key=rows_key, columns=columns)

    def _explore(
        self, ep: _Episode, sandbox: Sandbox, kind: ActionType, name: str
    ) -> SQLObservation:
        try:
            table = sandbox.resolve_table(name)
        except SandboxError as exc:
            reward = ep.reward.exploration((kind, name.casefold()), ok=False)
            ep.history.append(f"{kind.value} {_clip(name)} -> error")
            return self._finish_step(ep, reward, error=str(exc))
        key = (kind, table)
        try:
            if kind is ActionType.DESCRIBE:
                schema = sandbox.describe(table)
                if table not in ep.described:
                    ep.described[table] = schema_line(
                        schema.name,
                        [(c.name, c.type, c.primary_key) for c in schema.columns],
                        [(f.column, f.ref_table, f.ref_column) for f in schema.foreign_keys],
                    )
                    ep.schema_info = _schema_info(ep)
                reward = ep.reward.exploration(key, ok=True, info_keys=(key,))
                ep.history.append(f"DESCRIBE {table} -> {len(schema.columns)} columns")
                return self._finish_step(
                    ep, reward, result=_describe_text(schema), table=_describe_table(schema)
                )
            outcome = sandbox.sample(table, self.config.sample_rows)
        except SandboxError as exc:
            reward = ep.reward.exploration(key, ok=False)
            ep.history.append(f"{kind.value} {table} -> error")
            return self._finish_step(ep, reward, error=str(exc))
        reward = ep.reward.exploration(key, ok=True, info_keys=(key,))
        ep.history.append(f"SAMPLE {table} -> {len(outcome.rows)} rows")
        return self._finish_step(ep, reward, outcome=outcome, heading=f"Sample of {table}:")

    def _finish_step(
        self,
        ep: _Episode,
        reward: RewardBreakdown,
        *,
        result: str = "",
        error: str = "",
        outcome: QueryOutcome | None = None,
        table: ResultTable | None = None,
        heading: str = "",
        rows_key: tuple[tuple[Any, ...], ...] | None = None,
        columns: tuple[str, ...] | None = None,
    ) -> SQLObservation:
        if outcome is not None:
            cfg = self.config
            result = _render(outcome, cfg.display_rows, cfg.max_cell_chars, rows_key, columns)
            if heading:
                result = f"{heading}\n{result}"
            rows = outcome.rows
            table = _typed(
                ResultTable,
                _TABLE_FIELDS,
                {
                    "columns": outcome.columns,
                    "rows": rows if len(rows) <= cfg.result_rows else rows[: cfg.result_rows],
                    "total_rows": outcome.total_rows,
                    "total_is_lower_bound": outcome.total_is_lower_bound,
                },
            )
        if not (ep.terminated or ep.truncated) and ep.step_count >= ep.budget:
            ep.truncated = True
            reward = reward + ep.reward.budget_exhausted()
            note = "Budget exhausted: the episode is over without an answer."
            result = f"{result}\n{note}" if result else note
        totals = ep.totals
        totals[0] += reward.operational
        totals[1] += reward.progress
        totals[2] += reward.terminal
        return self._observe(ep, result=result, error=error, table=table, reward=reward)

    def _rejected(self, ep: _Episode, message: str) -> SQLObservation:
        return self._observe(ep, result="", error=message, reward=RewardBreakdown())

    # ------------------------------------------------------------ observation
    def _observe(
        self,
        ep: _Episode,
        *,
        result: str,
        reward: RewardBreakdown | None,
        error: str = "",
        table: ResultTable | None = None,
    ) -> SQLObservation:
        q = ep.question
        return _typed(
            SQLObservation,
            _OBSERVATION_FIELDS,
            {
                "done": ep.terminated or ep.truncated,
                "reward": None if reward is None else reward.total,
                "metadata": {},
                "question": q.agent_text,
                "db_id": q.db_id,
                "tables": list(ep.tables),
                "schema_info": ep.schema_info,
                "result": result,
                "table": table,
                "error": error,
                "step_count": ep.step_count,
                "budget_remaining": ep.budget - ep.step_count,
                "action_history": list(ep.history),
                "reward_breakdown": reward,
            },
        )

    # ------------------------------------------------------------------ state
    @property
    def state(self) -> EpisodeState:
        ep = self._require_episode()
        q = ep.question
        over = ep.done
        by_layer = RewardBreakdown.of(*ep.totals)
        return EpisodeState(
            episode_id=ep.episode_id,
            step_count=ep.step_count,
            question_id=q.id,
            question=q.agent_text,
            db_id=q.db_id,
            split=q.split,
            difficulty=q.difficulty,
            budget=ep.budget,
            budget_remaining=ep.budget - ep.step_count,
            done=over,
            terminated=ep.terminated,
            truncated=ep.truncated,
            total_reward=by_layer.total,
            reward_by_layer=by_layer,
            described_tables=list(ep.described),
            action_history=list(ep.history),
            answer=ep.answer,
            correct=ep.correct,
            gold_sql=q.gold_sql if over else None,
            gold_columns=list(q.gold_columns) if over else None,
            gold_rows=[list(r) for r in q.gold_rows] if over else None,
        )

    @property
    def finished_episode(self) -> tuple[str, str] | None:
        """``(episode_id, question_id)`` of the current episode once it is over, else None.

        Cheap (no state is built): the web page's oracle replay asks it of every session.
        """
        ep = self._episode
        if ep is None or not ep.done:
            return None
        return ep.episode_id, ep.question.id

    @property
    def has_episode(self) -> bool:
        """Whether ``reset`` has started an episode (steps raise ``ResetNeeded`` before)."""
        return self._episode is not None

    @property
    def done(self) -> bool:
        """Whether the current episode is over (False before the first reset)."""
        return self._episode is not None and self._episode.done

    @property
    def question(self) -> Question:
        """The current question record, gold included: for harnesses, never for agents."""
        return self._require_episode().question

    def _require_episode(self) -> _Episode:
        if self._episode is None:
            raise ResetNeeded("call reset() before step() or state")
        return self._episode

    def close(self) -> None:
        """Close the databases this environment opened; it can still ``reset`` afterwards."""
        self._give_back()
        if self._own_pool is not None:
            self._own_pool.close()
            self._own_pool = None
        self._episode = None

    def __enter__(self) -> SQLEnvironment:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


_M = TypeVar("_M", bound=BaseModel)
_OBSERVATION_FIELDS: Final = frozenset(SQLObservation.model_fields) - {"metadata"}
_TABLE_FIELDS: Final = frozenset(ResultTable.model_fields)
_set_attribute = object.__setattr__


def _typed(cls: type[_M], fields_set: frozenset[str], values: dict[str, Any]) -> _M:
    """A model from values the engine has already typed itself, without re-validating.

    Validation is for input from outside; here every value comes from the engine's own
    typed state (SQLite's cells, ints, strings, fresh lists), so pydantic would only
    copy it once more: 3 us of a warm step's 26 us of overhead. ``values`` must name
    every field. The result is the same model that validation builds, which
    ``test_observations_are_what_validation_builds`` checks field by field on every
    kind of step; ``model_construct`` would do this too, but is three times slower
    than validating.
    """
    model = cls.__new__(cls)
    _set_attribute(model, "__dict__", values)
    _set_attribute(model, "__pydantic_fields_set__", set(fields_set))
    _set_attribute(model, "__pydantic_extra__", None)
    _set_attribute(model, "__pydantic_private__", None)
    return model


_NOT_UNICODE = "the argument is not valid Unicode text (it holds a lone surrogate)"


def _encodable(text: str) -> bool:
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        return False
    return True


QUERY_KEY_MEMO_BYTES: Final = 8 << 20
QUERY_KEY_MEMO_ENTRY_BYTES: Final = 16 << 10
_query_keys: ByteBoundedMemo[str, tuple[tuple[ActionType, str], str]] = ByteBoundedMemo(
    QUERY_KEY_MEMO_BYTES, QUERY_KEY_MEMO_ENTRY_BYTES
)


def _query_key(sql: str) -> tuple[tuple[ActionType, str], str]:
    """The repeat key of a QUERY and the start of its history line, once per SQL text.

    The key holds the SQL with runs of whitespace folded and a trailing ``;`` dropped,
    so that reformatting a query does not make it new. Remembered per SQL text within a
    byte budget (SQL may be 100,000 characters long; such texts are not remembered).
    """
    found = _query_keys.get(sql)
    if found is not None:
        return found
    squeezed = _SPACES.sub(" ", sql).strip().rstrip("; ")
    key = (ActionType.QUERY, squeezed), f"QUERY {_clip_squeezed(squeezed)} -> "
    _query_keys.put(sql, key, text_nbytes(sql, squeezed, key[1]) + 200)
    return key


def _clip(text: str, limit: int = 80) -> str:
    if len(text) > limit or "\n" in text:
        text = _SPACES.sub(" ", text).strip()
    return text if len(text) <= limit else text[: limit - 1] + "…"


_MEMO_CELLS: Final = 4096
"""Results up to this many cells get an exact key (a tuple copy, built in C) so that
their reward and rendering are computed once per distinct result; bigger ones cost
more to key than the memo saves in the rare case they repeat."""
RENDER_MEMO_BYTES: Final = 8 << 20
RENDER_MEMO_ENTRY_BYTES: Final = 64 << 10
"""A rendering whose key (the rows on display) and text exceed this is not remembered."""
_render_memo: ByteBoundedMemo[Hashable, str] = ByteBoundedMemo(
    RENDER_MEMO_BYTES, RENDER_MEMO_ENTRY_BYTES
)


def _rows_key(rows: list[list[Any]]) -> tuple[tuple[Any, ...], ...] | None:
    """An exact, hashable copy of a small result (``None`` for a big one)."""
    if rows and len(rows) * len(rows[0]) > _MEMO_CELLS:
        return None
    return tuple(map(tuple, rows))


def _render(
    outcome: QueryOutcome,
    max_rows: int,
    width: int,
    rows_key: tuple[tuple[Any, ...], ...] | None,
    columns: tuple[str, ...] | None = None,
) -> str:
    """``render_rows`` of the outcome, remembered for small results: RL rollouts repeat
    queries, and rendering is a pure function of what it is given."""
    key: Hashable = None
    if rows_key is not None:
        shown = rows_key[:max_rows]  # only the rows on display matter, however long the result
        key = (
            tuple(outcome.columns) if columns is None else columns,
            shown,
            # 3 == 3.0 but they render as "3" and "3.0": with a float about, the types
            # are part of the key (a scan without a float builds no tuple)
            tuple(map(type, chain.from_iterable(shown)))
            if float in map(type, chain.from_iterable(shown))
            else None,
            outcome.total_rows,
            outcome.total_is_lower_bound,
            max_rows,
            width,
        )
        text = _render_memo.get(key)
        if text is not None:
            return text
    text = render_rows(
        outcome.columns,
        outcome.rows,
        total=outcome.total_rows,
        lower_bound=outcome.total_is_lower_bound,
        max_rows=max_rows,
        width=width,
    )
    if key is not None:
        shown = key[1]  # the key's columns, displayed rows and types; then the text
        size = rows_nbytes(shown, len(shown)) + text_nbytes(text, *key[0]) + 400
        _render_memo.put(key, text, size)
    return text


INLINE_SQL_CHARS: Final = 1024
"""Longer SQL is not checked inline (Spider's longest gold query has 577 characters)."""
INLINE_ANSWER_CHARS: Final = 1024
INLINE_GOLD_CELLS: Final = 512


INLINE_RESULT_CELLS: Final = 4096
INLINE_RESULT_BYTES: Final = 256 << 10
"""An inline QUERY whose result holds more cells, or more bytes of text, than these is
run again in a worker: one of 1,000 cells of 7.8 KB came back within the 5-ms budget,
then took the event loop 20-40 ms to score, render and serialise."""
_SMALL_RESULT_CELLS: Final = 32  # 32 cells of at most 8 KiB: never over the byte bound


def _big_result(rows: list[list[Any]]) -> bool:
    cells = len(rows) * len(rows[0]) if rows else 0
    if cells <= _SMALL_RESULT_CELLS:
        return False
    if cells > INLINE_RESULT_CELLS:
        return True
    text = sum(len(c) for c in chain.from_iterable(rows) if type(c) is str)
    return text > INLINE_RESULT_BYTES


def heavy_answer(argument: str, question: Question) -> bool:
    """Whether checking this ANSWER is too much work for the event loop's thread."""
    gold = question.gold_rows
    cells = len(gold) * len(gold[0]) if gold else 0
    return len(argument.strip()) > INLINE_ANSWER_CHARS or cells > INLINE_GOLD_CELLS


def _unbounded_inline(kind: ActionType, argument: str, question: Question) -> bool:
    """Whether a step's work is too big for an inline budget that cannot interrupt it."""
    if kind is ActionType.QUERY:
        return len(argument) > INLINE_SQL_CHARS
    if kind is ActionType.ANSWER:
        return heavy_answer(argument, question)
    return False


def _schema_info(ep: _Episode) -> str:
    """What the agent knows of the schema: every table name, and each described table."""
    return "\n".join([f"Tables: {', '.join(ep.tables)}", *ep.described.values()])


def _clip_squeezed(text: str, limit: int = 80) -> str:
    """``_clip`` of text whose whitespace is folded already (the repeat key)."""
    return text if len(text) <= limit else text[: limit - 1] + "…"


def _rows_fingerprint(rows: list[list[Any]]) -> int:
    return hash(tuple(map(tuple, rows[:1000])))


def _validation_message(exc: ValidationError) -> str:
    parts = []
    for err in exc.errors():
        where = ".".join(str(p) for p in err["loc"]) or "action"
        parts.append(f"{where}: {err['msg']}")
    return "invalid action: " + "; ".join(parts)


def _describe_text(schema: TableSchema) -> str:
    refs = {fk.column: f"{fk.ref_table}.{fk.ref_column}" for fk in schema.foreign_keys}
    lines = [
        f"Table {schema.name} ({schema.row_count:,} row{'' if schema.row_count == 1 else 's'})"
    ]
    for col in schema.columns:
        flags = [col.type or "ANY"]
        if col.primary_key:
            flags.append("primary key")
        if col.not_null:
            flags.append("not null")
        if col.name in refs:
            flags.append(f"references {refs[col.name]}")
        lines.append(f"- {col.name}: {', '.join(flags)}")
    return "\n".join(lines)


def _describe_table(schema: TableSchema) -> ResultTable:
    refs = {fk.column: f"{fk.ref_table}.{fk.ref_column}" for fk in schema.foreign_keys}
    rows: list[list[Any]] = [
        [c.name, c.type, int(c.primary_key), int(c.not_null), refs.get(c.name)]
        for c in schema.columns
    ]
    return ResultTable(
        columns=["column", "type", "primary_key", "not_null", "references"],
        rows=rows,
        total_rows=len(rows),
    )
