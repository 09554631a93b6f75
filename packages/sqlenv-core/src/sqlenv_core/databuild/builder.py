"""Build one split of a data directory from a question file and a folder of databases.

``build_split`` reads the questions with a format reader, runs every gold query
through the engine's sandbox (``gold.GoldRunner``), and writes the split into the data
directory beside the splits already there. A data directory grows one split per call;
rebuilding a split replaces it. Atomic: everything is written to a sibling staging
folder that replaces the directory only when complete, so a failed or interrupted build
leaves the directory as it was. Deterministic: the same inputs give byte-identical files.

Databases are stored once (``databases/<db_id>/<db_id>.sqlite``) whatever the number of
splits that use them; a database already in the directory is kept (hard-linked into
the staging folder, not copied) and must be byte-identical to the one a new split
brings, since the other splits' gold results were computed on it.
"""

from __future__ import annotations

import ctypes
import hashlib
import json
import os
import shutil
import sys
import tempfile
from collections import Counter
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from tqdm import tqdm

from ..dataset import EXCLUDED_FILE, Question, check_split_name, discover_splits, dump_questions
from ..errors import DataError
from . import bird, jsonl, spider
from .gold import GoldRunner
from .records import LEVELS, REASONS, Exclusion, SourceQuestion

__all__ = ["FORMATS", "BuildResult", "BuildSpec", "build_split", "sha256"]

Reader = Callable[[Path, str, "str | None"], Iterator[SourceQuestion | Exclusion]]
FORMATS: dict[str, Reader] = {"spider": spider.read, "bird": bird.read, "jsonl": jsonl.read}
SHAPES = ("scalar", "list", "table")


@dataclass(frozen=True)
class BuildSpec:
    """What ``sqlenv data build`` was asked to do.

    Args:
        format: ``spider``, ``bird`` or ``jsonl``.
        questions: the question files; each one is a ``source`` (its file name's stem,
            the prefix of its questions' ids, unless ``source`` is given).
        databases: the folder holding ``<db_id>/<db_id>.sqlite``.
        out: the data directory to create or add the split to.
        split: the split's name.
        timeout_s: deadline per gold query.
        source: the source name (and id prefix) to use instead of the file's stem;
            only with a single question file.
        question_field: the field holding the question text, for files that name it
            otherwise (Spider-Syn: ``SpiderSynQuestion``).
    """

    format: str
    questions: tuple[Path, ...]
    databases: Path
    out: Path
    split: str
    timeout_s: float = 2.0
    source: str | None = None
    question_field: str | None = None

    def record(self) -> dict[str, Any]:
        """How the split was built, for the manifest: paths as they were given."""
        out: dict[str, Any] = {
            "format": self.format,
            "questions": [p.as_posix() for p in self.questions],
            "databases": self.databases.as_posix(),
        }
        if self.source:
            out["source"] = self.source
        if self.question_field:
            out["question_field"] = self.question_field
        out["timeout_s"] = self.timeout_s
        return out


@dataclass
class BuildResult:
    """What a build kept and left out, and the manifest it wrote."""

    spec: BuildSpec
    kept: list[Question]
    excluded: list[Exclusion]
    manifest: dict[str, Any]
    databases_copied: list[str] = field(default_factory=list)

    def summary_rows(self) -> list[tuple[str, int]]:
        """(label, count) lines of the summary table ``sqlenv data build`` prints."""
        rows = [("kept", len(self.kept))]
        rows += [
            (f"  {level}", n)
            for level, n in _counts((q.difficulty for q in self.kept), LEVELS).items()
        ]
        rows.append(("excluded", len(self.excluded)))
        by_reason = _counts((e.reason for e in self.excluded), REASONS)
        rows += [(f"  {reason}", n) for reason, n in by_reason.items()]
        return rows


def sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as fh:
        for block in iter(lambda: fh.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def _counts(values: Iterable[str], order: Iterable[str] = ()) -> dict[str, int]:
    """A counter as a dict: the known keys first in their order, then the rest sorted."""
    tally = Counter(values)
    known = [key for key in order if key in tally]
    return {key: tally[key] for key in [*known, *sorted(set(tally) - set(known))]}


# ----------------------------------------------------------------------------- checks


def _check_spec(spec: BuildSpec) -> None:
    if spec.format not in FORMATS:
        raise DataError(f"unknown format {spec.format!r} (one of {', '.join(FORMATS)})")
    try:
        check_split_name(spec.split)
        if spec.source is not None:
            check_split_name(spec.source)
    except ValueError as exc:
        raise DataError(str(exc).replace("split name", "name")) from None
    if not spec.questions:
        raise DataError("no question file given")
    if spec.source is not None and len(spec.questions) > 1:
        raise DataError("--source names one question file's questions; give one file")
    for path in spec.questions:
        if not path.is_file():
            raise DataError(f"question file {path} does not exist")
    if not spec.databases.is_dir():
        raise DataError(f"database folder {spec.databases} does not exist")
    if not spec.timeout_s > 0:
        raise DataError(f"the gold deadline must be positive, got {spec.timeout_s}")
    out = spec.out
    if out.exists():
        if not out.is_dir():
            raise DataError(f"{out} exists and is not a directory")
        if any(out.iterdir()) and not (out / "questions").is_dir():
            raise DataError(f"{out} is not empty and holds no data directory (questions/)")


# ----------------------------------------------------------------- the existing directory


@dataclass
class _Existing:
    """The other splits of the data directory, read lightly (no record validation)."""

    order: list[str]
    lines: dict[str, list[dict[str, Any]]]
    excluded_lines: dict[str, list[str]]
    build: dict[str, Any]


def _read_existing(out: Path, split: str) -> _Existing:
    order = discover_splits(out) if (out / "questions").is_dir() else []
    lines: dict[str, list[dict[str, Any]]] = {}
    for name in order:
        if name == split:
            continue
        path = out / "questions" / f"{name}.jsonl"
        with path.open(encoding="utf-8") as fh:
            lines[name] = [json.loads(line) for line in fh if line.strip()]
    excluded_lines: dict[str, list[str]] = {}
    path = out / "questions" / f"{EXCLUDED_FILE}.jsonl"
    if path.is_file():
        with path.open(encoding="utf-8") as fh:
            for line in fh:
                if line.strip():
                    excluded_lines.setdefault(json.loads(line).get("split", ""), []).append(line)
    build: dict[str, Any] = {}
    try:
        manifest = json.loads((out / "manifest.json").read_text(encoding="utf-8"))
        build = {k: v.get("build") for k, v in manifest.get("splits", {}).items() if v.get("build")}
    except (OSError, ValueError, AttributeError):
        pass
    return _Existing(order, lines, excluded_lines, build)


# ---------------------------------------------------------------------------- reading


def _read_items(spec: BuildSpec, taken: dict[str, str]) -> list[SourceQuestion | Exclusion]:
    """Every question of the spec's files in file order, rejects included; a duplicate
    of an id already taken (by this split or another; ``taken`` maps id to split) is
    excluded."""
    reader = FORMATS[spec.format]
    entries: list[SourceQuestion | Exclusion] = []
    seen: set[str] = set()
    for path in spec.questions:
        source = spec.source or path.stem
        for entry in reader(path, source, spec.question_field):
            if isinstance(entry, SourceQuestion):
                if entry.id in seen:
                    entry = Exclusion.of(entry, "duplicate_id", "an earlier question has this id")
                elif entry.id in taken:
                    entry = Exclusion.of(
                        entry,
                        "duplicate_id",
                        f"split {taken[entry.id]!r} has this id (name the source with --source)",
                    )
                else:
                    seen.add(entry.id)
            entries.append(entry)
    return entries


# ---------------------------------------------------------------------------- writing


def _place_database(src: Path, dst: Path) -> None:
    """Hard-link ``src`` at ``dst`` (a database already in the directory), else copy it."""
    dst.parent.mkdir(parents=True, exist_ok=True)
    try:
        os.link(src, dst)
    except OSError:
        shutil.copyfile(src, dst)


def _manifest(
    builds: dict[str, Any],
    questions: dict[str, list[dict[str, Any]]],
    excluded: dict[str, list[dict[str, Any]]],
    root: Path,
) -> dict[str, Any]:
    splits: dict[str, Any] = {}
    per_db: dict[str, Counter[str]] = {}
    for name, qs in questions.items():
        for q in qs:
            per_db.setdefault(q["db_id"], Counter())[name] += 1
        entry: dict[str, Any] = {}
        if builds.get(name):
            entry["build"] = builds[name]
        entry |= {
            "questions": len(qs),
            "databases": len({q["db_id"] for q in qs}),
            "by_source": _counts(q["source"] for q in qs),
            "by_difficulty": _counts((q["difficulty"] for q in qs), LEVELS),
            "by_answer_shape": _counts((q["answer_shape"] for q in qs), SHAPES),
            "order_matters": sum(bool(q["order_matters"]) for q in qs),
            "with_evidence": sum(bool(q.get("evidence")) for q in qs),
        }
        splits[name] = entry
    databases = {}
    for db_id in sorted(per_db):
        path = root / "databases" / db_id / f"{db_id}.sqlite"
        databases[db_id] = {
            "splits": list(per_db[db_id]),
            "questions": sum(per_db[db_id].values()),
            "sha256": sha256(path),
            "size_bytes": path.stat().st_size,
        }
    records = [r for name in questions for r in excluded.get(name, [])]
    missing: dict[str, dict[str, Any]] = {}
    for r in records:
        if r["reason"] == "missing_database":
            entry = missing.setdefault(r["db_id"], {"splits": [], "questions": 0})
            if r["split"] not in entry["splits"]:
                entry["splits"].append(r["split"])
            entry["questions"] += 1
    everything = [q for qs in questions.values() for q in qs]
    largest = max(everything, key=lambda q: (len(q["gold_rows"]), q["id"]))
    return {
        "splits": splits,
        "databases": databases,
        "excluded": {
            "total": len(records),
            "by_reason": _counts((r["reason"] for r in records), REASONS),
            "by_split": {
                name: _counts((r["reason"] for r in excluded.get(name, [])), REASONS)
                for name in questions
            },
            "missing_databases": dict(sorted(missing.items())),
        },
        "notes": {
            "empty_databases": sorted(
                {r["db_id"] for r in records if r["reason"] == "empty_database"}
            ),
            "gold_rows_over_1000": sum(len(q["gold_rows"]) > 1000 for q in everything),
            "largest_gold": {"id": largest["id"], "rows": len(largest["gold_rows"])},
        },
    }


def _exchange(a: Path, b: Path) -> bool:
    """Swap two paths in one step (Linux ``renameat2(RENAME_EXCHANGE)``); False where
    the call is not available, so the caller falls back to two renames."""
    try:
        libc = ctypes.CDLL(None, use_errno=True)
        renameat2 = libc.renameat2
    except (OSError, AttributeError):
        return False
    at_fdcwd, rename_exchange = -100, 2
    done = renameat2(at_fdcwd, os.fsencode(a), at_fdcwd, os.fsencode(b), rename_exchange)
    if done == 0:
        return True
    errno = ctypes.get_errno()
    if errno in (38, 22, 95):  # ENOSYS, EINVAL, EOPNOTSUPP: kernel or filesystem lacks it
        return False
    raise OSError(errno, os.strerror(errno), str(b))


def _swap_in(stage: Path, out: Path) -> None:
    """Put ``stage`` in the place of ``out``: one atomic exchange where the system has
    it, else two renames (``out`` is restored if the second fails)."""
    if not out.exists():
        os.rename(stage, out)
        return
    if _exchange(stage, out):
        shutil.rmtree(stage, ignore_errors=True)  # now holds the old directory
        return
    old = Path(tempfile.mkdtemp(prefix=f".{out.name}.old-", dir=out.parent))
    old.rmdir()
    os.rename(out, old)
    try:
        os.rename(stage, out)
    except OSError:
        os.rename(old, out)
        raise
    shutil.rmtree(old, ignore_errors=True)


def build_split(spec: BuildSpec, *, progress: bool = True) -> BuildResult:
    """Build ``spec.split`` into ``spec.out``; see the module docstring.

    Raises ``DataError`` (and writes nothing) when the inputs are unusable: a missing
    file or folder, a file that is not the format's JSON, a split that keeps no
    question, or a database that differs from the copy other splits were built on.
    Questions that cannot become episodes are excluded, not fatal.
    """
    _check_spec(spec)
    out = spec.out
    existing = _read_existing(out, spec.split)
    taken = {q["id"]: name for name, qs in existing.lines.items() for q in qs}
    for name, lines in existing.excluded_lines.items():
        if name != spec.split:
            for line in lines:
                taken.setdefault(json.loads(line)["id"], name)
    entries = _read_items(spec, taken)

    def db_path(db_id: str) -> Path:
        return spec.databases / db_id / f"{db_id}.sqlite"

    kept: list[Question] = []
    excluded: list[Exclusion] = []
    with (
        GoldRunner(db_path, spec.split, spec.timeout_s) as runner,
        tqdm(
            entries,
            desc=f"{spec.split}: gold queries",
            unit="q",
            file=sys.stderr,
            disable=not progress,
        ) as bar,
    ):
        for entry in bar:
            result = entry if isinstance(entry, Exclusion) else runner.run(entry)
            if isinstance(result, Question):
                kept.append(result)
            else:
                excluded.append(result)
    if not kept:
        reasons = ", ".join(
            f"{r} {n}" for r, n in _counts((e.reason for e in excluded), REASONS).items()
        )
        raise DataError(
            f"split {spec.split!r} keeps no question ({len(excluded)} excluded: {reasons or 'none read'});"
            f" nothing was written"
        )

    # databases: every split's, checked against what the directory already holds
    other_dbs = {q["db_id"] for qs in existing.lines.values() for q in qs}
    new_dbs = sorted({q.db_id for q in kept})
    for db_id in new_dbs:
        held = out / "databases" / db_id / f"{db_id}.sqlite"
        if db_id in other_dbs and held.is_file() and sha256(held) != sha256(db_path(db_id)):
            users = sorted(
                n for n, qs in existing.lines.items() if any(q["db_id"] == db_id for q in qs)
            )
            raise DataError(
                f"{db_path(db_id)} differs from {held}, which split(s) {', '.join(users)} were"
                " built on; rebuild them from the same database, or use another data directory"
            )

    out.parent.mkdir(parents=True, exist_ok=True)
    stage = Path(tempfile.mkdtemp(prefix=f".{out.name}.build-", dir=out.parent))
    try:
        umask = os.umask(0)
        os.umask(umask)
        os.chmod(stage, 0o777 & ~umask)
        copied = _write(spec, out, stage, existing, kept, excluded, other_dbs, new_dbs, db_path)
        manifest = json.loads((stage / "manifest.json").read_text(encoding="utf-8"))
        _swap_in(stage, out)
    except BaseException:
        shutil.rmtree(stage, ignore_errors=True)
        raise
    return BuildResult(spec, kept, excluded, manifest, copied)


def _write(
    spec: BuildSpec,
    out: Path,
    stage: Path,
    existing: _Existing,
    kept: list[Question],
    excluded: list[Exclusion],
    other_dbs: set[str],
    new_dbs: list[str],
    db_path: Callable[[str], Path],
) -> list[str]:
    """Fill ``stage`` with the whole new data directory; the databases it copied."""
    if out.is_dir():  # anything else the directory holds (a README) comes along
        for entry in sorted(out.iterdir()):
            if entry.name in ("questions", "databases", "manifest.json"):
                continue
            if entry.is_dir():
                shutil.copytree(entry, stage / entry.name, symlinks=True)
            else:
                shutil.copy2(entry, stage / entry.name)
    questions_dir = stage / "questions"
    questions_dir.mkdir()
    order = [n for n in existing.order if n in existing.lines or n == spec.split]
    if spec.split not in order:
        order.append(spec.split)
    for name in order:
        if name == spec.split:
            dump_questions(kept, questions_dir / f"{name}.jsonl")
        else:
            shutil.copyfile(out / "questions" / f"{name}.jsonl", questions_dir / f"{name}.jsonl")
    new_excluded = [e.record(spec.split) for e in excluded]
    with (questions_dir / f"{EXCLUDED_FILE}.jsonl").open("w", encoding="utf-8") as fh:
        for name in order:
            if name == spec.split:
                for rec in new_excluded:
                    fh.write(json.dumps(rec, ensure_ascii=False, separators=(",", ":")) + "\n")
            else:
                fh.writelines(existing.excluded_lines.get(name, []))

    copied: list[str] = []
    for db_id in sorted(other_dbs | set(new_dbs)):
        held = out / "databases" / db_id / f"{db_id}.sqlite"
        dst = stage / "databases" / db_id / f"{db_id}.sqlite"
        if held.is_file() and (db_id in other_dbs or sha256(held) == sha256(db_path(db_id))):
            _place_database(held, dst)
        else:
            dst.parent.mkdir(parents=True, exist_ok=True)
            shutil.copyfile(db_path(db_id), dst)
            copied.append(db_id)

    questions = {
        name: (
            [
                q.model_dump(
                    include={
                        "id",
                        "source",
                        "db_id",
                        "difficulty",
                        "answer_shape",
                        "order_matters",
                        "gold_rows",
                        "evidence",
                    }
                )
                for q in kept
            ]
            if name == spec.split
            else existing.lines[name]
        )
        for name in order
    }
    excluded_records = {
        name: (
            new_excluded
            if name == spec.split
            else [json.loads(x) for x in existing.excluded_lines.get(name, [])]
        )
        for name in order
    }
    builds = {name: existing.build.get(name) for name in order}
    builds[spec.split] = spec.record()
    manifest = _manifest(builds, questions, excluded_records, stage)
    (stage / "manifest.json").write_text(
        json.dumps(manifest, indent=2, ensure_ascii=False) + "\n", encoding="utf-8"
    )
    return copied
