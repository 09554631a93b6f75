"""``sqlenv_core.databuild`` and ``sqlenv data build``: every format, every exclusion,
atomicity, idempotence and splits that share a directory. Fixtures are built here."""

from __future__ import annotations

import hashlib
import json
import sqlite3
from pathlib import Path
from typing import Any

import pytest
from sqlenv_core import cli
from sqlenv_core.databuild import BuildSpec, build_split
from sqlenv_core.databuild.gold import nondeterminism
from sqlenv_core.dataset import load_dataset
from sqlenv_core.env import SQLEnvironment
from sqlenv_core.errors import DataError
from sqlenv_core.evaluation import evaluate
from sqlenv_core.policies import OraclePolicy
from sqlenv_core.prompting import training_row

SHOP = """
CREATE TABLE customer (id INTEGER PRIMARY KEY, name TEXT NOT NULL, city TEXT);
CREATE TABLE orders (id INTEGER PRIMARY KEY, customer_id INTEGER, amount REAL);
INSERT INTO customer VALUES (1, 'Ada', 'London'), (2, 'Bob', 'Paris'), (3, 'Cy', NULL);
INSERT INTO orders VALUES (1, 1, 10.5), (2, 1, 4.5), (3, 2, 7.25), (4, 3, 1.0);
"""
ZOO = """
CREATE TABLE animal (id INTEGER PRIMARY KEY, name TEXT, species TEXT);
INSERT INTO animal VALUES (1, 'Leo', 'lion'), (2, 'Zed', 'zebra'), (3, 'Lia', 'lion');
"""
EMPTY = "CREATE TABLE void (id INTEGER PRIMARY KEY);"
# A recursive count that takes seconds: over a 0.3 s deadline.
SLOW = (
    "WITH RECURSIVE c(x) AS (SELECT 1 UNION ALL SELECT x + 1 FROM c WHERE x < 200000000)"
    " SELECT count(*) FROM c"
)

# (db_id, question, gold, expected reason or None when kept)
CASES: list[tuple[str, str, str | None, str | None]] = [
    ("shop", "How many customers are there?", "SELECT count(*) FROM customer", None),
    ("shop", "Customer names alphabetically.", "SELECT name FROM customer ORDER BY name", None),
    ("zoo", "How many lions?", "SELECT count(*) FROM animal WHERE species = 'lion'", None),
    ("shop", "A broken gold.", "SELECT nope FROM customer", "gold_error"),
    (
        "shop",
        "Nobody lives there.",
        "SELECT name FROM customer WHERE city = 'Oslo'",
        "empty_result",
    ),
    (
        "shop",
        "Any customer.",
        "SELECT name FROM customer ORDER BY random() LIMIT 1",
        "nondeterministic",
    ),
    ("shop", "Slow.", SLOW, "gold_timeout"),
    ("ghost", "On a database nobody has.", "SELECT 1", "missing_database"),
    ("hollow", "On an empty database.", "SELECT count(*) FROM void", "empty_database"),
    ("broken", "On a damaged file.", "SELECT 1", "bad_database"),
    ("shop", "No gold at all.", None, "invalid_record"),
]
KEPT = sum(reason is None for *_, reason in CASES)


def make_databases(root: Path) -> Path:
    for db_id, script in (("shop", SHOP), ("zoo", ZOO), ("hollow", EMPTY)):
        path = root / db_id / f"{db_id}.sqlite"
        path.parent.mkdir(parents=True)
        with sqlite3.connect(path) as conn:
            conn.executescript(script)
        conn.close()
    broken = root / "broken" / "broken.sqlite"
    broken.parent.mkdir()
    broken.write_bytes(b"this is not a database" * 10)
    return root


def spider_file(path: Path) -> Path:
    records = []
    for db_id, question, gold, _ in CASES:
        record: dict[str, Any] = {"db_id": db_id, "question": question, "question_toks": []}
        if gold is not None:
            record["query"] = gold
        records.append(record)
    path.write_text(json.dumps(records), encoding="utf-8")
    return path


def bird_file(path: Path) -> Path:
    levels = ["simple", "moderate", "challenging"]
    records = []
    for i, (db_id, question, gold, _) in enumerate(CASES):
        record: dict[str, Any] = {
            "question_id": i,
            "db_id": db_id,
            "question": question,
            "evidence": "a lion is an animal whose species = 'lion'" if db_id == "zoo" else "",
            "difficulty": levels[i % 3],
        }
        if gold is not None:
            record["SQL"] = gold
        records.append(record)
    records.append(
        {"question_id": 99, "db_id": "shop", "question": "Graded oddly.", "evidence": "",
         "SQL": "SELECT 1", "difficulty": "impossible"}
    )  # fmt: skip
    path.write_text(json.dumps(records), encoding="utf-8")
    return path


def jsonl_file(path: Path) -> Path:
    lines = []
    for i, (db_id, question, gold, _) in enumerate(CASES):
        record: dict[str, Any] = {"db_id": db_id, "question": question, "extra": [1, 2]}
        if i % 2 == 0:
            record["id"] = f"mine-{i}"
        if gold is not None:
            record["gold_sql"] = gold
        if i == 1:
            record["difficulty"] = "extra"
        lines.append(json.dumps(record))
    lines.insert(3, "{not json")
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return path


WRITERS = {"spider": spider_file, "bird": bird_file, "jsonl": jsonl_file}


@pytest.fixture
def dbs(tmp_path: Path) -> Path:
    return make_databases(tmp_path / "dbs")


def spec(fmt: str, tmp_path: Path, dbs: Path, split: str = "train", **kw: Any) -> BuildSpec:
    questions = WRITERS[fmt](tmp_path / f"{fmt}_{split}.{'jsonl' if fmt == 'jsonl' else 'json'}")
    return BuildSpec(fmt, (questions,), dbs, tmp_path / "out", split, timeout_s=0.3, **kw)


def files(root: Path) -> dict[str, str]:
    return {
        p.relative_to(root).as_posix(): hashlib.sha256(p.read_bytes()).hexdigest()
        for p in sorted(root.rglob("*"))
        if p.is_file()
    }


def excluded(out: Path) -> list[dict[str, Any]]:
    path = out / "questions" / "excluded.jsonl"
    return [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines()]


@pytest.mark.parametrize("fmt", ["spider", "bird", "jsonl"])
def test_each_format_builds_keeps_the_good_and_names_every_exclusion(
    fmt: str, tmp_path: Path, dbs: Path
) -> None:
    result = build_split(spec(fmt, tmp_path, dbs), progress=False)
    out = tmp_path / "out"
    assert len(result.kept) == KEPT
    expected = {question: reason for _, question, _, reason in CASES if reason}
    got = {rec["question"]: rec["reason"] for rec in excluded(out)}
    for question, reason in expected.items():
        if reason == "invalid_record":
            continue  # its text is kept too, checked below
        assert got[question] == reason, question
    reasons = [rec["reason"] for rec in excluded(out)]
    assert reasons.count("invalid_record") == {"spider": 1, "bird": 2, "jsonl": 2}[fmt]
    for rec in excluded(out):
        assert rec["split"] == "train" and rec["detail"], rec
    # the kept questions carry their gold results, shapes, order and difficulty
    ds = load_dataset(out)
    assert ds.splits == ("train",)
    by_text = {q.question: q for q in ds}
    count = by_text["How many customers are there?"]
    assert count.gold_rows == [[3]] and count.answer_shape == "scalar"
    assert count.tables == ["customer"] and not count.order_matters
    names = by_text["Customer names alphabetically."]
    assert names.order_matters and names.gold_rows == [["Ada"], ["Bob"], ["Cy"]]
    assert names.answer_shape == "list"
    # Spider hardness when the source gives no level; the source's level otherwise
    assert count.difficulty == {"spider": "easy", "bird": "easy", "jsonl": "easy"}[fmt]
    assert names.difficulty == {"spider": "easy", "bird": "medium", "jsonl": "extra"}[fmt]
    manifest = json.loads((out / "manifest.json").read_text())
    assert manifest["splits"]["train"]["questions"] == KEPT
    assert manifest["splits"]["train"]["build"]["format"] == fmt
    for db_id, info in manifest["databases"].items():
        path = out / "databases" / db_id / f"{db_id}.sqlite"
        assert info["sha256"] == hashlib.sha256(path.read_bytes()).hexdigest()
    assert set(manifest["databases"]) == {"shop", "zoo"}  # only databases with kept questions
    assert manifest["excluded"]["missing_databases"] == {
        "ghost": {"splits": ["train"], "questions": 1}
    }


@pytest.mark.parametrize("fmt", ["spider", "bird", "jsonl"])
def test_the_oracle_solves_every_kept_question(fmt: str, tmp_path: Path, dbs: Path) -> None:
    build_split(spec(fmt, tmp_path, dbs), progress=False)
    ds = load_dataset(tmp_path / "out")
    with SQLEnvironment(ds) as env:
        report = evaluate(env, OraclePolicy(ds), list(ds))
    assert report.n == KEPT and report.success_rate == 1.0


def test_ids_follow_the_source(tmp_path: Path, dbs: Path) -> None:
    build_split(spec("spider", tmp_path, dbs), progress=False)
    ids = [q.id for q in load_dataset(tmp_path / "out")]
    assert ids == ["spider_train_0000", "spider_train_0001", "spider_train_0002"]
    build_split(spec("jsonl", tmp_path, dbs, split="mine", source="own"), progress=False)
    mine = [q.id for q in load_dataset(tmp_path / "out").select(split="mine")]
    assert mine == ["mine-0", "own_0001", "mine-2"]  # given ids kept, others numbered
    build_split(spec("bird", tmp_path, dbs, split="bird", source="bird_dev"), progress=False)
    bird = [q.id for q in load_dataset(tmp_path / "out").select(split="bird")]
    assert bird == ["bird_dev_0000", "bird_dev_0001", "bird_dev_0002"]


def test_bird_evidence_reaches_the_agent_with_the_question(tmp_path: Path, dbs: Path) -> None:
    build_split(spec("bird", tmp_path, dbs), progress=False)
    ds = load_dataset(tmp_path / "out")
    lions = next(q for q in ds if q.db_id == "zoo")
    assert lions.evidence == "a lion is an animal whose species = 'lion'"
    assert lions.difficulty == "hard"  # BIRD's "challenging"
    with SQLEnvironment(ds) as env:
        obs = env.reset(question_id=lions.id)
        assert obs.question == f"How many lions?\nEvidence: {lions.evidence}"
        assert env.state.question == obs.question
    # the GRPO prompt (and so the TRL adapter's rows) shows it the same way
    assert training_row(lions)["prompt"][1]["content"] == obs.question
    # an empty evidence is no evidence
    count = next(q for q in ds if q.question == "How many customers are there?")
    assert count.evidence is None and count.agent_text == count.question
    line = (tmp_path / "out" / "questions" / "train.jsonl").read_text().splitlines()[0]
    assert "evidence" not in json.loads(line)


def test_rebuilding_gives_byte_identical_files(tmp_path: Path, dbs: Path) -> None:
    s = spec("spider", tmp_path, dbs)
    build_split(s, progress=False)
    first = files(tmp_path / "out")
    build_split(s, progress=False)
    assert files(tmp_path / "out") == first
    assert sorted(p.name for p in tmp_path.iterdir()) == sorted(
        ["dbs", "out", "spider_train.json"]
    ), "no staging folder left behind"


def test_splits_accumulate_in_one_directory_and_share_databases(tmp_path: Path, dbs: Path) -> None:
    out = tmp_path / "out"
    build_split(spec("spider", tmp_path, dbs, split="train", source="sp"), progress=False)
    build_split(spec("jsonl", tmp_path, dbs, split="eval", source="js"), progress=False)
    build_split(spec("bird", tmp_path, dbs, split="eval-hard", source="bd"), progress=False)
    ds = load_dataset(out)
    assert ds.split_sizes == {"train": KEPT, "eval": KEPT, "eval-hard": KEPT}
    # one copy of each database, whatever the number of splits using it
    assert sorted(p.name for p in (out / "databases").iterdir()) == ["shop", "zoo"]
    manifest = json.loads((out / "manifest.json").read_text())
    assert manifest["databases"]["shop"]["splits"] == ["train", "eval", "eval-hard"]
    assert manifest["databases"]["shop"]["questions"] == 6
    assert list(manifest["splits"]) == ["train", "eval", "eval-hard"]
    assert {r["split"] for r in excluded(out)} == {"train", "eval", "eval-hard"}
    # rebuilding one split replaces it and keeps the others (and their order)
    before = files(out)
    build_split(spec("jsonl", tmp_path, dbs, split="eval", source="js"), progress=False)
    assert files(out) == before


def test_an_id_another_split_has_is_excluded_as_duplicate(tmp_path: Path, dbs: Path) -> None:
    build_split(spec("spider", tmp_path, dbs, split="a", source="same"), progress=False)
    with pytest.raises(DataError, match="keeps no question"):
        build_split(spec("spider", tmp_path, dbs, split="b", source="same"), progress=False)
    assert load_dataset(tmp_path / "out").splits == ("a",)


def test_a_failed_build_leaves_the_directory_as_it_was(
    tmp_path: Path, dbs: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    out = tmp_path / "out"
    build_split(spec("spider", tmp_path, dbs), progress=False)
    before = files(out)
    bad = tmp_path / "bad.json"
    bad.write_text("{ not a list", encoding="utf-8")
    with pytest.raises(DataError, match="is not JSON"):
        build_split(BuildSpec("spider", (bad,), dbs, out, "eval"), progress=False)
    # a crash while writing (disk full, Ctrl-C) leaves nothing half-written either
    from sqlenv_core.databuild import builder

    def crash(*args: Any, **kwargs: Any) -> None:
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(builder, "_place_database", crash)
    with pytest.raises(OSError, match="No space left"):
        build_split(spec("jsonl", tmp_path, dbs, split="eval"), progress=False)
    assert files(out) == before
    leftovers = [p.name for p in tmp_path.iterdir() if p.name.startswith(".")]
    assert leftovers == []
    # a new directory that fails is never created
    with pytest.raises(DataError):
        build_split(BuildSpec("spider", (bad,), dbs, tmp_path / "fresh", "eval"), progress=False)
    assert not (tmp_path / "fresh").exists()


def test_a_database_that_differs_from_the_one_other_splits_use_is_refused(
    tmp_path: Path, dbs: Path
) -> None:
    build_split(spec("spider", tmp_path, dbs, source="sp"), progress=False)
    other = make_databases(tmp_path / "other")
    with sqlite3.connect(other / "shop" / "shop.sqlite") as conn:
        conn.execute("INSERT INTO customer VALUES (4, 'Dee', 'Rome')")
    conn.close()
    with pytest.raises(DataError, match="differs from"):
        build_split(spec("jsonl", tmp_path, other, split="eval"), progress=False)
    assert load_dataset(tmp_path / "out").splits == ("train",)


@pytest.mark.parametrize(
    ("change", "message"),
    [
        ({"format": "csv"}, "unknown format"),
        ({"split": "../evil"}, "bad name"),
        ({"split": "excluded"}, "bad name"),
        ({"databases": Path("/nonexistent/dbs")}, "does not exist"),
        ({"timeout_s": 0.0}, "must be positive"),
    ],
)
def test_bad_build_arguments_are_refused_before_any_work(
    tmp_path: Path, dbs: Path, change: dict[str, Any], message: str
) -> None:
    base = spec("spider", tmp_path, dbs)
    with pytest.raises(DataError, match=message):
        build_split(BuildSpec(**{**base.__dict__, **change}), progress=False)
    assert not (tmp_path / "out").exists()


def test_a_folder_that_is_not_a_data_directory_is_never_replaced(tmp_path: Path, dbs: Path) -> None:
    out = tmp_path / "out"
    out.mkdir()
    (out / "thesis.tex").write_text("precious")
    with pytest.raises(DataError, match="holds no data directory"):
        build_split(spec("spider", tmp_path, dbs), progress=False)
    assert (out / "thesis.tex").read_text() == "precious"


def test_nondeterminism_is_read_from_the_sql() -> None:
    assert nondeterminism("SELECT * FROM t ORDER BY RANDOM() LIMIT 1")
    assert nondeterminism("SELECT date('now')")
    assert nondeterminism("SELECT CURRENT_TIMESTAMP")
    assert nondeterminism("SELECT name FROM t WHERE note = 'random(' ") is None
    assert nondeterminism("SELECT count(*) FROM t") is None


# ------------------------------------------------------------------------------- the CLI


def test_cli_builds_prints_a_summary_and_eval_uses_the_directory(
    tmp_path: Path, dbs: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    questions = bird_file(tmp_path / "dev.json")
    out = tmp_path / "mydata"
    argv = ["data", "build", "--format", "bird", "--questions", str(questions)]
    argv += ["--databases", str(dbs), "--out", str(out), "--split", "dev", "--timeout", "0.3"]
    assert cli.main(argv) == 0
    captured = capsys.readouterr()
    assert "dev: gold queries" in captured.err  # the progress bar
    assert "kept" in captured.out and "missing_database" in captured.out
    assert "dev (3)" in captured.out
    code = cli.main(
        ["eval", "--data-dir", str(out), "--split", "dev", "--policy", "oracle", "--json"]
    )
    assert code == 0
    report = json.loads(capsys.readouterr().out)
    assert report["n"] == KEPT and report["success_rate"] == 1.0
    assert report["by_split"]["dev"]["n"] == KEPT


def test_cli_build_errors_are_one_line_and_exit_2(
    tmp_path: Path, dbs: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    argv = ["data", "build", "--format", "spider", "--questions", str(tmp_path / "none.json")]
    argv += ["--databases", str(dbs), "--out", str(tmp_path / "out")]
    assert cli.main(argv) == 2
    err = capsys.readouterr().err
    assert err.startswith("sqlenv: error: question file") and err.count("\n") == 1


def test_sft_data_and_play_use_a_built_directory_with_evidence(
    tmp_path: Path, dbs: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    build_split(spec("bird", tmp_path, dbs, split="dev"), progress=False)
    out = tmp_path / "out"
    sft = tmp_path / "sft.jsonl"
    assert cli.main(["sft-data", "--data-dir", str(out), "--split", "dev", "--out", str(sft)]) == 0
    chats = [json.loads(line) for line in sft.read_text().splitlines()]
    assert len(chats) == KEPT
    lions = next(c for c in chats if "lions" in c["messages"][1]["content"])
    assert (
        "\nEvidence: a lion is an animal whose species = 'lion'\n"
        in lions["messages"][1]["content"]
    )
    answers = iter(["a 2"])
    monkeypatch.setattr("builtins.input", lambda prompt="": next(answers))
    capsys.readouterr()
    assert cli.main(["play", "--data-dir", str(out), "--question-id", "bird_dev_0002"]) == 0
    shown = capsys.readouterr().out
    assert "Evidence: a lion is an animal" in shown and "Episode over: correct" in shown


def test_without_an_atomic_exchange_two_renames_replace_the_directory(
    tmp_path: Path, dbs: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from sqlenv_core.databuild import builder

    build_split(spec("spider", tmp_path, dbs), progress=False)
    monkeypatch.setattr(builder, "_exchange", lambda a, b: False)
    build_split(spec("jsonl", tmp_path, dbs, split="eval"), progress=False)
    assert load_dataset(tmp_path / "out").splits == ("train", "eval")
    assert [p.name for p in tmp_path.iterdir() if p.name.startswith(".")] == []
