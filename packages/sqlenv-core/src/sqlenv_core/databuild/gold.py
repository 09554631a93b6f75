"""Run each gold query through the engine's own sandbox and keep what an episode can use.

The stored gold result is exactly what an episode compares answers with, because it
comes from the same ``Sandbox`` an episode queries. A question is excluded (with a
reason from ``records.REASONS``) when its database is missing, unsound or empty, its
gold is nondeterministic, fails, runs past the deadline, returns nothing (or only
NULLs) or reaches the sandbox's fetch cap.
"""

from __future__ import annotations

import re
from collections import Counter
from collections.abc import Callable
from pathlib import Path

from ..analysis import answer_shape, order_matters, spider_hardness, tables_involved
from ..config import SandboxConfig
from ..dataset import Question, check_database_file
from ..errors import DataError, QueryTimeoutError, SandboxError
from ..sandbox import QueryOutcome, Sandbox
from .records import DB_ID, Exclusion, SourceQuestion

__all__ = ["GoldRunner", "nondeterminism"]

# SQLite functions whose value changes between runs, and date/time functions of 'now'.
_VOLATILE = re.compile(
    r"\b(random|randomblob|changes|total_changes|last_insert_rowid)\s*\("
    r"|\bcurrent_(date|time|timestamp)\b",
    re.IGNORECASE,
)
_NOW = re.compile(
    r"\b(date|time|datetime|julianday|strftime|unixepoch)\s*\([^)]*'now'", re.IGNORECASE
)
_STRING = re.compile(r"'(?:[^']|'')*'")


def nondeterminism(sql: str) -> str | None:
    """Why ``sql`` gives a different result from run to run, read from its text, or None."""
    if _NOW.search(sql):
        return "it reads the current date or time ('now')"
    match = _VOLATILE.search(_STRING.sub("''", sql))
    if match:
        return f"it calls {match.group(0).rstrip('( ').lower()}, which changes between runs"
    return None


def _same_result(first: QueryOutcome, second: QueryOutcome, ordered: bool) -> bool:
    if first.columns != second.columns:
        return False
    if ordered:
        return first.rows == second.rows
    return Counter(map(tuple, first.rows)) == Counter(map(tuple, second.rows))


class GoldRunner:
    """Runs gold queries for one split, one sandbox per database, kept open for the build.

    Args:
        db_path: where the source database of a ``db_id`` is.
        split: the split the questions go to.
        timeout_s: deadline per gold query.
    """

    def __init__(self, db_path: Callable[[str], Path], split: str, timeout_s: float) -> None:
        self._db_path = db_path
        self._split = split
        self._timeout = timeout_s
        self._config = SandboxConfig(timeout_s=timeout_s)
        self._sandboxes: dict[str, Sandbox] = {}
        self._tables: dict[str, list[str]] = {}
        self._db_problem: dict[str, tuple[str, str]] = {}

    def close(self) -> None:
        for sandbox in self._sandboxes.values():
            sandbox.close()
        self._sandboxes.clear()

    def __enter__(self) -> GoldRunner:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    @property
    def databases(self) -> tuple[str, ...]:
        """The databases opened so far (those with a sound file)."""
        return tuple(self._sandboxes)

    def _open(self, db_id: str) -> tuple[str, str] | None:
        """Open ``db_id``'s sandbox once; the exclusion (reason, detail) of its questions
        when the database cannot serve episodes."""
        if db_id in self._db_problem:
            return self._db_problem[db_id]
        if db_id in self._sandboxes:
            return None
        problem: tuple[str, str] | None = None
        path = self._db_path(db_id)
        if not DB_ID.fullmatch(db_id):
            problem = ("invalid_record", f"db_id {db_id!r} cannot name a database folder")
        elif not path.is_file():
            problem = (
                "missing_database",
                f"{db_id}/{db_id}.sqlite is not in {path.parent.parent.as_posix()}",
            )
        elif (bad := check_database_file(path)) is not None:
            problem = ("bad_database", f"{path} {bad}")
        else:
            try:
                sandbox = Sandbox(path, self._config)
                tables = list(sandbox.table_names)
                empty = not any(sandbox.describe(t).row_count for t in tables)
            except (SandboxError, DataError) as exc:
                problem = ("bad_database", f"{path} cannot be read: {exc}")
            else:
                self._sandboxes[db_id] = sandbox
                self._tables[db_id] = tables
                if empty:
                    # Every table is empty: each answer is 0 or nothing, so an agent that
                    # always answers 0 would be "right". No signal worth training on.
                    problem = ("empty_database", "every table of this database is empty")
        if problem is not None:
            self._db_problem[db_id] = problem
        return problem

    def run(self, q: SourceQuestion) -> Question | Exclusion:
        """The question with its gold result, or why it is excluded."""
        problem = self._open(q.db_id)
        if problem is not None:
            return Exclusion.of(q, *problem)
        why = nondeterminism(q.gold_sql)
        if why is not None:
            return Exclusion.of(q, "nondeterministic", why)
        sandbox = self._sandboxes[q.db_id]
        try:
            outcome = sandbox.execute(q.gold_sql, timeout_s=self._timeout)
            ordered = order_matters(q.gold_sql)
            again = sandbox.execute(q.gold_sql, timeout_s=self._timeout)
        except QueryTimeoutError as exc:
            return Exclusion.of(q, "gold_timeout", str(exc))
        except SandboxError as exc:
            return Exclusion.of(q, "gold_error", str(exc))
        except ValueError as exc:  # sqlglot could not read what SQLite ran
            return Exclusion.of(q, "gold_error", str(exc))
        if outcome.total_is_lower_bound:
            return Exclusion.of(
                q,
                "truncated_result",
                f"more than {len(outcome.rows)} rows; the sandbox stops fetching there",
            )
        if not outcome.rows:
            return Exclusion.of(q, "empty_result", "the gold query returns no rows")
        if all(cell is None for row in outcome.rows for cell in row):
            # e.g. avg() over no matching rows: NULL is no answer anyone could check
            return Exclusion.of(q, "empty_result", "the gold query returns only NULL values")
        if not _same_result(outcome, again, ordered):
            return Exclusion.of(q, "nondeterministic", "two runs of the gold query differ")
        columns = list(outcome.columns)
        rows = [list(row) for row in outcome.rows]
        try:
            difficulty = q.difficulty or spider_hardness(q.gold_sql)
            tables = tables_involved(q.gold_sql, self._tables[q.db_id])
        except ValueError as exc:
            return Exclusion.of(q, "gold_error", str(exc))
        return Question(
            id=q.id,
            split=self._split,
            source=q.source,
            db_id=q.db_id,
            question=q.question,
            gold_sql=q.gold_sql,
            gold_columns=columns,
            gold_rows=rows,
            order_matters=ordered,
            answer_shape=answer_shape(columns, rows),
            tables=tables,
            difficulty=difficulty,
            evidence=q.evidence,
        )
