"""BIRD's format: a JSON list of ``{question_id, db_id, question, evidence, SQL,
difficulty}`` with ``DIR/<db_id>/<db_id>.sqlite`` (BIRD's dev.json and dev_databases/).

``evidence`` is BIRD's external knowledge; the agent sees it with the question.
BIRD's difficulties ``simple``, ``moderate`` and ``challenging`` become ``easy``,
``medium`` and ``hard``.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

from .common import invalid, load_json_list, source_question
from .records import Exclusion, SourceQuestion, question_id

__all__ = ["read"]


def read(
    path: Path, source: str, question_field: str | None = None
) -> Iterator[SourceQuestion | Exclusion]:
    """Questions of a BIRD file; ids are ``<source>_<question_id>`` (``dev_0007``)."""
    field = question_field or "question"
    for index, record in enumerate(load_json_list(path)):
        key = record.get("question_id", index) if isinstance(record, dict) else index
        qid = question_id(source, key if isinstance(key, int | str) else index)
        try:
            yield source_question(qid, source, record, field, "SQL", graded=True)
        except ValueError as exc:
            yield invalid(qid, source, record, str(exc), field, "SQL")
