"""BIRD's format: a JSON list of ``{question_id, db_id, question, evidence, SQL,
difficulty}`` with ``DIR/<db_id>/<db_id>.sqlite`` (BIRD's dev.json and dev_databases/).

``evidence`` is BIRD's external knowledge; the agent sees it with the question.
BIRD's difficulties ``simple``, ``moderate`` and ``challenging`` become ``easy``,
``medium`` and ``hard``.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

from .common import invalid, load_json_list
from .records import Exclusion, SourceQuestion, normalise_difficulty, question_id, text_field

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
            if not isinstance(record, dict):
                raise ValueError(f"entry is a {type(record).__name__}, not an object")
            evidence = record.get("evidence")
            if evidence is not None and not isinstance(evidence, str):
                raise ValueError("field 'evidence' is not a string")
            yield SourceQuestion(
                id=qid,
                source=source,
                db_id=text_field(record, "db_id"),
                question=text_field(record, field),
                gold_sql=text_field(record, "SQL"),
                difficulty=normalise_difficulty(record.get("difficulty")),
                evidence=evidence.strip() or None if evidence else None,
            )
        except ValueError as exc:
            yield invalid(qid, source, record, str(exc), field, "SQL")
