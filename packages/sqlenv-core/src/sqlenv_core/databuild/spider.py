"""Spider's format: a JSON list of ``{db_id, question, query, ...}`` (dev.json,
train_spider.json; Spider-Syn's files with ``question_field="SpiderSynQuestion"``)."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

from .common import invalid, load_json_list, source_question
from .records import Exclusion, SourceQuestion, question_id

__all__ = ["read"]


def read(
    path: Path, source: str, question_field: str | None = None
) -> Iterator[SourceQuestion | Exclusion]:
    """Questions of a Spider file; ids are ``<source>_<position>`` (``dev_0000``)."""
    field = question_field or "question"
    for index, record in enumerate(load_json_list(path)):
        qid = question_id(source, index)
        try:
            yield source_question(qid, source, record, field, "query", graded=False)
        except ValueError as exc:
            yield invalid(qid, source, record, str(exc), field, "query")
