"""SQLEnv's own import format: JSON lines ``{id?, db_id, question, gold_sql,
difficulty?, evidence?}``, the simplest way to bring your own questions."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

from ..errors import DataError
from .common import invalid, source_question
from .records import Exclusion, SourceQuestion, question_id

__all__ = ["read"]


def _given_id(record: object) -> str | None:
    """The record's own ``id`` as text, None when it has none; ``ValueError`` if unusable."""
    given = record.get("id") if isinstance(record, dict) else None
    if given is None:
        return None
    if not isinstance(given, str | int) or isinstance(given, bool) or not str(given):
        raise ValueError("field 'id' must be a non-empty string or integer")
    return str(given)


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
                detail = f"line {lineno} is not JSON: {exc}"
                yield invalid(qid, source, {}, detail, field, "gold_sql")
                continue
            try:
                qid = _given_id(record) or qid
                yield source_question(qid, source, record, field, "gold_sql", graded=True)
            except ValueError as exc:
                yield invalid(qid, source, record, f"line {lineno}: {exc}", field, "gold_sql")
