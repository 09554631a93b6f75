"""What a format reader yields: questions as their source file states them, or rejections.

Readers only parse and normalise; they never touch a database. Every question that
cannot become an episode ends up as an :class:`Exclusion` with one of ``REASONS``,
written to ``questions/excluded.jsonl`` so a build names what it left out and why.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any, get_args

from ..schemas import Difficulty

__all__ = [
    "DB_ID",
    "LEVELS",
    "REASONS",
    "Exclusion",
    "SourceQuestion",
    "normalise_difficulty",
    "question_id",
]

LEVELS: tuple[str, ...] = get_args(Difficulty)
REASONS: tuple[str, ...] = (
    "invalid_record",
    "duplicate_id",
    "missing_database",
    "bad_database",
    "empty_database",
    "nondeterministic",
    "gold_error",
    "gold_timeout",
    "empty_result",
    "truncated_result",
)
"""Why a question is left out, in the order a build checks them."""

DB_ID = re.compile(r"[A-Za-z0-9_][A-Za-z0-9_.-]{0,127}")
"""A database id names a folder and a file: no separators, no leading dot."""

# BIRD grades questions simple / moderate / challenging; SQLEnv's levels are Spider's.
_ALIASES = {"simple": "easy", "moderate": "medium", "challenging": "hard"}


@dataclass(frozen=True)
class SourceQuestion:
    """One question read from a source file, before its gold query has run."""

    id: str
    source: str
    db_id: str
    question: str
    gold_sql: str
    difficulty: Difficulty | None = None
    evidence: str | None = None


@dataclass(frozen=True)
class Exclusion:
    """A question left out of a split, with a reason from ``REASONS`` and a detail."""

    id: str
    source: str
    db_id: str
    question: str
    gold_sql: str
    reason: str
    detail: str
    evidence: str | None = None

    def record(self, split: str) -> dict[str, Any]:
        """The line of ``questions/excluded.jsonl`` (key order kept stable for diffs)."""
        out: dict[str, Any] = {
            "id": self.id,
            "split": split,
            "source": self.source,
            "db_id": self.db_id,
            "question": self.question,
            "gold_sql": self.gold_sql,
            "reason": self.reason,
            "detail": self.detail,
        }
        if self.evidence:
            out["evidence"] = self.evidence
        return out

    @classmethod
    def of(cls, q: SourceQuestion, reason: str, detail: str) -> Exclusion:
        assert reason in REASONS, reason
        return cls(q.id, q.source, q.db_id, q.question, q.gold_sql, reason, detail, q.evidence)


def normalise_difficulty(value: Any) -> Difficulty | None:
    """A level from ``LEVELS`` (or BIRD's names for three of them), None when absent.

    Raises ``ValueError`` for anything else, so the record is excluded with the value
    named rather than silently graded.
    """
    if value is None or value == "":
        return None
    if isinstance(value, str):
        level = _ALIASES.get(value.strip().lower(), value.strip().lower())
        if level in LEVELS:
            return level  # type: ignore[return-value]
    known = ", ".join([*LEVELS, *_ALIASES])
    raise ValueError(f"unknown difficulty {value!r} (one of {known})")


def question_id(source: str, key: Any) -> str:
    """``<source>_<key>``, integers zero-padded to four digits (``dev_0042``), the ids
    the bundled Spider build has always used."""
    if isinstance(key, int) and not isinstance(key, bool):
        return f"{source}_{key:04d}"
    return f"{source}_{key}"


def text_field(record: dict[str, Any], name: str) -> str:
    """A required non-empty string field of a source record, or ``ValueError`` naming it."""
    value = record.get(name)
    if not isinstance(value, str) or not value.strip():
        raise ValueError(f"field {name!r} is missing or not a non-empty string")
    return value
