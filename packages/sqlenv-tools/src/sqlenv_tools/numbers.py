"""``verify numbers``: each number the README and the docs quote from a measurement or
from the data agrees with its one source.

The sources are the results files the benchmarks write (``benchmarks/results/*.json``,
each with its command and the machine it ran on: ``benchmarks/machine.py``) and the data's
own ``data/manifest.json``. A claim is a pattern in a document whose first group is the
number as written; every occurrence must read what the source says, shown the way the
document shows it (``156``, ``1.4``, ``about 260``). A document or pattern that is gone
fails too, so a rewrite cannot drop a number silently.
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from .findings import Finding

__all__ = ["CLAIMS", "Claim", "check"]

GROUP = "numbers"
MANIFEST = "data/manifest.json"
ENGINE = "benchmarks/results/engine.json"
DOCKER = "benchmarks/results/docker.json"
HOSTILE = "benchmarks/results/hostile_sql.json"


def _count(value: Any) -> str:
    return str(len(value))


def _int(value: Any) -> str:
    return str(int(value))


def _places(n: int) -> Callable[[Any], str]:
    return lambda value: f"{float(value):.{n}f}"


def _tens(value: Any) -> str:
    return str(int(round(float(value), -1)))


@dataclass(frozen=True, slots=True)
class Claim:
    """``pattern`` in ``doc`` quotes ``source``'s ``key`` (dotted), shown by ``show``."""

    label: str
    doc: str
    pattern: str
    source: str
    key: str
    show: Callable[[Any], str]


CLAIMS: tuple[Claim, ...] = (
    Claim("databases", "README.md", r"honest evaluation\.\*\* (\d+) Spider databases",
          MANIFEST, "databases", _count),
    Claim("databases in the image", "README.md", r"the server and the (\d+) databases",
          MANIFEST, "databases", _count),
    Claim("databases", "docs/blog-outline.md", r"one of (\d+) real Spider SQLite databases",
          MANIFEST, "databases", _count),
    Claim("training databases", "docs/blog-outline.md", r"\((\d+) for training",
          MANIFEST, "splits.train.databases", _int),
    Claim("held-out databases", "docs/blog-outline.md", r"(\d+) held out\)",
          MANIFEST, "splits.eval.databases", _int),
    Claim("hostile queries", "README.md", r"against (\d+) hostile queries",
          HOSTILE, "results.entries", _int),
    Claim("hostile entries", "docs/reliability.md", r"holds (\d+) entries",
          HOSTILE, "results.entries", _int),
    Claim("hostile total", "docs/reliability.md", r"\| \*\*total\*\* \| \*\*(\d+)\*\* \|",
          HOSTILE, "results.entries", _int),
    Claim("image size", "README.md", r"The image \(`deploy/`\): about (\d+) MB",
          DOCKER, "results.image_size_mb", _tens),
    Claim("healthy after docker run", "README.md", r"healthy about ([\d.]+) s after `docker run`",
          DOCKER, "results.run_to_health_s.median", _places(1)),
    Claim("image size", "docs/benchmarks.md", r"\| image size \| (\d+) MB",
          DOCKER, "results.image_size_mb", _places(0)),
    Claim("docker run to /health", "docs/benchmarks.md",
          r"\| `docker run` to `/health` 200 \| ([\d.]+) s", DOCKER,
          "results.run_to_health_s.median", _places(2)),
    Claim("engine warm ratio", "docs/benchmarks.md",
          r"\| all \d+ queries, warm \|[^|]*\|[^|]*\| \*\*([\d.]+)x\*\*", ENGINE,
          "results.ratio_warm", _places(2)),
)  # fmt: skip


def _lookup(document: Any, key: str) -> Any:
    value = document
    for part in key.split("."):
        value = value[part]
    return value


def check(root: Path, claims: tuple[Claim, ...] = CLAIMS) -> list[Finding]:
    sources: dict[str, Any] = {}
    out: list[Finding] = []
    for claim in claims:
        name = f"{claim.doc}: {claim.label}"
        try:
            if claim.source not in sources:
                sources[claim.source] = json.loads((root / claim.source).read_text("utf-8"))
            expected = claim.show(_lookup(sources[claim.source], claim.key))
        except (OSError, ValueError, KeyError, TypeError) as exc:
            why = f"cannot read {claim.key} from {claim.source}: {exc}"
            out.append(Finding(GROUP, name, False, why))
            continue
        try:
            text = (root / claim.doc).read_text("utf-8")
        except OSError as exc:
            out.append(Finding(GROUP, name, False, f"cannot read {claim.doc}: {exc}"))
            continue
        found = re.findall(claim.pattern, text)
        if not found:
            why = f"no /{claim.pattern}/ in {claim.doc} (the claim was removed or reworded)"
            out.append(Finding(GROUP, name, False, why))
            continue
        wrong = sorted({value for value in found if value != expected})
        out.append(
            Finding(
                GROUP,
                name,
                not wrong,
                f"says {', '.join(wrong)}; {claim.source} says {expected}"
                if wrong
                else f"{expected} ({claim.source})",
            )
        )
    return out
