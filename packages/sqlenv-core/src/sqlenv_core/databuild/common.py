"""Helpers the format readers share: loading a JSON list, and a record that is invalid."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from ..errors import DataError
from .records import Exclusion, SourceQuestion, normalise_difficulty, text_field

__all__ = ["invalid", "load_json_list", "source_question"]


def load_json_list(path: Path) -> list[Any]:
    """The JSON array in ``path``; ``DataError`` naming the file when it is not one."""
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as exc:
        raise DataError(f"cannot read {path}: {exc.strerror or exc}") from exc
    except UnicodeDecodeError as exc:
        raise DataError(f"{path} is not UTF-8 text: {exc}") from exc
    try:
        data = json.loads(text)
    except ValueError as exc:
        raise DataError(f"{path} is not JSON: {exc}") from exc
    if not isinstance(data, list):
        raise DataError(f"{path} holds a JSON {type(data).__name__}; expected a list of questions")
    return data


def _text(record: Any, name: str) -> str:
    value = record.get(name) if isinstance(record, dict) else None
    return value if isinstance(value, str) else ""


def invalid(
    qid: str, source: str, record: Any, detail: str, question_field: str, sql_field: str
) -> Exclusion:
    """The exclusion of a record a reader cannot use, keeping what it could read."""
    return Exclusion(
        id=qid,
        source=source,
        db_id=_text(record, "db_id"),
        question=_text(record, question_field),
        gold_sql=_text(record, sql_field),
        reason="invalid_record",
        detail=detail,
    )


def source_question(
    qid: str,
    source: str,
    record: Any,
    question_field: str,
    sql_field: str,
    *,
    graded: bool,
) -> SourceQuestion:
    """The question of one source record; ``ValueError`` naming the field that is wrong.

    ``graded`` formats (bird, jsonl) may carry ``difficulty`` and ``evidence``; Spider's
    has neither, so those fields are ignored there like any unknown field.
    """
    if not isinstance(record, dict):
        raise ValueError(f"entry is a {type(record).__name__}, not an object")
    difficulty = evidence = None
    if graded:
        difficulty = normalise_difficulty(record.get("difficulty"))
        evidence = record.get("evidence")
        if evidence is not None and not isinstance(evidence, str):
            raise ValueError("field 'evidence' is not a string")
    return SourceQuestion(
        id=qid,
        source=source,
        db_id=text_field(record, "db_id"),
        question=text_field(record, question_field),
        gold_sql=text_field(record, sql_field),
        difficulty=difficulty,
        evidence=(evidence or "").strip() or None,
    )
