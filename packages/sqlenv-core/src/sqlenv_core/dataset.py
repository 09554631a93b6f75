"""Question records and the bundled data directory.

``data/`` is built once by ``scripts/build_data.py`` from Spider and committed; this
module only reads it. Layout::

    data/questions/train.jsonl     Spider train questions (default train split)
    data/questions/eval.jsonl      Spider dev questions (default eval split; unseen databases)
    data/questions/excluded.jsonl  questions left out, each with a ``reason``
    data/databases/<db_id>/<db_id>.sqlite
"""

from __future__ import annotations

import importlib.util
import json
import os
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from functools import cached_property
from pathlib import Path
from typing import Literal

from pydantic import BaseModel, ConfigDict

from .errors import DataError, UnknownQuestionError
from .schemas import AnswerShape, Cell, Difficulty

__all__ = [
    "DATA_DIR_ENV",
    "SPLITS",
    "Dataset",
    "Question",
    "check_database_file",
    "default_data_dir",
    "load_dataset",
]

DATA_DIR_ENV = "SQLENV_DATA_DIR"
SPLITS: tuple[str, ...] = ("train", "eval")
Split = Literal["train", "eval"]


class Question(BaseModel):
    """One Spider question with its gold result precomputed on the bundled database."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    id: str
    split: Split
    source: Literal["train_spider", "train_others", "dev"]
    db_id: str
    question: str
    gold_sql: str
    gold_columns: list[str]
    gold_rows: list[list[Cell]]
    order_matters: bool
    answer_shape: AnswerShape
    tables: list[str]
    difficulty: Difficulty


@dataclass
class Dataset:
    """All questions of a data directory, indexed for fast filtered sampling."""

    root: Path
    questions: tuple[Question, ...]
    _by_id: dict[str, Question] = field(init=False, repr=False)

    def __post_init__(self) -> None:
        self._by_id = {q.id: q for q in self.questions}

    def __len__(self) -> int:
        return len(self.questions)

    def __iter__(self) -> Iterator[Question]:
        return iter(self.questions)

    def get(self, question_id: str) -> Question:
        try:
            return self._by_id[question_id]
        except KeyError:
            raise UnknownQuestionError(f"unknown question_id {question_id!r}") from None

    def db_path(self, db_id: str) -> Path:
        return self.root / "databases" / db_id / f"{db_id}.sqlite"

    @cached_property
    def db_ids(self) -> tuple[str, ...]:
        return tuple(sorted({q.db_id for q in self.questions}))

    def select(
        self,
        split: str | None = None,
        db_id: str | None = None,
        difficulty: str | None = None,
    ) -> Sequence[Question]:
        """Questions matching every filter given, in file order (a stable sampling domain)."""
        key = (split, db_id, difficulty)
        cache = self._selection_cache
        if key not in cache:
            found = tuple(
                q
                for q in self.questions
                if (split is None or q.split == split)
                and (db_id is None or q.db_id == db_id)
                and (difficulty is None or q.difficulty == difficulty)
            )
            if not found:
                raise UnknownQuestionError(_no_match_message(self, split, db_id, difficulty))
            cache[key] = found
        return cache[key]

    @cached_property
    def _selection_cache(self) -> dict[tuple[str | None, ...], tuple[Question, ...]]:
        return {}


def _no_match_message(
    ds: Dataset, split: str | None, db_id: str | None, difficulty: str | None
) -> str:
    parts = [
        f"{k}={v!r}"
        for k, v in (("split", split), ("db_id", db_id), ("difficulty", difficulty))
        if v
    ]
    hints = []
    if split is not None and split not in SPLITS:
        hints.append(f"splits are {', '.join(SPLITS)}")
    if difficulty is not None and difficulty not in ("easy", "medium", "hard", "extra"):
        hints.append("difficulties are easy, medium, hard, extra")
    if db_id is not None and db_id not in ds.db_ids:
        hints.append(f"{len(ds.db_ids)} databases are available (e.g. {', '.join(ds.db_ids[:5])})")
    hint = f" ({'; '.join(hints)})" if hints else ""
    return f"no question matches {', '.join(parts) or 'the filters'}{hint}"


def default_data_dir() -> Path:
    """Where the data lives: ``$SQLENV_DATA_DIR``, else a checkout's ``data/``, else the
    installed ``sqlenv-data`` package (``pip install "sqlenv-core[data]"``).

    The checkout is found by walking up from the current directory and then from this
    file, so both ``uv run`` in a checkout and an editable install work; a pip user gets
    the package. With none of them, ``./data``, which :func:`load_dataset` reports as
    missing with what to do.
    """
    env = os.environ.get(DATA_DIR_ENV)
    if env:
        return Path(env)
    for start in (Path.cwd(), Path(__file__).resolve().parent):
        for candidate in (start, *start.parents):
            if (candidate / "data" / "questions").is_dir():
                return candidate / "data"
    if importlib.util.find_spec("sqlenv_data") is not None:
        import sqlenv_data

        return sqlenv_data.data_dir()
    return Path.cwd() / "data"


def _read_jsonl(path: Path) -> Iterable[Question]:
    with path.open(encoding="utf-8") as fh:
        for lineno, line in enumerate(fh, 1):
            if not line.strip():
                continue
            try:
                yield Question.model_validate_json(line)
            except ValueError as exc:
                raise DataError(f"{path}:{lineno}: not a valid question record: {exc}") from exc


_SQLITE_MAGIC = b"SQLite format 3\x00"


def check_database_file(path: Path) -> str | None:
    """What is wrong with the SQLite file at ``path`` at a glance, or None if nothing.

    Reads only the 100-byte header (about 50 us a file, where ``PRAGMA quick_check`` of
    every bundled database takes over 100 ms): the magic string, a valid page size, a
    file size that is a whole number of pages, and, when the header's page count is
    current, that the file holds them all. Damage deeper in the file is reported when
    a connection first reads it (``Sandbox`` raises ``DataError`` naming the file).
    """
    try:
        size = path.stat().st_size
        if size == 0:
            return "is empty"
        with path.open("rb") as fh:
            header = fh.read(100)
    except FileNotFoundError:
        return "is missing"
    except OSError as exc:
        return f"cannot be read ({exc.strerror or exc})"
    if not header.startswith(_SQLITE_MAGIC):
        return "is not an SQLite database (bad header)"
    if len(header) < 100:
        return f"is truncated ({size} bytes)"
    page_size = int.from_bytes(header[16:18], "big")
    page_size = 65536 if page_size == 1 else page_size
    if page_size < 512 or page_size & (page_size - 1):
        return f"has a corrupt header (page size {page_size})"
    if size % page_size:
        return (
            f"is truncated or padded ({size} bytes is not a whole number of {page_size}-byte pages)"
        )
    pages = int.from_bytes(header[28:32], "big")
    if header[24:28] == header[92:96] and pages * page_size > size:
        return f"is truncated ({size} bytes; its header says {pages * page_size})"
    return None


def load_dataset(
    data_dir: str | os.PathLike[str] | None = None, splits: Iterable[str] = SPLITS
) -> Dataset:
    """Load the question splits of a data directory and check their databases.

    Raises ``DataError`` naming the path when the directory, a split file or a
    database is missing, empty or not a sound SQLite file at a glance
    (:func:`check_database_file`), so a misconfigured server stops at startup, not
    mid-episode.
    """
    root = Path(data_dir) if data_dir is not None else default_data_dir()
    if not root.is_dir():
        raise DataError(
            f"data directory {root} does not exist: install the bundled data "
            f'(pip install "sqlenv-core[data]"), or point {DATA_DIR_ENV} at a data directory'
        )
    questions: list[Question] = []
    for split in splits:
        path = root / "questions" / f"{split}.jsonl"
        if not path.is_file():
            raise DataError(f"missing question file {path}; build it with scripts/build_data.py")
        questions.extend(_read_jsonl(path))
    if not questions:
        raise DataError(f"data directory {root} holds no questions")
    ds = Dataset(root=root, questions=tuple(questions))
    for db_id in ds.db_ids:
        db = ds.db_path(db_id)
        problem = check_database_file(db)
        if problem is not None:
            raise DataError(f"database file {db} {problem}")
    return ds


def dump_questions(questions: Iterable[Question], path: Path) -> int:
    """Write questions as JSON lines (used by the build script and test fixtures)."""
    n = 0
    with path.open("w", encoding="utf-8") as fh:
        for q in questions:
            fh.write(json.dumps(q.model_dump(), ensure_ascii=False, separators=(",", ":")) + "\n")
            n += 1
    return n
