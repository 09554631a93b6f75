"""Spider's format: a JSON list of ``{db_id, question, query, ...}`` (dev.json,
train_spider.json; Spider-Syn's files with ``question_field="SpiderSynQuestion"``)."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

from .common import invalid, load_json_list
from .records import Exclusion, SourceQuestion, question_id, text_field

__all__ = ["read"]


def read(
    path: Path, source: str, question_field: str | None = None
) -> Iterator[SourceQuestion | Exclusion]:
    """Questions of a Spider file; ids are ``<source>_<position>`` (``dev_0000``)."""
    field = question_field or "question"
    for index, record in enumerate(load_json_list(path)):
        qid = question_id(source, index)
        try:
            if not isinstance(record, dict):
                raise ValueError(f"entry is a {type(record).__name__}, not an object")
            yield SourceQuestion(
                id=qid,
                source=source,
                db_id=text_field(record, "db_id"),
                question=text_field(record, field),
                gold_sql=text_field(record, "query"),
            )
        except ValueError as exc:
            yield invalid(qid, source, record, str(exc), field, "query")
