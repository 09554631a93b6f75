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
SERVER = "benchmarks/results/server.json"


def _count(value: Any) -> str:
    return str(len(value))


def _int(value: Any) -> str:
    return str(int(value))


def _places(n: int) -> Callable[[Any], str]:
    return lambda value: f"{float(value):.{n}f}"


def _tens(value: Any) -> str:
    return str(int(round(float(value), -1)))


def _signed(n: int) -> Callable[[Any], str]:
    return lambda value: f"{float(value):+.{n}f}"


def _thousands(value: Any) -> str:
    return f"{float(value):,.0f}"


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
    Claim("goals: throughput ratio @64", "docs/benchmarks.md",
          r"\| steps/s @64 \|[^|]*\|[^|]*\| \*\*([\d.]+)x\*\*", SERVER,
          "results.sessions.64.throughput_ratio", _places(2)),
    Claim("goals: steps/s @64", "docs/benchmarks.md", r"\| steps/s @64 \| ([\d,]+) \|",
          SERVER, "results.sessions.64.sqlenv-server.steps_per_s", _thousands),
    Claim("goals: OpenEnv steps/s @64", "docs/benchmarks.md", r"\| steps/s @64 \| [\d,]+ \| ([\d,]+) \|",
          SERVER, "results.sessions.64.openenv.steps_per_s", _thousands),
    Claim("goals: p99 @64", "docs/benchmarks.md", r"\| p99 @64 \| ([\d.]+) ms",
          SERVER, "results.sessions.64.sqlenv-server.p99_ms", _places(1)),
    Claim("goals: CPU per step @64", "docs/benchmarks.md",
          r"\| server CPU per QUERY step @64 \| (\d+) µs", SERVER,
          "results.sessions.64.sqlenv-server.server_cpu_us_per_step", _places(0)),
    Claim("goals: KiB per session", "docs/benchmarks.md",
          r"\| memory per open session \(256 open\) \| (\d+) KiB", SERVER,
          "results.servers.sqlenv-server.kib_per_session", _places(0)),
    Claim("goals: start to healthy", "docs/benchmarks.md",
          r"\| start to healthy[^|]*\| ([\d.]+) s", SERVER,
          "results.servers.sqlenv-server.healthy_s", _places(2)),
    Claim("goals: slow-query p99 delta", "docs/benchmarks.md",
          r"\| p99 added by one slow query[^|]*\| ([+\-][\d.]+) ms", SERVER,
          "results.servers.sqlenv-server.added_p99_ms", _signed(2)),
    Claim("goals: OpenEnv slow-query p99 delta", "docs/benchmarks.md",
          r"\| p99 added by one slow query[^|]*\| [+\-][\d.]+ ms \| ([+\-][\d.]+) ms", SERVER,
          "results.servers.openenv.added_p99_ms", _signed(2)),
    Claim("goals: slow-query cross-check", "docs/benchmarks.md",
          r"same-run cross-check: ([+\-][\d.]+) / [+\-][\d.]+ ms", SERVER,
          "results.servers.sqlenv-server.paired_added_p99_ms", _signed(2)),
    Claim("goals: OpenEnv slow-query cross-check", "docs/benchmarks.md",
          r"same-run cross-check: [+\-][\d.]+ / ([+\-][\d.]+) ms", SERVER,
          "results.servers.openenv.paired_added_p99_ms", _signed(2)),
    Claim("server idle RSS", "docs/benchmarks.md", r"Idle RSS: (\d+) MiB \(ours\)", SERVER,
          "results.servers.sqlenv-server.rss_idle_mib", _places(0)),
    Claim("OpenEnv idle RSS", "docs/benchmarks.md", r"vs (\d+) MiB \(OpenEnv\)", SERVER,
          "results.servers.openenv.rss_idle_mib", _places(0)),
    Claim("server run's load before", "docs/benchmarks.md",
          r"server: ([\d.]+) before, [\d.]+ after", SERVER,
          "machine.load_average_1_5_15.0", _places(1)),
    Claim("server run's load after", "docs/benchmarks.md",
          r"server: [\d.]+ before, ([\d.]+) after", SERVER,
          "machine.load_average_after.0", _places(1)),
    Claim("server CPU per step", "docs/scaling.md", r"(\d+) µs per QUERY step at 64 sessions",
          SERVER, "results.sessions.64.sqlenv-server.server_cpu_us_per_step", _places(0)),
    Claim("server KiB per session", "docs/scaling.md", r"(\d+) KiB per open session",
          SERVER, "results.servers.sqlenv-server.kib_per_session", _places(0)),
    Claim("plan: server CPU per step", "docs/scaling.md", r"≈ [\d.]+ cores at (\d+) µs/step",
          SERVER, "results.sessions.64.sqlenv-server.server_cpu_us_per_step", _places(0)),
    Claim("plan: KiB per session", "docs/scaling.md", r"1,000 × (\d+) KiB",
          SERVER, "results.servers.sqlenv-server.kib_per_session", _places(0)),
    *(
        Claim(f"server {what} @{n}", "docs/benchmarks.md", rf"\n\| {n} \| {pattern}", SERVER,
              f"results.sessions.{n}.{key}", show)
        for n in (1, 16, 64)
        for what, pattern, key, show in (
            ("steps/s", r"([\d,]+) / [\d,]+ \(", "sqlenv-server.steps_per_s", _thousands),
            ("OpenEnv steps/s", r"[\d,]+ / ([\d,]+) \(", "openenv.steps_per_s", _thousands),
            ("ratio", r"[\d,]+ / [\d,]+ \(([\d.]+)x\)", "throughput_ratio", _places(2)),
            ("p99", r"[^|]*\|[^|]*\| ([\d.]+) / [\d.]+ ms", "sqlenv-server.p99_ms", _places(2)),
            ("OpenEnv p99", r"[^|]*\|[^|]*\| [\d.]+ / ([\d.]+) ms", "openenv.p99_ms", _places(2)),
        )
    ),
)  # fmt: skip


def _lookup(document: Any, key: str) -> Any:
    value = document
    for part in key.split("."):
        value = value[int(part)] if isinstance(value, list) else value[part]
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
