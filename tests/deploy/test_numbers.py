"""The README's and docs' measured numbers agree with benchmarks/results/ and the data's
manifest (`verify numbers`), and each results file says how it was made and where."""

from __future__ import annotations

import json
from pathlib import Path

from sqlenv_tools import numbers

ROOT = Path(__file__).resolve().parents[2]


def test_docs_quote_their_sources() -> None:
    assert {f.check: f.reason for f in numbers.check(ROOT) if not f.ok} == {}


def test_every_results_file_names_its_command_and_machine() -> None:
    files = sorted((ROOT / "benchmarks" / "results").glob("*.json"))
    assert {f.name for f in files} >= {
        "engine.json",
        "docker.json",
        "hostile_sql.json",
        "server.json",
    }
    for path in files:
        document = json.loads(path.read_text())
        words = document["command"].split()
        assert words[:2] == ["uv", "run"] and "python" in words, path
        script = words[words.index("python") + 1]
        assert script in {
            "benchmarks/bench_engine.py",
            "benchmarks/bench_docker.py",
            "benchmarks/bench_server.py",
            "tests/reliability/hostile_sql.py",
        }, path
        assert f"--out benchmarks/results/{path.name}" in document["command"], path
        machine = document["machine"]
        assert machine["cpu"] and machine["cores"] and len(machine["load_average_1_5_15"]) == 3
        assert document["finished_utc"].endswith("Z")
