"""SQLEnv's own import format: JSON lines ``{id?, db_id, question, gold_sql,
difficulty?, evidence?}``, the simplest way to bring your own questions."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

from ..errors import DataError
from .common import invalid
from .records import Exclusion, SourceQuestion, normalise_difficulty, question_id, text_field

__all__ = ["read"]


def read(
    path: Path, source: str, question_field: str | None = None
) -> Iterator[SourceQuestion | Exclusion]:
    """Questions of a JSON-lines file; ids are the records' ``id`` when given (as text),
    else ``<source>_<line index>``. A line that is not JSON is excluded, not fatal."""
    field = question_field or "question"
    try:
        fh = path.open(encoding="utf-8")
    except OSError as exc:
        raise DataError(f"cannot read {path}: {exc.strerror or exc}") from exc
    with fh:
        index = -1
        for lineno, line in enumerate(fh, 1):
            if not line.strip():
                continue
            index += 1
            qid = question_id(source, index)
            try:
                record = json.loads(line)
            except ValueError as exc:
                yield invalid(
                    qid, source, {}, f"line {lineno} is not JSON: {exc}", field, "gold_sql"
                )
                continue
            try:
                if not isinstance(record, dict):
                    raise ValueError(f"line {lineno} is a {type(record).__name__}, not an object")
                given = record.get("id")
                if given is not None:
                    if (
                        not isinstance(given, str | int)
                        or isinstance(given, bool)
                        or not str(given)
                    ):
                        raise ValueError("field 'id' must be a non-empty string or integer")
                    qid = str(given)
                evidence = record.get("evidence")
                if evidence is not None and not isinstance(evidence, str):
                    raise ValueError("field 'evidence' is not a string")
                yield SourceQuestion(
                    id=qid,
                    source=source,
                    db_id=text_field(record, "db_id"),
                    question=text_field(record, field),
                    gold_sql=text_field(record, "gold_sql"),
                    difficulty=normalise_difficulty(record.get("difficulty")),
                    evidence=evidence.strip() or None if evidence else None,
                )
            except ValueError as exc:
                yield invalid(qid, source, record, str(exc), field, "gold_sql")
