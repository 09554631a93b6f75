"""Checks over the committed data/ directory (built by scripts/build_data.py)."""

from __future__ import annotations

import hashlib
import json
import sqlite3
from collections import Counter
from pathlib import Path
from typing import Any

import pytest
from sqlenv_core.databuild import REASONS
from sqlenv_core.dataset import Question, default_data_dir, discover_splits

DATA_DIR = default_data_dir()
LEVELS = {"easy", "medium", "hard", "extra"}

pytestmark = pytest.mark.skipif(
    not (DATA_DIR / "manifest.json").is_file(),
    reason=f"no built data at {DATA_DIR} (run scripts/build_data.py)",
)


def _read_questions(split: str) -> list[Question]:
    path = DATA_DIR / "questions" / f"{split}.jsonl"
    with path.open(encoding="utf-8") as fh:
        return [Question.model_validate_json(line) for line in fh if line.strip()]


@pytest.fixture(scope="module")
def questions() -> dict[str, list[Question]]:
    return {split: _read_questions(split) for split in discover_splits(DATA_DIR)}


def test_the_bundled_splits_are_train_eval_and_eval_syn() -> None:
    assert discover_splits(DATA_DIR) == ["train", "eval", "eval-syn"]


@pytest.fixture(scope="module")
def manifest() -> dict[str, Any]:
    return json.loads((DATA_DIR / "manifest.json").read_text(encoding="utf-8"))


def test_every_record_validates_and_sits_in_its_split(questions: dict[str, list[Question]]) -> None:
    for split, qs in questions.items():
        assert qs, f"{split} is empty"
        assert {q.split for q in qs} == {split}


def test_ids_are_unique(questions: dict[str, list[Question]]) -> None:
    ids = [q.id for qs in questions.values() for q in qs]
    excluded = [
        json.loads(line)["id"]
        for line in (DATA_DIR / "questions" / "excluded.jsonl")
        .read_text(encoding="utf-8")
        .splitlines()
        if line.strip()
    ]
    duplicates = [i for i, n in Counter(ids + excluded).items() if n > 1]
    assert not duplicates


def test_train_and_eval_share_no_database(questions: dict[str, list[Question]]) -> None:
    train = {q.db_id for q in questions["train"]}
    evaluation = {q.db_id for q in questions["eval"]}
    assert not train & evaluation


def test_eval_syn_paraphrases_eval_on_the_same_databases(
    questions: dict[str, list[Question]],
) -> None:
    """eval-syn is Spider-Syn: dev_syn_<n> pairs with dev_<n>, on the dev databases (stored
    once), with the question reworded and nearly always the same gold."""
    syn = questions["eval-syn"]
    evaluation = {q.id: q for q in questions["eval"]}
    assert len(syn) > 900
    assert {q.db_id for q in syn} <= {q.db_id for q in evaluation.values()}
    pairs = [(q, evaluation.get(q.id.replace("dev_syn_", "dev_"))) for q in syn]
    paired = [(s, e) for s, e in pairs if e is not None]
    assert len(paired) > 900
    assert sum(s.question != e.question for s, e in paired) > 0.7 * len(paired)
    assert all(s.source == "dev_syn" for s in syn)


def test_databases_exist_and_match_manifest(
    questions: dict[str, list[Question]], manifest: dict[str, Any]
) -> None:
    used = {q.db_id for qs in questions.values() for q in qs}
    assert used == set(manifest["databases"])
    on_disk = {p.name for p in (DATA_DIR / "databases").iterdir()}
    assert on_disk == used, "stale or missing database folders"
    for db_id, info in manifest["databases"].items():
        path = DATA_DIR / "databases" / db_id / f"{db_id}.sqlite"
        assert path.is_file(), path
        assert path.stat().st_size == info["size_bytes"], db_id
        assert hashlib.sha256(path.read_bytes()).hexdigest() == info["sha256"], db_id


def test_manifest_counts_match_files(
    questions: dict[str, list[Question]], manifest: dict[str, Any]
) -> None:
    for split, qs in questions.items():
        assert manifest["splits"][split]["questions"] == len(qs)
        assert manifest["splits"][split]["by_difficulty"] == dict(Counter(q.difficulty for q in qs))
        assert manifest["splits"][split]["by_source"] == dict(Counter(q.source for q in qs))
    for db_id, info in manifest["databases"].items():
        users = [split for split, qs in questions.items() if any(q.db_id == db_id for q in qs)]
        assert info["splits"] == users, db_id


def test_no_empty_gold_result(questions: dict[str, list[Question]]) -> None:
    for qs in questions.values():
        for q in qs:
            assert q.gold_rows, q.id
            assert q.gold_columns, q.id
            assert all(len(row) == len(q.gold_columns) for row in q.gold_rows), q.id


def test_every_split_has_all_four_difficulties(questions: dict[str, list[Question]]) -> None:
    for split, qs in questions.items():
        assert {q.difficulty for q in qs} == LEVELS, split


def test_tables_are_spelled_as_in_their_database(questions: dict[str, list[Question]]) -> None:
    spelling: dict[str, set[str]] = {}
    for qs in questions.values():
        for q in qs:
            if q.db_id not in spelling:
                path = DATA_DIR / "databases" / q.db_id / f"{q.db_id}.sqlite"
                conn = sqlite3.connect(f"{path.resolve().as_uri()}?mode=ro", uri=True)
                try:
                    spelling[q.db_id] = {
                        row[0]
                        for row in conn.execute(
                            "SELECT name FROM sqlite_master WHERE type = 'table'"
                        )
                    }
                finally:
                    conn.close()
            assert q.tables, q.id
            assert set(q.tables) <= spelling[q.db_id], q.id


def test_excluded_reasons_are_known() -> None:
    reasons = set(REASONS)
    path = DATA_DIR / "questions" / "excluded.jsonl"
    for line in Path(path).read_text(encoding="utf-8").splitlines():
        record = json.loads(line)
        assert record["reason"] in reasons, record["id"]


def test_the_oracle_solves_every_eval_syn_question() -> None:
    """The robustness split ships solvable: every kept paraphrase has a checkable gold."""
    from sqlenv_core.dataset import load_dataset
    from sqlenv_core.env import SQLEnvironment
    from sqlenv_core.evaluation import evaluate
    from sqlenv_core.policies import OraclePolicy

    ds = load_dataset(DATA_DIR, splits=["eval-syn"])
    with SQLEnvironment(ds) as env:
        report = evaluate(env, OraclePolicy(ds), ds.select(split="eval-syn"))
    assert report.n == len(ds) > 900
    assert report.success_rate == 1.0 and report.errors == 0
    assert set(report.by_split) == {"eval-syn"}
