"""Build the bundled ``data/`` directory: Spider 1.0 and the Spider-Syn robustness split.

Usage (from the repository root)::

    uv run python scripts/build_data.py [--spider ../shared/data/spider] \
        [--spider-syn ../shared/data/robustness/spider-syn] [--out data] [--timeout 2.0]

A thin caller of ``sqlenv_core.databuild`` (the code behind ``sqlenv data build``), so
the bundled data and any user's data come from one code path. It builds three splits,
``train`` (Spider's train_spider.json and train_others.json), ``eval`` (dev.json) and
``eval-syn`` (Spider-Syn's dev questions, on the same dev databases), checks that train
and eval share no database, and writes ``data/README.md`` from the manifest. The output
is deterministic: building twice gives byte-identical files.
"""

from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path
from typing import Any

from sqlenv_core.databuild import REASONS, BuildSpec, build_split
from sqlenv_core.dataset import load_dataset

REPO_ROOT = Path(__file__).resolve().parents[1]
DEFAULT_SPIDER = REPO_ROOT.parent / "shared" / "data" / "spider"
DEFAULT_SYN = REPO_ROOT.parent / "shared" / "data" / "robustness" / "spider-syn"
DEFAULT_OUT = REPO_ROOT / "data"

LEVELS = ("easy", "medium", "hard", "extra")
SHAPES = ("scalar", "list", "table")

CITATION = (
    "Tao Yu, Rui Zhang, Kai Yang, Michihiro Yasunaga, Dongxu Wang, Zifan Li, James Ma, "
    "Irene Li, Qingning Yao, Shanelle Roman, Zilin Zhang, Dragomir Radev. *Spider: A "
    "Large-Scale Human-Labeled Dataset for Complex and Cross-Domain Semantic Parsing and "
    "Text-to-SQL Task.* EMNLP 2018. https://yale-lily.github.io/spider"
)
SYN_CITATION = (
    "Yujian Gan, Xinyun Chen, Qiuping Huang, Matthew Purver, John R. Woodward, Jinxia Xie, "
    "Pengsheng Huang. *Towards Robustness of Text-to-SQL Models against Synonym "
    "Substitution.* ACL 2021. https://github.com/ygan/Spider-Syn"
)
SYN_COPYRIGHT = (
    "Copyright (c) 2021 Yujian Gan, Xinyun Chen, Qiuping Huang, Matthew Purver, "
    "John R. Woodward, Jinxia Xie, Pengsheng Huang"
)


def log(message: str = "") -> None:
    print(message, file=sys.stderr)


def rel(path: Path) -> Path:
    """``path`` relative to the repository root where possible (``../shared/...``).

    Symbolic links are kept (``abspath``, not ``resolve``): ``../shared`` is a link in
    worktrees, and the committed manifest must not depend on where it points."""
    path = Path(os.path.abspath(path))
    for base, prefix in ((REPO_ROOT, Path()), (REPO_ROOT.parent, Path(".."))):
        try:
            return prefix / path.relative_to(base)
        except ValueError:
            continue
    return path


def specs(spider: Path, syn: Path, out: Path, timeout: float) -> list[BuildSpec]:
    """The three bundled splits, in build (and listing) order."""
    dbs = rel(spider / "databases")
    return [
        BuildSpec(
            "spider",
            (rel(spider / "train_spider.json"), rel(spider / "train_others.json")),
            dbs,
            out,
            "train",
            timeout,
        ),
        BuildSpec("spider", (rel(spider / "dev.json"),), dbs, out, "eval", timeout),
        BuildSpec(
            "spider",
            (rel(syn / "dev.json"),),
            dbs,
            out,
            "eval-syn",
            timeout,
            source="dev_syn",
            question_field="SpiderSynQuestion",
        ),
    ]


def table(header: list[str], rows: list[list[Any]]) -> str:
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    lines += ["| " + " | ".join(str(cell) for cell in row) + " |" for row in rows]
    return "\n".join(lines)


def render_readme(manifest: dict[str, Any], command: str) -> str:
    splits = manifest["splits"]
    names = list(splits)
    excluded = manifest["excluded"]
    total_db_bytes = sum(db["size_bytes"] for db in manifest["databases"].values())

    split_rows = []
    for split in names:
        s = splits[split]
        sources = ", ".join(f"{k} {v}" for k, v in s["by_source"].items())
        split_rows.append(
            [f"`{split}`", s["questions"], s["databases"], sources]
            + [s["by_difficulty"].get(level, 0) for level in LEVELS]
            + [s["by_answer_shape"].get(shape, 0) for shape in SHAPES]
        )
    reason_rows = [
        [f"`{reason}`"]
        + [excluded["by_split"][split].get(reason, 0) for split in names]
        + [excluded["by_reason"].get(reason, 0)]
        for reason in REASONS
        if excluded["by_reason"].get(reason, 0)
    ]
    missing_rows = [
        [f"`{db_id}`", ", ".join(info["splits"]), info["questions"]]
        for db_id, info in excluded["missing_databases"].items()
    ]
    notes = manifest["notes"]
    empty_dbs = ", ".join(notes["empty_databases"]) or "none"
    over_1000 = notes["gold_rows_over_1000"]
    largest = notes["largest_gold"]
    timeout = splits["train"]["build"]["timeout_s"]
    return f"""# SQLEnv data (generated)

This folder is written by `scripts/build_data.py`, a thin caller of `sqlenv data build`
(`sqlenv_core.databuild`); do not edit it by hand. It holds Spider 1.0 text-to-SQL
questions, and their Spider-Syn paraphrases, with their gold results precomputed on the
bundled SQLite databases, for the SQLEnv episode engine (`sqlenv_core.dataset.load_dataset`).
[docs/data.md](../docs/data.md) explains the format and how to build your own.

* `questions/train.jsonl`: the default **train** split, Spider `train_spider.json` and
  `train_others.json`.
* `questions/eval.jsonl`: the default **eval** split, Spider `dev.json`. Its databases are
  not in train, so eval measures generalisation to unseen schemas.
* `questions/eval-syn.jsonl`: the **eval-syn** robustness split, Spider-Syn's `dev.json`:
  the dev questions with their schema words replaced by synonyms (`SpiderSynQuestion`),
  on the same dev databases (stored once). Its ids are `dev_syn_<n>`, paired with `dev_<n>`
  of eval; the gold SQL is Spider-Syn's, which is Spider's before its 2020 dev fixes for
  52 questions.
* `questions/excluded.jsonl`: questions left out, one per line with `reason` and `detail`.
* `databases/<db_id>/<db_id>.sqlite`: byte copies of the Spider databases the splits use.
* `manifest.json`: how each split was built, sha256 and size of every database, counts per
  split and exclusions.

Each question line is a `Question` record (`sqlenv_core/dataset.py`): `id`
(`<source>_<index>`, the position in the source file), `split`, `source`, `db_id`,
`question`, `gold_sql` (verbatim from the source), `gold_columns` and `gold_rows` (the gold
query's result through the engine's sandbox; BLOBs as `x'hex'` strings), `order_matters`
(the gold has a top-level `ORDER BY`), `answer_shape` (`scalar`, `list` or `table`),
`tables` (the tables the gold reads) and `difficulty` (Spider's hardness level, computed
with the rule of Spider's `evaluation.py`).

## How it was built

```
{command}
```

Every gold query ran through `sqlenv_core.sandbox.Sandbox` with a {timeout} s
deadline, twice. A question is excluded when its database is missing (`missing_database`),
has only empty tables (`empty_database`: every answer there is 0 or nothing), its gold
query is nondeterministic (`nondeterministic`), fails (`gold_error`), runs past the
deadline (`gold_timeout`), returns no rows or only NULL values (`empty_result`) or reaches
the sandbox's fetch cap (`truncated_result`). Running the script again gives
byte-identical output.

## Counts

{table(["split", "questions", "databases", "by source", *LEVELS, *SHAPES], split_rows)}

Databases: {len(manifest["databases"])} ({total_db_bytes / 1e6:.1f} MB).

### Excluded questions

{table(["reason", *names, "total"], reason_rows)}

Databases missing from the Spider copy (their questions are excluded as `missing_database`):

{table(["db_id", "splits", "questions"], missing_rows)}

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

Spider-Syn (the `eval-syn` questions): {SYN_CITATION}

Spider-Syn is released under the MIT licence, reproduced here as its terms require:

```
MIT License

{SYN_COPYRIGHT}

Permission is hereby granted, free of charge, to any person obtaining a copy
of this software and associated documentation files (the "Software"), to deal
in the Software without restriction, including without limitation the rights
to use, copy, modify, merge, publish, distribute, sublicense, and/or sell
copies of the Software, and to permit persons to whom the Software is
furnished to do so, subject to the following conditions:

The above copyright notice and this permission notice shall be included in all
copies or substantial portions of the Software.

THE SOFTWARE IS PROVIDED "AS IS", WITHOUT WARRANTY OF ANY KIND, EXPRESS OR
IMPLIED, INCLUDING BUT NOT LIMITED TO THE WARRANTIES OF MERCHANTABILITY,
FITNESS FOR A PARTICULAR PURPOSE AND NONINFRINGEMENT. IN NO EVENT SHALL THE
AUTHORS OR COPYRIGHT HOLDERS BE LIABLE FOR ANY CLAIM, DAMAGES OR OTHER
LIABILITY, WHETHER IN AN ACTION OF CONTRACT, TORT OR OTHERWISE, ARISING FROM,
OUT OF OR IN CONNECTION WITH THE SOFTWARE OR THE USE OR OTHER DEALINGS IN THE
SOFTWARE.
```
"""


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument(
        "--spider",
        type=Path,
        default=DEFAULT_SPIDER,
        help="Spider folder with the json files and databases/ (default: %(default)s)",
    )
    parser.add_argument(
        "--spider-syn",
        type=Path,
        default=DEFAULT_SYN,
        help="Spider-Syn folder with dev.json (default: %(default)s)",
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
    args = parser.parse_args(argv)
    out = rel(args.out)
    for spec in specs(args.spider, args.spider_syn, out, args.timeout):
        result = build_split(spec)
        log(f"{spec.split}: kept {len(result.kept)}, excluded {len(result.excluded)}")
    manifest = result.manifest
    ds = load_dataset(out)
    train = {q.db_id for q in ds.select(split="train")}
    shared = train & {q.db_id for q in ds.select(split="eval")}
    if shared:
        raise SystemExit(f"train and eval share databases: {', '.join(sorted(shared))}")
    command = (
        f"uv run python scripts/build_data.py --spider {rel(args.spider).as_posix()} "
        f"--spider-syn {rel(args.spider_syn).as_posix()} --out {out.as_posix()} "
        f"--timeout {args.timeout}"
    )
    (out / "README.md").write_text(render_readme(manifest, command), encoding="utf-8")
    log(f"wrote {out}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
