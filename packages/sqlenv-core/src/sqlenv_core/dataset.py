"""Question records and data directories.

A data directory is written by ``sqlenv data build`` (``sqlenv_core.databuild``); the
bundled ``data/`` is one, built from Spider by ``scripts/build_data.py`` and committed.
This module only reads them. Layout::

    questions/<split>.jsonl     one file per split (bundled: train, eval, eval-syn)
    questions/excluded.jsonl    questions left out, each with a ``reason``
    databases/<db_id>/<db_id>.sqlite
    manifest.json               database hashes, counts; its split order is the dir's

A split is any name matching ``SPLIT_NAME``; nothing here knows of train or eval except
that ``train``, when a directory has it, is where unfiltered episodes are drawn from.
"""

from __future__ import annotations

import importlib.util
import json
import os
import re
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from functools import cached_property
from pathlib import Path
from typing import Annotated

from pydantic import BaseModel, ConfigDict, StringConstraints

from .errors import DataError, UnknownQuestionError
from .schemas import AnswerShape, Cell, Difficulty

__all__ = [
    "DATA_DIR_ENV",
    "DEFAULT_SPLIT",
    "EXCLUDED_FILE",
    "SPLIT_NAME",
    "Dataset",
    "Question",
    "check_database_file",
    "check_split_name",
    "default_data_dir",
    "discover_splits",
    "dump_questions",
    "load_dataset",
]

DATA_DIR_ENV = "SQLENV_DATA_DIR"
DEFAULT_SPLIT = "train"
"""Where unfiltered episodes are drawn from when a directory has this split."""
EXCLUDED_FILE = "excluded"
"""``questions/excluded.jsonl`` lists left-out questions; it is no split."""
SPLIT_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.-]{0,63}")
"""A split name: it names a file, so letters, digits, ``_ . -``, at most 64 characters."""

SplitName = Annotated[str, StringConstraints(pattern=rf"^{SPLIT_NAME.pattern}$")]


def check_split_name(name: str) -> str:
    """``name`` if it can name a split, else ``ValueError`` saying what a name may hold."""
    if not SPLIT_NAME.fullmatch(name) or name == EXCLUDED_FILE:
        raise ValueError(
            f"bad split name {name!r}: use letters, digits, '_', '.' and '-' (at most 64,"
            f" starting with a letter or digit), not {EXCLUDED_FILE!r}"
        )
    return name


class Question(BaseModel):
    """One question with its gold result precomputed on its database.

    ``evidence`` is external knowledge that comes with the question (BIRD's
    ``evidence``): the agent sees it with the question (:attr:`agent_text`).
    """

    model_config = ConfigDict(extra="forbid", frozen=True)

    id: str
    split: SplitName
    source: str
    db_id: str
    question: str
    gold_sql: str
    gold_columns: list[str]
    gold_rows: list[list[Cell]]
    order_matters: bool
    answer_shape: AnswerShape
    tables: list[str]
    difficulty: Difficulty
    evidence: str | None = None

    @cached_property
    def agent_text(self) -> str:
        """The question as the agent reads it: with its evidence, when it has one.

        Cached (every observation carries it; pydantic leaves it out of equality and dumps).
        """
        return agent_text(self.question, self.evidence)


def agent_text(question: str, evidence: str | None) -> str:
    """A question followed by its external knowledge (BIRD's evidence), if any."""
    return f"{question}\nEvidence: {evidence}" if evidence else question


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

    @cached_property
    def splits(self) -> tuple[str, ...]:
        """The split names, in the order the directory lists them (its manifest)."""
        return tuple(dict.fromkeys(q.split for q in self.questions))

    @cached_property
    def split_sizes(self) -> dict[str, int]:
        """Questions per split, in split order."""
        sizes = dict.fromkeys(self.splits, 0)
        for q in self.questions:
            sizes[q.split] += 1
        return sizes

    @property
    def default_split(self) -> str | None:
        """``train`` when the directory has it; otherwise None (draw from every question)."""
        return DEFAULT_SPLIT if DEFAULT_SPLIT in self.split_sizes else None

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
    if split is not None and split not in ds.split_sizes:
        hints.append(f"splits are {', '.join(ds.splits)}")
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


def discover_splits(root: Path) -> list[str]:
    """The splits of a data directory: its ``questions/*.jsonl`` but ``excluded``, in the
    manifest's order (the order they were built in), then any others sorted."""
    folder = root / "questions"
    found = sorted(
        p.stem
        for p in folder.glob("*.jsonl")
        if p.stem != EXCLUDED_FILE and SPLIT_NAME.fullmatch(p.stem)
    )
    order: list[str] = []
    try:
        manifest = json.loads((root / "manifest.json").read_text(encoding="utf-8"))
        listed = manifest.get("splits", {}) if isinstance(manifest, dict) else {}
        order = [name for name in listed if name in found]
    except (OSError, ValueError):
        pass  # no or unreadable manifest: sorted order
    return [*order, *(name for name in found if name not in order)]


def load_dataset(
    data_dir: str | os.PathLike[str] | None = None, splits: Iterable[str] | None = None
) -> Dataset:
    """Load the question splits of a data directory (all of them by default) and check
    their databases.

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
    names = discover_splits(root) if splits is None else list(splits)
    if not names:
        raise DataError(
            f"data directory {root} has no questions/<split>.jsonl; build one with"
            " `sqlenv data build`"
        )
    questions: list[Question] = []
    for split in names:
        path = root / "questions" / f"{split}.jsonl"
        if not path.is_file():
            raise DataError(f"missing question file {path}; build it with `sqlenv data build`")
        for q in _read_jsonl(path):
            if q.split != split:
                raise DataError(f"{path}: question {q.id} says split {q.split!r}")
            questions.append(q)
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
    """Write questions as JSON lines (used by the builder and test fixtures).

    ``evidence`` is written only when a question has one, so files without any stay
    as they were before the field existed.
    """
    n = 0
    with path.open("w", encoding="utf-8") as fh:
        for q in questions:
            record = q.model_dump(exclude={"evidence"} if q.evidence is None else None)
            fh.write(json.dumps(record, ensure_ascii=False, separators=(",", ":")) + "\n")
            n += 1
    return n
