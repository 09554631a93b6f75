"""Helpers the format readers share: loading a JSON list, and a record that is invalid."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from ..errors import DataError
from .records import Exclusion

__all__ = ["invalid", "load_json_list"]


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
