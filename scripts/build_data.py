"""Build the bundled ``data/`` directory from a Spider 1.0 copy.

Usage (from the repository root)::

    uv run python scripts/build_data.py [--spider ../shared/data/spider] [--out data] \
        [--timeout 2.0]

Every gold query runs through the engine's own ``Sandbox``, so the stored gold results
are exactly what an episode will compare against. Questions whose database is missing,
whose gold fails, times out, comes back empty or hits the sandbox's fetch cap are left
out and listed with a reason in ``questions/excluded.jsonl`` (a result of only NULLs, such as
``avg`` over no rows, counts as empty). The output is
deterministic: building twice gives byte-identical files.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import shutil
import sys
from collections import Counter
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from sqlenv_core.analysis import answer_shape, order_matters, spider_hardness, tables_involved
from sqlenv_core.config import SandboxConfig
from sqlenv_core.dataset import Question, dump_questions
from sqlenv_core.errors import QueryTimeoutError, SandboxError
from sqlenv_core.sandbox import Sandbox
from tqdm import tqdm

REPO_ROOT = Path(__file__).resolve().parents[1]
DEFAULT_SPIDER = REPO_ROOT.parent / "shared" / "data" / "spider"
DEFAULT_OUT = REPO_ROOT / "data"

# (source, file in the Spider folder, split)
SOURCES: tuple[tuple[str, str, str], ...] = (
    ("train_spider", "train_spider.json", "train"),
    ("train_others", "train_others.json", "train"),
    ("dev", "dev.json", "eval"),
)
SPLITS = ("train", "eval")
LEVELS = ("easy", "medium", "hard", "extra")
SHAPES = ("scalar", "list", "table")
REASONS = (
    "missing_database",
    "empty_database",
    "gold_error",
    "gold_timeout",
    "empty_result",
    "truncated_result",
)

CITATION = (
    "Tao Yu, Rui Zhang, Kai Yang, Michihiro Yasunaga, Dongxu Wang, Zifan Li, James Ma, "
    "Irene Li, Qingning Yao, Shanelle Roman, Zilin Zhang, Dragomir Radev. *Spider: A "
    "Large-Scale Human-Labeled Dataset for Complex and Cross-Domain Semantic Parsing and "
    "Text-to-SQL Task.* EMNLP 2018. https://yale-lily.github.io/spider"
)


@dataclass(frozen=True)
class Item:
    """One question as it appears in a Spider source file."""

    id: str
    split: str
    source: str
    db_id: str
    question: str
    gold_sql: str


def log(message: str = "") -> None:
    print(message, file=sys.stderr)


def read_items(spider: Path) -> list[Item]:
    items: list[Item] = []
    for source, filename, split in SOURCES:
        records = json.loads((spider / filename).read_text(encoding="utf-8"))
        for index, record in enumerate(records):
            items.append(
                Item(
                    id=f"{source}_{index:04d}",
                    split=split,
                    source=source,
                    db_id=record["db_id"],
                    question=record["question"],
                    gold_sql=record["query"],
                )
            )
    return items


def check_disjoint(items: Iterable[Item | Question]) -> None:
    dbs: dict[str, set[str]] = {split: set() for split in SPLITS}
    for item in items:
        dbs[item.split].add(item.db_id)
    shared = dbs["train"] & dbs["eval"]
    if shared:
        raise SystemExit(f"train and eval share databases: {', '.join(sorted(shared))}")


def sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as fh:
        for block in iter(lambda: fh.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def excluded_record(item: Item, reason: str, detail: str) -> dict[str, Any]:
    assert reason in REASONS, reason
    return {
        "id": item.id,
        "split": item.split,
        "source": item.source,
        "db_id": item.db_id,
        "question": item.question,
        "gold_sql": item.gold_sql,
        "reason": reason,
        "detail": detail,
    }


def build_questions(
    items: list[Item], spider: Path, timeout: float
) -> tuple[list[Question], list[dict[str, Any]], dict[str, list[str]]]:
    """Execute every gold query; return kept questions, exclusions and db table lists."""
    questions: list[Question] = []
    excluded: list[dict[str, Any]] = []
    sandboxes: dict[str, Sandbox] = {}
    tables: dict[str, list[str]] = {}
    empty_dbs: set[str] = set()
    config = SandboxConfig(timeout_s=timeout)
    try:
        for item in tqdm(items, desc="gold queries", unit="q", file=sys.stderr):
            db_path = spider / "databases" / item.db_id / f"{item.db_id}.sqlite"
            if item.db_id not in sandboxes:
                if not db_path.is_file():
                    excluded.append(
                        excluded_record(
                            item,
                            "missing_database",
                            f"databases/{item.db_id}/{item.db_id}.sqlite is not in the Spider copy",
                        )
                    )
                    continue
                sandboxes[item.db_id] = Sandbox(db_path, config)
                tables[item.db_id] = list(sandboxes[item.db_id].table_names)
                sandbox = sandboxes[item.db_id]
                if not any(sandbox.describe(t).row_count for t in sandbox.table_names):
                    empty_dbs.add(item.db_id)
            if item.db_id in empty_dbs:
                # Every table is empty upstream: each answer is 0 or nothing, so an agent
                # that always answers 0 would be "right". No signal worth training on.
                excluded.append(
                    excluded_record(item, "empty_database", "every table of this database is empty")
                )
                continue
            try:
                outcome = sandboxes[item.db_id].execute(item.gold_sql, timeout_s=timeout)
            except QueryTimeoutError as exc:
                excluded.append(excluded_record(item, "gold_timeout", str(exc)))
                continue
            except SandboxError as exc:
                excluded.append(excluded_record(item, "gold_error", str(exc)))
                continue
            if outcome.total_is_lower_bound:
                excluded.append(
                    excluded_record(
                        item,
                        "truncated_result",
                        f"more than {len(outcome.rows)} rows; the sandbox stops fetching there",
                    )
                )
                continue
            if not outcome.rows:
                excluded.append(
                    excluded_record(item, "empty_result", "the gold query returns no rows")
                )
                continue
            if all(cell is None for row in outcome.rows for cell in row):
                # e.g. avg() over no matching rows: NULL is no answer anyone could check
                excluded.append(
                    excluded_record(item, "empty_result", "the gold query returns only NULL values")
                )
                continue
            columns = list(outcome.columns)
            rows = [list(row) for row in outcome.rows]
            questions.append(
                Question(
                    id=item.id,
                    split=item.split,  # type: ignore[arg-type]
                    source=item.source,  # type: ignore[arg-type]
                    db_id=item.db_id,
                    question=item.question,
                    gold_sql=item.gold_sql,
                    gold_columns=columns,
                    gold_rows=rows,
                    order_matters=order_matters(item.gold_sql),
                    answer_shape=answer_shape(columns, rows),
                    tables=tables_involved(item.gold_sql, tables[item.db_id]),
                    difficulty=spider_hardness(item.gold_sql),
                )
            )
    finally:
        for sandbox in sandboxes.values():
            sandbox.close()
    return questions, excluded, tables


def copy_databases(spider: Path, out: Path, db_ids: Iterable[str]) -> None:
    """Byte-copy the databases the splits use; remove any other database folder."""
    wanted = set(db_ids)
    root = out / "databases"
    if root.exists():
        for entry in sorted(root.iterdir()):
            if entry.name not in wanted:
                if entry.is_dir():
                    shutil.rmtree(entry)
                else:
                    entry.unlink()
    for db_id in sorted(wanted):
        src = spider / "databases" / db_id / f"{db_id}.sqlite"
        dst = root / db_id / f"{db_id}.sqlite"
        dst.parent.mkdir(parents=True, exist_ok=True)
        for extra in sorted(dst.parent.iterdir()):
            if extra.name != dst.name:
                shutil.rmtree(extra) if extra.is_dir() else extra.unlink()
        shutil.copyfile(src, dst)


def counts(values: Iterable[str], order: Iterable[str] = ()) -> dict[str, int]:
    """A counter as a dict: the known keys first in their order, then the rest sorted."""
    tally = Counter(values)
    known = [key for key in order if key in tally]
    return {key: tally[key] for key in [*known, *sorted(set(tally) - set(known))]}


def build_manifest(
    questions: list[Question], excluded: list[dict[str, Any]], out: Path, timeout: float
) -> dict[str, Any]:
    db_split = {q.db_id: q.split for q in questions}
    db_count = Counter(q.db_id for q in questions)
    databases = {}
    for db_id in sorted(db_split):
        path = out / "databases" / db_id / f"{db_id}.sqlite"
        databases[db_id] = {
            "split": db_split[db_id],
            "questions": db_count[db_id],
            "sha256": sha256(path),
            "size_bytes": path.stat().st_size,
        }
    splits = {}
    for split in SPLITS:
        qs = [q for q in questions if q.split == split]
        splits[split] = {
            "questions": len(qs),
            "databases": len({q.db_id for q in qs}),
            "by_source": counts((q.source for q in qs), (s for s, _, _ in SOURCES)),
            "by_difficulty": counts((q.difficulty for q in qs), LEVELS),
            "by_answer_shape": counts((q.answer_shape for q in qs), SHAPES),
            "order_matters": sum(q.order_matters for q in qs),
        }
    missing: dict[str, dict[str, Any]] = {}
    for rec in excluded:
        if rec["reason"] == "missing_database":
            entry = missing.setdefault(rec["db_id"], {"split": rec["split"], "questions": 0})
            entry["questions"] += 1
    empty_dbs = sorted({r["db_id"] for r in excluded if r["reason"] == "empty_database"})
    largest = max(questions, key=lambda q: (len(q.gold_rows), q.id))
    notes = {
        "empty_databases": empty_dbs,
        "gold_rows_over_1000": sum(len(q.gold_rows) > 1000 for q in questions),
        "largest_gold": {"id": largest.id, "rows": len(largest.gold_rows)},
    }
    return {
        "build": {"command": command_line(), "timeout_s": timeout},
        "databases": databases,
        "splits": splits,
        "excluded": {
            "total": len(excluded),
            "by_reason": counts((r["reason"] for r in excluded), REASONS),
            "by_split": {
                split: counts((r["reason"] for r in excluded if r["split"] == split), REASONS)
                for split in SPLITS
            },
            "missing_databases": dict(sorted(missing.items())),
        },
        "notes": notes,
    }


_ARGS: argparse.Namespace | None = None


def command_line() -> str:
    """The build command, with paths relative to the repository root where possible."""
    assert _ARGS is not None

    def rel(path: Path) -> str:
        path = path.resolve()
        try:
            return path.relative_to(REPO_ROOT).as_posix()
        except ValueError:
            pass
        try:
            return Path("..", path.relative_to(REPO_ROOT.parent)).as_posix()
        except ValueError:
            return path.as_posix()

    return (
        f"uv run python scripts/build_data.py --spider {rel(_ARGS.spider)} "
        f"--out {rel(_ARGS.out)} --timeout {_ARGS.timeout}"
    )


def table(header: list[str], rows: list[list[Any]]) -> str:
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    lines += ["| " + " | ".join(str(cell) for cell in row) + " |" for row in rows]
    return "\n".join(lines)


def render_readme(manifest: dict[str, Any]) -> str:
    splits = manifest["splits"]
    excluded = manifest["excluded"]
    total_db_bytes = sum(db["size_bytes"] for db in manifest["databases"].values())

    split_rows = []
    for split in SPLITS:
        s = splits[split]
        sources = ", ".join(f"{k} {v}" for k, v in s["by_source"].items())
        split_rows.append(
            [f"`{split}`", s["questions"], s["databases"], sources]
            + [s["by_difficulty"].get(level, 0) for level in LEVELS]
            + [s["by_answer_shape"].get(shape, 0) for shape in SHAPES]
        )
    reason_rows = [
        [f"`{reason}`"]
        + [excluded["by_split"][split].get(reason, 0) for split in SPLITS]
        + [excluded["by_reason"].get(reason, 0)]
        for reason in REASONS
    ]
    missing_rows = [
        [f"`{db_id}`", info["split"], info["questions"]]
        for db_id, info in excluded["missing_databases"].items()
    ]
    notes = manifest["notes"]
    empty_dbs = ", ".join(notes["empty_databases"]) or "none"
    over_1000 = notes["gold_rows_over_1000"]
    largest = notes["largest_gold"]
    return f"""# SQLEnv data (generated)

This folder is written by `scripts/build_data.py`; do not edit it by hand. It holds Spider
1.0 text-to-SQL questions with their gold results precomputed on the bundled SQLite
databases, for the SQLEnv episode engine (`sqlenv_core.dataset.load_dataset`).

* `questions/train.jsonl`: the default **train** split, Spider `train_spider.json` and
  `train_others.json`.
* `questions/eval.jsonl`: the default **eval** split, Spider `dev.json`. Its databases are
  not in train, so eval measures generalisation to unseen schemas.
* `questions/excluded.jsonl`: questions left out, one per line with `reason` and `detail`.
* `databases/<db_id>/<db_id>.sqlite`: byte copies of the Spider databases the splits use.
* `manifest.json`: sha256 and size of every database, counts per split and exclusions.

Each question line is a `Question` record (`sqlenv_core/dataset.py`): `id`
(`<source>_<index>`, the position in the Spider source file), `split`, `source`, `db_id`,
`question`, `gold_sql` (verbatim from Spider), `gold_columns` and `gold_rows` (the gold
query's result through the engine's sandbox; BLOBs as `x'hex'` strings), `order_matters`
(the gold has a top-level `ORDER BY`), `answer_shape` (`scalar`, `list` or `table`),
`tables` (the tables the gold reads) and `difficulty` (Spider's hardness level, computed
with the rule of Spider's `evaluation.py`).

## How it was built

```
{manifest["build"]["command"]}
```

Every gold query ran through `sqlenv_core.sandbox.Sandbox` with a {manifest["build"]["timeout_s"]} s
deadline. A question is excluded when its database is missing (`missing_database`), has
only empty tables (`empty_database`: every answer there is 0 or nothing), its gold query fails (`gold_error`), runs past the deadline (`gold_timeout`), returns no rows
or only NULL values (`empty_result`) or reaches the sandbox's fetch cap
(`truncated_result`). Running the script again gives byte-identical output.

## Counts

{table(["split", "questions", "databases", "by source", *LEVELS, *SHAPES], split_rows)}

Databases: {len(manifest["databases"])} ({total_db_bytes / 1e6:.1f} MB).

### Excluded questions

{table(["reason", *SPLITS, "total"], reason_rows)}

Databases missing from the Spider copy (their questions are excluded as `missing_database`):

{table(["db_id", "split", "questions"], missing_rows)}

## Caveats

* Some Spider databases have only empty tables upstream ({empty_dbs}). Their
  questions are excluded as `empty_database`: the few with a non-empty gold result are all
  a count of 0, which an agent that always answers 0 would get right.
* Gold results can be large: {over_1000} questions have more than 1,000 gold rows, the
  largest being `{largest["id"]}` ({largest["rows"]} rows).

## Source, citation and licence

Spider 1.0: {CITATION}

Spider is released under the Creative Commons Attribution-ShareAlike 4.0 licence
(CC BY-SA 4.0, https://creativecommons.org/licenses/by-sa/4.0/). The files in this folder
are derived from it (databases copied byte for byte, questions and gold SQL verbatim, gold
results computed from them) and are shared under the same licence, CC BY-SA 4.0. Keep this
attribution with the data.
"""


def write_json(path: Path, payload: Any) -> None:
    path.write_text(
        json.dumps(payload, indent=2, sort_keys=False, ensure_ascii=False) + "\n", encoding="utf-8"
    )


def main(argv: list[str] | None = None) -> int:
    global _ARGS
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument(
        "--spider",
        type=Path,
        default=DEFAULT_SPIDER,
        help="Spider folder with the json files and databases/ (default: %(default)s)",
    )
    parser.add_argument(
        "--out",
        type=Path,
        default=DEFAULT_OUT,
        help="data directory to write (default: %(default)s)",
    )
    parser.add_argument(
        "--timeout",
        type=float,
        default=2.0,
        help="deadline per gold query in seconds (default: %(default)s)",
    )
    args = _ARGS = parser.parse_args(argv)
    spider: Path = args.spider
    out: Path = args.out

    items = read_items(spider)
    check_disjoint(items)
    questions, excluded, _ = build_questions(items, spider, args.timeout)
    check_disjoint(questions)

    (out / "questions").mkdir(parents=True, exist_ok=True)
    for split in SPLITS:
        dump_questions(
            (q for q in questions if q.split == split), out / "questions" / f"{split}.jsonl"
        )
    with (out / "questions" / "excluded.jsonl").open("w", encoding="utf-8") as fh:
        for rec in excluded:
            fh.write(json.dumps(rec, ensure_ascii=False, separators=(",", ":")) + "\n")
    copy_databases(spider, out, {q.db_id for q in questions})
    manifest = build_manifest(questions, excluded, out, args.timeout)
    for db_id, info in manifest["databases"].items():
        src = spider / "databases" / db_id / f"{db_id}.sqlite"
        if info["sha256"] != sha256(src):
            raise SystemExit(f"copy of {db_id} differs from its source")
    write_json(out / "manifest.json", manifest)
    (out / "README.md").write_text(render_readme(manifest), encoding="utf-8")

    log()
    for split in SPLITS:
        s = manifest["splits"][split]
        log(
            f"{split}: {s['questions']} questions on {s['databases']} databases; "
            f"sources {s['by_source']}; difficulty {s['by_difficulty']}; "
            f"shapes {s['by_answer_shape']}"
        )
    log(f"excluded: {manifest['excluded']['total']} {manifest['excluded']['by_reason']}")
    log(f"missing databases: {manifest['excluded']['missing_databases']}")
    biggest = manifest["notes"]["largest_gold"]
    log(
        f"largest gold result: {biggest['id']}, {biggest['rows']} rows; "
        f"{manifest['notes']['gold_rows_over_1000']} gold results have more than 1,000 rows"
    )
    log(f"wrote {out}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
