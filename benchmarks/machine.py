"""The machine a benchmark ran on, and how loaded it was, for its results file.

Every benchmark that feeds the docs writes ``benchmarks/results/<name>.json`` with
:func:`record`: the numbers, the command that produced them and this description, so a
number in the README or docs/ has one source (``verify numbers`` checks them against it).
"""

from __future__ import annotations

import datetime as _dt
import json
import os
import platform
import shlex
import sqlite3
import sys
from pathlib import Path
from typing import Any

__all__ = ["describe", "record"]


def _cpu_model() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def _memory_gib() -> float | None:
    try:
        for line in Path("/proc/meminfo").read_text().splitlines():
            if line.startswith("MemTotal:"):
                return round(int(line.split()[1]) / 2**20, 1)
    except OSError:
        pass
    return None


def describe() -> dict[str, Any]:
    """CPU, cores, memory, OS, Python, SQLite and the load average right now."""
    load = os.getloadavg() if hasattr(os, "getloadavg") else (float("nan"),) * 3
    return {
        "cpu": _cpu_model(),
        "cores": os.cpu_count(),
        "memory_gib": _memory_gib(),
        "os": f"{platform.system()} {platform.release()}",
        "python": platform.python_version(),
        "sqlite": sqlite3.sqlite_version,
        "load_average_1_5_15": [round(x, 2) for x in load],
    }


def record(
    path: Path,
    benchmark: str,
    results: dict[str, Any],
    before: dict[str, Any],
    runner: str = "uv run python",
) -> None:
    """Write ``results`` with the command line, the time, and the machine as it was
    before (``before``, from :func:`describe`) and after the run.

    ``runner`` is what precedes the script in the command, for a benchmark that needs
    more than the workspace's environment (the server benchmark needs OpenEnv's group)."""
    after = describe()
    script = [shlex.quote(a) for a in (Path(sys.argv[0]).as_posix(), *sys.argv[1:])]
    document = {
        "benchmark": benchmark,
        "command": f"{runner} " + " ".join(script),
        "finished_utc": _dt.datetime.now(_dt.UTC).strftime("%Y-%m-%dT%H:%M:%SZ"),
        "machine": {**before, "load_average_after": after["load_average_1_5_15"]},
        "results": results,
    }
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(document, indent=2) + "\n", encoding="utf-8")
